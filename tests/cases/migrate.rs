//! Moving up: `bus-daemon migrate --to postgres://…` copies a SQLite bus —
//! registry, settings, content, queues in their order, sync log, event
//! log — into an empty PostgreSQL database, refuses one that is not empty,
//! and the daemon then runs on PostgreSQL as it did on the file.

use bus_core::db::Location;
use bus_tests::daemon::Backend;
use bus_tests::{wait_for, TestEnv};
use serde_json::json;
use std::time::Duration;

const TABLES: &[&str] = &[
    "Integration_Connector",
    "CMS_SettingsKey",
    "CMS_ScheduledTask",
    "CMS_Object",
    "CMS_Tree",
    "CMS_Document",
    "Integration_Task",
    "Integration_Synchronization",
    "Integration_SyncLog",
    "CMS_EventLog",
    "Integration_ConnectorState",
    "Integration_ConnectorHistory",
];

fn counts(env: &TestEnv) -> Vec<(String, i64)> {
    let sql = env.sql();
    TABLES
        .iter()
        .map(|t| ((*t).to_owned(), sql.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0)).unwrap()))
        .collect()
}

/// Task IDs queued for a connector, oldest first.
fn queue_of(env: &TestEnv, connector: &str) -> Vec<i64> {
    let sql = env.sql();
    let mut stmt = sql
        .prepare(
            "SELECT s.SynchronizationTaskID FROM Integration_Synchronization s JOIN Integration_Connector c \
             ON c.ConnectorID = s.SynchronizationConnectorID WHERE c.ConnectorName = $1 ORDER BY s.SynchronizationTaskID",
        )
        .unwrap();
    stmt.query_map([connector], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn migrate_copies_a_sqlite_bus_into_an_empty_postgres_database_and_the_bus_runs_on() {
    let mut env = TestEnv::with_backend(Backend::Sqlite);
    env.scripted(
        "A",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    );
    env.scripted("B", json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects"}]}));
    env.set_setting("process_outgoing", false);
    let d = env.start();
    assert_eq!(d.get("/api/cluster").status, 404, "one daemon per SQLite file");
    d.create("cms.site", json!({"code_name": "Corp"}));
    for i in 0..30 {
        d.create("cms.user", json!({"code_name": format!("u{i:02}"), "fields": {"n": i}}));
    }
    let doc = d.post(
        "/api/documents",
        &json!({"site_name": "Corp", "alias_path": "/Home", "class_name": "cms.menuitem", "culture": "en-US", "name": "Home"}),
    );
    assert_eq!(doc.status, 201, "{}", doc.text);
    // A copy while the daemon still writes the file is refused (what it
    // accepted after the copy began would be missing), naming the daemon.
    let early = bus_tests::postgres::database();
    let refused = env.cli(&["migrate", "--to", &early.url]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains(&format!("in use by the daemon with PID {}", d.pid())) && why.contains("stop it first"),
        "{why}"
    );
    let tables: i64 = bus_core::sql::Conn::postgres(&early.url)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0, "nothing was copied");
    // Nor can a second daemon serve the same file.
    let second = env.start_fails();
    assert!(second.contains("in use by the daemon with PID"), "{second}");
    d.stop();
    let before = counts(&env);
    let queued = (queue_of(&env, "A"), queue_of(&env, "B"));
    assert_eq!(queued.0.len(), 30);

    let target = bus_tests::postgres::database();
    let out = env.cli(&["migrate", "--to", &target.url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Integration_Task"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Once copied, the target is not empty any more: a second copy is refused.
    let again = env.cli(&["migrate", "--to", &target.url]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{}", String::from_utf8_lossy(&again.stderr));
    let bad = env.cli(&["migrate", "--to", "copy.db"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("postgres://"), "{}", String::from_utf8_lossy(&bad.stderr));

    env.use_database(Location::parse(&target.url));
    assert_eq!(counts(&env), before, "every row of every table is there");
    assert_eq!((queue_of(&env, "A"), queue_of(&env, "B")), queued, "the queues, in their order");

    // The daemon runs on the copy: IDs go on from the copied ones, the
    // queues drain in order.
    let d = env.start();
    let next = d.create("cms.user", json!({"code_name": "after"}));
    assert!(
        next["task_id"].as_i64().is_some_and(|t| t > *queued.1.last().unwrap()),
        "{next}; {}",
        d.get("/api/connectors").text
    );
    assert_eq!(d.put("/api/settings", &json!({"process_outgoing": true})).status, 200);
    assert_eq!(d.post("/api/tasks/outgoing/synchronize", &json!({"all": true})).status, 200);
    wait_for("the copied queues to drain", Duration::from_secs(60), || {
        (d.get("/api/tasks/outgoing/count").body["count"] == 0).then_some(())
    });
    let delivered: Vec<i64> = d.reports("A").iter().map(|r| r["task_id"].as_i64().unwrap()).collect();
    let mut expected = queued.0.clone();
    expected.push(next["task_id"].as_i64().unwrap());
    assert_eq!(delivered, expected, "A got every copied task once, in order, then the new one");
    env.check_integrity();
}
