//! A connector's call lane: the one thread on which every call into a
//! connector that does not come from its own worker runs (create, init,
//! custom subscription checks, synchronous processing, preparing incoming
//! tasks, shutdown), each with a deadline.
//!
//! The caller waits at most the deadline. A call that runs past it keeps
//! the lane's thread (an in-process call cannot be interrupted), and while
//! it does, further calls fail at once instead of starting threads of their
//! own: a hung connector costs one stuck thread, however many requests
//! reach it. A call made from inside a call on the lane (a connector that
//! logs an incoming task from `process_internal_task_sync`, say) runs at
//! once on the same thread instead of waiting for itself.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a call on a lane did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum LaneError {
    /// The call did not return within its deadline (it may still be running).
    #[error("no answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// An earlier call is still running past its deadline; this one was not made.
    #[error("an earlier `{kind}` call has not returned for {} ms", .running_for.as_millis())]
    Stuck { kind: String, running_for: Duration },
    /// The lane's thread could not be started.
    #[error("cannot start the connector's call thread: {0}")]
    Unavailable(String),
}

type Job = Box<dyn FnOnce() + Send>;

struct Running {
    kind: String,
    since: Instant,
    deadline: Duration,
    /// Its caller stopped waiting.
    abandoned: Arc<AtomicBool>,
}

impl Running {
    /// How long it has run, once it counts as stuck: past its deadline, or
    /// given up by its caller.
    fn stuck_for(&self) -> Option<Duration> {
        let ran = self.since.elapsed();
        (ran > self.deadline || self.abandoned.load(Ordering::SeqCst)).then_some(ran)
    }
}

struct Inner {
    name: String,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    running: Mutex<Option<Running>>,
}

thread_local! {
    /// The lane whose thread this is (its address), so a nested call runs inline.
    static ON_LANE: Cell<usize> = const { Cell::new(0) };
}

/// The lane whose thread runs this code (0: none), to carry into work done
/// on its behalf on another thread.
pub(crate) fn current_lane() -> usize {
    ON_LANE.with(Cell::get)
}

/// Runs `f` as part of the call running on lane `lane` (from
/// [`current_lane`]): a host request that a connector process made during
/// a lane call is served on another thread, and a call it makes into the
/// same connector must run at once, as it would on the lane itself.
pub(crate) fn as_lane<R>(lane: usize, f: impl FnOnce() -> R) -> R {
    let previous = ON_LANE.with(|l| l.replace(lane));
    let result = f();
    ON_LANE.with(|l| l.set(previous));
    result
}

/// One connector's call lane; its thread starts with the first call and
/// ends once the lane is dropped and the call in flight returned.
pub(crate) struct Lane {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane").field("name", &self.inner.name).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Lane {
    /// A lane for the connector registered as `name`.
    pub(crate) fn new(name: &str) -> Lane {
        Lane { inner: Arc::new(Inner { name: name.to_owned(), sender: Mutex::new(None), running: Mutex::new(None) }) }
    }

    fn address(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// How long the call running now has run, when past its deadline.
    pub(crate) fn stuck_for(&self) -> Option<Duration> {
        lock(&self.inner.running).as_ref().and_then(Running::stuck_for)
    }

    /// Runs `call` on the lane and waits at most `deadline` for its answer.
    pub(crate) fn run<R: Send + 'static>(
        &self,
        kind: &str,
        deadline: Duration,
        call: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, LaneError> {
        if ON_LANE.with(Cell::get) == self.address() {
            return Ok(call());
        }
        if let Some(r) = lock(&self.inner.running).as_ref() {
            if let Some(running_for) = r.stuck_for() {
                return Err(LaneError::Stuck { kind: r.kind.clone(), running_for });
            }
        }
        let (reply, answer) = mpsc::sync_channel(1);
        // Set when the caller gave up before the call started: it is not made.
        let abandoned = Arc::new(AtomicBool::new(false));
        let job: Job = {
            let flag = abandoned.clone();
            let inner = Arc::downgrade(&self.inner);
            let kind = kind.to_owned();
            Box::new(move || {
                if let Some(inner) = inner.upgrade() {
                    let mut running = lock(&inner.running);
                    // Checked under the lock the caller takes to give up.
                    if flag.load(Ordering::SeqCst) {
                        return;
                    }
                    *running = Some(Running { kind, since: Instant::now(), deadline, abandoned: flag });
                }
                let result = call();
                if let Some(inner) = inner.upgrade() {
                    *lock(&inner.running) = None;
                }
                let _ = reply.send(result);
            })
        };
        self.send(job)?;
        match answer.recv_timeout(deadline) {
            Ok(result) => Ok(result),
            Err(_) => {
                let _running = lock(&self.inner.running);
                abandoned.store(true, Ordering::SeqCst);
                Err(LaneError::TimedOut(deadline))
            }
        }
    }

    fn send(&self, job: Job) -> Result<(), LaneError> {
        let mut sender = lock(&self.inner.sender);
        if sender.is_none() {
            let (tx, rx) = mpsc::channel::<Job>();
            let address = self.address();
            // A thread name may not hold a NUL byte.
            let thread_name = format!("lane-{}", self.inner.name.replace('\0', "?"));
            std::thread::Builder::new()
                .name(thread_name)
                .spawn(move || {
                    ON_LANE.with(|l| l.set(address));
                    for job in rx {
                        job();
                    }
                })
                .map_err(|e| LaneError::Unavailable(e.to_string()))?;
            *sender = Some(tx);
        }
        let tx = sender.as_ref().expect("the lane's sender was just set");
        tx.send(job).map_err(|_| LaneError::Unavailable("the call thread has ended".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_answers_within_its_deadline() {
        let lane = Lane::new("A");
        assert_eq!(lane.run("k", Duration::from_secs(5), || 41 + 1), Ok(42));
    }

    #[test]
    fn a_hung_call_costs_one_thread_and_later_calls_fail_at_once() {
        let lane = Arc::new(Lane::new("A"));
        let (release, hold) = mpsc::channel::<()>();
        let hold = Mutex::new(hold);
        let first = lane.run("slow", Duration::from_millis(50), move || {
            let _ = lock(&hold).recv();
        });
        assert_eq!(first, Err(LaneError::TimedOut(Duration::from_millis(50))));
        // Given up by its caller, the call still holds the lane: the next fails at once.
        let started = Instant::now();
        match lane.run("next", Duration::from_secs(5), || ()) {
            Err(LaneError::Stuck { kind, .. }) => assert_eq!(kind, "slow"),
            other => panic!("expected Stuck, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(lane.stuck_for().is_some());
        release.send(()).unwrap();
        // Once the hung call returns, the lane serves again.
        let mut answered = None;
        for _ in 0..200 {
            if let Ok(v) = lane.run("again", Duration::from_secs(5), || 7) {
                answered = Some(v);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(answered, Some(7));
    }

    #[test]
    fn a_nested_call_runs_inline() {
        let lane = Arc::new(Lane::new("A"));
        let inner = lane.clone();
        let v = lane.run("outer", Duration::from_secs(5), move || inner.run("inner", Duration::from_secs(5), || 5));
        assert_eq!(v, Ok(Ok(5)));
    }
}
