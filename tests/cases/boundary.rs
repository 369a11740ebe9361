//! The library boundary: panics become errors, older builds keep working,
//! unknown requests are answered "unsupported", host requests reach the bus.
//! These tests load the real cdylibs through the real loader, in this process.

use bus_core::connector::{CallError, LiveConnector};
use bus_core::host::{HostError, HostServices};
use bus_core::loader::Loader;
use bus_core::registry::ConnectorRow;
use bus_tests::TestEnv;
use connector_abi::protocol::{
    self, kind, CallFailure, GetExternalDocumentIdRequest, GetInternalDocumentParamsRequest,
    GetInternalObjectParamsRequest, IdResponse, IsMatchRequest, LogEventRequest, LogIncomingTaskRequest, OutgoingTask,
    PrepareInternalObjectRequest, ProcessResponse, RequestProcessingRequest, SyncTask,
};
use connector_abi::{
    CmsObject, DocumentTranslation, IntegrationProcessResult, ObjectData, ObjectTranslation, TaskDataType, TaskType,
};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(String, LogEventRequest)>>,
}

impl HostServices for Recorder {
    fn log_event(&self, connector: &str, event: LogEventRequest) -> Result<(), HostError> {
        self.events.lock().unwrap().push((connector.to_owned(), event));
        Ok(())
    }
    fn log_incoming_task(&self, _c: &str, _t: LogIncomingTaskRequest) -> Result<i64, HostError> {
        Err(HostError::Invalid("not in this test".into()))
    }
    fn request_processing(&self, _c: &str, _r: RequestProcessingRequest) -> Result<(), HostError> {
        Ok(())
    }
}

fn row(name: &str, assembly: &str, class: &str, config: &str) -> ConnectorRow {
    ConnectorRow {
        id: 1,
        name: name.into(),
        display_name: name.into(),
        assembly_name: assembly.into(),
        class_name: class.into(),
        enabled: true,
        last_modified: String::new(),
        config: config.into(),
        ..Default::default()
    }
}

fn load(env: &TestEnv, recorder: &Arc<Recorder>, r: &ConnectorRow) -> Arc<LiveConnector> {
    let loader = Loader::new(&env.connectors_dir, env.dir.path().join("state"));
    loader.load(r, recorder.clone()).unwrap_or_else(|e| panic!("{} should load: {e}", r.name))
}

fn user() -> CmsObject {
    CmsObject::Object(ObjectData {
        object_type: "cms.user".into(),
        id: 7,
        code_name: "antonio".into(),
        ..Default::default()
    })
}

fn outgoing_task() -> OutgoingTask {
    OutgoingTask {
        task_id: 42,
        task_type: TaskType::CreateObject,
        data_type: TaskDataType::Simple,
        site_name: None,
        title: "Create User 'antonio'".into(),
        object: user(),
        translations: Default::default(),
        fencing_token: None,
    }
}

/// One valid request of every kind but init.
fn every_request() -> Vec<(&'static str, Vec<u8>)> {
    let doc = DocumentTranslation { id: 3, node_guid: "g".into(), site_name: "s".into(), ..Default::default() };
    vec![
        (
            kind::IS_MATCH,
            protocol::encode_request(
                kind::IS_MATCH,
                &IsMatchRequest {
                    subscription: "everything".into(),
                    object: user(),
                    task_type: TaskType::CreateObject,
                    site_name: None,
                },
            ),
        ),
        (kind::PROCESS_ASYNC, protocol::encode_request(kind::PROCESS_ASYNC, &outgoing_task())),
        (
            kind::PROCESS_SYNC,
            protocol::encode_request(
                kind::PROCESS_SYNC,
                &SyncTask { task_type: TaskType::CreateObject, site_name: None, object: user() },
            ),
        ),
        (
            kind::GET_EXTERNAL_OBJECT_ID,
            protocol::encode_request(
                kind::GET_EXTERNAL_OBJECT_ID,
                &ObjectTranslation {
                    object_type: "cms.role".into(),
                    id: 5,
                    code_name: "editors".into(),
                    ..Default::default()
                },
            ),
        ),
        (
            kind::GET_EXTERNAL_DOCUMENT_ID,
            protocol::encode_request(
                kind::GET_EXTERNAL_DOCUMENT_ID,
                &GetExternalDocumentIdRequest { document: doc, return_document_id: true },
            ),
        ),
        (
            kind::PREPARE_INTERNAL_OBJECT,
            protocol::encode_request(
                kind::PREPARE_INTERNAL_OBJECT,
                &PrepareInternalObjectRequest {
                    external: json!({"id": 1}),
                    task_type: TaskType::CreateObject,
                    data_type: TaskDataType::Simple,
                    site_name: None,
                },
            ),
        ),
        (
            kind::GET_INTERNAL_OBJECT_PARAMS,
            protocol::encode_request(
                kind::GET_INTERNAL_OBJECT_PARAMS,
                &GetInternalObjectParamsRequest { id: 1, object_type: "cms.role".into() },
            ),
        ),
        (
            kind::GET_INTERNAL_DOCUMENT_PARAMS,
            protocol::encode_request(
                kind::GET_INTERNAL_DOCUMENT_PARAMS,
                &GetInternalDocumentParamsRequest { id: 1, class_name: "cms.menuitem".into() },
            ),
        ),
    ]
}

