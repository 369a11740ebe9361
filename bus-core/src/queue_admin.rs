//! The queues as people and scripts see them: listings oldest first, one
//! task's detail with its synchronization log, bulk and row deletes, the
//! counts and ages the metrics show, and the sweep of relations whose
//! connector vanished. The workers' hot path (insert, read, complete) is in
//! `queue.rs`; the grids' sorting and search in `task_grid.rs`.

use crate::queue::{Direction, Selection};
use crate::sql::{params, Conn, OptionalExtension, Row};
use connector_abi::TaskType;
use serde::Serialize;
use serde_json::Value;

/// One line of a queue listing: a task for one connector.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TaskRow {
    pub task_id: i64,
    pub sync_id: i64,
    pub title: String,
    pub task_type: String,
    /// The short code (`CREATEOBJ`, `UPDATEDOC`).
    pub task_type_code: String,
    pub time: String,
    pub connector: String,
    pub connector_display_name: String,
    pub data_type: String,
    pub process_type: Option<String>,
    /// The last error, when the last attempt failed (the "Failed" link).
    pub error: Option<String>,
    pub attempts: i64,
    pub last_run: Option<String>,
    /// In `object` ordering: the failed task this one waits for (it shares
    /// an object with it, directly or through the tasks between them).
    pub waiting_for: Option<i64>,
}

/// The columns [`task_row`] reads (`s` a relation, `t` its task, `c` its connector).
pub(crate) const TASK_ROW_COLUMNS: &str = "t.TaskID, s.SynchronizationID, t.TaskTitle, t.TaskType, t.TaskTime, \
    c.ConnectorName, c.ConnectorDisplayName, s.SynchronizationDataType, t.TaskProcessType, \
    s.SynchronizationErrorMessage, s.SynchronizationAttempts, s.SynchronizationLastRun";

/// Reads a [`TaskRow`] selected with [`TASK_ROW_COLUMNS`].
pub(crate) fn task_row(r: &Row<'_>) -> crate::sql::Result<TaskRow> {
    let task_type: String = r.get(3)?;
    Ok(TaskRow {
        task_id: r.get(0)?,
        sync_id: r.get(1)?,
        title: r.get(2)?,
        task_type_code: task_type.parse::<TaskType>().map(|t| t.code().to_owned()).unwrap_or_default(),
        task_type,
        time: r.get(4)?,
        connector: r.get(5)?,
        connector_display_name: r.get(6)?,
        data_type: r.get(7)?,
        process_type: r.get(8)?,
        error: r.get(9)?,
        attempts: r.get(10)?,
        last_run: r.get(11)?,
        waiting_for: None,
    })
}

/// A page of a queue, oldest first: after the `(task_id, sync_id)` cursor.
pub fn list(
    conn: &Conn,
    direction: Direction,
    connector_id: Option<i64>,
    after: (i64, i64),
    limit: u32,
) -> crate::sql::Result<Vec<TaskRow>> {
    let not_delivered = crate::driver::of(conn).not_delivered();
    let select = format!(
        "SELECT {TASK_ROW_COLUMNS} FROM Integration_Synchronization s \
         JOIN Integration_Task t ON t.TaskID = s.SynchronizationTaskID \
         JOIN Integration_Connector c ON c.ConnectorID = s.SynchronizationConnectorID"
    );
    let row = task_row;
    let mut rows: Vec<TaskRow> = match connector_id {
        Some(c) => conn
            .prepare_cached(&format!(
                "{select} WHERE s.SynchronizationConnectorID = $1 AND s.SynchronizationIsInbound = $2 \
                 AND s.SynchronizationTaskID > $3 AND {not_delivered} ORDER BY s.SynchronizationTaskID LIMIT {limit}"
            ))?
            .query_map(params![c, direction, after.0], row)?
            .collect::<Result<_, _>>()?,
        None => conn
            .prepare_cached(&format!(
                "{select} WHERE s.SynchronizationIsInbound = $1 AND (s.SynchronizationTaskID, s.SynchronizationID) > ($2, $3) \
                 AND {not_delivered} ORDER BY s.SynchronizationTaskID, s.SynchronizationID LIMIT {limit}"
            ))?
            .query_map(params![direction, after.0, after.1], row)?
            .collect::<Result<_, _>>()?,
    };
    annotate(conn, direction, &mut rows)?;
    Ok(rows)
}

/// Fills in `waiting_for` on the rows of connectors in `object` ordering
/// (`outgoing/parked.rs`).
pub(crate) fn annotate(conn: &Conn, direction: Direction, rows: &mut [TaskRow]) -> crate::sql::Result<()> {
    let listed: Vec<(&str, i64)> = rows.iter().map(|r| (r.connector.as_str(), r.task_id)).collect();
    let waiting = crate::outgoing::parked::waiting_for(conn, direction, &listed)?;
    if waiting.is_empty() {
        return Ok(());
    }
    for row in rows.iter_mut() {
        row.waiting_for = waiting.get(&(row.connector.clone(), row.task_id)).copied();
    }
    Ok(())
}

