//! The outgoing direction through the real daemon and scripted cdylib
//! connectors: the result tables, subscriptions, ordering, payloads,
//! transactional logging.

use bus_tests::daemon::Backend;
use bus_tests::{wait_for, Daemon, TestEnv};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn sub(process_type: &str, scope: Value) -> Value {
    let mut s = scope;
    s["process_type"] = json!(process_type);
    s
}

fn all_objects(process_type: &str) -> Value {
    sub(process_type, json!({"scope": "objects"}))
}

fn start(connectors: &[(&str, Vec<Value>)]) -> (TestEnv, Daemon) {
    let env = TestEnv::new();
    for (name, subs) in connectors {
        env.scripted(name, json!({ "subscriptions": subs, "custom": "AsyncSimpleSnapshot" }));
    }
    let d = env.start();
    for (name, _) in connectors {
        assert_eq!(d.connector(name).unwrap()["loaded"], true, "{name}: {}", d.connector(name).unwrap());
    }
    (env, d)
}

fn user(d: &Daemon, code_name: &str, fields: Value) -> Value {
    d.create("cms.user", json!({"code_name": code_name, "fields": fields}))
}

fn reports_for(d: &Daemon, connector: &str, name: &str) -> Vec<Value> {
    d.reports(connector).into_iter().filter(|r| r["name"] == name).collect()
}

fn task_of(change: &Value) -> i64 {
    change["task_id"].as_i64().unwrap_or_else(|| panic!("no task was logged: {change}"))
}

#[test]
fn asynchronous_results_follow_the_result_table() {
    let (_env, d) = start(&[("A", vec![all_objects("AsyncSimple")])]);

    // Error: sync log entry, the queue stops at the task.
    let failing = task_of(&user(&d, "u1", json!({"outcome": "Error", "message": "CRM is down"})));
    let blocked = task_of(&user(&d, "u2", json!({})));
    let detail = wait_for("the error to be recorded", WAIT, || {
        let t = d.get(&format!("/api/tasks/{failing}")).body;
        (t["relations"][0]["log"].as_array().is_some_and(|l| !l.is_empty())).then_some(t)
    });
    assert_eq!(detail["relations"][0]["error"], "CRM is down");
    assert_eq!(detail["relations"][0]["log"][0]["error"], "CRM is down");
    std::thread::sleep(Duration::from_millis(600));
    assert!(reports_for(&d, "A", "u2").is_empty(), "the queue stopped at u1");
    assert!(reports_for(&d, "A", "u1").len() >= 2, "u1 is retried automatically");
    let queued: Vec<i64> = d.queue("outgoing", "&connector=A").iter().map(|t| t["task_id"].as_i64().unwrap()).collect();
    assert_eq!(queued, [failing, blocked]);
    assert!(d.queue("outgoing", "").iter().any(|t| t["task_id"] == failing && t["error"] == "CRM is down"));

    // Deleting the failing task lets the queue move on.
    assert_eq!(d.delete(&format!("/api/tasks/{failing}")).status, 204);
    wait_for("u2 to be delivered", WAIT, || (!reports_for(&d, "A", "u2").is_empty()).then_some(()));
    wait_for("the queue to drain", WAIT, || d.queue("outgoing", "&connector=A").is_empty().then_some(()));
    // OK: the relation and the task are gone.
    assert_eq!(d.get(&format!("/api/tasks/{blocked}")).status, 404);

    // ErrorAndSkip: sync log entry, the next task goes through, automatic
    // runs pass over it, a manual synchronize retries it.
    let skipped = task_of(&user(&d, "u3", json!({"outcome": "ErrorAndSkip", "message": "bad e-mail"})));
    user(&d, "u4", json!({}));
    wait_for("u4 to be delivered", WAIT, || (!reports_for(&d, "A", "u4").is_empty()).then_some(()));
    user(&d, "u5", json!({}));
    wait_for("u5 to be delivered", WAIT, || (!reports_for(&d, "A", "u5").is_empty()).then_some(()));
    assert_eq!(reports_for(&d, "A", "u3").len(), 1, "automatic runs do not retry an ErrorAndSkip task");
    let t = d.get(&format!("/api/tasks/{skipped}")).body;
    assert_eq!(t["relations"][0]["error"], "bad e-mail");
    assert_eq!(t["relations"][0]["log"].as_array().unwrap().len(), 1);
    let manual = d.post(&format!("/api/tasks/{skipped}/synchronize"), &json!({}));
    assert_eq!(manual.status, 200, "{}", manual.text);
    assert_eq!(manual.body["outcomes"][0]["result"], "ErrorAndSkip");
    assert_eq!(d.get(&format!("/api/tasks/{skipped}")).body["relations"][0]["log"].as_array().unwrap().len(), 2);

    // SkipNow: no sync log, the task stays for the next run.
    let later = task_of(&user(&d, "u6", json!({"outcome": "SkipNow"})));
    user(&d, "u7", json!({}));
    wait_for("u7 to be delivered", WAIT, || (!reports_for(&d, "A", "u7").is_empty()).then_some(()));
    user(&d, "u8", json!({}));
    wait_for("u6 to be offered again", WAIT, || (reports_for(&d, "A", "u6").len() >= 2).then_some(()));
    let t = d.get(&format!("/api/tasks/{later}")).body;
    assert!(t["relations"][0]["error"].is_null() && t["relations"][0]["log"].as_array().unwrap().is_empty(), "{t}");
}

