//! The task queue tables: `Integration_Task` (one row per change),
//! `Integration_Synchronization` (one row per task and connector) and
//! `Integration_SyncLog` (every failed attempt). Shared by the engines and
//! the management API.

use connector_abi::{CmsObject, IntegrationProcessType, TaskDataType, TaskType};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

/// Which queue: changes going out to connectors, or coming in from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Outgoing,
    Incoming,
}

impl Direction {
    pub fn inbound(self) -> bool {
        self == Direction::Incoming
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Outgoing => "outgoing",
            Direction::Incoming => "incoming",
        }
    }
}

impl std::str::FromStr for Direction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "outgoing" => Ok(Direction::Outgoing),
            "incoming" => Ok(Direction::Incoming),
            other => Err(format!("`{other}` is not a direction: use outgoing or incoming")),
        }
    }
}

/// A task to insert.
pub struct NewTask<'a> {
    pub inbound: bool,
    pub task_type: TaskType,
    pub data_type: TaskDataType,
    pub process_type: Option<IntegrationProcessType>,
    pub site_name: Option<&'a str>,
    pub title: &'a str,
    pub object: &'a CmsObject,
    /// The serialized payload (`{"object": ..., "translations": ...}`).
    pub data: &'a str,
}

pub fn insert_task(conn: &Connection, t: &NewTask<'_>) -> rusqlite::Result<i64> {
    let (object_type, object_id, node_id, document_id, alias_path) = match t.object {
        CmsObject::Object(o) => (Some(o.object_type.as_str()), Some(o.id), None, None, None),
        CmsObject::Document(d) => (None, None, Some(d.node_id), Some(d.document_id), Some(d.node_alias_path.as_str())),
    };
    conn.prepare_cached(
        "INSERT INTO Integration_Task (TaskIsInbound, TaskType, TaskDataType, TaskProcessType, TaskSiteName, TaskTitle, \
         TaskObjectType, TaskObjectID, TaskNodeID, TaskDocumentID, TaskNodeAliasPath, TaskData, TaskTime) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        t.inbound,
        t.task_type.name(),
        t.data_type.name(),
        t.process_type.map(|p| p.name()),
        t.site_name,
        t.title,
        object_type,
        object_id,
        node_id,
        document_id,
        alias_path,
        t.data,
        crate::db::now()
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Queues a task for one connector.
pub fn insert_relation(
    conn: &Connection,
    task_id: i64,
    connector_id: i64,
    inbound: bool,
    data_type: TaskDataType,
) -> rusqlite::Result<()> {
    insert_relations(conn, task_id, inbound, &[NewRelation { connector_id, data_type, matching: Matching::Decided }])
}

/// Whether a queued relation still has to ask its connector's custom
/// subscriptions (`SynchronizationMatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching {
    /// The relation is decided: deliver it with its data type.
    Decided,
    /// Ask `is_match` before delivery; no match removes the relation.
    Ask,
    /// Ask `is_match` before delivery; no match delivers it with its data type.
    AskOrKeep,
}

impl Matching {
    fn column(self) -> Option<&'static str> {
        match self {
            Matching::Decided => None,
            Matching::Ask => Some("Ask"),
            Matching::AskOrKeep => Some("AskOrKeep"),
        }
    }

    fn from_column(value: Option<&str>) -> Self {
        match value {
            Some("Ask") => Matching::Ask,
            Some("AskOrKeep") => Matching::AskOrKeep,
            _ => Matching::Decided,
        }
    }
}

/// One connector's relation to a new task.
#[derive(Debug, Clone, Copy)]
pub struct NewRelation {
    pub connector_id: i64,
    pub data_type: TaskDataType,
    pub matching: Matching,
}

/// How many relations one INSERT statement carries at most.
const RELATIONS_PER_INSERT: usize = 8;