/// One attempt that failed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SyncLogEntry {
    pub time: String,
    pub error: String,
}

/// A task's state for one connector, with its synchronization log.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Relation {
    pub sync_id: i64,
    pub connector: String,
    pub data_type: String,
    pub error: Option<String>,
    pub attempts: i64,
    pub last_run: Option<String>,
    pub log: Vec<SyncLogEntry>,
}

/// Everything about one task.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TaskDetail {
    pub task_id: i64,
    /// `outgoing` or `incoming`.
    pub direction: &'static str,
    pub task_type: String,
    pub data_type: String,
    pub process_type: Option<String>,
    pub site_name: Option<String>,
    pub title: String,
    pub time: String,
    /// The payload: the object or document, its translation data, children
    /// and bindings.
    pub data: Value,
    pub relations: Vec<Relation>,
}

pub fn detail(conn: &Conn, task_id: i64) -> crate::sql::Result<Option<TaskDetail>> {
    let not_delivered = crate::driver::of(conn).not_delivered();
    let task = conn
        .prepare_cached(
            "SELECT TaskIsInbound, TaskType, TaskDataType, TaskProcessType, TaskSiteName, TaskTitle, TaskTime, TaskData \
             FROM Integration_Task WHERE TaskID = $1",
        )?
        .query_row([task_id], |r| {
            Ok(TaskDetail {
                task_id,
                direction: if r.get::<bool>(0)? { "incoming" } else { "outgoing" },
                task_type: r.get(1)?,
                data_type: r.get(2)?,
                process_type: r.get(3)?,
                site_name: r.get(4)?,
                title: r.get(5)?,
                time: r.get(6)?,
                data: serde_json::from_str(&r.get::<String>(7)?).unwrap_or(Value::Null),
                relations: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut task) = task else { return Ok(None) };
    // One statement, so the relations and their logs are one snapshot: read
    // apart, a failure committed in between showed its log entry beside a
    // relation without its error (PostgreSQL reads each statement afresh).
    let mut relations = conn.prepare_cached(&format!(
        "SELECT s.SynchronizationID, c.ConnectorName, s.SynchronizationDataType, s.SynchronizationErrorMessage, \
         s.SynchronizationAttempts, s.SynchronizationLastRun, l.SyncLogTime, l.SyncLogErrorMessage \
         FROM Integration_Synchronization s \
         JOIN Integration_Connector c ON c.ConnectorID = s.SynchronizationConnectorID \
         LEFT JOIN Integration_SyncLog l ON l.SyncLogSynchronizationID = s.SynchronizationID \
         WHERE s.SynchronizationTaskID = $1 AND {not_delivered} ORDER BY c.ConnectorName, s.SynchronizationID, l.SyncLogID"
    ))?;
    let rows = relations.query_map([task_id], |r| {
        let relation = Relation {
            sync_id: r.get(0)?,
            connector: r.get(1)?,
            data_type: r.get(2)?,
            error: r.get(3)?,
            attempts: r.get(4)?,
            last_run: r.get(5)?,
            log: Vec::new(),
        };
        let entry = match r.get::<Option<String>>(6)? {
            Some(time) => Some(SyncLogEntry { time, error: r.get(7)? }),
            None => None,
        };
        Ok((relation, entry))
    })?;
    for row in rows {
        let (relation, entry) = row?;
        if task.relations.last().is_none_or(|last| last.sync_id != relation.sync_id) {
            task.relations.push(relation);
        }
        if let (Some(entry), Some(last)) = (entry, task.relations.last_mut()) {
            last.log.push(entry);
        }
    }
    // Every relation delivered (the task goes with the last one's removal).
    if task.relations.is_empty() {
        return Ok(None);
    }
    Ok(Some(task))
}

/// Deletes tasks of one direction: all or selected, for one connector (its
/// relations only) or for every connector. Returns how many relations went.
pub fn delete(
    conn: &mut Conn,
    direction: Direction,
    selection: &Selection,
    connector_id: Option<i64>,
) -> crate::sql::Result<usize> {
    let tx = conn.transaction()?;
    let removed = match selection {
        Selection::All => tx.execute(
            "DELETE FROM Integration_Synchronization WHERE SynchronizationIsInbound = $1 \
             AND (SynchronizationConnectorID = $2 OR $2 IS NULL)",
            params![direction, connector_id],
        )?,
        Selection::Ids(ids) => {
            let mut n = 0;
            let mut stmt = tx.prepare_cached(
                "DELETE FROM Integration_Synchronization WHERE SynchronizationTaskID = $1 AND SynchronizationIsInbound = $2 \
                 AND (SynchronizationConnectorID = $3 OR $3 IS NULL)",
            )?;
            for id in ids {
                n += stmt.execute(params![id, direction, connector_id])?;
            }
            n
        }
    };
    tx.commit()?;
    Ok(removed)
}

/// The connectors a selection of tasks is queued for, with their task IDs in
/// creation order (for bulk synchronization).
pub fn connectors_of(
    conn: &Conn,
    direction: Direction,
    ids: &[i64],
) -> crate::sql::Result<std::collections::BTreeMap<i64, Vec<i64>>> {
    let not_delivered = crate::driver::of(conn).not_delivered();
    let mut out: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT s.SynchronizationConnectorID FROM Integration_Synchronization s \
         WHERE s.SynchronizationTaskID = $1 AND s.SynchronizationIsInbound = $2 AND {not_delivered}"
    ))?;
    for id in sorted {
        for c in stmt.query_map(params![id, direction], |r| r.get::<i64>(0))? {
            out.entry(c?).or_default().push(id);
        }
    }
    Ok(out)
}

/// Removes relations whose connector is no longer registered (a registry row
/// replaced by `INSERT OR REPLACE` in a client that does not enforce foreign
/// keys, e.g. `sqlite3`: plain deletes are handled by a trigger). Walks the
/// distinct connector IDs of the queue index, so it costs one index seek per
/// connector, not a scan of the queue. Returns `(connector ID, relations
/// removed)` per vanished connector.
pub(crate) fn remove_orphans(conn: &Conn) -> crate::sql::Result<Vec<(i64, usize)>> {
    let mut next = conn.prepare_cached(
        "SELECT SynchronizationConnectorID FROM Integration_Synchronization \
         WHERE SynchronizationConnectorID > $1 ORDER BY SynchronizationConnectorID LIMIT 1",
    )?;
    let mut known = conn.prepare_cached("SELECT 1 FROM Integration_Connector WHERE ConnectorID = $1")?;
    let mut removed = Vec::new();
    let mut after = i64::MIN;
    while let Some(id) = next.query_row([after], |r| r.get::<i64>(0)).optional()? {
        after = id;
        if !known.exists([id])? {
            let n =
                conn.execute("DELETE FROM Integration_Synchronization WHERE SynchronizationConnectorID = $1", [id])?;
            removed.push((id, n));
        }
    }
    Ok(removed)
}

/// The state of one queue, for metrics.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStats {
    pub connector: String,
    pub inbound: bool,
    pub depth: i64,
    /// Tasks whose last attempt failed.
    pub failed: i64,
    /// How long the oldest task has waited, in seconds.
    pub oldest_age_seconds: f64,
}

