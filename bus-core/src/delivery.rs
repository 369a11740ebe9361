//! How a connector's outgoing queue is delivered — the registry columns
//! `ConnectorOrdering`, `ConnectorConcurrency`, `ConnectorBatchSize` and
//! `ConnectorRateLimit` (NULL: the default) — with one set of rules for the
//! API, the CLI and values written by SQL (an unusable value is a problem of
//! the row naming its column, never a failed read).

use crate::sql::{Row, ValueRef};
use serde::{Deserialize, Serialize};

/// The most calls in flight one connector may have.
pub const MAX_CONCURRENCY: i64 = 256;
/// The most tasks one delivery request may carry.
pub const MAX_BATCH_SIZE: i64 = 1000;

/// In which order a connector gets its tasks (`ConnectorOrdering`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// The specification's: one queue, oldest first, an `Error` stops it.
    #[default]
    Connector,
    /// Tasks that share no key (object) may go in parallel, each object's
    /// tasks in commit order; an `Error` parks only the tasks sharing a key
    /// with the failed one.
    Object,
}

impl Ordering {
    /// The column's value (NULL for the default).
    pub(crate) fn column(self) -> Option<&'static str> {
        match self {
            Ordering::Connector => None,
            Ordering::Object => Some("object"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Ordering::Connector => "connector",
            Ordering::Object => "object",
        }
    }
}

impl std::str::FromStr for Ordering {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "connector" | "" => Ok(Ordering::Connector),
            "object" => Ok(Ordering::Object),
            other => Err(format!("`{}` is not an ordering: use connector or object", other.escape_debug())),
        }
    }
}

impl std::fmt::Display for Ordering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A registry row's delivery settings, as stored (`None`: the default).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeliverySettings {
    pub ordering: Ordering,
    /// Calls in flight at once (1–256; `None`: 1).
    pub concurrency: Option<i64>,
    /// Tasks per delivery request (1–1000; `None`: `[isolation] batch_size`).
    pub batch_size: Option<i64>,
    /// Calls per second at most (> 0; `None`: no limit).
    pub rate_limit: Option<f64>,
}

impl DeliverySettings {
    /// Calls in flight at once: 1 unless the ordering is `object`.
    pub fn calls_at_once(&self) -> usize {
        match self.ordering {
            Ordering::Connector => 1,
            Ordering::Object => self.concurrency.unwrap_or(1).clamp(1, MAX_CONCURRENCY) as usize,
        }
    }

    /// Checks the values an API or CLI request sets; the error names the field.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(n) = self.concurrency {
            check_range("concurrency", n, MAX_CONCURRENCY)?;
        }
        if let Some(n) = self.batch_size {
            check_range("batch size", n, MAX_BATCH_SIZE)?;
        }
        if let Some(r) = self.rate_limit {
            check_rate(r).map_err(|reason| ("rate limit", reason))?;
        }
        Ok(())
    }

    /// Reads the four columns at `first`.. of `r`; a value that cannot be
    /// used is a problem naming its column, and the default stands in.
    pub(crate) fn from_columns(r: &Row<'_>, first: usize, problems: &mut Vec<String>) -> crate::sql::Result<Self> {
        let mut settings = DeliverySettings::default();
        match r.get_ref(first)? {
            ValueRef::Null => {}
            ValueRef::Text(bytes) => match std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned()) {
                Ok(text) => match text.parse() {
                    Ok(o) => settings.ordering = o,
                    Err(e) => problems.push(format!("ConnectorOrdering: {e} (NULL means connector)")),
                },
                Err(e) => problems.push(format!("ConnectorOrdering: {e}")),
            },
            other => problems.push(format!("ConnectorOrdering is {}, not text: use connector or object", other.kind())),
        }
        settings.concurrency = integer(r.get_ref(first + 1)?, "ConnectorConcurrency", MAX_CONCURRENCY, problems);
        settings.batch_size = integer(r.get_ref(first + 2)?, "ConnectorBatchSize", MAX_BATCH_SIZE, problems);
        settings.rate_limit = match r.get_ref(first + 3)? {
            ValueRef::Null => None,
            ValueRef::Integer(n) => Some(n as f64),
            ValueRef::Real(f) => Some(f),
            other => {
                problems.push(format!("ConnectorRateLimit is {}, not a number of calls per second", other.kind()));
                None
            }
        };
        if let Some(Err(reason)) = settings.rate_limit.map(check_rate) {
            problems.push(format!("ConnectorRateLimit: {reason}"));
            settings.rate_limit = None;
        }
        Ok(settings)
    }
}

fn check_range(field: &'static str, n: i64, max: i64) -> Result<(), (&'static str, String)> {
    if (1..=max).contains(&n) {
        Ok(())
    } else {
        Err((field, format!("must be 1 to {max}, not {n}")))
    }
}

fn check_rate(r: f64) -> Result<(), String> {
    if r.is_finite() && r > 0.0 {
        Ok(())
    } else {
        Err(format!("must be a number of calls per second above 0, not {r}"))
    }
}

/// An integer column between 1 and `max` (NULL: `None`).
fn integer(value: ValueRef<'_>, column: &'static str, max: i64, problems: &mut Vec<String>) -> Option<i64> {
    let n = match value {
        ValueRef::Null => return None,
        ValueRef::Integer(n) => n,
        ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 1e15 => f as i64,
        other => {
            problems.push(format!("{column} is {}, not an integer from 1 to {max}", other.kind()));
            return None;
        }
    };
    match check_range(column, n, max) {
        Ok(()) => Some(n),
        Err((_, reason)) => {
            problems.push(format!("{column}: {reason}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_object_ordering_calls_more_than_once_at_a_time() {
        let mut s = DeliverySettings { concurrency: Some(16), ..Default::default() };
        assert_eq!(s.calls_at_once(), 1);
        s.ordering = Ordering::Object;
        assert_eq!(s.calls_at_once(), 16);
        assert_eq!(DeliverySettings { ordering: Ordering::Object, ..Default::default() }.calls_at_once(), 1);
    }

    #[test]
    fn requests_are_checked_with_the_field_named() {
        let bad = DeliverySettings { concurrency: Some(257), ..Default::default() };
        assert_eq!(bad.check().unwrap_err().0, "concurrency");
        let bad = DeliverySettings { batch_size: Some(0), ..Default::default() };
        assert_eq!(bad.check().unwrap_err().0, "batch size");
        let bad = DeliverySettings { rate_limit: Some(0.0), ..Default::default() };
        assert_eq!(bad.check().unwrap_err().0, "rate limit");
        assert!(DeliverySettings { rate_limit: Some(0.5), ..Default::default() }.check().is_ok());
        assert_eq!("fifo".parse::<Ordering>().unwrap_err(), "`fifo` is not an ordering: use connector or object");
    }
}