/// Queues a task for several connectors, up to [`RELATIONS_PER_INSERT`]
/// rows per statement.
pub fn insert_relations(
    conn: &Connection,
    task_id: i64,
    inbound: bool,
    relations: &[NewRelation],
) -> rusqlite::Result<()> {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        (1..=RELATIONS_PER_INSERT)
            .map(|n| {
                let rows: Vec<String> =
                    (0..n).map(|i| format!("(?1, ?2, ?{}, ?{}, ?{})", 3 + 3 * i, 4 + 3 * i, 5 + 3 * i)).collect();
                format!(
                    "INSERT INTO Integration_Synchronization (SynchronizationTaskID, SynchronizationIsInbound, \
                     SynchronizationConnectorID, SynchronizationDataType, SynchronizationMatch) VALUES {}",
                    rows.join(", ")
                )
            })
            .collect()
    });
    for chunk in relations.chunks(RELATIONS_PER_INSERT) {
        let mut stmt = conn.prepare_cached(&sql[chunk.len() - 1])?;
        stmt.raw_bind_parameter(1, task_id)?;
        stmt.raw_bind_parameter(2, inbound)?;
        for (i, r) in chunk.iter().enumerate() {
            stmt.raw_bind_parameter(3 + 3 * i, r.connector_id)?;
            stmt.raw_bind_parameter(4 + 3 * i, r.data_type.name())?;
            stmt.raw_bind_parameter(5 + 3 * i, r.matching.column())?;
        }
        stmt.raw_execute()?;
    }
    Ok(())
}

/// One task waiting for one connector.
#[derive(Debug, Clone)]
pub struct Queued {
    pub sync_id: i64,
    pub task_id: i64,
    pub task_type: String,
    /// The data type of the stored payload.
    pub task_data_type: String,
    /// The data type this connector subscribed with.
    pub data_type: String,
    pub process_type: Option<String>,
    pub site_name: Option<String>,
    pub title: String,
    pub data: String,
    /// Whether the connector's custom subscriptions are still to be asked.
    pub matching: Matching,
}

/// Queued tasks with their payloads (deliveries recorded but not yet
/// removed are left out by adding [`NOT_DELIVERED`] to the conditions).
const QUEUED: &str = "SELECT s.SynchronizationID, t.TaskID, t.TaskType, t.TaskDataType, s.SynchronizationDataType, \
    t.TaskProcessType, t.TaskSiteName, t.TaskTitle, t.TaskData, s.SynchronizationMatch \
    FROM Integration_Synchronization s JOIN Integration_Task t ON t.TaskID = s.SynchronizationTaskID";
/// A relation (`s`) not recorded as delivered: every read of the queues,
/// by workers and observers alike, passes over recorded deliveries, so a
/// delivered task is gone the moment its delivery commits.
const NOT_DELIVERED: &str = "NOT EXISTS (SELECT 1 FROM Integration_Delivered d \
    WHERE d.DeliveredSynchronizationID = s.SynchronizationID)";

fn queued(r: &Row<'_>) -> rusqlite::Result<Queued> {
    Ok(Queued {
        sync_id: r.get(0)?,
        task_id: r.get(1)?,
        task_type: r.get(2)?,
        task_data_type: r.get(3)?,
        data_type: r.get(4)?,
        process_type: r.get(5)?,
        site_name: r.get(6)?,
        title: r.get(7)?,
        data: r.get(8)?,
        matching: Matching::from_column(r.get::<_, Option<String>>(9)?.as_deref()),
    })
}

/// The next tasks of a connector's queue after `after_task_id`, oldest first;
/// tasks skipped after ErrorAndSkip only when `include_skipped`.
///
/// The limit is written into the SQL, not bound: SQLite (3.49) plans with a
/// bound LIMIT's value, so binding it again makes the statement re-prepare
/// at its next step — a whole prepare per batch (9 % of a worker's time).
pub fn next_batch(
    conn: &Connection,
    connector_id: i64,
    inbound: bool,
    after_task_id: i64,
    limit: u32,
    include_skipped: bool,
) -> rusqlite::Result<Vec<Queued>> {
    conn.prepare_cached(&format!(
        "{QUEUED} WHERE s.SynchronizationConnectorID = ?1 AND s.SynchronizationIsInbound = ?2 \
         AND s.SynchronizationTaskID > ?3 AND (?4 OR s.SynchronizationIsSkipped = 0) AND {NOT_DELIVERED} \
         ORDER BY s.SynchronizationTaskID LIMIT {limit}"
    ))?
    .query_map(params![connector_id, inbound, after_task_id, include_skipped], queued)?
    .collect()
}

