//! A live connector instance on the host side, and typed calls into it.

use crate::cluster::RemoteInstance;
use crate::host::HostServices;
use crate::isolation::{ChildConnector, ChildError, Isolation};
use crate::lane::{Lane, LaneError};
use crate::library::Library;
use crate::registry::ConnectorRow;
use abi_stable::std_types::{RResult, RSlice};
use connector_abi::abi::ConnectorBox;
use connector_abi::protocol::{self, kind, CallFailure, InitRequest, InitResponse, LogEventRequest, PROTOCOL_REVISION};
use connector_abi::EventType;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a call into a connector failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    /// The connector panicked or the call could not be made; the connector
    /// stays loaded.
    #[error("{0}")]
    Aborted(String),
    /// The connector answered with an error.
    #[error("{0}")]
    Failed(String),
    /// The connector was built with an SDK that does not know this request.
    #[error("the connector does not support `{kind}` (it was built with connector SDK {sdk_version}); rebuild it against a newer connector-abi to use this feature")]
    Unsupported { kind: String, sdk_version: String },
    /// The connector answered with something that is not a valid document.
    #[error("the connector sent a malformed response to `{kind}`: {detail}")]
    Malformed { kind: String, detail: String },
    /// The call did not return in time; the connector counts as hung.
    #[error("the connector did not answer `{kind}` within {timeout_ms} ms; it counts as hung until the call returns")]
    TimedOut { kind: String, timeout_ms: u64 },
    /// Not called: an earlier call into the connector has not returned.
    #[error("the connector was not asked `{kind}`: it is hung in a `{stuck_in}` call that has not returned for {stuck_ms} ms")]
    Hung { kind: String, stuck_in: String, stuck_ms: u64 },
    /// The connector's process died during the call, or is down after a
    /// crash (`process` isolation); the message names the cause.
    #[error("{0}")]
    Crashed(String),
    /// No answer within the call timeout: the connector's process was
    /// killed (`process` isolation) and starts again.
    #[error("the connector did not answer `{kind}` within {timeout_ms} ms; its process was killed and starts again")]
    Killed { kind: String, timeout_ms: u64 },
    /// Not called: the connector's process is down after a crash and
    /// starts again after a pause.
    #[error("{0}")]
    Restarting(String),
    /// Not called: the call would have started after the end of the trust
    /// in its lease (the daemon stalled after its lease check), when
    /// another daemon may own the queue (see `start_by.rs`).
    #[error("not called: the call would have started {late_ms} ms after its lease's trust window ended")]
    PastStartBy { late_ms: u64 },
}

impl CallError {
    /// True when the call got no answer from the connector at all — its
    /// process crashed, was killed or is down, or the call timed out —
    /// rather than an answer about the task.
    pub(crate) fn lost(&self) -> bool {
        matches!(
            self,
            CallError::Crashed(_)
                | CallError::Killed { .. }
                | CallError::TimedOut { .. }
                | CallError::Hung { .. }
                | CallError::Restarting(_)
        )
    }

    /// The error of a lane call that gave no answer.
    fn from_lane(kind: &str, e: LaneError) -> Self {
        match e {
            LaneError::TimedOut(d) => CallError::TimedOut { kind: kind.to_owned(), timeout_ms: d.as_millis() as u64 },
            LaneError::Stuck { kind: stuck_in, running_for } => {
                CallError::Hung { kind: kind.to_owned(), stuck_in, stuck_ms: running_for.as_millis() as u64 }
            }
            LaneError::Unavailable(m) => CallError::Aborted(m),
        }
    }

    /// True for a panic inside the connector.
    pub(crate) fn is_panic(&self) -> bool {
        matches!(self, CallError::Aborted(m) if m.contains("panicked"))
    }
}

