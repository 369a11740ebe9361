//! Delivery that keeps up with slow systems: `object` ordering (parallel
//! calls, each object's tasks in commit order, a failure parking only its
//! chain), batches a connector takes in one go, rate limits, and the
//! registry columns that choose them — with the scripted connector loaded
//! as a cdylib, in whatever isolation the pass runs.

use bus_tests::{wait_for, Daemon, TestEnv};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn users_and_roles(extra: Value) -> Value {
    let mut script = json!({"subscriptions": [
        {"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user%"},
        {"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.role"},
    ]});
    for (k, v) in extra.as_object().unwrap() {
        script[k] = v.clone();
    }
    script
}

/// Sets a connector's delivery columns with plain SQL, as ops would.
fn set_columns(env: &TestEnv, connector: &str, assignments: &str) {
    env.sql()
        .execute(&format!("UPDATE Integration_Connector SET {assignments} WHERE ConnectorName = $1"), [connector])
        .unwrap();
}

/// Registers scripted connector `name` (users and roles, with `extra` in its
/// script), sets its delivery `columns` with plain SQL (when any), and
/// starts the daemon with outgoing processing off, so the test can queue a
/// backlog first (see [`go`]).
fn start_paused(env: &TestEnv, name: &str, extra: Value, columns: &str) -> Daemon {
    env.scripted(name, users_and_roles(extra));
    if !columns.is_empty() {
        set_columns(env, name, columns);
    }
    env.set_setting("process_outgoing", false);
    env.start()
}

