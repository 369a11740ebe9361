//! The documents exchanged through the frozen binary surface.
//!
//! A request is `{"kind": "<kind>", "body": {...}}`; a response is
//! `{"status": "ok", "body": {...}}`, `{"status": "error", "message": "..."}`
//! or `{"status": "unsupported", "kind": "<kind>"}`.
//!
//! Compatibility rule: a request kind, once published, never changes meaning;
//! fields are only ever added, always optional (missing ones take their
//! default, unknown ones are ignored). A new capability is a new request
//! kind. A connector built with an older SDK answers `unsupported` to kinds it
//! does not know, and reports the kinds it knows at init.

use crate::data::{CmsObject, DocumentTranslation, ObjectTranslation, Translations};
use crate::subscription::Subscription;
use crate::types::{
    EventType, IntegrationProcessResult, IntegrationProcessType, TaskDataType, TaskProcessType, TaskType,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::fmt;

/// The revision of the documents this SDK speaks. Raised when a request kind
/// or field is added; never breaks older connectors.
pub const PROTOCOL_REVISION: u32 = 2;

/// The request kinds this SDK knows, in the order they were introduced.
pub mod kind {
    /// Asks the connector for its name, subscriptions and capabilities, on
    /// every (re)initialization ([`InitRequest`](super::InitRequest) →
    /// [`InitResponse`](super::InitResponse)).
    pub const INIT: &str = "init";
    /// Asks the connector to decide one of its custom subscriptions
    /// ([`IsMatchRequest`](super::IsMatchRequest) →
    /// [`IsMatchResponse`](super::IsMatchResponse)).
    pub const IS_MATCH: &str = "is_match";
    /// Delivers a queued outgoing task ([`OutgoingTask`](super::OutgoingTask) →
    /// [`ProcessResponse`](super::ProcessResponse)).
    pub const PROCESS_ASYNC: &str = "process_internal_task_async";
    /// Delivers a change synchronously ([`SyncTask`](super::SyncTask) →
    /// [`ProcessResponse`](super::ProcessResponse)).
    pub const PROCESS_SYNC: &str = "process_internal_task_sync";
    /// Asks for the external ID of a referenced object
    /// ([`GetExternalObjectIdRequest`](super::GetExternalObjectIdRequest) →
    /// [`IdResponse`](super::IdResponse)).
    pub const GET_EXTERNAL_OBJECT_ID: &str = "get_external_object_id";
    /// Asks for the external ID of a referenced document
    /// ([`GetExternalDocumentIdRequest`](super::GetExternalDocumentIdRequest) →
    /// [`IdResponse`](super::IdResponse)).
    pub const GET_EXTERNAL_DOCUMENT_ID: &str = "get_external_document_id";
    /// Asks the connector to turn external data into an object or document
    /// while an incoming task is logged
    /// ([`PrepareInternalObjectRequest`](super::PrepareInternalObjectRequest) →
    /// [`PrepareInternalObjectResponse`](super::PrepareInternalObjectResponse)).
    pub const PREPARE_INTERNAL_OBJECT: &str = "prepare_internal_object";
    /// Asks what an external object ID found in a foreign key identifies in the
    /// content store
    /// ([`GetInternalObjectParamsRequest`](super::GetInternalObjectParamsRequest)
    /// → [`ObjectParamsResponse`](super::ObjectParamsResponse)).
    pub const GET_INTERNAL_OBJECT_PARAMS: &str = "get_internal_object_params";
    /// Asks what an external document ID found in a foreign key identifies in
    /// the content store
    /// ([`GetInternalDocumentParamsRequest`](super::GetInternalDocumentParamsRequest)
    /// → [`DocumentParamsResponse`](super::DocumentParamsResponse)).
    pub const GET_INTERNAL_DOCUMENT_PARAMS: &str = "get_internal_document_params";
    /// Delivers several queued outgoing tasks of one queue in one request,
    /// oldest first ([`TaskBatch`](super::TaskBatch) →
    /// [`BatchResponse`](super::BatchResponse)); protocol revision 2. The SDK
    /// answers it by calling `process_internal_task_async` for each task in
    /// order, stopping after the first `Error`.
    pub const PROCESS_ASYNC_BATCH: &str = "process_internal_tasks_async";

    /// Every kind above: what a connector built with this SDK supports.
    pub const ALL: [&str; 10] = [
        INIT,
        IS_MATCH,
        PROCESS_ASYNC,
        PROCESS_SYNC,
        GET_EXTERNAL_OBJECT_ID,
        GET_EXTERNAL_DOCUMENT_ID,
        PREPARE_INTERNAL_OBJECT,
        GET_INTERNAL_OBJECT_PARAMS,
        GET_INTERNAL_DOCUMENT_PARAMS,
        PROCESS_ASYNC_BATCH,
    ];
}

/// The request kinds a connector can send to the host.
pub mod host_kind {
    /// Writes a row to the event log
    /// ([`LogEventRequest`](super::LogEventRequest) → [`Empty`](super::Empty));
    /// sent by [`crate::Host::log_event`].
    pub const LOG_EVENT: &str = "log_event";
    /// Logs an incoming task
    /// ([`LogIncomingTaskRequest`](super::LogIncomingTaskRequest) →
    /// [`LogIncomingTaskResponse`](super::LogIncomingTaskResponse)); sent by
    /// [`crate::Host::process_external_task`].
    pub const LOG_INCOMING_TASK: &str = "log_incoming_task";
    /// Asks the bus to process incoming tasks now
    /// ([`RequestProcessingRequest`](super::RequestProcessingRequest) →
    /// [`Empty`](super::Empty)); sent by [`crate::Host::request_processing`].
    pub const REQUEST_PROCESSING: &str = "request_processing";
    /// Reads a value of the connector's state
    /// ([`StateGetRequest`](super::StateGetRequest) →
    /// [`StateGetResponse`](super::StateGetResponse)); sent by
    /// [`crate::Host::state_get`].
    pub const STATE_GET: &str = "state_get";
    /// Writes a value of the connector's state
    /// ([`StatePutRequest`](super::StatePutRequest) → [`Empty`](super::Empty));
    /// sent by [`crate::Host::state_put`].
    pub const STATE_PUT: &str = "state_put";
    /// Deletes a key of the connector's state
    /// ([`StateGetRequest`](super::StateGetRequest) → [`Empty`](super::Empty));
    /// sent by [`crate::Host::state_delete`].
    pub const STATE_DELETE: &str = "state_delete";
}

/// A request as read by the receiving side: the kind, and the body left
/// unparsed until the kind is known.
#[derive(Debug, Deserialize)]
pub struct RequestEnvelope<'a> {
    /// The request kind: one of [`kind`] (to a connector) or [`host_kind`] (to
    /// the host).
    #[serde(borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    /// The request body, not parsed yet (read it with [`decode_body`]); `None`
    /// when the request has none.
    #[serde(borrow, default)]
    pub body: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct RequestOut<'a, B: Serialize> {
    kind: &'a str,
    body: &'a B,
}

