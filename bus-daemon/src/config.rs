//! The daemon configuration (`bus.toml`) and its command-line overrides.

use anyhow::{bail, Context, Result};
use bus_core::db::Durability;
use bus_core::isolation::{Isolation, IsolationConfig, Limits};
use bus_core::object_types::ObjectTypes;
use bus_core::registry::NewConnector;
use bus_core::settings::SettingsPatch;
use bus_core::worker::{Start, WorkerConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `bus.toml`. Relative paths are relative to the file's folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The database: a SQLite file path, or `postgres://user@host:port/dbname`
    /// (also `postgresql://`) for PostgreSQL, where several daemons may share
    /// one database.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// Where connector libraries are dropped.
    #[serde(default = "default_connectors_dir")]
    pub connectors_dir: PathBuf,
    /// Where the daemon keeps its own files (private copies of loaded libraries).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// `normal` (the default: nothing is lost when the process dies) or
    /// `full` (nothing is lost when the machine loses power either).
    #[serde(default)]
    pub synchronous: Durability,
    /// The HTTP listen address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// When set, every API route needs this token (bearer header or the UI's
    /// login). Required to listen beyond loopback.
    #[serde(default)]
    pub auth_token: Option<String>,
    /// The user name the event log gives management actions made through
    /// the HTTP API (the person the token, or the loopback machine, stands for).
    #[serde(default = "default_auth_user")]
    pub auth_user: String,
    /// How long one call into a connector may take before it counts as hung.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// A quota on the database size, in pages (a page is 4 KiB by default):
    /// past it, changes are refused with "the database is full".
    #[serde(default)]
    pub max_database_pages: Option<u64>,
    /// How often the registry and the library files are checked for changes.
    #[serde(default = "default_watch_interval_ms")]
    pub watch_interval_ms: u64,
    /// An object-type file replacing the shipped object types and document classes.
    #[serde(default)]
    pub object_types: Option<PathBuf>,
    /// The settings a new database starts with (absent ones are on).
    #[serde(default)]
    pub settings: SettingsPatch,
    /// Outgoing processing.
    #[serde(default)]
    pub outgoing: OutgoingConfig,
    /// Scheduled tasks.
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    /// Several daemons on one PostgreSQL database.
    #[serde(default)]
    pub cluster: ClusterSection,
    /// Connectors registered when the database is created.
    #[serde(default, rename = "connector")]
    pub seed_connectors: Vec<NewConnector>,
    /// The HTTP server's limits and protections.
    #[serde(default)]
    pub http: HttpConfig,
    /// A PEM certificate chain and its private key: the daemon serves HTTPS
    /// (and the session cookie is `Secure`). Both or neither.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Load a connector library reached through a symbolic link that leaves
    /// the connectors folder (refused by default).
    #[serde(default)]
    pub allow_symlinks_outside: bool,
    /// Where connectors whose `ConnectorIsolation` is empty run: a mode
    /// (`isolation = "process"`), or a table with the mode and the limits
    /// of connector processes (`[isolation]`).
    #[serde(default)]
    pub isolation: IsolationEntry,
}

/// `isolation` in bus.toml: `isolation = "in-process"`, or `[isolation]`.
#[derive(Debug, Clone)]
pub enum IsolationEntry {
    Mode(Isolation),
    Table(IsolationTable),
}

/// Read by hand so a wrong value gets a message that names the choices
/// (serde's untagged enums only say that nothing matched).
impl<'de> Deserialize<'de> for IsolationEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match toml::Value::deserialize(d)? {
            toml::Value::String(mode) => match mode.as_str() {
                "process" => Ok(IsolationEntry::Mode(Isolation::Process)),
                "in-process" => Ok(IsolationEntry::Mode(Isolation::InProcess)),
                other => Err(D::Error::custom(format!(
                    "isolation = \"{other}\" is not a mode: use \"process\" or \"in-process\", or an [isolation] table"
                ))),
            },
            table @ toml::Value::Table(_) => table.try_into().map(IsolationEntry::Table).map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "isolation must be \"process\", \"in-process\" or an [isolation] table, not a {}",
                other.type_str()
            ))),
        }
    }
}

