//! Connector isolation: a connector runs either inside the daemon
//! (`in-process`, a panic is contained, a crash or a hang is not) or in a
//! child process of its own (`process`): a connector host that loads the
//! same private library copy and answers the same request documents in
//! frames (`frame.rs`), each call on a socket of its caller's own
//! (`call_socket.rs`). In that mode a segfault, an abort, a stack
//! overflow or a leak past the memory limit ends only the child; a call
//! past the call timeout kills it; the daemon reports the cause, keeps the
//! task's Error semantics, and starts the child again with a growing pause
//! (`supervisor.rs`). The child's side is `crate::connector_host` (outside
//! this module, which the loader below it does not reach); what depends on the
//! operating system (process groups, private protocol streams, limits) is
//! `platform.rs`; the child's stderr reaches the log bounded (`stderr.rs`);
//! `open.rs` holds the documents of the `Open` exchange.

mod call_socket;
pub(crate) mod frame;
mod open;
pub(crate) mod platform;
pub(crate) mod pool;
mod stderr;
mod supervisor;

pub(crate) use open::{OpenAnswer, OpenRequest};
pub(crate) use supervisor::{ChildConnector, ChildError};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The subcommand that runs a connector host (`<program> connector-host`).
pub const HOST_COMMAND: &str = "connector-host";

/// Where a connector runs (`ConnectorIsolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// In a child process the daemon starts and supervises.
    #[default]
    Process,
    /// Inside the daemon's process.
    InProcess,
}

impl Isolation {
    /// The name the registry column and `bus.toml` use.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::Process => "process",
            Isolation::InProcess => "in-process",
        }
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Limits applied to each connector process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// The most memory a connector process may allocate (its data segment
    /// and heap), in MiB; an allocation past it fails and the process ends.
    pub memory_mb: Option<u64>,
    /// The most CPU time a connector process may use, in seconds (over its
    /// life); past it the kernel stops it (SIGXCPU).
    pub cpu_seconds: Option<u64>,
}

/// How connectors are isolated.
#[derive(Debug, Clone)]
pub struct IsolationConfig {
    /// The mode of rows that leave `ConnectorIsolation` empty.
    pub default: Isolation,
    /// The program that runs `connector-host` (the daemon's own binary, so
    /// the ABI matches). `None`: `process` isolation is not available and
    /// such rows fail to load with a message saying so.
    pub program: Option<PathBuf>,
    pub limits: Limits,
    /// The longest pause before a crashed connector process is started
    /// again (the pause doubles from 100 ms with each crash in a row).
    pub restart_max: Duration,
    /// Queued tasks sent to a connector process in one request (when its SDK
    /// knows the batch request). 1: each delivery is recorded before the
    /// next call, so a crash repeats at most one task; N: up to N.
    pub batch_size: usize,
}

impl Default for IsolationConfig {
    fn default() -> Self {
        IsolationConfig {
            default: Isolation::InProcess,
            program: None,
            limits: Limits::default(),
            restart_max: Duration::from_secs(10),
            batch_size: 1,
        }
    }
}

/// What the supervisor needs of the configuration.
#[derive(Debug, Clone)]
pub(crate) struct ProcessConfig {
    pub program: PathBuf,
    pub restart_max: Duration,
    pub batch_size: usize,
}
