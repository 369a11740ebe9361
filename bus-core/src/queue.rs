//! The task queue tables: `Integration_Task` (one row per change),
//! `Integration_Synchronization` (one row per task and connector) and
//! `Integration_SyncLog` (every failed attempt). Shared by the engines and
//! the management API.

pub use crate::queue_rows::Direction;
pub(crate) use crate::queue_rows::{insert_relation, insert_task, Matching, NewRelation, NewTask};
use crate::sql::{params, Conn, OptionalExtension, Row, ValueRef};
use connector_abi::{IntegrationProcessType, TaskDataType, TaskType};

/// One connector's queue in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueKey {
    pub connector_id: i64,
    pub direction: Direction,
}

/// One task waiting for one connector, its columns read as the types they
/// store.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub sync_id: i64,
    pub task_id: i64,
    pub task_type: TaskType,
    /// The data type of the stored payload.
    pub task_data_type: TaskDataType,
    /// The data type this connector subscribed with.
    pub data_type: TaskDataType,
    /// Incoming tasks only: how a failure is handled.
    pub process_type: Option<IntegrationProcessType>,
    pub site_name: Option<String>,
    pub title: String,
    pub data: String,
    /// Whether the connector's custom subscriptions are still to be asked.
    pub matching: Matching,
    /// A column that does not read as its type (a row edited with plain
    /// SQL): the task fails with this message and no connector is called.
    pub unreadable: Option<String>,
    /// The last attempt ended in an `Error` (the task waits for a retry).
    pub failed: bool,
}

impl Queued {
    /// The task as the head of a queue it just started, built from what the
    /// outbox wrote (the row [`next_batch`] would read back).
    pub(crate) fn head(task: &NewTask<'_>, task_id: i64, sync_id: i64, relation: &NewRelation) -> Queued {
        Queued {
            sync_id,
            task_id,
            task_type: task.task_type,
            task_data_type: task.data_type,
            data_type: relation.data_type,
            process_type: task.process_type,
            site_name: task.site_name.map(str::to_owned),
            title: task.title.to_owned(),
            data: task.data.to_owned(),
            matching: relation.matching,
            unreadable: None,
            failed: false,
        }
    }
}

/// Queued tasks with their payloads (deliveries recorded but not yet
/// removed are left out by the driver's `not_delivered` condition).
const QUEUED: &str = "SELECT s.SynchronizationID, t.TaskID, t.TaskType, t.TaskDataType, s.SynchronizationDataType, \
    t.TaskProcessType, t.TaskSiteName, t.TaskTitle, t.TaskData, s.SynchronizationMatch, \
    s.SynchronizationErrorMessage IS NOT NULL AND s.SynchronizationIsSkipped = 0 \
    FROM Integration_Synchronization s JOIN Integration_Task t ON t.TaskID = s.SynchronizationTaskID";
fn queued(r: &Row<'_>) -> crate::sql::Result<Queued> {
    let mut unreadable = None;
    let task_type = parsed(r.get_ref(2)?, "TaskType", TaskType::UpdateObject, &mut unreadable);
    let task_data_type = parsed(r.get_ref(3)?, "TaskDataType", TaskDataType::Simple, &mut unreadable);
    let data_type = parsed(r.get_ref(4)?, "SynchronizationDataType", TaskDataType::Simple, &mut unreadable);
    let process_type = match r.get_ref(5)? {
        ValueRef::Null => None,
        value => Some(parsed(value, "TaskProcessType", IntegrationProcessType::Error, &mut unreadable)),
    };
    Ok(Queued {
        sync_id: r.get(0)?,
        task_id: r.get(1)?,
        task_type,
        task_data_type,
        data_type,
        process_type,
        site_name: r.get(6)?,
        title: r.get(7)?,
        data: r.get(8)?,
        matching: Matching::from_column(r.get::<Option<String>>(9)?.as_deref()),
        unreadable,
        failed: r.get(10)?,
    })
}

/// One enum column; a value that does not read as the enum gives `fallback`
/// and leaves the first such problem in `unreadable`.
fn parsed<T>(value: ValueRef<'_>, column: &str, fallback: T, unreadable: &mut Option<String>) -> T
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let result = match value {
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => text.parse::<T>().map_err(|e| e.to_string()),
            Err(_) => Err("it is not UTF-8 text".to_owned()),
        },
        other => Err(format!("it is {}, not text", other.kind())),
    };
    result.unwrap_or_else(|e| {
        unreadable.get_or_insert_with(|| format!("the stored {column} is unreadable: {e}"));
        fallback
    })
}

