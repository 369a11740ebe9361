//! Scheduled tasks (`CMS_ScheduledTask`): "Process external integration
//! tasks" runs the incoming queues every interval; its interval can change at
//! run time, and every run is counted with its result.

use crate::db::{Database, DbError};
use crate::sql::{params, Conn, OptionalExtension};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;

/// The scheduled task that processes incoming tasks.
pub(crate) const PROCESS_EXTERNAL: &str = "ProcessExternalIntegrationTasks";

/// One scheduled task.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ScheduledTask {
    pub name: String,
    pub display_name: String,
    pub interval_seconds: i64,
    pub enabled: bool,
    pub last_run: Option<String>,
    pub next_run: String,
    pub last_result: Option<String>,
    pub executions: i64,
}

#[derive(Debug, Error)]
pub enum SchedulerError {
    #[error("there is no scheduled task named `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<crate::sql::SqlError> for SchedulerError {
    fn from(e: crate::sql::SqlError) -> Self {
        SchedulerError::Db(DbError::Sql(e))
    }
}

const SELECT: &str = "SELECT TaskName, TaskDisplayName, TaskIntervalSeconds, TaskEnabled, TaskLastRun, TaskNextRun, \
    TaskLastResult, TaskExecutions FROM CMS_ScheduledTask";

fn row(r: &crate::sql::Row<'_>) -> crate::sql::Result<ScheduledTask> {
    Ok(ScheduledTask {
        name: r.get(0)?,
        display_name: r.get(1)?,
        interval_seconds: r.get(2)?,
        enabled: r.get::<i64>(3)? != 0,
        last_run: r.get(4)?,
        next_run: r.get(5)?,
        last_result: r.get(6)?,
        executions: r.get(7)?,
    })
}

pub fn list(conn: &Conn) -> Result<Vec<ScheduledTask>, SchedulerError> {
    Ok(conn.prepare(&format!("{SELECT} ORDER BY TaskDisplayName"))?.query_map([], row)?.collect::<Result<_, _>>()?)
}

pub fn get(conn: &Conn, name: &str) -> Result<ScheduledTask, SchedulerError> {
    conn.query_row(&format!("{SELECT} WHERE TaskName = $1"), [name], row)
        .optional()?
        .ok_or_else(|| SchedulerError::NotFound(name.to_owned()))
}

/// Changes a task's interval and/or enabled flag; the next run moves to one
/// interval from now when the interval changes.
pub fn update(
    conn: &Conn,
    name: &str,
    interval_seconds: Option<i64>,
    enabled: Option<bool>,
) -> Result<ScheduledTask, SchedulerError> {
    get(conn, name)?;
    if let Some(i) = interval_seconds {
        if !(1..=366 * 86400).contains(&i) {
            return Err(SchedulerError::Invalid(format!("interval_seconds must be between 1 and 31622400, not {i}")));
        }
        conn.execute(
            "UPDATE CMS_ScheduledTask SET TaskIntervalSeconds = $1, \
             TaskNextRun = bus_after($1) WHERE TaskName = $2",
            params![i, name],
        )?;
    }
    if let Some(e) = enabled {
        conn.execute("UPDATE CMS_ScheduledTask SET TaskEnabled = $1 WHERE TaskName = $2", params![e, name])?;
    }
    get(conn, name)
}

/// Makes a task due now: a running daemon runs it within a tick (how the
/// command line asks a daemon in another process to run a task).
pub fn run_soon(conn: &Conn, name: &str) -> Result<ScheduledTask, SchedulerError> {
    get(conn, name)?;
    conn.execute("UPDATE CMS_ScheduledTask SET TaskNextRun = bus_now() WHERE TaskName = $1", [name])?;
    get(conn, name)
}

/// Records the result of a run.
fn record_run(conn: &Conn, name: &str, result: &str) -> Result<(), SchedulerError> {
    conn.execute("UPDATE CMS_ScheduledTask SET TaskLastResult = $1 WHERE TaskName = $2", params![result, name])?;
    Ok(())
}

