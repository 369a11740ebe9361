//! The PostgreSQL driver: writers on several daemons at once, each
//! statement a round trip to the server — so an operation is as few
//! statements as it can be.

use super::{ChangeStart, Driver, Ending, QueueHeads, Reruns, Result, Start, StartAsk};
use crate::queue_rows::{self, NewRelation, NewTask};
use crate::settings;
use crate::sql::{params, Conn, ErrorKind, OptionalExtension, RowInsert, SqlError, ToValue, Value, ValueRef};
use std::sync::OnceLock;

pub(super) struct Postgres;

/// A transaction's end, sent pipelined after its last statements (see
/// [`crate::sql::Conn::query_pipelined`]).
const COMMIT: &str = "COMMIT";

/// The unique constraint on `CMS_Object.ObjectGUID` (PostgreSQL's name for
/// the column's `UNIQUE`).
const OBJECT_GUID_KEY: &str = "cms_object_objectguid_key";

/// The objects' table, as PostgreSQL names it in an error.
const OBJECTS: &str = "cms_object";

/// The primary key of `CMS_Object`.
const OBJECT_KEY: &str = "cms_object_pkey";

/// How many object IDs a start read from the database draws at least (see
/// [`Postgres::begin_change`]).
const IDS_AHEAD: usize = 64;

/// The SQLSTATE `bus_expect_settings` fails with.
const SETTINGS_CHANGED: &str = "BU001";

/// The SQLSTATE `bus_lock_connectors` fails with: a connector to queue for
/// was deleted.
const CONNECTOR_GONE: &str = "BU002";

/// The tag of the deferred settings check (the other tags are object IDs,
/// all positive).
const SETTINGS_CHECK: i64 = 0;

/// How many relations [`log_task_sql`] takes at most.
const RELATIONS_WITH_TASK: usize = 8;

/// What the statement of one task also carries, beside the task and its
/// relations: what its transaction would otherwise send before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Carried {
    /// The object its change created (the only deferred write still
    /// waiting; rows sent ahead went before): its row's values first (`$1`–`$11`, [`OBJECT_ROWS`]), in a
    /// `WITH` of its own.
    object: bool,
    /// The settings check of a cached start (`bus_expect_settings`, its
    /// version the last parameter), as a condition: the statement is then
    /// the transaction's first, and its only one.
    check: bool,
}

/// The statement that logs one task with its `n` relations (a list of
/// values, no arrays): for a transaction of one task, cheaper to run than
/// [`LOG_TASKS`], which is cheaper from two tasks on.
fn log_task_sql(n: usize, carried: Carried) -> &'static str {
    static SQL: [OnceLock<Vec<String>>; 4] = [const { OnceLock::new() }; 4];
    let build = || -> Vec<String> {
        let (first, object) = match carried.object {
            false => (0, String::new()),
            true => (11, format!("object AS ({}), ", OBJECT_ROWS.one)),
        };
        // The task's own parameter `i` (1–13 its columns, then 3 for each
        // relation, then the connectors to lock, then the settings version).
        let p = |i: usize| format!("${}", first + i);
        (1..=RELATIONS_WITH_TASK)
            .map(|n| {
                let task: Vec<String> = (1..=13).map(p).collect();
                let rows: Vec<String> = (0..n)
                    .map(|i| format!("({}::BIGINT, {}::TEXT, {}::TEXT)", p(14 + 3 * i), p(15 + 3 * i), p(16 + 3 * i)))
                    .collect();
                let check = match carried.check {
                    false => String::new(),
                    true => format!(" AND (SELECT bus_expect_settings(CAST({} AS TEXT)))", p(15 + 3 * n)),
                };
                format!(
                    "WITH {object}task AS (INSERT INTO Integration_Task (TaskIsInbound, TaskType, TaskDataType, \
                     TaskProcessType, TaskSiteName, TaskTitle, TaskObjectType, TaskObjectID, TaskNodeID, \
                     TaskDocumentID, TaskNodeAliasPath, TaskData, TaskTime) \
                     VALUES ({}) RETURNING TaskID) \
                     INSERT INTO Integration_Synchronization (SynchronizationTaskID, SynchronizationIsInbound, \
                     SynchronizationConnectorID, SynchronizationDataType, SynchronizationMatch) \
                     SELECT task.TaskID, {}, r.connector, r.data_type, r.matching FROM task, \
                     (VALUES {}) AS r (connector, data_type, matching) \
                     WHERE (SELECT bus_lock_connectors({}::BIGINT[])){check} \
                     RETURNING SynchronizationTaskID",
                    task.join(", "),
                    p(1),
                    rows.join(", "),
                    p(14 + 3 * n)
                )
            })
            .collect()
    };
    &SQL[usize::from(carried.object) | usize::from(carried.check) << 1].get_or_init(build)[n - 1]
}