/// A connector created from a registry row and initialized.
pub struct LiveConnector {
    /// The registry row's ID (`ConnectorID`).
    pub id: i64,
    /// The code name (equal to the name the connector reported).
    pub name: String,
    pub class: String,
    pub(crate) library: Arc<Library>,
    /// What the connector reported at init.
    pub info: InitResponse,
    /// How its outgoing queue is delivered (the registry row's settings).
    pub delivery: crate::delivery::DeliverySettings,
    /// When its next delivery call may start (`ConnectorRateLimit`).
    pub(crate) rate: Option<crate::rate_limit::RateLimit>,
    /// When this instance was created (UTC, ISO 8601).
    pub loaded_at: String,
    object: Arc<Instance>,
    /// Where calls from outside the connector's workers run (see [`Lane`]).
    lane: Arc<Lane>,
    /// Where panics and timeouts are reported (the event log).
    services: Arc<dyn HostServices>,
    /// The last panic or timeout, for the connector's status.
    last_fault: Mutex<Option<String>>,
    shut_down: AtomicBool,
    /// How long one call may take before the connector counts as hung.
    call_timeout: Duration,
    /// The calls running now, by number, with their start.
    in_flight: Mutex<BTreeMap<u64, Instant>>,
    next_call: AtomicU64,
    /// A batch request failed as a whole (a crash, a timeout): tasks go one
    /// by one until the queue drains, so the task at fault is found and
    /// the ones before it are not repeated again and again.
    batch_failed: AtomicBool,
}

impl std::fmt::Debug for LiveConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConnector")
            .field("name", &self.name)
            .field("class", &self.class)
            .field("library", &self.library.copy)
            .finish()
    }
}

/// What a live connector is made of, besides what it declared at init.
struct Parts<'a> {
    row: &'a ConnectorRow,
    library: Arc<Library>,
    object: Instance,
    lane: Arc<Lane>,
    services: Arc<dyn HostServices>,
    call_timeout: Duration,
}

impl LiveConnector {
    /// Wraps a freshly created connector object and calls its init.
    pub(crate) fn initialize(
        row: &ConnectorRow,
        library: Arc<Library>,
        object: Instance,
        lane: Arc<Lane>,
        services: Arc<dyn HostServices>,
        call_timeout: Duration,
    ) -> Result<Arc<Self>, CallError> {
        let parts = Parts { row, library, object, lane, services, call_timeout };
        let live = Arc::new(Self::assemble(parts, InitResponse::default(), crate::db::now()));
        let request = InitRequest { registry_name: row.name.clone(), host_protocol: PROTOCOL_REVISION };
        // Init is the one request every connector answers, so it is sent
        // without a capability check; a connector that hangs in it is given up.
        let bytes = protocol::encode_request(kind::INIT, &request);
        let info: InitResponse = Self::with_timeout(&live, kind::INIT, move |c| c.send(kind::INIT, &bytes, 1))?;
        let mut live = Arc::try_unwrap(live)
            .map_err(|_| CallError::Aborted("init finished but its thread still holds the connector".into()))?;
        live.info = info;
        Ok(Arc::new(live))
    }

