//! The bus in a test: the daemon's engine (content store, change pipeline,
//! outbox, workers, incoming logging and applying, event log, state store)
//! started in the test process on a SQLite database in memory, with the
//! connectors created from their Rust types. Its workers run only when the
//! test asks ([`Start::OnRequest`]), so every step is one call that returns
//! when it is done.

use crate::HarnessError;
use bus_core::db::{Durability, Location};
use bus_core::delivery::DeliverySettings;
use bus_core::engine::{Engine, EngineConfig, Host, StoreConfig, Watch};
use bus_core::eventlog::{Event, EventQuery};
use bus_core::export::ExportedTask;
use bus_core::isolation::IsolationConfig;
use bus_core::loader::{LinkedClass, Links};
use bus_core::object_types::ObjectTypes;
use bus_core::pipeline::ChangeResult;
use bus_core::queue::{Direction, Selection};
use bus_core::registry::{IsolationSetting, NewConnector};
use bus_core::settings::SettingsPatch;
use bus_core::worker::{Start, TaskOutcome, WorkerConfig};
use connector_abi::export::ClassEntry;
use connector_abi::protocol::{
    kind, GetInternalObjectParamsRequest, LogIncomingTaskRequest, ObjectParamsResponse, OutgoingTask,
    PrepareInternalObjectRequest, PrepareInternalObjectResponse,
};
use connector_abi::{CmsObject, Connector, DocumentData, ObjectData, ObjectParams, Translations};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many rows a read takes at a time.
const PAGE: u32 = 500;

/// What [`TestBus::builder`] collects before the bus starts.
pub struct Builder {
    connectors: Vec<(NewConnector, LinkedClass)>,
    object_types: ObjectTypes,
    call_timeout: Duration,
}

impl Builder {
    /// Adds the connector `T`, registered as `name` with `config` as its
    /// `ConnectorConfig` text. It is created and initialized when the bus
    /// starts, as the daemon would (its `init` must report `name`).
    pub fn connector<T: Connector>(self, name: &str, config: &str) -> Self {
        self.connector_with::<T>(name, config, DeliverySettings::default())
    }

    /// [`Self::connector`] with the registry row's delivery settings
    /// (`ConnectorOrdering`, `ConnectorConcurrency`, `ConnectorBatchSize` —
    /// above 1, [`TestBus::deliver`] hands your `process_internal_tasks_async`
    /// that many tasks at once — and `ConnectorRateLimit`).
    pub fn connector_with<T: Connector>(mut self, name: &str, config: &str, delivery: DeliverySettings) -> Self {
        let full = std::any::type_name::<T>();
        // The type's own name (what `export_connectors!` exports it as).
        let class = full.split('<').next().unwrap_or(full).rsplit("::").next().unwrap_or(full);
        let row = NewConnector {
            name: name.to_owned(),
            display_name: None,
            assembly_name: "linked".to_owned(),
            class_name: class.to_owned(),
            enabled: true,
            config: config.to_owned(),
            isolation: IsolationSetting::InProcess,
            ordering: delivery.ordering,
            concurrency: delivery.concurrency,
            batch_size: delivery.batch_size,
            rate_limit: delivery.rate_limit,
        };
        let linked = LinkedClass { connector: name.to_owned(), class: ClassEntry::of::<T>(class) };
        self.connectors.push((row, linked));
        self
    }

    /// The object types of the content store (the text of an
    /// `object_types` file); the bus's shipped types by default.
    pub fn object_types(mut self, text: &str) -> Result<Self, HarnessError> {
        self.object_types = ObjectTypes::parse(text).map_err(|e| HarnessError::ObjectTypes(e.to_string()))?;
        Ok(self)
    }

