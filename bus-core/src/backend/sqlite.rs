//! The SQLite backend of the workers' queues: every worker reads through a
//! connection of its own; every write goes through the database's write
//! gate (one shared writing connection, one writer at a time); deliveries
//! are recorded in `Integration_Delivered` in commits the outgoing workers
//! share (`group_commit.rs`) and removed in batches.

use super::group_commit::{Delivering, GroupCommit};
use super::{QueueError, QueueKey, QueueSession, Queues};
use crate::db::Database;
use crate::queue::{self, Queued};
use crate::settings::{self, Settings};
use crate::sql::{params, Conn};
use crate::state_store::Writes;
use connector_abi::IntegrationProcessType;
use std::sync::Arc;

/// The queues of one SQLite database.
pub(crate) struct SqliteQueues {
    db: Database,
    group: Arc<GroupCommit>,
}

impl SqliteQueues {
    pub(crate) fn new(db: Database) -> Self {
        SqliteQueues { db, group: Arc::default() }
    }
}

impl Queues for SqliteQueues {
    fn recover(&self) -> Result<(), QueueError> {
        Ok(queue::remove_delivered(&mut *self.db.connect()?)?)
    }

    fn session(&self) -> Result<Box<dyn QueueSession>, QueueError> {
        Ok(Box::new(SqliteSession {
            conn: self.db.open_connection()?,
            db: self.db.clone(),
            group: self.group.clone(),
            call: None,
            recorded: false,
        }))
    }
}

struct SqliteSession {
    /// Reads only.
    conn: Conn,
    db: Database,
    group: Arc<GroupCommit>,
    /// The connector call in progress, counted for the group commit.
    call: Option<Delivering>,
    /// Deliveries are recorded and not removed yet.
    recorded: bool,
}

impl QueueSession for SqliteSession {
    fn settings(&mut self) -> Result<Settings, QueueError> {
        Ok(settings::read(&self.conn)?)
    }

    fn newest(&mut self, key: QueueKey) -> Result<i64, QueueError> {
        Ok(queue::newest(&self.conn, key.connector_id, key.direction)?)
    }

    fn next_batch(
        &mut self,
        key: QueueKey,
        after_task_id: i64,
        limit: u32,
        include_skipped: bool,
    ) -> Result<Vec<Queued>, QueueError> {
        Ok(queue::next_batch(&self.conn, key.connector_id, key.direction, after_task_id, limit, include_skipped)?)
    }

    fn queued_task(&mut self, key: QueueKey, task_id: i64) -> Result<Option<Queued>, QueueError> {
        Ok(queue::queued_task(&self.conn, key.connector_id, key.direction, task_id)?)
    }

    fn call_begins(&mut self, quick: bool) {
        if self.call.is_none() {
            self.call = Some(self.group.delivering(quick));
        }
    }

    fn call_ended(&mut self) {
        self.call = None;
    }

    fn delivered(
        &mut self,
        key: QueueKey,
        sync_ids: &[i64],
        writes: &Writes,
        next_quick: bool,
    ) -> Result<(), QueueError> {
        let call = self.call.take().unwrap_or_else(|| self.group.delivering(false));
        let state = (key.connector_id, writes.as_slice());
        self.call = Some(self.group.record_delivered(self.db.gate(), sync_ids, state, call, next_quick)?);
        self.recorded = true;
        Ok(())
    }

    fn remove_recorded(&mut self) -> Result<(), QueueError> {
        if std::mem::take(&mut self.recorded) {
            queue::remove_delivered(&mut self.db.gate().enter())?;
        }
        Ok(())
    }

    fn complete(&mut self, _key: QueueKey, sync_ids: &[i64]) -> Result<(), QueueError> {
        Ok(queue::complete(&mut self.db.gate().enter(), sync_ids)?)
    }

    fn record_failure(&mut self, _key: QueueKey, sync_id: i64, message: &str, skipped: bool) -> Result<(), QueueError> {
        Ok(queue::record_failure(&mut self.db.gate().enter(), sync_id, message, skipped)?)
    }

    fn mark_run(&mut self, _key: QueueKey, sync_id: i64) -> Result<(), QueueError> {
        Ok(queue::mark_run(&self.db.gate().enter(), sync_id)?)
    }

    fn set_process_type(
        &mut self,
        _key: QueueKey,
        task_id: i64,
        process_type: IntegrationProcessType,
    ) -> Result<(), QueueError> {
        self.db.gate().enter().execute(
            "UPDATE Integration_Task SET TaskProcessType = $1 WHERE TaskID = $2",
            params![process_type.name(), task_id],
        )?;
        Ok(())
    }
}
