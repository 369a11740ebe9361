//! Noticing registry edits (from this process or any other, e.g. `sqlite3`)
//! and changes of registered library files, and reinitializing every
//! connector when either happens.

use crate::db::Database;
use crate::manager::ConnectorManager;
use crate::registry::registry_version;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// What identifies one version of a library file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileState {
    Missing,
    Present { len: u64, modified: Option<SystemTime> },
}

fn snapshot(paths: &[PathBuf]) -> BTreeMap<PathBuf, FileState> {
    paths
        .iter()
        .map(|p| {
            let state = match std::fs::metadata(p) {
                Ok(m) => FileState::Present { len: m.len(), modified: m.modified().ok() },
                Err(_) => FileState::Missing,
            };
            (p.clone(), state)
        })
        .collect()
}

/// The watcher thread; stopped when dropped.
pub(crate) struct Watcher {
    stop: Sender<()>,
    join: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching, checking every `interval`. Call it after the first
    /// `reload_all`: the watcher compares against what is loaded.
    pub(crate) fn spawn(manager: Arc<ConnectorManager>, db: Database, interval: Duration) -> std::io::Result<Watcher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let join = std::thread::Builder::new().name("registry-watcher".into()).spawn(move || {
            let mut conn = None;
            let mut applied_files = snapshot(&manager.current().watched);
            let mut last_files = applied_files.clone();
            loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                if conn.is_none() {
                    conn = db
                        .open_connection()
                        .map_err(|e| tracing::warn!(error = %e, "the registry watcher cannot open the database"))
                        .ok();
                }
                let current = manager.current();
                let registry_changed = match conn.as_ref().map(registry_version) {
                    Some(Ok(v)) => v != current.registry_version,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the registry watcher cannot read the registry version");
                        conn = None;
                        false
                    }
                    None => false,
                };
                let files = snapshot(&current.watched);
                // A library being copied changes on every poll: act on a file
                // change once it has been stable for one interval.
                let settled = files == last_files;
                let files_changed = settled && files != applied_files;
                last_files = files;
                if !(registry_changed || files_changed) {
                    continue;
                }
                match manager.reload_all() {
                    Ok(set) => {
                        applied_files = snapshot(&set.watched);
                        last_files = applied_files.clone();
                    }
                    Err(e) => tracing::warn!(error = %e, "reinitializing the connectors failed; retrying"),
                }
            }
        })?;
        Ok(Watcher { stop, join: Some(join) })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}
