//! The outgoing drain in `object` ordering: up to `ConnectorConcurrency`
//! calls in flight, each object's tasks in commit order.
//!
//! The worker's thread reads the queue oldest first into a window and hands
//! a task out only when no earlier task still in the window, in flight or
//! parked shares a key with it ([`Keys`]: its object and the objects it
//! refers to); the calls run on call threads of this run, and their results
//! come back to the worker's thread, which records each as it arrives (so a
//! crash repeats at most the calls in flight). An `Error` parks the failed
//! task's keys: the later tasks that share one are passed over for this run
//! (and park their own keys in turn), everything else goes on; the run then
//! ends `Stopped`, and the retry starts with the failed task, at the head of
//! its chain. A run that new tasks started before a retry is due passes
//! over the failed chains without calling (`RunEnd::Waiting`).
//!
//! A task that failed before goes alone when retried (nothing else in
//! flight), so a task that crashes the connector's process cannot take the
//! calls beside it down with it again and again; after a call that got no
//! answer (a crash, a kill, a timeout) the rest of the run goes one call at
//! a time, and no call starts while the process is down.

use super::call::{decide, deliver_all, pause, Answer, Delivering};
use super::keys::{Access, Held, Key, Keys};
use crate::backend::{CallWindow, QueueError};
use crate::connector::LiveConnector;
use crate::queue::{Direction, Queued};
use crate::start_by;
use crate::state_store;
use crate::worker::{Retries, Run, RunEnd, RunKind, Turn};
use connector_abi::protocol::ProcessResponse;
use connector_abi::IntegrationProcessResult;
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most tasks read ahead of the oldest one not yet handed out.
const MAX_WINDOW: usize = 10_000;

/// One call for a call thread.
struct Job {
    id: u64,
    tasks: Vec<Queued>,
    /// Each task's place in the queue (see [`Pending::place`]).
    places: Vec<u64>,
    until: Option<Instant>,
    token: Option<i64>,
}

/// A call's results, back on the worker's thread.
struct Done {
    id: u64,
    tasks: Vec<Queued>,
    places: Vec<u64>,
    responses: Vec<ProcessResponse>,
    answer: Answer,
    elapsed: Duration,
    /// The connector's state writes during the call.
    writes: state_store::Writes,
}

/// A task read and not yet handed out.
struct Pending {
    q: Queued,
    keys: Keys,
    /// Its place in the queue: the order it was read in, which is commit
    /// order (on PostgreSQL a task that committed late with a lower ID is
    /// read later, and comes later).
    place: u64,
}

/// Drains the queue of a connector in `object` ordering.
pub(super) fn per_object(run: &mut Run<'_>, state: &mut Delivering) -> Result<RunEnd, QueueError> {
    let connector: &LiveConnector = run.connector;
    // Copied out of the run (it is borrowed mutably below): each call
    // thread checks it right before its call, so a call handed out just
    // before a disable or a reinitialization does not start after it.
    let turn = run.turn();
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    std::thread::scope(|scope| {
        let mut threads = 0usize;
        let spawn = || {
            let done = done_tx.clone();
            let jobs = &job_rx;
            let spawned = std::thread::Builder::new()
                .name(format!("call-{}", connector.name.replace('\0', "?")))
                .spawn_scoped(scope, move || call_thread(connector, turn, jobs, &done));
            if let Err(e) = &spawned {
                tracing::error!(connector = %connector.name, error = %e, "cannot start a call thread");
            }
            spawned.is_ok()
        };
        let mut s = Scheduler::new(run, connector);
        let end = s.drain(run, state, &job_tx, &done_rx, &mut |busy: usize| {
            // A call thread per call in flight at most: a new one only when
            // every thread is busy.
            if busy >= threads && spawn() {
                threads += 1;
            }
            threads > 0
        });
        // The call threads end once the jobs channel is gone (after their
        // call in flight); the scope waits for them.
        drop(job_tx);
        end
    })
}