/// Encodes a request document.
pub fn encode_request<B: Serialize>(kind: &str, body: &B) -> Vec<u8> {
    serde_json::to_vec(&RequestOut { kind, body }).expect("request bodies always serialize")
}

/// Encodes a request document around a body that is already JSON (a task
/// payload serialized once when it was logged).
pub fn encode_request_raw(kind: &str, body_json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body_json.len() + kind.len() + 24);
    out.extend_from_slice(b"{\"kind\":");
    serde_json::to_writer(&mut out, kind).expect("a string always serializes");
    out.extend_from_slice(b",\"body\":");
    out.extend_from_slice(body_json);
    out.push(b'}');
    out
}

/// Parses a request body; an absent body reads as `null`.
pub fn decode_body<T: DeserializeOwned>(body: Option<&RawValue>) -> Result<T, serde_json::Error> {
    serde_json::from_str(body.map_or("null", RawValue::get))
}

/// Reads a request document; a document that cannot be read yields the
/// error response to send back.
pub fn parse_request(bytes: &[u8]) -> Result<RequestEnvelope<'_>, Vec<u8>> {
    serde_json::from_slice(bytes).map_err(|e| encode_error(&format!("the request is not a valid document: {e}")))
}

/// Answers a request: parses its body as `Req`, runs `f`, and encodes the
/// result (or the error) as the response document.
pub fn answer<Req: DeserializeOwned, Res: Serialize>(
    body: Option<&RawValue>,
    f: impl FnOnce(Req) -> Result<Res, String>,
) -> Vec<u8> {
    match decode_body::<Req>(body) {
        Ok(req) => match f(req) {
            Ok(res) => encode_ok(&res),
            Err(message) => encode_error(&message),
        },
        Err(e) => encode_error(&format!("the request body is not valid: {e}")),
    }
}

