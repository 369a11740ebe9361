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
    /// Why the last load failed (also set while a previous build keeps
    /// running), or that it is still starting.
    pub error: Option<String>,
    /// Its create or init has not returned yet: it joins the running set
    /// when it does (see [`ConnectorManager::reload_all`]).
    pub starting: bool,
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

/// What a reinitialization creates anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reload {
    /// Every connector that runs here (a registry edit, a library change,
    /// the start).
    All,
    /// Only the connectors a placement change brought here.
    Placement,
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
    /// Loads that outlive their reinitialization finish through this.
    me: std::sync::Weak<ConnectorManager>,
    /// Shut down: late loads are stopped, not added.
    stopped: std::sync::atomic::AtomicBool,
    /// The load problem last written to the event log, by connector name:
    /// the same problem is written once, however many reinitializations
    /// meet it (also one whose create outlives them); forgotten once the
    /// connector loads.
    warned: Mutex<std::collections::HashMap<String, String>>,
    /// Several daemons on one database: only the connectors whose leases
    /// this daemon holds run here; the others are reached where they run.
    cluster: Option<Arc<Cluster>>,
}

/// How long a reinitialization waits for the connectors it starts before
/// it publishes the new set: the ones still in `create` or `init` then
/// join it when they return (each under its call deadline), so one hung
/// connector delays neither the others nor a takeover.
pub const SETTLE: Duration = Duration::from_millis(1000);

/// What [`ConnectorManager::new`] needs.
pub struct ManagerParts {
    pub registry: Registry,
    pub loader: Loader,
    pub services: Arc<dyn HostServices>,
    pub events: Arc<EventLog>,
    /// Several daemons on one database: runs only the connectors whose
    /// leases this daemon holds.
    pub cluster: Option<Arc<Cluster>>,
}

