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
pub const PROTOCOL_REVISION: u32 = 1;

/// The request kinds this SDK knows, in the order they were introduced.
pub mod kind {
    pub const INIT: &str = "init";
    pub const IS_MATCH: &str = "is_match";
    pub const PROCESS_ASYNC: &str = "process_internal_task_async";
    pub const PROCESS_SYNC: &str = "process_internal_task_sync";
    pub const GET_EXTERNAL_OBJECT_ID: &str = "get_external_object_id";
    pub const GET_EXTERNAL_DOCUMENT_ID: &str = "get_external_document_id";
    pub const PREPARE_INTERNAL_OBJECT: &str = "prepare_internal_object";
    pub const GET_INTERNAL_OBJECT_PARAMS: &str = "get_internal_object_params";
    pub const GET_INTERNAL_DOCUMENT_PARAMS: &str = "get_internal_document_params";

    /// Every kind above: what a connector built with this SDK supports.
    pub const ALL: [&str; 9] = [
        INIT,
        IS_MATCH,
        PROCESS_ASYNC,
        PROCESS_SYNC,
        GET_EXTERNAL_OBJECT_ID,
        GET_EXTERNAL_DOCUMENT_ID,
        PREPARE_INTERNAL_OBJECT,
        GET_INTERNAL_OBJECT_PARAMS,
        GET_INTERNAL_DOCUMENT_PARAMS,
    ];
}

/// The request kinds a connector can send to the host.
pub mod host_kind {
    pub const LOG_EVENT: &str = "log_event";
    pub const LOG_INCOMING_TASK: &str = "log_incoming_task";
    pub const REQUEST_PROCESSING: &str = "request_processing";
}

/// A request as read by the receiving side: the kind, and the body left
/// unparsed until the kind is known.
#[derive(Debug, Deserialize)]
pub struct RequestEnvelope<'a> {
    #[serde(borrow)]
    pub kind: std::borrow::Cow<'a, str>,
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
    pub status: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    pub body: Option<&'a RawValue>,
    #[serde(default)]
    pub message: Option<String>,
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

pub fn encode_ok<B: Serialize>(body: &B) -> Vec<u8> {
    serde_json::to_vec(&ResponseOut::Ok { body }).expect("response bodies always serialize")
}

pub fn encode_error(message: &str) -> Vec<u8> {
    let out: ResponseOut<'_, ()> = ResponseOut::Error { message };
    serde_json::to_vec(&out).expect("strings always serialize")
}

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

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct InitRequest {
    /// The code name the registry has for this connector.
    #[serde(default)]
    pub registry_name: String,
    /// The protocol revision of the host.
    #[serde(default)]
    pub host_protocol: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct InitResponse {
    /// The name the connector gives itself (must equal the registry's code name).
    pub connector_name: String,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// The request kinds this connector answers.
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub sdk_version: String,
    #[serde(default)]
    pub protocol: u32,
    /// Subscriptions the SDK refused while the connector made them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IsMatchRequest {
    /// The name of the custom subscription being asked.
    pub subscription: String,
    pub object: CmsObject,
    pub task_type: TaskType,
    /// The task's site (added in protocol revision 1; absent = global).
    #[serde(default)]
    pub site_name: Option<String>,
}

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
    pub task_type: TaskType,
    pub data_type: TaskDataType,
    #[serde(default)]
    pub site_name: Option<String>,
    #[serde(default)]
    pub title: String,
    pub object: CmsObject,
    #[serde(default)]
    pub translations: Translations,
}

/// A change handed to a connector synchronously, inside the change's request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncTask {
    pub task_type: TaskType,
    #[serde(default)]
    pub site_name: Option<String>,
    pub object: CmsObject,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessResponse {
    pub result: IntegrationProcessResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetExternalDocumentIdRequest {
    pub document: DocumentTranslation,
    /// True: the DocumentID of the culture version; false: the NodeID.
    pub return_document_id: bool,
}

/// An identifier answer; `None` when the connector does not know the item.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct IdResponse {
    #[serde(default)]
    pub id: Option<i64>,
}

/// External data to turn into an internal object or document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrepareInternalObjectRequest {
    pub external: Value,
    pub task_type: TaskType,
    pub data_type: TaskDataType,
    #[serde(default)]
    pub site_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrepareInternalObjectResponse {
    pub object: CmsObject,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetInternalObjectParamsRequest {
    /// The external ID found in a foreign key.
    pub id: i64,
    pub object_type: String,
}

/// What identifies an external object inside the content store.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct ObjectParams {
    pub code_name: String,
    #[serde(default)]
    pub site_name: Option<String>,
    #[serde(default)]
    pub parent_id: Option<i64>,
    #[serde(default)]
    pub group_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ObjectParamsResponse {
    #[serde(default)]
    pub params: Option<ObjectParams>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetInternalDocumentParamsRequest {
    pub id: i64,
    pub class_name: String,
}

/// What identifies an external document inside the content store.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct DocumentParams {
    pub node_guid: String,
    pub culture: String,
    pub site_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct DocumentParamsResponse {
    #[serde(default)]
    pub params: Option<DocumentParams>,
}

/// Re-exported so the host can name the translation request body.
pub type GetExternalObjectIdRequest = ObjectTranslation;

// ---- bodies of the connector -> host requests ----

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct LogEventRequest {
    #[serde(default)]
    pub event_type: EventType,
    /// The event code, e.g. `CREATEOBJECT`.
    pub code: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub document_name: Option<String>,
}

/// An incoming task a connector logs itself (the spec's `ProcessExternalTask`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogIncomingTaskRequest {
    pub external: Value,
    pub task_type: TaskType,
    pub data_type: TaskDataType,
    #[serde(default)]
    pub process_type: IntegrationProcessType,
    #[serde(default)]
    pub site_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct LogIncomingTaskResponse {
    pub task_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RequestProcessingRequest {
    /// One connector's queue, or every connector's when `None`.
    #[serde(default)]
    pub connector: Option<String>,
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