/// A response as read by the requesting side.
#[derive(Debug, Deserialize)]
pub struct ResponseEnvelope<'a> {
    /// `ok`, `error` or `unsupported`.
    pub status: std::borrow::Cow<'a, str>,
    /// The answer body when `status` is `ok` (read it with [`decode_body`]).
    #[serde(borrow, default)]
    pub body: Option<&'a RawValue>,
    /// Why the call failed, when `status` is `error`.
    #[serde(default)]
    pub message: Option<String>,
    /// The request kind the other side does not know, when `status` is
    /// `unsupported`.
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum ResponseOut<'a, B: Serialize> {
    Ok { body: &'a B },
    Error { message: &'a str },
    Unsupported { kind: &'a str },
}

/// Encodes a successful response carrying `body`.
pub fn encode_ok<B: Serialize>(body: &B) -> Vec<u8> {
    serde_json::to_vec(&ResponseOut::Ok { body }).expect("response bodies always serialize")
}

/// Encodes an error response with `message`.
pub fn encode_error(message: &str) -> Vec<u8> {
    let out: ResponseOut<'_, ()> = ResponseOut::Error { message };
    serde_json::to_vec(&out).expect("strings always serialize")
}

/// Encodes the response to a request of a `kind` this side does not know.
pub fn encode_unsupported(kind: &str) -> Vec<u8> {
    let out: ResponseOut<'_, ()> = ResponseOut::Unsupported { kind };
    serde_json::to_vec(&out).expect("strings always serialize")
}

/// Why a call across the boundary did not produce the expected body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// The other side answered with an error (its message).
    Failed(String),
    /// The other side does not know this request kind.
    Unsupported(String),
    /// The response was not a valid document.
    Malformed(String),
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallFailure::Failed(m) => f.write_str(m),
            CallFailure::Unsupported(k) => {
                write!(f, "request `{k}` is not supported by the other side")
            }
            CallFailure::Malformed(m) => write!(f, "malformed response: {m}"),
        }
    }
}

impl std::error::Error for CallFailure {}

/// Reads a response document into the expected body type.
pub fn decode_response<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CallFailure> {
    let env: ResponseEnvelope<'_> = serde_json::from_slice(bytes).map_err(|e| CallFailure::Malformed(e.to_string()))?;
    match env.status.as_ref() {
        "ok" => decode_body(env.body).map_err(|e| CallFailure::Malformed(format!("unexpected body: {e}"))),
        "error" => Err(CallFailure::Failed(env.message.unwrap_or_else(|| "error without a message".into()))),
        "unsupported" => Err(CallFailure::Unsupported(env.kind.unwrap_or_default())),
        other => Err(CallFailure::Malformed(format!("unknown status `{other}`"))),
    }
}

// ---- bodies of the host -> connector requests ----

/// The body of an [`kind::INIT`] request, sent whenever the connector is
/// (re)initialized.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct InitRequest {
    /// The code name the registry has for this connector.
    #[serde(default)]
    pub registry_name: String,
    /// The protocol revision of the host.
    #[serde(default)]
    pub host_protocol: u32,
}