/// The next tasks of a connector's queue after `after_task_id`, oldest first;
/// tasks skipped after ErrorAndSkip only when `include_skipped`.
///
/// The limit is written into the SQL, not bound: SQLite (3.49) plans with a
/// bound LIMIT's value, so binding it again makes the statement re-prepare
/// at its next step — a whole prepare per batch (9 % of a worker's time).
pub(crate) fn next_batch(
    conn: &Conn,
    connector_id: i64,
    direction: Direction,
    after_task_id: i64,
    limit: u32,
    include_skipped: bool,
) -> crate::sql::Result<Vec<Queued>> {
    let not_delivered = crate::driver::of(conn).not_delivered();
    conn.prepare_cached(&format!(
        "{QUEUED} WHERE s.SynchronizationConnectorID = $1 AND s.SynchronizationIsInbound = $2 \
         AND s.SynchronizationTaskID > $3 AND ($4 OR s.SynchronizationIsSkipped = 0) AND {not_delivered} \
         ORDER BY s.SynchronizationTaskID LIMIT {limit}"
    ))?
    .query_map(params![connector_id, direction, after_task_id, include_skipped], queued)?
    .collect()
}

/// True when nothing is queued for the connector in this direction.
pub fn is_empty(conn: &Conn, connector_id: i64, direction: Direction) -> crate::sql::Result<bool> {
    conn.prepare_cached(
        "SELECT NOT EXISTS (SELECT 1 FROM Integration_Synchronization \
         WHERE SynchronizationConnectorID = $1 AND SynchronizationIsInbound = $2)",
    )?
    .query_row(params![connector_id, direction], |r| r.get(0))
}

