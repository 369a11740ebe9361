//! Worker threads: one per loaded connector and direction. The generic part
//! lives here (waiting, settings, retries, synchronize requests); what a run
//! does with the queue is a [`Drain`] (outgoing: deliver to the connector;
//! incoming: apply to the content store).

mod thread;

use crate::backend::{CallWindow, QueueError, QueueKey, QueueSession, Queues};
use crate::connector::LiveConnector;
use crate::manager::{ConnectorManager, ConnectorSet};
use crate::metrics::Metrics;
use crate::queue::{Direction, Queued, Selection};
use crate::settings::Settings;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use thread::{Job, Worker};

pub use crate::task_result::TaskResult;

/// What a run does with one connector's queue of one direction.
pub(crate) trait Drain: Send + Sync + 'static {
    /// Which queue the drain works on.
    fn direction(&self) -> Direction;
    /// Whether the settings allow processing.
    fn enabled(&self, settings: &Settings) -> bool;
    /// Whether runs start by themselves (new tasks, retries after an error),
    /// or only when asked (incoming: scheduler, notify, synchronize).
    fn automatic(&self) -> bool;
    /// Processes the run's tasks in creation order. Before each call into
    /// the connector it checks [`Run::is_current`] and ends the run with
    /// [`RunEnd::Interrupted`] once the instance was replaced or unloaded.
    fn process(&self, run: &mut Run<'_>) -> Result<RunEnd, QueueError>;
}

/// Which tasks a run takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunKind {
    /// Started by the worker itself (a new task, a retry): passes over tasks
    /// skipped after ErrorAndSkip.
    Automatic,
    /// A synchronize request: includes the tasks passed over before.
    Manual,
}

/// Whether a run retries the tasks that failed before (`object` ordering:
/// a run that new tasks started passes over failed chains until their
/// retry is due).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retries {
    /// A retry was due, or a synchronize request asked.
    Due,
    /// Started by new tasks while a retry is pending.
    NotYet,
}

/// Everything one run of a drain works with.
pub(crate) struct Run<'a> {
    /// The worker's session with the database (the storage seam): reads
    /// the queue, records deliveries and failures. No write it makes is
    /// held open across a call into a connector or the change pipeline.
    pub queue: &'a mut dyn QueueSession,
    pub connector: &'a LiveConnector,
    pub selection: &'a Selection,
    pub kind: RunKind,
    /// Whether tasks that failed before are retried in this run.
    pub retries: Retries,
    /// The first tasks of the queue as the change pipeline handed them over
    /// (see [`Workers::hand_over`]); the rest is read from the database.
    pub handed: Vec<Queued>,
    pub config: &'a WorkerConfig,
    pub recorder: Recorder<'a>,
    turn: Turn<'a>,
}

impl Run<'_> {
    /// True while this run's connector instance is still the worker's: a
    /// reinitialization or an unload ends the turn, and the run makes no
    /// further call; so does a lease this daemon no longer surely holds
    /// (a shared database), before the reinitialization that follows.
    pub(crate) fn is_current(&self, direction: Direction) -> bool {
        self.call_window(direction) != CallWindow::Closed
    }

    /// Whether a call into the connector for this run's queue in
    /// `direction` may start now, with its deadline and fencing token.
    pub(crate) fn call_window(&self, direction: Direction) -> CallWindow {
        if !self.turn.is_current() {
            return CallWindow::Closed;
        }
        self.queue.call_window(self.key(direction))
    }

    /// Reads the run's tasks, oldest first, a batch at a time.
    pub(crate) fn batches(&mut self, direction: Direction, include_skipped: bool) -> Batches {
        Batches::new(self.selection, self.key(direction), include_skipped, self.config.batch_size)
            .starting_with(std::mem::take(&mut self.handed))
    }

    /// This run's queue in `direction`.
    pub(crate) fn key(&self, direction: Direction) -> QueueKey {
        QueueKey { connector_id: self.connector.id, direction }
    }
}

impl<'a> Run<'a> {
    /// The run's turn, for a thread of the run that calls the connector:
    /// it checks [`Turn::is_current`] right before each call.
    pub(crate) fn turn(&self) -> Turn<'a> {
        self.turn
    }
}

/// A worker's turn with one connector instance: it lasts while the worker's
/// generation is the one the run started in.
#[derive(Clone, Copy)]
pub(crate) struct Turn<'a> {
    generation: &'a std::sync::atomic::AtomicU64,
    mine: u64,
}