/// The answer to [`kind::INIT`]: what the connector declared in
/// [`crate::Connector::init`], plus what its SDK adds.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct InitResponse {
    /// The name the connector gives itself (must equal the registry's code name).
    pub connector_name: String,
    /// The subscriptions the connector made and the SDK accepted.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// The request kinds this connector answers.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The version of `connector-abi` the connector was built with.
    #[serde(default)]
    pub sdk_version: String,
    /// The protocol revision of the connector's SDK ([`PROTOCOL_REVISION`] when
    /// it was built).
    #[serde(default)]
    pub protocol: u32,
    /// Subscriptions the SDK refused while the connector made them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_errors: Vec<String>,
}

/// The body of an [`kind::IS_MATCH`] request: one change to check against one
/// custom subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IsMatchRequest {
    /// The name of the custom subscription being asked.
    pub subscription: String,
    /// The changed object or document.
    pub object: CmsObject,
    /// What happened to it.
    pub task_type: TaskType,
    /// The task's site (added in protocol revision 1; absent = global).
    #[serde(default)]
    pub site_name: Option<String>,
}

/// The answer to [`kind::IS_MATCH`].
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct IsMatchResponse {
    /// The process type when the change matches, `None` when it does not.
    #[serde(default)]
    pub process_type: Option<TaskProcessType>,
}

/// An outgoing task handed to a connector for asynchronous processing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutgoingTask {
    /// The task's stable ID: the same on every delivery, so a connector can
    /// deduplicate a task delivered twice after a crash.
    #[serde(default)]
    pub task_id: i64,
    /// What happened to the object or document.
    pub task_type: TaskType,
    /// The data mode of the connector's matching subscription: whether
    /// `translations` is filled and whether an object carries its children and
    /// bindings.
    pub data_type: TaskDataType,
    /// The task's site: the object's or document's own site, or the target site
    /// of AddToSite and RemoveFromSite; `None` for a global object.
    #[serde(default)]
    pub site_name: Option<String>,
    /// The task title, as the task lists show it, e.g. `Create User 'Antonio'`.
    #[serde(default)]
    pub title: String,
    /// The object or document after the change (before it, for a delete).
    pub object: CmsObject,
    /// The translation data captured when the task was logged, for
    /// [`crate::translate_columns_to_external`]; empty for the Simple data
    /// mode.
    #[serde(default)]
    pub translations: Translations,
    /// With several daemons on one database (PostgreSQL): the epoch of the
    /// lease this delivery is made under. It grows each time the queue
    /// moves to another daemon, so an external system that remembers the
    /// highest token it accepted per connector, and refuses a write with a
    /// lower one, is safe even from a daemon that stalled between its lease
    /// check and its call. `None` on SQLite (one daemon owns every queue).
    #[serde(default)]
    pub fencing_token: Option<i64>,
}

/// A change handed to a connector synchronously, inside the change's request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncTask {
    /// What happened to the object or document.
    pub task_type: TaskType,
    /// The task's site: the object's or document's own site, or the target site
    /// of AddToSite and RemoveFromSite; `None` for a global object.
    #[serde(default)]
    pub site_name: Option<String>,
    /// The object or document after the change (before it, for a delete); an
    /// object comes with its children and bindings. There is no translation
    /// data.
    pub object: CmsObject,
}

/// The answer to a task delivery, asynchronous or synchronous. Build it with
/// [`ProcessResponse::ok`], [`ProcessResponse::error`],
/// [`ProcessResponse::error_and_skip`] or [`ProcessResponse::skip_now`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessResponse {
    /// What the bus does next with the task and the queue; see
    /// [`IntegrationProcessResult`].
    pub result: IntegrationProcessResult,
    /// Why processing failed, for `Error` and `ErrorAndSkip`: recorded with the
    /// task (asynchronous) or in the event log (synchronous).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// The body of a [`kind::PROCESS_ASYNC_BATCH`] request: tasks of one queue,
/// oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskBatch {
    /// The tasks, each as a [`kind::PROCESS_ASYNC`] request would carry it.
    pub tasks: Vec<OutgoingTask>,
}

