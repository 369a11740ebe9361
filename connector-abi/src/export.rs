//! What `export_connectors!` expands to: the root module of the library and
//! a dispatcher per connector instance that turns request documents into
//! calls of the [`Connector`] trait. Every call is wrapped in `catch_unwind`,
//! because a panic that crossed the binary boundary would end the host.

use crate::abi::{
    ConnectorBox, ConnectorLib, ConnectorLibRef, ConnectorObject, ConnectorObject_TO, HostBox, ABI_VERSION,
};
use crate::connector::{Connector, ConnectorError};
use crate::host::Host;
use crate::init::Init;
use crate::panic::panic_message;
use crate::protocol::{
    self, kind, BatchResponse, DocumentParamsResponse, GetExternalDocumentIdRequest, GetInternalDocumentParamsRequest,
    GetInternalObjectParamsRequest, IdResponse, InitRequest, InitResponse, IsMatchRequest, IsMatchResponse,
    ObjectParamsResponse, OutgoingTask, PrepareInternalObjectRequest, PrepareInternalObjectResponse, ProcessResponse,
    SyncTask, TaskBatch, PROTOCOL_REVISION,
};
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

/// One exported connector class.
#[derive(Debug, Clone, Copy)]
pub struct ClassEntry {
    pub name: &'static str,
    pub make: fn(config: &str, host: HostBox) -> Result<ConnectorBox, ConnectorError>,
}

impl ClassEntry {
    /// The entry of class `T` under `name`.
    pub const fn of<T: Connector>(name: &'static str) -> Self {
        ClassEntry { name, make: make_connector::<T> }
    }
}

static CLASSES: OnceLock<&'static [ClassEntry]> = OnceLock::new();

/// Builds the library's root module (called once, by the loader).
pub fn root_module(classes: &'static [ClassEntry]) -> ConnectorLibRef {
    let _ = CLASSES.set(classes);
    ConnectorLib { abi_version: ABI_VERSION, classes: exported_classes, new_connector }.leak_into_prefix()
}

fn classes() -> &'static [ClassEntry] {
    CLASSES.get().copied().unwrap_or(&[])
}

extern "C" fn exported_classes() -> RVec<RString> {
    classes().iter().map(|c| RString::from(c.name)).collect()
}

extern "C" fn new_connector(class: RStr<'_>, config: RStr<'_>, host: HostBox) -> RResult<ConnectorBox, RString> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let Some(entry) = classes().iter().find(|c| c.name == class.as_str()) else {
            let known: Vec<&str> = classes().iter().map(|c| c.name).collect();
            return Err(ConnectorError(format!(
                "class `{}` is not exported by this library (it exports: {})",
                class.as_str(),
                known.join(", ")
            )));
        };
        (entry.make)(config.as_str(), host)
    }));
    match outcome {
        Ok(Ok(connector)) => RResult::ROk(connector),
        Ok(Err(e)) => RResult::RErr(RString::from(e.0)),
        Err(panic) => RResult::RErr(RString::from(format!(
            "the connector panicked while being created: {}",
            panic_message(&*panic)
        ))),
    }
}

fn make_connector<T: Connector>(config: &str, host: HostBox) -> Result<ConnectorBox, ConnectorError> {
    let inner = T::create(config, Host::new(host))?;
    Ok(ConnectorObject_TO::from_value(Dispatcher { inner }, TD_Opaque))
}

struct Dispatcher<T: Connector> {
    inner: T,
}

impl<T: Connector> ConnectorObject for Dispatcher<T> {
    fn call(&self, request: RSlice<'_, u8>) -> RResult<RVec<u8>, RString> {
        match catch_unwind(AssertUnwindSafe(|| dispatch(&self.inner, request.as_slice()))) {
            Ok(bytes) => RResult::ROk(RVec::from(bytes)),
            Err(panic) => RResult::RErr(RString::from(format!("the connector panicked: {}", panic_message(&*panic)))),
        }
    }

    fn shutdown(&self) {
        // A panic in shutdown has no caller to report to; it is swallowed so
        // it cannot cross the boundary.
        let _ = catch_unwind(AssertUnwindSafe(|| self.inner.shutdown()));
    }
}

