//! The connector loader: from a registry row to a live, initialized connector.

mod library;
mod preflight;
mod resolve;

pub(crate) use library::open_library_copy;
use library::{classes, prepare_library};
pub(crate) use resolve::resolve_assembly;

use crate::connector::{CallError, Instance, LiveConnector};
use crate::host::{host_object, HostServices};
use crate::isolation::{ChildConnector, ChildError, Isolation, IsolationConfig, OpenRequest, ProcessConfig};
use crate::lane::Lane;
use crate::library::Library;
use crate::registry::ConnectorRow;
use abi_stable::std_types::{RResult, RStr};
use connector_abi::export::ClassEntry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

/// Why a connector could not be loaded. Each message names the cause an
/// operator can act on.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("assembly name `{name}` is refused: {reason}")]
    InvalidAssemblyName { name: String, reason: String },
    #[error("library {path} does not exist")]
    Missing { path: PathBuf },
    #[error("library {path} is a link to {target}, outside the connectors folder; copy the library into the folder, or set allow_symlinks_outside = true in bus.toml")]
    OutsideFolder { path: PathBuf, target: PathBuf },
    #[error("cannot read library {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a loadable library: {cause}")]
    NotALibrary { path: PathBuf, cause: String },
    #[error("{path} is a shared library but not an integration bus connector (it exports no connector root module)")]
    NotAConnector { path: PathBuf },
    #[error("{path} is built against an incompatible connector interface: {cause}")]
    Incompatible { path: PathBuf, cause: String },
    #[error("class `{class}` is not exported by {path} (it exports: {available})")]
    ClassNotExported { class: String, path: PathBuf, available: String },
    #[error("creating class `{class}` failed: {cause}")]
    CreateFailed { class: String, cause: String },
    #[error("init failed: {0}")]
    InitFailed(CallError),
    #[error("the connector calls itself `{reported}` but is registered as `{registered}`; the code name must equal the connector's name")]
    NameMismatch { registered: String, reported: String },
    #[error("subscriptions refused: {0}")]
    InvalidSubscriptions(String),
    /// The connector's process could not be started or set up (the text is
    /// the loader's own words, from that process when it got that far).
    #[error("{0}")]
    InProcess(String),
    #[error("the connector is set to `process` isolation, but this program cannot start a connector host; set ConnectorIsolation to in-process, or run the connector through bus-daemon")]
    NoHost,
}

/// Loads connectors from one connectors folder.
#[derive(Debug, Clone)]
pub struct Loader {
    connectors_dir: PathBuf,
    copies_dir: PathBuf,
    call_timeout: Duration,
    /// One call lane per code name, kept across reinitializations: a
    /// constructor or init stuck in an earlier load makes the next load of
    /// the same connector fail at once instead of costing another thread.
    lanes: Arc<Mutex<BTreeMap<String, Arc<Lane>>>>,
    /// Whether a library may be a link to a file outside the folder.
    links: Links,
    isolation: IsolationConfig,
    /// Connector classes compiled into this program (the connector test
    /// harness), by the connector they are registered as: that row's
    /// connector is created from its class, in this process, and no library
    /// file is looked for.
    linked: Arc<Vec<LinkedClass>>,
}

/// A connector class compiled into the program that runs the bus, and the
/// code name of the registered connector it serves.
#[derive(Debug, Clone)]
pub struct LinkedClass {
    pub connector: String,
    pub class: ClassEntry,
}

/// Whether a library in the connectors folder may be a symbolic link to a
/// file outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Refused with a load warning (the default).
    StayInside,
    /// Followed wherever they point.
    MayLeave,
}

/// Whether a loaded connector must report the row's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Names {
    /// A registered connector: the name it reports is its code name.
    MustMatch,
    /// A build tried outside the registry (a replay): any name.
    Any,
}

/// The name of the constructor call in messages.
const CREATE: &str = "create";