    /// Runs `call` on the connector's call lane and waits at most the call
    /// timeout: every call that does not come from the connector's own
    /// workers (init, custom subscription checks, synchronous processing,
    /// incoming preparation, shutdown). A call that times out keeps running;
    /// the connector counts as hung until it returns, and calls made
    /// meanwhile fail at once (one stuck thread per connector at most).
    pub(crate) fn with_timeout<R: Send + 'static>(
        this: &Arc<Self>,
        kind: &str,
        call: impl FnOnce(&LiveConnector) -> Result<R, CallError> + Send + 'static,
    ) -> Result<R, CallError> {
        let me = this.clone();
        // A connector process is killed at the call timeout itself: the
        // lane waits a little longer, so it hears that answer.
        let deadline = match *this.object {
            Instance::InProcess(_) => this.call_timeout,
            // The other end (a process, a daemon) keeps its own deadline.
            Instance::Child(_) | Instance::Remote(_) => this.call_timeout + CHILD_GRACE,
        };
        let answer = this.lane.run(kind, deadline, move || call(&me));
        match answer {
            Ok(result) => result,
            Err(e) => {
                let e = CallError::from_lane(kind, e);
                if let CallError::TimedOut { .. } = e {
                    this.report_fault(EventType::Error, "CONNECTORTIMEOUT", &e);
                } else {
                    tracing::warn!(connector = %this.name, request = kind, error = %e, "a call into the connector was not made");
                }
                Err(e)
            }
        }
    }

    /// Writes a panic or a timeout to the event log (source: the connector)
    /// and keeps it for the connector's status.
    fn report_fault(&self, event_type: EventType, code: &str, e: &CallError) {
        let description = format!("Connector `{}`: {e}", self.name);
        tracing::warn!(connector = %self.name, code, error = %e, "connector fault");
        *self.last_fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(description.clone());
        let event = LogEventRequest { event_type, code: code.to_owned(), description, document_name: None };
        if let Err(e) = self.services.log_event(&self.name, event) {
            tracing::warn!(connector = %self.name, error = %e, "cannot write the connector fault to the event log");
        }
    }

    /// The last panic or timeout of this instance, if any.
    pub fn last_fault(&self) -> Option<String> {
        self.last_fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// An encoded request routed here by another daemon of the cluster,
    /// answered encoded, on the connector's lane with the call timeout.
    pub fn routed(this: &Arc<Self>, request: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let kind = request_kind(&request);
        if !this.supports(&kind) {
            return Err(CallError::Unsupported { kind, sdk_version: this.sdk_version().to_owned() });
        }
        Self::with_timeout(this, &kind.clone(), move |c| c.call_bytes_scaled(&request, 1))
    }

    /// Sends a typed request on the connector's lane with the call timeout
    /// (see [`Self::with_timeout`]), as the bus makes every call but a
    /// delivery.
    pub fn request_timeout<B: Serialize, R: DeserializeOwned + Send + 'static>(
        this: &Arc<Self>,
        kind: &'static str,
        body: &B,
    ) -> Result<R, CallError> {
        let bytes = protocol::encode_request(kind, body);
        Self::with_timeout(this, kind, move |c| c.request_raw(kind, &bytes))
    }

    /// Where this instance runs (`None`: on another daemon).
    pub fn isolation(&self) -> Option<Isolation> {
        match *self.object {
            Instance::InProcess(_) => Some(Isolation::InProcess),
            Instance::Child(_) => Some(Isolation::Process),
            Instance::Remote(_) => None,
        }
    }

    /// The daemon that runs this connector, when it is not this one.
    pub fn runs_on(&self) -> Option<&str> {
        match &*self.object {
            Instance::Remote(remote) => Some(&remote.spec.daemon),
            _ => None,
        }
    }

    /// An instance running on another daemon, as declared there.
    pub(crate) fn remote(
        row: &ConnectorRow,
        remote: RemoteInstance,
        lane: Arc<Lane>,
        services: Arc<dyn HostServices>,
        call_timeout: Duration,
    ) -> Result<Arc<Self>, String> {
        let info: InitResponse = serde_json::from_str(&remote.spec.init)
            .map_err(|e| format!("the init answer daemon {} stored is unreadable: {e}", remote.spec.daemon))?;
        let library = Arc::new(Library {
            source: std::path::PathBuf::new(),
            copy: std::path::PathBuf::from(format!("(on daemon {})", remote.spec.daemon)),
            hash: String::new(),
        });
        let loaded_at = remote.spec.loaded_at.clone();
        let object = Instance::Remote(Box::new(remote));
        Ok(Arc::new(Self::assemble(Parts { row, library, object, lane, services, call_timeout }, info, loaded_at)))
    }

    fn assemble(p: Parts<'_>, info: InitResponse, loaded_at: String) -> LiveConnector {
        LiveConnector {
            id: p.row.id,
            name: p.row.name.clone(),
            class: p.row.class_name.clone(),
            library: p.library,
            info,
            delivery: p.row.delivery(),
            rate: crate::rate_limit::RateLimit::new(p.row.rate_limit),
            loaded_at,
            object: Arc::new(p.object),
            lane: p.lane,
            services: p.services,
            last_fault: Mutex::new(None),
            shut_down: AtomicBool::new(false),
            call_timeout: p.call_timeout,
            in_flight: Mutex::new(BTreeMap::new()),
            next_call: AtomicU64::new(0),
            batch_failed: AtomicBool::new(false),
        }
    }

    /// How often the connector's process was started again after a crash
    /// or a kill (always 0 in-process).
    pub fn restarts(&self) -> u64 {
        match &*self.object {
            Instance::InProcess(_) | Instance::Remote(_) => 0,
            Instance::Child(child) => child.restarts(),
        }
    }

    /// How many queued tasks one delivery request carries: more than one
    /// only for a connector whose SDK knows the batch request, as its row's
    /// `ConnectorBatchSize` says (or, in a connector process, `[isolation]
    /// batch_size`).
    pub(crate) fn delivery_batch(&self) -> usize {
        if self.batch_failed.load(Ordering::Relaxed) || !self.supports(kind::PROCESS_ASYNC_BATCH) {
            return 1;
        }
        match (&*self.object, self.delivery.batch_size) {
            (Instance::Remote(_), _) => 1,
            (_, Some(n)) => usize::try_from(n).unwrap_or(1).max(1),
            (Instance::Child(child), None) => child.batch_size(),
            (Instance::InProcess(_), None) => 1,
        }
    }

    /// How long until the connector can take a call again, while its
    /// process is down after a crash (`process` isolation).
    pub(crate) fn down_for(&self) -> Option<Duration> {
        match &*self.object {
            Instance::Child(child) => child.down_for(),
            Instance::InProcess(_) | Instance::Remote(_) => None,
        }
    }

    /// Notes whether the last batch request failed as a whole (see
    /// [`Self::delivery_batch`]).
    pub(crate) fn set_batch_failed(&self, failed: bool) {
        self.batch_failed.store(failed, Ordering::Relaxed);
    }

    /// Sends a batch delivery request carrying `tasks` tasks: its deadline
    /// is the call timeout for each.
    pub(crate) fn request_batch<R: DeserializeOwned>(&self, request: &[u8], tasks: u32) -> Result<R, CallError> {
        self.request_scaled(kind::PROCESS_ASYNC_BATCH, request, tasks)
    }

    /// The connector process's ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        match &*self.object {
            Instance::InProcess(_) | Instance::Remote(_) => None,
            Instance::Child(child) => child.pid(),
        }
    }

    /// How long the oldest running call has run, when longer than the call
    /// timeout (the connector is hung).
    pub fn hung_for(&self) -> Option<Duration> {
        let oldest = self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).values().min().copied();
        let worker = oldest.map(|at| at.elapsed()).filter(|d| *d > self.call_timeout);
        worker.max(self.lane.stuck_for())
    }

    /// True when the connector said at init that it answers `kind`.
    pub(crate) fn supports(&self, kind: &str) -> bool {
        self.info.capabilities.iter().any(|c| c == kind)
    }

    /// Sends a typed request and reads the typed answer.
    pub fn request<B: Serialize, R: DeserializeOwned>(&self, kind: &str, body: &B) -> Result<R, CallError> {
        self.request_raw(kind, &protocol::encode_request(kind, body))
    }

    /// Sends an already encoded request (e.g. built around a task payload
    /// serialized once) and reads the typed answer.
    pub fn request_raw<R: DeserializeOwned>(&self, kind: &str, request: &[u8]) -> Result<R, CallError> {
        self.request_scaled(kind, request, 1)
    }

    /// A request the connector announced, carrying `tasks` tasks.
    fn request_scaled<R: DeserializeOwned>(&self, kind: &str, request: &[u8], tasks: u32) -> Result<R, CallError> {
        if !self.supports(kind) {
            return Err(CallError::Unsupported { kind: kind.to_owned(), sdk_version: self.sdk_version().to_owned() });
        }
        self.send(kind, request, tasks)
    }

    fn send<R: DeserializeOwned>(&self, kind: &str, request: &[u8], tasks: u32) -> Result<R, CallError> {
        let bytes = self.call_bytes_scaled(request, tasks)?;
        protocol::decode_response(&bytes).map_err(|f| match f {
            CallFailure::Failed(m) => CallError::Failed(m),
            CallFailure::Unsupported(_) => {
                CallError::Unsupported { kind: kind.to_owned(), sdk_version: self.sdk_version().to_owned() }
            }
            CallFailure::Malformed(detail) => CallError::Malformed { kind: kind.to_owned(), detail },
        })
    }

    /// Sends raw request bytes and returns the raw response bytes.
    pub fn call_bytes(&self, request: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_bytes_scaled(request, 1)
    }

    /// [`Self::call_bytes`] for a request that carries `tasks` tasks.
    fn call_bytes_scaled(&self, request: &[u8], tasks: u32) -> Result<Vec<u8>, CallError> {
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(call, Instant::now());
        let result = self.object.call(request, tasks);
        let started = self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&call);
        if let Some(took) = started.map(|s| s.elapsed()).filter(|d| *d > self.call_timeout) {
            tracing::warn!(connector = %self.name, took_ms = took.as_millis() as u64, "a call into the connector returned after the call timeout");
        }
        result.inspect_err(|e| match e {
            CallError::Aborted(_) if e.is_panic() => self.report_fault(EventType::Error, "CONNECTORPANIC", e),
            CallError::Crashed(_) => self.report_fault(EventType::Error, "CONNECTORCRASH", e),
            CallError::Killed { .. } => self.report_fault(EventType::Error, "CONNECTORTIMEOUT", e),
            _ => {}
        })
    }

    fn sdk_version(&self) -> &str {
        if self.info.sdk_version.is_empty() {
            "unknown"
        } else {
            &self.info.sdk_version
        }
    }

    /// Calls the connector's shutdown, once, on its lane with the call
    /// timeout (a hung connector is left as it is).
    pub fn shutdown(&self) {
        if self.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::debug!(connector = %self.name, loaded_at = %self.loaded_at, "shutting a connector instance down");
        let object = self.object.clone();
        let deadline = match *object {
            Instance::InProcess(_) | Instance::Remote(_) => self.call_timeout.min(SHUTDOWN_TIMEOUT),
            // The supervisor kills a process that does not end in time.
            Instance::Child(_) => SHUTDOWN_TIMEOUT + CHILD_GRACE,
        };
        if let Err(e) = self.lane.run(SHUTDOWN, deadline, move || object.shutdown()) {
            let e = CallError::from_lane(SHUTDOWN, e);
            tracing::warn!(connector = %self.name, error = %e, "the connector did not shut down; it is left running");
        }
    }
}

