//! The outgoing direction: the outbox (which connectors a change goes to,
//! its payload, the task and relation rows), the drain that delivers queued
//! tasks, and synchronous processing.

mod answer;
mod call;
mod deliver;
mod keys;
pub(crate) mod outbox;
mod parallel;
pub(crate) mod parked;
pub(crate) mod payload;
pub(crate) mod preview;
pub(crate) mod subscribers;
pub(crate) mod sync;

pub(crate) use deliver::OutgoingDrain;

use crate::backend::{QueueError, Queues};
use crate::metrics::Metrics;
use crate::worker::{WorkerConfig, Workers};
use std::sync::Arc;

/// The outgoing workers: one per loaded connector. Deliveries recorded
/// before a crash are removed first, so they are not delivered again.
pub(crate) fn workers(
    queues: Arc<dyn Queues>,
    config: WorkerConfig,
    metrics: Arc<Metrics>,
) -> Result<Arc<Workers>, QueueError> {
    queues.recover()?;
    Ok(Workers::new(queues, config, Arc::new(OutgoingDrain), metrics))
}
