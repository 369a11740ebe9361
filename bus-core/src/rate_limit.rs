//! A connector's rate limit (`ConnectorRateLimit`): calls start at least
//! `1 / rate` seconds apart — a token bucket holding one token, so there is
//! no burst — and a batch is one call. A new instance (a reinitialization,
//! a lease taken over by another daemon) starts with an empty bucket: its
//! first call waits one interval, so the limit holds across the change.
//! Only the daemon holding a connector's lease calls it, so the limit is
//! the connector's across the cluster.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When the next call may start.
#[derive(Debug)]
pub(crate) struct RateLimit {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimit {
    /// A limit of `per_second` calls (> 0; anything else is no limit).
    pub(crate) fn new(per_second: Option<f64>) -> Option<RateLimit> {
        let per_second = per_second.filter(|r| r.is_finite() && *r > 0.0)?;
        let interval = Duration::try_from_secs_f64(1.0 / per_second).unwrap_or(Duration::MAX / 4);
        Some(RateLimit { interval, next: Mutex::new(Instant::now() + interval) })
    }

    /// Takes the next slot if it has come (`None`), or says how long until
    /// it does (the slot is not taken).
    pub(crate) fn take(&self) -> Option<Duration> {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if *next > now {
            return Some(*next - now);
        }
        // Taken late by less than an interval (the caller's wake-up), the
        // cadence is kept, so the rate holds on average; a connector idle
        // for longer gets no burst: the slot after this one is one interval
        // from now.
        *next = if now - *next < self.interval { *next + self.interval } else { now + self.interval };
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_start_one_interval_apart_from_the_start() {
        let limit = RateLimit::new(Some(100.0)).unwrap();
        let wait = limit.take().expect("a new bucket is empty");
        assert!(wait <= Duration::from_millis(10));
        std::thread::sleep(wait);
        assert_eq!(limit.take(), None);
        assert!(limit.take().is_some(), "the next slot is an interval later");
        assert!(RateLimit::new(None).is_none());
        assert!(RateLimit::new(Some(0.0)).is_none());
    }
}