fn call_thread(connector: &LiveConnector, turn: Turn<'_>, jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>) {
    loop {
        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let Job { id, tasks, places, until, token } = job;
        if !turn.is_current() {
            // Not called: the tasks go back to the window, and the run
            // finds its turn over before handing out another call.
            let not_called = Done {
                id,
                tasks,
                places,
                responses: Vec::new(),
                answer: Answer::Given,
                elapsed: Duration::ZERO,
                writes: Vec::new(),
            };
            if done.send(not_called).is_err() {
                return;
            }
            continue;
        }
        let started = Instant::now();
        let refs: Vec<&Queued> = tasks.iter().collect();
        // A panic here would leave the run waiting for this call for ever:
        // it comes back as a call without an answer, its tasks still queued.
        let scope = state_store::Pending::new();
        let (responses, answer) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            state_store::within(Some(scope.clone()), || {
                start_by::within(until, || deliver_all(connector, &refs, token))
            })
        }))
        .unwrap_or_else(|_| {
            tracing::error!(connector = %connector.name, "a call thread panicked; its tasks stay queued");
            (Vec::new(), Answer::Lost)
        });
        let elapsed = started.elapsed();
        let writes = scope.take();
        if done.send(Done { id, tasks, places, responses, answer, elapsed, writes }).is_err() {
            return;
        }
    }
}

/// The keys of the calls in flight.
#[derive(Default)]
struct Busy {
    /// Per key: calls that refer to it, calls that own it.
    keys: HashMap<Key, [usize; 2]>,
    all: usize,
    calls: HashMap<u64, Vec<Keys>>,
}

impl Busy {
    fn conflicts(&self, keys: &Keys) -> bool {
        if self.all > 0 {
            return true;
        }
        match keys {
            Keys::All => !self.calls.is_empty(),
            Keys::Of(list) => list.iter().any(|(k, access)| {
                self.keys.get(k).is_some_and(|[refers, owns]| *owns > 0 || (*access == Access::Own && *refers > 0))
            }),
        }
    }

    fn hold(&mut self, keys: &Keys) {
        match keys {
            Keys::All => self.all += 1,
            Keys::Of(list) => {
                for (k, access) in list {
                    self.keys.entry(k.clone()).or_default()[usize::from(*access == Access::Own)] += 1;
                }
            }
        }
    }

