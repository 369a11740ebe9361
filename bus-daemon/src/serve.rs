//! `bus-daemon serve`: load the connectors, watch the registry, serve HTTP.

use crate::app;
use crate::config::Config;
use crate::http;
use anyhow::{Context, Result};
use bus_core::engine::Engine;
use std::sync::Arc;
use std::time::Duration;

pub fn run(config: Config) -> Result<()> {
    config.check_exposure()?;
    raise_open_files_limit(config.http.max_connections);
    // Listening first: the other daemons of a cluster are told where this
    // one is before it claims any connector.
    let listener =
        std::net::TcpListener::bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    // The standard library listens with a backlog of 128: a burst of
    // clients larger than that (a flood, a reconnecting fleet) would have
    // the kernel drop SYNs, and a dropped SYN is retried only after a
    // second. The kernel caps this at net.core.somaxconn.
    if let Err(e) = rustix::net::listen(&listener, LISTEN_BACKLOG) {
        tracing::warn!(error = %e, "cannot raise the listen backlog");
    }
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls_cert.is_some() { "https" } else { "http" };
    // A wildcard address says nothing to another machine: `[cluster] address`
    // then names this daemon.
    let advertised = (!addr.ip().is_unspecified()).then(|| format!("{scheme}://{addr}"));
    if advertised.is_none()
        && config.cluster.address.is_none()
        && bus_core::db::Location::parse(&config.database.to_string_lossy()).is_postgres()
    {
        anyhow::bail!(
            "the daemon listens on {addr}, a wildcard address, and shares a PostgreSQL database with other daemons: \
             set `[cluster] address` in bus.toml to the URL they reach this daemon at (calls to the connectors it runs are routed there)"
        );
    }
    let engine = Engine::start(app::engine_config(&config, advertised)?)?;
    for (name, status) in engine.first_load() {
        match (&status.error, status.loaded) {
            (None, true) => tracing::info!(connector = %name, "connector loaded"),
            (None, false) => tracing::info!(connector = %name, "connector disabled"),
            (Some(_), _) => {} // already warned by the manager
        }
    }
    let storage = engine.storage().clone();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bus-http")
        .build()
        .context("cannot start the async runtime")?;
    // Turns true when the server starts to stop: event streams end then.
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let state = http::AppState {
        db: engine.db().clone(),
        registry: engine.store().registry.clone(),
        events: engine.store().events.clone(),
        manager: engine.manager().clone(),
        outgoing: engine.outgoing().clone(),
        pipeline: engine.pipeline().clone(),
        incoming: engine.incoming().clone(),
        scheduler: engine.scheduler(),
        metrics: engine.metrics().clone(),
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
        requests: Arc::default(),
        cluster_calls: Arc::new(http::cluster_auth::CallAuth::new(config.auth_token.as_deref())),
        // A quarter of the connection table at most, so requests find room.
        changes: http::events::Changes::new(config.http.max_connections / 4, stopping),
    };
    let sources =
        http::events::Sources { db: state.db.clone(), manager: state.manager.clone(), events: state.events.clone() };
    let changes = state.changes.clone();
    http::error::MAX_REQUEST_BYTES.store(config.http.max_request_bytes, std::sync::atomic::Ordering::Relaxed);
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(http::server::tls_acceptor(cert, key)?),
        _ => None,
    };
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
        tokio::spawn(record_history(state.db.clone(), state.metrics.clone()));
        let listener = tokio::net::TcpListener::from_std(listener)?;
        // The stop signals are caught from here on, before anyone learns
        // the daemon listens: a SIGTERM can no longer find the default
        // action (an unclean exit) however soon it comes.
        let signal = shutdown_signal();
        let stop = async move {
            signal.await;
            let _ = stopping_tx.send(true);
        };
        tokio::spawn(changes.watch(sources));
        tracing::info!(%addr, database = %config.database_location(), connectors_dir = %config.connectors_dir.display(), "integration bus listening");
        // Tests and scripts read this line to find the port.
        println!("listening on {scheme}://{addr}");
        http::server::serve(listener, http::router(state), &config.http, tls, stop).await?;
        anyhow::Ok(())
    });
    // A request still waiting on a connector call (at most the call
    // timeout) is not waited for.
    runtime.shutdown_timeout(http::server::GRACE);
    engine.stop();
    tracing::info!("integration bus stopped");
    result
}

/// How often the connectors' history takes what this daemon did.
const HISTORY_TICK: Duration = Duration::from_secs(5);