    /// The deadline of each call into a connector (30 s by default).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Starts the bus with the connectors added; fails with the reason when
    /// one of them does not load.
    pub fn start(self) -> Result<TestBus, HarnessError> {
        static DATABASES: AtomicU64 = AtomicU64::new(0);
        let name = format!("connector-harness-{}-{}", std::process::id(), DATABASES.fetch_add(1, Ordering::Relaxed));
        let (rows, classes): (Vec<_>, Vec<_>) = self.connectors.into_iter().unzip();
        let engine = Engine::start(EngineConfig {
            store: StoreConfig {
                database: Location::Memory(name),
                durability: Durability::Normal,
                max_database_pages: None,
                seed_connectors: rows.clone(),
                seed_settings: SettingsPatch::default(),
            },
            // No library is looked for: every connector is linked.
            connectors_dir: PathBuf::new(),
            state_dir: PathBuf::new(),
            links: Links::StayInside,
            call_timeout: self.call_timeout,
            object_types: self.object_types,
            workers: WorkerConfig { start: Start::OnRequest, ..WorkerConfig::default() },
            watch: Watch::Off,
            process_external_interval_seconds: None,
            host: Host::Bus,
            isolation: IsolationConfig::default(),
            cluster: Default::default(),
            linked: classes,
        })?;
        let bus = TestBus { engine: Some(engine) };
        for row in &rows {
            // A slow create or init is waited for (within its deadlines).
            let set = bus.engine().manager().wait_settled(&row.name);
            let status = set.status.get(&row.name).cloned().unwrap_or_default();
            if !status.loaded {
                return Err(HarnessError::Load {
                    connector: row.name.clone(),
                    cause: status.error.unwrap_or_else(|| "it was not loaded".into()),
                });
            }
        }
        Ok(bus)
    }
}

/// A bus inside the test: see the crate's documentation.
pub struct TestBus {
    engine: Option<Engine>,
}

impl TestBus {
    /// A bus to add connectors to, then [`Builder::start`].
    pub fn builder() -> Builder {
        Builder { connectors: Vec::new(), object_types: ObjectTypes::defaults(), call_timeout: Duration::from_secs(30) }
    }

    /// A started bus with the one connector `T` (see [`Builder::connector`]).
    pub fn with<T: Connector>(name: &str, config: &str) -> Result<TestBus, HarnessError> {
        Self::builder().connector::<T>(name, config).start()
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("the engine runs until the bus is dropped")
    }

    fn connection(&self) -> Result<bus_core::db::Pooled, HarnessError> {
        self.engine().db().connect().map_err(|e| HarnessError::Read(e.to_string()))
    }

    fn connector_id(&self, connector: &str) -> Result<i64, HarnessError> {
        match self.engine().manager().get(connector) {
            Some(live) => Ok(live.id),
            None => Err(HarnessError::UnknownConnector(connector.to_owned())),
        }
    }

    /// Makes one change to the content store, as `POST /api/batch` takes it
    /// (`{"op": "create_object", "object_type": "cms.user", "object":
    /// {...}}`; the API's documentation lists every `op`), and logs its
    /// tasks for the connectors it reaches. Synchronous subscribers are
    /// called before it returns (their outcomes are in the result); queued
    /// tasks wait for [`Self::deliver`].
    pub fn apply(&self, change: Value) -> Result<ChangeResult, HarnessError> {
        let change = serde_json::from_value(change).map_err(|e| HarnessError::BadChange(e.to_string()))?;
        Ok(self.engine().pipeline().apply(change, None)?)
    }

    /// The tasks queued for `connector`, oldest first, each exactly as the
    /// connector would receive it (`process_internal_task_async`): its data
    /// mode, snapshot and translation data as the bus built them. A task of
    /// a custom subscription is listed too; whether it is delivered is
    /// decided by the connector's `is_match` when [`Self::deliver`] gets to
    /// it.
    pub fn queued(&self, connector: &str) -> Result<Vec<OutgoingTask>, HarnessError> {
        self.exported(connector, Direction::Outgoing)?
            .into_iter()
            .map(|t| serde_json::from_value(t.document).map_err(|e| HarnessError::Read(e.to_string())))
            .collect()
    }

    /// The incoming tasks logged for `connector` and not applied yet,
    /// oldest first, with the object the connector prepared and the
    /// translation data logged with it.
    pub fn incoming(&self, connector: &str) -> Result<Vec<IncomingTask>, HarnessError> {
        self.exported(connector, Direction::Incoming)?
            .into_iter()
            .map(|t| {
                let logged: Logged =
                    serde_json::from_value(t.document).map_err(|e| HarnessError::Read(e.to_string()))?;
                Ok(IncomingTask {
                    task_id: t.task_id,
                    title: t.title,
                    object: logged.object,
                    translations: logged.translations,
                })
            })
            .collect()
    }