impl Default for IsolationEntry {
    fn default() -> Self {
        IsolationEntry::Mode(Isolation::Process)
    }
}

/// `[isolation]` in bus.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsolationTable {
    /// The default mode (`process` unless set).
    #[serde(default)]
    pub mode: Isolation,
    /// The most memory one connector process may allocate, in MiB.
    #[serde(default)]
    pub memory_limit_mb: Option<u64>,
    /// The most CPU time one connector process may use over its life, in seconds.
    #[serde(default)]
    pub cpu_limit_seconds: Option<u64>,
    /// The longest pause before a crashed connector process is started again.
    #[serde(default = "default_restart_backoff_max_ms")]
    pub restart_backoff_max_ms: u64,
    /// Queued tasks sent to a connector process in one request (1: a crash
    /// repeats at most one task; N: up to N, for fewer round trips).
    #[serde(default = "default_process_batch_size")]
    pub batch_size: usize,
}

fn default_process_batch_size() -> usize {
    1
}

fn default_restart_backoff_max_ms() -> u64 {
    10_000
}

impl IsolationEntry {
    /// The engine's isolation settings; `program` runs `connector-host`.
    pub fn config(&self, program: Option<PathBuf>) -> IsolationConfig {
        match self {
            IsolationEntry::Mode(mode) => IsolationConfig { default: *mode, program, ..IsolationConfig::default() },
            IsolationEntry::Table(t) => IsolationConfig {
                default: t.mode,
                program,
                limits: Limits { memory_mb: t.memory_limit_mb, cpu_seconds: t.cpu_limit_seconds },
                restart_max: Duration::from_millis(t.restart_backoff_max_ms),
                batch_size: t.batch_size,
            },
        }
    }

    fn check(&self) -> Result<()> {
        if let IsolationEntry::Table(t) = self {
            if t.memory_limit_mb == Some(0) || t.cpu_limit_seconds == Some(0) {
                bail!("[isolation] memory_limit_mb and cpu_limit_seconds must be at least 1 when set");
            }
            if !(1..=1000).contains(&t.batch_size) {
                bail!("[isolation] batch_size must be between 1 and 1000, not {}", t.batch_size);
            }
            if t.memory_limit_mb.is_some_and(|mb| mb < 16) {
                bail!("[isolation] memory_limit_mb must be at least 16: a connector process needs that much to start");
            }
        }
        Ok(())
    }
}

/// `[http]` in bus.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// A client must send a request's headers within this long after it
    /// connected or after its previous response; an idle keep-alive
    /// connection is closed after the same time.
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// At most this many connections are open at once. A full table closes
    /// the connection that has waited longest without a request to make
    /// room; only when every one is in a request do newcomers wait in the
    /// listen backlog (`http/connections.rs`).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The largest request body accepted (413 beyond, naming the limit).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// At most this many requests with a body larger than 64 KiB are read
    /// and handled at once; the others wait their turn (bounded memory).
    #[serde(default = "default_max_large_bodies")]
    pub max_large_bodies: usize,
    /// Host names (besides loopback names and addresses) the daemon answers
    /// to without an access token, e.g. a name in /etc/hosts for 127.0.0.1.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

fn default_header_timeout_ms() -> u64 {
    10_000
}
fn default_max_connections() -> usize {
    256
}
fn default_max_request_bytes() -> usize {
    2 * 1024 * 1024
}
fn default_max_large_bodies() -> usize {
    4
}

impl Default for HttpConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty section is valid")
    }
}

