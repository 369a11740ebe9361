//! Processing metrics kept in memory: tasks processed per connector,
//! direction and result, and a latency histogram of connector calls. Queue
//! depths are read from the database when scraped.

use crate::task_result::TaskResult;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
pub(crate) const BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// A latency histogram over [`BUCKETS`] (cumulative, as Prometheus has it).
#[derive(Debug, Default, Clone)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn observe(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines of `name` with the
    /// labels `labels` (already escaped).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug, Default, Clone)]
struct Series {
    results: BTreeMap<&'static str, u64>,
    latency: Histogram,
}

/// The metrics of one daemon.
#[derive(Debug, Default)]
pub struct Metrics {
    /// By direction, then connector.
    series: Mutex<BTreeMap<&'static str, BTreeMap<String, Series>>>,
}

fn result_name(r: TaskResult) -> &'static str {
    match r {
        TaskResult::Ok => "Ok",
        TaskResult::Error => "Error",
        TaskResult::ErrorAndSkip => "ErrorAndSkip",
        TaskResult::SkipNow => "SkipNow",
        TaskResult::SkippedOnce => "SkippedOnce",
        TaskResult::SkippedOnError => "SkippedOnError",
        TaskResult::DeletedOnError => "DeletedOnError",
        TaskResult::Blocked => "Blocked",
    }
}

/// Escapes a Prometheus label value.
pub fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Counts one processed task and the time its call took.
    pub fn record(&self, connector: &str, direction: &'static str, result: TaskResult, elapsed: Duration) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let by_connector = series.entry(direction).or_default();
        // Looked up by reference: the name is only copied for a new series.
        if !by_connector.contains_key(connector) {
            by_connector.insert(connector.to_owned(), Series::default());
        }
        let s = by_connector.get_mut(connector).expect("inserted above");
        *s.results.entry(result_name(result)).or_default() += 1;
        s.latency.observe(elapsed);
    }

    /// Tasks of one direction processed with `result`, over all connectors.
    pub fn total(&self, direction: &str, result: TaskResult) -> u64 {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let name = result_name(result);
        series.get(direction).map_or(0, |m| m.values().filter_map(|s| s.results.get(name)).sum())
    }

    /// Forgets the series of connectors that left the registry (deleted or
    /// renamed): the registry is writable through the API, so keeping them
    /// would grow the scrape without bound.
    pub fn retain(&self, registered: impl Fn(&str) -> bool) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for by_connector in series.values_mut() {
            by_connector.retain(|connector, _| registered(connector));
        }
    }

    /// Appends the counters and histograms in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner()).clone();
        out.push_str("# HELP bus_tasks_processed_total Tasks processed, by connector, direction and result.\n");
        out.push_str("# TYPE bus_tasks_processed_total counter\n");
        for (connector, direction, s) in flatten(&series) {
            for (result, n) in &s.results {
                let _ = writeln!(
                    out,
                    "bus_tasks_processed_total{{connector=\"{}\",direction=\"{direction}\",result=\"{result}\"}} {n}",
                    label(connector)
                );
            }
        }
        out.push_str("# HELP bus_task_duration_seconds How long connector calls took.\n");
        out.push_str("# TYPE bus_task_duration_seconds histogram\n");
        for (connector, direction, s) in flatten(&series) {
            let l = format!("connector=\"{}\",direction=\"{direction}\"", label(connector));
            s.latency.render(out, "bus_task_duration_seconds", &l);
        }
    }
}

fn flatten<'a>(
    series: &'a BTreeMap<&'static str, BTreeMap<String, Series>>,
) -> impl Iterator<Item = (&'a str, &'static str, &'a Series)> {
    series.iter().flat_map(|(direction, m)| m.iter().map(move |(connector, s)| (connector.as_str(), *direction, s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.record("A", "outgoing", TaskResult::Ok, Duration::from_micros(300));
        m.record("A", "outgoing", TaskResult::Error, Duration::from_millis(30));
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("bus_tasks_processed_total{connector=\"A\",direction=\"outgoing\",result=\"Ok\"} 1"),
            "{out}"
        );
        assert!(out.contains("le=\"0.0005\"} 1"), "{out}");
        assert!(out.contains("le=\"0.05\"} 2"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 2"), "{out}");
        assert!(out.contains("bus_task_duration_seconds_count{connector=\"A\",direction=\"outgoing\"} 2"));
        assert_eq!(m.total("outgoing", TaskResult::Ok), 1);
        assert_eq!(m.total("incoming", TaskResult::Ok), 0);
    }
}
