//! Opening the bus: database, registry, event log, connector manager.

use crate::config::Config;
use anyhow::Result;
use bus_core::db::{Database, DbError};
use bus_core::eventlog::EventLog;
use bus_core::loader::{Links, Loader};
use bus_core::manager::ConnectorManager;
use bus_core::registry::{self, Registry};
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
        // The schema, the configured connectors and settings commit together.
        let seed = |conn: &rusqlite::Connection| -> Result<(), DbError> {
            // The schema registers the specification's sample connector; a
            // configuration that does not name it does not get it.
            if !config.seed_connectors.iter().any(|c| c.name == registry::SAMPLE_CONNECTOR) {
                conn.execute(
                    "DELETE FROM Integration_Connector WHERE ConnectorName = ?1",
                    [registry::SAMPLE_CONNECTOR],
                )
                .map_err(|e| DbError::Seed(format!("removing the unconfigured sample connector: {e}")))?;
            }
            for c in &config.seed_connectors {
                registry::seed(conn, c)
                    .map_err(|e| DbError::Seed(format!("the configured connector `{}`: {e}", c.name)))?;
            }
            bus_core::settings::write(conn, &config.settings)
                .map_err(|e| DbError::Seed(format!("the configured settings: {e}")))
        };
        let (db, created) = Database::open_seeded(&config.database, config.synchronous, &seed)?;
        let db = db.with_max_pages(config.max_database_pages)?;
        let registry = Registry::new(db.clone());
        if created {
            tracing::info!(database = %config.database.display(), seeded = config.seed_connectors.len(), "created a new database");
        }
        let events = Arc::new(EventLog::new(&db)?);
        Ok(Bus { db, registry, events })
    }

    /// The connector manager of a running daemon, and the services its
    /// connectors talk to.
    pub fn manager(&self, config: &Config) -> (Arc<ConnectorManager>, Arc<BusServices>) {
        let links = if config.allow_symlinks_outside { Links::MayLeave } else { Links::StayInside };
        let loader = Loader::new(&config.connectors_dir, &config.state_dir)
            .with_call_timeout(std::time::Duration::from_millis(config.call_timeout_ms))
            .with_links(links);
        let services = Arc::new(BusServices::new(self.events.clone()));
        let manager = ConnectorManager::new(self.registry.clone(), loader, services.clone(), self.events.clone());
        (Arc::new(manager), services)
    }
}