#[test]
fn an_error_is_retried_with_backoff_and_the_queue_keeps_its_order() {
    let (_env, d) = start(&[("A", vec![sub("AsyncSimple", json!({"scope": "objects", "object_type": "cms.user"}))])]);
    user(&d, "first", json!({"fail_times": 2}));
    user(&d, "second", json!({}));
    wait_for("both to be delivered", WAIT, || (!reports_for(&d, "A", "second").is_empty()).then_some(()));
    let order: Vec<(String, i64)> = d
        .reports("A")
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r["attempt"].as_i64().unwrap()))
        .collect();
    assert_eq!(order, [("first".into(), 1), ("first".into(), 2), ("first".into(), 3), ("second".into(), 1)]);
    wait_for("the queue to drain", WAIT, || d.queue("outgoing", "").is_empty().then_some(()));
}

/// A queue stopped by an error keeps its retry through a time with
/// processing off: switched on again, the task is retried by itself (no
/// new task, no synchronize request).
#[test]
fn a_failed_task_is_retried_by_itself_after_processing_was_off_meanwhile() {
    let (_env, d) = start(&[("A", vec![sub("AsyncSimple", json!({"scope": "objects", "object_type": "cms.user"}))])]);
    user(&d, "first", json!({"fail_times": 3}));
    wait_for("the second attempt", WAIT, || (reports_for(&d, "A", "first").len() >= 2).then_some(()));
    assert_eq!(d.put("/api/settings", &json!({"process_outgoing": false})).status, 200);
    // Longer than the longest pause between retries (400 ms here): a retry
    // comes due while processing is off.
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(d.put("/api/settings", &json!({"process_outgoing": true})).status, 200);
    wait_for("the task to be delivered", WAIT, || d.queue("outgoing", "").is_empty().then_some(()));
    let attempts: Vec<i64> = reports_for(&d, "A", "first").iter().map(|r| r["attempt"].as_i64().unwrap()).collect();
    assert_eq!(attempts.last(), Some(&4), "delivered at the fourth attempt: {attempts:?}");
}

