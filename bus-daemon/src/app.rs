//! From `bus.toml` to the engine's configuration.

use crate::config::Config;
use anyhow::Result;
use bus_core::engine::{EngineConfig, Host, Store, StoreConfig, Watch};
use bus_core::loader::Links;
use std::time::Duration;

/// Where the bus's state lives and what a new database starts with.
pub fn store_config(config: &Config) -> StoreConfig {
    StoreConfig {
        database: config.database_location(),
        durability: config.synchronous,
        max_database_pages: config.max_database_pages,
        seed_connectors: config.seed_connectors.clone(),
        seed_settings: config.settings,
    }
}

/// Opens the database (what the CLI's offline commands need).
pub fn open_store(config: &Config) -> Result<Store> {
    Ok(Store::open(&store_config(config))?)
}

/// Everything the engine of a running daemon needs.
pub fn engine_config(config: &Config) -> Result<EngineConfig> {
    Ok(EngineConfig {
        store: store_config(config),
        connectors_dir: config.connectors_dir.clone(),
        state_dir: config.state_dir.clone(),
        links: if config.allow_symlinks_outside { Links::MayLeave } else { Links::StayInside },
        call_timeout: Duration::from_millis(config.call_timeout_ms),
        object_types: config.object_types()?,
        workers: config.outgoing.worker_config(),
        watch: Watch::Every(config.watch_interval()),
        process_external_interval_seconds: config.scheduler.process_external_interval_seconds,
        host: Host::Bus,
        // Connector processes run this very binary, so the ABI matches.
        isolation: config.isolation.config(std::env::current_exe().ok()),
    })
}
