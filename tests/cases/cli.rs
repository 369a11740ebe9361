//! `bus-daemon connector …` and `eventlog` on the database of a running daemon.

use bus_tests::{wait_for, TestEnv};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails(out: std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure, got: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn connector_commands_edit_the_registry_of_a_running_daemon() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    let d = env.start();

    let out = ok(env.cli(&["connector", "add", "--name", "Cli", "--assembly", "testkit", "--class", "EchoConnector"]));
    assert!(out.contains("registered connector `Cli`"), "{out}");
    wait_for("the daemon to see the new row", WAIT, || d.connector("Cli").filter(|c| c["loaded"] == false));

    ok(env.cli(&["connector", "enable", "Cli"]));
    wait_for("the connector to load", WAIT, || d.connector("Cli").filter(|c| c["loaded"] == true));

    ok(env.cli(&["connector", "edit", "Cli", "--config-text", "name=Other"]));
    let c = wait_for("the edit to apply", WAIT, || d.connector("Cli").filter(|c| c["error"].is_string()));
    assert!(c["error"].as_str().unwrap().contains("calls itself `Other`"));

    ok(env.cli(&["connector", "edit", "Cli", "--config-text", "", "--display-name", "From the CLI"]));
    wait_for("the fix to apply", WAIT, || d.connector("Cli").filter(|c| c["loaded"] == true && c["error"].is_null()));

    let list = ok(env.cli(&["connector", "list"]));
    assert!(list.contains("Cli") && list.contains("From the CLI") && list.contains("yes"), "{list}");
    let json: serde_json::Value = serde_json::from_str(&ok(env.cli(&["connector", "list", "--json"]))).unwrap();
    assert!(json.as_array().unwrap().iter().any(|c| c["name"] == "Cli"));
    let show = ok(env.cli(&["connector", "show", "Cli"]));
    assert!(show.contains("EchoConnector"), "{show}");
    ok(env.cli(&["connector", "edit", "Cli", "--isolation", "in-process"]));
    wait_for("the in-process instance", WAIT, || {
        d.connector("Cli").filter(|c| c["running_isolation"] == "in-process" && c["loaded"] == true)
    });
    let show = ok(env.cli(&["connector", "show", "Cli"]));
    assert!(show.contains("isolation:     in-process"), "{show}");
    let err = fails(env.cli(&["connector", "edit", "Cli", "--isolation", "sandbox"]));
    assert!(err.contains("`sandbox` is not an isolation"), "{err}");

    ok(env.cli(&["connector", "disable", "Cli"]));
    wait_for("the connector to unload", WAIT, || d.connector("Cli").filter(|c| c["loaded"] == false));
    ok(env.cli(&["connector", "delete", "Cli"]));
    wait_for("the row to disappear", WAIT, || d.connector("Cli").is_none().then_some(()));
}

#[test]
fn connector_commands_explain_bad_input() {
    let env = TestEnv::new();
    let err = fails(env.cli(&["connector", "delete", "Nope"]));
    assert!(err.contains("no connector with code name `Nope`"), "{err}");
    let err = fails(env.cli(&["connector", "add", "--name", "a/b", "--assembly", "x", "--class", "C"]));
    assert!(err.contains("invalid code name"), "{err}");
    let err = fails(env.cli(&["connector", "add", "--name", "Ok", "--assembly", "../x", "--class", "C"]));
    assert!(err.contains("connectors folder"), "{err}");
    let err = fails(env.cli(&["connector", "edit", "SampleIntegrationConnector"]));
    assert!(err.contains("nothing to change"), "{err}");
    let err = fails(env.cli(&[
        "connector",
        "add",
        "--name",
        "SampleIntegrationConnector",
        "--assembly",
        "x",
        "--class",
        "C",
    ]));
    assert!(err.contains("already registered"), "{err}");
    let err = fails(env.cli(&["eventlog", "--type", "Q"]));
    assert!(err.contains("--type must be I, W or E"), "{err}");
}