#[test]
fn synchronous_results_follow_the_result_table() {
    let users = || sub("SyncSnapshot", json!({"scope": "objects", "object_type": "cms.user"}));
    let (_env, d) = start(&[("SyncA", vec![users()]), ("SyncB", vec![users()])]);
    let sync_reports = |c: &str, name: &str| reports_for(&d, c, name).into_iter().filter(|r| r["sync"] == true).count();

    let ok = user(&d, "ok", json!({}));
    assert_eq!(
        ok["sync"],
        json!([{"connector": "SyncA", "result": "Ok", "error": null}, {"connector": "SyncB", "result": "Ok", "error": null}])
    );
    assert!(ok["task_id"].is_null(), "synchronous processing stores no task");
    assert_eq!((sync_reports("SyncA", "ok"), sync_reports("SyncB", "ok")), (1, 1));

    // Error: event log, data lost, processing stops for all connectors.
    let err = user(&d, "err", json!({"sync_outcome": "Error", "message": "ERP refused"}));
    assert_eq!(err["sync"].as_array().unwrap().len(), 1, "{err}");
    assert_eq!(err["sync"][0]["result"], "Error");
    assert_eq!(sync_reports("SyncB", "err"), 0, "SyncB never got the change");
    let e = d.events("&type=E&code=SYNCPROCESSING");
    assert!(
        e[0]["description"].as_str().unwrap().contains("ERP refused")
            && e[0]["description"].as_str().unwrap().contains("all connectors")
    );

    // ErrorAndSkip: event log, data lost, only this connector stops.
    let skip = user(&d, "skip", json!({"sync_outcome": "ErrorAndSkip"}));
    assert_eq!(skip["sync"].as_array().unwrap().len(), 2, "{skip}");
    assert_eq!(d.events("&type=E&code=SYNCPROCESSING").len(), 3);

    // SkipNow: data lost, nothing logged.
    let now = user(&d, "now", json!({"sync_outcome": "SkipNow"}));
    assert_eq!(now["sync"][0]["result"], "SkipNow");
    assert_eq!(d.events("&type=E&code=SYNCPROCESSING").len(), 3);
    assert!(d.queue("outgoing", "").is_empty());
}

