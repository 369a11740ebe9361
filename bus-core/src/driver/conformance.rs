//! The drivers' conformance suite: one set of checks every storage driver
//! must pass, run by the integration tests (`drivers::`) against an
//! embedded SQLite file and a PostgreSQL database alike (River's
//! `riverdrivertest` is the model). Each check says which operation of
//! [`super::Driver`] it exercises; a failure panics with what differed.

use super::{of, ChangeStart, Ending, QueueHeads, Start, StartAsk, StartCache};
use crate::change::{self, Change};
use crate::db::Database;
use crate::grid::{GridQuery, Order};
use crate::object_types::ObjectTypes;
use crate::queue::{Direction, Matching, NewRelation, NewTask};
use crate::settings::{self, SettingsPatch};
use crate::sql::{params, Conn, SqlError};
use crate::store::objects::ObjectInput;
use crate::task_grid::{self, TaskSort};
use connector_abi::{CmsObject, TaskDataType, TaskType};
use serde_json::json;

/// Runs every check against `db`, a new empty bus database.
pub fn run(db: &Database) {
    let names: Vec<String> = (0..11).map(|i| format!("C{i}")).collect();
    let ids = connectors(db, &names.iter().map(String::as_str).collect::<Vec<_>>());
    log_task_stores_the_task_and_every_relation(db, &ids);
    log_tasks_ending_with_the_commit_commits_all_or_nothing(db, &ids);
    a_task_committed_with_its_statement_says_which_queues_it_heads(db);
    a_commit_never_sent_leaves_no_transaction_open(db);
    deferred_writes_are_seen_committed_or_rolled_back_and_fail_by_their_tag(db);
    begin_change_reads_the_settings_and_the_connectors_still_present(db, &ids);
    a_cached_start_never_goes_on_with_older_settings(db, &ids);
    a_cached_start_queues_for_no_deleted_connector(db, &ids);
    a_held_connector_outlives_no_delete_and_a_delete_takes_its_relations(db, &ids);
    a_holder_writes_the_connectors_state_while_its_delete_waits(db, ids[7]);
    holding_a_connector_needs_read_committed(db, ids[8]);
    guid_taken_tells_the_guid_from_the_code_name(db);
    objects_referencing_finds_every_reference_in_order(db);
    like_ignoring_case_finds_any_case(db, ids[0]);
    not_delivered_passes_over_recorded_deliveries(db, ids[0]);
    lock_connector_for_delete_takes_a_missing_name(db);
    // (Last: its IDs are far above those the sequence hands out.)
    deferred_objects_of_a_batch_are_written_together_and_a_refused_one_is_named(db, ids[0]);
}

fn connectors(db: &Database, names: &[&str]) -> Vec<i64> {
    let conn = db.connect().expect("a connection");
    names
        .iter()
        .map(|name| {
            conn.query_row(
                "INSERT INTO Integration_Connector (ConnectorName, ConnectorDisplayName, ConnectorAssemblyName, \
                 ConnectorClassName, ConnectorEnabled, ConnectorConfig) VALUES ($1, $1, 'x', 'X', 1, '') \
                 RETURNING ConnectorID",
                [name],
                |r| r.get(0),
            )
            .expect("a connector row")
        })
        .collect()
}

fn create(tx: &Conn, object_type: &str, code_name: &str, fields: serde_json::Value) -> Result<i64, String> {
    let object = ObjectInput {
        // A binding's code name is derived from its keys.
        code_name: (!code_name.is_empty()).then(|| code_name.into()),
        fields: fields.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    };
    let applied =
        change::apply(tx, &ObjectTypes::defaults(), Change::CreateObject { object_type: object_type.into(), object })
            .map_err(|e| e.to_string())?;
    match applied.object {
        CmsObject::Object(o) => Ok(o.id),
        CmsObject::Document(_) => unreachable!("an object was created"),
    }
}

/// A user's object and an outgoing CreateObject task about it.
fn user_task<'a>(object: &'a CmsObject, title: &'a str, data_type: TaskDataType) -> NewTask<'a> {
    NewTask {
        direction: Direction::Outgoing,
        task_type: TaskType::CreateObject,
        data_type,
        process_type: None,
        site_name: None,
        title,
        object,
        data: "{}",
    }
}

/// A user's object, as a task carries it.
fn user(id: i64, code_name: &str) -> CmsObject {
    CmsObject::Object(connector_abi::ObjectData {
        object_type: "cms.user".into(),
        id,
        code_name: code_name.into(),
        ..Default::default()
    })
}

