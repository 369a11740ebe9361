//! The guarantees under the operations ops perform while tasks are queued:
//! registry edits (API and plain SQL) on a backlog, hung connector calls
//! beside healthy connectors, connector deletion under a stream of changes,
//! row-scoped task actions.

use bus_tests::{wait_for, Daemon, TestEnv};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

fn all_users(process_type: &str) -> Value {
    json!({"process_type": process_type, "scope": "objects", "object_type": "cms.user"})
}

/// The task IDs a scripted connector received, in the order it received them.
fn deliveries(d: &Daemon, connector: &str) -> Vec<i64> {
    d.reports(connector).iter().filter_map(|r| r["task_id"].as_i64()).collect()
}

/// Checks a delivery sequence: every task once or repeated at most
/// `interruptions` times in all, never a step back past a task delivered
/// before the one in flight.
fn assert_in_commit_order(seq: &[i64], expected: &[i64], interruptions: usize) {
    let mut seen = std::collections::BTreeSet::new();
    let mut repeats = 0;
    let mut highest = 0;
    for (i, &t) in seq.iter().enumerate() {
        if !seen.insert(t) {
            repeats += 1;
            // A repeat is the task just before (the one in flight), nothing older.
            assert!(i > 0 && seq[..i].iter().rev().take(2).any(|&p| p == t), "task {t} repeated out of place: {seq:?}");
        } else {
            assert!(t > highest, "task {t} delivered after {highest}: not commit order: {seq:?}");
            highest = t;
        }
    }
    let delivered: Vec<i64> = seen.into_iter().collect();
    assert_eq!(delivered, expected, "every task delivered");
    assert!(repeats <= interruptions, "{repeats} repeats for {interruptions} interruptions");
}