impl HttpConfig {
    fn check(&self) -> Result<()> {
        if self.header_timeout_ms == 0 {
            bail!("[http] header_timeout_ms must be at least 1");
        }
        if self.max_connections == 0 {
            bail!("[http] max_connections must be at least 1");
        }
        if self.max_request_bytes < 1024 {
            bail!("[http] max_request_bytes must be at least 1024, not {}", self.max_request_bytes);
        }
        if self.max_large_bodies == 0 {
            bail!("[http] max_large_bodies must be at least 1");
        }
        Ok(())
    }
}

/// `[cluster]` in bus.toml: how daemons sharing a PostgreSQL database split
/// the connectors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// How long a connector's lease lasts unless renewed (renewed every
    /// fifth of it): a daemon that dies hands its connectors over after
    /// this long.
    #[serde(default = "default_lease_ttl_ms")]
    pub lease_ttl_ms: u64,
    /// This daemon's API as the other daemons reach it (default: the
    /// listening address; required when that is a wildcard address); calls
    /// to the connectors it runs are routed there.
    #[serde(default)]
    pub address: Option<String>,
    /// A PEM file of the CA certificates the other daemons' HTTPS
    /// certificates are checked against (default: the public roots).
    #[serde(default)]
    pub ca_cert: Option<std::path::PathBuf>,
}

fn default_lease_ttl_ms() -> u64 {
    5000
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection { lease_ttl_ms: default_lease_ttl_ms(), address: None, ca_cert: None }
    }
}

impl ClusterSection {
    /// Refuses a lease time that cannot work.
    pub fn check(&self) -> Result<()> {
        if !(500..=600_000).contains(&self.lease_ttl_ms) {
            anyhow::bail!("[cluster] lease_ttl_ms must be between 500 and 600000, not {}", self.lease_ttl_ms);
        }
        if let Some(a) = &self.address {
            connector_http::check_url(a).map_err(|e| anyhow::anyhow!("[cluster] address: {e}"))?;
        }
        if let Some(ca) = &self.ca_cert {
            if !ca.is_file() {
                anyhow::bail!("[cluster] ca_cert: {} is not a readable file", ca.display());
            }
        }
        Ok(())
    }
}

/// `[scheduler]` in bus.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// The interval of "Process external integration tasks", applied at every
    /// start when given (the API and the CLI change it at run time).
    #[serde(default)]
    pub process_external_interval_seconds: Option<i64>,
}

/// `[outgoing]` in bus.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutgoingConfig {
    /// The first automatic retry after an `Error` (doubling up to `retry_max_ms`).
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Tasks read per query by a worker.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// How often an idle worker looks for tasks logged by other processes.
    #[serde(default = "default_idle_poll_ms")]
    pub idle_poll_ms: u64,
    /// Delivered tasks removed per transaction: 1 repeats at most the task in
    /// flight after a crash; more means fewer commits and up to that many repeats.
    #[serde(default = "default_delete_batch")]
    pub delete_batch: usize,
}

fn default_delete_batch() -> usize {
    1
}

fn default_retry_base_ms() -> u64 {
    1000
}
fn default_retry_max_ms() -> u64 {
    300_000
}
fn default_batch_size() -> u32 {
    256
}
fn default_idle_poll_ms() -> u64 {
    2000
}

impl Default for OutgoingConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty section is valid")
    }
}

impl OutgoingConfig {
    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig {
            retry_base: Duration::from_millis(self.retry_base_ms),
            retry_max: Duration::from_millis(self.retry_max_ms),
            batch_size: self.batch_size,
            idle_poll: Duration::from_millis(self.idle_poll_ms),
            delete_batch: self.delete_batch,
            start: Start::ByItself,
        }
    }

    fn check(&self) -> Result<()> {
        if self.retry_base_ms == 0 || self.retry_base_ms > self.retry_max_ms {
            bail!(
                "[outgoing] retry_base_ms must be at least 1 and at most retry_max_ms ({}), not {}",
                self.retry_max_ms,
                self.retry_base_ms
            );
        }
        if self.batch_size == 0 || self.batch_size > 10_000 {
            bail!("[outgoing] batch_size must be between 1 and 10000, not {}", self.batch_size);
        }
        if self.delete_batch == 0 || self.delete_batch > 10_000 {
            bail!("[outgoing] delete_batch must be between 1 and 10000, not {}", self.delete_batch);
        }
        if self.idle_poll_ms == 0 {
            bail!("[outgoing] idle_poll_ms must be at least 1");
        }
        Ok(())
    }
}

