//! The set of live connectors, and reinitializing all of them from the
//! registry.

use crate::cluster::Cluster;
use crate::connector::LiveConnector;
use crate::eventlog::{EventLog, NewEvent, BUS_SOURCE};
use crate::host::HostServices;
use crate::loader::Loader;
use crate::registry::{ConnectorRow, Registry, RegistryError};
use connector_abi::{EventType, Subscription};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How one registered connector stands after the last reinitialization.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ConnectorStatus {
    pub enabled: bool,
    /// True when an instance of the connector is running.
    pub loaded: bool,
    /// Why the last load failed (also set while a previous build keeps running).
    pub error: Option<String>,
    /// The private copy of the library the running instance comes from.
    pub library: Option<String>,
    /// The content hash of that library (names the private copy).
    pub library_hash: Option<String>,
    /// When the running instance was created.
    pub loaded_at: Option<String>,
    pub sdk_version: Option<String>,
    pub subscriptions: Vec<Subscription>,
    pub capabilities: Vec<String>,
    /// The daemon that runs it, when another daemon of the cluster does.
    pub running_on: Option<String>,
}

/// The connectors of one generation: replaced whole on every reinitialization.
#[derive(Debug, Default)]
pub struct ConnectorSet {
    pub generation: u64,
    /// The registry version this generation was loaded from.
    pub registry_version: i64,
    pub live: BTreeMap<String, Arc<LiveConnector>>,
    pub status: BTreeMap<String, ConnectorStatus>,
    /// The library files of the enabled connectors: a change to one of them
    /// triggers a reinitialization.
    pub watched: Vec<PathBuf>,
    /// When this reinitialization started, and how long it took.
    pub started: Option<Instant>,
    pub took: Duration,
}

/// Called after every reinitialization with the new set.
pub(crate) type ReloadListener = Box<dyn Fn(&Arc<ConnectorSet>) + Send + Sync>;

/// Owns the live connectors.
pub struct ConnectorManager {
    listeners: RwLock<Vec<ReloadListener>>,
    registry: Registry,
    loader: Loader,
    services: Arc<dyn HostServices>,
    events: Arc<EventLog>,
    current: RwLock<Arc<ConnectorSet>>,
    reloading: Mutex<()>,
    reinitializations: AtomicU64,
    /// Several daemons on one database: only the connectors whose leases
    /// this daemon holds run here; the others are reached where they run.
    cluster: Option<Arc<Cluster>>,
}

impl ConnectorManager {
    pub fn new(registry: Registry, loader: Loader, services: Arc<dyn HostServices>, events: Arc<EventLog>) -> Self {
        ConnectorManager {
            listeners: RwLock::new(Vec::new()),
            registry,
            loader,
            services,
            events,
            current: RwLock::new(Arc::new(ConnectorSet::default())),
            reloading: Mutex::new(()),
            reinitializations: AtomicU64::new(0),
            cluster: None,
        }
    }

    /// Runs only the connectors this daemon holds the leases of.
    pub(crate) fn with_cluster(mut self, cluster: Arc<Cluster>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    /// Registers a listener called after every reinitialization.
    pub(crate) fn on_reload(&self, listener: ReloadListener) {
        self.listeners.write().unwrap_or_else(|p| p.into_inner()).push(listener);
    }

    /// The current generation of connectors.
    pub fn current(&self) -> Arc<ConnectorSet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The running instance of one connector.
    pub fn get(&self, name: &str) -> Option<Arc<LiveConnector>> {
        self.current().live.get(name).cloned()
    }

    /// How many reinitializations have run.
    pub fn reinitializations(&self) -> u64 {
        self.reinitializations.load(Ordering::Relaxed)
    }

    /// Reinitializes every connector from the registry: every enabled row is
    /// loaded anew. A row whose load fails keeps its previous instance when
    /// there was one (and says so); the others keep running either way.
    pub fn reload_all(&self) -> Result<Arc<ConnectorSet>, RegistryError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        // In a cluster, what runs here follows the leases as they are now
        // (a connector just registered or enabled is claimed at once).
        if let Some(cluster) = &self.cluster {
            if let Err(e) = cluster.tick() {
                tracing::warn!(error = %e, "cannot renew the leases before the reinitialization");
            }
        }
        // The version is read before the rows: an edit in between only causes
        // one more reinitialization, never a missed one.
        let registry_version = self.registry.version()?;
        let rows = self.registry.list()?;
        let previous = self.current();
        let mut next = ConnectorSet {
            generation: previous.generation + 1,
            registry_version,
            started: Some(started),
            ..Default::default()
        };
        let mut failed = 0usize;
        for row in &rows {
            if let Ok(path) = self.loader.resolve(&row.assembly_name) {
                if row.enabled {
                    next.watched.push(path);
                }
            }
            let status = self.load_row(row, &previous, &mut next);
            if status.error.is_some() {
                failed += 1;
            }
            next.status.insert(row.name.clone(), status);
        }
        self.loader.keep_lanes(rows.iter().map(|r| r.name.as_str()));
        next.took = started.elapsed();
        let next = Arc::new(next);
        let replaced = std::mem::replace(&mut *self.current.write().unwrap_or_else(|p| p.into_inner()), next.clone());
        // Instances that are not carried over are shut down as soon as no
        // worker holds them any more (LiveConnector's Drop).
        drop(replaced);
        self.reinitializations.fetch_add(1, Ordering::Relaxed);
        for listener in self.listeners.read().unwrap_or_else(|p| p.into_inner()).iter() {
            listener(&next);
        }
        let loaded = next.live.len();
        tracing::info!(
            generation = next.generation,
            registered = rows.len(),
            loaded,
            failed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "connectors reinitialized"
        );
        Ok(next)
    }

