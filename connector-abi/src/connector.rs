//! The trait a connector author implements: the spec's base connector class,
//! with a default for every method so a connector overrides only what it uses.

use crate::data::{CmsObject, DocumentData, DocumentTranslation, ObjectData, ObjectTranslation};
use crate::host::Host;
use crate::init::Init;
use crate::panic::panic_message;
use crate::protocol::{
    DocumentParams, ObjectParams, OutgoingTask, PrepareInternalObjectRequest, ProcessResponse, SyncTask,
};
use crate::types::{IntegrationProcessResult, TaskProcessType, TaskType};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a connector reports after processing a task.
pub type ProcessOutcome = ProcessResponse;

impl ProcessResponse {
    /// Processed successfully.
    pub fn ok() -> Self {
        ProcessResponse { result: IntegrationProcessResult::Ok, error_message: None }
    }
    /// A critical error: the queue stops at this task.
    pub fn error(message: impl Into<String>) -> Self {
        ProcessResponse { result: IntegrationProcessResult::Error, error_message: Some(message.into()) }
    }
    /// A non-critical error: recorded, and processing goes on.
    pub fn error_and_skip(message: impl Into<String>) -> Self {
        ProcessResponse { result: IntegrationProcessResult::ErrorAndSkip, error_message: Some(message.into()) }
    }
    /// Leave the task for the next run.
    pub fn skip_now() -> Self {
        ProcessResponse { result: IntegrationProcessResult::SkipNow, error_message: None }
    }
}

/// An error a connector returns from a fallible method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorError(pub String);

impl ConnectorError {
    /// Creates an error carrying `message`, which the bus reports as the reason
    /// the call failed.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectorError(message.into())
    }
}

impl std::fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectorError {}

impl From<String> for ConnectorError {
    fn from(s: String) -> Self {
        ConnectorError(s)
    }
}

impl From<&str> for ConnectorError {
    fn from(s: &str) -> Self {
        ConnectorError(s.to_owned())
    }
}

