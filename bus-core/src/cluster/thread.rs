//! The cluster tick on a thread of its own: every fifth of the lease time
//! it renews and balances the leases; when the placement changed (a lease
//! gained or lost, an instance elsewhere started or moved) a second thread
//! calls `on_change` (the engine reinitializes the connectors) — never the
//! ticking one, so a slow reinitialization does not hold up the renewals
//! and let the leases expire. On stop it releases the leases, so the
//! others take over at once.

use super::Cluster;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

#[derive(Default)]
struct Stop {
    /// (stopped, a placement change waits for `on_change`)
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

/// Ticks while alive; leaves the cluster when stopped.
pub(crate) struct ClusterThread {
    stop: Arc<Stop>,
    join: Option<JoinHandle<()>>,
    changes: Option<JoinHandle<()>>,
    cluster: Arc<Cluster>,
    left: bool,
}

impl ClusterThread {
    pub(crate) fn spawn(cluster: Arc<Cluster>, on_change: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let stop = Arc::new(Stop::default());
        let interval = cluster.config().lease_ttl / 5;
        let join = std::thread::Builder::new().name("cluster".into()).spawn({
            let stop = stop.clone();
            let cluster = cluster.clone();
            move || loop {
                {
                    let state = stop.state.lock().unwrap_or_else(|p| p.into_inner());
                    let (state, _) = stop.cv.wait_timeout(state, interval).unwrap_or_else(|p| p.into_inner());
                    if state.0 {
                        return;
                    }
                }
                match cluster.tick() {
                    Ok(true) => {
                        stop.state.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
                        stop.cv.notify_all();
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(daemon = %cluster.id(), error = %e, "cluster tick failed"),
                }
            }
        })?;
        let changes = std::thread::Builder::new().name("placement".into()).spawn({
            let stop = stop.clone();
            move || loop {
                {
                    let state = stop.state.lock().unwrap_or_else(|p| p.into_inner());
                    let mut state = stop.cv.wait_while(state, |s| !s.0 && !s.1).unwrap_or_else(|p| p.into_inner());
                    if state.0 {
                        return;
                    }
                    state.1 = false;
                }
                on_change();
            }
        })?;
        Ok(ClusterThread { stop, join: Some(join), changes: Some(changes), cluster, left: false })
    }

    /// Stops ticking and reinitializing; the leases stay held.
    pub(crate) fn halt(&mut self) {
        self.stop.state.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
        self.stop.cv.notify_all();
        if let Some(changes) = self.changes.take() {
            let _ = changes.join();
        }
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }

    /// Stops ticking and releases the leases.
    pub(crate) fn stop(&mut self) {
        self.halt();
        if !std::mem::replace(&mut self.left, true) {
            self.cluster.leave();
        }
    }
}

impl Drop for ClusterThread {
    fn drop(&mut self) {
        self.stop();
    }
}
