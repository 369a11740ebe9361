//! The host handle a connector keeps to talk back to the integration bus.

use crate::abi::HostBox;
use crate::protocol::{
    self, host_kind, CallFailure, Empty, LogEventRequest, LogIncomingTaskRequest, LogIncomingTaskResponse,
    RequestProcessingRequest, StateGetRequest, StateGetResponse, StatePutRequest,
};
use crate::types::{EventType, IntegrationProcessType, TaskDataType, TaskType};
use abi_stable::std_types::{RResult, RSlice};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// The integration bus, as a connector sees it. Cheap to clone; usable from
/// any thread (e.g. a poller the connector starts itself).
#[derive(Clone)]
pub struct Host {
    inner: Option<Arc<HostBox>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("connected", &self.inner.is_some()).finish()
    }
}

impl Host {
    pub(crate) fn new(inner: HostBox) -> Self {
        Host { inner: Some(Arc::new(inner)) }
    }

    /// A host that refuses every request: for unit tests of a connector.
    pub fn detached() -> Self {
        Host { inner: None }
    }

    fn call<B: Serialize, R: DeserializeOwned>(&self, kind: &str, body: &B) -> Result<R, CallFailure> {
        let Some(inner) = &self.inner else {
            return Err(CallFailure::Failed("the connector is not attached to a host".into()));
        };
        let request = protocol::encode_request(kind, body);
        match inner.call(RSlice::from_slice(&request)) {
            RResult::ROk(bytes) => protocol::decode_response(&bytes),
            RResult::RErr(e) => Err(CallFailure::Failed(e.into_string())),
        }
    }

    /// Writes a row to the event log, with this connector as its source.
    pub fn log_event(
        &self,
        event_type: EventType,
        code: &str,
        description: &str,
        document_name: Option<&str>,
    ) -> Result<(), CallFailure> {
        let body = LogEventRequest {
            event_type,
            code: code.to_owned(),
            description: description.to_owned(),
            document_name: document_name.map(str::to_owned),
        };
        self.call::<_, Empty>(host_kind::LOG_EVENT, &body).map(|_| ())
    }

    /// Logs an incoming task for this connector (the spec's
    /// `ProcessExternalTask`): the host calls `prepare_internal_object` on it
    /// and queues the result. Returns the new task's ID.
    pub fn process_external_task(
        &self,
        external: Value,
        process_type: IntegrationProcessType,
        task_type: TaskType,
        data_type: TaskDataType,
        site_name: Option<&str>,
    ) -> Result<i64, CallFailure> {
        let body = LogIncomingTaskRequest {
            external,
            task_type,
            data_type,
            process_type,
            site_name: site_name.map(str::to_owned),
        };
        self.call::<_, LogIncomingTaskResponse>(host_kind::LOG_INCOMING_TASK, &body).map(|r| r.task_id)
    }

    /// Asks the host to process incoming tasks now: of one connector, or of
    /// every connector when `connector` is `None` (the spec's
    /// `RequestTasksProcessing`).
    pub fn request_processing(&self, connector: Option<&str>) -> Result<(), CallFailure> {
        let body = RequestProcessingRequest { connector: connector.map(str::to_owned) };
        self.call::<_, Empty>(host_kind::REQUEST_PROCESSING, &body).map(|_| ())
    }

    /// Reads `key` of the state the bus keeps for this connector (`None`:
    /// no value). While a task is being processed, what this call made so
    /// far is seen (see [`Host::state_put`]).
    pub fn state_get(&self, key: &str) -> Result<Option<String>, CallFailure> {
        self.call::<_, StateGetResponse>(host_kind::STATE_GET, &StateGetRequest { key: key.to_owned() })
            .map(|r| r.value)
    }

    /// Sets `key` of the state the bus keeps for this connector (in the bus
    /// database: it survives restarts and moves between daemons). Keys are
    /// 1 to 200 characters, values at most 64 KiB.
    ///
    /// Written while the bus delivers a task to this connector (from
    /// `process_internal_task_async` or the batch method, on the calling
    /// thread), the value is committed with that task's delivery record:
    /// kept once the task is delivered `Ok`, dropped when the call ends
    /// otherwise (`Error`, a crash, a timeout) — so a task delivered again
    /// reads the state as of the last delivered task. Anywhere else (`init`,
    /// preparing incoming tasks, a thread of your own) it is committed at
    /// once.
    pub fn state_put(&self, key: &str, value: &str) -> Result<(), CallFailure> {
        let body = StatePutRequest { key: key.to_owned(), value: value.to_owned() };
        self.call::<_, Empty>(host_kind::STATE_PUT, &body).map(|_| ())
    }

    /// Deletes `key` of this connector's state (committed as
    /// [`Host::state_put`] says).
    pub fn state_delete(&self, key: &str) -> Result<(), CallFailure> {
        self.call::<_, Empty>(host_kind::STATE_DELETE, &StateGetRequest { key: key.to_owned() }).map(|_| ())
    }
}
