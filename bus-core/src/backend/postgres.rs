//! The PostgreSQL backend of the workers' queues, shared by several
//! daemons: each worker reads and writes through a connection of its own
//! (the server takes concurrent writers), a delivery removes its relation
//! in the delivery's own commit (no recorded-deliveries table), and every
//! write is fenced: it commits only while this daemon still holds the
//! queue's lease at the epoch it was claimed with (`bus_hold_lease` in the
//! schema: the lease row read `FOR SHARE` in the same transaction, so a
//! takeover — an `UPDATE` of that row — waits for the commit, and a write
//! after a takeover finds the row changed and records nothing:
//! [`QueueError::Fenced`]). A delivery is one statement, fence and removal
//! together (`bus_deliver`): one round trip, committed on its own — with
//! `synchronous = "normal"` without waiting for the server's disk
//! ([`Durability`]): a delivery's record lost in a server crash is a task
//! delivered again, never a change lost.

use super::{CallWindow, QueueError, QueueKey, QueueSession, Queues, SessionUse};
use crate::cluster::Cluster;
use crate::db::{Database, Durability, Pooled};
use crate::queue::{self, Direction, Queued};
use crate::settings::{self, Settings};
use crate::sql::{params, Conn};
use crate::state_store::Writes;
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
        Ok(Box::new(PostgresSession {
            conn: self.db.connect()?,
            cluster: self.cluster.clone(),
            durability: self.db.durability(),
        }))
    }

    fn sessions(&self) -> SessionUse {
        SessionUse::ReturnWhenIdle
    }
}

struct PostgresSession {
    /// Lent by the pool for a run; back to it when the worker lets go.
    conn: Pooled,
    cluster: Arc<Cluster>,
    /// Whether a delivery's record waits for the server's disk.
    durability: Durability,
}

/// A delivery's record: the relations removed under the lease's fence, the
/// commit waiting for the server's disk only if `$6` (`bus_deliver`,
/// schema/postgres/v3.sql and v6.sql).
const DELIVER: &str = "SELECT bus_deliver($1, $2, $3, $4, $5::BIGINT[], $6)";

impl PostgresSession {
    /// Runs `write` in a transaction that commits only under this daemon's
    /// lease of `key`.
    fn fenced<T>(
        &mut self,
        key: QueueKey,
        write: impl FnOnce(&Conn) -> crate::sql::Result<T>,
    ) -> Result<T, QueueError> {
        let epoch = self.cluster.epoch(key).ok_or_else(|| fenced(key))?;
        let tx = self.conn.transaction()?;
        if !hold_lease(&tx, key, self.cluster.id(), epoch)? {
            return Err(moved(key, epoch));
        }
        let value = write(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Removes delivered relations (and tasks left with none) in one round
    /// trip: the fence and the removal are one statement, committed on its
    /// own (`bus_deliver`, schema/postgres/v3.sql; its disk wait as
    /// `synchronous` says, v6.sql).
    fn remove(&mut self, key: QueueKey, sync_ids: &[i64]) -> Result<(), QueueError> {
        let epoch = self.cluster.epoch(key).ok_or_else(|| fenced(key))?;
        let ids = crate::driver::bigint_array(sync_ids);
        let durable = self.durability == Durability::Full;
        let removed: bool = self.conn.query_row(
            DELIVER,
            params![key.connector_id, key.direction == Direction::Incoming, self.cluster.id(), epoch, ids, durable],
            |r| r.get(0),
        )?;
        if removed {
            Ok(())
        } else {
            Err(moved(key, epoch))
        }
    }
}

fn moved(key: QueueKey, epoch: i64) -> QueueError {
    tracing::warn!(
        connector_id = key.connector_id,
        direction = key.direction.name(),
        epoch,
        "the queue's lease moved on; nothing recorded"
    );
    fenced(key)
}

fn fenced(key: QueueKey) -> QueueError {
    QueueError::Fenced { connector_id: key.connector_id, direction: key.direction }
}

/// Whether this daemon still holds `key`'s lease at `epoch`; if so it keeps
/// holding it until `tx` ends (`bus_hold_lease`, schema/postgres/v3.sql).
fn hold_lease(tx: &Conn, key: QueueKey, owner: &str, epoch: i64) -> crate::sql::Result<bool> {
    tx.query_row(
        "SELECT bus_hold_lease($1, $2, $3, $4)",
        params![key.connector_id, key.direction == Direction::Incoming, owner, epoch],
        |r| r.get(0),
    )
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
    fn delivered(
        &mut self,
        key: QueueKey,
        sync_ids: &[i64],
        writes: &Writes,
        _next_quick: bool,
    ) -> Result<(), QueueError> {
        if writes.is_empty() {
            return self.remove(key, sync_ids);
        }
        // The fenced removal and the state writes in one transaction: a
        // lease that moved on keeps neither.
        let epoch = self.cluster.epoch(key).ok_or_else(|| fenced(key))?;
        let ids = crate::driver::bigint_array(sync_ids);
        let tx = self.conn.transaction()?;
        let durable = self.durability == Durability::Full;
        let removed: bool = tx.query_row(
            DELIVER,
            params![key.connector_id, key.direction == Direction::Incoming, self.cluster.id(), epoch, ids, durable],
            |r| r.get(0),
        )?;
        if !removed {
            return Err(moved(key, epoch));
        }
        crate::state_store::apply(&tx, key.connector_id, writes)?;
        tx.commit()?;
        Ok(())
    }

    fn remove_recorded(&mut self) -> Result<(), QueueError> {
        Ok(())
    }

    fn complete(&mut self, key: QueueKey, sync_ids: &[i64]) -> Result<(), QueueError> {
        self.remove(key, sync_ids)
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
                "UPDATE Integration_Task SET TaskProcessType = $1 WHERE TaskID = $2",
                params![process_type.name(), task_id],
            )
            .map(drop)
        })
    }
}
