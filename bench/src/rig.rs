//! A bus started in this process through the engine facade (database,
//! registry, loader, connector manager, workers, change pipeline), with
//! no-op connectors loaded as cdylibs through the real loader.

use anyhow::{Context, Result};
use bus_core::db::{Database, Durability};
use bus_core::delivery::DeliverySettings;
use bus_core::engine::{Engine, EngineConfig, Host, StoreConfig, Watch};
use bus_core::host::{HostError, HostServices};
use bus_core::isolation::{Isolation, IsolationConfig};
use bus_core::loader::Links;
use bus_core::manager::ConnectorManager;
use bus_core::metrics::Metrics;
use bus_core::object_types::ObjectTypes;
use bus_core::pipeline::Pipeline;
use bus_core::registry::{IsolationSetting, NewConnector};
use bus_core::settings::{self, SettingsPatch};
use bus_core::worker::{TaskResult, WorkerConfig, Workers};
use connector_abi::protocol::{LogEventRequest, LogIncomingTaskRequest, RequestProcessingRequest};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Records when connectors report a task (`NoopConnector` with `signal`).
#[derive(Default)]
pub struct Signals {
    seen: Mutex<HashMap<i64, Instant>>,
    cv: Condvar,
}

impl Signals {
    /// Waits until `task_id` was seen; returns when.
    pub fn wait(&self, task_id: i64) -> Instant {
        let mut seen = self.seen.lock().unwrap();
        loop {
            if let Some(at) = seen.remove(&task_id) {
                return at;
            }
            seen = self.cv.wait(seen).unwrap();
        }
    }
}

impl HostServices for Signals {
    fn log_event(&self, _connector: &str, event: LogEventRequest) -> Result<(), HostError> {
        let at = Instant::now();
        if let Ok(id) = event.description.parse::<i64>() {
            self.seen.lock().unwrap().insert(id, at);
            self.cv.notify_all();
        }
        Ok(())
    }
    fn log_incoming_task(&self, _c: &str, _t: LogIncomingTaskRequest) -> Result<i64, HostError> {
        Err(HostError::Invalid("not in the benchmark".into()))
    }
    fn request_processing(&self, _c: &str, _r: RequestProcessingRequest) -> Result<(), HostError> {
        Ok(())
    }
}

/// How a rig is built: `connectors` no-op connectors with `config` as their
/// ConnectorConfig.
#[derive(Clone)]
pub struct RigConfig {
    pub durability: Durability,
    pub connectors: usize,
    pub config: String,
    /// `process_outgoing` at the start.
    pub processing: bool,
    pub workers: WorkerConfig,
    /// The registry watcher's interval (none: no watcher).
    pub watch: Option<Duration>,
    /// Where the connectors run (a connector process runs this binary).
    pub isolation: Isolation,
    /// Tasks per request to a connector process.
    pub batch_size: usize,
    /// A PostgreSQL URL instead of a SQLite file in the rig's folder.
    pub database: Option<String>,
    /// How the connectors' queues are delivered (their registry columns).
    pub delivery: DeliverySettings,
}

impl RigConfig {
    pub fn new(durability: Durability, connectors: usize, config: &str, processing: bool) -> Self {
        RigConfig {
            durability,
            connectors,
            config: config.into(),
            processing,
            workers: WorkerConfig::default(),
            watch: None,
            isolation: Isolation::InProcess,
            batch_size: 1,
            database: None,
            delivery: DeliverySettings::default(),
        }
    }
}

pub struct Rig {
    engine: Option<Engine>,
    pub db: Database,
    pub manager: Arc<ConnectorManager>,
    pub outgoing: Arc<Workers>,
    pub pipeline: Arc<Pipeline>,
    pub signals: Arc<Signals>,
    pub metrics: Arc<Metrics>,
}

impl Rig {
    /// A new bus in `dir` (see [`RigConfig`]).
    pub fn new(
        dir: &Path,
        library: &Path,
        durability: Durability,
        connectors: usize,
        config: &str,
        processing: bool,
    ) -> Result<Rig> {
        Self::build(dir, library, RigConfig::new(durability, connectors, config, processing))
    }