/// The answer to a [`kind::PROCESS_ASYNC_BATCH`] request: one result per
/// task processed, in order. Fewer results than tasks means the connector
/// stopped after an `Error`; the rest were not attempted and stay queued.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct BatchResponse {
    /// The results of the first tasks, in order.
    pub results: Vec<ProcessResponse>,
}

/// The body of a [`kind::GET_EXTERNAL_DOCUMENT_ID`] request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetExternalDocumentIdRequest {
    /// The translation record of the referenced document.
    pub document: DocumentTranslation,
    /// True: the DocumentID of the culture version; false: the NodeID.
    pub return_document_id: bool,
}

/// An identifier answer; `None` when the connector does not know the item.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct IdResponse {
    /// The external ID, or `None` when the connector does not know the item.
    #[serde(default)]
    pub id: Option<i64>,
}

/// External data to turn into an internal object or document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrepareInternalObjectRequest {
    /// The external data exactly as the connector passed it to
    /// [`crate::Host::process_external_task`].
    pub external: Value,
    /// What must happen in the content store; the prepared item must fit it (an
    /// object for object task types, a document for document task types).
    pub task_type: TaskType,
    /// How much data the task carries. With Simple, foreign-key values must
    /// already be internal IDs; with SimpleSnapshot and Snapshot they are
    /// external IDs, and the bus asks `get_internal_object_params` /
    /// `get_internal_document_params` about each.
    pub data_type: TaskDataType,
    /// The site given when the task was logged, if any.
    #[serde(default)]
    pub site_name: Option<String>,
}

/// The answer to [`kind::PREPARE_INTERNAL_OBJECT`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrepareInternalObjectResponse {
    /// The object or document to apply to the content store. The bus fills in
    /// its `foreign_keys` itself.
    pub object: CmsObject,
}

/// The body of a [`kind::GET_INTERNAL_OBJECT_PARAMS`] request, sent for every
/// foreign key to an object when an incoming SimpleSnapshot or Snapshot task is
/// logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetInternalObjectParamsRequest {
    /// The external ID found in a foreign key.
    pub id: i64,
    /// The object type the foreign key refers to.
    pub object_type: String,
}

/// What identifies an external object inside the content store.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct ObjectParams {
    /// The object's code name; with `site_name`, what the bus finds the
    /// internal object by.
    pub code_name: String,
    /// The code name of the object's site; `None` for a global object.
    #[serde(default)]
    pub site_name: Option<String>,
    /// The internal ID of the object's parent, for object types that have a
    /// parent; kept in the task's translation data.
    #[serde(default)]
    pub parent_id: Option<i64>,
    /// The ID of the group the object belongs to, if any; kept in the task's
    /// translation data.
    #[serde(default)]
    pub group_id: Option<i64>,
}

/// The answer to [`kind::GET_INTERNAL_OBJECT_PARAMS`].
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ObjectParamsResponse {
    /// What identifies the object, or `None` when the connector does not know
    /// the external ID (applying the task then fails on that foreign key).
    #[serde(default)]
    pub params: Option<ObjectParams>,
}

/// The body of a [`kind::GET_INTERNAL_DOCUMENT_PARAMS`] request, sent for every
/// foreign key to a document when an incoming SimpleSnapshot task is logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetInternalDocumentParamsRequest {
    /// The external ID found in the foreign key.
    pub id: i64,
    /// The document type, when known; may be empty.
    pub class_name: String,
}

/// What identifies an external document inside the content store.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct DocumentParams {
    /// The GUID of the node; with `culture` and `site_name`, what the bus finds
    /// the internal document by.
    pub node_guid: String,
    /// The culture code of the version, e.g. `en-US`.
    pub culture: String,
    /// The code name of the document's site.
    pub site_name: String,
}

/// The answer to [`kind::GET_INTERNAL_DOCUMENT_PARAMS`].
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct DocumentParamsResponse {
    /// What identifies the document, or `None` when the connector does not know
    /// the external ID (applying the task then fails on that foreign key).
    #[serde(default)]
    pub params: Option<DocumentParams>,
}