/// Every task of a transaction and all their relations in one statement,
/// each column an array (`$1`–`$13` the tasks', `$14`–`$17` the
/// relations': the task's place in the list, the connector, the data type,
/// the match; `$18` the connectors to lock, see [`held_connectors`]). The task IDs are drawn from the column's own sequence in
/// the order of the list (a volatile output is computed after the sort),
/// and come back in that order.
const LOG_TASKS: &str = "WITH t AS (SELECT nextval('integration_task_taskid_seq') AS id, u.* FROM unnest(\
     $1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], \
     $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[], \
     $9::BIGINT[], $10::BIGINT[], $11::TEXT[], $12::TEXT[], \
     $13::TEXT[]) WITH ORDINALITY AS u (inbound, task_type, data_type, process_type, site_name, \
     title, object_type, object_id, node_id, document_id, alias_path, data, time, ord) ORDER BY u.ord), \
     task AS (INSERT INTO Integration_Task (TaskID, TaskIsInbound, TaskType, TaskDataType, TaskProcessType, \
     TaskSiteName, TaskTitle, TaskObjectType, TaskObjectID, TaskNodeID, TaskDocumentID, TaskNodeAliasPath, \
     TaskData, TaskTime) SELECT id, inbound, task_type, data_type, process_type, site_name, title, object_type, \
     object_id, node_id, document_id, alias_path, data, time FROM t ORDER BY ord), \
     relation AS (INSERT INTO Integration_Synchronization (SynchronizationTaskID, SynchronizationIsInbound, \
     SynchronizationConnectorID, SynchronizationDataType, SynchronizationMatch) \
     SELECT t.id, t.inbound, r.connector, r.data_type, r.matching FROM unnest($14::BIGINT[], \
     $15::BIGINT[], $16::TEXT[], $17::TEXT[]) WITH ORDINALITY \
     AS r (task, connector, data_type, matching, n) JOIN t ON t.ord = r.task \
     WHERE (SELECT bus_lock_connectors($18::BIGINT[])) ORDER BY r.n) \
     SELECT id FROM t ORDER BY ord";

/// Integers as one array parameter (`$n::BIGINT[]`), sent in the binary
/// format: nothing for the server to parse.
pub(crate) fn bigint_array(ids: &[i64]) -> Value {
    bigint_array_of(ids.iter().copied().map(Some))
}

/// Integers that may be missing, as one array parameter.
fn bigint_array_of<I: IntoIterator<Item = Option<i64>>>(items: I) -> Value {
    Value::List(items.into_iter().map(|i| i.map_or(Value::Null, Value::Integer)).collect())
}

/// Texts as one array parameter (`$n::TEXT[]`).
fn text_array<'a>(items: impl Iterator<Item = &'a str>) -> Value {
    text_array_of(items.map(Some))
}

/// Texts that may be missing, as one array parameter: sent as they are,
/// none quoted or escaped (a text array literal cost the server about
/// 125 µs to parse for a batch's 42 KB).
fn text_array_of<'a, I: IntoIterator<Item = Option<&'a str>>>(items: I) -> Value {
    Value::List(items.into_iter().map(|t| t.map_or(Value::Null, |t| Value::Text(t.to_owned()))).collect())
}

