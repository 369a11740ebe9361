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
