//! Test support: builds the daemon and the connector libraries, starts
//! daemons in temp folders on free ports, and talks HTTP to them.

pub mod artifacts;
pub mod browser;
pub mod daemon;
pub mod hook_server;
pub mod http;
pub mod postgres;
pub mod schema;
pub mod tls;

pub use artifacts::{artifacts, Artifacts};
pub use daemon::{Daemon, TestEnv};

use std::time::{Duration, Instant};

/// Polls `probe` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(40));
    }
}