    /// A new bus in `dir`, started through the engine facade as the daemon
    /// starts it, with the benchmark's own host services.
    pub fn build(dir: &Path, library: &Path, rig: RigConfig) -> Result<Rig> {
        std::fs::create_dir_all(dir.join("connectors"))?;
        std::fs::copy(library, dir.join("connectors").join(library.file_name().unwrap()))
            .context("copy the testkit library")?;
        let signals = Arc::new(Signals::default());
        let seed_connectors = (1..=rig.connectors)
            .map(|i| NewConnector {
                name: format!("Noop{i}"),
                display_name: None,
                assembly_name: "testkit_connector".into(),
                class_name: "NoopConnector".into(),
                enabled: true,
                config: rig.config.clone(),
                isolation: IsolationSetting::Default,
                ordering: rig.delivery.ordering,
                concurrency: rig.delivery.concurrency,
                batch_size: rig.delivery.batch_size,
                rate_limit: rig.delivery.rate_limit,
            })
            .collect();
        let engine = Engine::start(EngineConfig {
            store: StoreConfig {
                database: match &rig.database {
                    Some(url) => bus_core::db::Location::parse(url),
                    None => bus_core::db::Location::File(dir.join("bus.db")),
                },
                durability: rig.durability,
                max_database_pages: None,
                seed_connectors,
                seed_settings: SettingsPatch { process_outgoing: Some(rig.processing), ..Default::default() },
            },
            connectors_dir: dir.join("connectors"),
            state_dir: dir.join("state"),
            links: Links::StayInside,
            call_timeout: Duration::from_secs(30),
            object_types: ObjectTypes::defaults(),
            workers: rig.workers,
            watch: rig.watch.map_or(Watch::Off, Watch::Every),
            process_external_interval_seconds: None,
            host: Host::Custom(signals.clone()),
            isolation: IsolationConfig {
                default: rig.isolation,
                program: Some(std::env::current_exe()?),
                batch_size: rig.batch_size,
                ..IsolationConfig::default()
            },
            cluster: Default::default(),
            linked: Vec::new(),
        })?;
        // In a cluster a connector may run on the other daemon.
        let loaded = engine.first_load().values().filter(|s| s.loaded || s.running_on.is_some()).count();
        anyhow::ensure!(
            loaded == rig.connectors,
            "only {loaded} of {} connectors loaded: {:?}",
            rig.connectors,
            engine.first_load()
        );
        Ok(Rig {
            db: engine.db().clone(),
            manager: engine.manager().clone(),
            outgoing: engine.outgoing().clone(),
            pipeline: engine.pipeline().clone(),
            metrics: engine.metrics().clone(),
            signals,
            engine: Some(engine),
        })
    }

    /// Switches outgoing processing. Switching it on starts no run by itself
    /// (the specification leaves the queue for the next trigger), so with
    /// `on` every worker is woken as a new task would wake it.
    pub fn set_processing(&self, on: bool) -> Result<()> {
        settings::update(
            &mut *self.db.connect()?,
            &SettingsPatch { process_outgoing: Some(on), ..Default::default() },
        )?;
        self.outgoing.wake_all();
        if on {
            let set = self.manager.current();
            self.outgoing.wake(set.live.keys().map(String::as_str));
        }
        Ok(())
    }

    /// Relations still queued (counts the queue: too slow to poll).
    pub fn queued(&self) -> Result<i64> {
        Ok(bus_core::queue_admin::count(&*self.db.connect()?, bus_core::queue::Direction::Outgoing, None)?)
    }

    /// Connectors whose leases this rig holds (PostgreSQL).
    pub fn held(&self) -> usize {
        self.engine.as_ref().and_then(|e| e.cluster()).map_or(0, |c| c.held().len())
    }

    /// Relations delivered so far (in memory: cheap to poll).
    pub fn delivered(&self) -> u64 {
        self.metrics.total("outgoing", TaskResult::Ok)
    }

    /// Waits until `target` relations were delivered, polling the metrics
    /// (counting the queue would steal the workers' CPU).
    pub fn wait_delivered(&self, target: u64) {
        while self.delivered() < target {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            engine.stop();
        }
    }
}
