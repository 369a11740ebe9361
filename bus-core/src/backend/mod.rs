//! The storage seam of the workers: what a worker needs from the database to
//! drain one connector's queue — read it oldest first, make each delivery
//! durable before the next call, record failures, remove what is done —
//! without knowing which database it is.
//!
//! [`Queues`] is the backend; each worker opens one [`QueueSession`] and
//! keeps it (its reading connection, its place in shared commits). The
//! SQLite implementation (`sqlite.rs`) keeps its own machinery behind the
//! seam: the in-process write gate, the group commit of deliveries
//! (`group_commit.rs`) and the recorded-deliveries table
//! `Integration_Delivered`.
//!
//! Written for a second backend shared by several daemons (PostgreSQL):
//! every call names its queue with a [`QueueKey`], the unit a lease would
//! cover; a write the backend refuses because this daemon no longer owns
//! the queue is [`QueueError::Fenced`], which ends the run without recording
//! anything (the worker steps down); and a backend may make
//! [`QueueSession::delivered`] the removal itself (no recorded-deliveries
//! table, so [`QueueSession::remove_recorded`] has nothing to do).

mod group_commit;
mod postgres;
mod sqlite;

pub(crate) use group_commit::GATHER;
pub(crate) use postgres::PostgresQueues;
pub(crate) use sqlite::SqliteQueues;
// Named by the cluster too, which lies below this seam (no cycle).
pub(crate) use crate::queue::QueueKey;
pub(crate) use crate::start_by::CallWindow;

use crate::db::DbError;
use crate::queue::{Direction, Queued};
use crate::settings::Settings;
use crate::state_store::Writes;
use connector_abi::IntegrationProcessType;
use thiserror::Error;

/// Why a queue operation failed; nothing of it was written.
#[derive(Debug, Error)]
pub enum QueueError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// The queue belongs to another daemon now (its lease moved on).
    #[error("the {} queue of connector {connector_id} is no longer this daemon's", direction.name())]
    Fenced { connector_id: i64, direction: Direction },
}

impl From<crate::sql::SqlError> for QueueError {
    fn from(e: crate::sql::SqlError) -> Self {
        QueueError::Db(DbError::Sql(e))
    }
}

/// The database behind the workers.
pub(crate) trait Queues: Send + Sync + 'static {
    /// Before any worker starts: finishes what a crash interrupted (the
    /// SQLite backend removes deliveries recorded but not yet removed).
    fn recover(&self) -> Result<(), QueueError>;
    /// A session for one worker.
    fn session(&self) -> Result<Box<dyn QueueSession>, QueueError>;
    /// Whether a worker keeps its session between runs.
    fn sessions(&self) -> SessionUse {
        SessionUse::KeepOpen
    }
}

/// What a worker does with its session between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionUse {
    /// Keeps it (SQLite: a session is its place in shared commits).
    KeepOpen,
    /// Gives it back after each run (PostgreSQL: an idle worker holds no
    /// server connection; the pool lends one for the next run).
    ReturnWhenIdle,
}

/// One worker's access to its queue. Reads see committed state only and
/// pass over deliveries already made durable.
pub(crate) trait QueueSession: Send {
    /// The settings, as committed.
    fn settings(&mut self) -> Result<Settings, QueueError>;
    /// Whether, and until when, this daemon may start a call for `key`'s
    /// connector: on a shared database only while it surely holds the
    /// queue's lease (the call then carries the lease epoch).
    fn call_window(&self, _key: QueueKey) -> CallWindow {
        CallWindow::Open { until: None, token: None }
    }
    /// Whether task IDs are in commit order (one writer at a time), so a
    /// reader may go on from the last ID it read.
    fn ids_follow_commits(&self) -> bool {
        true
    }
    /// The newest task queued (0 when empty).
    fn newest(&mut self, key: QueueKey) -> Result<i64, QueueError>;
    /// Up to `limit` tasks after `after_task_id`, oldest first; tasks passed
    /// over after ErrorAndSkip only with `include_skipped`.
    fn next_batch(
        &mut self,
        key: QueueKey,
        after_task_id: i64,
        limit: u32,
        include_skipped: bool,
    ) -> Result<Vec<Queued>, QueueError>;
    /// One task, if it is still queued.
    fn queued_task(&mut self, key: QueueKey, task_id: i64) -> Result<Option<Queued>, QueueError>;
    /// A call into the connector is about to start; `quick` when the
    /// worker's last call was short (a backend sharing commits may wait for
    /// it). Ends at the next [`Self::delivered`] or [`Self::call_ended`].
    fn call_begins(&mut self, quick: bool);
    /// The call ended without a delivery to record.
    fn call_ended(&mut self);
    /// Makes the delivery of these relations durable before the worker's
    /// next call (so a crash repeats at most the call in flight), together
    /// with the connector's state `writes` made during the call; reads
    /// pass over them from the moment this returns. `next_quick`: the next
    /// call is expected to be short.
    fn delivered(
        &mut self,
        key: QueueKey,
        sync_ids: &[i64],
        writes: &Writes,
        next_quick: bool,
    ) -> Result<(), QueueError>;
    /// Removes the deliveries made durable so far, if the backend keeps
    /// them apart.
    fn remove_recorded(&mut self) -> Result<(), QueueError>;
    /// Removes processed relations (and tasks left with none) at once.
    fn complete(&mut self, key: QueueKey, sync_ids: &[i64]) -> Result<(), QueueError>;
    /// A failed attempt: the relation's last error and a sync-log row;
    /// `skipped` marks an ErrorAndSkip (automatic runs pass over the task).
    fn record_failure(&mut self, key: QueueKey, sync_id: i64, message: &str, skipped: bool) -> Result<(), QueueError>;
    /// The relation was looked at (SkipNow).
    fn mark_run(&mut self, key: QueueKey, sync_id: i64) -> Result<(), QueueError>;
    /// An incoming task's process type from now on.
    fn set_process_type(
        &mut self,
        key: QueueKey,
        task_id: i64,
        process_type: IntegrationProcessType,
    ) -> Result<(), QueueError>;
}
