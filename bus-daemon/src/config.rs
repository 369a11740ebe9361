//! The daemon configuration (`bus.toml`) and its command-line overrides.

use anyhow::{bail, Context, Result};
use bus_core::registry::NewConnector;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `bus.toml`. Relative paths are relative to the file's folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The SQLite database file.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// Where connector libraries are dropped.
    #[serde(default = "default_connectors_dir")]
    pub connectors_dir: PathBuf,
    /// Where the daemon keeps its own files (private copies of loaded libraries).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The HTTP listen address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// How often the registry and the library files are checked for changes.
    #[serde(default = "default_watch_interval_ms")]
    pub watch_interval_ms: u64,
    /// Connectors registered when the database is created.
    #[serde(default, rename = "connector")]
    pub seed_connectors: Vec<NewConnector>,
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
                for p in [&mut config.database, &mut config.connectors_dir, &mut config.state_dir] {
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
        Ok(config)
    }

    pub fn watch_interval(&self) -> Duration {
        Duration::from_millis(self.watch_interval_ms)
    }
}