impl Turn<'_> {
    pub(crate) fn is_current(&self) -> bool {
        self.generation.load(std::sync::atomic::Ordering::SeqCst) == self.mine
    }
}

/// Where a drain reports each task it processed: the metrics always, and the
/// outcome list of a synchronize request.
pub struct Recorder<'a> {
    pub metrics: &'a Metrics,
    pub connector: &'a str,
    pub direction: &'static str,
    pub outcomes: Option<&'a mut Vec<TaskOutcome>>,
    /// The newest task recorded so far.
    pub newest: i64,
}

impl Recorder<'_> {
    /// A task the run passed without a call (no custom subscription matched).
    pub fn passed(&mut self, task_id: i64) {
        self.newest = self.newest.max(task_id);
    }

    pub fn record(&mut self, task_id: i64, result: TaskResult, error: Option<String>, elapsed: Duration) {
        self.newest = self.newest.max(task_id);
        self.metrics.record(self.connector, self.direction, result, error.as_deref(), elapsed);
        if let Some(outcomes) = self.outcomes.as_deref_mut() {
            outcomes.push(TaskOutcome { task_id, connector: self.connector.to_owned(), result, error });
        }
    }
}

/// Reads the selected tasks of one connector's queue, oldest first, a batch
/// at a time: all of them (from a cursor), or the given IDs in creation order.
pub(crate) struct Batches {
    /// Tasks handed over with the wake-up: the first batch.
    handed: Vec<Queued>,
    ids: Option<std::vec::IntoIter<i64>>,
    cursor: i64,
    key: QueueKey,
    include_skipped: bool,
    batch_size: u32,
    /// Tasks this run looked at (read from the head: see [`Self::next`]).
    looked: std::collections::BTreeSet<i64>,
}

/// Past this many tasks looked at and still queued (SkipNow, skipped), a
/// run reads on from a cursor instead of from the head.
const MAX_LOOKED: usize = 1000;

impl Batches {
    fn new(selection: &Selection, key: QueueKey, include_skipped: bool, batch_size: u32) -> Self {
        let ids = match selection {
            Selection::Ids(ids) => {
                let mut ids = ids.clone();
                ids.sort_unstable();
                ids.dedup();
                Some(ids.into_iter())
            }
            Selection::All => None,
        };
        Batches { handed: Vec::new(), ids, cursor: 0, key, include_skipped, batch_size, looked: Default::default() }
    }

    /// Starts with `handed`, the head of the queue, before reading on.
    fn starting_with(mut self, handed: Vec<Queued>) -> Self {
        self.handed = handed;
        self
    }

