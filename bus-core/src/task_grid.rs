//! The queues as the management grids show them: sorted by a column,
//! searched by title, paged by offset with a total. (The workers read their
//! queues through `queue.rs`; this is for people.)

use crate::grid::{contains_pattern, GridPage, GridQuery};
use crate::queue::Direction;
use crate::queue_admin::{task_row, TaskRow, TASK_ROW_COLUMNS};
use crate::sql::{params, Conn};

/// The columns a task grid sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskSort {
    /// Creation order (the order tasks are processed in).
    #[default]
    Time,
    Title,
    Type,
    Connector,
    /// The rows whose last attempt failed first (ascending: failed last).
    Result,
}

impl TaskSort {
    fn sql(self) -> &'static str {
        match self {
            TaskSort::Time => "t.TaskID",
            TaskSort::Title => "t.TaskTitle COLLATE NOCASE",
            TaskSort::Type => "t.TaskType",
            TaskSort::Connector => "c.ConnectorDisplayName COLLATE NOCASE",
            TaskSort::Result => "(s.SynchronizationErrorMessage IS NOT NULL)",
        }
    }
}

impl std::str::FromStr for TaskSort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "time" => Ok(TaskSort::Time),
            "title" => Ok(TaskSort::Title),
            "type" => Ok(TaskSort::Type),
            "connector" => Ok(TaskSort::Connector),
            "result" => Ok(TaskSort::Result),
            other => Err(format!("sort must be one of time, title, type, connector, result; not `{other}`")),
        }
    }
}

const FROM: &str = "FROM Integration_Synchronization s JOIN Integration_Task t ON t.TaskID = s.SynchronizationTaskID \
    JOIN Integration_Connector c ON c.ConnectorID = s.SynchronizationConnectorID \
    WHERE s.SynchronizationIsInbound = ?1 AND (s.SynchronizationConnectorID = ?2 OR ?2 IS NULL) \
    AND (t.TaskTitle LIKE ?3 ESCAPE '\\' OR t.TaskType LIKE ?3 ESCAPE '\\' \
         OR c.ConnectorDisplayName LIKE ?3 ESCAPE '\\' OR ?3 IS NULL) \
    AND NOT EXISTS (SELECT 1 FROM Integration_Delivered d WHERE d.DeliveredSynchronizationID = s.SynchronizationID)";

/// One page of a queue for a grid.
pub fn page(
    conn: &Conn,
    direction: Direction,
    connector_id: Option<i64>,
    q: &GridQuery<TaskSort>,
) -> crate::sql::Result<GridPage<TaskRow>> {
    let search = q.search.as_deref().filter(|s| !s.is_empty()).map(contains_pattern);
    let from = conn.dialect().case_insensitive_like(FROM);
    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) {from}"))?
        .query_row(params![direction, connector_id, search], |r| r.get(0))?;
    // Ties (and the default) go by creation order, then connector.
    let order = q.order.sql();
    let sql = format!(
        "SELECT {TASK_ROW_COLUMNS} {from} \
         ORDER BY {} {order}, t.TaskID {order}, s.SynchronizationID {order} LIMIT {} OFFSET {}",
        q.sort.sql(),
        q.limit.max(1),
        q.offset
    );
    let items = conn
        .prepare(&sql)?
        .query_map(params![direction, connector_id, search], task_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GridPage { items, total, offset: q.offset, limit: q.limit })
}