/// Switches outgoing processing on and gives the queues a trigger (a new
/// task), as switching on alone starts nothing.
fn go(d: &Daemon, trigger: &str) -> i64 {
    let r = d.put("/api/settings", &json!({"process_outgoing": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    d.create("cms.user", json!({"code_name": trigger}))["object"]["id"].as_i64().unwrap()
}

/// The calls' reports (one per task delivery), without other events.
fn deliveries(env: &TestEnv, connector: &str) -> Vec<Value> {
    env.all_reports(connector).into_iter().filter(|r| r["task_id"].is_i64()).collect()
}

fn wait_for_tasks(env: &TestEnv, connector: &str, tasks: usize) -> Vec<Value> {
    wait_for(&format!("{connector} to get {tasks} tasks"), WAIT, || {
        let got = deliveries(env, connector);
        let distinct: BTreeSet<i64> = got.iter().map(|r| r["task_id"].as_i64().unwrap()).collect();
        (distinct.len() >= tasks).then_some(got)
    })
}

fn span(r: &Value) -> (u64, u64) {
    (r["called_at_us"].as_u64().unwrap(), r["returning_at_us"].as_u64().unwrap())
}

/// The most calls that ran at once.
fn most_at_once(reports: &[Value]) -> usize {
    let mut edges: Vec<(u64, i32)> = reports.iter().flat_map(|r| [(span(r).0, 1), (span(r).1, -1)]).collect();
    // At equal times an end comes before a start.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

#[test]
fn object_ordering_keeps_each_objects_order_under_16_concurrent_calls() {
    let env = TestEnv::new();
    let d =
        start_paused(&env, "Par", json!({"sleep_ms": 20}), "ConnectorOrdering = 'object', ConnectorConcurrency = 16");
    assert_eq!(d.connector("Par").unwrap()["ordering"], "object");
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let roles: Vec<i64> = (0..4)
        .map(|i| {
            let r = d.create("cms.role", json!({"code_name": format!("r{i}"), "site_name": "CorpSite"}));
            r["object"]["id"].as_i64().unwrap()
        })
        .collect();
    let users: Vec<i64> = (0..24)
        .map(|i| d.create("cms.user", json!({"code_name": format!("u{i}")}))["object"]["id"].as_i64().unwrap())
        .collect();
    for round in 0..2 {
        for (i, u) in users.iter().enumerate() {
            let r =
                d.put(&format!("/api/objects/cms.user/{u}"), &json!({"display_name": format!("User {i} v{round}")}));
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }
    for (i, u) in users.iter().enumerate() {
        d.create("cms.userrole", json!({"fields": {"UserID": u, "RoleID": roles[i % 4]}}));
    }
    // 4 roles, 24 creates, 48 updates, 24 bindings, and the trigger.
    go(&d, "trigger");
    let reports = wait_for_tasks(&env, "Par", 101);
    let ids: Vec<i64> = reports.iter().map(|r| r["task_id"].as_i64().unwrap()).collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "each task once: {ids:?}");

    // Per object, the calls in commit order: each starts after the one
    // before it returned.
    let mut chains: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in &reports {
        let f = &r["fields"];
        let (own, refers) = match (f["UserID"].as_i64(), f["RoleID"].as_i64()) {
            (Some(u), Some(role)) => (None, vec![format!("user {u}"), format!("role {role}")]),
            _ => (Some(r["name"].as_str().unwrap().to_owned()), Vec::new()),
        };
        if let Some(name) = own {
            chains.entry(name).or_default().push(r);
        }
        for key in refers {
            chains.entry(key).or_default().push(r);
        }
    }
    // The creates and updates of user `u{i}` and role `r{i}` are named by
    // code name; the bindings by ID: join them.
    for (i, u) in users.iter().enumerate() {
        let bindings = chains.remove(&format!("user {u}")).unwrap_or_default();
        chains.entry(format!("u{i}")).or_default().extend(bindings);
    }
    for (i, role) in roles.iter().enumerate() {
        let bindings = chains.remove(&format!("role {role}")).unwrap_or_default();
        let chain = chains.entry(format!("r{i}")).or_default();
        // Bindings to one role only refer to it: no order between them,
        // but each comes after the role's create.
        let create = chain[0];
        for b in bindings {
            assert!(span(create).1 <= span(b).0, "a binding went before its role's create: {b}");
        }
    }
    for (name, mut chain) in chains.into_iter().filter(|(n, _)| n.starts_with('u')) {
        chain.sort_by_key(|r| r["task_id"].as_i64());
        assert_eq!(chain.len(), if name == "trigger" { 1 } else { 4 }, "{name}: {chain:?}");
        for pair in chain.windows(2) {
            assert!(
                span(pair[0]).1 <= span(pair[1]).0,
                "{name}: task {} started before task {} returned",
                pair[1]["task_id"],
                pair[0]["task_id"]
            );
        }
    }
    let most = most_at_once(&reports);
    assert!((2..=16).contains(&most), "independent objects go in parallel, at most 16 at once: {most}");
    env.check_integrity();
}

#[test]
fn a_failure_parks_only_its_objects_chain_until_a_retry_releases_it() {
    let env = TestEnv::new();
    // No automatic retry within the test: only a synchronize retries.
    let config = std::fs::read_to_string(&env.config_path).unwrap();
    let config =
        config.replace("retry_base_ms = 100\nretry_max_ms = 400", "retry_base_ms = 600000\nretry_max_ms = 600000");
    std::fs::write(&env.config_path, config).unwrap();
    let d = start_paused(&env, "Par", json!({}), "ConnectorOrdering = 'object', ConnectorConcurrency = 4");
    let bad = d.create("cms.user", json!({"code_name": "bad", "fields": {"fail_times": 2}}));
    let bad_task = bad["task_id"].as_i64().unwrap();
    let bad_id = bad["object"]["id"].as_i64().unwrap();
    let update = json!({"display_name": "Bad", "fields": {"fail_times": 0}});
    assert_eq!(d.put(&format!("/api/objects/cms.user/{bad_id}"), &update).status, 200);
    for i in 0..6 {
        d.create("cms.user", json!({"code_name": format!("ok{i}")}));
    }
    go(&d, "trigger");
    // Everything but bad's chain is delivered; bad failed once.
    let reports = wait_for_tasks(&env, "Par", 8);
    assert_eq!(reports.iter().filter(|r| r["name"] == "bad").count(), 1, "the update never went: {reports:?}");
    let queue = d.queue("outgoing", "&connector=Par");
    assert_eq!(queue.len(), 2, "{queue:?}");
    assert!(queue[0]["error"].as_str().unwrap().contains("scripted failure 1 of 2"), "{queue:?}");
    assert_eq!(queue[1]["waiting_for"], bad_task, "the update waits for the failed create: {queue:?}");
    assert!(queue[0]["waiting_for"].is_null());

    // New tasks go at once; the failed chain waits for its retry.
    d.create("cms.user", json!({"code_name": "late"}));
    wait_for_tasks(&env, "Par", 9);
    let attempts = deliveries(&env, "Par").iter().filter(|r| r["name"] == "bad").count();
    assert_eq!(attempts, 1, "a run started by new tasks does not retry before the retry is due");

    // A synchronize retries the chain in order: the create fails again,
    // the update still waits; then the create goes, and the update after it.
    let sync = |expected_create: &str| {
        let r = d.post("/api/tasks/outgoing/synchronize", &json!({"all": true, "connector": "Par"}));
        assert_eq!(r.status, 200, "{}", r.text);
        let text = r.text.clone();
        assert!(text.contains(expected_create), "{text}");
        r.body
    };
    sync("Error");
    assert_eq!(d.queue("outgoing", "&connector=Par")[1]["waiting_for"], bad_task);
    sync("Ok");
    let bad_calls: Vec<Value> = deliveries(&env, "Par").into_iter().filter(|r| r["name"] == "bad").collect();
    let types: Vec<&str> = bad_calls.iter().map(|r| r["task_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["CreateObject", "CreateObject", "CreateObject", "UpdateObject"], "{bad_calls:?}");
    assert!(span(&bad_calls[2]).1 <= span(&bad_calls[3]).0);
    let left = d.queue("outgoing", "&connector=Par");
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_connector_takes_batches_in_one_call_up_to_its_batch_size() {
    let env = TestEnv::new();
    let d = start_paused(&env, "Bulk", json!({"bulk": true, "sleep_ms": 20}), "");
    let r = d.put("/api/connectors/Bulk", &json!({"batch_size": 10}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["batch_size"], 10);
    wait_for("the reinitialized Bulk", WAIT, || d.connector("Bulk").filter(|c| c["loaded"] == true));
    for i in 0..25 {
        d.create("cms.user", json!({"code_name": format!("b{i:02}")}));
    }
    go(&d, "trigger");
    let reports = wait_for_tasks(&env, "Bulk", 26);
    let ids: Vec<i64> = reports.iter().map(|r| r["task_id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "each task once, in commit order: {ids:?}");
    let batches: Vec<Vec<i64>> = env
        .all_reports("Bulk")
        .iter()
        .filter_map(|r| r["batch"].as_array().map(|b| b.iter().map(|i| i.as_i64().unwrap()).collect()))
        .collect();
    assert!(batches.iter().all(|b| b.len() <= 10), "{batches:?}");
    assert!(batches.iter().any(|b| b.len() == 10), "a full batch in one call: {batches:?}");
    assert_eq!(batches.concat(), ids, "every task came in a batch call: {batches:?}");
}

#[test]
fn a_rate_limit_spaces_the_calls() {
    let env = TestEnv::new();
    // One task per call (the batched pass hands 8 to a connector process
    // by default): a batch counts as one call.
    let d = start_paused(&env, "Limited", json!({}), "ConnectorRateLimit = 20, ConnectorBatchSize = 1");
    assert_eq!(d.connector("Limited").unwrap()["rate_limit"], 20.0);
    for i in 0..9 {
        d.create("cms.user", json!({"code_name": format!("l{i}")}));
    }
    go(&d, "trigger");
    let reports = wait_for_tasks(&env, "Limited", 10);
    assert!(reports.iter().all(|r| r["attempt"] == 1), "waiting for the limit is no failure: {reports:?}");
    let starts: Vec<u64> = reports.iter().map(|r| span(r).0).collect();
    // 20 calls a second: k calls later is at least (k - 1) intervals later
    // (one slot may be taken late and the next on time).
    for (i, a) in starts.iter().enumerate() {
        for (k, b) in starts.iter().enumerate().skip(i + 2) {
            let at_least = (k - i - 1) as u64 * 50_000;
            assert!(b - a >= at_least, "calls {i} and {k} only {} µs apart: {starts:?}", b - a);
        }
    }
}

#[test]
fn delivery_columns_are_checked_in_the_api_the_cli_and_rows_written_with_sql() {
    let env = TestEnv::new();
    env.scripted("A", users_and_roles(json!({})));
    let d = env.start();
    for (body, field) in [
        (json!({"concurrency": 0}), "concurrency"),
        (json!({"concurrency": 257}), "concurrency"),
        (json!({"batch_size": 1001}), "batch size"),
        (json!({"rate_limit": 0}), "rate limit"),
        (json!({"rate_limit": -1.5}), "rate limit"),
        (json!({"ordering": "fifo"}), "ordering"),
    ] {
        let r = d.put("/api/connectors/A", &body);
        assert!(matches!(r.status, 400 | 422), "{body}: {}", r.text);
        assert!(r.body["error"].as_str().unwrap().contains(field), "{body}: {}", r.text);
    }
    let r = d.put("/api/connectors/A", &json!({"ordering": "object", "concurrency": 8, "rate_limit": 7.5}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.body["ordering"].clone(), r.body["concurrency"].clone()), (json!("object"), json!(8)));
    let r = d.put("/api/connectors/A", &json!({"concurrency": null, "rate_limit": null}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["concurrency"].is_null() && r.body["rate_limit"].is_null(), "null goes back to the default");

    let out = env.cli(&["connector", "edit", "A", "--concurrency", "300"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("concurrency"), "{out:?}");
    let out = env.cli(&["connector", "edit", "A", "--batch-size", "50", "--rate-limit", "2"]);
    assert!(out.status.success(), "{out:?}");
    let out = env.cli(&["connector", "show", "A"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("batch size:    50") && shown.contains("rate limit:    2 calls/s"), "{shown}");

    // A value only SQL can write is the row's load warning, naming the column.
    set_columns(&env, "A", "ConnectorConcurrency = 0");
    let row = wait_for("the load warning", WAIT, || d.connector("A").filter(|c| c["error"].is_string()));
    assert!(row["error"].as_str().unwrap().contains("ConnectorConcurrency"), "{row}");
    set_columns(&env, "A", "ConnectorConcurrency = NULL, ConnectorOrdering = 'fifo'");
    let row = wait_for("the next load warning", WAIT, || {
        d.connector("A").filter(|c| c["error"].as_str().is_some_and(|e| e.contains("ConnectorOrdering")))
    });
    assert!(row["error"].as_str().unwrap().contains("fifo"), "{row}");
    set_columns(&env, "A", "ConnectorOrdering = NULL");
    wait_for("A to load again", WAIT, || d.connector("A").filter(|c| c["loaded"] == true && c["error"].is_null()));
}

#[test]
fn a_crash_with_calls_in_flight_repeats_at_most_those_calls() {
    let env = TestEnv::new();
    // One task per call, so the bound is in tasks (a batch of N would
    // repeat up to N per call in flight).
    let columns =
        "ConnectorOrdering = 'object', ConnectorConcurrency = 8, ConnectorIsolation = 'process', ConnectorBatchSize = 1";
    let d = start_paused(&env, "Crashy", json!({"crashes": true, "sleep_ms": 30}), columns);
    for i in 0..40 {
        let fields = if i == 20 { json!({"crash": "abort"}) } else { json!({}) };
        d.create("cms.user", json!({"code_name": format!("c{i:02}"), "fields": fields}));
    }
    go(&d, "trigger");
    // Everything but the crashing task is delivered, in spite of the
    // crashes (each retry of that task crashes the process again).
    let reports = wait_for_tasks(&env, "Crashy", 40);
    assert!(reports.iter().all(|r| r["name"] != "c20"), "the crash happens before the report");
    let restarts = d.connector("Crashy").unwrap()["restarts"].as_u64().unwrap();
    assert!(restarts >= 1, "the process crashed");
    let distinct: BTreeSet<i64> = reports.iter().map(|r| r["task_id"].as_i64().unwrap()).collect();
    let repeats = reports.len() - distinct.len();
    // Reports written by the crashed process for calls whose answers were
    // lost: at most the 7 other calls in flight at the first crash — a
    // retried task goes alone, so its later crashes take nothing with them.
    assert!(repeats <= 7, "{repeats} repeats for {restarts} crashes");
    let queue = d.queue("outgoing", "&connector=Crashy");
    assert_eq!(queue.len(), 1, "only the crashing task is left: {queue:?}");
    assert!(
        queue[0]["error"].as_str().unwrap().contains("abort") || queue[0]["error"].as_str().unwrap().contains("crash")
    );
}

#[test]
fn no_call_starts_after_a_disable_during_a_parallel_drain() {
    let env = TestEnv::new();
    // One task per call: the reports' start times are the calls'.
    let columns = "ConnectorOrdering = 'object', ConnectorConcurrency = 8, ConnectorBatchSize = 1";
    let d = start_paused(&env, "Par", json!({"sleep_ms": 20}), columns);
    for i in 0..150 {
        d.create("cms.user", json!({"code_name": format!("p{i:03}")}));
    }
    go(&d, "trigger");
    wait_for("the drain to be under way", WAIT, || (deliveries(&env, "Par").len() >= 30).then_some(()));
    let r = d.put("/api/connectors/Par", &json!({"enabled": false}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["loaded"], false, "{}", r.text);
    let at_disable = deliveries(&env, "Par").len();
    // An observation window: only the 8 calls in flight may still report
    // (as one call in flight may in connector ordering).
    std::thread::sleep(Duration::from_millis(500));
    let after = deliveries(&env, "Par").len();
    assert!(after <= at_disable + 8, "{} calls after the disable was answered", after - at_disable);
    assert!(after < 151, "the disable stopped the drain");
    // Enabled again, the rest goes, each task once.
    assert_eq!(d.put("/api/connectors/Par", &json!({"enabled": true})).status, 200);
    d.create("cms.user", json!({"code_name": "again"}));
    let reports = wait_for_tasks(&env, "Par", 152);
    let distinct: BTreeSet<i64> = reports.iter().map(|r| r["task_id"].as_i64().unwrap()).collect();
    assert!(reports.len() - distinct.len() <= 8, "at most the calls in flight repeated");
}
