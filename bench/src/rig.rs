//! A bus assembled in this process from its real parts (database, registry,
//! loader, connector manager, workers, change pipeline), with no-op
//! connectors loaded as cdylibs through the real loader.

use anyhow::{Context, Result};
use bus_core::content::Content;
use bus_core::db::{Database, Durability};
use bus_core::eventlog::EventLog;
use bus_core::host::HostServices;
use bus_core::loader::Loader;
use bus_core::manager::ConnectorManager;
use bus_core::metrics::Metrics;
use bus_core::object_types::ObjectTypes;
use bus_core::registry::{NewConnector, Registry};
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
    fn log_event(&self, _connector: &str, event: LogEventRequest) -> Result<(), String> {
        let at = Instant::now();
        if let Ok(id) = event.description.parse::<i64>() {
            self.seen.lock().unwrap().insert(id, at);
            self.cv.notify_all();
        }
        Ok(())
    }
    fn log_incoming_task(&self, _c: &str, _t: LogIncomingTaskRequest) -> Result<i64, String> {
        Err("not in the benchmark".into())
    }
    fn request_processing(&self, _c: &str, _r: RequestProcessingRequest) -> Result<(), String> {
        Ok(())
    }
}

pub struct Rig {
    pub db: Database,
    pub manager: Arc<ConnectorManager>,
    pub outgoing: Arc<Workers>,
    pub content: Arc<Content>,
    pub signals: Arc<Signals>,
    pub metrics: Arc<Metrics>,
}

impl Rig {
    /// A new bus in `dir` with `connectors` no-op connectors (`config` is
    /// their ConnectorConfig), processing on or off.
    pub fn new(
        dir: &Path,
        library: &Path,
        durability: Durability,
        connectors: usize,
        config: &str,
        processing: bool,
    ) -> Result<Rig> {
        Self::with_workers(dir, library, durability, connectors, config, processing, WorkerConfig::default())
    }

    /// [`Self::new`] with a worker configuration of its own.
    pub fn with_workers(
        dir: &Path,
        library: &Path,
        durability: Durability,
        connectors: usize,
        config: &str,
        processing: bool,
        workers: WorkerConfig,
    ) -> Result<Rig> {
        std::fs::create_dir_all(dir.join("connectors"))?;
        std::fs::copy(library, dir.join("connectors").join(library.file_name().unwrap()))
            .context("copy the testkit library")?;
        let (db, _) = Database::open_with(&dir.join("bus.db"), durability)?;
        settings::update(
            &mut db.connect()?,
            &SettingsPatch { process_outgoing: Some(processing), ..Default::default() },
        )?;
        let registry = Registry::new(db.clone());
        for i in 1..=connectors {
            registry.add(&NewConnector {
                name: format!("Noop{i}"),
                display_name: None,
                assembly_name: "testkit_connector".into(),
                class_name: "NoopConnector".into(),
                enabled: true,
                config: config.into(),
            })?;
        }
        let events = Arc::new(EventLog::new(&db)?);
        let signals = Arc::new(Signals::default());
        let loader = Loader::new(dir.join("connectors"), dir.join("state"));
        let manager = Arc::new(ConnectorManager::new(registry.clone(), loader, signals.clone(), events.clone()));
        let metrics = Arc::new(Metrics::default());
        let outgoing = bus_core::outgoing::workers(db.clone(), workers, metrics.clone())?;
        outgoing.follow(&manager);
        let set = manager.reload_all()?;
        anyhow::ensure!(
            set.live.len() == connectors,
            "only {} of {connectors} connectors loaded: {:?}",
            set.live.len(),
            set.status
        );
        let content =
            Arc::new(Content::new(&db, Arc::new(ObjectTypes::defaults()), manager.clone(), outgoing.clone(), events)?);
        Ok(Rig { db, manager, outgoing, content, signals, metrics })
    }

    /// Switches outgoing processing. Switching it on starts no run by itself
    /// (the specification leaves the queue for the next trigger), so with
    /// `on` every worker is woken as a new task would wake it.
    pub fn set_processing(&self, on: bool) -> Result<()> {
        settings::update(&mut self.db.connect()?, &SettingsPatch { process_outgoing: Some(on), ..Default::default() })?;
        self.outgoing.wake_all();
        if on {
            let set = self.manager.current();
            self.outgoing.wake(set.live.keys().map(String::as_str));
        }
        Ok(())
    }

    /// Relations still queued (counts the queue: too slow to poll).
    pub fn queued(&self) -> Result<i64> {
        Ok(bus_core::queue_admin::count(&self.db.connect()?, bus_core::queue::Direction::Outgoing, None)?)
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
        self.outgoing.stop_all();
        self.manager.shutdown_all();
    }
}