fn set_enabled_by_api(d: &Daemon, name: &str, on: bool) {
    let r = d.put(&format!("/api/connectors/{name}"), &json!({"enabled": on}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["loaded"], on, "{}", r.text);
}

#[test]
fn a_disable_enable_storm_on_a_backlog_keeps_commit_order_and_makes_no_call_after_a_disable() {
    let env = TestEnv::new();
    env.scripted("B", json!({"subscriptions": [all_users("AsyncSimple")], "sleep_ms": 20}));
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let mut expected = Vec::new();
    for i in 0..300 {
        expected.push(d.create("cms.user", json!({"code_name": format!("u{i}")}))["task_id"].as_i64().unwrap());
    }
    d.put("/api/settings", &json!({"process_outgoing": true}));
    // A new change is the trigger that starts the backlog.
    expected.push(d.create("cms.user", json!({"code_name": "trigger"}))["task_id"].as_i64().unwrap());
    let mut interruptions = 0;
    for cycle in 0..3 {
        let before = deliveries(&d, "B").len();
        wait_for("B to make progress", WAIT, || (deliveries(&d, "B").len() >= before + 20).then_some(()));
        set_enabled_by_api(&d, "B", false);
        interruptions += 1;
        let at_disable = deliveries(&d, "B").len();
        // An observation window: only the call in flight may still report.
        std::thread::sleep(Duration::from_millis(300));
        let after = deliveries(&d, "B").len();
        assert!(after <= at_disable + 1, "cycle {cycle}: {} calls after the disable was answered", after - at_disable);
        set_enabled_by_api(&d, "B", true);
    }
    // The same through plain SQL, noticed by the watcher.
    for cycle in 0..3 {
        let before = deliveries(&d, "B").len();
        wait_for("B to make progress", WAIT, || (deliveries(&d, "B").len() >= before + 20).then_some(()));
        env.sql()
            .execute("UPDATE Integration_Connector SET ConnectorEnabled = 0 WHERE ConnectorName = 'B'", [])
            .unwrap();
        wait_for("the disable to be noticed", WAIT, || (d.connector("B").unwrap()["loaded"] == false).then_some(()));
        interruptions += 1;
        let noticed = deliveries(&d, "B").len();
        std::thread::sleep(Duration::from_millis(300));
        let after = deliveries(&d, "B").len();
        assert!(after <= noticed + 1, "SQL cycle {cycle}: {} calls after the disable was noticed", after - noticed);
        env.sql()
            .execute("UPDATE Integration_Connector SET ConnectorEnabled = 1 WHERE ConnectorName = 'B'", [])
            .unwrap();
        wait_for("the enable to be noticed", WAIT, || (d.connector("B").unwrap()["loaded"] == true).then_some(()));
    }
    wait_for("every task to be delivered", WAIT, || d.queue("outgoing", "&connector=B").is_empty().then_some(()));
    assert_in_commit_order(&deliveries(&d, "B"), &expected, interruptions);
}

#[test]
fn hung_is_match_prepare_and_sync_calls_delay_only_their_own_connector() {
    let env = TestEnv::new();
    env.configure("call_timeout_ms = 500");
    // The daemon's own threads cannot be interrupted: in-process behaviour
    // (in a connector process the hung call is killed instead).
    env.isolate("isolation = \"in-process\"");
    // Hang: a custom subscription (asked on its worker), an incoming queue
    // (prepare) and a synchronous subscription for roles.
    env.scripted(
        "Hang",
        json!({
            "subscriptions": [
                {"process_type": "AsyncSimple", "scope": "custom", "name": "vip"},
                {"process_type": "SyncSnapshot", "scope": "objects", "object_type": "cms.role"}
            ],
            "custom": "AsyncSimple"
        }),
    );
    env.scripted("Fast", json!({"subscriptions": [all_users("AsyncSimple")]}));
    let d = env.start();
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let threads_before = d.threads();

    // 50 changes whose custom subscription check hangs for a minute: each
    // answers at once, and the fast connector gets every one.
    let started = Instant::now();
    for i in 0..50 {
        let r = d.create("cms.user", json!({"code_name": format!("vip{i}"), "fields": {"match_sleep_ms": 60_000}}));
        assert_eq!(r["queued_for"], json!(["Fast", "Hang"]), "{r}");
    }
    assert!(started.elapsed() < Duration::from_secs(20), "no change waited for the hung check");
    wait_for("Fast to get all 50", WAIT, || (deliveries(&d, "Fast").len() == 50).then_some(()));
    let health = wait_for("Hang to count as hung", WAIT, || {
        let h = d.get("/health").body;
        h["connectors"]["Hang"]["hung_for_seconds"].is_number().then_some(h)
    });
    assert!(health["connectors"]["Fast"]["hung_for_seconds"].is_null(), "{health}");

    // A hung prepare_internal_object: the first request gets the timeout,
    // later ones fail at once; Fast's incoming logging is unaffected.
    let external = json!({"kind": "object", "object_type": "cms.user", "code_name": "x", "sleep_ms": 60_000});
    let hung = d.post("/api/connectors/Hang/incoming", &json!({"obj": external, "task_type": "CreateObject"}));
    assert_eq!(hung.status, 422, "{}", hung.text);
    assert!(hung.text.contains("did not answer `prepare_internal_object` within 500 ms"), "{}", hung.text);
    for _ in 0..20 {
        let again = d.post("/api/connectors/Hang/incoming", &json!({"obj": external, "task_type": "CreateObject"}));
        assert_eq!(again.status, 422, "{}", again.text);
        assert!(again.text.contains("is hung in a `prepare_internal_object` call"), "{}", again.text);
    }
    let fine = json!({"kind": "object", "object_type": "cms.user", "code_name": "y"});
    let r = d.post("/api/connectors/Fast/incoming", &json!({"obj": fine, "task_type": "CreateObject"}));
    assert_eq!(r.status, 201, "{}", r.text);

    // The synchronous subscription shares Hang's stuck lane: answered at once.
    let role = d.create("cms.role", json!({"code_name": "r", "site_name": "CorpSite"}));
    assert_eq!(role["sync"][0]["result"], "Error", "{role}");
    // Routes and other connectors stay responsive; timeouts are in the event log.
    assert_eq!(d.get("/api/settings").status, 200);
    let timeouts = d.events("&source=Hang&type=E");
    assert!(timeouts.iter().any(|e| e["code"] == "CONNECTORTIMEOUT"), "{timeouts:?}");
    assert!(d.connector("Hang").unwrap()["fault"].is_string());

    let threads_after = d.threads();
    assert!(
        threads_after <= threads_before + 8,
        "threads grew from {threads_before} to {threads_after} across 50 hung checks and 21 hung calls"
    );
    // SIGTERM ends the daemon in seconds although calls are stuck.
    let stopping = Instant::now();
    let status = d.stop();
    assert!(stopping.elapsed() < Duration::from_secs(10), "stopping took {:?}", stopping.elapsed());
    assert!(status.success(), "{status:?}");
}

/// Whether a process runs (a zombie, ended but not yet reaped, does not).
fn process_runs(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn sigterm_ends_the_daemon_within_5_seconds_while_connector_calls_are_stuck() {
    let env = TestEnv::new();
    // The shipped call timeout (30 s) and the pass's isolation: a
    // prepare_internal_object and a delivery that each take a minute.
    env.scripted("Stuck", json!({"subscriptions": [all_users("AsyncSimple")], "sleep_ms": 60_000}));
    let d = env.start();
    let pid = d.connector("Stuck").unwrap()["pid"].as_u64();
    d.create("cms.user", json!({"code_name": "slow"}));
    let addr = d.addr.clone();
    let external = json!({"kind": "object", "object_type": "cms.user", "code_name": "x", "sleep_ms": 60_000});
    let request = std::thread::spawn(move || {
        let body = json!({"obj": external, "task_type": "CreateObject"});
        bus_tests::http::request(&addr, "POST", "/api/connectors/Stuck/incoming", Some(&body))
    });
    wait_for("the stuck prepare_internal_object call", WAIT, || {
        d.events("&source=Stuck").iter().any(|e| e["code"] == "PREPARESLEEP").then_some(())
    });

    let stopping = Instant::now();
    let status = d.stop();
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    assert!(status.success(), "{status:?}");
    if let Some(pid) = pid.filter(|p| *p > 0) {
        wait_for("the connector process to end with the daemon", Duration::from_secs(5), || {
            (!process_runs(pid)).then_some(())
        });
    }
    let answered = request.join();
    assert!(answered.is_err() || answered.unwrap().status != 201, "the stuck request logged nothing");
}

#[test]
fn custom_subscriptions_are_decided_before_delivery_and_panics_are_logged() {
    let env = TestEnv::new();
    env.scripted(
        "Custom",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "custom", "name": "vip"}], "custom": "AsyncSnapshot"}),
    );
    env.scripted("Both", json!({"subscriptions": [all_users("AsyncSimple"), {"process_type": "AsyncSimple", "scope": "custom", "name": "vip"}], "custom": "AsyncSnapshot"}));
    let d = env.start();
    d.create("cms.user", json!({"code_name": "plain"}));
    d.create("cms.user", json!({"code_name": "vip1"}));
    d.create("cms.user", json!({"code_name": "boom", "fields": {"match_panic": true}}));
    wait_for("both queues to drain", WAIT, || {
        (d.queue("outgoing", "&connector=Custom").is_empty() && d.queue("outgoing", "&connector=Both").is_empty())
            .then_some(())
    });
    let custom = d.reports("Custom");
    let names: Vec<&str> = custom.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["vip1"], "only the matching change is delivered");
    assert_eq!(custom[0]["data_type"], "Snapshot", "the process type is_match chose");
    let both: Vec<(String, String)> = d
        .reports("Both")
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r["data_type"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        both,
        [("plain".into(), "Simple".into()), ("vip1".into(), "Snapshot".into()), ("boom".into(), "Simple".into())],
        "a custom match raises the mode; no match keeps the plain subscription's"
    );
    // Non-matching changes left no synchronization log entry.
    let logged: i64 = env.sql().query_row("SELECT COUNT(*) FROM Integration_SyncLog", [], |r| r.get(0)).unwrap();
    assert_eq!(logged, 0);
    // The panic is an event-log error from the connector, and shows on its status.
    let panics = d.events("&source=Custom&type=E");
    assert!(panics.iter().any(|e| e["code"] == "CONNECTORPANIC"), "{panics:?}");
    assert!(d.connector("Custom").unwrap()["fault"].as_str().unwrap().contains("panicked"));
}

