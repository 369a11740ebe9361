//! The PostgreSQL backend of the workers' queues, shared by several
//! daemons: each worker reads and writes through a connection of its own
//! (the server takes concurrent writers), a delivery removes its relation
//! in the delivery's own commit (no recorded-deliveries table), and every
//! write is fenced: it commits only while this daemon still holds the
//! queue's lease at the epoch it was claimed with. The lease row is read
//! `FOR SHARE` in the same transaction, so a takeover (an `UPDATE` of that
//! row) waits for the commit, and a write after a takeover finds the row
//! changed and records nothing ([`QueueError::Fenced`]). Locks are taken in
//! the order a connector delete takes them (connector, then its rows).

use super::{CallWindow, QueueError, QueueKey, QueueSession, Queues, SessionUse};
use crate::cluster::Cluster;
use crate::db::{Database, Pooled};
use crate::queue::{self, Direction, Queued};
use crate::settings::{self, Settings};
use crate::sql::{params, Conn};
use connector_abi::IntegrationProcessType;
use std::sync::Arc;

/// The queues of one PostgreSQL database, as this daemon's leases allow.
pub(crate) struct PostgresQueues {
    db: Database,
    cluster: Arc<Cluster>,
}

impl PostgresQueues {
    pub(crate) fn new(db: Database, cluster: Arc<Cluster>) -> Self {
        PostgresQueues { db, cluster }
    }
}

impl Queues for PostgresQueues {
    /// Deliveries commit with their removal: nothing is left to finish.
    fn recover(&self) -> Result<(), QueueError> {
        Ok(())
    }

    fn session(&self) -> Result<Box<dyn QueueSession>, QueueError> {
        Ok(Box::new(PostgresSession { conn: self.db.connect()?, cluster: self.cluster.clone() }))
    }

    fn sessions(&self) -> SessionUse {
        SessionUse::ReturnWhenIdle
    }
}

struct PostgresSession {
    /// Lent by the pool for a run; back to it when the worker lets go.
    conn: Pooled,
    cluster: Arc<Cluster>,
}

impl PostgresSession {
    /// Runs `write` in a transaction that commits only under this daemon's
    /// lease of `key`.
    fn fenced<T>(
        &mut self,
        key: QueueKey,
        write: impl FnOnce(&Conn) -> crate::sql::Result<T>,
    ) -> Result<T, QueueError> {
        let fenced = || QueueError::Fenced { connector_id: key.connector_id, direction: key.direction };
        let epoch = self.cluster.epoch(key).ok_or_else(fenced)?;
        let tx = self.conn.transaction()?;
        // The connector row first, as a delete of the connector takes it
        // first too (then its relations and leases, by cascade): in any
        // other order a delivery and a delete could each wait for the other.
        let registered = tx
            .prepare_cached("SELECT 1 FROM Integration_Connector WHERE ConnectorID = ?1 FOR KEY SHARE")?
            .exists([key.connector_id])?;
        if !registered {
            return Err(fenced());
        }
        let holds = tx
            .prepare_cached(
                "SELECT 1 FROM Integration_Lease WHERE LeaseConnectorID = ?1 AND LeaseIsInbound = ?2 \
                 AND LeaseOwner = ?3 AND LeaseEpoch = ?4 AND LeaseExpires > clock_timestamp() FOR SHARE",
            )?
            .exists(params![key.connector_id, key.direction == Direction::Incoming, self.cluster.id(), epoch])?;
        if !holds {
            tracing::warn!(
                connector_id = key.connector_id,
                direction = key.direction.name(),
                epoch,
                "the queue's lease moved on; nothing recorded"
            );
            return Err(fenced());
        }
        let value = write(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

fn delete_relations(tx: &Conn, sync_ids: &[i64]) -> crate::sql::Result<()> {
    let mut stmt = tx.prepare_cached("DELETE FROM Integration_Synchronization WHERE SynchronizationID = ?1")?;
    for id in sync_ids {
        stmt.execute([id])?;
    }
    Ok(())
}

impl QueueSession for PostgresSession {
    fn settings(&mut self) -> Result<Settings, QueueError> {
        Ok(settings::read(&self.conn)?)
    }

    /// Only while the lease is held and was renewed recently enough that
    /// it cannot have expired on the server, and no earlier owner may still
    /// trust it.
    fn call_window(&self, key: QueueKey) -> CallWindow {
        self.cluster.call_window(key)
    }

    /// Identity values are drawn before commit: with writers on several
    /// daemons a lower ID can commit later.
    fn ids_follow_commits(&self) -> bool {
        false
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

    fn call_begins(&mut self, _quick: bool) {}

    fn call_ended(&mut self) {}

    /// The removal itself, fenced: a daemon that lost the lease meanwhile
    /// records nothing, and the new owner delivers the task again.
    fn delivered(&mut self, key: QueueKey, sync_ids: &[i64], _next_quick: bool) -> Result<(), QueueError> {
        self.fenced(key, |tx| delete_relations(tx, sync_ids))
    }

    fn remove_recorded(&mut self) -> Result<(), QueueError> {
        Ok(())
    }

    fn complete(&mut self, key: QueueKey, sync_ids: &[i64]) -> Result<(), QueueError> {
        self.fenced(key, |tx| delete_relations(tx, sync_ids))
    }

    fn record_failure(&mut self, key: QueueKey, sync_id: i64, message: &str, skipped: bool) -> Result<(), QueueError> {
        self.fenced(key, |tx| queue::write_failure(tx, sync_id, message, skipped))
    }

    fn mark_run(&mut self, key: QueueKey, sync_id: i64) -> Result<(), QueueError> {
        self.fenced(key, |tx| queue::mark_run(tx, sync_id))
    }

    fn set_process_type(
        &mut self,
        key: QueueKey,
        task_id: i64,
        process_type: IntegrationProcessType,
    ) -> Result<(), QueueError> {
        self.fenced(key, |tx| {
            tx.execute(
                "UPDATE Integration_Task SET TaskProcessType = ?1 WHERE TaskID = ?2",
                params![process_type.name(), task_id],
            )
            .map(drop)
        })
    }
}
