//! The engine facade: [`Store::open`] opens the bus's database (what the CLI
//! needs), [`Engine::start`] assembles everything a running bus is made of —
//! store, connector manager with its loader, outgoing and incoming workers,
//! change pipeline, scheduler, registry watcher — in the one order that
//! works, and [`Engine::stop`] takes it down in reverse.

pub use crate::backend::QueueError;

use crate::backend::{PostgresQueues, Queues, SqliteQueues};
use crate::cluster::{Cluster, ClusterConfig, ClusterThread, Listener, Notifier};
use crate::db::{Database, DbError, Durability, Location};
use crate::eventlog::{EventLog, NewEvent, BUS_SOURCE};
use crate::host::HostServices;
use crate::incoming::{Incoming, IncomingParts};
use crate::isolation::IsolationConfig;
use crate::loader::{Links, Loader};
use crate::manager::{ConnectorManager, ConnectorStatus, ManagerParts};
use crate::metrics::Metrics;
use crate::object_types::ObjectTypes;
use crate::pipeline::Pipeline;
use crate::queue::Direction;
use crate::queue_admin;
use crate::registry::{self, NewConnector, Registry, RegistryError};
use crate::scheduler::{self, ActionError, Scheduler, SchedulerError, SchedulerHandle};
use crate::services::BusServices;
use crate::settings::{self, SettingsPatch};
use crate::sql::Dialect;
use crate::storage::StorageWatch;
use crate::watch::Watcher;
use crate::worker::{WorkerConfig, Workers};
use connector_abi::EventType;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Why the engine did not start; nothing was left running.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cannot read the connector registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("cannot read the database file {path}: {source}")]
    Storage { path: PathBuf, source: std::io::Error },
    #[error("cannot apply the interval of `{task}`: {source}")]
    Schedule { task: &'static str, source: SchedulerError },
    #[error("cannot start the {what} thread: {source}")]
    Thread { what: &'static str, source: std::io::Error },
}

/// Where the bus keeps its state, and what a new database starts with.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub database: Location,
    pub durability: Durability,
    /// Caps the database file (SQLite pages); a full database answers
    /// writes with an error instead of filling the disk.
    pub max_database_pages: Option<u64>,
    /// Registered when the database is created. The specification's sample
    /// connector is registered only when it is listed here.
    pub seed_connectors: Vec<NewConnector>,
    /// Written when the database is created.
    pub seed_settings: SettingsPatch,
}

/// The opened database with its registry and event log.
#[derive(Clone)]
pub struct Store {
    pub db: Database,
    pub registry: Registry,
    pub events: Arc<EventLog>,
}

impl Store {
    /// Opens the database; a new one gets the schema, the seed connectors
    /// and the seed settings in one transaction.
    pub fn open(config: &StoreConfig) -> Result<Store, DbError> {
        let seed = |conn: &crate::sql::Conn| -> Result<(), DbError> {
            // The schema registers the specification's sample connector; a
            // configuration that does not name it does not get it.
            if !config.seed_connectors.iter().any(|c| c.name == registry::SAMPLE_CONNECTOR) {
                conn.execute(
                    "DELETE FROM Integration_Connector WHERE ConnectorName = $1",
                    [registry::SAMPLE_CONNECTOR],
                )
                .map_err(|e| DbError::Seed(format!("removing the unconfigured sample connector: {e}")))?;
            }
            for c in &config.seed_connectors {
                registry::seed(conn, c)
                    .map_err(|e| DbError::Seed(format!("the configured connector `{}`: {e}", c.name)))?;
            }
            settings::write(conn, &config.seed_settings)
                .map_err(|e| DbError::Seed(format!("the configured settings: {e}")))
        };
        let (db, created) = Database::open_seeded(&config.database, config.durability, &seed)?;
        let db = db.with_max_pages(config.max_database_pages)?;
        if created {
            tracing::info!(database = %config.database, seeded = config.seed_connectors.len(), "created a new database");
        }
        let events = Arc::new(EventLog::new(&db)?);
        Ok(Store { registry: Registry::new(db.clone()), db, events })
    }
}

/// What connectors call back into.
#[derive(Clone, Default)]
pub enum Host {
    /// The bus's own services (event log, incoming tasks, processing).
    #[default]
    Bus,
    /// Services of the embedder's own (the benchmark records calls).
    Custom(Arc<dyn HostServices>),
}

