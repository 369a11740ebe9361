//! From `bus.toml` to the engine's configuration.

use crate::config::Config;
use anyhow::Result;
use bus_core::cluster::ClusterConfig;
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

/// Everything the engine of a running daemon needs; `address`: where this
/// daemon's API listens, as the other daemons of a cluster reach it.
pub fn engine_config(config: &Config, address: Option<String>) -> Result<EngineConfig> {
    config.cluster.check()?;
    let call_timeout = Duration::from_millis(config.call_timeout_ms);
    let address = config.cluster.address.clone().or(address);
    let forwarder = crate::http::cluster::Forwarder::new(crate::http::cluster::ForwarderParts {
        call_timeout,
        token: config.auth_token.as_deref(),
        from: address.clone().unwrap_or_default(),
        ca_cert: config.cluster.ca_cert.clone(),
    })?;
    let cluster = ClusterConfig {
        lease_ttl: Duration::from_millis(config.cluster.lease_ttl_ms),
        address,
        forward: Some(std::sync::Arc::new(forwarder)),
    };
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
        cluster,
        linked: Vec::new(),
    })
}
