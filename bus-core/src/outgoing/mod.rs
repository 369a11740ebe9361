//! The outgoing direction: which connectors a change goes to, logging the
//! tasks with the change, the per-connector workers that drain the queues,
//! and synchronous processing.

pub mod payload;
pub mod subscribers;
pub mod sync;
mod worker;

pub use worker::{TaskOutcome, WorkerConfig};

use crate::db::Database;
use crate::manager::{ConnectorManager, ConnectorSet};
use crate::queue::Selection;
use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};
use thiserror::Error;
use worker::{Job, Worker};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SynchronizeError {
    #[error("connector `{0}` is not loaded, so its tasks cannot be processed")]
    NotLoaded(String),
    #[error("{0}")]
    Refused(String),
}

/// The workers of every loaded connector.
pub struct Outgoing {
    db: Database,
    config: WorkerConfig,
    workers: Mutex<BTreeMap<String, Worker>>,
}

impl Outgoing {
    pub fn new(db: Database, config: WorkerConfig) -> Arc<Self> {
        Arc::new(Outgoing { db, config, workers: Mutex::new(BTreeMap::new()) })
    }

    /// Keeps one worker per loaded connector, following every
    /// reinitialization of `manager`.
    pub fn follow(self: &Arc<Self>, manager: &ConnectorManager) {
        self.update(&manager.current());
        let me = Arc::downgrade(self);
        manager.on_reload(Box::new(move |set| {
            if let Some(me) = me.upgrade() {
                me.update(set);
            }
        }));
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Worker>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts, switches and stops workers to match a connector set.
    pub fn update(&self, set: &ConnectorSet) {
        let mut workers = self.workers();
        workers.retain(|name, w| {
            let keep = set.live.contains_key(name);
            if !keep {
                w.stop();
            }
            keep
        });
        for (name, live) in &set.live {
            match workers.get(name) {
                Some(w) => w.replace(live.clone()),
                None => match Worker::spawn(live.clone(), self.db.clone(), self.config) {
                    Ok(w) => {
                        workers.insert(name.clone(), w);
                    }
                    Err(e) => {
                        tracing::error!(connector = %name, error = %e, "cannot start the connector's worker thread")
                    }
                },
            }
        }
    }

    /// Wakes the workers of these connectors (their queues got tasks).
    pub fn wake<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let workers = self.workers();
        for name in names {
            if let Some(w) = workers.get(name) {
                w.wake();
            }
        }
    }

    /// Wakes every worker (e.g. processing was switched on).
    pub fn wake_all(&self) {
        self.workers().values().for_each(Worker::wake);
    }

    /// Processes tasks of one connector now, in creation order, through its
    /// worker (so they never run twice at once), and waits for the outcome.
    /// Tasks skipped after ErrorAndSkip are retried too.
    pub fn synchronize(&self, connector: &str, selection: Selection) -> Result<Vec<TaskOutcome>, SynchronizeError> {
        let (reply, outcome) = mpsc::channel();
        {
            let workers = self.workers();
            let w = workers.get(connector).ok_or_else(|| SynchronizeError::NotLoaded(connector.to_owned()))?;
            w.submit(Job { selection, reply });
        }
        match outcome.recv() {
            Ok(Ok(outcomes)) => Ok(outcomes),
            Ok(Err(reason)) => Err(SynchronizeError::Refused(reason)),
            Err(_) => Err(SynchronizeError::NotLoaded(connector.to_owned())),
        }
    }

    /// Stops every worker (daemon shutdown).
    pub fn stop_all(&self) {
        let mut workers = self.workers();
        for w in workers.values() {
            w.stop();
        }
        workers.clear();
    }
}