/// Whether the registry is polled for edits made outside the daemon.
#[derive(Debug, Clone, Copy)]
pub enum Watch {
    /// Check the registry version and the libraries at this interval.
    Every(Duration),
    /// Reload only when asked (embedders that edit the registry themselves).
    Off,
}

/// Everything [`Engine::start`] needs.
#[derive(Clone)]
pub struct EngineConfig {
    pub store: StoreConfig,
    /// Where connector libraries are dropped.
    pub connectors_dir: PathBuf,
    /// Where the loader keeps its private library copies.
    pub state_dir: PathBuf,
    pub links: Links,
    /// The deadline of every connector call made outside the workers.
    pub call_timeout: Duration,
    pub object_types: ObjectTypes,
    /// Batch size, backoff and delete batching of the workers.
    pub workers: WorkerConfig,
    pub watch: Watch,
    /// Overrides the interval of "Process external integration tasks".
    pub process_external_interval_seconds: Option<i64>,
    pub host: Host,
    /// Where connectors run: the default mode, the program that hosts a
    /// connector process, limits.
    pub isolation: IsolationConfig,
    /// How daemons sharing a PostgreSQL database split the connectors
    /// (unused on SQLite: one daemon per file).
    pub cluster: ClusterConfig,
    /// Connector classes compiled into the embedding program (the connector
    /// test harness): the connector registered under a class's name is
    /// created from it, in process, without a library file. Empty for the
    /// daemon.
    pub linked: Vec<crate::loader::LinkedClass>,
}

/// How often the scheduler looks for due tasks.
const SCHEDULER_TICK: Duration = Duration::from_millis(500);

/// A running bus.
pub struct Engine {
    store: Store,
    storage: StorageWatch,
    metrics: Arc<Metrics>,
    manager: Arc<ConnectorManager>,
    outgoing: Arc<Workers>,
    pipeline: Arc<Pipeline>,
    incoming: Arc<Incoming>,
    scheduler: SchedulerHandle,
    watcher: Option<Watcher>,
    /// This daemon's part in a cluster (PostgreSQL).
    cluster: Option<Clustered>,
    /// How the first load went (the statuses only: holding that set would
    /// keep its instances alive after they are replaced).
    first_load: BTreeMap<String, ConnectorStatus>,
    /// The lock on a SQLite file this engine serves (see `db/holder.rs`);
    /// declared last, so it is released after everything else stopped.
    _hold: Option<crate::db::holder::Hold>,
}