/// The default limit on one call into a connector.
pub(crate) const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Loader {
    /// `connectors_dir` holds the users' libraries; `state_dir` receives the
    /// private copies that are actually loaded.
    pub fn new(connectors_dir: impl Into<PathBuf>, state_dir: impl AsRef<Path>) -> Self {
        Loader {
            connectors_dir: connectors_dir.into(),
            copies_dir: state_dir.as_ref().join("libraries"),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            lanes: Arc::new(Mutex::new(BTreeMap::new())),
            links: Links::StayInside,
            isolation: IsolationConfig::default(),
            linked: Arc::default(),
        }
    }

    /// Serves rows naming one of `classes` from this program itself (see
    /// `linked` above).
    pub(crate) fn with_linked(mut self, classes: Vec<LinkedClass>) -> Self {
        self.linked = Arc::new(classes);
        self
    }

    /// Where connectors run (the default mode, the connector host program,
    /// limits).
    pub(crate) fn with_isolation(mut self, isolation: IsolationConfig) -> Self {
        self.isolation = isolation;
        self
    }

    /// The mode a row's connector runs in.
    pub fn isolation_of(&self, row: &ConnectorRow) -> Isolation {
        row.isolation.or(self.isolation.default)
    }

    /// Whether libraries may be links that leave the connectors folder.
    pub(crate) fn with_links(mut self, links: Links) -> Self {
        self.links = links;
        self
    }

    /// Refuses a library that resolves (through links) outside the folder.
    fn confine(&self, path: &Path) -> Result<(), LoadError> {
        if self.links == Links::MayLeave {
            return Ok(());
        }
        let (Ok(target), Ok(dir)) = (path.canonicalize(), self.connectors_dir.canonicalize()) else {
            return Ok(()); // a missing file is reported by the load itself
        };
        if target.starts_with(&dir) {
            Ok(())
        } else {
            Err(LoadError::OutsideFolder { path: path.to_owned(), target })
        }
    }

    /// The call lane of the connector registered as `name`.
    fn lane(&self, name: &str) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes.entry(name.to_owned()).or_insert_with(|| Arc::new(Lane::new(name))).clone()
    }

    /// A connector that runs on another daemon, as declared there; calls
    /// into it are routed through `forward` with the call timeout.
    pub(crate) fn remote(
        &self,
        row: &ConnectorRow,
        spec: crate::cluster::RemoteSpec,
        forward: Option<Arc<dyn crate::cluster::Forward>>,
        services: Arc<dyn HostServices>,
    ) -> Result<Arc<LiveConnector>, String> {
        let instance =
            crate::cluster::RemoteInstance { spec, connector: row.name.clone(), forward, timeout: self.call_timeout };
        LiveConnector::remote(row, instance, self.lane(&row.name), services, self.call_timeout)
    }

    /// Forgets the lanes of connectors no longer registered (their threads
    /// end once no instance holds them).
    pub(crate) fn keep_lanes<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let names: std::collections::BTreeSet<&str> = names.into_iter().collect();
        self.lanes.lock().unwrap_or_else(|p| p.into_inner()).retain(|n, _| names.contains(n.as_str()));
    }

    /// How long one call into a connector may take before it counts as hung.
    pub(crate) fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    pub fn connectors_dir(&self) -> &Path {
        &self.connectors_dir
    }

    /// The library file a registry row names.
    pub(crate) fn resolve(&self, assembly: &str) -> Result<PathBuf, LoadError> {
        resolve_assembly(&self.connectors_dir, assembly)
    }

    /// Loads the row's library, creates its class with the row's config and
    /// a host handle, calls init and checks the reported name.
    /// The deadline of each call into a connector (create and init too).
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    pub fn load(&self, row: &ConnectorRow, services: Arc<dyn HostServices>) -> Result<Arc<LiveConnector>, LoadError> {
        self.load_as(row, services, Names::MustMatch)
    }

    /// [`Loader::load`], with the check of the reported name as `names` says.
    pub(crate) fn load_as(
        &self,
        row: &ConnectorRow,
        services: Arc<dyn HostServices>,
        names: Names,
    ) -> Result<Arc<LiveConnector>, LoadError> {
        // Creating runs on the connector's lane too, so a constructor that
        // hangs cannot hold up the reinitialization of the others.
        let lane = self.lane(&row.name);
        let (library, object) = match self.linked.iter().find(|l| l.connector == row.name) {
            Some(linked) => (Arc::new(Library::linked()), self.create_linked(row, linked.class, &services, &lane)?),
            None => {
                let path = self.resolve(&row.assembly_name)?;
                self.confine(&path)?;
                let library = prepare_library(&path, &self.copies_dir)?;
                let object = match self.isolation_of(row) {
                    Isolation::InProcess => self.create_here(row, &path, &library.copy, &services, &lane)?,
                    Isolation::Process => self.create_in_child(row, &path, &library.copy, &services)?,
                };
                (library, object)
            }
        };
        let live = LiveConnector::initialize(row, library, object, lane, services, self.call_timeout)
            .map_err(LoadError::InitFailed)?;
        if names == Names::MustMatch && live.info.connector_name != row.name {
            return Err(LoadError::NameMismatch {
                registered: row.name.clone(),
                reported: live.info.connector_name.clone(),
            });
        }
        if !live.info.subscription_errors.is_empty() {
            return Err(LoadError::InvalidSubscriptions(live.info.subscription_errors.join("; ")));
        }
        if let Some(bad) = live.info.subscriptions.iter().find_map(|s| s.validate().err()) {
            return Err(LoadError::InvalidSubscriptions(bad.to_string()));
        }
        Ok(live)
    }

    /// Opens the library in the daemon and creates the class.
    fn create_here(
        &self,
        row: &ConnectorRow,
        path: &Path,
        copy: &Path,
        services: &Arc<dyn HostServices>,
        lane: &Lane,
    ) -> Result<Instance, LoadError> {
        let root = open_library_copy(path, copy)?;
        let classes = classes(root);
        if !classes.iter().any(|c| c == &row.class_name) {
            return Err(LoadError::ClassNotExported {
                class: row.class_name.clone(),
                path: path.to_owned(),
                available: if classes.is_empty() { "nothing".into() } else { classes.join(", ") },
            });
        }
        let host = host_object(&row.name, services.clone());
        let new_connector = root.new_connector();
        let (class, config) = (row.class_name.clone(), row.config.clone());
        let created = lane
            .run(CREATE, self.call_timeout, move || {
                new_connector(RStr::from_str(&class), RStr::from_str(&config), host)
            })
            .map_err(|e| LoadError::CreateFailed { class: row.class_name.clone(), cause: e.to_string() })?;
        match created {
            RResult::ROk(object) => Ok(Instance::InProcess(object)),
            RResult::RErr(cause) => {
                Err(LoadError::CreateFailed { class: row.class_name.clone(), cause: cause.into_string() })
            }
        }
    }

    /// Creates a class compiled into this program, on the connector's lane.
    fn create_linked(
        &self,
        row: &ConnectorRow,
        class: ClassEntry,
        services: &Arc<dyn HostServices>,
        lane: &Lane,
    ) -> Result<Instance, LoadError> {
        let host = host_object(&row.name, services.clone());
        let config = row.config.clone();
        let failed = |cause: String| LoadError::CreateFailed { class: row.class_name.clone(), cause };
        let created = lane
            .run(CREATE, self.call_timeout, move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (class.make)(&config, host)))
            })
            .map_err(|e| failed(e.to_string()))?;
        match created {
            Ok(Ok(object)) => Ok(Instance::InProcess(object)),
            Ok(Err(cause)) => Err(failed(cause.to_string())),
            Err(panic) => Err(failed(format!(
                "the connector panicked while being created: {}",
                connector_abi::panic_message(&*panic)
            ))),
        }
    }

    /// Starts a connector host that opens the library and creates the class.
    fn create_in_child(
        &self,
        row: &ConnectorRow,
        path: &Path,
        copy: &Path,
        services: &Arc<dyn HostServices>,
    ) -> Result<Instance, LoadError> {
        let program = self.isolation.program.clone().ok_or(LoadError::NoHost)?;
        let open = OpenRequest {
            source: path.to_owned(),
            copy: copy.to_owned(),
            class: row.class_name.clone(),
            config: row.config.clone(),
            name: row.name.clone(),
            limits: self.isolation.limits,
        };
        let config = ProcessConfig {
            program,
            restart_max: self.isolation.restart_max,
            batch_size: self.isolation.batch_size.max(1),
        };
        match ChildConnector::start(&row.name, open, config, self.call_timeout, services.clone()) {
            Ok(child) => Ok(Instance::Child(Box::new(child))),
            Err(ChildError::Start(text)) => Err(LoadError::InProcess(text)),
            Err(e) => Err(LoadError::CreateFailed { class: row.class_name.clone(), cause: e.to_string() }),
        }
    }
}