/// A new object's row with its ID drawn ahead; several of a batch go as one
/// statement, each column an array.
static OBJECT_ROWS: RowInsert = RowInsert {
    one: "INSERT INTO CMS_Object (ObjectID, ObjectType, ObjectGUID, ObjectCodeName, ObjectDisplayName, \
          ObjectSiteName, ObjectParentType, ObjectParentID, ObjectGroupID, ObjectFields, ObjectLastModified) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    many: "INSERT INTO CMS_Object (ObjectID, ObjectType, ObjectGUID, ObjectCodeName, ObjectDisplayName, \
           ObjectSiteName, ObjectParentType, ObjectParentID, ObjectGroupID, ObjectFields, ObjectLastModified) \
           SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], \
           $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], \
           $8::BIGINT[], $9::BIGINT[], $10::TEXT[], \
           $11::TEXT[])",
};

/// The connectors `relations` queue for, for `bus_lock_connectors` (schema
/// v8): each once, in ascending order — the order every writer holds them
/// in.
fn held_connectors<'a>(relations: impl IntoIterator<Item = &'a NewRelation>) -> Value {
    let mut ids: Vec<i64> = relations.into_iter().map(|r| r.connector_id).collect();
    ids.sort_unstable();
    ids.dedup();
    bigint_array(&ids)
}

/// One task with one to eight relations ([`log_task_sql`]), and the
/// `COMMIT` pipelined after it with [`Ending::Commit`].
fn log_one_task(
    tx: &Conn,
    columns: &queue_rows::TaskColumns<'_>,
    relations: &[NewRelation],
    ending: Ending,
    heads: Option<&Value>,
) -> Result<(Vec<i64>, HeadRows)> {
    let matching: Vec<Option<&str>> = relations.iter().map(|r| r.matching.column()).collect();
    let data_types: Vec<&str> = relations.iter().map(|r| r.data_type.name()).collect();
    let mut values = columns.values();
    for ((r, data_type), matching) in relations.iter().zip(&data_types).zip(&matching) {
        values.push(&r.connector_id);
        values.push(data_type);
        values.push(matching);
    }
    let held = held_connectors(relations);
    values.push(&held);
    // The change's new object, if its insert is all that waits, and the
    // settings check of a cached start, if nothing was sent before: in the
    // same statement — with its `COMMIT`, then, the whole transaction (a
    // refused insert is still named by its tag).
    let object = tx.take_lone_row(&OBJECT_ROWS);
    let check = tx.take_first(SETTINGS_CHECK);
    let carried = Carried { object: object.is_some(), check: check.is_some() };
    let all: Vec<&dyn ToValue> = object
        .iter()
        .flat_map(|(row, _)| row.iter().map(|v| v as &dyn ToValue))
        .chain(values)
        .chain(check.iter().flatten().map(|v| v as &dyn ToValue))
        .collect();
    // An error about the object's row (a key taken, a value refused) is
    // its insert's, named by its tag — unless it is already another
    // write's (rows sent ahead of this statement answer first).
    task_ids(tx, (log_task_sql(relations.len(), carried), &all), ending, 1, heads).map_err(|e| match &object {
        Some((_, tag)) if e.table() == Some(OBJECTS) && e.deferred_tag().is_none() && !e.rows_sent_together() => {
            SqlError::Deferred { tag: *tag, source: Box::new(e) }
        }
        _ => e,
    })
}

/// After a task's commit, in its round trip: the connectors of `$1` whose
/// outgoing queue it heads (none of their relations is of an older task),
/// with its relation there and its ID (`currval`: the task ID this
/// session drew last).
const HEADS: &str = "SELECT s.SynchronizationConnectorID, s.SynchronizationID, s.SynchronizationTaskID \
     FROM Integration_Synchronization s \
     WHERE s.SynchronizationConnectorID = ANY ($1::BIGINT[]) AND s.SynchronizationIsInbound = 0 \
     AND s.SynchronizationTaskID = currval('integration_task_taskid_seq') \
     AND NOT EXISTS (SELECT 1 FROM Integration_Synchronization o \
     WHERE o.SynchronizationConnectorID = s.SynchronizationConnectorID AND o.SynchronizationIsInbound = 0 \
     AND o.SynchronizationTaskID < s.SynchronizationTaskID)";

/// The rows of [`HEADS`], if asked and read.
type HeadRows = Option<crate::sql::ValueRows>;