impl Engine {
    /// Opens the store, loads every registered connector (a connector that
    /// fails to load is a warning; the others run) and starts the workers,
    /// the scheduler and the registry watcher.
    pub fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        // One daemon per SQLite file (two would run two workers per queue),
        // and none while a migration copies it.
        let hold = match config.store.database.file() {
            Some(file) => Some(crate::db::holder::take(file, &format!("the daemon with PID {}", std::process::id()))?),
            None => None,
        };
        let store = Store::open(&config.store)?;
        let storage = match config.store.database.file() {
            Some(file) => {
                StorageWatch::new(file).map_err(|source| EngineError::Storage { path: file.to_owned(), source })?
            }
            None => StorageWatch::none(),
        };
        let types = Arc::new(config.object_types);
        let metrics = Arc::new(Metrics::default());
        let bus_services = Arc::new(BusServices::new(store.events.clone(), store.db.clone()));
        let services: Arc<dyn HostServices> = match &config.host {
            Host::Bus => bus_services.clone(),
            Host::Custom(services) => services.clone(),
        };
        let loader = Loader::new(&config.connectors_dir, &config.state_dir)
            .with_call_timeout(config.call_timeout)
            .with_links(config.links)
            .with_isolation(config.isolation.clone())
            .with_linked(config.linked.clone());
        // The storage seam of the workers (see `backend/`): on PostgreSQL
        // this daemon joins the cluster first and delivers only the queues
        // it holds the leases of.
        let (queues, cluster): (Arc<dyn Queues>, _) = match store.db.dialect() {
            Dialect::Sqlite => (Arc::new(SqliteQueues::new(store.db.clone())), None),
            Dialect::Postgres => {
                let cluster = Cluster::join(store.db.clone(), config.cluster.clone())?;
                (Arc::new(PostgresQueues::new(store.db.clone(), cluster.clone())), Some(cluster))
            }
        };
        let manager = ConnectorManager::new(ManagerParts {
            registry: store.registry.clone(),
            loader,
            services,
            events: store.events.clone(),
            cluster: cluster.clone(),
        });
        let outgoing = crate::outgoing::workers(queues.clone(), config.workers, metrics.clone())?;
        outgoing.follow(&manager);
        let sweep = store.clone();
        manager.on_reload(Box::new(move |_| discard_orphans(&sweep)));
        // From here on connectors run: a failure stops them again.
        let mut running = StopOnFailure { outgoing: Some(outgoing.clone()), manager: manager.clone(), incoming: None };
        let first_load = manager.reload_all()?.status.clone();
        let pipeline =
            Arc::new(Pipeline::new(&store.db, types.clone(), manager.clone(), outgoing.clone(), store.events.clone())?);
        let incoming = Incoming::new(IncomingParts {
            db: store.db.clone(),
            queues,
            types,
            manager: manager.clone(),
            pipeline: pipeline.clone(),
            events: store.events.clone(),
            config: config.workers,
            metrics: metrics.clone(),
        })?;
        running.incoming = Some(incoming.clone());
        bus_services.attach_incoming(&incoming);
        let cluster = match cluster {
            Some(cluster) => Some(Clustered::start(cluster, &store.db, &manager, &outgoing, &incoming)?),
            None => None,
        };
        let scheduler = start_scheduler(&store.db, &incoming, config.process_external_interval_seconds)?;
        let watcher = match config.watch {
            Watch::Every(interval) => Some(
                Watcher::spawn(manager.clone(), store.db.clone(), interval)
                    .map_err(|source| EngineError::Thread { what: "registry watcher", source })?,
            ),
            Watch::Off => None,
        };
        running.outgoing = None;
        Ok(Engine {
            _hold: hold,
            store,
            storage,
            metrics,
            manager,
            outgoing,
            pipeline,
            incoming,
            scheduler,
            watcher,
            cluster,
            first_load,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn db(&self) -> &Database {
        &self.store.db
    }

    /// Notices a deleted or replaced database file.
    pub fn storage(&self) -> &StorageWatch {
        &self.storage
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn manager(&self) -> &Arc<ConnectorManager> {
        &self.manager
    }

    /// The outgoing workers, one per loaded connector.
    pub fn outgoing(&self) -> &Arc<Workers> {
        &self.outgoing
    }

    /// Where changes enter the bus.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    pub fn incoming(&self) -> &Arc<Incoming> {
        &self.incoming
    }

    pub fn scheduler(&self) -> Arc<Scheduler> {
        self.scheduler.scheduler()
    }

    /// This daemon's membership of the cluster (PostgreSQL only).
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref().map(|c| &c.cluster)
    }

    /// How each registered connector came out of the first load.
    pub fn first_load(&self) -> &BTreeMap<String, ConnectorStatus> {
        &self.first_load
    }

    /// Stops the watcher and the scheduler, lets every worker finish its
    /// call in flight, and shuts the connectors down.
    pub fn stop(self) {
        let Engine { watcher, scheduler, incoming, outgoing, manager, mut cluster, .. } = self;
        drop(watcher);
        drop(scheduler);
        // No reinitialization may start workers again while they stop.
        if let Some(cluster) = &mut cluster {
            cluster.halt();
        }
        incoming.workers().stop_all();
        outgoing.stop_all();
        // The leases go once nothing delivers any more: the other daemons
        // take over at once.
        if let Some(cluster) = cluster {
            cluster.leave();
        }
        manager.shutdown_all();
    }
}

/// The cluster machinery of a daemon on PostgreSQL: the tick that renews
/// and balances the leases (reinitializing the connectors when what runs
/// where changed), and the wake-ups to and from the other daemons.
struct Clustered {
    cluster: Arc<Cluster>,
    tick: ClusterThread,
    notifier: Arc<Notifier>,
    _listener: Listener,
}

impl Clustered {
    fn start(
        cluster: Arc<Cluster>,
        db: &Database,
        manager: &Arc<ConnectorManager>,
        outgoing: &Arc<Workers>,
        incoming: &Arc<Incoming>,
    ) -> Result<Clustered, EngineError> {
        let thread = |what| move |source| EngineError::Thread { what, source };
        let notifier = Notifier::spawn(db.clone()).map_err(thread("wake-up sender"))?;
        for (workers, direction) in [(outgoing, Direction::Outgoing), (incoming.workers(), Direction::Incoming)] {
            let notifier = notifier.clone();
            workers.wake_elsewhere_with(Box::new(move |name| notifier.wake(direction, name)));
        }
        let listener = Listener::spawn(db.clone(), {
            let (outgoing, incoming) = (Arc::downgrade(outgoing), Arc::downgrade(incoming));
            move |direction, name| {
                let workers = match direction {
                    Direction::Outgoing => outgoing.upgrade(),
                    Direction::Incoming => incoming.upgrade().map(|i| i.workers().clone()),
                };
                if let Some(workers) = workers {
                    workers.wake_here([name]);
                }
            }
        })
        .map_err(thread("wake-up listener"))?;
        let tick = ClusterThread::spawn(cluster.clone(), {
            let manager = Arc::downgrade(manager);
            move || {
                if let Some(manager) = manager.upgrade() {
                    if let Err(e) = manager.reload_placement() {
                        tracing::warn!(error = %e, "cannot reinitialize the connectors after a lease change");
                    }
                }
            }
        })
        .map_err(thread("cluster"))?;
        Ok(Clustered { cluster, tick, notifier, _listener: listener })
    }