#[test]
fn eventlog_command_shows_the_newest_rows() {
    let env = TestEnv::new();
    env.register("Broken", "missing", "EchoConnector", true, "");
    let d = env.start();
    wait_for("the load warning", WAIT, || d.connector("Broken").filter(|c| c["error"].is_string()));
    let out = ok(env.cli(&["eventlog", "--type", "W"]));
    assert!(out.contains("CONNECTORLOAD") && out.contains("`Broken`"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&ok(env.cli(&["eventlog", "--json", "--limit", "1"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
}

#[test]
fn schedule_commands_list_change_and_run_the_scheduled_task() {
    let env = TestEnv::new();
    let d = env.start();
    let list = ok(env.cli(&["schedule", "list"]));
    assert!(list.contains("ProcessExternalIntegrationTasks") && list.contains("86400s"), "{list}");
    let set = ok(env.cli(&["schedule", "set", "ProcessExternalIntegrationTasks", "--interval-seconds", "3600"]));
    assert!(set.contains("every 3600s"), "{set}");
    ok(env.cli(&["schedule", "run", "ProcessExternalIntegrationTasks"]));
    wait_for("the daemon to run it", WAIT, || {
        let t = d.get("/api/scheduled-tasks/ProcessExternalIntegrationTasks").body;
        (t["executions"] == 1).then_some(t)
    });
    let err = fails(env.cli(&["schedule", "run", "Nope"]));
    assert!(err.contains("no scheduled task named `Nope`"), "{err}");
    let err = fails(env.cli(&["schedule", "set", "ProcessExternalIntegrationTasks", "--interval-seconds", "0"]));
    assert!(err.contains("interval_seconds must be between"), "{err}");
}

#[test]
fn task_commands_list_show_sync_and_delete() {
    let env = TestEnv::new();
    env.scripted("A", serde_json::json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects"}]}));
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(d.create("cms.user", serde_json::json!({"code_name": format!("u{i}")}))["task_id"].as_i64().unwrap());
    }
    let list = ok(env.cli(&["task", "list", "--connector", "A"]));
    assert_eq!(list.lines().count(), 6, "a header and five tasks: {list}");
    assert!(list.lines().nth(1).unwrap().contains("Create User 'u0'"), "oldest first: {list}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(env.cli(&["task", "list", "--json", "--limit", "2"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    let show: serde_json::Value = serde_json::from_str(&ok(env.cli(&["task", "show", &ids[0].to_string()]))).unwrap();
    assert_eq!(show["data"]["object"]["code_name"], "u0");
    let err = fails(env.cli(&["task", "show", "999999"]));
    assert!(err.contains("no task with ID 999999"), "{err}");

    // Synchronize is refused by the daemon while processing is off.
    let url = format!("http://{}", d.addr);
    let err = fails(env.cli(&["task", "sync", "--all", "--url", &url]));
    assert!(err.contains("processing of outgoing tasks is disabled"), "{err}");
    env.set_setting("process_outgoing", true);
    let selected = format!("{},{}", ids[0], ids[1]);
    let out = env.cli(&["task", "sync", "--ids", &selected, "--url", &url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2/2"), "a progress bar");
    assert!(String::from_utf8_lossy(&out.stdout).contains("synchronized 2 outgoing task(s)"));
    let remaining = ok(env.cli(&["task", "list", "--json"]));
    let remaining: serde_json::Value = serde_json::from_str(&remaining).unwrap();
    let left: Vec<i64> = remaining.as_array().unwrap().iter().map(|t| t["task_id"].as_i64().unwrap()).collect();
    // Switching processing on starts nothing by itself: only the selected
    // tasks went; the rest waits for the next trigger (spec walk-through).
    assert_eq!(left, ids[2..], "only the synchronized tasks are gone");

    // Delete one, then all.
    let deleted = ok(env.cli(&["task", "delete", "--ids", &ids[4].to_string()]));
    assert!(deleted.contains("deleted 1"), "{deleted}");
    ok(env.cli(&["task", "delete", "--all"]));
    assert!(d.queue("outgoing", "").is_empty());
    let err = fails(env.cli(&["task", "delete"]));
    assert!(err.contains("--ids") || err.contains("--all"), "{err}");
    let err = fails(env.cli(&["task", "sync", "--all", "--url", "http://127.0.0.1:9"]));
    assert!(err.contains("cannot reach the daemon"), "{err}");
}
