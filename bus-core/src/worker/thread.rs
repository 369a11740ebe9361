//! The worker thread of one connector and one direction: waits for work
//! (a wake-up, a synchronize request, a due retry), reads the settings, and
//! hands the queue to its [`Drain`].

use super::{Drain, Recorder, Refusal, Retries, Run, RunEnd, RunKind, Start, TaskOutcome, Turn, WorkerConfig};
use crate::backend::{QueueError, QueueKey, QueueSession, Queues, SessionUse};
use crate::connector::LiveConnector;
use crate::metrics::Metrics;
use crate::queue::{Queued, Selection};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

/// A synchronize request handed to a worker.
pub(crate) struct Job {
    pub selection: Selection,
    /// A synchronize request (`Manual`), or a run as the worker starts one
    /// by itself, answered (`Automatic`: the connector test harness).
    pub kind: RunKind,
    pub reply: mpsc::Sender<Result<Vec<TaskOutcome>, Refusal>>,
}

#[derive(Default)]
struct State {
    connector: Option<Arc<LiveConnector>>,
    wake: bool,
    /// The settings changed: read them again before the next run.
    settings_changed: bool,
    stop: bool,
    jobs: VecDeque<Job>,
    retry_at: Option<Instant>,
    failures: u32,
    /// The task heading the queue, handed over by the change pipeline. Only
    /// the newest is kept: a task heads the queue only once the one handed
    /// before it is gone.
    handed: Option<Queued>,
    /// Since when, and why, the worker cannot reach the database (cleared
    /// by the next run that could).
    trouble: Option<(Instant, String)>,
}

impl State {
    /// One more failure in a row: the queue is looked at again after a
    /// pause that doubles with each (from `retry_base`, capped at
    /// `retry_max`). Returns the pause.
    fn back_off(&mut self, config: &WorkerConfig) -> std::time::Duration {
        self.failures = self.failures.saturating_add(1);
        self.retry_later(config)
    }

    /// The retry after the failures so far: a pause that doubles with each
    /// (from `retry_base`, capped at `retry_max`). Returns the pause.
    fn retry_later(&mut self, config: &WorkerConfig) -> std::time::Duration {
        let factor = 1u32.checked_shl(self.failures.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
        let delay = config.retry_base.saturating_mul(factor).min(config.retry_max);
        // A retry already due earlier stays (a run started by new tasks
        // that failed again must not push the pending retry of the tasks
        // it passed over further away, for ever under steady traffic).
        let at = Instant::now() + delay;
        self.retry_at = Some(self.retry_at.map_or(at, |earlier| earlier.min(at)));
        delay
    }

    /// Notes why the database cannot be reached, keeping since when; true
    /// when the trouble is new.
    fn note_trouble(&mut self, error: String) -> bool {
        let since = self.trouble.as_ref().map(|(at, _)| *at);
        self.trouble = Some((since.unwrap_or_else(Instant::now), error));
        since.is_none()
    }
}

struct Shared {
    name: String,
    state: Mutex<State>,
    cv: Condvar,
    /// Bumped (under the state lock) whenever the instance is replaced or
    /// unloaded: a run started in an older generation makes no further call.
    generation: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running worker.
pub(crate) struct Worker {
    shared: Arc<Shared>,
    join: JoinHandle<()>,
}

impl Worker {
    pub(super) fn spawn(
        connector: Arc<LiveConnector>,
        queues: Arc<dyn Queues>,
        config: WorkerConfig,
        drain: Arc<dyn Drain>,
        metrics: Arc<Metrics>,
        predecessor: Option<JoinHandle<()>>,
    ) -> std::io::Result<Worker> {
        let shared = Arc::new(Shared {
            name: connector.name.clone(),
            state: Mutex::new(State { connector: Some(connector), wake: true, ..Default::default() }),
            cv: Condvar::new(),
            generation: AtomicU64::new(0),
        });
        let inner = shared.clone();
        // A thread name may not hold a NUL byte.
        let thread_name = format!("{}-{}", drain.direction().name(), shared.name.replace('\0', "?"));
        let join = std::thread::Builder::new().name(thread_name).spawn(move || {
            if let Some(previous) = predecessor {
                // The previous worker of this connector may still be in a
                // call: this one starts once it has ended.
                if !previous.is_finished() {
                    tracing::info!(connector = %inner.name, "waiting for the previous worker to finish its call");
                }
                let _ = previous.join();
            }
            Runner {
                shared: inner,
                queues,
                config,
                drain,
                metrics,
                session: None,
                last_seen: 0,
                was_enabled: false,
                settings: None,
                looked_at: 0,
            }
            .run()
        })?;
        Ok(Worker { shared, join })
    }