    fn load_row(&self, row: &ConnectorRow, previous: &ConnectorSet, next: &mut ConnectorSet) -> ConnectorStatus {
        let mut status = ConnectorStatus { enabled: row.enabled, ..Default::default() };
        if !row.problems.is_empty() {
            let message = format!(
                "the registry row (ID {}) cannot be used: {}; correct it through the API, the CLI or SQL",
                row.id,
                row.problems.join("; ")
            );
            tracing::warn!(connector_id = row.id, error = %message, "unusable registry row");
            self.events.write_or_warn(&NewEvent {
                event_type: EventType::Warning,
                source: BUS_SOURCE,
                code: "CONNECTORLOAD",
                description: &format!("Connector `{}` could not be loaded: {message}", row.name.escape_debug()),
                document_name: None,
                ..Default::default()
            });
            status.error = Some(message);
            return status;
        }
        if !row.enabled {
            return status;
        }
        if let Some(cluster) = self.cluster.as_ref().filter(|c| !c.runs_here(row.id)) {
            return self.load_remote(cluster, row, status, next);
        }
        let (instance, error) = match self.loader.load(row, self.services.clone()) {
            Ok(live) => (Some(live), None),
            Err(e) => {
                let kept = previous.live.get(&row.name).cloned();
                let message = match &kept {
                    Some(_) => format!("{e}; the previous build keeps running"),
                    None => e.to_string(),
                };
                tracing::warn!(connector = %row.name, error = %message, "connector failed to load");
                self.events.write_or_warn(&NewEvent {
                    event_type: EventType::Warning,
                    source: BUS_SOURCE,
                    code: "CONNECTORLOAD",
                    description: &format!("Connector `{}` could not be loaded: {message}", row.name),
                    document_name: None,
                    ..Default::default()
                });
                (kept, Some(message))
            }
        };
        status.error = error;
        if let Some(live) = instance {
            status.loaded = true;
            status.library = Some(live.library.copy.display().to_string());
            status.library_hash = Some(live.library.hash.clone());
            status.loaded_at = Some(live.loaded_at.clone());
            status.sdk_version = Some(live.info.sdk_version.clone());
            status.subscriptions = live.info.subscriptions.clone();
            status.capabilities = live.info.capabilities.clone();
            if let Some(cluster) = &self.cluster {
                cluster.publish(row.id, &live.info, &live.loaded_at);
            }
            next.live.insert(row.name.clone(), live);
        }
        status
    }

    /// A connector another daemon runs: its declared subscriptions, and calls
    /// routed there. Until one runs it, it gets no changes (its queue keeps
    /// what was logged for it).
    fn load_remote(
        &self,
        cluster: &Cluster,
        row: &ConnectorRow,
        mut status: ConnectorStatus,
        next: &mut ConnectorSet,
    ) -> ConnectorStatus {
        let Some(spec) = cluster.remote(row.id) else {
            status.error = Some("no daemon of the cluster runs it yet (its leases are being claimed)".into());
            return status;
        };
        status.running_on = Some(spec.daemon.clone());
        match self.loader.remote(row, spec, cluster.config().forward.clone(), self.services.clone()) {
            Ok(live) => {
                status.loaded_at = Some(live.loaded_at.clone());
                status.sdk_version = Some(live.info.sdk_version.clone());
                status.subscriptions = live.info.subscriptions.clone();
                status.capabilities = live.info.capabilities.clone();
                next.live.insert(row.name.clone(), live);
            }
            Err(e) => status.error = Some(e),
        }
        status
    }

    /// Shuts every connector down (daemon shutdown).
    pub(crate) fn shutdown_all(&self) {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let set = std::mem::take(&mut *self.current.write().unwrap_or_else(|p| p.into_inner()));
        for (name, live) in &set.live {
            tracing::info!(connector = %name, "shutting the connector down");
            live.shutdown();
        }
    }
}