    fn exported(&self, connector: &str, direction: Direction) -> Result<Vec<ExportedTask>, HarnessError> {
        let id = self.connector_id(connector)?;
        let conn = self.connection()?;
        let mut tasks = Vec::new();
        bus_core::export::export_each(&conn, id, direction, |t| {
            tasks.push(t);
            Ok(())
        })
        .map_err(|e| HarnessError::Read(e.to_string()))?;
        Ok(tasks)
    }

    /// Delivers the tasks queued for `connector`, oldest first, in one run
    /// of its worker — the run the bus starts by itself when a task is
    /// queued or a retry is due, so every result means what it means in the
    /// bus: `Ok` removes the task; `Error` stops the run and keeps it (and
    /// drops its state writes); `ErrorAndSkip` records it and goes on, and
    /// later runs pass it over — and returns each task's outcome.
    pub fn deliver(&self, connector: &str) -> Result<Vec<TaskOutcome>, HarnessError> {
        self.connector_id(connector)?;
        Ok(self.engine().outgoing().run_now(connector)?)
    }

    /// The Synchronize action on `connector`'s outgoing queue: like
    /// [`Self::deliver`], but tasks passed over after `ErrorAndSkip` are
    /// tried again.
    pub fn synchronize(&self, connector: &str) -> Result<Vec<TaskOutcome>, HarnessError> {
        self.connector_id(connector)?;
        Ok(self.engine().outgoing().synchronize(connector, Selection::All)?)
    }

    /// Logs an incoming task for `connector`, as its host call
    /// `process_external_task` (or `POST /api/incoming/{connector}`) does:
    /// the connector's `prepare_internal_object` (and, for SimpleSnapshot
    /// and Snapshot, `get_internal_object_params` /
    /// `get_internal_document_params`) are called now; the task waits for
    /// [`Self::process_incoming`]. Returns its task ID.
    pub fn log_incoming(&self, connector: &str, task: LogIncomingTaskRequest) -> Result<i64, HarnessError> {
        self.connector_id(connector)?;
        Ok(self.engine().incoming().log(connector, task)?)
    }

    /// Applies the incoming tasks of `connector` to the content store, oldest
    /// first, in one run as the scheduled task "Process external integration
    /// tasks" starts it — a task marked `Error` blocks the queue, a
    /// `SkipOnce` task is passed over once — and returns each task's
    /// outcome. What they change is logged for the other connectors, never
    /// for `connector` itself.
    pub fn process_incoming(&self, connector: &str) -> Result<Vec<TaskOutcome>, HarnessError> {
        self.connector_id(connector)?;
        Ok(self.engine().incoming().workers().run_now(connector)?)
    }

    /// The Synchronize action on `connector`'s incoming queue: a task
    /// marked `Error` is tried again.
    pub fn synchronize_incoming(&self, connector: &str) -> Result<Vec<TaskOutcome>, HarnessError> {
        self.connector_id(connector)?;
        Ok(self.engine().incoming().workers().synchronize(connector, Selection::All)?)
    }

    /// Changes the bus's settings (`PUT /api/settings`): switching
    /// processing off makes [`Self::deliver`] refuse, logging off makes
    /// changes log no task.
    pub fn settings(&self, patch: SettingsPatch) -> Result<(), HarnessError> {
        let mut conn = self.connection()?;
        bus_core::settings::update(&mut conn, &patch).map_err(|e| HarnessError::Read(e.to_string()))?;
        Ok(())
    }

    /// The connector's `prepare_internal_object`, called as the bus calls
    /// it when an incoming task is logged.
    pub fn prepare_internal_object(
        &self,
        connector: &str,
        request: &PrepareInternalObjectRequest,
    ) -> Result<CmsObject, HarnessError> {
        let r: PrepareInternalObjectResponse = self.call(connector, kind::PREPARE_INTERNAL_OBJECT, request)?;
        Ok(r.object)
    }

    /// The connector's `get_internal_object_params` for the external `id` of
    /// an object of `object_type`.
    pub fn get_internal_object_params(
        &self,
        connector: &str,
        id: i64,
        object_type: &str,
    ) -> Result<Option<ObjectParams>, HarnessError> {
        let request = GetInternalObjectParamsRequest { id, object_type: object_type.to_owned() };
        let r: ObjectParamsResponse = self.call(connector, kind::GET_INTERNAL_OBJECT_PARAMS, &request)?;
        Ok(r.params)
    }

