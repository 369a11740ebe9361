//! `bus-daemon serve`: load the connectors, watch the registry, serve HTTP.

use crate::app::Bus;
use crate::config::Config;
use crate::http;
use anyhow::{Context, Result};
use bus_core::content::Content;
use bus_core::eventlog::{NewEvent, BUS_SOURCE};
use bus_core::incoming::Incoming;
use bus_core::metrics::Metrics;
use bus_core::queue_admin;
use bus_core::scheduler::{self, Scheduler};
use bus_core::storage::StorageWatch;
use bus_core::watch::Watcher;
use connector_abi::EventType;
use std::sync::Arc;
use std::time::Duration;

pub fn run(config: Config) -> Result<()> {
    config.check_exposure()?;
    let bus = Bus::open(&config)?;
    let storage = StorageWatch::new(&config.database)
        .with_context(|| format!("cannot read the database file {}", config.database.display()))?;
    let types = Arc::new(config.object_types()?);
    let (manager, services) = bus.manager(&config);
    let metrics = Arc::new(Metrics::default());
    let outgoing = bus_core::outgoing::workers(bus.db.clone(), config.outgoing.worker_config(), metrics.clone())?;
    outgoing.follow(&manager);
    let cleanup_db = bus.db.clone();
    let cleanup_events = bus.events.clone();
    manager.on_reload(Box::new(move |_| match cleanup_db.connect().map(|c| queue_admin::remove_orphans(&c)) {
        Ok(Ok(removed)) => {
            for (connector_id, n) in removed {
                let description = format!(
                    "The connector with ID {connector_id} left the registry without a delete (a row replaced with plain SQL); its {n} queued task relation(s) were discarded."
                );
                tracing::warn!(connector_id, discarded = n, "discarded the queued tasks of a vanished connector");
                cleanup_events.write_or_warn(&NewEvent {
                    event_type: EventType::Warning,
                    source: BUS_SOURCE,
                    code: "CONNECTORDELETE",
                    description: &description,
                    document_name: None,
                ..Default::default()
            });
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot remove the tasks of deleted connectors"),
        Err(e) => tracing::warn!(error = %e, "cannot remove the tasks of deleted connectors"),
    }));
    let set = manager.reload_all().context("cannot read the connector registry")?;
    let content =
        Arc::new(Content::new(&bus.db, types.clone(), manager.clone(), outgoing.clone(), bus.events.clone())?);
    let incoming = Incoming::new(
        bus.db.clone(),
        types,
        manager.clone(),
        content.clone(),
        bus.events.clone(),
        config.outgoing.worker_config(),
        metrics.clone(),
    )?;
    services.attach_incoming(&incoming);
    let mut scheduler = Scheduler::new(bus.db.clone());
    let for_scheduler = Arc::downgrade(&incoming);
    scheduler.register(
        scheduler::PROCESS_EXTERNAL,
        Arc::new(move || {
            let incoming = for_scheduler.upgrade().ok_or("the daemon is stopping")?;
            let names = incoming.request_processing(None).map_err(|e| e.to_string())?;
            Ok(format!("processing started for {} connector(s)", names.len()))
        }),
    );
    if let Some(seconds) = config.scheduler.process_external_interval_seconds {
        scheduler::update(&bus.db.connect()?, scheduler::PROCESS_EXTERNAL, Some(seconds), None)
            .context("cannot apply [scheduler] process_external_interval_seconds")?;
    }
    let scheduler = scheduler.spawn(Duration::from_millis(500)).context("cannot start the scheduler")?;
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
    let state = http::AppState {
        db: bus.db.clone(),
        registry: bus.registry.clone(),
        events: bus.events.clone(),
        manager: manager.clone(),
        outgoing: outgoing.clone(),
        content,
        incoming: incoming.clone(),
        scheduler: scheduler.scheduler(),
        metrics,
        auth_token: config.auth_token.as_deref().map(Arc::from),
        auth_user: Arc::from(config.auth_user.as_str()),
        protection: Arc::new(http::guard::Protection {
            allowed_hosts: config.http.allowed_hosts.clone(),
            token: config.auth_token.is_some(),
            large_bodies: Arc::new(tokio::sync::Semaphore::new(config.http.max_large_bodies)),
            storage: storage.clone(),
        }),
        logins: Arc::default(),
        tls: config.tls_cert.is_some(),
        max_request_bytes: config.http.max_request_bytes,
    };
    http::error::MAX_REQUEST_BYTES.store(config.http.max_request_bytes, std::sync::atomic::Ordering::Relaxed);
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(http::server::tls_acceptor(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let result = runtime.block_on(async {
        // Notice a lost database file within a second, also while idle.
        let watch = storage.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if watch.fault().is_some() {
                    break;
                }
            }
        });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, database = %config.database.display(), connectors_dir = %config.connectors_dir.display(), "integration bus listening");
        // Tests and scripts read this line to find the port.
        println!("listening on {scheme}://{addr}");
        http::server::serve(listener, http::router(state), &config.http, tls, shutdown_signal()).await?;
        anyhow::Ok(())
    });
    // A request still waiting on a connector call (at most the call
    // timeout) is not waited for.
    runtime.shutdown_timeout(http::server::GRACE);
    drop(watcher);
    drop(scheduler);
    incoming.workers().stop_all();
    outgoing.stop_all();
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