    /// The next batch; empty when the selection is done.
    pub(crate) fn next(&mut self, queue: &mut dyn QueueSession) -> Result<Vec<Queued>, QueueError> {
        let batch = match &mut self.ids {
            // (Looked at, like a batch read from the head: a handed task
            // still queued after its call is not read and called again.)
            _ if !self.handed.is_empty() => {
                let handed = std::mem::take(&mut self.handed);
                self.looked.extend(handed.iter().map(|q| q.task_id));
                handed
            }
            // Where task IDs need not follow commit order (several daemons
            // writing at once), a task committed late may have an ID below
            // the cursor: every batch is read from the head instead, past
            // the tasks this run already looked at.
            None if queue.ids_follow_commits() || self.looked.len() > MAX_LOOKED => {
                queue.next_batch(self.key, self.cursor, self.batch_size, self.include_skipped)?
            }
            None => {
                let extra = u32::try_from(self.looked.len()).unwrap_or(u32::MAX);
                let head =
                    queue.next_batch(self.key, 0, self.batch_size.saturating_add(extra), self.include_skipped)?;
                // What the head still shows of the tasks looked at stays
                // looked at; the delivered ones are gone from it — known
                // only when the head came whole (a head cut at its limit
                // may leave out tasks still queued, which must stay looked
                // at, or they would be read and delivered again).
                if head.len() < self.batch_size.saturating_add(extra) as usize {
                    self.looked.retain(|id| head.iter().any(|q| q.task_id == *id));
                }
                let batch: Vec<Queued> = head
                    .into_iter()
                    .filter(|q| !self.looked.contains(&q.task_id))
                    .take(self.batch_size as usize)
                    .collect();
                self.looked.extend(batch.iter().map(|q| q.task_id));
                batch
            }
            Some(ids) => match ids.next() {
                Some(id) => queue.queued_task(self.key, id)?.into_iter().collect(),
                None => Vec::new(),
            },
        };
        if let Some(last) = batch.iter().map(|q| q.task_id).max() {
            self.cursor = self.cursor.max(last);
        }
        Ok(batch)
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunEnd {
    /// Every task was looked at.
    Drained,
    /// A task stopped the queue.
    Stopped,
    /// The connector instance was replaced or unloaded: the run made no
    /// further call after the one in flight.
    Interrupted,
    /// Every task was looked at but the failed chains passed over: their
    /// retry stays as scheduled.
    Waiting,
}

/// Timing of the workers (from `bus.toml`).
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// The first retry after an `Error` comes this much later; each further
    /// failure doubles it, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How many tasks are read per query.
    pub batch_size: u32,
    /// How many delivered tasks are removed per transaction. 1 (the
    /// default) means a crash repeats at most the one task in flight; N
    /// repeats at most N, for fewer commits.
    pub delete_batch: usize,
    /// How often an idle worker checks for tasks logged by another process
    /// and for settings changed elsewhere.
    pub idle_poll: Duration,
    /// Whether runs start by themselves or only when asked.
    pub start: Start,
}

/// What starts a worker's runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// New tasks, due retries, wake-ups (the scheduler, `notify`, a
    /// connector's request) and, for outgoing queues, the idle poll — the
    /// bus as it runs.
    #[default]
    ByItself,
    /// Only requests ([`Workers::synchronize`], [`Workers::run_now`]),
    /// answered when their run ends: nothing happens between two of them
    /// (the connector test harness, where a test decides when tasks are
    /// delivered).
    OnRequest,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            batch_size: 256,
            delete_batch: 1,
            idle_poll: Duration::from_secs(2),
            start: Start::ByItself,
        }
    }
}

/// What happened to one task for one connector in a synchronize action.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct TaskOutcome {
    pub task_id: i64,
    pub connector: String,
    pub result: TaskResult,
    pub error: Option<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SynchronizeError {
    #[error("connector `{0}` is not loaded, so its tasks cannot be processed")]
    NotLoaded(String),
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// Why a worker did not run a synchronize request (its reply).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("the connector was unloaded")]
    Unloaded,
    #[error("processing of {} tasks is disabled in the settings", .0.name())]
    Disabled(Direction),
    #[error("the connector was reinitialized or unloaded during the run; synchronize again")]
    Interrupted,
    #[error("the database cannot be reached: {0}")]
    Database(String),
}

/// One worker per loaded connector for one direction.
pub struct Workers {
    queues: Arc<dyn Queues>,
    config: WorkerConfig,
    drain: Arc<dyn Drain>,
    metrics: Arc<Metrics>,
    workers: Mutex<BTreeMap<String, Worker>>,
    /// Threads of stopped workers that may still be finishing a call: a
    /// new worker for the same connector waits for its predecessor, so a
    /// queue is never drained by two threads.
    retiring: Mutex<BTreeMap<String, Retiring>>,
    /// Wakes the worker of a connector that runs on another daemon.
    elsewhere: std::sync::OnceLock<RemoteWake>,
}

/// Wakes a connector's worker on the daemon that runs it.
pub(crate) type RemoteWake = Box<dyn Fn(&str) + Send + Sync>;

/// A stopped worker's thread.
type Retiring = std::thread::JoinHandle<()>;

