//! What became of one task in a processing run, in both directions: the
//! workers report it, the metrics count it, a synchronize request answers it.

use connector_abi::IntegrationProcessResult;
use serde::Serialize;

/// What became of one task in a run.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub enum TaskResult {
    /// Processed; the task is gone for this connector.
    Ok,
    /// Failed critically; processing of this connector stopped there.
    Error,
    /// Failed; recorded and passed over.
    ErrorAndSkip,
    /// Left for the next run.
    SkipNow,
    /// An incoming task marked SkipOnce: passed over this time, processed next time.
    SkippedOnce,
    /// An incoming SkipOnError task that failed: recorded and passed over.
    SkippedOnError,
    /// An incoming DeleteOnError task that failed: deleted.
    DeletedOnError,
    /// An incoming task marked Error: processing stops at it.
    Blocked,
}

impl TaskResult {
    /// Whether the task failed (its error says why), as opposed to being
    /// processed or passed over on purpose.
    pub fn is_failure(self) -> bool {
        match self {
            TaskResult::Error
            | TaskResult::ErrorAndSkip
            | TaskResult::SkippedOnError
            | TaskResult::DeletedOnError
            | TaskResult::Blocked => true,
            TaskResult::Ok | TaskResult::SkipNow | TaskResult::SkippedOnce => false,
        }
    }
}

impl From<IntegrationProcessResult> for TaskResult {
    fn from(r: IntegrationProcessResult) -> Self {
        match r {
            IntegrationProcessResult::Ok => TaskResult::Ok,
            IntegrationProcessResult::Error => TaskResult::Error,
            IntegrationProcessResult::ErrorAndSkip => TaskResult::ErrorAndSkip,
            IntegrationProcessResult::SkipNow => TaskResult::SkipNow,
        }
    }
}