#[test]
fn a_panic_in_any_connector_method_becomes_that_calls_error() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    let recorder = Arc::new(Recorder::default());
    let live = load(&env, &recorder, &row("Panicky", "testkit", "PanickingConnector", ""));
    let requests = every_request();
    // Init is exercised by loading; the batch request answers per task (below).
    assert_eq!(requests.len() + 2, kind::ALL.len(), "every request kind is exercised");
    for (kind, request) in requests {
        let err = live.request_raw::<Value>(kind, &request).unwrap_err();
        let CallError::Aborted(message) = err else { panic!("{kind}: expected an aborted call, got {err:?}") };
        assert!(message.contains("the connector panicked"), "{kind}: {message}");
        assert!(message.contains(&format!("panicking in {kind} on purpose")), "{kind}: {message}");
    }
    // In a batch a panic is that task's Error, which ends the batch.
    let batch = protocol::encode_request(
        kind::PROCESS_ASYNC_BATCH,
        &protocol::TaskBatch { tasks: vec![outgoing_task(), outgoing_task()] },
    );
    let answer: protocol::BatchResponse = live.request_raw(kind::PROCESS_ASYNC_BATCH, &batch).unwrap();
    assert_eq!(answer.results.len(), 1, "{answer:?}");
    assert_eq!(answer.results[0].result, IntegrationProcessResult::Error);
    let message = answer.results[0].error_message.as_deref().unwrap();
    assert!(message.contains("the connector panicked") && message.contains("on purpose"), "{message}");
    // Shutdown panics too; it is swallowed inside the library.
    live.shutdown();
    drop(live);
}

#[test]
fn a_panic_while_creating_or_initializing_is_a_load_warning_and_the_daemon_stays_up() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    env.register("PanicsInCreate", "testkit", "PanickingConnector", true, "panic_in=create");
    env.register("PanicsInInit", "testkit", "PanickingConnector", true, "panic_in=init");
    env.register("PanicsLater", "testkit", "PanickingConnector", true, "");
    env.register("Fine", "testkit", "EchoConnector", true, "");
    let mut d = env.start();
    let create = d.connector("PanicsInCreate").unwrap();
    assert!(
        create["error"].as_str().unwrap().contains("panicked while being created: panicking in create on purpose"),
        "{create}"
    );
    let init = d.connector("PanicsInInit").unwrap();
    assert!(init["error"].as_str().unwrap().contains("panicking in init on purpose"), "{init}");
    assert_eq!(d.connector("PanicsLater").unwrap()["loaded"], true);
    assert_eq!(d.connector("Fine").unwrap()["loaded"], true);
    // Reinitializing shuts the panicking instance down (its shutdown panics).
    env.sql().execute("DELETE FROM Integration_Connector WHERE ConnectorName = 'PanicsLater'", []).unwrap();
    bus_tests::wait_for("the reinitialization", std::time::Duration::from_secs(10), || {
        d.connector("PanicsLater").is_none().then_some(())
    });
    assert!(d.is_running());
    assert_eq!(d.get("/health").status, 200);
}