#[test]
fn subscriptions_choose_the_connectors_and_the_highest_priority_wins() {
    let (env, d) = start(&[
        (
            "Wild",
            vec![sub("AsyncSimple", json!({"scope": "objects", "object_type": "poll.%", "task_type": "CreateObject"}))],
        ),
        ("Sites", vec![sub("AsyncSimple", json!({"scope": "objects", "site_name": "Corp%"}))]),
        ("Global", vec![sub("AsyncSimple", json!({"scope": "objects", "site_name": "##global##"}))]),
        (
            "Docs",
            vec![sub(
                "AsyncSimple",
                json!({"scope": "documents", "alias_path": "/Home/%", "culture": "en-%", "class_name": "cms.menuitem"}),
            )],
        ),
        (
            "Prio",
            vec![
                all_objects("AsyncSimple"),
                sub("AsyncSnapshot", json!({"scope": "objects", "object_type": "cms.user"})),
                sub("AsyncSimpleSnapshot", json!({"scope": "objects", "object_code_name": "admin%"})),
            ],
        ),
        ("Named", vec![sub("AsyncSimple", json!({"scope": "objects", "object_code_name": "ADMIN%"}))]),
        ("Nothing", vec![sub("AsyncSimple", json!({"scope": "objects", "object_type": "no.such.type"}))]),
    ]);
    env.set_setting("process_outgoing", false);
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    d.create("cms.role", json!({"code_name": "editors", "site_name": "CorpSite"}));
    let poll = d.create("poll.poll", json!({"code_name": "p1", "site_name": "CorpSite"}));
    let poll_id = poll["object"]["id"].as_i64().unwrap();
    assert_eq!(d.put(&format!("/api/objects/poll.poll/{poll_id}"), &json!({"display_name": "Poll 1"})).status, 200);
    d.create("cms.user", json!({"code_name": "administrator"}));
    d.create("cms.user", json!({"code_name": "vip1"}));
    let doc = |path: &str, culture: &str| {
        let r = d.post("/api/documents", &json!({"site_name": "CorpSite", "alias_path": path, "class_name": "cms.menuitem", "culture": culture, "name": path}));
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    };
    doc("/Home", "en-US");
    doc("/Home/News", "en-US");
    doc("/Home/Novinky", "cs-CZ");
    let nobody = doc("/Other", "en-US");
    assert!(nobody["task_id"].is_null(), "a change matching no subscription logs nothing: {nobody}");

    let seen = |c: &str| -> Vec<(String, String)> {
        d.queue("outgoing", &format!("&connector={c}"))
            .iter()
            .map(|t| (t["title"].as_str().unwrap().to_owned(), t["data_type"].as_str().unwrap().to_owned()))
            .collect()
    };
    let titles = |c: &str| seen(c).into_iter().map(|(t, _)| t).collect::<Vec<_>>();
    assert_eq!(titles("Wild"), ["Create Poll 'p1'"], "poll.% and CreateObject only");
    assert_eq!(titles("Sites"), ["Create Role 'editors'", "Create Poll 'p1'", "Update Poll 'Poll 1'"]);
    assert_eq!(titles("Global"), ["Create Site 'CorpSite'", "Create User 'administrator'", "Create User 'vip1'"]);
    assert_eq!(titles("Docs"), ["Create document /Home/News"]);
    assert_eq!(titles("Named"), ["Create User 'administrator'"], "code-name wildcard, ignoring case");
    assert!(titles("Nothing").is_empty());
    let prio = seen("Prio");
    let mode = |title: &str| prio.iter().find(|(t, _)| t == title).map(|(_, m)| m.as_str()).unwrap();
    assert_eq!(mode("Create Role 'editors'"), "Simple");
    assert_eq!(
        mode("Create User 'administrator'"),
        "Snapshot",
        "AsyncSnapshot beats AsyncSimpleSnapshot and AsyncSimple"
    );
    assert_eq!(mode("Create User 'vip1'"), "Snapshot");
    assert!(prio.iter().all(|(t, _)| !t.contains("document")), "object subscriptions ignore documents");
    // One task row per change, one relation per connector.
    let tasks: i64 = env.sql().query_row("SELECT COUNT(*) FROM Integration_Task", [], |r| r.get(0)).unwrap();
    let relations: i64 =
        env.sql().query_row("SELECT COUNT(*) FROM Integration_Synchronization", [], |r| r.get(0)).unwrap();
    assert_eq!(tasks, 7);
    assert_eq!(relations, 15);
}

#[test]
fn a_failing_task_insert_rolls_the_change_back() {
    let (env, d) = start(&[("A", vec![all_objects("AsyncSimple")])]);
    let (create, drop) = match env.backend() {
        Backend::Sqlite => (
            "CREATE TRIGGER break_the_queue BEFORE INSERT ON Integration_Synchronization \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            "DROP TRIGGER break_the_queue",
        ),
        Backend::Postgres => (
            "CREATE FUNCTION break_the_queue() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER break_the_queue BEFORE INSERT ON Integration_Synchronization \
             FOR EACH ROW EXECUTE FUNCTION break_the_queue();",
            "DROP TRIGGER break_the_queue ON Integration_Synchronization",
        ),
    };
    env.sql().execute_batch(create).unwrap();
    let r = d.post("/api/objects/cms.user", &json!({"code_name": "ghost"}));
    assert_eq!(r.status, 500, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("nothing was written"), "{}", r.text);
    let objects = d.get("/api/objects/cms.user").body;
    assert!(objects["items"].as_array().unwrap().is_empty(), "the change was rolled back: {objects}");
    let tasks: i64 = env.sql().query_row("SELECT COUNT(*) FROM Integration_Task", [], |r| r.get(0)).unwrap();
    assert_eq!(tasks, 0);
    env.sql().execute_batch(drop).unwrap();
    d.create("cms.user", json!({"code_name": "ghost"}));
}