/// The relations of a task: `(connector ID, relation ID)`.
pub(crate) fn relation_ids(conn: &Conn, task_id: i64, direction: Direction) -> crate::sql::Result<Vec<(i64, i64)>> {
    conn.prepare_cached(
        "SELECT SynchronizationConnectorID, SynchronizationID FROM Integration_Synchronization \
         WHERE SynchronizationIsInbound = $1 AND SynchronizationTaskID = $2",
    )?
    .query_map(params![direction, task_id], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

/// The newest task in a connector's queue (0 when empty).
pub fn newest(conn: &Conn, connector_id: i64, direction: Direction) -> crate::sql::Result<i64> {
    conn.prepare_cached(
        "SELECT coalesce(max(SynchronizationTaskID), 0) FROM Integration_Synchronization \
         WHERE SynchronizationConnectorID = $1 AND SynchronizationIsInbound = $2",
    )?
    .query_row(params![connector_id, direction], |r| r.get(0))
}

/// One task of a connector's queue, if it is queued for it.
pub(crate) fn queued_task(
    conn: &Conn,
    connector_id: i64,
    direction: Direction,
    task_id: i64,
) -> crate::sql::Result<Option<Queued>> {
    let not_delivered = crate::driver::of(conn).not_delivered();
    conn.prepare_cached(&format!(
        "{QUEUED} WHERE s.SynchronizationConnectorID = $1 AND s.SynchronizationIsInbound = $2 \
         AND s.SynchronizationTaskID = $3 AND {not_delivered}"
    ))?
    .query_row(params![connector_id, direction, task_id], queued)
    .optional()
}

/// Removes processed relations (and tasks left with none) in one transaction.
pub fn complete(conn: &mut Conn, sync_ids: &[i64]) -> crate::sql::Result<()> {
    for_each_id(conn, "DELETE FROM Integration_Synchronization WHERE SynchronizationID = $1", sync_ids)
}

/// Runs `sql` once for each ID, all in one transaction.
fn for_each_id(conn: &mut Conn, sql: &str, ids: &[i64]) -> crate::sql::Result<()> {
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
/// `state`: connectors' state writes committed in the same transaction
/// (by connector ID).
pub(crate) fn record_delivered(
    conn: &mut Conn,
    sync_ids: &[i64],
    state: &[(i64, crate::state_store::Writes)],
) -> crate::sql::Result<()> {
    const RECORD: &str =
        "INSERT INTO Integration_Delivered (DeliveredSynchronizationID) VALUES ($1) ON CONFLICT DO NOTHING";
    if state.is_empty() {
        return for_each_id(conn, RECORD, sync_ids);
    }
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(RECORD)?;
        for id in sync_ids {
            stmt.execute([id])?;
        }
    }
    for (connector_id, writes) in state {
        crate::state_store::apply(&tx, *connector_id, writes)?;
    }
    tx.commit()
}

/// Removes every relation recorded as delivered (and tasks left with none),
/// in one transaction.
pub(crate) fn remove_delivered(conn: &mut Conn) -> crate::sql::Result<()> {
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
pub(crate) fn record_failure(conn: &mut Conn, sync_id: i64, message: &str, skipped: bool) -> crate::sql::Result<()> {
    let tx = conn.transaction()?;
    write_failure(&tx, sync_id, message, skipped)?;
    tx.commit()
}

/// [`record_failure`]'s two writes, inside the caller's transaction.
pub(crate) fn write_failure(tx: &Conn, sync_id: i64, message: &str, skipped: bool) -> crate::sql::Result<()> {
    tx.prepare_cached(
        "UPDATE Integration_Synchronization SET SynchronizationErrorMessage = $1, \
         SynchronizationAttempts = SynchronizationAttempts + 1, SynchronizationIsSkipped = $2, \
         SynchronizationLastRun = bus_now() WHERE SynchronizationID = $3",
    )?
    .execute(params![message, skipped, sync_id])?;
    tx.prepare_cached(
        "INSERT INTO Integration_SyncLog (SyncLogSynchronizationID, SyncLogErrorMessage) VALUES ($1, $2)",
    )?
    .execute(params![sync_id, message])?;
    Ok(())
}

/// Notes that a relation was looked at (SkipNow).
pub(crate) fn mark_run(conn: &Conn, sync_id: i64) -> crate::sql::Result<()> {
    conn.prepare_cached(
        "UPDATE Integration_Synchronization SET SynchronizationLastRun = bus_now() \
         WHERE SynchronizationID = $1",
    )?
    .execute([sync_id])?;
    Ok(())
}

/// Which tasks a bulk action applies to.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    Ids(Vec<i64>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;
    use crate::queue_admin::{count, detail, list, stats};

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
        let connector = conn.as_sqlite().unwrap().last_insert_rowid();
        let mut sync_ids = Vec::new();
        for _ in 0..2 {
            conn.execute(
                "INSERT INTO Integration_Task (TaskIsInbound, TaskType, TaskDataType, TaskTitle, TaskData)
                 VALUES (0, 'CreateObject', 'Simple', 't', '{}')",
                [],
            )
            .unwrap();
            insert_relation(
                &conn,
                conn.as_sqlite().unwrap().last_insert_rowid(),
                connector,
                Direction::Outgoing,
                TaskDataType::Simple,
            )
            .unwrap();
            sync_ids.push(conn.as_sqlite().unwrap().last_insert_rowid());
        }
        record_delivered(&mut conn, &sync_ids[..1], &[]).unwrap();
        let next: Vec<i64> = next_batch(&conn, connector, Direction::Outgoing, 0, 10, false)
            .unwrap()
            .iter()
            .map(|q| q.sync_id)
            .collect();
        assert_eq!(next, sync_ids[1..], "the delivered relation is passed over");
        let first_task = conn
            .query_row(
                "SELECT SynchronizationTaskID FROM Integration_Synchronization WHERE SynchronizationID = $1",
                [sync_ids[0]],
                |r| r.get(0),
            )
            .unwrap();
        assert!(queued_task(&conn, connector, Direction::Outgoing, first_task).unwrap().is_none());
        assert_eq!(count(&conn, Direction::Outgoing, None).unwrap(), 1, "a recorded delivery is not counted");
        assert_eq!(list(&conn, Direction::Outgoing, None, (0, 0), 10).unwrap().len(), 1, "nor listed");
        assert!(detail(&conn, first_task).unwrap().is_none(), "its task is gone for observers");
        assert_eq!(stats(&conn).unwrap()[0].depth, 1);
        let left: i64 = conn.query_row("SELECT count(*) FROM Integration_Synchronization", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 2, "recorded, not removed yet");
        remove_delivered(&mut conn).unwrap();
        assert_eq!(count(&conn, Direction::Outgoing, None).unwrap(), 1);
        let tasks: i64 = conn.query_row("SELECT count(*) FROM Integration_Task", [], |r| r.get(0)).unwrap();
        assert_eq!(tasks, 1, "the delivered task went with its relation");
        let left: i64 = conn.query_row("SELECT count(*) FROM Integration_Delivered", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_row_edited_into_nonsense_reads_as_a_task_that_names_its_column() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Database::open(&dir.path().join("bus.db")).unwrap();
        let conn = db.connect().unwrap();
        conn.execute_batch(
            "INSERT INTO Integration_Connector (ConnectorName, ConnectorDisplayName, ConnectorAssemblyName, ConnectorClassName)
             VALUES ('A', 'A', 'a', 'A');",
        )
        .unwrap();
        let connector = conn.as_sqlite().unwrap().last_insert_rowid();
        for (task_type, process_type) in
            [("CreateObject", Some("SkipOnError")), ("Explode", None), ("CreateObject", Some("7"))]
        {
            conn.execute(
                "INSERT INTO Integration_Task (TaskIsInbound, TaskType, TaskDataType, TaskProcessType, TaskTitle, TaskData)
                 VALUES (1, $1, 'SimpleSnapshot', $2, 't', '{}')",
                params![task_type, process_type],
            )
            .unwrap();
            insert_relation(
                &conn,
                conn.as_sqlite().unwrap().last_insert_rowid(),
                connector,
                Direction::Incoming,
                TaskDataType::Simple,
            )
            .unwrap();
        }
        let batch = next_batch(&conn, connector, Direction::Incoming, 0, 10, false).unwrap();
        assert_eq!(batch.len(), 3, "a bad row never fails the read of the queue");
        assert_eq!(batch[0].unreadable, None);
        assert_eq!(batch[0].task_type, TaskType::CreateObject);
        assert_eq!(batch[0].task_data_type, TaskDataType::SimpleSnapshot);
        assert_eq!(batch[0].data_type, TaskDataType::Simple);
        assert_eq!(batch[0].process_type, Some(IntegrationProcessType::SkipOnError));
        let bad_type = batch[1].unreadable.as_deref().unwrap();
        assert!(bad_type.contains("TaskType") && bad_type.contains("Explode"), "{bad_type}");
        let bad_process = batch[2].unreadable.as_deref().unwrap();
        assert!(bad_process.contains("TaskProcessType"), "{bad_process}");
    }
}
