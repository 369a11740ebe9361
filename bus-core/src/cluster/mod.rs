//! Several daemons on one PostgreSQL database. Each connector's queues
//! (both directions) are delivered, and its instance runs, on exactly one
//! daemon at a time: the one holding its leases (`Integration_Lease`: owner,
//! epoch, expiry). Daemons heartbeat in `Integration_Daemon`, renew what
//! they hold, claim free or expired leases (`FOR UPDATE SKIP LOCKED`) up to
//! their share of the enabled connectors, hand over what is above it, and
//! step down on their own before the server-side expiry when renewing
//! fails. Every delivery commit is fenced by the epoch (`backend/postgres.rs`).
//! One daemon (the holder of a session advisory lock) does the maintenance.
//!
//! - `lease.rs`: the lease and heartbeat SQL of one tick;
//! - `notify.rs`: wake-ups of workers on other daemons (`LISTEN`/`NOTIFY`);
//! - `remote.rs`: what runs elsewhere — the declared init of every running
//!   instance, and calls routed to the daemon that runs it;
//! - `thread.rs`: the tick, and what it sets off (a reinitialization when
//!   the placement changes).

mod lease;
mod notify;
mod remote;
mod thread;

pub(crate) use notify::{Listener, Notifier};
pub use remote::{Forward, ForwardError};
pub(crate) use remote::{RemoteInstance, RemoteSpec};
pub(crate) use thread::ClusterThread;

use crate::db::{Database, DbError};
use crate::queue::Direction;
use crate::queue::QueueKey;
use crate::start_by::CallWindow;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the daemons of one database share the work.
#[derive(Clone)]
pub struct ClusterConfig {
    /// How long a lease lasts unless renewed: a dead daemon's connectors
    /// move on after this long. Renewed every fifth of it.
    pub lease_ttl: Duration,
    /// This daemon's HTTP API as the others reach it (calls to the
    /// connectors it runs are routed there).
    pub address: Option<String>,
    /// Routes calls to connectors that run on another daemon.
    pub forward: Option<Arc<dyn Forward>>,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig").field("lease_ttl", &self.lease_ttl).field("address", &self.address).finish()
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { lease_ttl: Duration::from_secs(5), address: None, forward: None }
    }
}

/// What one tick found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Holding {
    /// Epoch per held queue.
    epochs: BTreeMap<(i64, bool), i64>,
}

impl Holding {
    fn connectors(&self) -> BTreeSet<i64> {
        self.epochs.keys().map(|(id, _)| *id).collect()
    }
}

#[derive(Debug, Default)]
struct State {
    holding: Holding,
    /// When the last renewal that succeeded started: the leases are this
    /// daemon's until `renewed + ttl` on the server's clock at the latest.
    renewed: Option<Instant>,
    leader: bool,
    /// The instances running elsewhere, as last read.
    remote: BTreeMap<i64, RemoteSpec>,
    /// Connectors taken from another daemon whose lease had not expired
    /// yet: no call before the old lease's end, by which the previous
    /// owner has stopped trusting it.
    not_before: BTreeMap<i64, Instant>,
    last_error: Option<String>,
}

/// This daemon's membership of the cluster.
pub struct Cluster {
    id: String,
    db: Database,
    config: ClusterConfig,
    state: Mutex<State>,
    lease_changes: AtomicU64,
    /// One tick at a time (the thread's, a reinitialization's).
    ticking: Mutex<()>,
    /// The session holding this daemon's liveness lock (see `lease.rs`).
    alive_session: Mutex<crate::sql::Conn>,
    lock_key: i64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("id", &self.id).finish()
    }
}

/// A daemon as `/api/cluster` shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DaemonView {
    pub id: String,
    pub address: Option<String>,
    pub started: String,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_seconds: f64,
    pub alive: bool,
    /// The connectors whose leases it holds.
    pub connectors: Vec<String>,
}

/// One lease as `/api/cluster` shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LeaseView {
    pub connector: String,
    pub direction: String,
    pub owner: Option<String>,
    pub epoch: i64,
    /// Seconds until it expires (negative: expired).
    pub expires_in_seconds: Option<f64>,
}

/// The whole cluster as one daemon sees it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ClusterView {
    /// The daemon answering.
    pub this_daemon: String,
    pub leader: bool,
    pub lease_ttl_ms: u64,
    /// Leases this daemon gained or lost since it started.
    pub lease_changes: u64,
    pub daemons: Vec<DaemonView>,
    pub leases: Vec<LeaseView>,
    pub last_error: Option<String>,
}