#[test]
fn each_connector_gets_commit_order_under_concurrent_writers_and_a_slow_one_delays_no_other() {
    let env = TestEnv::new();
    env.scripted("Fast", json!({"subscriptions": [all_objects("AsyncSimple")]}));
    env.scripted("Slow", json!({"subscriptions": [all_objects("AsyncSimple")], "sleep_ms": 150}));
    let d = env.start();
    std::thread::scope(|scope| {
        for w in 0..4 {
            let d = &d;
            scope.spawn(move || {
                for i in 0..5 {
                    d.create("cms.user", json!({"code_name": format!("w{w}u{i}")}));
                }
            });
        }
    });
    wait_for("Fast to get every task", WAIT, || (d.reports("Fast").len() == 20).then_some(()));
    let slow_so_far = d.reports("Slow").len();
    assert!(slow_so_far < 20, "Fast finished while Slow was still working ({slow_so_far} of 20)");
    wait_for("Slow to get every task", Duration::from_secs(30), || (d.reports("Slow").len() == 20).then_some(()));
    for c in ["Fast", "Slow"] {
        assert_commit_order(&env, c, &d.reports(c), "w", 4, 5);
    }
}

/// Asserts that a connector got its tasks in commit order: each writer's
/// changes (users `{prefix}{w}u{i}`) in the order it made them, and on
/// SQLite — one writer commits at a time, so task IDs follow commits and the
/// queue goes in ID order — ascending task IDs. PostgreSQL's writers commit
/// at once: an ID drawn earlier may commit later, the queue goes in commit
/// order, and changes that raced have no order between them.
fn assert_commit_order(env: &TestEnv, c: &str, reports: &[Value], prefix: &str, writers: usize, each: usize) {
    for w in 0..writers {
        let mine: Vec<usize> = reports
            .iter()
            .filter_map(|r| r["name"].as_str()?.strip_prefix(&format!("{prefix}{w}u"))?.parse().ok())
            .collect();
        assert_eq!(mine, (0..each).collect::<Vec<_>>(), "{c}: writer {w}'s changes out of order");
    }
    if env.backend() == Backend::Sqlite {
        let ids: Vec<i64> = reports.iter().map(|r| r["task_id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{c} got tasks out of commit order: {ids:?}");
    }
}

/// The change pipeline hands a task that starts an empty queue straight to
/// the worker; under writers racing the workers (queues emptying and filling
/// all the time) every connector still gets every task once, in order.
#[test]
fn racing_writers_and_workers_deliver_every_task_once_in_commit_order() {
    let names = ["R1", "R2", "R3"];
    let env = TestEnv::new();
    for name in names {
        env.scripted(name, json!({"subscriptions": [all_objects("AsyncSimple")]}));
    }
    let d = env.start();
    std::thread::scope(|scope| {
        for w in 0..3 {
            let d = &d;
            scope.spawn(move || {
                for i in 0..60 {
                    d.create("cms.user", json!({"code_name": format!("r{w}u{i}")}));
                }
            });
        }
    });
    for c in names {
        wait_for("every task to be delivered", WAIT, || (d.reports(c).len() >= 180).then_some(()));
    }
    std::thread::sleep(Duration::from_millis(300));
    for c in names {
        let reports = d.reports(c);
        let ids: Vec<i64> = reports.iter().map(|r| r["task_id"].as_i64().unwrap()).collect();
        assert_eq!(ids.len(), 180, "{c} got {} deliveries for 180 tasks", ids.len());
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 180, "{c} got a task twice: {ids:?}");
        assert_commit_order(&env, c, &reports, "r", 3, 60);
    }
    wait_for("the queue to empty", WAIT, || (d.get("/api/tasks/outgoing/count").body["count"] == 0).then_some(()));
}