/// True when nothing is queued for the connector in this direction.
pub fn is_empty(conn: &Connection, connector_id: i64, inbound: bool) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT NOT EXISTS (SELECT 1 FROM Integration_Synchronization \
         WHERE SynchronizationConnectorID = ?1 AND SynchronizationIsInbound = ?2)",
    )?
    .query_row(params![connector_id, inbound], |r| r.get(0))
}

/// The relations of a task: `(connector ID, relation ID)`.
pub fn relation_ids(conn: &Connection, task_id: i64, inbound: bool) -> rusqlite::Result<Vec<(i64, i64)>> {
    conn.prepare_cached(
        "SELECT SynchronizationConnectorID, SynchronizationID FROM Integration_Synchronization \
         WHERE SynchronizationIsInbound = ?1 AND SynchronizationTaskID = ?2",
    )?
    .query_map(params![inbound, task_id], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

/// The newest task in a connector's queue (0 when empty).
pub fn newest(conn: &Connection, connector_id: i64, inbound: bool) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT ifnull(max(SynchronizationTaskID), 0) FROM Integration_Synchronization \
         WHERE SynchronizationConnectorID = ?1 AND SynchronizationIsInbound = ?2",
    )?
    .query_row(params![connector_id, inbound], |r| r.get(0))
}

/// One task of a connector's queue, if it is queued for it.
pub fn queued_task(
    conn: &Connection,
    connector_id: i64,
    inbound: bool,
    task_id: i64,
) -> rusqlite::Result<Option<Queued>> {
    conn.prepare_cached(&format!(
        "{QUEUED} WHERE s.SynchronizationConnectorID = ?1 AND s.SynchronizationIsInbound = ?2 \
         AND s.SynchronizationTaskID = ?3 AND {NOT_DELIVERED}"
    ))?
    .query_row(params![connector_id, inbound, task_id], queued)
    .optional()
}

/// Removes processed relations (and tasks left with none) in one transaction.
pub fn complete(conn: &mut Connection, sync_ids: &[i64]) -> rusqlite::Result<()> {
    for_each_id(conn, "DELETE FROM Integration_Synchronization WHERE SynchronizationID = ?1", sync_ids)
}

/// Runs `sql` once for each ID, all in one transaction.
fn for_each_id(conn: &mut Connection, sql: &str, ids: &[i64]) -> rusqlite::Result<()> {
    match ids {
        [] => Ok(()),
        // One statement is its own transaction.
        [one] => conn.prepare_cached(sql)?.execute([one]).map(drop),
        _ => {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(sql)?;
                for id in ids {
                    stmt.execute([id])?;
                }
            }
            tx.commit()
        }
    }
}

/// Records relations as delivered (`Integration_Delivered`): the queue
/// reads ([`next_batch`], [`queued_task`]) pass over them, and
/// [`remove_delivered`] removes them.
pub fn record_delivered(conn: &mut Connection, sync_ids: &[i64]) -> rusqlite::Result<()> {
    for_each_id(conn, "INSERT OR IGNORE INTO Integration_Delivered (DeliveredSynchronizationID) VALUES (?1)", sync_ids)
}

/// Removes every relation recorded as delivered (and tasks left with none),
/// in one transaction.
pub fn remove_delivered(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.prepare_cached(
        "DELETE FROM Integration_Synchronization WHERE SynchronizationID IN \
         (SELECT DeliveredSynchronizationID FROM Integration_Delivered)",
    )?
    .execute([])?;
    tx.prepare_cached("DELETE FROM Integration_Delivered")?.execute([])?;
    tx.commit()
}

/// Records a failed attempt: the relation's last error and a sync-log row;
/// `skipped` marks an ErrorAndSkip (automatic runs pass over the task).
pub fn record_failure(conn: &mut Connection, sync_id: i64, message: &str, skipped: bool) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.prepare_cached(
        "UPDATE Integration_Synchronization SET SynchronizationErrorMessage = ?1, \
         SynchronizationAttempts = SynchronizationAttempts + 1, SynchronizationIsSkipped = ?3, \
         SynchronizationLastRun = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE SynchronizationID = ?2",
    )?
    .execute(params![message, sync_id, skipped])?;
    tx.prepare_cached(
        "INSERT INTO Integration_SyncLog (SyncLogSynchronizationID, SyncLogErrorMessage) VALUES (?1, ?2)",
    )?
    .execute(params![sync_id, message])?;
    tx.commit()
}