    /// Any call of the connector protocol (`connector_abi::protocol::kind`),
    /// as the bus makes every call but a delivery: through the same
    /// dispatcher, on the connector's own thread, with the call deadline.
    pub fn call<B: serde::Serialize, R: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        connector: &str,
        kind: &'static str,
        body: &B,
    ) -> Result<R, HarnessError> {
        let live = self
            .engine()
            .manager()
            .get(connector)
            .ok_or_else(|| HarnessError::UnknownConnector(connector.to_owned()))?;
        bus_core::connector::LiveConnector::request_timeout(&live, kind, body)
            .map_err(|e| HarnessError::Call { connector: connector.to_owned(), cause: e.to_string() })
    }

    /// Every event-log entry, oldest first: the connectors' own
    /// (`host.log_event`) and the bus's (failed tasks, warnings).
    pub fn events(&self) -> Result<Vec<Event>, HarnessError> {
        self.events_where(EventQuery { limit: PAGE, ..Default::default() })
    }

    /// The event-log entries written by `source` (a connector's name),
    /// oldest first.
    pub fn events_from(&self, source: &str) -> Result<Vec<Event>, HarnessError> {
        self.events_where(EventQuery { source: Some(source.to_owned()), limit: PAGE, ..Default::default() })
    }

    fn events_where(&self, mut query: EventQuery) -> Result<Vec<Event>, HarnessError> {
        let mut all = Vec::new();
        loop {
            let page = self.engine().store().events.list(&query).map_err(|e| HarnessError::Read(e.to_string()))?;
            let Some(last) = page.last() else { break };
            query.before_id = Some(last.id);
            all.extend(page);
        }
        all.reverse();
        Ok(all)
    }

    /// The state the bus keeps for `connector` (`host.state_put`), by key.
    pub fn state(&self, connector: &str) -> Result<BTreeMap<String, String>, HarnessError> {
        let conn = self.connection()?;
        let mut state = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = bus_core::state_store::list(&conn, connector, after.as_deref(), PAGE)
                .map_err(|e| HarnessError::Read(e.to_string()))?
                .ok_or_else(|| HarnessError::UnknownConnector(connector.to_owned()))?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            state.extend(page.into_iter().map(|e| (e.key, e.value)));
        }
        Ok(state)
    }

    /// The objects of `object_type` in the content store, oldest first.
    pub fn objects(&self, object_type: &str) -> Result<Vec<ObjectData>, HarnessError> {
        let conn = self.connection()?;
        let types = self.engine().pipeline().types();
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |o: &ObjectData| o.id);
            let page = bus_core::store::objects::list(&conn, types, object_type, None, after, PAGE)
                .map_err(|e| HarnessError::Read(e.to_string()))?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    /// The object of `object_type` with `code_name` (on any site), if any.
    pub fn object(&self, object_type: &str, code_name: &str) -> Result<Option<ObjectData>, HarnessError> {
        Ok(self.objects(object_type)?.into_iter().find(|o| o.code_name == code_name))
    }

    /// The document (culture version) with `document_id`, if any.
    pub fn document(&self, document_id: i64) -> Result<Option<DocumentData>, HarnessError> {
        let conn = self.connection()?;
        match bus_core::store::documents::get(&conn, self.engine().pipeline().types(), document_id) {
            Ok(document) => Ok(Some(document)),
            Err(bus_core::store::StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(HarnessError::Read(e.to_string())),
        }
    }
}

/// An incoming task waiting to be applied ([`TestBus::incoming`]).
#[derive(Debug, Clone)]
pub struct IncomingTask {
    pub task_id: i64,
    pub title: String,
    /// What the connector's `prepare_internal_object` made of the record.
    pub object: CmsObject,
    /// What the foreign keys point to, for SimpleSnapshot and Snapshot
    /// tasks (asked of the connector when the task was logged).
    pub translations: Translations,
}

/// What an incoming task is logged with.
#[derive(serde::Deserialize)]
struct Logged {
    object: CmsObject,
    #[serde(default)]
    translations: Translations,
}

impl Drop for TestBus {
    /// Stops the workers and shuts the connectors down (their `shutdown`
    /// is called); the database in memory goes with the last handle.
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            engine.stop();
        }
    }
}