#[test]
fn deleting_a_connector_needs_consent_for_its_queue_and_races_no_change_into_a_5xx() {
    let env = TestEnv::new();
    env.scripted("Keep", json!({"subscriptions": [all_users("AsyncSimple")]}));
    env.scripted("Gone", json!({"subscriptions": [all_users("AsyncSimple")]}));
    env.set_setting("process_outgoing", false);
    let d = env.start();
    for i in 0..3 {
        d.create("cms.user", json!({"code_name": format!("q{i}")}));
    }
    // Refused with the count, through the API and the CLI.
    let r = d.delete("/api/connectors/Gone");
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("3 queued task relation(s)") && r.text.contains("discard_queue=true"), "{}", r.text);
    let out = env.cli(&["connector", "delete", "Gone"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--discard-queue"));
    assert!(d.connector("Gone").is_some());
    let r = d.delete("/api/connectors/Gone?discard_queue=true");
    assert_eq!(r.status, 204, "{}", r.text);
    let warning = d.events("&type=W");
    assert!(
        warning.iter().any(|e| e["code"] == "CONNECTORDELETE"
            && e["description"].as_str().unwrap().contains("`Gone` was deleted with 3 queued task relation(s)")),
        "{warning:?}"
    );
    assert_eq!(d.queue("outgoing", "&connector=Keep").len(), 3, "the other connector's tasks stay");

    // A plain SQL delete is named in the event log too.
    env.sql().execute("DELETE FROM Integration_Connector WHERE ConnectorName = 'Keep'", []).unwrap();
    let warning = d.events("&type=W");
    assert!(
        warning.iter().any(|e| e["description"].as_str().unwrap().contains("`Keep` was deleted with 3 queued")),
        "{warning:?}"
    );

    // Deletes and re-adds (API and SQL) under a stream of changes: no 5xx.
    env.set_setting("process_outgoing", true);
    env.scripted("Churn", json!({"subscriptions": [all_users("AsyncSimple")]}));
    wait_for("Churn to load", WAIT, || d.connector("Churn").filter(|c| c["loaded"] == true));
    let addr = d.addr.clone();
    let writer = std::thread::spawn(move || {
        let mut statuses = Vec::new();
        for i in 0..400 {
            let r = bus_tests::http::request(
                &addr,
                "POST",
                "/api/objects/cms.user",
                Some(&json!({"code_name": format!("stream{i}")})),
            );
            statuses.push((r.status, r.text));
        }
        statuses
    });
    let script = json!({"subscriptions": [all_users("AsyncSimple")]}).to_string();
    for cycle in 0..10 {
        if cycle % 2 == 0 {
            let r = d.delete("/api/connectors/Churn?discard_queue=true");
            assert_eq!(r.status, 204, "{}", r.text);
        } else {
            env.sql().execute("DELETE FROM Integration_Connector WHERE ConnectorName = 'Churn'", []).unwrap();
        }
        let r = d.post(
            "/api/connectors",
            &json!({"name": "Churn", "assembly_name": "testkit", "class_name": "ScriptedConnector", "enabled": true, "config": script}),
        );
        assert!(r.status == 201 || r.status == 409, "{}", r.text);
        if r.status == 409 {
            // The SQL delete was not noticed yet when the API saw the name.
            wait_for("the SQL delete to be noticed", WAIT, || d.connector("Churn").is_none().then_some(()));
        }
        wait_for("Churn to be registered", WAIT, || {
            if d.connector("Churn").is_none() {
                let r = d.post(
                    "/api/connectors",
                    &json!({"name": "Churn", "assembly_name": "testkit", "class_name": "ScriptedConnector", "enabled": true, "config": script}),
                );
                assert!(r.status < 500, "{}", r.text);
            }
            d.connector("Churn").map(|_| ())
        });
    }
    let statuses = writer.join().unwrap();
    let failures: Vec<&(u16, String)> = statuses.iter().filter(|(s, _)| *s >= 500).collect();
    assert!(failures.is_empty(), "{} of 400 changes got a 5xx: {:?}", failures.len(), failures.first());
    assert!(statuses.iter().all(|(s, _)| *s == 201), "{:?}", statuses.iter().find(|(s, _)| *s != 201));
    env.check_integrity();
}

#[test]
fn row_actions_act_on_the_rows_connector_only() {
    let env = TestEnv::new();
    env.scripted("A", json!({"subscriptions": [all_users("AsyncSimple")]}));
    env.scripted("B", json!({"subscriptions": [all_users("AsyncSimple")]}));
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let first = d.create("cms.user", json!({"code_name": "one"}))["task_id"].as_i64().unwrap();
    let second = d.create("cms.user", json!({"code_name": "two"}))["task_id"].as_i64().unwrap();

    let r = d.delete(&format!("/api/tasks/{first}?connector=A"));
    assert_eq!(r.status, 204, "{}", r.text);
    let queued = |c: &str| -> Vec<i64> {
        d.queue("outgoing", &format!("&connector={c}")).iter().map(|t| t["task_id"].as_i64().unwrap()).collect()
    };
    assert_eq!(queued("A"), [second]);
    assert_eq!(queued("B"), [first, second], "B's relation of the task stays");
    let r = d.delete(&format!("/api/tasks/{first}?connector=A"));
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.text.contains("not queued for connector `A`"), "{}", r.text);

    env.set_setting("process_outgoing", true);
    let r = d.post(&format!("/api/tasks/{second}/synchronize?connector=B"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let connectors: Vec<&str> =
        r.body["outcomes"].as_array().unwrap().iter().map(|o| o["connector"].as_str().unwrap()).collect();
    assert_eq!(connectors, ["B"]);
    assert_eq!(queued("A"), [second], "A's relation was not synchronized");
    assert_eq!(queued("B"), [first]);
    assert_eq!(deliveries(&d, "A"), Vec::<i64>::new());
}

#[test]
fn management_actions_are_in_the_event_log_with_who_and_from_where() {
    let env = TestEnv::new();
    env.scripted("A", json!({"subscriptions": [all_users("AsyncSimple")]}));
    env.set_setting("process_outgoing", false);
    let d = env.start();
    d.create("cms.user", json!({"code_name": "u1"}));
    assert_eq!(d.put("/api/settings", &json!({"process_outgoing": true})).status, 200);
    assert_eq!(d.post("/api/tasks/outgoing/synchronize", &json!({"all": true})).status, 200);
    // The UI's form sends every field: only the one that changed is logged.
    let row = d.connector("A").unwrap();
    let mut whole = json!({});
    for field in [
        "display_name",
        "assembly_name",
        "class_name",
        "enabled",
        "config",
        "isolation",
        "ordering",
        "concurrency",
        "batch_size",
        "rate_limit",
    ] {
        whole[field] = row[field].clone();
    }
    whole["display_name"] = json!("Connector A");
    let r = d.put("/api/connectors/A", &whole);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(d.post("/api/scheduled-tasks/ProcessExternalIntegrationTasks/execute", &json!({})).status, 200);
    let out = env.cli(&["connector", "disable", "A"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let events = d.events("");
    let find = |source: &str, code: &str| -> Value {
        events
            .iter()
            .find(|e| e["source"] == source && e["code"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("no {source} {code} in {events:#?}"))
    };
    let settings = find("Settings key", "UPDATEOBJ");
    assert_eq!(
        (settings["user_name"].as_str(), settings["ip_address"].as_str()),
        (Some("administrator"), Some("127.0.0.1"))
    );
    assert!(settings["description"].as_str().unwrap().contains("process_outgoing: false → true"), "{settings}");
    let sync = find("Integration bus", "SYNCALLTASKSMULTIPLE");
    assert_eq!(sync["user_name"], "administrator");
    assert_eq!(sync["ip_address"], "127.0.0.1");
    assert!(sync["description"].as_str().unwrap().contains("1 Ok"), "{sync}");
    let edit = events
        .iter()
        .find(|e| e["source"] == "Integration connector" && e["user_name"] == "administrator")
        .unwrap_or_else(|| panic!("no API edit in {events:#?}"));
    assert_eq!(edit["description"], json!("Changed connector `A`: display name → `Connector A`"), "{edit}");
    let run = find("Scheduled task", "RUNTASK");
    assert_eq!(run["user_name"], "administrator");
    let cli = events
        .iter()
        .find(|e| e["code"] == "UPDATEOBJ" && e["user_name"] == "cli")
        .unwrap_or_else(|| panic!("no CLI row in {events:#?}"));
    assert!(cli["ip_address"].is_null());
    assert!(cli["description"].as_str().unwrap().contains("enabled → false"), "{cli}");
}