    /// Switches to a new instance of the connector (after a reinitialization):
    /// the run in progress ends after its call in flight.
    ///
    /// The same instance again (a connector that finished starting joined
    /// the set) changes nothing.
    pub(super) fn replace(&self, connector: Arc<LiveConnector>) {
        let mut st = self.shared.lock();
        if st.connector.as_ref().is_some_and(|c| Arc::ptr_eq(c, &connector)) {
            return;
        }
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        st.connector = Some(connector);
        st.handed = None;
        st.wake = true;
        self.shared.cv.notify_one();
    }

    /// Processes the queue now (a task was logged).
    pub(super) fn wake(&self) {
        let mut st = self.shared.lock();
        st.wake = true;
        self.shared.cv.notify_one();
    }

    /// Processes the queue now, starting with `task`, the head of the queue.
    pub(crate) fn hand_over(&self, task: Queued) {
        let mut st = self.shared.lock();
        st.handed = Some(task);
        st.wake = true;
        self.shared.cv.notify_one();
    }

    /// The settings changed: read them again at the next run. Switching
    /// processing on starts no run by itself: the queue goes at the next
    /// trigger (a new task, a synchronize request, a due retry).
    pub(crate) fn settings_changed(&self) {
        let mut st = self.shared.lock();
        st.settings_changed = true;
    }

    pub(crate) fn submit(&self, job: Job) {
        let mut st = self.shared.lock();
        st.jobs.push_back(job);
        self.shared.cv.notify_one();
    }

    /// Since when, and why, the worker cannot reach the database.
    pub(super) fn trouble(&self) -> Option<(Instant, String)> {
        self.shared.lock().trouble.clone()
    }

    /// Asks the thread to end after its current call; returns the thread,
    /// which a successor joins before it starts.
    pub(super) fn stop(self) -> JoinHandle<()> {
        {
            let mut st = self.shared.lock();
            self.shared.generation.fetch_add(1, Ordering::SeqCst);
            st.stop = true;
            st.connector = None;
            for job in st.jobs.drain(..) {
                let _ = job.reply.send(Err(Refusal::Unloaded));
            }
            self.shared.cv.notify_one();
        }
        self.join
    }
}

struct Runner {
    shared: Arc<Shared>,
    queues: Arc<dyn Queues>,
    config: WorkerConfig,
    drain: Arc<dyn Drain>,
    metrics: Arc<Metrics>,
    /// Opened on first use, reopened after an error.
    session: Option<Box<dyn QueueSession>>,
    /// The newest task this worker has seen in its queue.
    last_seen: i64,
    /// Whether outgoing processing was enabled at the last check.
    was_enabled: bool,
    /// The settings, re-read at most every [`SETTINGS_TTL`] (or when woken
    /// after a settings change).
    settings: Option<(Instant, crate::settings::Settings)>,
    /// The newest task any run looked at: a handed-over task not newer was
    /// already processed (by a run that read it from the queue).
    looked_at: i64,
}

/// How long a worker trusts the settings it read (changes made through this
/// daemon's API take effect at once; by other processes within this time).
const SETTINGS_TTL: std::time::Duration = std::time::Duration::from_millis(250);

enum Wakeup {
    Stop,
    Work(Box<Work>),
    Idle(Arc<LiveConnector>, u64),
}

/// What a wake-up asks the worker to do.
struct Work {
    connector: Arc<LiveConnector>,
    /// The generation the connector belongs to.
    generation: u64,
    jobs: Vec<Job>,
    /// Whether to run the whole queue (besides the jobs).
    run_queue: bool,
    /// Read the settings again first.
    fresh: bool,
    handed: Option<Queued>,
    /// Failed tasks are retried in this run.
    retries: Retries,
}

impl Runner {
    fn run(mut self) {
        loop {
            if self.queues.sessions() == SessionUse::ReturnWhenIdle {
                // Between runs a worker holds no server connection.
                self.session = None;
            }
            match self.wait() {
                Wakeup::Stop => return,
                Wakeup::Idle(connector, generation) => {
                    if self.drain.automatic() && self.has_news(&connector) {
                        self.work(Work {
                            connector,
                            generation,
                            jobs: Vec::new(),
                            run_queue: true,
                            fresh: false,
                            handed: None,
                            retries: self.retries_now(),
                        });
                    }
                }
                Wakeup::Work(work) => self.work(*work),
            }
        }
    }