/// The enabled tasks that are due, with the due time each was read with.
fn due(conn: &Conn) -> Result<Vec<(String, String)>, SchedulerError> {
    Ok(conn
        .prepare(
            "SELECT TaskName, TaskNextRun FROM CMS_ScheduledTask WHERE TaskEnabled = 1 AND TaskNextRun <= bus_now()",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

/// What a scheduled task does; returns its result text.
pub type Action = Arc<dyn Fn() -> Result<String, ActionError> + Send + Sync>;

/// Why a scheduled task's action did not run; the run is recorded as failed
/// with this text.
#[derive(Debug, Error)]
pub enum ActionError {
    #[error("the daemon is stopping")]
    Stopping,
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// Runs the actions of scheduled tasks when they are due.
pub struct Scheduler {
    db: Database,
    actions: BTreeMap<String, Action>,
}

impl Scheduler {
    pub(crate) fn new(db: Database) -> Self {
        Scheduler { db, actions: BTreeMap::new() }
    }

    pub(crate) fn register(&mut self, name: &str, action: Action) {
        self.actions.insert(name.to_owned(), action);
    }

    /// Runs one task now and records the run; returns its result.
    pub fn execute(&self, name: &str) -> Result<ScheduledTask, SchedulerError> {
        let conn = self.db.connect()?;
        get(&conn, name)?;
        conn.execute(
            "UPDATE CMS_ScheduledTask SET TaskNextRun = bus_after(TaskIntervalSeconds), TaskLastRun = bus_now(), \
             TaskExecutions = TaskExecutions + 1 WHERE TaskName = $1",
            [name],
        )?;
        self.run(&conn, name)?;
        get(&conn, name)
    }

    /// Runs a task that is due, if this daemon wins it: the next run is
    /// moved on by compare-and-set on the due time, so of several daemons
    /// sharing the database exactly one runs it per due time.
    fn run_due(&self, name: &str, due_at: &str) -> Result<(), SchedulerError> {
        let conn = self.db.connect()?;
        let won = conn.execute(
            "UPDATE CMS_ScheduledTask SET TaskNextRun = bus_after(TaskIntervalSeconds), TaskLastRun = bus_now(), \
             TaskExecutions = TaskExecutions + 1 WHERE TaskName = $1 AND TaskNextRun = $2 AND TaskEnabled = 1",
            params![name, due_at],
        )? == 1;
        if won {
            self.run(&conn, name)?;
        }
        Ok(())
    }

    /// Runs the action and records its result (the run itself was counted
    /// when it was claimed).
    fn run(&self, conn: &Conn, name: &str) -> Result<(), SchedulerError> {
        let action = self
            .actions
            .get(name)
            .ok_or_else(|| SchedulerError::Invalid(format!("scheduled task `{name}` has no action in this daemon")))?;
        let result = match action() {
            Ok(r) => r,
            Err(e) => format!("failed: {e}"),
        };
        tracing::info!(task = name, result = %result, "scheduled task ran");
        record_run(conn, name, &result)
    }

    /// Checks every `tick` for due tasks and runs them, until dropped.
    pub(crate) fn spawn(self, tick: Duration) -> std::io::Result<SchedulerHandle> {
        let (stop, stopped) = mpsc::channel::<()>();
        let me = Arc::new(self);
        let handle = me.clone();
        let join = std::thread::Builder::new().name("scheduler".into()).spawn(move || loop {
            match stopped.recv_timeout(tick) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            let due = match me.db.connect().map_err(SchedulerError::from).and_then(|c| due(&c)) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "the scheduler cannot read the scheduled tasks");
                    continue;
                }
            };
            for (name, due_at) in due {
                if let Err(e) = me.run_due(&name, &due_at) {
                    tracing::warn!(task = %name, error = %e, "a scheduled task could not run");
                }
            }
        })?;
        Ok(SchedulerHandle { scheduler: handle, stop, join: Some(join) })
    }
}

/// A running scheduler; stops when dropped.
pub(crate) struct SchedulerHandle {
    scheduler: Arc<Scheduler>,
    stop: Sender<()>,
    join: Option<JoinHandle<()>>,
}

impl SchedulerHandle {
    pub(crate) fn scheduler(&self) -> Arc<Scheduler> {
        self.scheduler.clone()
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}