/// Re-exported so the host can name the translation request body.
pub type GetExternalObjectIdRequest = ObjectTranslation;

// ---- bodies of the connector -> host requests ----

/// The body of a [`host_kind::LOG_EVENT`] request; see
/// [`crate::Host::log_event`].
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct LogEventRequest {
    /// The row's severity; `Information` when absent.
    #[serde(default)]
    pub event_type: EventType,
    /// The event code, e.g. `CREATEOBJECT`.
    pub code: String,
    /// The event's text.
    #[serde(default)]
    pub description: String,
    /// The name of the document or object the event concerns, if any.
    #[serde(default)]
    pub document_name: Option<String>,
}

/// An incoming task a connector logs itself (the spec's `ProcessExternalTask`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LogIncomingTaskRequest {
    /// The external data; the bus hands it unchanged to the connector's
    /// `prepare_internal_object`.
    pub external: Value,
    /// What must happen in the content store; `All` is refused.
    pub task_type: TaskType,
    /// How much data the task carries; Snapshot is refused for documents.
    pub data_type: TaskDataType,
    /// How the task is processed and what happens on error; `Default` when
    /// absent.
    #[serde(default)]
    pub process_type: IntegrationProcessType,
    /// The task's site: the target site for AddToSite and RemoveFromSite
    /// (required there), otherwise the site of an object or document that names
    /// none itself.
    #[serde(default)]
    pub site_name: Option<String>,
}

/// The answer to [`host_kind::LOG_INCOMING_TASK`].
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct LogIncomingTaskResponse {
    /// The ID of the new incoming task.
    pub task_id: i64,
}

/// The body of a [`host_kind::REQUEST_PROCESSING`] request; see
/// [`crate::Host::request_processing`].
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RequestProcessingRequest {
    /// One connector's queue, or every connector's when `None`.
    #[serde(default)]
    pub connector: Option<String>,
}

/// The body of a [`host_kind::STATE_GET`] or [`host_kind::STATE_DELETE`]
/// request: the key.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct StateGetRequest {
    /// The key: 1 to 200 characters.
    pub key: String,
}

/// The answer to a [`host_kind::STATE_GET`] request: the value, if the key
/// has one.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct StateGetResponse {
    /// The value, or `None` when the key has none.
    #[serde(default)]
    pub value: Option<String>,
}

/// The body of a [`host_kind::STATE_PUT`] request.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct StatePutRequest {
    /// The key: 1 to 200 characters.
    pub key: String,
    /// The value: at most 64 KiB.
    pub value: String,
}

/// An empty response body.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_request_equals_typed_request() {
        let body = IdResponse { id: Some(7) };
        let typed = encode_request("x", &body);
        let raw = encode_request_raw("x", &serde_json::to_vec(&body).unwrap());
        assert_eq!(typed, raw);
        let env: RequestEnvelope<'_> = serde_json::from_slice(&raw).unwrap();
        assert_eq!(env.kind, "x");
        let back: IdResponse = decode_body(env.body).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn responses_decode_to_their_failure() {
        assert_eq!(decode_response::<IdResponse>(&encode_ok(&IdResponse { id: Some(3) })).unwrap().id, Some(3));
        assert_eq!(decode_response::<Empty>(&encode_error("boom")).unwrap_err(), CallFailure::Failed("boom".into()));
        assert_eq!(
            decode_response::<Empty>(&encode_unsupported("future")).unwrap_err(),
            CallFailure::Unsupported("future".into())
        );
        assert!(matches!(decode_response::<Empty>(b"not json"), Err(CallFailure::Malformed(_))));
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_ones_defaulted() {
        let init: InitResponse =
            serde_json::from_str(r#"{"connector_name":"X","added_in_a_later_revision":true}"#).unwrap();
        assert_eq!(init.connector_name, "X");
        assert!(init.capabilities.is_empty());
    }
}
