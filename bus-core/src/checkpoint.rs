//! WAL checkpoints on a thread of their own. SQLite's automatic checkpoint
//! runs inside whichever commit crosses the threshold, so one change in a
//! few hundred paid for copying the whole WAL back into the database (and an
//! fsync): the tail latency of the bus. The bus's connections switch it off
//! (`wal_autocheckpoint = 0`) and this thread checkpoints instead, without
//! holding up writers (a PASSIVE checkpoint never waits for them).

use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a busy database is checkpointed.
const BUSY_INTERVAL: Duration = Duration::from_millis(25);
/// How often an idle one is looked at.
const IDLE_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

/// The checkpoint thread of one database; stops when dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Arc<Stop>,
    join: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing `path` with connections from `open`.
    pub(crate) fn spawn(
        path: PathBuf,
        open: impl Fn() -> rusqlite::Result<Connection> + Send + 'static,
    ) -> std::io::Result<Checkpointer> {
        let stop = Arc::new(Stop::default());
        let inner = stop.clone();
        let join =
            std::thread::Builder::new().name("wal-checkpoint".into()).spawn(move || run(&path, &open, &inner))?;
        Ok(Checkpointer { stop, join: Some(join) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        *self.stop.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.cv.notify_all();
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}

fn run(path: &std::path::Path, open: &dyn Fn() -> rusqlite::Result<Connection>, stop: &Stop) {
    let mut conn: Option<Connection> = None;
    let mut interval = BUSY_INTERVAL;
    let mut last = (-1, -1);
    loop {
        {
            let stopped = stop.stopped.lock().unwrap_or_else(|p| p.into_inner());
            let (stopped, _) =
                stop.cv.wait_timeout_while(stopped, interval, |s| !*s).unwrap_or_else(|p| p.into_inner());
            if *stopped {
                return;
            }
        }
        if conn.is_none() {
            match open() {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(database = %path.display(), error = %e, "the checkpoint thread cannot open the database");
                    interval = IDLE_INTERVAL;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_ref() else { continue };
        // (busy, frames in the WAL, frames checkpointed)
        match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))) {
            Ok((frames, done)) => {
                // New frames written, or frames left behind (a reader on an
                // old snapshot): stay on the short interval.
                let idle = (frames, done) == last && done >= frames;
                interval = if idle { IDLE_INTERVAL } else { BUSY_INTERVAL };
                last = (frames, done);
            }
            Err(e) => {
                tracing::warn!(database = %path.display(), error = %e, "a WAL checkpoint failed; retrying");
                conn = None;
                interval = IDLE_INTERVAL;
            }
        }
    }
}