/// Every non-empty queue with its depth, its failed tasks and the age of
/// its oldest task.
pub fn stats(conn: &Conn) -> crate::sql::Result<Vec<QueueStats>> {
    let not_delivered = crate::driver::of(conn).not_delivered();
    conn.prepare_cached(&format!(
        "SELECT c.ConnectorName, q.inbound, q.depth, \
         t.TaskTime, q.failed \
         FROM (SELECT s.SynchronizationConnectorID AS connector, s.SynchronizationIsInbound AS inbound, \
               COUNT(*) AS depth, MIN(s.SynchronizationTaskID) AS oldest, \
               COUNT(s.SynchronizationErrorMessage) AS failed FROM Integration_Synchronization s \
               WHERE {not_delivered} GROUP BY 1, 2) q \
         JOIN Integration_Connector c ON c.ConnectorID = q.connector \
         LEFT JOIN Integration_Task t ON t.TaskID = q.oldest ORDER BY 1, 2"
    ))?
    .query_map([], |r| {
        let oldest: Option<String> = r.get(3)?;
        let oldest_age_seconds = oldest
            .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
            .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
            .map_or(0.0, |age| age.as_secs_f64());
        Ok(QueueStats {
            connector: r.get(0)?,
            inbound: r.get(1)?,
            depth: r.get(2)?,
            failed: r.get(4)?,
            oldest_age_seconds,
        })
    })?
    .collect()
}

/// How many relations wait in one direction (for one connector, or all).
pub fn count(conn: &Conn, direction: Direction, connector_id: Option<i64>) -> crate::sql::Result<i64> {
    conn.prepare_cached(crate::driver::of(conn).count_waiting())?
        .query_row(params![direction, connector_id], |r| r.get(0))
}

/// The document a connector gets for one task queued for it: for an
/// outgoing task the body of its `process_internal_task_async` request as
/// sent (downgraded to the connector's data type), for an incoming task the
/// data it was logged with. `None` when the task is not queued for it;
/// `Err` names what is unreadable in the stored row.
pub fn document(
    conn: &Conn,
    connector_id: i64,
    direction: Direction,
    task_id: i64,
) -> crate::sql::Result<Option<Result<serde_json::Value, String>>> {
    let Some(queued) = crate::queue::queued_task(conn, connector_id, direction, task_id)? else {
        return Ok(None);
    };
    let document = match direction {
        Direction::Outgoing => crate::outgoing::payload::async_request(&queued, None).and_then(|request| {
            let mut envelope: serde_json::Value = serde_json::from_slice(&request).map_err(|e| e.to_string())?;
            Ok(envelope["body"].take())
        }),
        Direction::Incoming => serde_json::from_str(&queued.data).map_err(|e| e.to_string()),
    };
    Ok(Some(document))
}
