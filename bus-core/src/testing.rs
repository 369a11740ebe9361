//! Test doubles for the engine's unit tests: a connector written with the
//! SDK, created in this process without a library file (the SDK's own
//! class entry builds its dispatcher), initialized as the loader would.

use crate::connector::{Instance, LiveConnector};
use crate::db::Database;
use crate::host::{host_object, HostError, HostServices};
use crate::lane::Lane;
use crate::library::Library;
use crate::outgoing::payload::Payload;
use crate::queue::{self, Direction, NewTask};
use crate::registry::{ConnectorRow, IsolationSetting};
use connector_abi::export::ClassEntry;
use connector_abi::protocol::{LogEventRequest, LogIncomingTaskRequest, RequestProcessingRequest};
use connector_abi::Connector;
use connector_abi::{CmsObject, IntegrationProcessType, ObjectData, TaskDataType, TaskType};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Host services that keep the events connectors write.
#[derive(Default)]
pub(crate) struct Events(pub Mutex<Vec<(String, LogEventRequest)>>);

impl HostServices for Events {
    fn log_event(&self, connector: &str, event: LogEventRequest) -> Result<(), HostError> {
        self.0.lock().unwrap().push((connector.to_owned(), event));
        Ok(())
    }
    fn log_incoming_task(&self, _c: &str, _t: LogIncomingTaskRequest) -> Result<i64, HostError> {
        Err(HostError::Invalid("not in unit tests".into()))
    }
    fn request_processing(&self, _c: &str, _r: RequestProcessingRequest) -> Result<(), HostError> {
        Ok(())
    }
}

/// A connector that subscribes to nothing and answers with the SDK's defaults.
pub(crate) struct Quiet;

impl Connector for Quiet {
    fn create(_config: &str, _host: connector_abi::Host) -> Result<Self, connector_abi::ConnectorError> {
        Ok(Quiet)
    }
    fn init(&self, init: &mut connector_abi::Init) {
        init.set_connector_name(init.registry_name().to_owned());
    }
}

/// A live instance of the SDK connector `T` registered as `name` with
/// connector ID `id` and `config`.
pub(crate) fn live<T: Connector>(id: i64, name: &str, config: &str) -> Arc<LiveConnector> {
    let services: Arc<dyn HostServices> = Arc::new(Events::default());
    let entry = ClassEntry::of::<T>("Test");
    let object = (entry.make)(config, host_object(name, services.clone())).expect("the test connector is created");
    let row = ConnectorRow {
        id,
        name: name.to_owned(),
        display_name: name.to_owned(),
        assembly_name: "test".into(),
        class_name: "Test".into(),
        enabled: true,
        last_modified: String::new(),
        config: config.to_owned(),
        isolation: IsolationSetting::InProcess,
        ..Default::default()
    };
    let library = Arc::new(Library { source: "test".into(), copy: "test".into(), hash: "0".into() });
    let lane = Arc::new(Lane::new(name));
    LiveConnector::initialize(&row, library, Instance::InProcess(object), lane, services, Duration::from_secs(10))
        .expect("the test connector initializes")
}

/// A new database in a temp folder, with connector rows for `names` (IDs
/// in order, from 1 after the sample's).
pub(crate) fn database(names: &[&str]) -> (tempfile::TempDir, Database, Vec<i64>) {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Database::open(&dir.path().join("bus.db")).unwrap();
    let conn = db.connect().unwrap();
    let ids = names
        .iter()
        .map(|n| {
            conn.execute(
                "INSERT INTO Integration_Connector (ConnectorName, ConnectorDisplayName, ConnectorAssemblyName, ConnectorClassName) \
                 VALUES ($1, $1, 'test', 'Test')",
                [n],
            )
            .unwrap();
            conn.as_sqlite().unwrap().last_insert_rowid()
        })
        .collect();
    (dir, db, ids)
}

/// Queues an incoming CreateObject (of an unknown type, it fails to
/// apply) with a process type for `connector`; returns the task ID.
pub(crate) fn enqueue_incoming(
    db: &Database,
    connector: i64,
    code_name: &str,
    object_type: &str,
    p: IntegrationProcessType,
) -> i64 {
    let object = CmsObject::Object(ObjectData {
        object_type: object_type.into(),
        code_name: code_name.into(),
        ..Default::default()
    });
    let data = serde_json::to_string(&Payload { object: object.clone(), translations: Default::default() }).unwrap();
    let task = NewTask {
        direction: Direction::Incoming,
        task_type: TaskType::CreateObject,
        data_type: TaskDataType::Simple,
        process_type: Some(p),
        site_name: None,
        title: code_name,
        object: &object,
        data: &data,
    };
    let conn = db.connect().unwrap();
    let id = queue::insert_task(&conn, &task).unwrap();
    queue::insert_relation(&conn, id, connector, Direction::Incoming, TaskDataType::Simple).unwrap();
    id
}
