//! Processing metrics kept in memory: tasks processed per connector,
//! direction and result, and a latency histogram of connector calls. Queue
//! depths are read from the database when scraped.

use crate::worker::TaskResult;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default, Clone)]
struct Series {
    results: BTreeMap<&'static str, u64>,
    latency: Histogram,
}

/// The metrics of one daemon.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, &'static str), Series>>,
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
        let s = series.entry((connector.to_owned(), direction)).or_default();
        *s.results.entry(result_name(result)).or_default() += 1;
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                s.latency.counts[i] += 1;
            }
        }
        s.latency.sum += secs;
        s.latency.count += 1;
    }

    /// Appends the counters and histograms in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner()).clone();
        out.push_str("# HELP bus_tasks_processed_total Tasks processed, by connector, direction and result.\n");
        out.push_str("# TYPE bus_tasks_processed_total counter\n");
        for ((connector, direction), s) in &series {
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
        for ((connector, direction), s) in &series {
            let l = format!("connector=\"{}\",direction=\"{direction}\"", label(connector));
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "bus_task_duration_seconds_bucket{{{l},le=\"{bound}\"}} {}", s.latency.counts[i]);
            }
            let _ = writeln!(out, "bus_task_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}", s.latency.count);
            let _ = writeln!(out, "bus_task_duration_seconds_sum{{{l}}} {}", s.latency.sum);
            let _ = writeln!(out, "bus_task_duration_seconds_count{{{l}}} {}", s.latency.count);
        }
    }
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
    }
}