/// The name of the shutdown call in messages (it is not a request kind).
const SHUTDOWN: &str = "shutdown";

/// The longest a connector's shutdown is waited for.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// How much longer than a connector process's own deadline the lane waits.
const CHILD_GRACE: Duration = Duration::from_millis(500);

/// Where a connector instance runs (see `isolation/`).
pub(crate) enum Instance {
    /// Created in the daemon from the library's root module.
    InProcess(ConnectorBox),
    /// In a connector host process of its own.
    Child(Box<ChildConnector>),
    /// On another daemon of the cluster; calls are routed there.
    Remote(Box<RemoteInstance>),
}

impl Instance {
    /// One request document in, one response document out; a connector
    /// process gets the call timeout once for each of the `tasks` it carries.
    fn call(&self, request: &[u8], tasks: u32) -> Result<Vec<u8>, CallError> {
        // A connector process checks the start deadline itself, when the
        // call frame arrives; here it is checked right before the call.
        let late = crate::start_by::current().and_then(|by| by.passed_by());
        match self {
            Instance::InProcess(_) | Instance::Remote(_) if late.is_some() => {
                Err(CallError::PastStartBy { late_ms: late.unwrap_or_default().as_millis() as u64 })
            }
            Instance::InProcess(object) => match object.call(RSlice::from_slice(request)) {
                RResult::ROk(bytes) => Ok(bytes.into_vec()),
                RResult::RErr(e) => Err(CallError::Aborted(e.into_string())),
            },
            Instance::Child(child) => child.call_scaled(request, tasks).map_err(|e| match e {
                ChildError::Failed(m) => CallError::Aborted(m),
                ChildError::TimedOut(d) => {
                    CallError::Killed { kind: request_kind(request), timeout_ms: d.as_millis() as u64 }
                }
                restarting @ ChildError::Restarting { .. } => CallError::Restarting(restarting.to_string()),
                ChildError::NotStarted { late } => CallError::PastStartBy { late_ms: late.as_millis() as u64 },
                other => CallError::Crashed(other.to_string()),
            }),
            Instance::Remote(remote) => remote.call(request).map_err(CallError::Aborted),
        }
    }

    fn shutdown(&self) {
        match self {
            Instance::InProcess(object) => object.shutdown(),
            Instance::Child(child) => child.shutdown(),
            // Its own daemon shuts it down.
            Instance::Remote(_) => {}
        }
    }
}

/// The request kind of an encoded request (for messages).
fn request_kind(request: &[u8]) -> String {
    protocol::parse_request(request).map_or_else(|_| "a request".to_owned(), |env| env.kind.into_owned())
}

impl Drop for LiveConnector {
    fn drop(&mut self) {
        self.shutdown();
    }
}