    /// Stops the tick and the reinitializations it sets off.
    fn halt(&mut self) {
        self.tick.halt();
    }

    /// Releases the leases and stops the wake-ups.
    fn leave(mut self) {
        self.tick.stop();
        self.notifier.stop();
    }
}

/// Stops the workers and connectors `Engine::start` started when it
/// returns early; disarmed (`outgoing` taken) once the engine stands.
struct StopOnFailure {
    outgoing: Option<Arc<Workers>>,
    manager: Arc<ConnectorManager>,
    incoming: Option<Arc<Incoming>>,
}

impl Drop for StopOnFailure {
    fn drop(&mut self) {
        let Some(outgoing) = self.outgoing.take() else { return };
        if let Some(incoming) = &self.incoming {
            incoming.workers().stop_all();
        }
        outgoing.stop_all();
        self.manager.shutdown_all();
    }
}

/// "Process external integration tasks" and its interval.
fn start_scheduler(
    db: &Database,
    incoming: &Arc<Incoming>,
    interval_seconds: Option<i64>,
) -> Result<SchedulerHandle, EngineError> {
    let mut scheduler = Scheduler::new(db.clone());
    let incoming = Arc::downgrade(incoming);
    scheduler.register(
        scheduler::PROCESS_EXTERNAL,
        Arc::new(move || {
            let incoming = incoming.upgrade().ok_or(ActionError::Stopping)?;
            let names = incoming.request_processing(None).map_err(|e| ActionError::Failed(Box::new(e)))?;
            Ok(format!("processing started for {} connector(s)", names.len()))
        }),
    );
    if let Some(seconds) = interval_seconds {
        let schedule = |e| EngineError::Schedule { task: scheduler::PROCESS_EXTERNAL, source: e };
        let conn = db.connect()?;
        scheduler::update(&conn, scheduler::PROCESS_EXTERNAL, Some(seconds), None).map_err(schedule)?;
    }
    scheduler.spawn(SCHEDULER_TICK).map_err(|source| EngineError::Thread { what: "scheduler", source })
}

/// After a reload: relations of connectors that left the registry without a
/// delete (a row replaced with plain SQL) are discarded, with a warning.
fn discard_orphans(store: &Store) {
    let removed = match store.db.connect().and_then(|c| Ok(queue_admin::remove_orphans(&c)?)) {
        Ok(removed) => removed,
        Err(e) => return tracing::warn!(error = %e, "cannot remove the tasks of deleted connectors"),
    };
    for (connector_id, n) in removed {
        let description = format!(
            "The connector with ID {connector_id} left the registry without a delete (a row replaced with plain SQL); its {n} queued task relation(s) were discarded."
        );
        tracing::warn!(connector_id, discarded = n, "discarded the queued tasks of a vanished connector");
        store.events.write_or_warn(&NewEvent {
            event_type: EventType::Warning,
            source: BUS_SOURCE,
            code: "CONNECTORDELETE",
            description: &description,
            document_name: None,
            ..Default::default()
        });
    }
}
