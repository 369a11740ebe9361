//! Processing metrics kept in memory: tasks processed per connector,
//! direction and result, a latency histogram of connector calls, and what
//! each connector did lately (processed in the last minute, its last
//! success and last error: `Activity`). Queue depths are read from the
//! database when scraped.

use crate::task_result::TaskResult;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

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
    /// What each connector did lately, by connector.
    recent: Mutex<BTreeMap<String, Recent>>,
}

/// What one connector did lately on this daemon.
#[derive(Debug, Default, Clone)]
struct Recent {
    /// Tasks processed `Ok` per second of the last minute: (second since
    /// the epoch, count), oldest first.
    per_second: VecDeque<(u64, u32)>,
    last_success: Option<SystemTime>,
    last_error: Option<String>,
    /// Processed `Ok` and failed since the history last took them
    /// ([`Metrics::take_unrecorded`]).
    unrecorded: (u64, u64),
}

/// What a connector did lately on this daemon (`/api/connectors`' `queue`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// Tasks processed `Ok` in the last 60 seconds.
    pub delivered_last_minute: u64,
    /// When a task was last processed `Ok` (RFC 3339).
    pub last_success_at: Option<String>,
    /// The error of the last task that failed.
    pub last_error: Option<String>,
}

/// The seconds `per_second` covers.
const LAST_MINUTE: u64 = 60;

fn epoch_second(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
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
    /// Counts one processed task and the time its call took, and notes it
    /// as the connector's latest success or error.
    pub fn record(
        &self,
        connector: &str,
        direction: &'static str,
        result: TaskResult,
        error: Option<&str>,
        elapsed: Duration,
    ) {
        self.note(connector, result, error, SystemTime::now());
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

    fn note(&self, connector: &str, result: TaskResult, error: Option<&str>, at: SystemTime) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if !recent.contains_key(connector) {
            recent.insert(connector.to_owned(), Recent::default());
        }
        let r = recent.get_mut(connector).expect("inserted above");
        if result == TaskResult::Ok {
            r.unrecorded.0 += 1;
        } else if result.is_failure() {
            r.unrecorded.1 += 1;
        }
        if result == TaskResult::Ok {
            let second = epoch_second(at);
            match r.per_second.back_mut() {
                Some((s, n)) if *s == second => *n += 1,
                _ => r.per_second.push_back((second, 1)),
            }
            while r.per_second.front().is_some_and(|(s, _)| *s + LAST_MINUTE <= second) {
                r.per_second.pop_front();
            }
            r.last_success = Some(at);
        } else if let Some(error) = error {
            r.last_error = Some(error.to_owned());
        }
    }

    /// What `connector` did lately on this daemon.
    pub fn activity(&self, connector: &str) -> Activity {
        self.activity_at(connector, SystemTime::now())
    }

    fn activity_at(&self, connector: &str, now: SystemTime) -> Activity {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let Some(r) = recent.get(connector) else { return Activity::default() };
        let now = epoch_second(now);
        Activity {
            delivered_last_minute: r
                .per_second
                .iter()
                .filter(|(s, _)| *s + LAST_MINUTE > now)
                .map(|(_, n)| u64::from(*n))
                .sum(),
            last_success_at: r.last_success.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            last_error: r.last_error.clone(),
        }
    }

    /// Per connector, the tasks processed `Ok` and the attempts that failed
    /// since the last call: what `history` adds to the database.
    pub fn take_unrecorded(&self) -> BTreeMap<String, (u64, u64)> {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .iter_mut()
            .filter(|(_, r)| r.unrecorded != (0, 0))
            .map(|(connector, r)| (connector.clone(), std::mem::take(&mut r.unrecorded)))
            .collect()
    }

    /// Counts [`Metrics::take_unrecorded`] gave that could not be written,
    /// kept for the next call (those of connectors forgotten meanwhile go).
    pub fn give_back(&self, counts: BTreeMap<String, (u64, u64)>) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        for (connector, (ok, failed)) in counts {
            if let Some(r) = recent.get_mut(&connector) {
                r.unrecorded.0 += ok;
                r.unrecorded.1 += failed;
            }
        }
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
        drop(series);
        self.recent.lock().unwrap_or_else(|p| p.into_inner()).retain(|connector, _| registered(connector));
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
        m.record("A", "outgoing", TaskResult::Ok, None, Duration::from_micros(300));
        m.record("A", "outgoing", TaskResult::Error, Some("down"), Duration::from_millis(30));
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

    #[test]
    fn activity_counts_the_last_minute_and_keeps_the_last_success_and_error() {
        let m = Metrics::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |s: u64| t0 + Duration::from_secs(s);
        m.note("A", TaskResult::Ok, None, at(0));
        m.note("A", TaskResult::Ok, None, at(1));
        m.note("A", TaskResult::Error, Some("CRM is down"), at(30));
        m.note("A", TaskResult::SkipNow, None, at(31));
        m.note("A", TaskResult::Ok, None, at(59));
        let a = m.activity_at("A", at(59));
        assert_eq!(a.delivered_last_minute, 3);
        assert_eq!(a.last_error.as_deref(), Some("CRM is down"), "a result without an error keeps the last one");
        assert_eq!(a.last_success_at.as_deref(), Some(humantime::format_rfc3339_seconds(at(59)).to_string().as_str()));
        assert_eq!(m.activity_at("A", at(61)).delivered_last_minute, 1, "only what is younger than a minute");
        assert_eq!(m.activity_at("A", at(200)).delivered_last_minute, 0);
        assert_eq!(m.activity_at("B", at(59)), Activity::default());
        m.retain(|c| c != "A");
        assert_eq!(m.activity_at("A", at(59)), Activity::default(), "a deleted connector is forgotten");
    }
}
