//! One worker thread per connector: drains the connector's outgoing queue,
//! oldest task first, and handles each result as the specification says
//! (OK: delete; Error: sync log, stop the queue, retry later with backoff;
//! ErrorAndSkip: sync log, go on; SkipNow: leave it for the next run).

use super::payload;
use crate::connector::LiveConnector;
use crate::db::Database;
use crate::queue::{self, Queued, Selection};
use crate::settings;
use connector_abi::protocol::{kind, ProcessResponse};
use connector_abi::IntegrationProcessResult;
use rusqlite::Connection;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Timing of the workers (from `bus.toml`).
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// The first retry after an `Error` comes this much later; each further
    /// failure doubles it, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How many tasks are read per query.
    pub batch_size: u32,
    /// How often an idle worker checks for tasks logged by another process
    /// and for settings changed elsewhere.
    pub idle_poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            batch_size: 256,
            idle_poll: Duration::from_secs(2),
        }
    }
}

/// What happened to one task for one connector in a synchronize action.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TaskOutcome {
    pub task_id: i64,
    pub connector: String,
    pub result: IntegrationProcessResult,
    pub error: Option<String>,
}

/// A synchronize request handed to a worker.
pub(super) struct Job {
    pub selection: Selection,
    pub reply: mpsc::Sender<Result<Vec<TaskOutcome>, String>>,
}

#[derive(Default)]
struct State {
    connector: Option<Arc<LiveConnector>>,
    wake: bool,
    stop: bool,
    jobs: VecDeque<Job>,
    retry_at: Option<Instant>,
    failures: u32,
}

struct Shared {
    name: String,
    state: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running worker.
pub(super) struct Worker {
    shared: Arc<Shared>,
    _join: JoinHandle<()>,
}

impl Worker {
    pub fn spawn(connector: Arc<LiveConnector>, db: Database, config: WorkerConfig) -> std::io::Result<Worker> {
        let shared = Arc::new(Shared {
            name: connector.name.clone(),
            state: Mutex::new(State { connector: Some(connector), wake: true, ..Default::default() }),
            cv: Condvar::new(),
        });
        let inner = shared.clone();
        let join = std::thread::Builder::new()
            .name(format!("outgoing-{}", shared.name))
            .spawn(move || Runner { shared: inner, db, config, conn: None, last_seen: 0, was_enabled: false }.run())?;
        Ok(Worker { shared, _join: join })
    }

    /// Switches to a new instance of the connector (after a reinitialization).
    pub fn replace(&self, connector: Arc<LiveConnector>) {
        let mut st = self.shared.lock();
        st.connector = Some(connector);
        st.wake = true;
        self.shared.cv.notify_one();
    }

    /// Processes the queue now (a task was logged, or settings changed).
    pub fn wake(&self) {
        let mut st = self.shared.lock();
        st.wake = true;
        self.shared.cv.notify_one();
    }

    pub fn submit(&self, job: Job) {
        let mut st = self.shared.lock();
        st.jobs.push_back(job);
        self.shared.cv.notify_one();
    }

    /// Asks the thread to end after its current call.
    pub fn stop(&self) {
        let mut st = self.shared.lock();
        st.stop = true;
        st.connector = None;
        for job in st.jobs.drain(..) {
            let _ = job.reply.send(Err("the connector was unloaded".into()));
        }
        self.shared.cv.notify_one();
    }
}

/// Why a run ended.
enum RunEnd {
    /// Every task was looked at.
    Drained,
    /// An `Error` stopped the queue.
    Stopped,
}

struct Runner {
    shared: Arc<Shared>,
    db: Database,
    config: WorkerConfig,
    conn: Option<Connection>,
    /// The newest task this worker has seen in its queue.
    last_seen: i64,
    /// Whether outgoing processing was enabled at the last check.
    was_enabled: bool,
}

enum Wakeup {
    Stop,
    Work { connector: Arc<LiveConnector>, jobs: Vec<Job>, run_queue: bool },
    Idle(Arc<LiveConnector>),
}

impl Runner {
    fn run(mut self) {
        loop {
            match self.wait() {
                Wakeup::Stop => return,
                Wakeup::Idle(connector) => {
                    if self.has_news(&connector) {
                        self.work(&connector, Vec::new(), true);
                    }
                }
                Wakeup::Work { connector, jobs, run_queue } => self.work(&connector, jobs, run_queue),
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
            let now = Instant::now();
            let retry_due = st.retry_at.is_some_and(|at| at <= now);
            if st.wake || retry_due || !st.jobs.is_empty() {
                st.wake = false;
                if retry_due {
                    st.retry_at = None;
                }
                let run_queue = st.jobs.is_empty() || retry_due;
                return Wakeup::Work { connector, jobs: st.jobs.drain(..).collect(), run_queue };
            }
            let timeout = st.retry_at.map_or(self.config.idle_poll, |at| (at - now).min(self.config.idle_poll));
            let (guard, result) = self.shared.cv.wait_timeout(st, timeout).unwrap_or_else(|p| p.into_inner());
            st = guard;
            if result.timed_out() && st.retry_at.is_none() && st.jobs.is_empty() && !st.wake && !st.stop {
                return Wakeup::Idle(connector);
            }
        }
    }

    fn conn(&mut self) -> Option<&mut Connection> {
        if self.conn.is_none() {
            match self.db.connect() {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    tracing::warn!(connector = %self.shared.name, error = %e, "the worker cannot open the database")
                }
            }
        }
        self.conn.as_mut()
    }

