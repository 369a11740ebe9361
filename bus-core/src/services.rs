//! The bus's answers to connector requests (the host object's backend).

use crate::eventlog::{EventLog, NewEvent};
use crate::host::HostServices;
use connector_abi::protocol::{LogEventRequest, LogIncomingTaskRequest, RequestProcessingRequest};
use std::sync::Arc;

/// Host services backed by the bus database.
pub struct BusServices {
    events: Arc<EventLog>,
}

impl BusServices {
    pub fn new(events: Arc<EventLog>) -> Self {
        BusServices { events }
    }
}

impl HostServices for BusServices {
    fn log_event(&self, connector: &str, event: LogEventRequest) -> Result<(), String> {
        if event.code.trim().is_empty() {
            return Err("an event needs a code".into());
        }
        self.events
            .write(&NewEvent {
                event_type: event.event_type,
                source: connector,
                code: &event.code,
                description: &event.description,
                document_name: event.document_name.as_deref(),
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn log_incoming_task(&self, connector: &str, _task: LogIncomingTaskRequest) -> Result<i64, String> {
        Err(format!(
            "connector `{connector}` asked to log an incoming task, but this daemon has no incoming task queue yet"
        ))
    }

    fn request_processing(&self, connector: &str, _request: RequestProcessingRequest) -> Result<(), String> {
        Err(format!(
            "connector `{connector}` asked for task processing, but this daemon has no incoming task queue yet"
        ))
    }
}