/// Runs the statement that logs `expected` tasks (with the `COMMIT`
/// pipelined after it when `ending` says so, then [`HEADS`] of the
/// connectors `heads`, if given) and reads their IDs.
fn task_ids(
    tx: &Conn,
    statement: (&str, &[&dyn ToValue]),
    ending: Ending,
    expected: usize,
    heads: Option<&Value>,
) -> Result<(Vec<i64>, HeadRows)> {
    let mut calls = vec![statement];
    if ending == Ending::Commit {
        calls.push((COMMIT, &[]));
    }
    let (answers, head_rows) = match heads {
        Some(ask) if ending == Ending::Commit => tx.query_pipelined_then(&calls, (HEADS, &[ask]))?,
        _ => (tx.query_pipelined(&calls)?, None),
    };
    let rows = answers.into_iter().next().unwrap_or_default();
    let mut ids = rows
        .iter()
        .map(|row| match row.first().map(Value::as_ref) {
            Some(ValueRef::Integer(id)) => Ok(id),
            other => Err(SqlError::Column { index: 0, message: format!("a task ID, not {other:?}") }),
        })
        .collect::<Result<Vec<i64>>>()?;
    // The statement of one task answers once per relation, each time
    // with the task's ID.
    ids.dedup();
    if ids.len() != expected {
        return Err(SqlError::Column { index: 0, message: format!("{} task IDs for {expected} tasks", ids.len()) });
    }
    Ok((ids, head_rows))
}