fn default_database() -> PathBuf {
    "bus.db".into()
}
fn default_connectors_dir() -> PathBuf {
    "connectors".into()
}
fn default_state_dir() -> PathBuf {
    "state".into()
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8700))
}
fn default_watch_interval_ms() -> u64 {
    250
}
fn default_auth_user() -> String {
    "administrator".into()
}
fn default_call_timeout_ms() -> u64 {
    30_000
}

impl Default for Config {
    fn default() -> Self {
        toml::from_str("").expect("the empty configuration is valid")
    }
}

/// Overrides given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub database: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub connectors_dir: Option<PathBuf>,
}

impl Config {
    /// Where the database is (a file, or a PostgreSQL server).
    pub fn database_location(&self) -> bus_core::db::Location {
        bus_core::db::Location::from(self.database.clone())
    }

    /// Reads `path` (or the defaults when it is `None`), resolves relative
    /// paths against the file's folder, then applies the overrides (relative
    /// to the working directory, as any command-line path).
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
                let mut config: Config = toml::from_str(&text)
                    .with_context(|| format!("the configuration file {} is not valid", path.display()))?;
                let base = path.parent().unwrap_or(Path::new("."));
                // A PostgreSQL URL is not a path.
                let file_database = config.database_location().file().is_some();
                for p in [&mut config.connectors_dir, &mut config.state_dir]
                    .into_iter()
                    .chain(file_database.then_some(&mut config.database))
                    .chain(config.object_types.as_mut())
                    .chain(config.tls_cert.as_mut())
                    .chain(config.tls_key.as_mut())
                {
                    if p.is_relative() {
                        *p = base.join(&*p);
                    }
                }
                config
            }
            None => Config::default(),
        };
        if let Some(db) = &overrides.database {
            config.database = db.clone();
        }
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(dir) = &overrides.connectors_dir {
            config.connectors_dir = dir.clone();
        }
        if config.watch_interval_ms == 0 || config.watch_interval_ms > 60_000 {
            bail!("watch_interval_ms must be between 1 and 60000, not {}", config.watch_interval_ms);
        }
        config.outgoing.check()?;
        config.isolation.check()?;
        config.http.check()?;
        if config.tls_cert.is_some() != config.tls_key.is_some() {
            bail!("tls_cert and tls_key go together: give both (PEM files) or neither");
        }
        if let Some(token) = &config.auth_token {
            if token.trim().len() < 16 {
                bail!("auth_token must be at least 16 characters long");
            }
        }
        if config.call_timeout_ms == 0 {
            bail!("call_timeout_ms must be at least 1");
        }
        Ok(config)
    }

    /// The object types: the configured file, or the shipped ones.
    pub fn object_types(&self) -> Result<ObjectTypes> {
        match &self.object_types {
            Some(path) => Ok(ObjectTypes::load(path)?),
            None => Ok(ObjectTypes::defaults()),
        }
    }

    /// Refuses to serve beyond loopback without an access token.
    pub fn check_exposure(&self) -> Result<()> {
        if !self.listen.ip().is_loopback() && self.auth_token.is_none() {
            bail!(
                "refusing to listen on {} without an auth_token: anyone who can reach it could change the registry and the content. \
                 Set auth_token in the configuration, or listen on 127.0.0.1",
                self.listen
            );
        }
        Ok(())
    }

    pub fn watch_interval(&self) -> Duration {
        Duration::from_millis(self.watch_interval_ms)
    }
}