/// A connector class. Export it with [`crate::export_connectors!`].
///
/// Every method has a default; override what your connector needs:
/// outgoing async → `process_object_async` / `process_document_async`
/// (plus `get_external_object_id` / `get_external_document_id` when you
/// translate foreign keys); outgoing sync → `process_object_sync` /
/// `process_document_sync`; incoming → `prepare_internal_object` (plus
/// `get_internal_object_params` / `get_internal_document_params`).
///
/// A panic in any method is caught and reported as that call's error.
pub trait Connector: Send + Sync + Sized + 'static {
    /// Creates the connector from its registry configuration text
    /// (`ConnectorConfig`, possibly empty). Keep `host` to write to the event
    /// log or log incoming tasks later.
    fn create(config: &str, host: Host) -> Result<Self, ConnectorError>;

    /// Sets the connector name and makes the subscriptions (the spec's `Init`).
    fn init(&self, init: &mut Init);

    /// Decides a custom subscription (see `Subscription::custom`): return the
    /// process type when the change matches.
    fn is_match(&self, _subscription: &str, _object: &CmsObject, _task_type: TaskType) -> Option<TaskProcessType> {
        None
    }

    /// Processes an outgoing task asynchronously. The default hands objects to
    /// [`Self::process_object_async`] and documents to
    /// [`Self::process_document_async`].
    fn process_internal_task_async(&self, task: &OutgoingTask) -> ProcessOutcome {
        match &task.object {
            CmsObject::Object(o) => self.process_object_async(o, task),
            CmsObject::Document(d) => self.process_document_async(d, task),
        }
    }

    /// Processes several queued tasks of this connector, oldest first, in one
    /// go — override it to send one bulk request to your system. Return one
    /// outcome per task processed, in order; stop after the first `Error`
    /// (the tasks after it were not attempted and stay queued). The bus
    /// hands over up to `ConnectorBatchSize` tasks at once (1 by default,
    /// and this method is then never called); a crash or a timeout of the
    /// whole call repeats at most the tasks of that batch.
    ///
    /// The default processes each task with
    /// [`Self::process_internal_task_async`] in turn, a panic being that
    /// task's `Error`.
    fn process_internal_tasks_async(&self, tasks: &[OutgoingTask]) -> Vec<ProcessOutcome> {
        each_in_turn(self, tasks)
    }

    /// Processes an outgoing task for an object; `object` is `task.object`
    /// unwrapped. The default returns `Error`, which stops the connector's
    /// queue at the task, so override it when you subscribe to objects
    /// asynchronously.
    fn process_object_async(&self, _object: &ObjectData, _task: &OutgoingTask) -> ProcessOutcome {
        ProcessOutcome::error("this connector does not process objects asynchronously")
    }

    /// Processes an outgoing task for a document; `document` is `task.object`
    /// unwrapped. The default returns `Error`, which stops the connector's
    /// queue at the task, so override it when you subscribe to documents
    /// asynchronously.
    fn process_document_async(&self, _document: &DocumentData, _task: &OutgoingTask) -> ProcessOutcome {
        ProcessOutcome::error("this connector does not process documents asynchronously")
    }

    /// Processes a change synchronously, inside the change's own request.
    fn process_internal_task_sync(&self, task: &SyncTask) -> ProcessOutcome {
        match &task.object {
            CmsObject::Object(o) => self.process_object_sync(o, task),
            CmsObject::Document(d) => self.process_document_sync(d, task),
        }
    }

    /// Processes a change to an object synchronously (`SyncSnapshot`), right
    /// after it commits. The default returns `Error`, which also keeps the
    /// connectors after this one from getting the change.
    fn process_object_sync(&self, _object: &ObjectData, _task: &SyncTask) -> ProcessOutcome {
        ProcessOutcome::error("this connector does not process objects synchronously")
    }

    /// Processes a change to a document synchronously (`SyncSnapshot`), right
    /// after it commits. The default returns `Error`, which also keeps the
    /// connectors after this one from getting the change.
    fn process_document_sync(&self, _document: &DocumentData, _task: &SyncTask) -> ProcessOutcome {
        ProcessOutcome::error("this connector does not process documents synchronously")
    }

    /// The external ID of the object a foreign key refers to, or `None`.
    fn get_external_object_id(&self, _object: &ObjectTranslation) -> Option<i64> {
        None
    }

    /// The external ID of the document a foreign key refers to (its
    /// DocumentID when `return_document_id`, its NodeID otherwise), or `None`.
    fn get_external_document_id(&self, _document: &DocumentTranslation, _return_document_id: bool) -> Option<i64> {
        None
    }

    /// Turns external data into an internal object or document (incoming).
    fn prepare_internal_object(&self, _request: &PrepareInternalObjectRequest) -> Result<CmsObject, ConnectorError> {
        Err(ConnectorError::new("this connector does not prepare incoming objects"))
    }

    /// Identifies, for the content store, the external object with `id`.
    fn get_internal_object_params(&self, _id: i64, _object_type: &str) -> Option<ObjectParams> {
        None
    }

    /// Identifies, for the content store, the external document with `id`.
    fn get_internal_document_params(&self, _id: i64, _class_name: &str) -> Option<DocumentParams> {
        None
    }

    /// Releases resources; called once when the host drops this instance.
    fn shutdown(&self) {}
}

/// The default batch method: each task in order; a panic is that task's
/// `Error` (and the end of the batch, as any `Error` is): the tasks before
/// it keep their results.
pub(crate) fn each_in_turn<T: Connector>(c: &T, tasks: &[OutgoingTask]) -> Vec<ProcessResponse> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        let result = catch_unwind(AssertUnwindSafe(|| c.process_internal_task_async(task))).unwrap_or_else(|panic| {
            ProcessResponse::error(format!("the connector panicked: {}", panic_message(&*panic)))
        });
        let stop = result.result == IntegrationProcessResult::Error;
        results.push(result);
        if stop {
            break;
        }
    }
    results
}