impl Driver for Postgres {
    /// One statement for all the tasks and their relations (one task with
    /// up to eight: [`log_task_sql`]; more: arrays of columns,
    /// [`LOG_TASKS`]) — with the transaction's `COMMIT` pipelined
    /// after it when that is all that follows: one round trip. The IDs are
    /// drawn as it runs, in order, after every write the transaction made
    /// before — so a later change to an object always gets a later task.
    fn log_tasks(&self, tx: &Conn, tasks: &[(NewTask<'_>, &[NewRelation])], ending: Ending) -> Result<Vec<i64>> {
        let columns: Vec<_> = tasks.iter().map(|(task, _)| queue_rows::task_columns(task)).collect();
        if let [(_, relations)] = tasks {
            if (1..=RELATIONS_WITH_TASK).contains(&relations.len()) {
                return log_one_task(tx, &columns[0], relations, ending, None).map(|(ids, _)| ids);
            }
        }
        let texts = |column: for<'c> fn(&'c queue_rows::TaskColumns<'c>) -> Option<&'c str>| {
            text_array_of(columns.iter().map(column))
        };
        let numbers =
            |column: fn(&queue_rows::TaskColumns<'_>) -> Option<i64>| bigint_array_of(columns.iter().map(column));
        let relations = || tasks.iter().enumerate().flat_map(|(i, (_, rs))| rs.iter().map(move |r| (i, r)));
        let values: [Value; 18] = [
            numbers(|c| Some(i64::from(c.direction.inbound()))),
            texts(|c| Some(c.task_type)),
            texts(|c| Some(c.data_type)),
            texts(|c| c.process_type),
            texts(|c| c.site_name),
            texts(|c| Some(c.title)),
            texts(|c| c.object_type),
            numbers(|c| c.object_id),
            numbers(|c| c.node_id),
            numbers(|c| c.document_id),
            texts(|c| c.alias_path),
            texts(|c| Some(c.data)),
            texts(|c| Some(c.time.as_str())),
            bigint_array_of(relations().map(|(i, _)| i64::try_from(i + 1).ok())),
            bigint_array_of(relations().map(|(_, r)| Some(r.connector_id))),
            text_array_of(relations().map(|(_, r)| Some(r.data_type.name()))),
            text_array_of(relations().map(|(_, r)| r.matching.column())),
            held_connectors(relations().map(|(_, r)| r)),
        ];
        let params: Vec<&dyn ToValue> = values.iter().map(|v| v as &dyn ToValue).collect();
        task_ids(tx, (LOG_TASKS, &params), ending, tasks.len(), None).map(|(ids, _)| ids)
    }

    fn queue_heads(&self) -> QueueHeads {
        QueueHeads::AfterCommit
    }

    /// The one-task statement and its `COMMIT` as [`Self::log_tasks`] sends
    /// them, then [`HEADS`] in the same round trip.
    fn log_task_heading(
        &self,
        tx: &Conn,
        (task, relations): (NewTask<'_>, &[NewRelation]),
        ask: &[i64],
    ) -> Result<(i64, Vec<(i64, i64)>)> {
        if ask.is_empty() || !(1..=RELATIONS_WITH_TASK).contains(&relations.len()) {
            let ids = self.log_tasks(tx, &[(task, relations)], Ending::Commit)?;
            return Ok((ids.first().copied().unwrap_or_default(), Vec::new()));
        }
        let columns = queue_rows::task_columns(&task);
        let (ids, rows) = log_one_task(tx, &columns, relations, Ending::Commit, Some(&bigint_array(ask)))?;
        let id = ids.first().copied().unwrap_or_default();
        // Rows of another task (none should come: `currval` is the ID this
        // session drew last, the task's) are no heads.
        let heads = rows
            .unwrap_or_default()
            .iter()
            .filter_map(|row| match row[..] {
                [Value::Integer(connector), Value::Integer(relation), Value::Integer(task)] if task == id => {
                    Some((connector, relation))
                }
                _ => None,
            })
            .collect();
        Ok((id, heads))
    }

    /// Deferred as a row of [`OBJECT_ROWS`]: a batch's creates go as one
    /// statement.
    fn defer_object(&self, conn: &Conn, values: &[&dyn ToValue], id: i64) -> Result<()> {
        conn.defer_row(&OBJECT_ROWS, values, id)
    }

    /// From [`Start::Cached`], when the daemon read the settings before and
    /// has the object IDs: no round trip at all. The settings check
    /// (`bus_expect_settings`, schema v8) is deferred, so it is the first
    /// statement the server runs; the connectors are not held here — the
    /// statement that writes the relations holds theirs
    /// (`bus_lock_connectors`, schema v8) and fails the transaction if one
    /// was deleted.
    ///
    /// Otherwise one statement (sent with the transaction's `BEGIN`): the
    /// settings rows and their version, the live connectors, those held
    /// (`bus_hold_connectors`, schema v8: another daemon, or psql, may
    /// delete a connector at any moment, and a delete now waits for this
    /// commit; edits still go through) — and object IDs drawn
    /// from the column's own sequence: at least [`IDS_AHEAD`], those the
    /// change does not use kept for the next changes.
    fn begin_change(&self, tx: &Conn, ask: &StartAsk<'_>) -> Result<ChangeStart> {
        if ask.start == Start::Cached {
            if let Some((settings, version, object_ids)) = ask.cache.take(ask.creates, ask.registry_version) {
                // The version is the server's two counters (digits and a
                // bar, schema v8): a literal safe to write into the
                // statement, which then goes in the same message as the
                // `BEGIN` (no answer of its own to wait for).
                if version.bytes().all(|b| b.is_ascii_digit() || b == b'|') {
                    let check = format!("SELECT bus_expect_settings('{version}')");
                    tx.defer_first(&check, &[&version], SETTINGS_CHECK)?;
                } else {
                    tx.defer("SELECT bus_expect_settings($1)", &[&version], SETTINGS_CHECK)?;
                }
                return Ok(ChangeStart { settings, present: ask.ids.to_vec(), object_ids });
            }
        }
        let mut object_ids = ask.cache.take_ids(ask.creates);
        let missing = ask.creates - object_ids.len();
        let ids = bigint_array(ask.ids);
        type Row = (Option<String>, Option<String>, Option<i64>, Option<i64>);
        // Three statements, so each keeps a plan of its own: a count as a
        // parameter of `generate_series` has the server plan the statement
        // anew each time, which costs a one-change transaction as much as
        // a round trip (only a batch larger than `IDS_AHEAD` pays it).
        const START: &str = "WITH present AS (SELECT id AS ConnectorID \
             FROM bus_hold_connectors($1::BIGINT[]) AS id) \
             SELECT KeyName, KeyValue, NULL::BIGINT, NULL::BIGINT FROM CMS_SettingsKey \
             UNION ALL SELECT NULL, bus_settings_version(), (SELECT Version FROM Integration_RegistryVersion), NULL \
             UNION ALL SELECT NULL, NULL, ConnectorID, NULL FROM present";
        static AHEAD: OnceLock<String> = OnceLock::new();
        static MANY: OnceLock<String> = OnceLock::new();
        let row = |r: &crate::sql::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
        let rows: Vec<Row> = match missing {
            0 => tx.prepare_cached(START)?.query_map([ids], row)?.collect::<Result<_>>()?,
            n if n <= IDS_AHEAD => tx
                .prepare_cached(AHEAD.get_or_init(|| {
                    format!(
                        "{START} UNION ALL SELECT NULL, NULL, NULL, nextval('cms_object_objectid_seq') \
                         FROM generate_series(1, {IDS_AHEAD})"
                    )
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
                .query_map(params![ids, i64::try_from(2 * n).unwrap_or(i64::MAX)], row)?
                .collect::<Result<_>>()?,
        };
        // The rows: a setting (its key and value), the version (no key: the
        // settings' version, the registry's), a live connector (its ID
        // third), an object ID (fourth).
        let present =
            rows.iter().filter(|(key, value, ..)| key.is_none() && value.is_none()).filter_map(|r| r.2).collect();
        let mut drawn: Vec<i64> = rows.iter().filter_map(|(_, _, _, id)| *id).collect();
        let ahead = drawn.split_off(missing.min(drawn.len()));
        object_ids.extend(drawn);
        let (version, registry) = rows
            .iter()
            .find_map(|(key, value, registry, _)| match (key, value) {
                (None, Some(version)) => Some((version.clone(), *registry)),
                _ => None,
            })
            .ok_or_else(|| SqlError::Column { index: 1, message: "no settings version".into() })?;
        let keys = rows.into_iter().filter_map(|(key, value, _, _)| Some((key?, value?)));
        let settings = settings::from_keys(keys);
        // Kept only for connectors loaded from the registry as it is.
        let loaded = registry.filter(|r| *r == ask.registry_version);
        ask.cache.keep(settings, version, loaded, ahead);
        Ok(ChangeStart { settings, present, object_ids })
    }

    /// The deferred settings check failed (`BU001`), or the statement
    /// writing relations found a connector deleted (`BU002`).
    fn start_was_stale(&self, error: &SqlError) -> bool {
        matches!(error.sqlstate(), Some(SETTINGS_CHANGED | CONNECTOR_GONE))
    }

    fn reruns(&self) -> Reruns {
        Reruns::Possible
    }

    fn ids_lost(&self, error: &SqlError) -> bool {
        matches!(error.kind(), ErrorKind::Disconnected | ErrorKind::NoAnswer) || error.constraint() == Some(OBJECT_KEY)
    }

    fn hold_connector(&self, tx: &Conn, id: i64) -> Result<bool> {
        tx.prepare_cached("SELECT 1 FROM bus_hold_connectors(ARRAY[CAST($1 AS BIGINT)])")?.exists([id])
    }

    /// The connector is held exclusively before counting (the lock its
    /// delete takes anyway, schema v8), so no change queues for it between
    /// the count and the delete (a change holds it first: at its start, or
    /// with the statement that writes its relations — see
    /// [`Self::begin_change`]). Its row first, then the lock, as a delete's
    /// trigger takes them (a holder never waits for the row): a delete by
    /// another client (psql) at the same moment waits for this one instead
    /// of each waiting for the other.
    fn lock_connector_for_delete(&self, tx: &Conn, name: &str) -> Result<()> {
        tx.execute(
            "SELECT pg_advisory_xact_lock(1651864419, bus_connector_key(c.ConnectorID))::TEXT \
             FROM (SELECT ConnectorID FROM Integration_Connector WHERE ConnectorName = $1 FOR UPDATE) AS c",
            [name],
        )
        .map(drop)
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
            "SELECT r.ord, o.ObjectID FROM unnest($1::TEXT[], $2::TEXT[]) \
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