#[test]
fn an_older_connector_build_loads_and_newer_requests_are_reported_unsupported() {
    let env = TestEnv::new();
    env.install("legacy_connector", "legacy");
    env.register("Legacy", "legacy", "LegacyConnector", true, "");
    let d = env.start();
    let legacy = d.connector("Legacy").unwrap();
    assert_eq!(legacy["loaded"], true, "{legacy}");
    assert_eq!(legacy["sdk_version"], "0.9.0");
    assert_eq!(legacy["subscriptions"][0]["object_type"], "cms.role");
    drop(d);

    let recorder = Arc::new(Recorder::default());
    let live = load(&env, &recorder, &row("Legacy", "legacy", "LegacyConnector", ""));
    // What it knows still works, even with fields added after it was built.
    let mut body = serde_json::to_value(outgoing_task()).unwrap();
    body["added_in_a_later_revision"] = json!({"anything": [1, 2]});
    let done: ProcessResponse = live.request(kind::PROCESS_ASYNC, &body).unwrap();
    assert_eq!(done.result, IntegrationProcessResult::Ok);
    // What it does not know, the host refuses clearly without calling it.
    let err = live.request::<_, IdResponse>(kind::GET_EXTERNAL_OBJECT_ID, &ObjectTranslation::default()).unwrap_err();
    assert!(matches!(err, CallError::Unsupported { .. }));
    let message = err.to_string();
    assert!(
        message.contains("does not support `get_external_object_id`") && message.contains("SDK 0.9.0"),
        "{message}"
    );
    // And asked anyway, the library itself answers "unsupported".
    let raw = live.call_bytes(&protocol::encode_request("a_request_from_the_future", &json!({}))).unwrap();
    assert_eq!(
        protocol::decode_response::<Value>(&raw).unwrap_err(),
        CallFailure::Unsupported("a_request_from_the_future".into())
    );
}

#[test]
fn a_current_connector_answers_unknown_requests_unsupported_and_ignores_unknown_fields() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    let recorder = Arc::new(Recorder::default());
    let live = load(&env, &recorder, &row("Echo", "testkit", "EchoConnector", "log_on_init"));
    assert_eq!(live.info.capabilities.len(), kind::ALL.len());
    let raw = live.call_bytes(&protocol::encode_request("a_request_from_the_future", &json!({"x": 1}))).unwrap();
    assert_eq!(
        protocol::decode_response::<Value>(&raw).unwrap_err(),
        CallFailure::Unsupported("a_request_from_the_future".into())
    );
    let body = json!({"object_type": "cms.role", "id": 5, "code_name": "editors", "a_newer_field": true});
    let id: IdResponse = live.request(kind::GET_EXTERNAL_OBJECT_ID, &body).unwrap();
    assert_eq!(id.id, Some(1005));
    // A body that is not what the request kind needs gets a clear error.
    let err = live.request::<_, IdResponse>(kind::GET_EXTERNAL_OBJECT_ID, &json!({"id": "five"})).unwrap_err();
    assert!(matches!(&err, CallError::Failed(m) if m.contains("the request body is not valid")), "{err:?}");
    // Its init went through the host object, in its registry name.
    let events = recorder.events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "Echo");
    assert_eq!(events[0].1.code, "INIT");
}

#[test]
fn the_sample_connector_writes_an_event_per_task() {
    let env = TestEnv::new();
    env.install("sample_connector", "sample_connector");
    let recorder = Arc::new(Recorder::default());
    let live =
        load(&env, &recorder, &row("SampleIntegrationConnector", "sample_connector", "SampleIntegrationConnector", ""));
    let done: ProcessResponse = live.request(kind::PROCESS_ASYNC, &outgoing_task()).unwrap();
    assert_eq!(done, ProcessResponse { result: IntegrationProcessResult::Ok, error_message: None });
    let events = recorder.events.lock().unwrap();
    assert_eq!(events[0].0, "SampleIntegrationConnector");
    assert_eq!(events[0].1.code, "CREATEOBJECT");
    assert!(events[0].1.description.contains("antonio"));
}