fn dispatch<T: Connector>(c: &T, request: &[u8]) -> Vec<u8> {
    let env = match protocol::parse_request(request) {
        Ok(env) => env,
        Err(response) => return response,
    };
    let body = env.body;
    match env.kind.as_ref() {
        kind::INIT => protocol::answer(body, |req: InitRequest| Ok(init_response(c, req))),
        kind::IS_MATCH => protocol::answer(body, |req: IsMatchRequest| {
            Ok(IsMatchResponse { process_type: c.is_match(&req.subscription, &req.object, req.task_type) })
        }),
        kind::PROCESS_ASYNC => protocol::answer(body, |task: OutgoingTask| Ok(c.process_internal_task_async(&task))),
        kind::PROCESS_SYNC => protocol::answer(body, |task: SyncTask| Ok(c.process_internal_task_sync(&task))),
        kind::PROCESS_ASYNC_BATCH => protocol::answer(body, |batch: TaskBatch| Ok(process_batch(c, &batch))),
        kind::GET_EXTERNAL_OBJECT_ID => protocol::answer(body, |req: protocol::GetExternalObjectIdRequest| {
            Ok(IdResponse { id: c.get_external_object_id(&req) })
        }),
        kind::GET_EXTERNAL_DOCUMENT_ID => protocol::answer(body, |req: GetExternalDocumentIdRequest| {
            Ok(IdResponse { id: c.get_external_document_id(&req.document, req.return_document_id) })
        }),
        kind::PREPARE_INTERNAL_OBJECT => protocol::answer(body, |req: PrepareInternalObjectRequest| {
            c.prepare_internal_object(&req).map(|object| PrepareInternalObjectResponse { object }).map_err(|e| e.0)
        }),
        kind::GET_INTERNAL_OBJECT_PARAMS => protocol::answer(body, |req: GetInternalObjectParamsRequest| {
            Ok(ObjectParamsResponse { params: c.get_internal_object_params(req.id, &req.object_type) })
        }),
        kind::GET_INTERNAL_DOCUMENT_PARAMS => protocol::answer(body, |req: GetInternalDocumentParamsRequest| {
            Ok(DocumentParamsResponse { params: c.get_internal_document_params(req.id, &req.class_name) })
        }),
        other => protocol::encode_unsupported(other),
    }
}

/// A batch through the connector's batch method; a panic out of it (an
/// override that sends one bulk request) is the first task's `Error`, and
/// the others stay queued.
fn process_batch<T: Connector>(c: &T, batch: &TaskBatch) -> BatchResponse {
    let results =
        catch_unwind(AssertUnwindSafe(|| c.process_internal_tasks_async(&batch.tasks))).unwrap_or_else(|panic| {
            vec![ProcessResponse::error(format!("the connector panicked: {}", panic_message(&*panic)))]
        });
    BatchResponse { results }
}

fn init_response<T: Connector>(c: &T, req: InitRequest) -> InitResponse {
    let mut init = Init::new(req.registry_name);
    c.init(&mut init);
    InitResponse {
        connector_name: init.connector_name.unwrap_or_default(),
        subscriptions: init.subscriptions,
        capabilities: kind::ALL.iter().map(|k| (*k).to_owned()).collect(),
        sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol: PROTOCOL_REVISION,
        subscription_errors: init.errors,
    }
}

/// Exports connector classes from a `cdylib` crate. Call it once, at the
/// crate root: `connector_abi::export_connectors!(MyConnector, MyOtherConnector);`
/// The class names are the type names.
///
/// The expansion uses abi_stable's export attribute, so the connector crate
/// lists `abi_stable` among its dependencies (it never uses it otherwise).
#[macro_export]
macro_rules! export_connectors {
    ($($class:ident),+ $(,)?) => {
        #[::abi_stable::export_root_module]
        fn __integration_bus_connectors() -> $crate::abi::ConnectorLibRef {
            static CLASSES: &[$crate::export::ClassEntry] =
                &[$($crate::export::ClassEntry::of::<$class>(stringify!($class))),+];
            $crate::export::root_module(CLASSES)
        }
    };
}
