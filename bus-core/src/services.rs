//! The bus's answers to connector requests (the host object's backend).

use crate::db::Database;
use crate::eventlog::{EventLog, NewEvent};
use crate::host::{HostError, HostServices};
use crate::incoming::Incoming;
use crate::state_store::{self, StateError, StateOp};
use connector_abi::protocol::{LogEventRequest, LogIncomingTaskRequest, RequestProcessingRequest};
use std::sync::{Arc, OnceLock, Weak};

/// Host services backed by the bus. The incoming engine is attached once it
/// exists (it needs the connectors, which need these services).
pub(crate) struct BusServices {
    events: Arc<EventLog>,
    db: Database,
    incoming: OnceLock<Weak<Incoming>>,
}

impl BusServices {
    pub(crate) fn new(events: Arc<EventLog>, db: Database) -> Self {
        BusServices { events, db, incoming: OnceLock::new() }
    }

    /// Connects the incoming engine.
    pub(crate) fn attach_incoming(&self, incoming: &Arc<Incoming>) {
        let _ = self.incoming.set(Arc::downgrade(incoming));
    }

    fn incoming(&self) -> Result<Arc<Incoming>, HostError> {
        self.incoming
            .get()
            .and_then(Weak::upgrade)
            .ok_or(HostError::Unavailable("the incoming engine is not running (the daemon is starting or stopping)"))
    }
}

impl HostServices for BusServices {
    fn log_event(&self, connector: &str, event: LogEventRequest) -> Result<(), HostError> {
        if event.code.trim().is_empty() {
            return Err(HostError::Invalid("an event needs a code".into()));
        }
        self.events
            .write(&NewEvent {
                event_type: event.event_type,
                source: connector,
                code: &event.code,
                description: &event.description,
                document_name: event.document_name.as_deref(),
                ..Default::default()
            })
            .map(|_| ())
            .map_err(|e| HostError::Failed(Box::new(e)))
    }

    fn log_incoming_task(&self, connector: &str, task: LogIncomingTaskRequest) -> Result<i64, HostError> {
        self.incoming()?.log(connector, task).map_err(|e| HostError::Failed(Box::new(e)))
    }

    fn request_processing(&self, _connector: &str, request: RequestProcessingRequest) -> Result<(), HostError> {
        self.incoming()?
            .request_processing(request.connector.as_deref())
            .map(|_| ())
            .map_err(|e| HostError::Failed(Box::new(e)))
    }

    fn state(&self, connector: &str, op: StateOp<'_>) -> Result<Option<String>, HostError> {
        state_store::serve(&self.db, connector, op).map_err(|e| match e {
            StateError::Db(e) => HostError::Failed(Box::new(e)),
            invalid => HostError::Invalid(invalid.to_string()),
        })
    }
}