    fn release(&mut self, id: u64) {
        for keys in self.calls.remove(&id).unwrap_or_default() {
            match keys {
                Keys::All => self.all -= 1,
                Keys::Of(list) => {
                    for (k, access) in list {
                        if let Some(counts) = self.keys.get_mut(&k) {
                            counts[usize::from(access == Access::Own)] -= 1;
                            if counts == &[0, 0] {
                                self.keys.remove(&k);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Why a run stopped handing out calls early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    /// Going on.
    No,
    /// The instance was replaced or the lease is in doubt: no further call.
    Interrupted,
}

struct Scheduler {
    most: usize,
    group_size: usize,
    read_ahead: usize,
    retry_failed: bool,
    window: VecDeque<Pending>,
    exhausted: bool,
    parked: Held,
    busy: Busy,
    next_id: u64,
    /// The place the next task read gets.
    next_place: u64,
    /// The call retrying a failed task, alone, while it is in flight.
    probe: Option<u64>,
    /// A task failed in this run.
    failed: bool,
    /// Failed chains were passed over until their retry.
    waiting: bool,
    halt: Halt,
}

impl Scheduler {
    fn new(run: &Run<'_>, connector: &LiveConnector) -> Scheduler {
        let most = connector.delivery.calls_at_once();
        let group_size = connector.delivery_batch();
        Scheduler {
            most,
            group_size,
            read_ahead: (most * group_size * 4).max(run.config.batch_size as usize).min(MAX_WINDOW),
            retry_failed: run.kind == RunKind::Manual || run.retries == Retries::Due,
            window: VecDeque::new(),
            exhausted: false,
            parked: Held::default(),
            busy: Busy::default(),
            next_id: 0,
            next_place: 0,
            probe: None,
            failed: false,
            waiting: false,
            halt: Halt::No,
        }
    }

    fn drain(
        &mut self,
        run: &mut Run<'_>,
        state: &mut Delivering,
        jobs: &Sender<Job>,
        done: &Receiver<Done>,
        threads: &mut dyn FnMut(usize) -> bool,
    ) -> Result<RunEnd, QueueError> {
        let mut batches = run.batches(Direction::Outgoing, run.kind == RunKind::Manual);
        loop {
            while !self.exhausted && self.window.len() < self.read_ahead {
                let batch = batches.next(run.queue)?;
                self.exhausted = batch.is_empty();
                for q in batch {
                    self.next_place += 1;
                    self.window.push_back(Pending { keys: Keys::of(&q), q, place: self.next_place });
                }
            }
            let held_for = if self.halt == Halt::No { self.hand_out(run, state, jobs, threads)? } else { None };
            if self.busy.calls.is_empty() {
                if self.halt == Halt::Interrupted || (self.window.is_empty() && self.exhausted) {
                    break;
                }
                if let Some(wait) = held_for {
                    if !pause(run, wait) {
                        self.halt = Halt::Interrupted;
                    }
                }
                continue;
            }
            let result = match held_for {
                Some(wait) => done.recv_timeout(wait),
                None => done.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match result {
                Ok(d) => self.finished(run, state, d)?,
                Err(RecvTimeoutError::Timeout) => {}
                // Every call thread is gone (none could start): the calls
                // handed out are lost; they stay queued.
                Err(RecvTimeoutError::Disconnected) => {
                    self.busy = Busy::default();
                    self.halt = Halt::Interrupted;
                }
            }
        }
        run.queue.call_ended();
        state.delivered.remove(run.queue, state.key)?;
        let end = match self.halt {
            Halt::Interrupted => RunEnd::Interrupted,
            Halt::No if self.failed => RunEnd::Stopped,
            Halt::No if self.waiting => RunEnd::Waiting,
            Halt::No => RunEnd::Drained,
        };
        if end == RunEnd::Drained {
            run.connector.set_batch_failed(false);
        }
        Ok(end)
    }

    /// Hands out every task that may go now, oldest first, up to the calls
    /// allowed at once; returns how long the next call is held (the rate
    /// limit, a connector process down after a crash).
    fn hand_out(
        &mut self,
        run: &mut Run<'_>,
        state: &mut Delivering,
        jobs: &Sender<Job>,
        threads: &mut dyn FnMut(usize) -> bool,
    ) -> Result<Option<Duration>, QueueError> {
        let connector = run.connector;
        if self.probe.is_some() {
            return Ok(None);
        }
        let mut earlier = Held::default();
        let mut group: Vec<(Queued, Keys, u64)> = Vec::new();
        let mut window = CallWindow::Closed;
        let mut i = 0;
        while i < self.window.len() {
            let p = &self.window[i];
            if let Some(by) = self.parked.blocker(&p.keys, p.place) {
                // Behind a failed task: parked with its chain.
                let p = self.window.remove(i).expect("index in range");
                self.parked.add(&p.keys, by, p.place);
                continue;
            }
            if p.q.failed && !self.retry_failed {
                let p = self.window.remove(i).expect("index in range");
                self.parked.add(&p.keys, p.q.task_id, p.place);
                self.waiting = true;
                continue;
            }
            if earlier.blocker(&p.keys, p.place).is_some() || self.busy.conflicts(&p.keys) {
                earlier.add(&p.keys, p.q.task_id, p.place);
                i += 1;
                continue;
            }
            // A retried task goes alone: once the calls in flight are done.
            let probe = p.q.failed;
            if probe && (!group.is_empty() || !self.busy.calls.is_empty()) {
                break;
            }
            if group.is_empty() {
                if self.busy.calls.len() >= self.most {
                    break;
                }
                if let Some(wait) = connector.down_for() {
                    return Ok(Some(wait));
                }
                if let Some(wait) = connector.rate.as_ref().and_then(|r| r.take()) {
                    return Ok(Some(wait));
                }
                window = run.call_window(Direction::Outgoing);
                if window == CallWindow::Closed {
                    self.halt = Halt::Interrupted;
                    break;
                }
            }
            let p = self.window.remove(i).expect("index in range");
            let q = match decide(connector, &p.q) {
                Ok(Some(q)) => q.into_owned(),
                // No custom subscription matched: removed without a call.
                Ok(None) => {
                    run.recorder.passed(p.q.task_id);
                    state.delivered.kept.push(p.q.sync_id);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(connector = %connector.name, task = p.q.task_id, error = %e, "cannot ask the custom subscriptions");
                    p.q
                }
            };
            // Later tasks of this scan that share a key wait for this call.
            earlier.add(&p.keys, q.task_id, p.place);
            group.push((q, p.keys, p.place));
            if probe {
                self.probe = self.send(std::mem::take(&mut group), window, jobs, threads);
                break;
            }
            if group.len() >= self.group_size {
                self.send(std::mem::take(&mut group), window, jobs, threads);
            }
        }
        if !group.is_empty() {
            self.send(group, window, jobs, threads);
        }
        Ok(None)
    }

    /// Hands a call to a call thread; returns its ID.
    fn send(
        &mut self,
        group: Vec<(Queued, Keys, u64)>,
        window: CallWindow,
        jobs: &Sender<Job>,
        threads: &mut dyn FnMut(usize) -> bool,
    ) -> Option<u64> {
        let CallWindow::Open { until, token } = window else { return None };
        let mut tasks = Vec::with_capacity(group.len());
        let mut keys = Vec::with_capacity(group.len());
        let mut places = Vec::with_capacity(group.len());
        for (q, k, place) in group {
            tasks.push(q);
            keys.push(k);
            places.push(place);
        }
        let id = self.next_id;
        self.next_id += 1;
        for k in &keys {
            self.busy.hold(k);
        }
        self.busy.calls.insert(id, keys);
        let busy = self.busy.calls.len() - 1;
        if !threads(busy) || jobs.send(Job { id, tasks, places, until, token }).is_err() {
            // No thread to make the call: it stays queued.
            self.busy.release(id);
            self.halt = Halt::Interrupted;
            return None;
        }
        Some(id)
    }

    /// Records a call's results; tasks it did not get to go back to the
    /// window, and a failed task parks its keys.
    fn finished(&mut self, run: &mut Run<'_>, state: &mut Delivering, d: Done) -> Result<(), QueueError> {
        let Done { id, tasks, places, responses, answer, elapsed, writes } = d;
        let keys = self.busy.calls.get(&id).cloned().unwrap_or_default();
        self.busy.release(id);
        if self.probe == Some(id) {
            self.probe = None;
        }
        if answer == Answer::Lost {
            // The connector is in trouble: the calls beside a crash would
            // go down with the next one. One call of one task at a time for
            // the rest of the run.
            self.most = 1;
            self.group_size = 1;
        }
        // As the result table is recorded: nothing after an `Error` counts
        // (those tasks stay queued and go again).
        let mut results: Vec<IntegrationProcessResult> = responses.iter().map(|r| r.result).collect();
        if let Some(at) = results.iter().position(|r| *r == IntegrationProcessResult::Error) {
            results.truncate(at + 1);
        }
        let refs: Vec<&Queued> = tasks.iter().collect();
        state.record(run, &refs, responses, elapsed, writes)?;
        let results = results.into_iter().map(Some).chain(std::iter::repeat(None));
        for (((q, keys), place), result) in tasks.into_iter().zip(keys).zip(places).zip(results) {
            match result {
                Some(IntegrationProcessResult::Error) => {
                    self.failed = true;
                    self.parked.add(&keys, q.task_id, place);
                }
                // Left for the next run, which comes after a pause: its
                // chain waits with it.
                Some(IntegrationProcessResult::SkipNow) => {
                    self.waiting = true;
                    self.parked.add(&keys, q.task_id, place);
                }
                Some(_) => {}
                None => {
                    let at = self.window.partition_point(|p| p.place < place);
                    self.window.insert(at, Pending { q, keys, place });
                }
            }
        }
        Ok(())
    }
}
