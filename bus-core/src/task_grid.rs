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
        match s {
            "time" => Ok(TaskSort::Time),
            "title" => Ok(TaskSort::Title),
            "type" => Ok(TaskSort::Type),
            "connector" => Ok(TaskSort::Connector),
            "result" => Ok(TaskSort::Result),
            other => Err(format!("sort must be one of time, title, type, connector, result; not `{other}`")),
        }
    }
}

/// The rows a task grid lists, searched with `like` (the driver's
/// case-ignoring `LIKE`).
fn from(conn: &Conn) -> String {
    let driver = crate::driver::of(conn);
    let (like, not_delivered) = (driver.like_ignoring_case(), driver.not_delivered());
    format!(
        "FROM Integration_Synchronization s JOIN Integration_Task t ON t.TaskID = s.SynchronizationTaskID \
         JOIN Integration_Connector c ON c.ConnectorID = s.SynchronizationConnectorID \
         WHERE s.SynchronizationIsInbound = $1 AND (s.SynchronizationConnectorID = $2 OR $2 IS NULL) \
         AND (t.TaskTitle {like} $3 ESCAPE '\\' OR t.TaskType {like} $3 ESCAPE '\\' \
              OR c.ConnectorDisplayName {like} $3 ESCAPE '\\' OR $3 IS NULL) \
         AND {not_delivered}"
    )
}

/// What a task grid lists before it sorts and pages: the rows of one
/// direction, of one connector or all, whose title, type or connector name
/// contains a text. Bulk actions on "all" act on exactly these rows.
#[derive(Debug, Clone, Copy)]
pub struct TaskFilter<'a> {
    pub direction: Direction,
    pub connector_id: Option<i64>,
    /// Trimmed; `None` (or empty) matches every row.
    pub search: Option<&'a str>,
}

impl TaskFilter<'_> {
    fn pattern(&self) -> Option<String> {
        self.search.filter(|s| !s.is_empty()).map(contains_pattern)
    }
}

/// The rows a filter lists, in creation order: `(connector ID, task ID)`.
pub fn listed(conn: &Conn, filter: &TaskFilter<'_>) -> crate::sql::Result<Vec<(i64, i64)>> {
    let from = from(conn);
    let sql = format!("SELECT s.SynchronizationConnectorID, t.TaskID {from} ORDER BY t.TaskID, s.SynchronizationID");
    let rows = conn
        .prepare(&sql)?
        .query_map(params![filter.direction, filter.connector_id, filter.pattern()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Deletes exactly the rows a filter lists (each task goes with its last
/// relation), in one statement; returns how many relations went.
pub fn delete_listed(conn: &Conn, filter: &TaskFilter<'_>) -> crate::sql::Result<usize> {
    let from = from(conn);
    conn.execute(
        &format!(
            "DELETE FROM Integration_Synchronization WHERE SynchronizationID IN (SELECT s.SynchronizationID {from})"
        ),
        params![filter.direction, filter.connector_id, filter.pattern()],
    )
}

/// One page of a queue for a grid.
pub fn page(
    conn: &Conn,
    direction: Direction,
    connector_id: Option<i64>,
    q: &GridQuery<TaskSort>,
) -> crate::sql::Result<GridPage<TaskRow>> {
    let search = TaskFilter { direction, connector_id, search: q.search.as_deref() }.pattern();
    let from = from(conn);
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
    let mut items = conn
        .prepare(&sql)?
        .query_map(params![direction, connector_id, search], task_row)?
        .collect::<Result<Vec<_>, _>>()?;
    crate::queue_admin::annotate(conn, direction, &mut items)?;
    Ok(GridPage { items, total, offset: q.offset, limit: q.limit })
}