#[test]
fn payloads_carry_what_their_data_mode_promises_and_translation_survives_a_rename() {
    let users = |p: &str| sub(p, json!({"scope": "objects", "object_type": "cms.user%"}));
    let (env, d) = start(&[
        ("Simple", vec![users("AsyncSimple")]),
        (
            "SimpleSnapshot",
            vec![users("AsyncSimpleSnapshot"), sub("AsyncSimpleSnapshot", json!({"scope": "documents"}))],
        ),
        (
            "Snapshot",
            vec![users("AsyncSnapshot"), sub("AsyncSnapshot", json!({"scope": "objects", "object_type": "poll.poll"}))],
        ),
    ]);
    env.set_setting("process_outgoing", false);
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let role = d.create("cms.role", json!({"code_name": "editors", "site_name": "CorpSite"}))["object"]["id"]
        .as_i64()
        .unwrap();
    let u = d.create("cms.user", json!({"code_name": "antonio"}))["object"]["id"].as_i64().unwrap();
    assert_eq!(d.post(&format!("/api/objects/cms.user/{u}/sites/CorpSite"), &json!({})).status, 200);
    d.create("cms.userrole", json!({"fields": {"UserID": u, "RoleID": role}}));
    let poll = d.create("poll.poll", json!({"code_name": "colour", "site_name": "CorpSite"}))["object"]["id"]
        .as_i64()
        .unwrap();
    for a in ["red", "blue"] {
        d.create("poll.pollanswer", json!({"code_name": a, "site_name": "CorpSite", "fields": {"AnswerPollID": poll}}));
    }
    d.put(&format!("/api/objects/poll.poll/{poll}"), &json!({"fields": {"open": true}}));
    d.put(&format!("/api/objects/cms.user/{u}"), &json!({"fields": {"email": "a@example.com"}}));
    let home = d.post("/api/documents", &json!({"site_name": "CorpSite", "alias_path": "/Home", "class_name": "cms.menuitem", "culture": "en-US", "name": "Home"})).body;
    let node = home["object"]["node_id"].as_i64().unwrap();
    let product = d.post(
        "/api/documents",
        &json!({"site_name": "CorpSite", "alias_path": "/Home/iPad", "class_name": "cms.product", "culture": "en-US",
                "name": "Apple iPad 2", "fields": {"ProductManagerID": u, "RelatedNodeID": node}}),
    );
    assert_eq!(product.status, 201, "{}", product.text);
    // Renamed after the tasks were logged: translation uses what was captured.
    d.put(&format!("/api/objects/cms.role/{role}"), &json!({"code_name": "writers"}));

    d.put("/api/settings", &json!({"process_outgoing": true}));
    wait_for("every queue to drain", WAIT, || d.queue("outgoing", "").is_empty().then_some(()));
    let find = |c: &str, task_type: &str, name: &str| {
        d.reports(c)
            .into_iter()
            .find(|r| r["task_type"] == task_type && r["name"] == name)
            .unwrap_or_else(|| panic!("{c} got no {task_type} {name}"))
    };

    let binding = format!("RoleID={role};UserID={u}");
    // Simple: the object's own fields, nothing more.
    let simple = find("Simple", "CreateObject", &binding);
    assert_eq!(simple["data_type"], "Simple");
    assert!(simple["translations"].as_object().is_none_or(|t| t.is_empty()), "{simple}");
    assert_eq!(simple["fields"]["RoleID"], role);
    // SimpleSnapshot: plus translation data for every foreign key, as it was
    // when the task was logged (the role is `writers` by now).
    let ss = find("SimpleSnapshot", "CreateObject", &binding);
    let objects = ss["translations"]["objects"].as_array().unwrap();
    assert!(
        objects
            .iter()
            .any(|t| t["object_type"] == "cms.role" && t["code_name"] == "editors" && t["site_name"] == "CorpSite"),
        "{ss}"
    );
    assert!(objects.iter().any(|t| t["object_type"] == "cms.user" && t["code_name"] == "antonio"), "{ss}");
    assert_eq!(ss["translated_fields"]["RoleID"], 10_000 + role, "translated through get_external_object_id");
    assert_eq!(ss["translated_fields"]["UserID"], 10_000 + u);
    assert!(ss["translation_error"].is_null(), "{ss}");
    assert!(ss["children"].as_array().unwrap().is_empty() && ss["bindings"].as_array().unwrap().is_empty());
    // Snapshot: plus children and bindings (with their translation data).
    let snap_user = find("Snapshot", "UpdateObject", "antonio");
    let bindings: Vec<&str> = snap_user["bindings"].as_array().unwrap().iter().map(|b| b.as_str().unwrap()).collect();
    assert_eq!(bindings.len(), 2, "{snap_user}");
    assert!(
        bindings.iter().any(|b| b.starts_with("cms.userrole:"))
            && bindings.iter().any(|b| b.starts_with("cms.usersite:"))
    );
    let snap_poll = find("Snapshot", "UpdateObject", "colour");
    assert_eq!(snap_poll["children"], json!(["poll.pollanswer:red", "poll.pollanswer:blue"]));
    assert!(snap_poll["translations"]["objects"].as_array().unwrap().iter().any(|t| t["code_name"] == "colour"));
    // Documents: translation data for object and document keys; NodeID vs DocumentID.
    let doc = find("SimpleSnapshot", "CreateDocument", "Apple iPad 2");
    assert_eq!(doc["translated_fields"]["ProductManagerID"], 10_000 + u);
    assert_eq!(doc["translated_fields"]["RelatedNodeID"], 30_000 + node, "a NodeID key asks for the NodeID");
    let docs = doc["translations"]["documents"].as_array().unwrap();
    assert_eq!(docs[0]["node_guid"], home["object"]["node_guid"]);
    assert_eq!(docs[0]["culture"], "en-US");
    assert_eq!(doc["title"], "Create document Apple iPad 2");
}

