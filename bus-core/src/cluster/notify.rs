//! Wake-ups between daemons over PostgreSQL's `LISTEN`/`NOTIFY`: a change
//! that queues a task for a connector running on another daemon wakes that
//! daemon's worker at once instead of at its next poll.
//!
//! Sending is rate-limited: wake-ups go through one thread that sends what
//! gathered, then waits [`WINDOW`] before sending again, so a burst of
//! changes costs one notification per queue and window (the first at
//! once, the rest at the end of the window: none is lost). Receiving is a
//! thread with a connection of its own that reconnects when the server
//! goes away; polling (the workers' idle poll) stays the fallback.

use crate::db::Database;
use crate::queue::Direction;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The channel queue wake-ups travel on; the payload is
/// `outgoing:<connector>` or `incoming:<connector>`.
pub(crate) const QUEUE_CHANNEL: &str = "bus_queue";

/// At most one notification per queue in this long.
const WINDOW: Duration = Duration::from_millis(5);

/// Sends wake-ups to the daemons that run the connectors.
pub(crate) struct Notifier {
    sender: Mutex<Option<mpsc::Sender<String>>>,
    join: Mutex<Option<JoinHandle<()>>>,
}

impl Notifier {
    pub(crate) fn spawn(db: Database) -> std::io::Result<Arc<Notifier>> {
        let (sender, receiver) = mpsc::channel::<String>();
        let join = std::thread::Builder::new().name("notify".into()).spawn(move || {
            while let Ok(first) = receiver.recv() {
                let mut keys = BTreeSet::from([first]);
                keys.extend(receiver.try_iter());
                // A pooled session per batch: an idle daemon holds none for this.
                match db.connect() {
                    Ok(c) => {
                        for key in &keys {
                            if let Err(e) = c.query_row("SELECT pg_notify($1, $2)::text", crate::params![QUEUE_CHANNEL, key], |_| Ok(())) {
                                tracing::warn!(error = %e, queue = %key, "cannot send a wake-up; the worker finds the task at its next poll");
                                break;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot send wake-ups; the workers find the tasks at their next poll"),
                }
                std::thread::sleep(WINDOW);
            }
        })?;
        Ok(Arc::new(Notifier { sender: Mutex::new(Some(sender)), join: Mutex::new(Some(join)) }))
    }

    /// Wakes the worker of `connector` in `direction`, wherever it runs.
    pub(crate) fn wake(&self, direction: Direction, connector: &str) {
        if let Some(s) = self.sender.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = s.send(format!("{}:{connector}", direction.name()));
        }
    }

    pub(crate) fn stop(&self) {
        drop(self.sender.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(join) = self.join.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = join.join();
        }
    }
}

/// Receives wake-ups meant for this daemon's workers.
pub(crate) struct Listener {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl Listener {
    pub(crate) fn spawn(db: Database, on_wake: impl Fn(Direction, &str) + Send + 'static) -> std::io::Result<Listener> {
        let stop = Arc::new(AtomicBool::new(false));
        let join = std::thread::Builder::new().name("listen".into()).spawn({
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = listen(&db, &stop, &on_wake) {
                        tracing::warn!(error = %e, "the wake-up listener lost its connection; listening again shortly");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            }
        })?;
        Ok(Listener { stop, join: Some(join) })
    }
}

fn listen(db: &Database, stop: &AtomicBool, on_wake: &dyn Fn(Direction, &str)) -> Result<(), String> {
    let conn = db.open_connection().map_err(|e| e.to_string())?;
    conn.execute_batch(&format!("LISTEN {QUEUE_CHANNEL}")).map_err(|e| e.to_string())?;
    let pg = conn.as_postgres().ok_or("not a PostgreSQL connection")?;
    while !stop.load(Ordering::Relaxed) {
        match pg.client().next_notification(Duration::from_millis(250)) {
            Ok(Some(n)) => {
                let Some((direction, connector)) = n.payload().split_once(':') else { continue };
                if let Ok(direction) = direction.parse::<Direction>() {
                    on_wake(direction, connector);
                }
            }
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}
