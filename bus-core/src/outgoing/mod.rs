//! The outgoing direction: which connectors a change goes to, the payloads,
//! the drain that delivers queued tasks, and synchronous processing.

mod deliver;
mod group_commit;
pub mod payload;
pub mod subscribers;
pub mod sync;

pub use deliver::OutgoingDrain;

use crate::db::{Database, DbError};
use crate::metrics::Metrics;
use crate::worker::{WorkerConfig, Workers};
use std::sync::Arc;

/// The outgoing workers: one per loaded connector. Deliveries recorded
/// before a crash are removed first, so they are not delivered again.
pub fn workers(db: Database, config: WorkerConfig, metrics: Arc<Metrics>) -> Result<Arc<Workers>, DbError> {
    crate::queue::remove_delivered(&mut db.connect()?)?;
    Ok(Workers::new(db, config, Arc::new(OutgoingDrain::default()), metrics))
}