impl ConnectorManager {
    pub fn new(parts: ManagerParts) -> Arc<Self> {
        Arc::new_cyclic(|me| ConnectorManager {
            listeners: RwLock::new(Vec::new()),
            registry: parts.registry,
            loader: parts.loader,
            services: parts.services,
            events: parts.events,
            current: RwLock::new(Arc::new(ConnectorSet::default())),
            reloading: Mutex::new(()),
            reinitializations: AtomicU64::new(0),
            me: me.clone(),
            stopped: std::sync::atomic::AtomicBool::new(false),
            warned: Mutex::default(),
            cluster: parts.cluster,
        })
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

    /// The current set once `name` is no longer starting (or when the
    /// deadlines of its create and init have passed): an edit's answer
    /// shows how its own connector loaded without waiting for the others.
    pub fn wait_settled(&self, name: &str) -> Arc<ConnectorSet> {
        let deadline = Instant::now() + self.loader.call_timeout().saturating_mul(2) + SETTLE;
        loop {
            let set = self.current();
            if !set.status.get(name).is_some_and(|s| s.starting) || Instant::now() >= deadline {
                return set;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many reinitializations have run.
    pub fn reinitializations(&self) -> u64 {
        self.reinitializations.load(Ordering::Relaxed)
    }

    /// Reinitializes every connector from the registry: every enabled row is
    /// loaded anew. A row whose load fails keeps its previous instance when
    /// there was one (and says so); the others keep running either way.
    pub fn reload_all(&self) -> Result<Arc<ConnectorSet>, RegistryError> {
        self.reload(Reload::All)
    }

    /// Follows a placement change of the cluster: the connectors whose
    /// leases came here are created, those whose leases went elsewhere are
    /// dropped, and the others keep their running instance — unless the
    /// registry changed since they were loaded, which reinitializes all.
    pub fn reload_placement(&self) -> Result<Arc<ConnectorSet>, RegistryError> {
        self.reload(Reload::Placement)
    }

    fn reload(&self, scope: Reload) -> Result<Arc<ConnectorSet>, RegistryError> {
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
        // A placement change with the registry as it was keeps the
        // instances that already ran here (not a stand-in for one that ran
        // on another daemon).
        let kept = |row: &ConnectorRow| {
            (scope == Reload::Placement && registry_version == previous.registry_version)
                .then(|| previous.live.get(&row.name).filter(|live| live.runs_on().is_none()))
                .flatten()
                .zip(previous.status.get(&row.name))
        };
        // Every other connector that runs here starts on a thread of its
        // own; the ones not back within SETTLE are published as starting.
        let loads = Arc::new(Loads::default());
        let to_load: Vec<&ConnectorRow> = rows.iter().filter(|r| self.loads_here(r) && kept(r).is_none()).collect();
        for row in &to_load {
            self.start_load(row, next.generation, &loads);
        }
        let mut done = loads.settle(to_load.len(), started + SETTLE);
        let mut failed = 0usize;
        for row in &rows {
            if let Ok(path) = self.loader.resolve(&row.assembly_name) {
                if row.enabled {
                    next.watched.push(path);
                }
            }
            let status = match (self.loads_here(row), kept(row)) {
                (false, _) => self.load_row(row, &mut next),
                (true, Some((live, status))) => {
                    next.live.insert(row.name.clone(), live.clone());
                    status.clone()
                }
                (true, None) => match done.remove(&row.name) {
                    Some(result) => self.settle_row(row, result, previous.live.get(&row.name).cloned(), &mut next),
                    None => starting(row),
                },
            };
            if status.error.is_some() {
                failed += 1;
            }
            next.status.insert(row.name.clone(), status);
        }
        self.loader.keep_lanes(rows.iter().map(|r| r.name.as_str()));
        next.took = started.elapsed();
        self.forget_warnings(&next);
        let next = Arc::new(next);
        self.reinitializations.fetch_add(1, Ordering::Relaxed);
        self.publish(next.clone());
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

    /// Whether this reinitialization creates an instance of `row` here.
    fn loads_here(&self, row: &ConnectorRow) -> bool {
        row.problems.is_empty() && row.enabled && self.cluster.as_ref().is_none_or(|c| c.runs_here(row.id))
    }

    /// The status of a row that runs nowhere here: unusable, disabled, or
    /// run by another daemon of the cluster.
    fn load_row(&self, row: &ConnectorRow, next: &mut ConnectorSet) -> ConnectorStatus {
        let mut status = ConnectorStatus { enabled: row.enabled, ..Default::default() };
        if !row.problems.is_empty() {
            let message = format!(
                "the registry row (ID {}) cannot be used: {}; correct it through the API, the CLI or SQL",
                row.id,
                row.problems.join("; ")
            );
            tracing::warn!(connector_id = row.id, error = %message, "unusable registry row");
            self.load_warning(&row.name, &message);
            status.error = Some(message);
            return status;
        }
        match &self.cluster {
            Some(cluster) if row.enabled => self.load_remote(cluster, row, status, next),
            _ => status,
        }
    }

    /// Creates and initializes `row`'s instance on a thread of its own; the
    /// result goes to `loads` while the reinitialization collects, and is
    /// added to the running set by the thread itself after that.
    fn start_load(&self, row: &ConnectorRow, generation: u64, loads: &Arc<Loads>) {
        let (me, mine, collected) = (self.me.clone(), row.clone(), loads.clone());
        let thread = format!("load-{}", row.name.replace('\0', "?"));
        let started = std::thread::Builder::new().name(thread).spawn(move || {
            let (row, loads) = (mine, collected);
            let Some(manager) = me.upgrade() else { return };
            let result = manager.loader.load(&row, manager.services.clone()).map_err(|e| e.to_string());
            if let Some(late) = loads.deliver(&row.name, result) {
                manager.adopt_late(&row, generation, late);
            }
        });
        if let Err(e) = started {
            loads.deliver(&row.name, Err(format!("cannot start a thread to load it: {e}")));
        }
    }

    /// A load that returned after its reinitialization was published joins
    /// the running set — unless a newer reinitialization (or a shutdown)
    /// came first, which made its own instance.
    fn adopt_late(&self, row: &ConnectorRow, generation: u64, result: Result<Arc<LiveConnector>, String>) {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.current();
        if current.generation != generation || self.stopped.load(Ordering::SeqCst) {
            if let Ok(live) = result {
                live.shutdown();
            }
            return;
        }
        let mut next = ConnectorSet {
            generation,
            registry_version: current.registry_version,
            live: current.live.clone(),
            status: current.status.clone(),
            watched: current.watched.clone(),
            started: current.started,
            took: current.took,
        };
        let status = self.settle_row(row, result, None, &mut next);
        tracing::info!(connector = %row.name, loaded = status.loaded, "a connector that was still starting settled");
        next.status.insert(row.name.clone(), status);
        self.forget_warnings(&next);
        self.publish(Arc::new(next));
    }

    /// Writes a connector's load problem to the event log — once: the
    /// problem last written for it is not written again.
    fn load_warning(&self, name: &str, message: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.get(name).is_some_and(|last| last == message) {
            return;
        }
        warned.insert(name.to_owned(), message.to_owned());
        drop(warned);
        self.events.write_or_warn(&NewEvent {
            event_type: EventType::Warning,
            source: BUS_SOURCE,
            code: "CONNECTORLOAD",
            description: &format!("Connector `{}` could not be loaded: {message}", name.escape_debug()),
            document_name: None,
            ..Default::default()
        });
    }

    /// Forgets the problems of connectors that load now (or left the
    /// registry): a problem they meet later is written again.
    fn forget_warnings(&self, set: &ConnectorSet) {
        self.warned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|name, _| set.status.get(name).is_some_and(|s| s.error.is_some()));
    }

    /// Makes `next` the running set and tells the listeners.
    fn publish(&self, next: Arc<ConnectorSet>) {
        let replaced = std::mem::replace(&mut *self.current.write().unwrap_or_else(|p| p.into_inner()), next.clone());
        // Instances that are not carried over are shut down as soon as no
        // worker holds them any more (LiveConnector's Drop).
        drop(replaced);
        for listener in self.listeners.read().unwrap_or_else(|p| p.into_inner()).iter() {
            listener(&next);
        }
    }

    /// The status of a local load that returned; a failed one keeps the
    /// `previous` instance running when there is one.
    fn settle_row(
        &self,
        row: &ConnectorRow,
        result: Result<Arc<LiveConnector>, String>,
        previous: Option<Arc<LiveConnector>>,
        next: &mut ConnectorSet,
    ) -> ConnectorStatus {
        let mut status = ConnectorStatus { enabled: row.enabled, ..Default::default() };
        let (instance, error) = match result {
            Ok(live) => (Some(live), None),
            Err(e) => {
                let message = match &previous {
                    Some(_) => format!("{e}; the previous build keeps running"),
                    None => e,
                };
                tracing::warn!(connector = %row.name, error = %message, "connector failed to load");
                self.load_warning(&row.name, &message);
                (previous, Some(message))
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
        self.stopped.store(true, Ordering::SeqCst);
        let set = std::mem::take(&mut *self.current.write().unwrap_or_else(|p| p.into_inner()));
        for (name, live) in &set.live {
            tracing::info!(connector = %name, "shutting the connector down");
            live.shutdown();
        }
    }
}

/// The status of a connector whose create or init has not returned yet.
fn starting(row: &ConnectorRow) -> ConnectorStatus {
    ConnectorStatus {
        enabled: row.enabled,
        starting: true,
        error: Some(format!(
            "starting: its create or init has not returned within {} ms; it runs once they do (or fails at its call deadline)",
            SETTLE.as_millis()
        )),
        ..Default::default()
    }
}

/// The results of the loads one reinitialization started, collected until
/// it publishes; a load that returns after that is handed back to its
/// thread ([`Loads::deliver`] returns it) to join the set by itself.
#[derive(Default)]
struct Loads {
    state: Mutex<Collecting>,
    returned: std::sync::Condvar,
}

#[derive(Default)]
struct Collecting {
    results: BTreeMap<String, Result<Arc<LiveConnector>, String>>,
    /// The reinitialization published: results are no longer taken.
    closed: bool,
}

impl Loads {
    /// Takes a load's result; gives it back when collecting is over.
    fn deliver(
        &self,
        name: &str,
        result: Result<Arc<LiveConnector>, String>,
    ) -> Option<Result<Arc<LiveConnector>, String>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.closed {
            return Some(result);
        }
        state.results.insert(name.to_owned(), result);
        self.returned.notify_all();
        None
    }

    /// Waits until `expected` loads returned or `deadline` passed, then
    /// closes and returns what came back.
    fn settle(&self, expected: usize, deadline: Instant) -> BTreeMap<String, Result<Arc<LiveConnector>, String>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while state.results.len() < expected {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
            state = self.returned.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        state.closed = true;
        std::mem::take(&mut state.results)
    }
}