impl Workers {
    pub(crate) fn new(
        queues: Arc<dyn Queues>,
        config: WorkerConfig,
        drain: Arc<dyn Drain>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Workers {
            queues,
            config,
            drain,
            metrics,
            workers: Mutex::new(BTreeMap::new()),
            retiring: Mutex::new(BTreeMap::new()),
            elsewhere: std::sync::OnceLock::new(),
        })
    }

    /// Keeps one worker per loaded connector, following every
    /// reinitialization of `manager`.
    pub fn follow(self: &Arc<Self>, manager: &ConnectorManager) {
        self.update(&manager.current());
        let me = Arc::downgrade(self);
        manager.on_reload(Box::new(move |set| {
            if let Some(me) = me.upgrade() {
                me.update(set);
            }
        }));
    }

    /// The workers that cannot reach the database: since how long, and why.
    pub fn troubles(&self) -> BTreeMap<String, (std::time::Duration, String)> {
        self.workers()
            .iter()
            .filter_map(|(name, w)| w.trouble().map(|(since, why)| (name.clone(), (since.elapsed(), why))))
            .collect()
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Worker>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts, switches and stops workers to match a connector set. A
    /// worker that switches to a new instance, or stops, first finishes the
    /// call in flight and makes no further call with the old instance; a new
    /// worker for a connector whose previous worker is still finishing a call
    /// starts draining only once that thread has ended.
    pub fn update(&self, set: &ConnectorSet) {
        let mut workers = self.workers();
        let mut retiring = self.retiring.lock().unwrap_or_else(|p| p.into_inner());
        retiring.retain(|_, t| !t.is_finished());
        // Connectors another daemon runs have their worker there.
        let here = |name: &str| set.live.get(name).is_some_and(|l| l.runs_on().is_none());
        let stopped: Vec<String> = workers.keys().filter(|n| !here(n)).cloned().collect();
        for name in stopped {
            if let Some(w) = workers.remove(&name) {
                retiring.insert(name, w.stop());
            }
        }
        for (name, live) in set.live.iter().filter(|(name, _)| here(name)) {
            match workers.get(name) {
                Some(w) => w.replace(live.clone()),
                None => match Worker::spawn(
                    live.clone(),
                    self.queues.clone(),
                    self.config,
                    self.drain.clone(),
                    self.metrics.clone(),
                    retiring.remove(name),
                ) {
                    Ok(w) => {
                        workers.insert(name.clone(), w);
                    }
                    Err(e) => {
                        tracing::error!(connector = %name, error = %e, "cannot start the connector's worker thread")
                    }
                },
            }
        }
    }

    /// Gives workers the tasks that now head their (so far empty) queues,
    /// read by the change pipeline, and wakes them: they call the connector
    /// without reading the queue first.
    pub(crate) fn hand_over(&self, handed: Vec<(String, Queued)>) {
        if handed.is_empty() {
            return;
        }
        let workers = self.workers();
        for (name, task) in handed {
            if let Some(w) = workers.get(&name) {
                w.hand_over(task);
            }
        }
    }

    /// Wakes the workers of these connectors (their queues got tasks).
    pub fn wake<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let workers = self.workers();
        for name in names {
            match (workers.get(name), self.elsewhere.get()) {
                (Some(w), _) => w.wake(),
                (None, Some(elsewhere)) => elsewhere(name),
                (None, None) => {}
            }
        }
    }

    /// Tells every worker the settings changed (e.g. processing was
    /// switched on): they read them again and process their queues.
    /// Wakes the workers of these connectors that run here (a wake-up that
    /// came from another daemon is never passed on).
    pub(crate) fn wake_here<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let workers = self.workers();
        for name in names {
            if let Some(w) = workers.get(name) {
                w.wake();
            }
        }
    }

    /// How connectors running on other daemons are woken (set once).
    pub(crate) fn wake_elsewhere_with(&self, wake: RemoteWake) {
        let _ = self.elsewhere.set(wake);
    }

    pub fn wake_all(&self) {
        self.workers().values().for_each(Worker::settings_changed);
    }

    /// Processes tasks of one connector now, in creation order, through its
    /// worker (so they never run twice at once), and waits for the outcome.
    /// Tasks passed over earlier (ErrorAndSkip, SkipOnError) are retried too.
    pub fn synchronize(&self, connector: &str, selection: Selection) -> Result<Vec<TaskOutcome>, SynchronizeError> {
        self.run_and_wait(connector, selection, RunKind::Manual)
    }

    /// Runs one connector's queue now as its worker runs it by itself (a
    /// new task, a due retry, the scheduler's request) — tasks passed over
    /// earlier stay passed over, an incoming task marked Error blocks the
    /// queue, a SkipOnce task is passed over once — and waits for the
    /// outcome (the connector test harness, whose workers run only when
    /// asked: [`Start::OnRequest`]).
    pub fn run_now(&self, connector: &str) -> Result<Vec<TaskOutcome>, SynchronizeError> {
        self.run_and_wait(connector, Selection::All, RunKind::Automatic)
    }

    fn run_and_wait(
        &self,
        connector: &str,
        selection: Selection,
        kind: RunKind,
    ) -> Result<Vec<TaskOutcome>, SynchronizeError> {
        let (reply, outcome) = mpsc::channel();
        {
            let workers = self.workers();
            let w = workers.get(connector).ok_or_else(|| SynchronizeError::NotLoaded(connector.to_owned()))?;
            w.submit(Job { selection, kind, reply });
        }
        match outcome.recv() {
            Ok(Ok(outcomes)) => Ok(outcomes),
            Ok(Err(refusal)) => Err(SynchronizeError::Refused(refusal)),
            Err(_) => Err(SynchronizeError::NotLoaded(connector.to_owned())),
        }
    }

    /// Stops every worker (daemon shutdown); does not wait for calls in
    /// flight.
    /// Stops every worker and waits up to `SETTLE` for their calls in
    /// flight to end (a hung connector is not waited for longer).
    pub(crate) fn stop_all(&self) {
        const SETTLE: std::time::Duration = std::time::Duration::from_secs(3);
        let threads: Vec<Retiring> = {
            let mut workers = self.workers();
            let mut threads: Vec<Retiring> = std::mem::take(&mut *workers).into_values().map(Worker::stop).collect();
            threads.extend(std::mem::take(&mut *self.retiring.lock().unwrap_or_else(|p| p.into_inner())).into_values());
            threads
        };
        let deadline = std::time::Instant::now() + SETTLE;
        while threads.iter().any(|t| !t.is_finished()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::SqliteQueues;
    use crate::testing;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Records each run that may call the connector: the instance it runs
    /// with and the phase of the test it started in; counts runs in
    /// progress at once.
    #[derive(Default)]
    struct Recording {
        phase: AtomicUsize,
        running: AtomicUsize,
        most_at_once: AtomicUsize,
        runs: Mutex<Vec<(usize, String)>>,
    }

    impl Drain for Recording {
        fn direction(&self) -> Direction {
            Direction::Outgoing
        }
        fn enabled(&self, _settings: &Settings) -> bool {
            true
        }
        fn automatic(&self) -> bool {
            true
        }
        fn process(&self, run: &mut Run<'_>) -> Result<RunEnd, QueueError> {
            // Read before the turn: the test moves to the next phase only
            // after the replacement, so a later phase implies a turn check
            // that sees it.
            let phase = self.phase.load(Ordering::SeqCst);
            // As the real drains do before every call into the connector.
            if !run.is_current(Direction::Outgoing) {
                return Ok(RunEnd::Interrupted);
            }
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            self.runs
                .lock()
                .unwrap()
                .push((phase, run.connector.info.connector_name.clone() + &run.connector.loaded_at));
            std::thread::sleep(Duration::from_millis(20));
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(RunEnd::Drained)
        }
    }

    fn set(live: &[Arc<LiveConnector>]) -> ConnectorSet {
        ConnectorSet { live: live.iter().map(|c| (c.name.clone(), c.clone())).collect(), ..Default::default() }
    }

    fn instance(id: i64) -> (Arc<LiveConnector>, String) {
        let live = testing::live::<testing::Quiet>(id, "A", "");
        let key = live.info.connector_name.clone() + &live.loaded_at;
        // loaded_at has millisecond resolution: keep instances apart.
        std::thread::sleep(Duration::from_millis(3));
        (live, key)
    }

    fn wait_for_run(drain: &Recording, phase: usize) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((_, key)) = drain.runs.lock().unwrap().iter().find(|(p, _)| *p == phase) {
                return key.clone();
            }
            assert!(std::time::Instant::now() < deadline, "no run in phase {phase}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn one_worker_per_queue_follows_replacements_and_restarts_without_overlap() {
        let (_dir, db, ids) = testing::database(&["A"]);
        let drain = Arc::new(Recording::default());
        let queues = Arc::new(SqliteQueues::new(db));
        let workers = Workers::new(queues, WorkerConfig::default(), drain.clone(), Arc::new(Metrics::default()));
        let (first, first_key) = instance(ids[0]);
        workers.update(&set(std::slice::from_ref(&first)));
        assert_eq!(wait_for_run(&drain, 0), first_key);

        // A reinitialization: the same worker goes on with the new instance.
        let (second, second_key) = instance(ids[0]);
        workers.update(&set(std::slice::from_ref(&second)));
        drain.phase.store(1, Ordering::SeqCst);
        for _ in 0..5 {
            workers.wake(["A"]);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(wait_for_run(&drain, 1), second_key);

        // Unloaded, then loaded again while the old thread may still run:
        // the new worker waits for it.
        workers.update(&set(&[]));
        let (third, third_key) = instance(ids[0]);
        workers.update(&set(&[third]));
        drain.phase.store(2, Ordering::SeqCst);
        workers.wake(["A"]);
        assert_eq!(wait_for_run(&drain, 2), third_key);
        workers.stop_all();

        let runs = drain.runs.lock().unwrap().clone();
        assert!(
            runs.iter().all(|(phase, key)| *phase == 0 || *key != first_key),
            "no run with the replaced instance after the replacement: {runs:?}"
        );
        assert!(runs.iter().all(|(phase, key)| *phase < 2 || *key == third_key), "{runs:?}");
        assert_eq!(drain.most_at_once.load(Ordering::SeqCst), 1, "one run at a time, ever");
        drop((first, second));
    }

    /// A queue whose head never changes (its tasks answered SkipNow and
    /// stay), with IDs that need not follow commits: read from the head on
    /// every batch, as on PostgreSQL.
    struct StillQueued(Vec<Queued>);

    impl QueueSession for StillQueued {
        fn settings(&mut self) -> Result<Settings, QueueError> {
            unreachable!("not read by a batch")
        }
        fn ids_follow_commits(&self) -> bool {
            false
        }
        fn newest(&mut self, _key: QueueKey) -> Result<i64, QueueError> {
            unreachable!("not read by a batch")
        }
        fn next_batch(&mut self, _: QueueKey, _: i64, limit: u32, _: bool) -> Result<Vec<Queued>, QueueError> {
            Ok(self.0.iter().take(limit as usize).cloned().collect())
        }
        fn queued_task(&mut self, _key: QueueKey, _task_id: i64) -> Result<Option<Queued>, QueueError> {
            unreachable!("no IDs selected")
        }
        fn call_begins(&mut self, _quick: bool) {}
        fn call_ended(&mut self) {}
        fn delivered(
            &mut self,
            _: QueueKey,
            _: &[i64],
            _: &crate::state_store::Writes,
            _: bool,
        ) -> Result<(), QueueError> {
            unreachable!("nothing delivered")
        }
        fn remove_recorded(&mut self) -> Result<(), QueueError> {
            unreachable!("nothing delivered")
        }
        fn complete(&mut self, _key: QueueKey, _sync_ids: &[i64]) -> Result<(), QueueError> {
            unreachable!("nothing delivered")
        }
        fn record_failure(&mut self, _: QueueKey, _: i64, _: &str, _: bool) -> Result<(), QueueError> {
            unreachable!("nothing failed")
        }
        fn mark_run(&mut self, _key: QueueKey, _sync_id: i64) -> Result<(), QueueError> {
            unreachable!("not by a batch")
        }
        fn set_process_type(
            &mut self,
            _: QueueKey,
            _: i64,
            _: connector_abi::IntegrationProcessType,
        ) -> Result<(), QueueError> {
            unreachable!("outgoing")
        }
    }

    #[test]
    fn a_handed_over_task_still_queued_after_its_call_is_not_read_again_in_its_run() {
        let task = |id: i64| Queued {
            sync_id: id,
            task_id: id,
            task_type: connector_abi::TaskType::CreateObject,
            task_data_type: connector_abi::TaskDataType::Simple,
            data_type: connector_abi::TaskDataType::Simple,
            process_type: None,
            site_name: None,
            title: format!("task {id}"),
            data: "{}".into(),
            matching: crate::queue::Matching::Decided,
            unreadable: None,
            failed: false,
        };
        let mut queue = StillQueued(vec![task(5), task(6)]);
        let key = QueueKey { connector_id: 1, direction: Direction::Outgoing };
        let mut batches = Batches::new(&Selection::All, key, false, 10).starting_with(vec![task(5)]);
        let ids = |batch: Vec<Queued>| batch.iter().map(|q| q.task_id).collect::<Vec<_>>();
        assert_eq!(ids(batches.next(&mut queue).unwrap()), [5], "the handed-over task first");
        assert_eq!(ids(batches.next(&mut queue).unwrap()), [6], "then the head, without the task called already");
        assert!(batches.next(&mut queue).unwrap().is_empty(), "and the run is done");
    }
}
