//! The host object handed to each connector: what a connector may ask of the
//! bus (write to the event log, log an incoming task, request processing,
//! read and write the state the bus keeps for it).

use crate::state_store::StateOp;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RString, RVec};
use connector_abi::abi::{HostBox, HostObject, HostObject_TO};
use connector_abi::protocol::{
    self, host_kind, Empty, LogEventRequest, LogIncomingTaskRequest, LogIncomingTaskResponse, RequestProcessingRequest,
    StateGetRequest, StateGetResponse, StatePutRequest,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use thiserror::Error;

/// What the bus offers connectors. Each method gets the name of the calling
/// connector, so a connector can only act in its own name.
pub trait HostServices: Send + Sync + 'static {
    fn log_event(&self, connector: &str, event: LogEventRequest) -> Result<(), HostError>;
    fn log_incoming_task(&self, connector: &str, task: LogIncomingTaskRequest) -> Result<i64, HostError>;
    fn request_processing(&self, connector: &str, request: RequestProcessingRequest) -> Result<(), HostError>;
    /// Reads or writes the connector's state (see [`crate::state_store`]);
    /// a read answers the value. A host that keeps no state refuses.
    fn state(&self, _connector: &str, _op: StateOp<'_>) -> Result<Option<String>, HostError> {
        Err(HostError::Unavailable("this host keeps no connector state"))
    }
}

/// Why the bus refused a connector's request; the connector gets the text.
#[derive(Debug, Error)]
pub enum HostError {
    /// The request itself is wrong (says what to fix).
    #[error("{0}")]
    Invalid(String),
    /// The bus cannot serve it right now (starting or stopping).
    #[error("{0}")]
    Unavailable(&'static str),
    /// Serving it failed.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

struct HostAdapter {
    connector: String,
    services: Arc<dyn HostServices>,
}

/// Builds the host handle for the connector registered as `connector`.
pub(crate) fn host_object(connector: &str, services: Arc<dyn HostServices>) -> HostBox {
    HostObject_TO::from_value(HostAdapter { connector: connector.to_owned(), services }, TD_Opaque)
}

impl HostAdapter {
    fn dispatch(&self, request: &[u8]) -> Vec<u8> {
        dispatch(&self.connector, &self.services, request)
    }
}

/// Answers one host request document of the connector registered as
/// `connector` (in-process through its host object, or relayed from its
/// process).
pub(crate) fn dispatch(connector: &str, services: &Arc<dyn HostServices>, request: &[u8]) -> Vec<u8> {
    let env = match protocol::parse_request(request) {
        Ok(env) => env,
        Err(response) => return response,
    };
    let c = connector;
    match env.kind.as_ref() {
        host_kind::LOG_EVENT => protocol::answer(env.body, |e: LogEventRequest| {
            services.log_event(c, e).map(|()| Empty {}).map_err(|e| e.to_string())
        }),
        host_kind::LOG_INCOMING_TASK => protocol::answer(env.body, |t: LogIncomingTaskRequest| {
            services
                .log_incoming_task(c, t)
                .map(|task_id| LogIncomingTaskResponse { task_id })
                .map_err(|e| e.to_string())
        }),
        host_kind::REQUEST_PROCESSING => protocol::answer(env.body, |r: RequestProcessingRequest| {
            services.request_processing(c, r).map(|()| Empty {}).map_err(|e| e.to_string())
        }),
        host_kind::STATE_GET => protocol::answer(env.body, |r: StateGetRequest| {
            services.state(c, StateOp::Get(&r.key)).map(|value| StateGetResponse { value }).map_err(|e| e.to_string())
        }),
        host_kind::STATE_PUT => protocol::answer(env.body, |r: StatePutRequest| {
            services.state(c, StateOp::Put(&r.key, &r.value)).map(|_| Empty {}).map_err(|e| e.to_string())
        }),
        host_kind::STATE_DELETE => protocol::answer(env.body, |r: StateGetRequest| {
            services.state(c, StateOp::Delete(&r.key)).map(|_| Empty {}).map_err(|e| e.to_string())
        }),
        other => protocol::encode_unsupported(other),
    }
}

impl HostObject for HostAdapter {
    fn call(&self, request: RSlice<'_, u8>) -> RResult<RVec<u8>, RString> {
        // A panic must not cross back into the connector's library.
        match catch_unwind(AssertUnwindSafe(|| self.dispatch(request.as_slice()))) {
            Ok(bytes) => RResult::ROk(RVec::from(bytes)),
            Err(panic) => {
                let message = connector_abi::panic_message(&*panic);
                tracing::error!(connector = %self.connector, error = %message, "the host panicked while serving a connector request");
                RResult::RErr(RString::from(format!("the host failed to serve the request: {message}")))
            }
        }
    }
}