    /// True when tasks arrived that this worker has not seen (logged by
    /// another process) or processing was just switched on.
    fn has_news(&mut self, connector: &LiveConnector) -> bool {
        let Some(conn) = self.conn() else { return false };
        let enabled = settings::read(conn).map(|s| s.processes_outgoing()).unwrap_or(false);
        let newest = queue::newest(conn, connector.id, false).unwrap_or(0);
        let news = enabled && (!self.was_enabled || newest > self.last_seen);
        self.was_enabled = enabled;
        news
    }

    fn work(&mut self, connector: &LiveConnector, jobs: Vec<Job>, run_queue: bool) {
        let enabled = match self.conn().map(|c| settings::read(c)) {
            Some(Ok(s)) => s.processes_outgoing(),
            Some(Err(e)) => {
                tracing::warn!(connector = %connector.name, error = %e, "cannot read the settings");
                false
            }
            None => false,
        };
        self.was_enabled = enabled;
        for job in jobs {
            if !enabled {
                let _ = job.reply.send(Err("processing of outgoing tasks is disabled in the settings".into()));
                continue;
            }
            let mut outcomes = Vec::new();
            let end = self.process(connector, &job.selection, true, &mut outcomes);
            self.after_run(end);
            let _ = job.reply.send(Ok(outcomes));
        }
        if enabled && run_queue {
            let end = self.process(connector, &Selection::All, false, &mut Vec::new());
            self.after_run(end);
        }
    }

    fn after_run(&mut self, end: Result<RunEnd, rusqlite::Error>) {
        let mut st = self.shared.lock();
        match end {
            Ok(RunEnd::Drained) => {
                st.failures = 0;
                st.retry_at = None;
            }
            Ok(RunEnd::Stopped) => {
                st.failures = st.failures.saturating_add(1);
                let factor = 1u32.checked_shl(st.failures.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
                let delay = self.config.retry_base.saturating_mul(factor).min(self.config.retry_max);
                st.retry_at = Some(Instant::now() + delay);
                tracing::info!(connector = %self.shared.name, retry_in_ms = delay.as_millis() as u64, "queue stopped by an error; retrying later");
            }
            Err(e) => {
                tracing::warn!(connector = %self.shared.name, error = %e, "the outgoing queue could not be processed");
                self.conn = None;
                st.retry_at = Some(Instant::now() + self.config.retry_base);
            }
        }
    }

    /// Processes the selected tasks of the queue in creation order.
    fn process(
        &mut self,
        connector: &LiveConnector,
        selection: &Selection,
        manual: bool,
        outcomes: &mut Vec<TaskOutcome>,
    ) -> Result<RunEnd, rusqlite::Error> {
        let batch_size = self.config.batch_size;
        let Some(conn) = self.conn() else { return Ok(RunEnd::Stopped) };
        let end = process(conn, connector, selection, manual, batch_size, outcomes)?;
        let newest = queue::newest(conn, connector.id, false)?;
        self.last_seen = self.last_seen.max(newest);
        Ok(end)
    }
}

fn process(
    conn: &mut Connection,
    connector: &LiveConnector,
    selection: &Selection,
    manual: bool,
    batch_size: u32,
    outcomes: &mut Vec<TaskOutcome>,
) -> Result<RunEnd, rusqlite::Error> {
    let mut done: Vec<i64> = Vec::new();
    let mut cursor = 0i64;
    let mut ids = match selection {
        Selection::Ids(ids) => {
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            Some(ids.into_iter())
        }
        Selection::All => None,
    };
    loop {
        let batch: Vec<Queued> = match &mut ids {
            None => queue::next_batch(conn, connector.id, false, cursor, batch_size, manual)?,
            Some(ids) => match ids.next() {
                Some(id) => queue::queued_task(conn, connector.id, false, id)?.into_iter().collect(),
                None => Vec::new(),
            },
        };
        if batch.is_empty() {
            return Ok(RunEnd::Drained);
        }
        for q in &batch {
            cursor = q.task_id;
            let response = deliver(connector, q);
            outcomes.push(TaskOutcome {
                task_id: q.task_id,
                connector: connector.name.clone(),
                result: response.result,
                error: response.error_message.clone(),
            });
            match response.result {
                IntegrationProcessResult::Ok => done.push(q.sync_id),
                IntegrationProcessResult::SkipNow => queue::mark_run(conn, q.sync_id)?,
                IntegrationProcessResult::ErrorAndSkip | IntegrationProcessResult::Error => {
                    queue::complete(conn, &done)?;
                    done.clear();
                    let message = response
                        .error_message
                        .unwrap_or_else(|| format!("the connector returned {} without a message", response.result));
                    let skip = response.result == IntegrationProcessResult::ErrorAndSkip;
                    queue::record_failure(conn, q.sync_id, &message, skip)?;
                    tracing::warn!(connector = %connector.name, task = q.task_id, result = %response.result, error = %message, "outgoing task failed");
                    if !skip {
                        return Ok(RunEnd::Stopped);
                    }
                }
            }
        }
        queue::complete(conn, &done)?;
        done.clear();
    }
}

/// Hands one task to the connector; a call that fails counts as `Error`.
fn deliver(connector: &LiveConnector, q: &Queued) -> ProcessResponse {
    let request = match payload::async_request(q) {
        Ok(r) => r,
        Err(e) => return ProcessResponse::error(e),
    };
    connector
        .request_raw::<ProcessResponse>(kind::PROCESS_ASYNC, &request)
        .unwrap_or_else(|e| ProcessResponse::error(e.to_string()))
}