    fn wait(&self) -> Wakeup {
        let mut st = self.shared.lock();
        loop {
            if st.stop {
                return Wakeup::Stop;
            }
            let Some(connector) = st.connector.clone() else {
                st = self.shared.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            if self.config.start == Start::OnRequest {
                // Only a synchronize request starts a run: wake-ups, retries
                // and handed-over heads are let go.
                st.wake = false;
                st.retry_at = None;
                st.handed = None;
            }
            let now = Instant::now();
            let retry_due = st.retry_at.is_some_and(|at| at <= now);
            if st.wake || retry_due || !st.jobs.is_empty() {
                st.wake = false;
                if retry_due {
                    st.retry_at = None;
                }
                let retries = if st.retry_at.is_none() { Retries::Due } else { Retries::NotYet };
                return Wakeup::Work(Box::new(Work {
                    connector,
                    generation: self.shared.generation.load(Ordering::SeqCst),
                    run_queue: st.jobs.is_empty() || retry_due,
                    jobs: st.jobs.drain(..).collect(),
                    fresh: std::mem::take(&mut st.settings_changed),
                    handed: st.handed.take(),
                    retries,
                }));
            }
            let timeout = st.retry_at.map_or(self.config.idle_poll, |at| (at - now).min(self.config.idle_poll));
            let (guard, result) = self.shared.cv.wait_timeout(st, timeout).unwrap_or_else(|p| p.into_inner());
            st = guard;
            if result.timed_out()
                && self.drain.automatic()
                && self.config.start == Start::ByItself
                && st.retry_at.is_none()
                && st.jobs.is_empty()
                && !st.wake
                && !st.stop
            {
                return Wakeup::Idle(connector, self.shared.generation.load(Ordering::SeqCst));
            }
        }
    }

    fn session(&mut self) -> Option<&mut (dyn QueueSession + 'static)> {
        if self.session.is_none() {
            match self.queues.session() {
                Ok(s) => self.session = Some(s),
                Err(e) => self.database_trouble(&format!("cannot open a database session: {e}")),
            }
        }
        self.session.as_deref_mut()
    }

    /// The database failed the worker outside a run: the session is dropped
    /// (a new one is opened next time: a server restart ends every session),
    /// the trouble noted for `/health`, and the queue looked at again after
    /// a pause that grows with each failure in a row.
    fn database_trouble(&mut self, error: &str) {
        self.session = None;
        let mut st = self.shared.lock();
        st.back_off(&self.config);
        if st.note_trouble(error.to_owned()) {
            tracing::warn!(connector = %self.shared.name, error = %error, "the worker cannot reach the database; retrying");
        }
    }

    /// True when tasks arrived that this worker has not seen (logged by
    /// another process while processing is on). Tasks logged while processing
    /// is off are not news: switching it on leaves them for the next trigger.
    fn has_news(&mut self, connector: &LiveConnector) -> bool {
        let drain = self.drain.clone();
        // Settings that cannot be read are not "processing off": the tasks
        // queued meanwhile stay news, and the worker tries again soon.
        let Some(settings) = self.settings(true) else { return false };
        let enabled = drain.enabled(&settings);
        let key = QueueKey { connector_id: connector.id, direction: drain.direction() };
        let Some(session) = self.session() else { return false };
        let newest = match session.newest(key) {
            Ok(newest) => {
                self.shared.lock().trouble = None;
                newest
            }
            Err(e) => {
                self.database_trouble(&e.to_string());
                return false;
            }
        };
        let news = enabled && self.was_enabled && newest > self.last_seen;
        if !enabled || !self.was_enabled {
            self.last_seen = self.last_seen.max(newest);
        }
        self.was_enabled = enabled;
        news
    }

    /// The settings, from the cache while it is fresh.
    fn settings(&mut self, fresh: bool) -> Option<crate::settings::Settings> {
        if let Some((at, s)) = self.settings {
            if !fresh && at.elapsed() < SETTINGS_TTL {
                return Some(s);
            }
        }
        match self.session().map(|s| s.settings()) {
            Some(Ok(s)) => {
                self.settings = Some((Instant::now(), s));
                Some(s)
            }
            Some(Err(e)) => {
                self.database_trouble(&format!("cannot read the settings: {e}"));
                None
            }
            None => None,
        }
    }

    /// Whether failed tasks are due for a retry now.
    fn retries_now(&self) -> Retries {
        match self.shared.lock().retry_at {
            Some(at) if at > Instant::now() => Retries::NotYet,
            _ => Retries::Due,
        }
    }

    fn work(&mut self, work: Work) {
        let Work { connector, generation, jobs, run_queue, fresh, handed, retries } = work;
        let connector = &*connector;
        let shared = self.shared.clone();
        // A handed-over task heads the queue only if no run got to it first
        // (and no synchronize request runs before it).
        let handed: Vec<Queued> =
            handed.filter(|t| jobs.is_empty() && t.task_id > self.looked_at).into_iter().collect();
        // A synchronize request always sees the current settings.
        let Some(settings) = self.settings(fresh || !jobs.is_empty()) else {
            // The database is away: the requests get the reason, the queue
            // a retry (`database_trouble` set it), the wake-up is kept.
            let why = self.shared.lock().trouble.clone().map(|(_, e)| e).unwrap_or_default();
            for job in jobs {
                let _ = job.reply.send(Err(Refusal::Database(why.clone())));
            }
            return;
        };
        // Processing found off in the cache is read again: it may have been
        // switched on by another process (another daemon, the CLI) since,
        // and the task that woke the worker would otherwise count as seen.
        let settings = match self.drain.enabled(&settings) {
            false if !fresh => self.settings(true).unwrap_or(settings),
            _ => settings,
        };
        let enabled = self.drain.enabled(&settings);
        self.was_enabled = enabled;
        for job in jobs {
            if !enabled {
                let _ = job.reply.send(Err(Refusal::Disabled(self.drain.direction())));
                continue;
            }
            let mut outcomes = Vec::new();
            let turn = Turn { generation: &shared.generation, mine: generation };
            let end = self.process(
                connector,
                turn,
                (&job.selection, job.kind, Retries::Due),
                Vec::new(),
                Some(&mut outcomes),
            );
            let interrupted = matches!(end, Ok(RunEnd::Interrupted));
            self.after_run(end);
            let _ = job.reply.send(if interrupted { Err(Refusal::Interrupted) } else { Ok(outcomes) });
        }
        if enabled && run_queue {
            let turn = Turn { generation: &shared.generation, mine: generation };
            let end = self.process(connector, turn, (&Selection::All, RunKind::Automatic, retries), handed, None);
            self.after_run(end);
        } else if run_queue {
            // Processing is off: a queue stopped by an error keeps its retry
            // (at the same pause as the last one: being off is no failure),
            // so it is retried by itself once processing is on again.
            let mut st = self.shared.lock();
            if st.failures > 0 && st.retry_at.is_none() {
                st.retry_later(&self.config);
            }
        }
    }

    fn after_run(&mut self, end: Result<RunEnd, QueueError>) {
        let mut st = self.shared.lock();
        if end.is_ok() {
            st.trouble = None;
        }
        match end {
            Ok(RunEnd::Drained) => {
                st.failures = 0;
                st.retry_at = None;
            }
            // Interrupted without a new instance: the lease was in doubt
            // (a shared database): look again shortly, the queue still
            // holds its tasks.
            Ok(RunEnd::Interrupted) if !st.stop => {
                st.retry_at = Some(Instant::now() + self.config.retry_base);
            }
            Ok(RunEnd::Interrupted) => {}
            // Failed chains passed over until their retry: it stays as
            // scheduled (or comes after the first pause).
            Ok(RunEnd::Waiting) => {
                if st.retry_at.is_none() {
                    st.back_off(&self.config);
                }
            }
            Ok(RunEnd::Stopped) if !self.drain.automatic() => {}
            Ok(RunEnd::Stopped) => {
                let delay = st.back_off(&self.config);
                tracing::info!(connector = %self.shared.name, retry_in_ms = delay.as_millis() as u64, "queue stopped by an error; retrying later");
            }
            Err(e) => {
                tracing::warn!(connector = %self.shared.name, direction = self.drain.direction().name(), error = %e, "the queue could not be processed");
                self.session = None;
                st.retry_at = Some(Instant::now() + self.config.retry_base);
                st.note_trouble(e.to_string());
            }
        }
    }

    /// Processes the selected tasks of the queue in creation order.
    fn process(
        &mut self,
        connector: &LiveConnector,
        turn: Turn<'_>,
        (selection, kind, retries): (&Selection, RunKind, Retries),
        handed: Vec<Queued>,
        outcomes: Option<&mut Vec<TaskOutcome>>,
    ) -> Result<RunEnd, QueueError> {
        let config = self.config;
        let drain = self.drain.clone();
        let metrics = self.metrics.clone();
        let key = QueueKey { connector_id: connector.id, direction: drain.direction() };
        let Some(queue) = self.session() else { return Ok(RunEnd::Stopped) };
        let recorder = Recorder {
            metrics: &metrics,
            connector: &connector.name,
            direction: drain.direction().name(),
            outcomes,
            newest: 0,
        };
        let mut run = Run { queue, connector, selection, kind, retries, handed, config: &config, recorder, turn };
        let end = drain.process(&mut run);
        let looked_at = run.recorder.newest;
        let queue = run.queue;
        let newest = end.and_then(|end| Ok((end, queue.newest(key)?)));
        self.looked_at = self.looked_at.max(looked_at);
        let (end, newest) = newest?;
        self.last_seen = self.last_seen.max(newest);
        Ok(end)
    }
}
