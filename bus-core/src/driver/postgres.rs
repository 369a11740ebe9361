//! The PostgreSQL driver: writers on several daemons at once, each
//! statement a round trip to the server — so an operation is as few
//! statements as it can be.

use super::{ChangeStart, Driver, Ending, QueueHeads, Result};
use crate::queue_rows::{self, NewRelation, NewTask};
use crate::settings;
use crate::sql::{params, Conn, OptionalExtension, SqlError, ToValue, Value, ValueRef};
use std::sync::OnceLock;

pub(super) struct Postgres;

/// How many relations the statement that logs a task carries at most (the
/// rest, rare, follow in statements of their own).
const RELATIONS_WITH_TASK: usize = 8;

/// A transaction's end, sent pipelined after its last statements (see
/// [`crate::sql::Conn::query_pipelined`]).
const COMMIT: &str = "COMMIT";

/// The unique constraint on `CMS_Object.ObjectGUID` (PostgreSQL's name for
/// the column's `UNIQUE`).
const OBJECT_GUID_KEY: &str = "cms_object_objectguid_key";

/// The statement that logs a task with `n` relations: the task row and its
/// relations in one round trip.
fn log_task_sql(n: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    &SQL.get_or_init(|| {
        (1..=RELATIONS_WITH_TASK)
            .map(|n| {
                let rows: Vec<String> = (0..n)
                    .map(|i| format!("(${}::BIGINT, ${}::TEXT, ${}::TEXT)", 14 + 3 * i, 15 + 3 * i, 16 + 3 * i))
                    .collect();
                format!(
                    "WITH task AS (INSERT INTO Integration_Task (TaskIsInbound, TaskType, TaskDataType, \
                     TaskProcessType, TaskSiteName, TaskTitle, TaskObjectType, TaskObjectID, TaskNodeID, \
                     TaskDocumentID, TaskNodeAliasPath, TaskData, TaskTime) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING TaskID) \
                     INSERT INTO Integration_Synchronization (SynchronizationTaskID, SynchronizationIsInbound, \
                     SynchronizationConnectorID, SynchronizationDataType, SynchronizationMatch) \
                     SELECT task.TaskID, $1, r.connector, r.data_type, r.matching FROM task, \
                     (VALUES {}) AS r (connector, data_type, matching) RETURNING SynchronizationTaskID",
                    rows.join(", ")
                )
            })
            .collect()
    })[n - 1]
}

/// A PostgreSQL array literal of integers (`{1,2}`), for a parameter
/// written `CAST($n AS TEXT)::BIGINT[]`.
pub(crate) fn bigint_array(ids: &[i64]) -> String {
    format!("{{{}}}", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
}

/// A PostgreSQL array literal of texts (`{"a","b"}`), each element quoted.
fn text_array<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    format!("{{{}}}", quoted.join(","))
}