/// `log_tasks`: each task row once, in order, a relation per connector
/// (however many there are), each with its data type and matching; a
/// text's quotes, backslashes, braces and commas, and missing values, as given.
fn log_task_stores_the_task_and_every_relation(db: &Database, ids: &[i64]) {
    let mut conn = db.connect().unwrap();
    let tx = conn.transaction().unwrap();
    let object = user(7, "ann");
    let task = user_task(&object, "Create User 'ann'", TaskDataType::Snapshot);
    // What a driver that sends values inside literals must escape.
    let tricky = r#"Create User "ann" \ {a,b}, NULL, ä"#;
    let second_task = user_task(&object, tricky, TaskDataType::Snapshot);
    // Eleven relations (a statement that took a fixed number would need more than one).
    let relations: Vec<NewRelation> = (0..11)
        .map(|i| NewRelation {
            connector_id: ids[i],
            data_type: if i % 2 == 0 { TaskDataType::Simple } else { TaskDataType::Snapshot },
            matching: if i == 10 { Matching::Ask } else { Matching::Decided },
        })
        .collect();
    let driver = of(&tx);
    let ids = driver
        .log_tasks(&tx, &[(task, &relations[..1]), (second_task, &relations)], Ending::Open)
        .expect("two tasks at once");
    let [first, second] = ids[..] else { panic!("two IDs: {ids:?}") };
    assert!(second > first, "task IDs grow in the order given: {first}, {second}");
    assert!(driver.log_tasks(&tx, &[], Ending::Open).expect("no task").is_empty());
    // One task alone (PostgreSQL logs it with a statement of its own shape).
    let third = driver.log_tasks(&tx, &[(task, &relations[3..6])], Ending::Open).expect("one task");
    let [third] = third[..] else { panic!("one ID: {third:?}") };
    assert!(third > second, "a later task gets a later ID: {second}, {third}");
    let alone: Vec<i64> = tx
        .prepare("SELECT SynchronizationConnectorID FROM Integration_Synchronization WHERE SynchronizationTaskID = $1 ORDER BY SynchronizationID")
        .unwrap()
        .query_map([third], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let given: Vec<i64> = relations[3..6].iter().map(|r| r.connector_id).collect();
    assert_eq!(alone, given, "the lone task's relations");
    let rows: Vec<(i64, i64, String, Option<String>)> = tx
        .prepare(
            "SELECT SynchronizationTaskID, SynchronizationConnectorID, SynchronizationDataType, SynchronizationMatch \
             FROM Integration_Synchronization ORDER BY SynchronizationID",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 15, "one relation, then eleven, then three: {rows:?}");
    let rows = &rows[..12];
    assert_eq!(rows[0].0, first, "the first task's relation names it: {rows:?}");
    assert!(rows[1..].iter().all(|r| r.0 == second), "every relation names its task: {rows:?}");
    let expected: Vec<(i64, String, Option<String>)> = relations
        .iter()
        .map(|r| (r.connector_id, r.data_type.name().to_owned(), (r.matching == Matching::Ask).then(|| "Ask".into())))
        .collect();
    let stored: Vec<(i64, String, Option<String>)> =
        rows[1..].iter().map(|r| (r.1, r.2.clone(), r.3.clone())).collect();
    assert_eq!(stored, expected, "each relation as given");
    let titles: Vec<String> = tx
        .prepare("SELECT TaskTitle FROM Integration_Task WHERE TaskID IN ($1, $2) ORDER BY TaskID")
        .unwrap()
        .query_map([first, second], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(titles, ["Create User 'ann'", tricky], "each title as given, in order");
    // Titles that are the text NULL and empty, on tasks with no relation.
    let null_task = user_task(&object, "NULL", TaskDataType::Simple);
    let empty_task = user_task(&object, "", TaskDataType::Simple);
    let more = driver.log_tasks(&tx, &[(null_task, &[]), (empty_task, &[])], Ending::Open).expect("two more tasks");
    let titles: Vec<String> = tx
        .prepare("SELECT TaskTitle FROM Integration_Task WHERE TaskID IN ($1, $2) ORDER BY TaskID")
        .unwrap()
        .query_map([more[0], more[1]], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(titles, ["NULL", ""], "the text NULL and an empty text stay texts");
    let (site, node): (Option<String>, Option<i64>) = tx
        .query_row("SELECT TaskSiteName, TaskNodeID FROM Integration_Task WHERE TaskID = $1", [second], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((site, node), (None, None), "a missing value stays missing");
    tx.commit().unwrap();
}

/// `log_tasks` with [`Ending::Commit`]: after the caller's commit (which
/// PostgreSQL made already) every task is there for another connection; a
/// task that cannot be written leaves nothing of its transaction, and the
/// connection takes the next one.
fn log_tasks_ending_with_the_commit_commits_all_or_nothing(db: &Database, ids: &[i64]) {
    let object = user(8, "bob");
    let task = user_task(&object, "Create User 'bob'", TaskDataType::Simple);
    let relation =
        |connector_id| NewRelation { connector_id, data_type: TaskDataType::Simple, matching: Matching::Decided };
    let titled = |conn: &Conn| -> i64 {
        conn.query_row("SELECT COUNT(*) FROM Integration_Task WHERE TaskTitle = $1", ["Create User 'bob'"], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let mut conn = db.connect().unwrap();
    let other = db.connect().unwrap();
    let before = titled(&other);
    {
        let tx = conn.transaction().unwrap();
        let good = [relation(ids[0])];
        let ids = of(&tx).log_tasks(&tx, &[(task, &good[..]), (task, &good[..])], Ending::Commit).unwrap();
        assert_eq!(ids.len(), 2);
        tx.commit().expect("the caller's commit succeeds, whoever sent it");
    }
    assert_eq!(titled(&other), before + 2, "both tasks are committed");
    {
        let tx = conn.transaction().unwrap();
        let good = [relation(ids[0])];
        let dangling = [relation(i64::MAX)];
        let failed = of(&tx).log_tasks(&tx, &[(task, &good[..]), (task, &dangling[..])], Ending::Commit);
        assert!(failed.is_err(), "a relation to no connector is refused");
        if tx.dialect() == crate::sql::Dialect::Postgres {
            // The pipelined COMMIT rolled back: the caller's commit says so.
            assert!(tx.commit().is_err(), "a rolled-back transaction does not commit");
        } else {
            drop(tx);
        }
    }
    assert_eq!(titled(&other), before + 2, "nothing of the failed transaction is kept");
    let tx = conn.transaction().unwrap();
    assert_eq!(titled(&tx), before + 2, "the connection takes the next transaction");
    tx.commit().unwrap();
}

/// `log_task_heading`: on PostgreSQL ([`QueueHeads::AfterCommit`]) the
/// read after the commit names the queues asked about that the task heads
/// — not one with an older task, not one not asked about — each with the
/// task's relation; on SQLite none (the outbox looks during the
/// transaction). A refused task names none: its error is the answer.
fn a_task_committed_with_its_statement_says_which_queues_it_heads(db: &Database) {
    let ids = connectors(db, &["Head0", "Head1", "Head2"]);
    let object = user(9, "cy");
    let task = user_task(&object, "Create User 'cy'", TaskDataType::Simple);
    let relation =
        |connector_id| NewRelation { connector_id, data_type: TaskDataType::Simple, matching: Matching::Decided };
    let mut conn = db.connect().unwrap();
    let tx = conn.transaction().unwrap();
    of(&tx).log_tasks(&tx, &[(task, &[relation(ids[0])])], Ending::Commit).expect("an older task for Head0");
    tx.commit().unwrap();
    let tx = conn.transaction().unwrap();
    let all = [relation(ids[0]), relation(ids[1]), relation(ids[2])];
    let after_commit = of(&tx).queue_heads() == QueueHeads::AfterCommit;
    let (id, heads) = of(&tx).log_task_heading(&tx, (task, &all), &[ids[0], ids[1]]).expect("the task is logged");
    tx.commit().expect("the caller's commit succeeds, whoever sent it");
    let queued: i64 = conn
        .query_row(
            "SELECT SynchronizationID FROM Integration_Synchronization \
             WHERE SynchronizationTaskID = $1 AND SynchronizationConnectorID = $2",
            params![id, ids[1]],
            |r| r.get(0),
        )
        .expect("the task is committed with its relations");
    if after_commit {
        assert_eq!(heads, vec![(ids[1], queued)], "Head1 only: Head0 has an older task, Head2 was not asked about");
    } else {
        assert!(heads.is_empty(), "{heads:?}");
    }
    let tx = conn.transaction().unwrap();
    let dangling = [relation(i64::MAX)];
    assert!(of(&tx).log_task_heading(&tx, (task, &dangling), &[i64::MAX]).is_err(), "a relation to no connector");
    if after_commit {
        assert!(tx.commit().is_err(), "a rolled-back transaction does not commit");
    }
}

/// `Conn::query_pipelined` ending with the `COMMIT`: a statement the
/// client cannot send (a value it cannot bind) fails the transaction, and
/// nothing of it is kept — the connection's next transaction does not
/// carry it on (on PostgreSQL the `COMMIT` was never sent either, after a
/// `BEGIN` that was).
fn a_commit_never_sent_leaves_no_transaction_open(db: &Database) {
    let code = |conn: &Conn, code: &str| -> i64 {
        conn.query_row("SELECT COUNT(*) FROM CMS_EventLog WHERE EventCode = $1", [code], |r| r.get(0)).unwrap()
    };
    let insert = "INSERT INTO CMS_EventLog (EventType, Source, EventCode) VALUES ('I', 'conformance', $1)";
    let mut conn = db.connect().unwrap();
    {
        let tx = conn.transaction().unwrap();
        tx.execute(insert, ["UNSENT"]).unwrap();
        let list = crate::sql::Value::List(vec![crate::sql::Value::Integer(1)]);
        let failed = tx.query_pipelined(&[("SELECT $1::BIGINT", &[&list]), ("COMMIT", &[])]);
        assert!(failed.is_err(), "a list is no integer: {failed:?}");
    }
    let tx = conn.transaction().unwrap();
    tx.execute(insert, ["AFTER"]).unwrap();
    tx.commit().expect("the next transaction commits");
    let other = db.connect().unwrap();
    assert_eq!(code(&other, "AFTER"), 1, "the next transaction is kept");
    assert_eq!(code(&other, "UNSENT"), 0, "nothing of the failed transaction is kept");
}

/// `Conn::defer` (what a create with an ID drawn ahead uses): a later read
/// sees the write, a `COMMIT` right after it keeps it, a `ROLLBACK` drops
/// it, and a write that fails says so by its tag — at once on SQLite, with
/// the next statement on PostgreSQL.
fn deferred_writes_are_seen_committed_or_rolled_back_and_fail_by_their_tag(db: &Database) {
    const INSERT: &str = "INSERT INTO CMS_SettingsKey (KeyName, KeyValue) VALUES ($1, $2)";
    let count = |conn: &Conn, name: &str| -> i64 {
        conn.query_row("SELECT COUNT(*) FROM CMS_SettingsKey WHERE KeyName = $1", [name], |r| r.get(0)).unwrap()
    };
    let mut conn = db.connect().unwrap();
    let other = db.connect().unwrap();
    {
        let tx = conn.transaction().unwrap();
        tx.defer(INSERT, &[&"deferred.seen", &"True"], 1).unwrap();
        assert_eq!(count(&tx, "deferred.seen"), 1, "a read after the write sees it");
        tx.defer(INSERT, &[&"deferred.updated", &"True"], 5).unwrap();
        let updated = tx
            .execute("UPDATE CMS_SettingsKey SET KeyValue = 'False' WHERE KeyName = $1", ["deferred.updated"])
            .unwrap();
        assert_eq!(updated, 1, "a write after it finds it too");
        tx.defer(INSERT, &[&"deferred.kept", &"True"], 2).unwrap();
        tx.commit().expect("the commit takes the write along");
    }
    assert_eq!(count(&other, "deferred.kept"), 1, "committed with nothing after it");
    {
        let tx = conn.transaction().unwrap();
        tx.defer(INSERT, &[&"deferred.dropped", &"True"], 3).unwrap();
        tx.rollback().unwrap();
    }
    assert_eq!(count(&other, "deferred.dropped"), 0, "rolled back");
    {
        let tx = conn.transaction().unwrap();
        let failed = match tx.defer(INSERT, &[&"deferred.kept", &"False"], 4) {
            Err(e) => e,
            Ok(()) => tx.query_row("SELECT 1", [], |r| r.get::<i64>(0)).expect_err("the duplicate key fails"),
        };
        assert_eq!(failed.kind(), crate::sql::ErrorKind::Constraint, "{failed}");
        if tx.dialect() == crate::sql::Dialect::Postgres {
            assert_eq!(failed.deferred_tag(), Some(4), "named by its tag: {failed:?}");
        }
    }
    let tx = conn.transaction().unwrap();
    assert_eq!(count(&tx, "deferred.kept"), 1, "the connection takes the next transaction");
    tx.commit().unwrap();
}

/// Defers the insert of object `id` (GUID `guid`, code name `code`) with
/// [`super::Driver::defer_object`]; the error, if it failed at once.
fn defer_object(tx: &Conn, id: i64, guid: &str, code: &str, display: Option<&str>) -> Result<(), SqlError> {
    let fields = r#"{"bio":"a \"quote\", {braces}, NULL, ä"}"#;
    let values: [&dyn crate::sql::ToValue; 11] = [
        &id,
        &"cms.user",
        &guid,
        &code,
        &display,
        &None::<String>,
        &None::<String>,
        &None::<i64>,
        &None::<i64>,
        &fields,
        &"2026-12-04T00:00:00.000Z",
    ];
    of(tx).defer_object(tx, &values, id)
}

/// `defer_object`: a batch's inserts are all written, with every value as
/// given; one refused is said at once (SQLite), or with the next statement
/// (PostgreSQL): for inserts sent together as "rows sent together", and —
/// sent one by one for the rest of the transaction — by its tag; the next
/// transaction sends them together again.
fn deferred_objects_of_a_batch_are_written_together_and_a_refused_one_is_named(db: &Database, connector: i64) {
    let mut conn = db.connect().unwrap();
    let postgres = conn.dialect() == crate::sql::Dialect::Postgres;
    let guid = |n: i64| format!("00000000-0000-4000-8000-{n:012}");
    let tx = conn.transaction().unwrap();
    for id in 9_000_001..=9_000_003 {
        let display = (id != 9_000_002).then(|| format!("Batch {id}"));
        defer_object(&tx, id, &guid(id), &format!("batch{id}"), display.as_deref()).expect("deferred");
    }
    tx.commit().expect("the batch's inserts committed");
    let rows: Vec<(i64, String, Option<String>, String)> = conn
        .prepare("SELECT ObjectID, ObjectGUID, ObjectDisplayName, ObjectFields FROM CMS_Object WHERE ObjectID >= 9000001 ORDER BY ObjectID")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[1], (9_000_002, guid(9_000_002), None, r#"{"bio":"a \"quote\", {braces}, NULL, ä"}"#.to_owned()));
    assert_eq!(rows[2].2.as_deref(), Some("Batch 9000003"));
    // The second of three takes a GUID in use.
    let refused = |tx: &Conn| -> SqlError {
        let attempts = [(9_000_011, guid(9_000_011)), (9_000_012, guid(9_000_001)), (9_000_013, guid(9_000_013))];
        for (id, g) in attempts {
            if let Err(e) = defer_object(tx, id, &g, &format!("batch{id}"), None) {
                return e;
            }
        }
        tx.query_row("SELECT 1", [], |r| r.get::<i64>(0)).expect_err("the GUID in use is refused")
    };
    for one_by_one in [false, true, false] {
        let tx = conn.transaction().unwrap();
        if one_by_one {
            tx.send_rows_one_by_one();
        }
        let e = refused(&tx);
        assert_eq!(e.kind(), crate::sql::ErrorKind::Constraint, "{e}");
        match (postgres, one_by_one) {
            (true, false) => assert!(e.rows_sent_together() && e.deferred_tag().is_none(), "{e:?}"),
            (true, true) => assert_eq!(e.deferred_tag(), Some(9_000_012), "named by its tag: {e:?}"),
            (false, _) => assert!(!e.rows_sent_together() && e.deferred_tag().is_none(), "at once: {e:?}"),
        }
    }
    let left: i64 =
        conn.query_row("SELECT COUNT(*) FROM CMS_Object WHERE ObjectID > 9000003", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0, "nothing of the refused batches");
    // Batches longer than PostgreSQL keeps waiting: their first rows are
    // sent ahead, and answer with a later statement — or the `COMMIT`,
    // which must not then end as a silent rollback.
    let ahead = crate::sql::SEND_AHEAD;
    let batch = |tx: &Conn, first: i64, n: usize, refused: Option<usize>| -> Result<(), SqlError> {
        for (i, id) in (first..).take(n).enumerate() {
            let g = if Some(i) == refused { guid(9_000_001) } else { guid(id) };
            defer_object(tx, id, &g, &format!("batch{id}"), None)?;
        }
        Ok(())
    };
    let count = |conn: &Conn, from: i64| -> i64 {
        conn.query_row("SELECT COUNT(*) FROM CMS_Object WHERE ObjectID >= $1 AND ObjectID < $1 + 1000", [from], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let long = 2 * ahead + 3;
    let tx = conn.transaction().unwrap();
    batch(&tx, 9_001_000, long, None).expect("deferred");
    tx.commit().expect("a long batch committed");
    assert_eq!(count(&conn, 9_001_000), i64::try_from(long).unwrap(), "every row of a long batch");
    for (n, refused, ending) in [(long, 3, "SELECT"), (ahead, 3, "COMMIT"), (long, ahead + 1, "COMMIT")] {
        for one_by_one in [false, true] {
            let e = {
                let tx = conn.transaction().unwrap();
                if one_by_one {
                    tx.send_rows_one_by_one();
                }
                match batch(&tx, 9_002_000, n, Some(refused)) {
                    Err(e) => e,
                    Ok(()) if ending == "SELECT" => {
                        tx.query_row("SELECT 1", [], |r| r.get::<i64>(0)).expect_err("the GUID in use is refused")
                    }
                    Ok(()) => tx.commit().expect_err("a batch with a refused row is not committed"),
                }
            };
            let case = format!("{n} rows, the {refused}th refused, then {ending}, one by one: {one_by_one}");
            assert_eq!(e.kind(), crate::sql::ErrorKind::Constraint, "{case}: {e}");
            match (postgres, one_by_one) {
                (true, false) => assert!(e.rows_sent_together(), "{case}: {e:?}"),
                (true, true) => {
                    assert_eq!(e.deferred_tag(), Some(9_002_000 + i64::try_from(refused).unwrap()), "{case}: {e:?}")
                }
                (false, _) => assert!(!e.rows_sent_together() && e.deferred_tag().is_none(), "{case}: {e:?}"),
            }
            assert_eq!(count(&conn, 9_002_000), 0, "{case}: nothing of the refused batch");
        }
    }
    // Rows sent ahead and rolled back: none written, and the connection
    // goes on (their answers are not mistaken for the next statements').
    let tx = conn.transaction().unwrap();
    batch(&tx, 9_003_000, ahead + 1, None).expect("deferred");
    tx.rollback().expect("rolled back");
    assert_eq!(count(&conn, 9_003_000), 0, "nothing of a rolled-back batch");
    let tx = conn.transaction().unwrap();
    batch(&tx, 9_003_000, ahead, None).expect("deferred");
    assert_eq!(count(&tx, 9_003_000), i64::try_from(ahead).unwrap(), "its own rows, seen in the transaction");
    tx.commit().expect("the next batch committed");
    assert_eq!(count(&conn, 9_003_000), i64::try_from(ahead).unwrap());
    // A lone insert followed by one task (PostgreSQL sends it within the
    // task's statement): both written — or, its GUID taken, named by its tag.
    let relation =
        [NewRelation { connector_id: connector, data_type: TaskDataType::Simple, matching: Matching::Decided }];
    for (id, g) in [(9_000_021, guid(9_000_021)), (9_000_022, guid(9_000_001))] {
        let tx = conn.transaction().unwrap();
        let object = user(id, "lone");
        let task = user_task(&object, "Create User 'lone'", TaskDataType::Simple);
        let logged = defer_object(&tx, id, &g, &format!("lone{id}"), None)
            .and_then(|()| of(&tx).log_tasks(&tx, &[(task, &relation)], Ending::Commit))
            .and_then(|ids| tx.commit().map(|()| ids));
        match logged {
            Ok(ids) => {
                assert_eq!(id, 9_000_021, "a taken GUID was written");
                assert_eq!(ids.len(), 1);
                let written: i64 =
                    conn.query_row("SELECT COUNT(*) FROM CMS_Object WHERE ObjectID = $1", [id], |r| r.get(0)).unwrap();
                assert_eq!(written, 1, "the object with its task");
            }
            Err(e) => {
                assert_eq!(id, 9_000_022, "refused: {e}");
                assert_eq!(e.kind(), crate::sql::ErrorKind::Constraint, "{e}");
                assert!(!postgres || e.deferred_tag() == Some(id), "named by its tag: {e:?}");
            }
        }
    }
    // One row more than go ahead, the 4th refused, and one task: the last
    // row goes inside the task's statement, and the refusal, read first,
    // is still the rows' sent ahead — not that last row's.
    let tx = conn.transaction().unwrap();
    let object = user(9_005_999, "last");
    let task = user_task(&object, "Create User 'last'", TaskDataType::Simple);
    let e = batch(&tx, 9_005_000, ahead + 1, Some(3))
        .and_then(|()| of(&tx).log_tasks(&tx, &[(task, &relation)], Ending::Commit).map(drop))
        .expect_err("the GUID in use is refused");
    assert_eq!(e.kind(), crate::sql::ErrorKind::Constraint, "{e}");
    assert!(e.deferred_tag().is_none(), "not named by the last row's tag: {e:?}");
    assert!(!postgres || e.rows_sent_together(), "{e:?}");
    drop(tx);
    assert_eq!(count(&conn, 9_005_000), 0, "nothing of the refused batch");
}

/// `hold_connector`: a deleted connector is not held; a held one is not
/// deleted until the holder's commit (PostgreSQL; SQLite's write lock
/// holds it); and a connector deleted with plain SQL takes its relations
/// (and their sync log) along, the other connectors' stay.
fn a_held_connector_outlives_no_delete_and_a_delete_takes_its_relations(db: &Database, ids: &[i64]) {
    let (gone, kept) = (ids[5], ids[6]);
    let mut conn = db.connect().unwrap();
    let other = db.connect().unwrap();
    let relations_of = |c: &Conn, connector: i64| -> i64 {
        c.query_row(
            "SELECT COUNT(*) FROM Integration_Synchronization WHERE SynchronizationConnectorID = $1",
            [connector],
            |r| r.get(0),
        )
        .unwrap()
    };
    let tx = conn.transaction().unwrap();
    let object = user(9, "cid");
    let task = user_task(&object, "Create User 'cid'", TaskDataType::Simple);
    let relations: Vec<NewRelation> = [gone, kept]
        .iter()
        .map(|&connector_id| NewRelation { connector_id, data_type: TaskDataType::Simple, matching: Matching::Decided })
        .collect();
    of(&tx).log_tasks(&tx, &[(task, &relations)], Ending::Open).unwrap();
    tx.execute(
        "INSERT INTO Integration_SyncLog (SyncLogSynchronizationID, SyncLogTime, SyncLogErrorMessage) \
         SELECT SynchronizationID, '2026-12-04T00:00:00.000Z', 'down' FROM Integration_Synchronization \
         WHERE SynchronizationConnectorID = $1",
        [gone],
    )
    .unwrap();
    assert!(of(&tx).hold_connector(&tx, gone).unwrap(), "a registered connector is held");
    if tx.dialect() == crate::sql::Dialect::Postgres {
        other.execute_batch("SET lock_timeout = '200ms'").unwrap();
        let refused = other.execute("DELETE FROM Integration_Connector WHERE ConnectorID = $1", [gone]);
        assert!(refused.is_err(), "a held connector was deleted");
        other.execute_batch("SET lock_timeout = 0").unwrap();
    }
    tx.commit().unwrap();
    let (gone_before, kept_before) = (relations_of(&other, gone), relations_of(&other, kept));
    assert!(gone_before > 0 && kept_before > 0, "{gone_before} {kept_before}");
    other.execute("DELETE FROM Integration_Connector WHERE ConnectorID = $1", [gone]).unwrap();
    assert_eq!(relations_of(&other, gone), 0, "the deleted connector's relations go with it");
    assert_eq!(relations_of(&other, kept), kept_before, "the others' stay");
    let log: i64 = other
        .query_row("SELECT COUNT(*) FROM Integration_SyncLog WHERE SyncLogErrorMessage = 'down'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(log, 0, "their sync log goes too");
    let tx = conn.transaction().unwrap();
    assert!(!of(&tx).hold_connector(&tx, gone).unwrap(), "a deleted connector is not held");
}

/// `hold_connector` on PostgreSQL, with a delete (plain SQL) waiting for
/// the holder: the holder still writes the connector's state — as a
/// delivery does while it holds its connector — without waiting for the
/// delete, which waits for it (the two would wait for each other, and the
/// server fail one, if the write locked the connector's row); once the
/// holder commits, the delete goes through and takes the state along.
fn a_holder_writes_the_connectors_state_while_its_delete_waits(db: &Database, connector: i64) {
    let mut conn = db.connect().unwrap();
    if conn.dialect() != crate::sql::Dialect::Postgres {
        return;
    }
    let (deleter, watcher) = (db.connect().unwrap(), db.connect().unwrap());
    let tx = conn.transaction().unwrap();
    assert!(of(&tx).hold_connector(&tx, connector).unwrap(), "a registered connector is held");
    std::thread::scope(|scope| {
        let delete = scope
            .spawn(move || deleter.execute("DELETE FROM Integration_Connector WHERE ConnectorID = $1", [connector]));
        // Until the delete waits for a lock (bounded: 10 s).
        let waiting = (0..1000).any(|_| {
            let n: i64 = watcher
                .query_row(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM Integration_Connector%'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            n > 0 || {
                std::thread::sleep(std::time::Duration::from_millis(10));
                false
            }
        });
        assert!(waiting, "the delete waits for the holder");
        let writes = vec![("cursor".to_owned(), Some("42".to_owned()))];
        crate::state_store::apply(&tx, connector, &writes).expect("the holder writes the state");
        tx.commit().expect("the holder commits");
        assert_eq!(delete.join().unwrap().expect("the delete goes through"), 1);
    });
    let state: i64 = watcher
        .query_row("SELECT COUNT(*) FROM Integration_ConnectorState WHERE StateConnectorID = $1", [connector], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(state, 0, "the deleted connector's state goes with it");
}

/// `hold_connector` on PostgreSQL refuses, with a clear error, a
/// transaction at another level than READ COMMITTED: its look at the
/// connector after the lock would read the transaction's first snapshot
/// and miss a delete committed meanwhile. A bus session is at READ
/// COMMITTED whatever the database defaults to.
fn holding_a_connector_needs_read_committed(db: &Database, connector: i64) {
    let mut conn = db.connect().unwrap();
    if conn.dialect() != crate::sql::Dialect::Postgres {
        return;
    }
    let default_to = |level: &str| {
        conn.execute_batch(&format!(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L', \
             current_database(), '{level}'); END $$"
        ))
        .unwrap();
    };
    default_to("repeatable read");
    let session = db.open_connection().unwrap();
    let level: String = session.query_row("SHOW transaction_isolation", [], |r| r.get(0)).unwrap();
    default_to("read committed");
    assert_eq!(level, "read committed", "a bus session on a database that defaults to REPEATABLE READ");
    let tx = conn.transaction().unwrap();
    tx.execute_batch("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").unwrap();
    let refused = of(&tx).hold_connector(&tx, connector).expect_err("held at REPEATABLE READ");
    assert_eq!(refused.sqlstate(), Some("BU003"), "{refused}");
    assert!(refused.to_string().contains("needs READ COMMITTED transactions here, not REPEATABLE READ"), "{refused}");
}

/// `begin_change`: the settings as committed, and only the connectors that
/// still exist.
fn begin_change_reads_the_settings_and_the_connectors_still_present(db: &Database, ids: &[i64]) {
    let mut conn = db.connect().unwrap();
    settings::update(&mut conn, &SettingsPatch { process_outgoing: Some(false), ..Default::default() }).unwrap();
    conn.execute("DELETE FROM Integration_Connector WHERE ConnectorID = $1", [ids[2]]).unwrap();
    let tx = conn.transaction().unwrap();
    let cache = StartCache::default();
    let start = begin(&tx, &ids[..3], 3, &cache, Start::Fresh).expect("the start of a change");
    assert!(!start.settings.process_outgoing && start.settings.log_outgoing, "{:?}", start.settings);
    assert_eq!(start.present, ids[..2], "the deleted connector is not present");
    // Object IDs for three creates on PostgreSQL (none on SQLite, where an
    // insert runs at once), each once, none taken yet.
    let postgres = tx.dialect() == crate::sql::Dialect::Postgres;
    let highest: Option<i64> = tx.query_row("SELECT MAX(ObjectID) FROM CMS_Object", [], |r| r.get(0)).unwrap();
    for (creates, start) in [(3, start.clone()), (1, begin(&tx, &ids[..1], 1, &cache, Start::Fresh).unwrap())] {
        let mut drawn = start.object_ids.clone();
        assert_eq!(drawn.len(), if postgres { creates } else { 0 }, "{drawn:?}");
        drawn.sort_unstable();
        drawn.dedup();
        assert_eq!(drawn.len(), start.object_ids.len(), "each ID once: {:?}", start.object_ids);
        assert!(drawn.iter().all(|id| Some(*id) > highest), "none taken: {drawn:?} after {highest:?}");
    }
    let none = begin(&tx, &[], 0, &cache, Start::Fresh).expect("no connectors");
    assert!(none.present.is_empty() && none.object_ids.is_empty());
    drop(tx);
    settings::update(&mut conn, &SettingsPatch { process_outgoing: Some(true), ..Default::default() }).unwrap();
}

/// `begin_change` of a change whose connectors were loaded from no known
/// registry version.
fn begin(tx: &Conn, ids: &[i64], creates: usize, cache: &StartCache, start: Start) -> Result<ChangeStart, SqlError> {
    of(tx).begin_change(tx, &StartAsk { ids, registry_version: -1, creates, start, cache })
}

/// `begin_change` of a change whose connectors were loaded from the
/// registry version `registry_version` (a cached start is kept only for
/// connectors loaded from the registry as it is).
fn begin_at(
    tx: &Conn,
    (ids, registry_version): (&[i64], i64),
    creates: usize,
    cache: &StartCache,
    start: Start,
) -> Result<ChangeStart, SqlError> {
    of(tx).begin_change(tx, &StartAsk { ids, registry_version, creates, start, cache })
}

/// The registry's version now.
fn registry_version(conn: &Conn) -> i64 {
    conn.query_row("SELECT Version FROM Integration_RegistryVersion", [], |r| r.get(0)).unwrap()
}

/// `begin_change` from [`Start::Cached`]: a transaction never goes on with
/// settings older than its first statement — where the driver keeps them
/// (PostgreSQL), a change made since fails the transaction as stale, and
/// the next fresh start reads it; object IDs are never handed out twice.
fn a_cached_start_never_goes_on_with_older_settings(db: &Database, ids: &[i64]) {
    let mut conn = db.connect().unwrap();
    let other = db.connect().unwrap();
    let cache = StartCache::default();
    let postgres = conn.dialect() == crate::sql::Dialect::Postgres;
    let mut seen = Vec::new();
    let loaded = (&ids[..2], registry_version(&conn));
    let first = (&ids[..1], loaded.1);
    let tx = conn.transaction().unwrap();
    seen.extend(begin_at(&tx, loaded, 1, &cache, Start::Fresh).unwrap().object_ids);
    drop(tx);
    // Nothing changed: the cached start goes on.
    let tx = conn.transaction().unwrap();
    let start = begin_at(&tx, loaded, 2, &cache, Start::Cached).unwrap();
    assert!(start.settings.process_outgoing, "{:?}", start.settings);
    assert_eq!(start.present, ids[..2]);
    seen.extend(start.object_ids);
    let one: i64 = tx.query_row("SELECT 1", [], |r| r.get(0)).expect("the settings are still those");
    assert_eq!(one, 1);
    tx.commit().unwrap();
    // Changed by another client (psql, say).
    other
        .execute("UPDATE CMS_SettingsKey SET KeyValue = 'False' WHERE KeyName = 'CMSIntegrationProcessInternal'", [])
        .unwrap();
    let tx = conn.transaction().unwrap();
    let start = begin_at(&tx, loaded, 1, &cache, Start::Cached).unwrap();
    seen.extend(start.object_ids);
    match tx.query_row("SELECT 1", [], |r| r.get::<i64>(0)) {
        Err(e) if postgres => assert!(of(&tx).start_was_stale(&e), "stale, not {e}"),
        Ok(_) if !postgres => assert!(!start.settings.process_outgoing, "read anew: {:?}", start.settings),
        other => panic!("a stale start went on: {other:?} with {:?}", start.settings),
    }
    drop(tx);
    cache.forget();
    let tx = conn.transaction().unwrap();
    let start = begin_at(&tx, loaded, 3, &cache, Start::Cached).unwrap();
    assert!(!start.settings.process_outgoing, "read anew after forget: {:?}", start.settings);
    seen.extend(start.object_ids);
    drop(tx);
    let tx = conn.transaction().unwrap();
    let start = begin_at(&tx, loaded, 100, &cache, Start::Cached).unwrap();
    assert!(!start.settings.process_outgoing, "{:?}", start.settings);
    assert_eq!(start.object_ids.len(), if postgres { 100 } else { 0 });
    seen.extend(start.object_ids);
    tx.query_row("SELECT 1", [], |r| r.get::<i64>(0)).expect("the settings are those read");
    drop(tx);
    let count = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), count, "an object ID handed out twice");
    // The check inside a lone task's statement (on PostgreSQL its
    // transaction's only statement): committed while the settings are
    // those read, refused as stale after an edit.
    let relation = [NewRelation { connector_id: ids[0], data_type: TaskDataType::Simple, matching: Matching::Decided }];
    let tasks_of = |title: &str| -> i64 {
        other.query_row("SELECT COUNT(*) FROM Integration_Task WHERE TaskTitle = $1", [title], |r| r.get(0)).unwrap()
    };
    for edited in [false, true] {
        if edited {
            other
                .execute(
                    "UPDATE CMS_SettingsKey SET KeyValue = 'True' WHERE KeyName = 'CMSIntegrationProcessInternal'",
                    [],
                )
                .unwrap();
        }
        let title = format!("Create User 'dee' ({edited})");
        let tx = conn.transaction().unwrap();
        let start = begin_at(&tx, first, 0, &cache, Start::Cached).unwrap();
        let object = user(10, "dee");
        let task = user_task(&object, &title, TaskDataType::Simple);
        match (of(&tx).log_tasks(&tx, &[(task, &relation)], Ending::Commit), edited) {
            (Ok(_), false) => {
                tx.commit().unwrap();
                assert_eq!(tasks_of(&title), 1, "committed");
            }
            (Err(e), true) if postgres => {
                assert!(of(&tx).start_was_stale(&e), "stale, not {e}");
                drop(tx);
                assert_eq!(tasks_of(&title), 0, "nothing of a stale start");
            }
            (Ok(_), true) if !postgres => assert!(start.settings.process_outgoing, "read anew: {:?}", start.settings),
            (other, _) => panic!("edited {edited}: {other:?} with {:?}", start.settings),
        }
    }
}

/// `begin_change` from [`Start::Cached`] with a connector deleted since the
/// daemon read the registry: no relation for it is written — the
/// transaction fails as stale where the driver did not look (PostgreSQL),
/// or the connector is not present.
fn a_cached_start_queues_for_no_deleted_connector(db: &Database, ids: &[i64]) {
    let mut conn = db.connect().unwrap();
    let cache = StartCache::default();
    let loaded = (&ids[3..5], registry_version(&conn));
    drop(begin_at(&conn.transaction().unwrap(), loaded, 0, &cache, Start::Fresh).unwrap());
    conn.execute("DELETE FROM Integration_Connector WHERE ConnectorID = $1", [ids[4]]).unwrap();
    let tx = conn.transaction().unwrap();
    let start = begin_at(&tx, loaded, 0, &cache, Start::Cached).unwrap();
    let object = user(8, "bea");
    let task = user_task(&object, "Create User 'bea'", TaskDataType::Simple);
    let relations: Vec<NewRelation> = start
        .present
        .iter()
        .map(|&connector_id| NewRelation { connector_id, data_type: TaskDataType::Simple, matching: Matching::Decided })
        .collect();
    match of(&tx).log_tasks(&tx, &[(task, &relations)], Ending::Commit) {
        Ok(_) => {
            assert_eq!(start.present, ids[3..4], "only the connector still there");
            tx.commit().unwrap();
        }
        Err(e) => {
            assert!(of(&tx).start_was_stale(&e), "stale, not {e}");
            drop(tx);
        }
    }
    let queued: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM Integration_Synchronization WHERE SynchronizationConnectorID = $1",
            [ids[4]],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(queued, 0, "a relation for a deleted connector");
}

/// `guid_taken`: after a unique violation, whether the GUID or the code
/// name was taken (asked in the failed transaction, as the store does).
fn guid_taken_tells_the_guid_from_the_code_name(db: &Database) {
    let mut conn = db.connect().unwrap();
    {
        let tx = conn.transaction().unwrap();
        create(&tx, "cms.role", "first", json!({})).unwrap();
        tx.commit().unwrap();
    }
    let guid: String =
        conn.query_row("SELECT ObjectGUID FROM CMS_Object WHERE ObjectCodeName = 'first'", [], |r| r.get(0)).unwrap();
    for (code_name, guid, taken) in [("second", Some(guid), true), ("first", None, false)] {
        let tx = conn.transaction().unwrap();
        let object = ObjectInput { code_name: Some(code_name.into()), guid, ..Default::default() };
        let change = Change::CreateObject { object_type: "cms.role".into(), object };
        let err = change::apply(&tx, &ObjectTypes::defaults(), change).expect_err("a duplicate is refused");
        let text = err.to_string();
        assert_eq!(text.contains("GUID"), taken, "{code_name}: {text}");
    }
}

/// `objects_referencing`: every `(type, field)` asked, in the order asked,
/// then by ID; a field holding the number as text does not count.
fn objects_referencing_finds_every_reference_in_order(db: &Database) {
    let mut conn = db.connect().unwrap();
    let tx = conn.transaction().unwrap();
    let user = create(&tx, "cms.user", "referenced", json!({})).unwrap();
    let role = create(&tx, "cms.role", "editors", json!({})).unwrap();
    let other = create(&tx, "cms.role", "viewers", json!({})).unwrap();
    let b1 = create(&tx, "cms.userrole", "", json!({"UserID": user, "RoleID": other})).unwrap();
    let b2 = create(&tx, "cms.userrole", "", json!({"UserID": user, "RoleID": role})).unwrap();
    let found = of(&tx)
        .objects_referencing(
            &tx,
            &[("cms.usersite", "UserID"), ("cms.userrole", "UserID"), ("cms.userrole", "RoleID")],
            user,
        )
        .unwrap();
    assert_eq!(found, [(1, b1), (1, b2)], "the user's two bindings, by the second reference");
    let by_role = of(&tx).objects_referencing(&tx, &[("cms.userrole", "RoleID")], role).unwrap();
    assert_eq!(by_role, [(0, b2)]);
    assert!(of(&tx).objects_referencing(&tx, &[], user).unwrap().is_empty());
    tx.execute(
        "INSERT INTO CMS_Object (ObjectType, ObjectGUID, ObjectCodeName, ObjectFields, ObjectLastModified) \
         VALUES ('cms.usersite', 'text-guid', 'as-text', $1, 'x')",
        [json!({"UserID": user.to_string()}).to_string()],
    )
    .unwrap();
    let as_text = of(&tx).objects_referencing(&tx, &[("cms.usersite", "UserID")], user).unwrap();
    assert!(as_text.is_empty(), "a number written as text is no reference: {as_text:?}");
}

/// `like_ignoring_case`: a grid search finds a title in any case.
fn like_ignoring_case_finds_any_case(db: &Database, connector_id: i64) {
    let conn = db.connect().unwrap();
    let query = |search: &str| GridQuery {
        sort: TaskSort::default(),
        order: Order::Asc,
        search: Some(search.into()),
        offset: 0,
        limit: 10,
    };
    for search in ["ANN", "ann", "User 'Ann"] {
        let page = task_grid::page(&conn, Direction::Outgoing, Some(connector_id), &query(search)).unwrap();
        assert!(page.total > 0, "`{search}` finds the task titled \"Create User 'ann'\"");
    }
    let none = task_grid::page(&conn, Direction::Outgoing, Some(connector_id), &query("nobody")).unwrap();
    assert_eq!(none.total, 0);
}

/// `not_delivered`: a relation is listed until its delivery is recorded
/// (SQLite: `Integration_Delivered`) or it is removed (both engines).
fn not_delivered_passes_over_recorded_deliveries(db: &Database, connector_id: i64) {
    let conn = db.connect().unwrap();
    let queued = || crate::queue_admin::count(&conn, Direction::Outgoing, Some(connector_id)).unwrap();
    let listed =
        || crate::queue::next_batch(&conn, connector_id, Direction::Outgoing, 0, 100, true).unwrap().len() as i64;
    let before = listed();
    assert!(before > 0 && queued() == before, "listed {before}, counted {}", queued());
    let sync_id: i64 = conn
        .query_row(
            "SELECT min(SynchronizationID) FROM Integration_Synchronization WHERE SynchronizationConnectorID = $1",
            [connector_id],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute("DELETE FROM Integration_Synchronization WHERE SynchronizationID = $1", [sync_id]).unwrap();
    assert_eq!(listed(), before - 1, "a removed relation is not listed");
    assert_eq!(queued(), before - 1, "nor counted");
}

/// `lock_connector_for_delete`: a name that does not exist is no error
/// (the delete then says it is not found).
fn lock_connector_for_delete_takes_a_missing_name(db: &Database) {
    let mut conn = db.connect().unwrap();
    let tx = conn.transaction().unwrap();
    of(&tx).lock_connector_for_delete(&tx, "C0").expect("an existing connector");
    of(&tx).lock_connector_for_delete(&tx, "Nobody").expect("a missing one");
}