impl Cluster {
    /// Joins the cluster of `db` (a PostgreSQL database) under a new daemon
    /// ID and claims this daemon's share of the connectors.
    pub(crate) fn join(db: Database, config: ClusterConfig) -> Result<Arc<Cluster>, DbError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let id = format!("{}-{}-{:04x}", hostname(), std::process::id(), nanos & 0xffff);
        // Random enough to be this daemon's alone; a high bit keeps it apart
        // from the migration lock.
        let lock_key = i64::try_from((nanos ^ (u128::from(std::process::id()) << 40)) & 0x3fff_ffff_ffff_ffff)
            .unwrap_or(1)
            | 0x4000_0000_0000_0000;
        let alive = db.open_connection()?;
        alive.query_row("SELECT pg_advisory_lock($1)::text", [lock_key], |_| Ok(()))?;
        let cluster = Arc::new(Cluster {
            id,
            db,
            config,
            state: Mutex::new(State::default()),
            lease_changes: AtomicU64::new(0),
            ticking: Mutex::new(()),
            alive_session: Mutex::new(alive),
            lock_key,
        });
        cluster.tick()?;
        Ok(cluster)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn config(&self) -> &ClusterConfig {
        &self.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this daemon runs the connector (holds its leases).
    pub(crate) fn runs_here(&self, connector_id: i64) -> bool {
        self.state().holding.epochs.contains_key(&(connector_id, false))
    }

    /// Whether this daemon may call the connector now, and until when: it
    /// holds the connector's leases, renewed them so recently that they
    /// cannot have expired on the server (the renewal started at most four
    /// fifths of the lease time ago), and the previous owner's lease has
    /// run out (see `not_before`).
    pub(crate) fn call_window(&self, key: QueueKey) -> CallWindow {
        let state = self.state();
        let now = Instant::now();
        let Some(&epoch) = state.holding.epochs.get(&(key.connector_id, key.direction == Direction::Incoming)) else {
            return CallWindow::Closed;
        };
        let Some(until) = state.renewed.map(|r| r + self.config.lease_ttl * 4 / 5).filter(|u| *u > now) else {
            return CallWindow::Closed;
        };
        if state.not_before.get(&key.connector_id).is_some_and(|at| *at > now) {
            return CallWindow::Closed;
        }
        CallWindow::Open { until: Some(until), token: Some(epoch) }
    }

    /// The epoch of a held queue's lease.
    pub(crate) fn epoch(&self, key: QueueKey) -> Option<i64> {
        self.state().holding.epochs.get(&(key.connector_id, key.direction == Direction::Incoming)).copied()
    }

    /// The instance of a connector that runs on another daemon.
    pub(crate) fn remote(&self, connector_id: i64) -> Option<RemoteSpec> {
        self.state().remote.get(&connector_id).cloned()
    }

    /// Leases gained or lost so far.
    pub fn lease_changes(&self) -> u64 {
        self.lease_changes.load(Ordering::Relaxed)
    }

    /// The connectors whose leases this daemon holds.
    pub fn held(&self) -> BTreeSet<i64> {
        self.state().holding.connectors()
    }

    pub fn is_leader(&self) -> bool {
        self.state().leader
    }

    /// Why this daemon could not renew its leases for a whole lease time
    /// (the server away, refusing connections, …): it delivers nothing
    /// meanwhile, so it is not ready.
    pub fn trouble(&self) -> Option<String> {
        let state = self.state();
        let error = state.last_error.as_ref()?;
        let since = state.renewed.map(|r| r.elapsed());
        if since.is_some_and(|s| s < self.config.lease_ttl) {
            return None;
        }
        Some(match since {
            Some(s) => format!("the leases were last renewed {:.1} s ago: {error}", s.as_secs_f64()),
            None => format!("the leases cannot be renewed: {error}"),
        })
    }

    /// Renews, balances and refreshes; true when the placement changed
    /// (what runs here, or what runs elsewhere and how).
    pub(crate) fn tick(&self) -> Result<bool, DbError> {
        let _one = self.ticking.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = self.config.lease_ttl;
        let started = Instant::now();
        let outcome = self
            .keepalive_session()
            .and_then(|()| lease::tick(&self.db, &self.id, self.lock_key, self.config.address.as_deref(), ttl));
        let mut state = self.state();
        match outcome {
            Ok(t) => {
                // What this daemon publishes about its own connectors is no
                // change of placement (it would reinitialize them for nothing).
                let elsewhere = |remote: &BTreeMap<i64, RemoteSpec>, holding: &Holding| {
                    let here = holding.connectors();
                    remote
                        .iter()
                        .filter(|(id, _)| !here.contains(id))
                        .map(|(id, s)| (*id, s.clone()))
                        .collect::<Vec<_>>()
                };
                let changed = t.holding != state.holding
                    || elsewhere(&t.remote, &t.holding) != elsewhere(&state.remote, &state.holding);
                let moved = t.holding.connectors().symmetric_difference(&state.holding.connectors()).count();
                if moved > 0 {
                    self.lease_changes.fetch_add(moved as u64, Ordering::Relaxed);
                    tracing::info!(daemon = %self.id, held = ?t.holding.connectors(), "leases changed");
                }
                for (connector_id, wait) in t.taken_early {
                    state.not_before.insert(connector_id, Instant::now() + wait);
                }
                state.not_before.retain(|id, at| t.holding.connectors().contains(id) && *at > Instant::now());
                state.holding = t.holding;
                state.remote = t.remote;
                state.leader = t.leader;
                state.renewed = Some(started);
                state.last_error = None;
                Ok(changed)
            }
            Err(e) => {
                state.last_error = Some(e.to_string());
                // Step down before the leases can expire on the server: a
                // daemon that cannot renew stops delivering on its own.
                let expired = state.renewed.is_none_or(|r| r.elapsed() + ttl / 5 >= ttl);
                if expired && !state.holding.epochs.is_empty() {
                    tracing::warn!(daemon = %self.id, error = %e, "cannot renew the leases in time; stepping down");
                    self.lease_changes.fetch_add(state.holding.connectors().len() as u64, Ordering::Relaxed);
                    state.holding = Holding::default();
                    return Ok(true);
                }
                Err(e)
            }
        }
    }

    /// Makes sure the session holding this daemon's liveness lock still
    /// lives (a server restart ends it, and the others would take this
    /// daemon for gone); a new session takes the lock again.
    fn keepalive_session(&self) -> Result<(), DbError> {
        let mut alive = self.alive_session.lock().unwrap_or_else(|p| p.into_inner());
        if alive.query_row("SELECT 1", [], |r| r.get::<i64>(0)).is_ok() {
            return Ok(());
        }
        // The others may take this daemon for gone and its leases for free
        // from now on: no call until the leases are renewed on a new session.
        self.state().renewed = None;
        tracing::warn!(daemon = %self.id, "the liveness session ended; no calls until the leases are renewed; taking the lock again");
        let fresh = self.db.open_connection()?;
        fresh.query_row("SELECT pg_advisory_lock($1)::text", [self.lock_key], |_| Ok(()))?;
        *alive = fresh;
        Ok(())
    }

    /// Leaves the cluster: the leases are released at once, so the others
    /// take over without waiting for them to expire.
    pub(crate) fn leave(&self) {
        if let Err(e) = lease::leave(&self.db, &self.id) {
            tracing::warn!(daemon = %self.id, error = %e, "cannot release the leases; they expire on their own");
        }
        self.state().holding = Holding::default();
    }

    /// Publishes what a connector running here declared at init.
    pub(crate) fn publish(&self, connector_id: i64, init: &connector_abi::protocol::InitResponse, loaded_at: &str) {
        let published = self
            .db
            .connect()
            .map_err(|e| e.to_string())
            .and_then(|c| remote::publish(&c, &self.id, connector_id, init, loaded_at).map_err(|e| e.to_string()));
        if let Err(e) = published {
            tracing::warn!(daemon = %self.id, connector_id, error = %e, "cannot publish the connector's subscriptions");
        }
    }

    /// The cluster as the database has it now.
    pub fn view(&self) -> Result<ClusterView, DbError> {
        let (daemons, leases) = lease::view(&self.db, self.config.lease_ttl)?;
        let state = self.state();
        Ok(ClusterView {
            this_daemon: self.id.clone(),
            leader: state.leader,
            lease_ttl_ms: self.config.lease_ttl.as_millis() as u64,
            lease_changes: self.lease_changes(),
            daemons,
            leases,
            last_error: state.last_error.clone(),
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "daemon".to_owned())
}
