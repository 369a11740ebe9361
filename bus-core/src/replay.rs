//! Exported tasks handed to a connector build in a process of its own,
//! outside any bus (`bus-daemon connector replay`): what each task's call
//! answers, with nothing written anywhere — the connector's event-log
//! writes are reported, not stored, and it can log no incoming task.

use crate::export::ExportedTask;
use crate::host::{HostError, HostServices};
use crate::isolation::{Isolation, IsolationConfig};
use crate::loader::{LoadError, Loader, Names};
use crate::queue::Direction;
use crate::registry::{ConnectorRow, IsolationSetting};
use crate::state_store::{self, StateOp};
use connector_abi::protocol::{
    self, kind, LogEventRequest, LogIncomingTaskRequest, ProcessResponse, RequestProcessingRequest,
};
use connector_abi::IntegrationProcessResult;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// The build a replay runs, and where.
#[derive(Debug, Clone)]
pub struct ReplayTarget {
    /// The library file (`.so`/`.dll`).
    pub library: PathBuf,
    pub class: String,
    /// The connector's configuration text (`ConnectorConfig`).
    pub config: String,
    /// The program that runs `connector-host` (the daemon's own binary).
    pub host_program: PathBuf,
    /// A folder of the replay's own for the library's private copy.
    pub scratch: PathBuf,
    /// The deadline of each call.
    pub call_timeout: Duration,
}

/// What one task's call answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub task_id: i64,
    /// `Ok`, `Error`, `ErrorAndSkip` or `SkipNow` (a call that failed — a
    /// panic, a crash, the deadline — is an `Error`, as in delivery).
    pub result: IntegrationProcessResult,
    /// The connector's error message, or why the call failed.
    pub message: Option<String>,
}

/// Why a replay could not run.
#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("line {line}: {cause}")]
    BadLine { line: usize, cause: String },
    #[error("the build could not be loaded: {0}")]
    Load(#[from] LoadError),
    #[error("{0}")]
    Library(String),
}

/// Reads an export: one task per non-empty line. Only outgoing tasks can
/// be replayed (an incoming task is applied by the bus, not handed to its
/// connector); a line that is not an exported task is refused with its
/// number, before anything is called.
pub fn read_tasks(text: &str) -> Result<Vec<ExportedTask>, ReplayError> {
    let mut tasks = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line_no = i + 1;
        let task: ExportedTask = serde_json::from_str(line)
            .map_err(|e| ReplayError::BadLine { line: line_no, cause: format!("not an exported task: {e}") })?;
        if task.direction == Direction::Incoming {
            return Err(ReplayError::BadLine {
                line: line_no,
                cause: format!(
                    "task {} is incoming: the bus applies incoming tasks itself, only outgoing tasks can be replayed",
                    task.task_id
                ),
            });
        }
        tasks.push(task);
    }
    Ok(tasks)
}

/// Loads the build in a connector process and hands it each task in turn
/// as `process_internal_task_async`; `each` gets every answer as it comes,
/// `events` every event-log write the connector makes.
pub fn replay(
    target: &ReplayTarget,
    tasks: &[ExportedTask],
    events: impl Fn(&LogEventRequest) + Send + Sync + 'static,
    mut each: impl FnMut(&Replayed),
) -> Result<Vec<Replayed>, ReplayError> {
    let (folder, file) = split(&target.library)?;
    let loader = Loader::new(folder, &target.scratch)
        .with_isolation(IsolationConfig {
            default: Isolation::Process,
            program: Some(target.host_program.clone()),
            ..IsolationConfig::default()
        })
        .with_call_timeout(target.call_timeout);
    let row = ConnectorRow {
        id: 0,
        name: tasks.first().map_or_else(|| target.class.clone(), |t| t.connector.clone()),
        display_name: String::new(),
        assembly_name: file,
        class_name: target.class.clone(),
        enabled: true,
        last_modified: String::new(),
        config: target.config.clone(),
        isolation: IsolationSetting::Process,
        ordering: Default::default(),
        concurrency: None,
        batch_size: None,
        rate_limit: None,
        problems: Vec::new(),
    };
    let live =
        loader.load_as(&row, Arc::new(Reporter { report: Box::new(events), state: Default::default() }), Names::Any)?;
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        let body = serde_json::to_vec(&task.document).expect("a JSON value serializes");
        let request = protocol::encode_request_raw(kind::PROCESS_ASYNC, &body);
        let replayed = match live.request_raw::<ProcessResponse>(kind::PROCESS_ASYNC, &request) {
            Ok(r) => Replayed { task_id: task.task_id, result: r.result, message: r.error_message },
            Err(e) => Replayed {
                task_id: task.task_id,
                result: IntegrationProcessResult::Error,
                message: Some(e.to_string()),
            },
        };
        each(&replayed);
        out.push(replayed);
    }
    live.shutdown();
    Ok(out)
}

/// The library's folder and file name, as the loader reads a registry row.
fn split(library: &Path) -> Result<(PathBuf, String), ReplayError> {
    let full = library
        .canonicalize()
        .map_err(|e| ReplayError::Library(format!("cannot read the library {}: {e}", library.display())))?;
    match (full.parent(), full.file_name().and_then(|f| f.to_str())) {
        (Some(folder), Some(file)) => Ok((folder.to_owned(), file.to_owned())),
        _ => Err(ReplayError::Library(format!("{} is not a library file", library.display()))),
    }
}

/// The host a replayed connector gets: event-log writes are reported,
/// nothing is stored in the bus; the connector's state lives in memory for
/// the replay, starting empty.
struct Reporter {
    report: Box<dyn Fn(&LogEventRequest) + Send + Sync>,
    state: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl HostServices for Reporter {
    fn log_event(&self, _connector: &str, event: LogEventRequest) -> Result<(), HostError> {
        (self.report)(&event);
        Ok(())
    }

    fn state(&self, _connector: &str, op: StateOp<'_>) -> Result<Option<String>, HostError> {
        state_store::check(op).map_err(|e| HostError::Invalid(e.to_string()))?;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match op {
            StateOp::Get(key) => state.get(key).cloned(),
            StateOp::Put(key, value) => {
                state.insert(key.to_owned(), value.to_owned());
                None
            }
            StateOp::Delete(key) => {
                state.remove(key);
                None
            }
        })
    }

    fn log_incoming_task(&self, _connector: &str, _task: LogIncomingTaskRequest) -> Result<i64, HostError> {
        Err(HostError::Invalid("a replay stores no incoming task".into()))
    }

    fn request_processing(&self, _connector: &str, _request: RequestProcessingRequest) -> Result<(), HostError> {
        Ok(())
    }
}
