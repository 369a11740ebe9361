//! The incoming direction: logging external changes as tasks (through the
//! HTTP API or a connector's host object) and applying them to the content
//! store when processing is requested (scheduler, notify, synchronize).

mod apply;
mod drain;
mod log;

pub(crate) use drain::IncomingDrain;

use crate::backend::Queues;
use crate::db::{Database, DbError};
use crate::eventlog::EventLog;
use crate::manager::ConnectorManager;
use crate::metrics::Metrics;
use crate::object_types::ObjectTypes;
use crate::pipeline::Pipeline;
use crate::settings;
use crate::worker::{WorkerConfig, Workers};
use connector_abi::protocol::LogIncomingTaskRequest;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Why an incoming request was refused.
#[derive(Debug, Error)]
pub enum IncomingError {
    /// A setting forbids it (→ 409).
    #[error("{0}")]
    Disabled(String),
    #[error("no connector with code name `{0}` is registered")]
    UnknownConnector(String),
    #[error("connector `{0}` is not loaded (disabled, or its library failed to load)")]
    NotLoaded(String),
    /// The connector failed to prepare the task (→ 422).
    #[error("{0}")]
    Connector(String),
    /// The request or the prepared data is not acceptable (→ 422).
    #[error("{0}")]
    Invalid(String),
    #[error("the task could not be stored: {0}")]
    Db(#[from] DbError),
}

impl From<crate::sql::SqlError> for IncomingError {
    fn from(e: crate::sql::SqlError) -> Self {
        IncomingError::Db(DbError::Sql(e))
    }
}

/// Logs and processes incoming tasks.
pub struct Incoming {
    db: Database,
    logger: Mutex<crate::sql::Conn>,
    types: Arc<ObjectTypes>,
    manager: Arc<ConnectorManager>,
    workers: Arc<Workers>,
}

/// What the incoming engine is built from (see `engine.rs`).
pub(crate) struct IncomingParts {
    pub db: Database,
    pub queues: Arc<dyn Queues>,
    pub types: Arc<ObjectTypes>,
    pub manager: Arc<ConnectorManager>,
    pub pipeline: Arc<Pipeline>,
    pub events: Arc<EventLog>,
    pub config: WorkerConfig,
    pub metrics: Arc<Metrics>,
}

impl Incoming {
    pub(crate) fn new(parts: IncomingParts) -> Result<Arc<Self>, DbError> {
        let IncomingParts { db, queues, types, manager, pipeline, events, config, metrics } = parts;
        let workers = Workers::new(queues, config, Arc::new(IncomingDrain { pipeline, events }), metrics);
        workers.follow(&manager);
        Ok(Arc::new(Incoming { logger: Mutex::new(db.open_connection()?), db, types, manager, workers }))
    }

    /// The incoming workers (for synchronize requests).
    pub fn workers(&self) -> &Arc<Workers> {
        &self.workers
    }

    /// Logs an incoming task for `connector`; returns its ID.
    pub fn log(&self, connector: &str, request: LogIncomingTaskRequest) -> Result<i64, IncomingError> {
        let live = self.manager.get(connector).ok_or_else(|| {
            if self.manager.current().status.contains_key(connector) {
                IncomingError::NotLoaded(connector.to_owned())
            } else {
                IncomingError::UnknownConnector(connector.to_owned())
            }
        })?;
        // The lock covers the settings read only, never a connector call.
        let settings = {
            let mut logger = self.logger.lock().unwrap_or_else(|p| p.into_inner());
            self.db.revive(&mut logger);
            settings::read(&logger)?
        };
        log::log(&settings, &self.db, &self.types, &live, request)
    }

    /// Starts processing the incoming queue of one connector, or of every
    /// loaded connector, each on its own thread; returns their names.
    pub fn request_processing(&self, connector: Option<&str>) -> Result<Vec<String>, IncomingError> {
        if !settings::read(&*self.db.connect()?)?.processes_incoming() {
            return Err(IncomingError::Disabled(
                "processing of incoming tasks is disabled in the settings (`enabled` and `process_incoming`); the tasks stay queued"
                    .into(),
            ));
        }
        let names: Vec<String> = match connector {
            Some(name) => {
                if self.manager.get(name).is_none() {
                    return Err(if self.manager.current().status.contains_key(name) {
                        IncomingError::NotLoaded(name.to_owned())
                    } else {
                        IncomingError::UnknownConnector(name.to_owned())
                    });
                }
                vec![name.to_owned()]
            }
            None => self.manager.current().live.keys().cloned().collect(),
        };
        self.workers.wake(names.iter().map(String::as_str));
        Ok(names)
    }
}
