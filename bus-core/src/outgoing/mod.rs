//! The outgoing direction: the outbox (which connectors a change goes to,
//! its payload, the task and relation rows), the drain that delivers queued
//! tasks, and synchronous processing.

mod deliver;
mod group_commit;
pub(crate) mod outbox;
pub(crate) mod payload;
pub(crate) mod subscribers;
pub(crate) mod sync;

pub(crate) use deliver::OutgoingDrain;

use crate::db::{Database, DbError};
use crate::metrics::Metrics;
use crate::worker::{WorkerConfig, Workers};
use std::sync::Arc;

/// The outgoing workers: one per loaded connector. Deliveries recorded
/// before a crash are removed first, so they are not delivered again.
pub(crate) fn workers(db: Database, config: WorkerConfig, metrics: Arc<Metrics>) -> Result<Arc<Workers>, DbError> {
    crate::queue::remove_delivered(&mut db.connect()?)?;
    Ok(Workers::new(db, config, Arc::new(OutgoingDrain::default()), metrics))
}
