//! Registry edits made by another process are picked up by a running
//! daemon, and every connector is reinitialized.

use bus_tests::{wait_for, Daemon, TestEnv};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn init_count(d: &Daemon, name: &str) -> usize {
    d.events(&format!("&source={name}&code=INIT")).len()
}

#[test]
fn edits_through_a_separate_sqlite_connection_reinitialize_every_connector() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    env.install("sample_connector", "sample_connector");
    env.register("Watcher", "testkit", "EchoConnector", true, "log_on_init");
    let d = env.start();
    assert_eq!(init_count(&d, "Watcher"), 1);
    let sql = env.sql();

    // Add.
    sql.execute(
        "INSERT INTO Integration_Connector (ConnectorName, ConnectorDisplayName, ConnectorAssemblyName, \
         ConnectorClassName, ConnectorEnabled) VALUES ('Added', 'Added', 'testkit', 'EchoConnector', 1)",
        [],
    )
    .unwrap();
    wait_for("the added connector to load", WAIT, || d.connector("Added").filter(|c| c["loaded"] == true));
    // Every connector was reinitialized, not only the new one.
    wait_for("the other connector to be reinitialized", WAIT, || (init_count(&d, "Watcher") >= 2).then_some(()));

    // Enable.
    sql.execute(
        "UPDATE Integration_Connector SET ConnectorEnabled = 1 WHERE ConnectorName = 'SampleIntegrationConnector'",
        [],
    )
    .unwrap();
    wait_for("the sample to load", WAIT, || d.connector("SampleIntegrationConnector").filter(|c| c["loaded"] == true));

    // Disable.
    sql.execute("UPDATE Integration_Connector SET ConnectorEnabled = 0 WHERE ConnectorName = 'Added'", []).unwrap();
    wait_for("the disabled connector to unload", WAIT, || d.connector("Added").filter(|c| c["loaded"] == false));

    // Edit: a new config reaches the connector (it now reports another name).
    let before = init_count(&d, "Watcher");
    sql.execute(
        "UPDATE Integration_Connector SET ConnectorConfig = 'name=Renamed;log_on_init' WHERE ConnectorName = 'Watcher'",
        [],
    )
    .unwrap();
    let edited = wait_for("the edit to apply", WAIT, || d.connector("Watcher").filter(|c| c["error"].is_string()));
    assert!(edited["error"].as_str().unwrap().contains("calls itself `Renamed`"), "{edited}");
    assert!(init_count(&d, "Watcher") > before, "the edited row was created and initialized anew");

    // Delete.
    sql.execute("DELETE FROM Integration_Connector WHERE ConnectorName = 'Added'", []).unwrap();
    wait_for("the deleted connector to leave the loaded set", WAIT, || {
        let health = d.get("/health").body;
        health["connectors"].get("Added").is_none().then_some(())
    });
    // Start, add, enable, disable, edit, delete: one reinitialization each.
    assert_eq!(d.get("/health").body["reinitializations"], 6);
}
