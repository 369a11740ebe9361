//! The cluster tick on a thread of its own: every fifth of the lease time
//! it renews and balances the leases; when the placement changed (a lease
//! gained or lost, an instance elsewhere started or moved) it calls
//! `on_change` (the engine reinitializes the connectors). On stop it
//! releases the leases, so the others take over at once.

use super::Cluster;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

/// Ticks while alive; leaves the cluster when stopped.
pub(crate) struct ClusterThread {
    stop: Arc<Stop>,
    join: Option<JoinHandle<()>>,
    cluster: Arc<Cluster>,
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
                    let stopped = stop.stopped.lock().unwrap_or_else(|p| p.into_inner());
                    let (stopped, _) = stop.cv.wait_timeout(stopped, interval).unwrap_or_else(|p| p.into_inner());
                    if *stopped {
                        return;
                    }
                }
                match cluster.tick() {
                    Ok(true) => on_change(),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(daemon = %cluster.id(), error = %e, "cluster tick failed"),
                }
            }
        })?;
        Ok(ClusterThread { stop, join: Some(join), cluster })
    }

    /// Stops ticking and releases the leases.
    pub(crate) fn stop(&mut self) {
        *self.stop.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.cv.notify_all();
        if let Some(join) = self.join.take() {
            let _ = join.join();
            self.cluster.leave();
        }
    }
}

impl Drop for ClusterThread {
    fn drop(&mut self) {
        self.stop();
    }
}
