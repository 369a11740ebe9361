//! `bus-daemon serve`: load the connectors, watch the registry, serve HTTP.

use crate::app::Bus;
use crate::config::Config;
use crate::http;
use anyhow::{Context, Result};
use bus_core::watch::Watcher;

pub fn run(config: Config) -> Result<()> {
    let bus = Bus::open(&config)?;
    let manager = bus.manager(&config);
    let set = manager.reload_all().context("cannot read the connector registry")?;
    for (name, status) in &set.status {
        match (&status.error, status.loaded) {
            (None, true) => tracing::info!(connector = %name, "connector loaded"),
            (None, false) => tracing::info!(connector = %name, "connector disabled"),
            (Some(_), _) => {} // already warned by the manager
        }
    }
    let watcher = Watcher::spawn(manager.clone(), bus.db.clone(), config.watch_interval())
        .context("cannot start the registry watcher")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bus-http")
        .build()
        .context("cannot start the async runtime")?;
    let state = http::AppState { registry: bus.registry.clone(), events: bus.events.clone(), manager: manager.clone() };
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, database = %config.database.display(), connectors_dir = %config.connectors_dir.display(), "integration bus listening");
        // Tests and scripts read this line to find the port.
        println!("listening on http://{addr}");
        axum::serve(listener, http::router(state)).with_graceful_shutdown(shutdown_signal()).await?;
        anyhow::Ok(())
    });
    drop(watcher);
    manager.shutdown_all();
    tracing::info!("integration bus stopped");
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested");
}
