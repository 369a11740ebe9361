//! Opening the bus: database, registry, event log, connector manager.

use crate::config::Config;
use anyhow::{Context, Result};
use bus_core::db::Database;
use bus_core::eventlog::EventLog;
use bus_core::loader::Loader;
use bus_core::manager::ConnectorManager;
use bus_core::registry::Registry;
use bus_core::services::BusServices;
use std::sync::Arc;

/// The parts of the bus that the CLI and the server share.
#[derive(Clone)]
pub struct Bus {
    pub db: Database,
    pub registry: Registry,
    pub events: Arc<EventLog>,
}

impl Bus {
    /// Opens the database; a new database is seeded with the configured connectors.
    pub fn open(config: &Config) -> Result<Bus> {
        let (db, created) = Database::open_with(&config.database, config.synchronous)?;
        let db = db.with_max_pages(config.max_database_pages)?;
        let registry = Registry::new(db.clone());
        if created {
            for seed in &config.seed_connectors {
                registry
                    .upsert(seed)
                    .with_context(|| format!("cannot register the configured connector `{}`", seed.name))?;
            }
            bus_core::settings::update(&mut db.connect()?, &config.settings)
                .context("cannot store the configured settings")?;
            tracing::info!(database = %config.database.display(), seeded = config.seed_connectors.len(), "created a new database");
        }
        let events = Arc::new(EventLog::new(&db)?);
        Ok(Bus { db, registry, events })
    }

    /// The connector manager of a running daemon, and the services its
    /// connectors talk to.
    pub fn manager(&self, config: &Config) -> (Arc<ConnectorManager>, Arc<BusServices>) {
        let loader = Loader::new(&config.connectors_dir, &config.state_dir)
            .with_call_timeout(std::time::Duration::from_millis(config.call_timeout_ms));
        let services = Arc::new(BusServices::new(self.events.clone()));
        let manager = ConnectorManager::new(self.registry.clone(), loader, services.clone(), self.events.clone());
        (Arc::new(manager), services)
    }
}
