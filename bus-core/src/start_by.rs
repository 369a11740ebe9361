//! The moment by which a connector call must have *started*: the end of
//! the trust in the lease it is made under. A daemon that stalls (a
//! SIGSTOP, a long pause) between its lease check and the call would
//! otherwise call after another daemon took the lease over; with the
//! moment carried along, the call is refused where it would start — in
//! this process right before an in-process call, or in the connector
//! process when the call frame arrives (`isolation/`).
//!
//! The moment is absolute on `CLOCK_MONOTONIC`, which every process of the
//! machine shares, so it means the same in the connector process whenever
//! the frame gets there. The worker sets it for the calls it makes on its
//! thread ([`within`]); the call paths read it ([`current`]).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Whether, and until when, this daemon may start a call into a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallWindow {
    /// A call may start before `until` (the end of the trust in the last
    /// renewal); `token` is the lease epoch, the fencing token the call
    /// carries (none on SQLite, where one daemon owns every queue).
    Open { until: Option<Instant>, token: Option<i64> },
    /// No call may start now: the lease is not held, not renewed recently
    /// enough, or the previous owner's trust in it has not run out yet.
    Closed,
}

/// A start deadline, in nanoseconds of `CLOCK_MONOTONIC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StartBy(u64);

thread_local! {
    static CURRENT: Cell<Option<StartBy>> = const { Cell::new(None) };
}

fn monotonic_now() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0))
}

impl StartBy {
    /// `until` (an instant of this process) as an absolute moment.
    pub(crate) fn at(until: Instant) -> StartBy {
        let left = until.saturating_duration_since(Instant::now());
        StartBy(monotonic_now().saturating_add(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)))
    }

    /// How long ago the moment passed, if it did.
    pub(crate) fn passed_by(self) -> Option<Duration> {
        let now = monotonic_now();
        (now >= self.0).then(|| Duration::from_nanos(now - self.0))
    }

    pub(crate) fn to_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }

    pub(crate) fn from_bytes(bytes: [u8; 8]) -> StartBy {
        StartBy(u64::from_le_bytes(bytes))
    }
}

/// Runs `f` with `until` as the start deadline of the connector calls it
/// makes on this thread (`None`: no deadline).
pub(crate) fn within<R>(until: Option<Instant>, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|c| c.replace(until.map(StartBy::at)));
    let result = f();
    CURRENT.with(|c| c.set(previous));
    result
}

/// The start deadline of this thread's connector calls, if any.
pub(crate) fn current() -> Option<StartBy> {
    CURRENT.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_absolute_and_scoped_to_the_calls_made_within() {
        assert_eq!(current(), None);
        let soon = Instant::now() + Duration::from_secs(60);
        within(Some(soon), || {
            let by = current().expect("set within");
            assert_eq!(by.passed_by(), None);
            assert_eq!(StartBy::from_bytes(by.to_bytes()), by);
            within(Some(Instant::now()), || assert!(current().unwrap().passed_by().is_some()));
            assert_eq!(current(), Some(by), "restored after a nested scope");
        });
        assert_eq!(current(), None);
    }
}