/// Adds what this daemon did to each connector's history every
/// [`HISTORY_TICK`] (and keeps the table to a day); a failure is logged
/// once until a write succeeds again, and what it held is kept for the next.
async fn record_history(db: bus_core::db::Database, metrics: Arc<bus_core::metrics::Metrics>) {
    // The first look a tick after the start, not at it: a daemon starting
    // beside others on a server near its session limit takes no session
    // for this while they start.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + HISTORY_TICK, HISTORY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut failing = false;
    loop {
        tick.tick().await;
        let (db, metrics) = (db.clone(), metrics.clone());
        let minute = bus_core::history::minute_of(std::time::SystemTime::now());
        match tokio::task::spawn_blocking(move || bus_core::history::record(&db, &metrics, minute)).await {
            Ok(Ok(())) => failing = false,
            Ok(Err(error)) if !failing => {
                failing = true;
                tracing::warn!(%error, "cannot record the connectors' history; trying again every few seconds");
            }
            _ => {}
        }
    }
}

/// Raises the soft limit of open files to the hard one (as Go's runtime
/// does): each connection is a descriptor, and the default soft limit (1024)
/// is below what a flood of idle clients plus the database and connector
/// pipes can take. Says so when even the hard limit is too low for
/// `max_connections`.
fn raise_open_files_limit(max_connections: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
    if limit.current != limit.maximum {
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    // Besides connections: the database, library files, connector pipes.
    const RESERVE: u64 = 256;
    if now.is_some_and(|n| n < max_connections as u64 + RESERVE) {
        tracing::warn!(
            open_files_limit = now,
            max_connections,
            "the open-files limit is low for [http] max_connections: raise it (ulimit -n) or lower max_connections"
        );
    }
}

/// Catches SIGINT and SIGTERM at once (not when the returned future is
/// first polled); the future ends when one arrives.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let caught = |kind: SignalKind, name: &'static str| {
        signal(kind)
            .map_err(|e| tracing::warn!(error = %e, signal = name, "cannot catch the stop signal; it ends the daemon at once"))
            .ok()
    };
    let (mut interrupt, mut terminate) =
        (caught(SignalKind::interrupt(), "SIGINT"), caught(SignalKind::terminate(), "SIGTERM"));
    async move {
        tokio::select! {
            () = received(interrupt.as_mut()) => {},
            () = received(terminate.as_mut()) => {},
        }
        tracing::info!(limit_ms = STOP_LIMIT.as_millis() as u64, "shutdown requested");
        start_stop_watchdog();
    }
}

/// The next delivery of a caught signal (never, when it is not caught).
#[cfg(unix)]
async fn received(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        let _ = ctrl_c.await;
        tracing::info!(limit_ms = STOP_LIMIT.as_millis() as u64, "shutdown requested");
        start_stop_watchdog();
    }
}

/// Connections the kernel queues before the daemon accepts them.
const LISTEN_BACKLOG: i32 = 4096;

/// The longest stopping takes from the signal on, whatever a connector is
/// doing: supervisors (systemd, Kubernetes) kill a daemon hard a few seconds
/// after SIGTERM, and a hard kill gives no chance to release anything.
const STOP_LIMIT: Duration = Duration::from_secs(4);

/// Ends the process when stopping has not finished within [`STOP_LIMIT`]:
/// requests get their grace, workers a moment to record the calls they
/// finish, connectors their shutdown call; what is still running then is a
/// call that would not end. Connector processes die with the daemon (their
/// parent-death signal); a call stuck inside the daemon (`in-process`) is
/// abandoned — its task stays queued and is delivered again after the next
/// start, as after a crash (at least once). Nothing is half-written: every
/// change is one database transaction, which the exit rolls back when it
/// had not committed. In a cluster the leases are not released by the
/// steps cut short, but they go at once all the same: the daemon's session,
/// which holds its liveness lock, ends with the process. The exit status is
/// 0: the stop was asked for, and it happened.
fn start_stop_watchdog() {
    let started = std::thread::Builder::new().name("bus-stop-watchdog".into()).spawn(|| {
        std::thread::sleep(STOP_LIMIT);
        tracing::warn!(
            limit_ms = STOP_LIMIT.as_millis() as u64,
            "stopping did not finish in time (a connector call does not end); exiting now: connector processes end with the daemon, calls in flight are repeated after the next start"
        );
        std::process::exit(0);
    });
    if let Err(e) = started {
        tracing::warn!(error = %e, "cannot start the stop watchdog; stopping is not bounded");
    }
}