/// Notes that a relation was looked at (SkipNow).
pub fn mark_run(conn: &Connection, sync_id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE Integration_Synchronization SET SynchronizationLastRun = strftime('%Y-%m-%dT%H:%M:%fZ','now') \
         WHERE SynchronizationID = ?1",
    )?
    .execute([sync_id])?;
    Ok(())
}

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
}

/// The columns [`task_row`] reads (`s` a relation, `t` its task, `c` its connector).
pub(crate) const TASK_ROW_COLUMNS: &str = "t.TaskID, s.SynchronizationID, t.TaskTitle, t.TaskType, t.TaskTime, \
    c.ConnectorName, c.ConnectorDisplayName, s.SynchronizationDataType, t.TaskProcessType, \
    s.SynchronizationErrorMessage, s.SynchronizationAttempts, s.SynchronizationLastRun";

/// Reads a [`TaskRow`] selected with [`TASK_ROW_COLUMNS`].
pub(crate) fn task_row(r: &Row<'_>) -> rusqlite::Result<TaskRow> {
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
    })
}

/// A page of a queue, oldest first: after the `(task_id, sync_id)` cursor.
pub fn list(
    conn: &Connection,
    inbound: bool,
    connector_id: Option<i64>,
    after: (i64, i64),
    limit: u32,
) -> rusqlite::Result<Vec<TaskRow>> {
    let select = format!(
        "SELECT {TASK_ROW_COLUMNS} FROM Integration_Synchronization s \
         JOIN Integration_Task t ON t.TaskID = s.SynchronizationTaskID \
         JOIN Integration_Connector c ON c.ConnectorID = s.SynchronizationConnectorID"
    );
    let row = task_row;
    match connector_id {
        Some(c) => conn
            .prepare_cached(&format!(
                "{select} WHERE s.SynchronizationConnectorID = ?1 AND s.SynchronizationIsInbound = ?2 \
                 AND s.SynchronizationTaskID > ?3 AND {NOT_DELIVERED} ORDER BY s.SynchronizationTaskID LIMIT {limit}"
            ))?
            .query_map(params![c, inbound, after.0], row)?
            .collect(),
        None => conn
            .prepare_cached(&format!(
                "{select} WHERE s.SynchronizationIsInbound = ?1 AND (s.SynchronizationTaskID, s.SynchronizationID) > (?2, ?3) \
                 AND {NOT_DELIVERED} ORDER BY s.SynchronizationTaskID, s.SynchronizationID LIMIT {limit}"
            ))?
            .query_map(params![inbound, after.0, after.1], row)?
            .collect(),
    }
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

pub fn detail(conn: &Connection, task_id: i64) -> rusqlite::Result<Option<TaskDetail>> {
    let task = conn
        .prepare_cached(
            "SELECT TaskIsInbound, TaskType, TaskDataType, TaskProcessType, TaskSiteName, TaskTitle, TaskTime, TaskData \
             FROM Integration_Task WHERE TaskID = ?1",
        )?
        .query_row([task_id], |r| {
            Ok(TaskDetail {
                task_id,
                direction: if r.get::<_, bool>(0)? { "incoming" } else { "outgoing" },
                task_type: r.get(1)?,
                data_type: r.get(2)?,
                process_type: r.get(3)?,
                site_name: r.get(4)?,
                title: r.get(5)?,
                time: r.get(6)?,
                data: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or(Value::Null),
                relations: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut task) = task else { return Ok(None) };
    let mut relations = conn.prepare_cached(&format!(
        "SELECT s.SynchronizationID, c.ConnectorName, s.SynchronizationDataType, s.SynchronizationErrorMessage, \
         s.SynchronizationAttempts, s.SynchronizationLastRun FROM Integration_Synchronization s \
         JOIN Integration_Connector c ON c.ConnectorID = s.SynchronizationConnectorID \
         WHERE s.SynchronizationTaskID = ?1 AND {NOT_DELIVERED} ORDER BY c.ConnectorName"
    ))?;
    let mut log = conn.prepare_cached(
        "SELECT SyncLogTime, SyncLogErrorMessage FROM Integration_SyncLog WHERE SyncLogSynchronizationID = ?1 ORDER BY SyncLogID",
    )?;
    for rel in relations.query_map([task_id], |r| {
        Ok(Relation {
            sync_id: r.get(0)?,
            connector: r.get(1)?,
            data_type: r.get(2)?,
            error: r.get(3)?,
            attempts: r.get(4)?,
            last_run: r.get(5)?,
            log: Vec::new(),
        })
    })? {
        let mut rel = rel?;
        rel.log = log
            .query_map([rel.sync_id], |r| Ok(SyncLogEntry { time: r.get(0)?, error: r.get(1)? }))?
            .collect::<Result<_, _>>()?;
        task.relations.push(rel);
    }
    // Every relation delivered (the task goes with the last one's removal).
    if task.relations.is_empty() {
        return Ok(None);
    }
    Ok(Some(task))
}

/// Which tasks a bulk action applies to.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    Ids(Vec<i64>),
}

/// Deletes tasks of one direction: all or selected, for one connector (its
/// relations only) or for every connector. Returns how many relations went.
pub fn delete(
    conn: &mut Connection,
    inbound: bool,
    selection: &Selection,
    connector_id: Option<i64>,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let removed = match selection {
        Selection::All => tx.execute(
            "DELETE FROM Integration_Synchronization WHERE SynchronizationIsInbound = ?1 \
             AND (?2 IS NULL OR SynchronizationConnectorID = ?2)",
            params![inbound, connector_id],
        )?,
        Selection::Ids(ids) => {
            let mut n = 0;
            let mut stmt = tx.prepare_cached(
                "DELETE FROM Integration_Synchronization WHERE SynchronizationTaskID = ?1 AND SynchronizationIsInbound = ?2 \
                 AND (?3 IS NULL OR SynchronizationConnectorID = ?3)",
            )?;
            for id in ids {
                n += stmt.execute(params![id, inbound, connector_id])?;
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
    conn: &Connection,
    inbound: bool,
    ids: &[i64],
) -> rusqlite::Result<std::collections::BTreeMap<i64, Vec<i64>>> {
    let mut out: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT s.SynchronizationConnectorID FROM Integration_Synchronization s \
         WHERE s.SynchronizationTaskID = ?1 AND s.SynchronizationIsInbound = ?2 AND {NOT_DELIVERED}"
    ))?;
    for id in sorted {
        for c in stmt.query_map(params![id, inbound], |r| r.get::<_, i64>(0))? {
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
pub fn remove_orphans(conn: &Connection) -> rusqlite::Result<Vec<(i64, usize)>> {
    let mut next = conn.prepare_cached(
        "SELECT SynchronizationConnectorID FROM Integration_Synchronization \
         WHERE SynchronizationConnectorID > ?1 ORDER BY SynchronizationConnectorID LIMIT 1",
    )?;
    let mut known = conn.prepare_cached("SELECT 1 FROM Integration_Connector WHERE ConnectorID = ?1")?;
    let mut removed = Vec::new();
    let mut after = i64::MIN;
    while let Some(id) = next.query_row([after], |r| r.get::<_, i64>(0)).optional()? {
        after = id;
        if !known.exists([id])? {
            let n =
                conn.execute("DELETE FROM Integration_Synchronization WHERE SynchronizationConnectorID = ?1", [id])?;
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
    /// How long the oldest task has waited, in seconds.
    pub oldest_age_seconds: f64,
}

/// Every non-empty queue with its depth and the age of its oldest task.
pub fn stats(conn: &Connection) -> rusqlite::Result<Vec<QueueStats>> {
    conn.prepare_cached(&format!(
        "SELECT c.ConnectorName, q.inbound, q.depth, \
         ifnull((julianday('now') - julianday(t.TaskTime)) * 86400.0, 0) \
         FROM (SELECT s.SynchronizationConnectorID AS connector, s.SynchronizationIsInbound AS inbound, \
               COUNT(*) AS depth, MIN(s.SynchronizationTaskID) AS oldest FROM Integration_Synchronization s \
               WHERE {NOT_DELIVERED} GROUP BY 1, 2) q \
         JOIN Integration_Connector c ON c.ConnectorID = q.connector \
         LEFT JOIN Integration_Task t ON t.TaskID = q.oldest ORDER BY 1, 2"
    ))?
    .query_map([], |r| {
        Ok(QueueStats { connector: r.get(0)?, inbound: r.get(1)?, depth: r.get(2)?, oldest_age_seconds: r.get(3)? })
    })?
    .collect()
}

/// How many relations wait in one direction (for one connector, or all).
pub fn count(conn: &Connection, inbound: bool, connector_id: Option<i64>) -> rusqlite::Result<i64> {
    // All relations minus the recorded deliveries among them: the first
    // count stays a scan of the index alone, the second reads a few rows.
    conn.prepare_cached(
        "SELECT (SELECT COUNT(*) FROM Integration_Synchronization WHERE SynchronizationIsInbound = ?1 \
                 AND (?2 IS NULL OR SynchronizationConnectorID = ?2)) \
              - (SELECT COUNT(*) FROM Integration_Delivered d JOIN Integration_Synchronization s \
                 ON s.SynchronizationID = d.DeliveredSynchronizationID WHERE s.SynchronizationIsInbound = ?1 \
                 AND (?2 IS NULL OR s.SynchronizationConnectorID = ?2))",
    )?
    .query_row(params![inbound, connector_id], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;

    #[test]
    fn recorded_deliveries_are_passed_over_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Database::open(&dir.path().join("bus.db")).unwrap();
        let mut conn = db.connect().unwrap();
        conn.execute_batch(
            "INSERT INTO Integration_Connector (ConnectorName, ConnectorDisplayName, ConnectorAssemblyName, ConnectorClassName)
             VALUES ('A', 'A', 'a', 'A');",
        )
        .unwrap();
        let connector = conn.last_insert_rowid();
        let mut sync_ids = Vec::new();
        for _ in 0..2 {
            conn.execute(
                "INSERT INTO Integration_Task (TaskIsInbound, TaskType, TaskDataType, TaskTitle, TaskData)
                 VALUES (0, 'CreateObject', 'Simple', 't', '{}')",
                [],
            )
            .unwrap();
            insert_relation(&conn, conn.last_insert_rowid(), connector, false, TaskDataType::Simple).unwrap();
            sync_ids.push(conn.last_insert_rowid());
        }
        record_delivered(&mut conn, &sync_ids[..1]).unwrap();
        let next: Vec<i64> =
            next_batch(&conn, connector, false, 0, 10, false).unwrap().iter().map(|q| q.sync_id).collect();
        assert_eq!(next, sync_ids[1..], "the delivered relation is passed over");
        let first_task = conn
            .query_row(
                "SELECT SynchronizationTaskID FROM Integration_Synchronization WHERE SynchronizationID = ?1",
                [sync_ids[0]],
                |r| r.get(0),
            )
            .unwrap();
        assert!(queued_task(&conn, connector, false, first_task).unwrap().is_none());
        assert_eq!(count(&conn, false, None).unwrap(), 1, "a recorded delivery is not counted");
        assert_eq!(list(&conn, false, None, (0, 0), 10).unwrap().len(), 1, "nor listed");
        assert!(detail(&conn, first_task).unwrap().is_none(), "its task is gone for observers");
        assert_eq!(stats(&conn).unwrap()[0].depth, 1);
        let left: i64 = conn.query_row("SELECT count(*) FROM Integration_Synchronization", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 2, "recorded, not removed yet");
        remove_delivered(&mut conn).unwrap();
        assert_eq!(count(&conn, false, None).unwrap(), 1);
        let tasks: i64 = conn.query_row("SELECT count(*) FROM Integration_Task", [], |r| r.get(0)).unwrap();
        assert_eq!(tasks, 1, "the delivered task went with its relation");
        let left: i64 = conn.query_row("SELECT count(*) FROM Integration_Delivered", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0);
    }
}