#[test]
fn a_synchronous_subscription_with_processing_off_leaves_a_trace() {
    let (env, d) =
        start(&[("Sync", vec![sub("SyncSnapshot", json!({"scope": "objects", "object_type": "cms.site"}))])]);
    env.set_setting("process_outgoing", false);
    let r = d.create("cms.site", json!({"code_name": "CorpSite"}));
    assert_eq!(r["sync"][0]["connector"], "Sync", "{r}");
    assert_eq!(r["sync"][0]["result"], "SkipNow", "{r}");
    assert!(r["sync"][0]["error"].as_str().unwrap().contains("processing of outgoing tasks is off"), "{r}");
    let warnings = d.events("&type=W&code=SYNCSKIPPED");
    assert!(warnings[0]["description"].as_str().unwrap().contains("`Sync` did not get `Create Site 'CorpSite'`"));
    assert!(d.reports("Sync").is_empty());
}

#[test]
fn a_setting_edited_in_plain_sql_applies_to_the_very_next_change_while_others_write() {
    let (env, d) = start(&[("A", vec![all_objects("AsyncSimple")])]);
    env.set_setting("process_outgoing", false);
    let addr = d.addr.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = stop.clone();
    // Changes from another client all along, until the edits are done.
    let writer = std::thread::spawn(move || {
        (0..1000)
            .take_while(|_| !writing.load(std::sync::atomic::Ordering::Relaxed))
            .map(|i| {
                let body = json!({"code_name": format!("stream{i}")});
                bus_tests::http::request(&addr, "POST", "/api/objects/cms.user", Some(&body)).status
            })
            .collect::<Vec<u16>>()
    });
    for round in 0..12 {
        let logging = round % 2 == 1;
        env.set_setting("log_outgoing", logging);
        let change = user(&d, &format!("after{round}"), json!({}));
        assert_eq!(change["task_id"].is_i64(), logging, "round {round}, logging {logging}: {change}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = writer.join().unwrap();
    assert!(statuses.iter().all(|s| *s == 201), "{:?}", statuses.iter().find(|s| **s != 201));
    env.check_integrity();
}
