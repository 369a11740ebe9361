//! Queued tasks written out as their connector receives them (`bus-daemon
//! task export`): one [`ExportedTask`] per line of JSON, oldest first, to
//! replay against a build later (`replay.rs`) or to read.

use crate::queue::Direction;
use crate::queue_admin;
use crate::sql::Conn;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One queued task as exported: a line of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedTask {
    /// The connector it is queued for.
    pub connector: String,
    pub direction: Direction,
    pub task_id: i64,
    /// The task's title, for people reading the file.
    pub title: String,
    /// What the connector receives: for an outgoing task the body of its
    /// `process_internal_task_async` request, for an incoming task the data
    /// it was logged with.
    pub document: serde_json::Value,
}

/// Why an export stopped.
#[derive(Debug, Error)]
pub enum ExportError {
    #[error(transparent)]
    Sql(#[from] crate::sql::SqlError),
    /// A stored task cannot be turned into its document.
    #[error("task {task_id} cannot be exported: {cause}")]
    Unreadable { task_id: i64, cause: String },
    /// Writing the output failed.
    #[error("writing the export failed: {0}")]
    Write(#[source] std::io::Error),
}

/// How many rows are read at a time.
const PAGE: u32 = 500;

/// Hands `each` every task queued for the connector in `direction`, oldest
/// first, and returns how many there were.
pub fn export_each(
    conn: &Conn,
    connector_id: i64,
    direction: Direction,
    mut each: impl FnMut(ExportedTask) -> std::io::Result<()>,
) -> Result<usize, ExportError> {
    let mut after = (0, 0);
    let mut count = 0;
    loop {
        let rows = queue_admin::list(conn, direction, Some(connector_id), after, PAGE)?;
        let Some(last) = rows.last() else { return Ok(count) };
        after = (last.task_id, last.sync_id);
        for row in rows {
            // A task delivered since the page was read is passed over.
            let Some(document) = queue_admin::document(conn, connector_id, direction, row.task_id)? else { continue };
            let document = document.map_err(|cause| ExportError::Unreadable { task_id: row.task_id, cause })?;
            each(ExportedTask {
                connector: row.connector,
                direction,
                task_id: row.task_id,
                title: row.title,
                document,
            })
            .map_err(ExportError::Write)?;
            count += 1;
        }
    }
}