impl Driver for Postgres {
    /// A statement a task (the task row with up to eight relations), all
    /// of them pipelined: one round trip for the whole transaction's tasks
    /// — and its `COMMIT`, when that is all that follows. Their IDs are
    /// drawn as they run, in order, after every write the transaction made
    /// before — so a later change to an object always gets a later task.
    fn log_tasks(&self, tx: &Conn, tasks: &[(NewTask<'_>, &[NewRelation])], ending: Ending) -> Result<Vec<i64>> {
        let columns: Vec<_> = tasks.iter().map(|(task, _)| queue_rows::task_columns(task)).collect();
        let relation_columns: Vec<Vec<(&str, Option<&str>)>> = tasks
            .iter()
            .map(|(_, relations)| {
                relations.iter().take(RELATIONS_WITH_TASK).map(|r| (r.data_type.name(), r.matching.column())).collect()
            })
            .collect();
        let values: Vec<Vec<&dyn ToValue>> = tasks
            .iter()
            .zip(&columns)
            .zip(&relation_columns)
            .map(|(((_, relations), columns), relation_columns)| {
                let mut values = columns.values();
                for (r, (data_type, matching)) in relations.iter().zip(relation_columns) {
                    values.push(&r.connector_id);
                    values.push(data_type);
                    values.push(matching);
                }
                values
            })
            .collect();
        let mut calls: Vec<(&str, &[&dyn ToValue])> = relation_columns
            .iter()
            .zip(&values)
            .map(|(relations, values)| (log_task_sql(relations.len()), values.as_slice()))
            .collect();
        // Rare: relations past eight need statements of their own first.
        let commit = ending == Ending::Commit && tasks.iter().all(|(_, r)| r.len() <= RELATIONS_WITH_TASK);
        if commit {
            calls.push((COMMIT, &[]));
        }
        let mut results = tx.query_pipelined(&calls)?;
        if commit {
            results.pop();
        }
        let mut ids = Vec::with_capacity(tasks.len());
        for rows in results {
            let first = rows.first().and_then(|row| row.first()).map(Value::as_ref);
            match first {
                Some(ValueRef::Integer(id)) => ids.push(id),
                other => return Err(SqlError::Column { index: 0, message: format!("a task ID, not {other:?}") }),
            }
        }
        // More than eight relations (rare): the rest in statements of their own.
        for ((task, relations), task_id) in tasks.iter().zip(&ids) {
            if relations.len() > RELATIONS_WITH_TASK {
                queue_rows::insert_relations(tx, *task_id, task.direction, &relations[RELATIONS_WITH_TASK..])?;
            }
        }
        Ok(ids)
    }

    fn queue_heads(&self) -> QueueHeads {
        QueueHeads::Unknown
    }

    /// Another daemon (or psql) may delete a connector at any moment: the
    /// rows of the live connectors are locked against deletion until the
    /// commit (edits that keep the key still go through).
    /// One statement (sent with the transaction's `BEGIN`): the settings
    /// rows and the live connectors' rows, those locked `FOR KEY SHARE` —
    /// another daemon (or psql) may delete a connector at any moment, and
    /// a delete now waits for this commit (edits that keep the key still
    /// go through).
    /// The same statement draws the IDs of the objects the change will
    /// create (from the column's own sequence).
    fn begin_change(&self, tx: &Conn, ids: &[i64], _registry_version: i64, creates: usize) -> Result<ChangeStart> {
        let ids = bigint_array(ids);
        type Row = (Option<String>, Option<String>, Option<i64>, Option<i64>);
        // Three statements, so each keeps a plan of its own: a count as a
        // parameter of `generate_series` has the server plan the statement
        // anew each time, which costs a one-change transaction as much as
        // a round trip.
        const START: &str = "WITH present AS (SELECT ConnectorID FROM Integration_Connector \
             WHERE ConnectorID = ANY (CAST($1 AS TEXT)::BIGINT[]) ORDER BY ConnectorID FOR KEY SHARE) \
             SELECT KeyName, KeyValue, NULL::BIGINT, NULL::BIGINT FROM CMS_SettingsKey \
             UNION ALL SELECT NULL, NULL, ConnectorID, NULL FROM present";
        static ONE: OnceLock<String> = OnceLock::new();
        static MANY: OnceLock<String> = OnceLock::new();
        let row = |r: &crate::sql::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
        let rows: Vec<Row> = match creates {
            0 => tx.prepare_cached(START)?.query_map([ids], row)?.collect::<Result<_>>()?,
            1 => tx
                .prepare_cached(ONE.get_or_init(|| {
                    format!("{START} UNION ALL SELECT NULL, NULL, NULL, nextval('cms_object_objectid_seq')")
                }))?
                .query_map([ids], row)?
                .collect::<Result<_>>()?,
            n => tx
                .prepare_cached(MANY.get_or_init(|| {
                    format!(
                        "{START} UNION ALL SELECT NULL, NULL, NULL, nextval('cms_object_objectid_seq') \
                         FROM generate_series(1, CAST(${} AS BIGINT))",
                        2
                    )
                }))?
                .query_map(params![ids, i64::try_from(n).unwrap_or(i64::MAX)], row)?
                .collect::<Result<_>>()?,
        };
        let present = rows.iter().filter_map(|(_, _, id, _)| *id).collect();
        let object_ids = rows.iter().filter_map(|(_, _, _, id)| *id).collect();
        let keys = rows.into_iter().filter_map(|(key, value, _, _)| Some((key?, value?)));
        Ok(ChangeStart { settings: settings::from_keys(keys), present, object_ids })
    }

    /// The row is locked before counting, so no change queues for the
    /// connector between the count and the delete (a change locks it
    /// first, [`Self::begin_change`]).
    fn lock_connector_for_delete(&self, tx: &Conn, name: &str) -> Result<()> {
        tx.execute("SELECT 1 FROM Integration_Connector WHERE ConnectorName = $1 FOR UPDATE", [name]).map(drop)
    }

    fn guid_taken(&self, _tx: &Conn, error: &SqlError, _guid: &str) -> Result<bool> {
        Ok(error.constraint() == Some(OBJECT_GUID_KEY))
    }

    fn objects_referencing(&self, conn: &Conn, references: &[(&str, &str)], id: i64) -> Result<Vec<(usize, i64)>> {
        if references.is_empty() {
            return Ok(Vec::new());
        }
        let types = text_array(references.iter().map(|(t, _)| *t));
        let fields = text_array(references.iter().map(|(_, f)| *f));
        conn.prepare_cached(
            "SELECT r.ord, o.ObjectID FROM unnest(CAST($1 AS TEXT)::TEXT[], CAST($2 AS TEXT)::TEXT[]) \
             WITH ORDINALITY AS r (object_type, field, ord) \
             JOIN CMS_Object o ON o.ObjectType = r.object_type \
             AND jsonb_typeof(o.ObjectFields::jsonb -> r.field) = 'number' \
             AND o.ObjectFields::jsonb ->> r.field = CAST($3 AS TEXT) ORDER BY r.ord, o.ObjectID",
        )?
        .query_map(params![types, fields, id], |r| {
            let ord: i64 = r.get(0)?;
            Ok((usize::try_from(ord - 1).unwrap_or(usize::MAX), r.get(1)?))
        })?
        .collect()
    }

    fn document_referencing(&self, conn: &Conn, class_name: &str, field: &str, id: i64) -> Result<Option<i64>> {
        conn.prepare_cached(
            "SELECT d.DocumentID FROM CMS_Document d JOIN CMS_Tree n ON n.NodeID = d.DocumentNodeID \
             WHERE n.NodeClassName = $1 AND jsonb_typeof(d.DocumentFields::jsonb -> CAST($2 AS TEXT)) = 'number' \
             AND d.DocumentFields::jsonb ->> CAST($2 AS TEXT) = CAST($3 AS TEXT) LIMIT 1",
        )?
        .query_row(params![class_name, field, id], |r| r.get(0))
        .optional()
    }

    fn not_delivered(&self) -> &'static str {
        "TRUE"
    }

    fn count_waiting(&self) -> &'static str {
        // A delivery removes its relation in its own commit: every relation waits.
        "SELECT COUNT(*) FROM Integration_Synchronization WHERE SynchronizationIsInbound = $1 \
         AND (SynchronizationConnectorID = $2 OR $2 IS NULL)"
    }

    fn like_ignoring_case(&self) -> &'static str {
        "ILIKE"
    }
}
