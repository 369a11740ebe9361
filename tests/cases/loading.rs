//! Loading connector libraries: side by side, several classes, every bad
//! case with its own warning, replacing a build while running.

use bus_tests::{wait_for, TestEnv};
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn two_libraries_load_side_by_side_and_one_library_gives_two_connectors() {
    let env = TestEnv::new();
    env.install("sample_connector", "sample_connector");
    env.install("testkit_connector", "testkit");
    env.sql().execute("UPDATE Integration_Connector SET ConnectorEnabled = 1", []).unwrap();
    env.register("Echo", "testkit", "EchoConnector", true, "");
    env.register("Second", "testkit", "SecondConnector", true, "");
    let d = env.start();

    let sample = d.connector("SampleIntegrationConnector").unwrap();
    let echo = d.connector("Echo").unwrap();
    let second = d.connector("Second").unwrap();
    for c in [&sample, &echo, &second] {
        assert_eq!(c["loaded"], true, "{c}");
        assert_eq!(c["error"], Value::Null, "{c}");
    }
    // Two libraries, each loaded from its own private copy; the two classes
    // of the testkit share one.
    assert_ne!(sample["library"], echo["library"]);
    assert_eq!(echo["library"], second["library"]);
    assert!(!echo["library"].as_str().unwrap().starts_with(env.connectors_dir.to_str().unwrap()));
    // Each connector reports its own subscriptions.
    assert_eq!(sample["subscriptions"].as_array().unwrap().len(), 2);
    assert_eq!(second["subscriptions"][0]["task_type"], "DeleteObject");
    assert_eq!(d.get("/health").body["ready"], true);
}

/// Registers one connector per bad case and checks each gets its own cause,
/// while a good connector loads beside them.
#[test]
fn every_bad_library_gets_its_own_warning_and_the_rest_keep_running() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    env.install("incompatible_connector", "incompatible");
    std::fs::write(env.library_path("garbage"), b"this is not an ELF file at all").unwrap();
    let sample = std::fs::read(bus_tests::artifacts().library("sample_connector")).unwrap();
    std::fs::write(env.library_path("truncated"), &sample[..4096]).unwrap();
    let libz = ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/libz.so.1"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("zlib is installed (Debian package zlib1g)");
    std::fs::copy(libz, env.library_path("zlib")).unwrap();

    env.register("Good", "testkit", "EchoConnector", true, "");
    env.register("Missing", "nowhere", "EchoConnector", true, "");
    env.register("Garbage", "garbage", "EchoConnector", true, "");
    env.register("Truncated", "truncated", "EchoConnector", true, "");
    env.register("Zlib", "zlib", "EchoConnector", true, "");
    env.register("Incompatible", "incompatible", "EchoConnector", true, "");
    env.register("NoClass", "testkit", "NoSuchConnector", true, "");
    env.register("Mismatch", "testkit", "EchoConnector", true, "name=SomethingElse");
    env.register("DotDot", "../testkit", "EchoConnector", true, "");
    env.register("Slash", "sub/testkit", "EchoConnector", true, "");
    env.register("BadSubscription", "testkit", "BadSubscriptionConnector", true, "");
    env.register("FailsToStart", "testkit", "EchoConnector", true, "fail_create=no credentials");
    let d = env.start();

    let expect = [
        ("Missing", "does not exist"),
        ("Garbage", "is not a loadable library"),
        ("Truncated", "is not a loadable library"),
        ("Zlib", "not an integration bus connector"),
        ("Incompatible", "incompatible connector interface"),
        ("NoClass", "class `NoSuchConnector` is not exported"),
        ("Mismatch", "calls itself `SomethingElse` but is registered as `Mismatch`"),
        ("DotDot", "contains `..`"),
        ("Slash", "contains a path separator"),
        ("BadSubscription", "not supported for documents"),
        ("FailsToStart", "refusing to start: no credentials"),
    ];
    for (name, cause) in expect {
        let c = d.connector(name).unwrap();
        assert_eq!(c["loaded"], false, "{name}: {c}");
        let error = c["error"].as_str().unwrap_or_else(|| panic!("{name} has no error: {c}"));
        assert!(error.contains(cause), "{name}: expected `{cause}` in `{error}`");
        assert!(error.len() < 1200, "{name}: the cause should be short, got {} bytes", error.len());
    }
    let good = d.connector("Good").unwrap();
    assert_eq!(good["loaded"], true, "{good}");
    // The incompatible library's layout error keeps only its last lines.
    let incompatible = d.connector("Incompatible").unwrap();
    assert!(incompatible["error"].as_str().unwrap().lines().count() <= 1);
    // One event-log warning per failed connector, and readiness says so.
    let warnings = d.events("&type=W&code=CONNECTORLOAD");
    for (name, _) in expect {
        assert!(
            warnings.iter().any(|w| w["description"].as_str().unwrap().contains(&format!("`{name}`"))),
            "no warning for {name}"
        );
    }
    let health = d.get("/health?probe=ready");
    assert_eq!(health.status, 503);
    assert_eq!(health.body["connectors"]["Good"]["loaded"], true);
    assert!(d.log().contains("connector failed to load"));

    // Reinitialized twice more (edits of another connector): the same
    // problems are not written again; a new problem is.
    let about = |name: &str| {
        d.events("&type=W&code=CONNECTORLOAD")
            .iter()
            .filter(|w| w["description"].as_str().unwrap().contains(&format!("`{name}`")))
            .count()
    };
    assert_eq!(about("Missing"), 1, "one warning for one problem");
    for text in ["Good one", "Good two"] {
        assert_eq!(d.put("/api/connectors/Good", &serde_json::json!({"display_name": text})).status, 200);
    }
    assert_eq!(about("Missing"), 1, "the same problem is not logged at each reinitialization");
    assert_eq!(d.put("/api/connectors/Missing", &serde_json::json!({"assembly_name": "still_not_here"})).status, 200);
    assert_eq!(about("Missing"), 2, "a different problem is");
}

#[test]
fn a_new_build_of_a_library_changes_behaviour_without_a_restart() {
    let env = TestEnv::new();
    let file = env.install("testkit_connector", "echo");
    env.register("Echo", "echo", "EchoConnector", true, "log_on_init");
    let d = env.start();
    let first = d.connector("Echo").unwrap();
    assert_eq!(first["subscriptions"].as_array().unwrap().len(), 1);
    assert!(d.events("&source=Echo&code=INIT").iter().any(|e| e["description"] == "build 1"));

    // Overwrite the file in place, as `cp` would: safe, since the daemon
    // runs a private copy.
    std::fs::copy(bus_tests::artifacts().library("testkit_v2_connector"), &file).unwrap();
    let second = wait_for("the second build to load", WAIT, || {
        d.connector("Echo").filter(|c| c["library"] != first["library"] && c["loaded"] == true)
    });
    assert_eq!(second["subscriptions"].as_array().unwrap().len(), 2, "build 2 subscribes to documents too");
    wait_for("build 2 to initialize", WAIT, || {
        d.events("&source=Echo&code=INIT").iter().any(|e| e["description"] == "build 2").then_some(())
    });
    assert_eq!(second["error"], Value::Null);
}

#[test]
fn a_broken_replacement_keeps_the_previous_build_running() {
    let env = TestEnv::new();
    let file = env.install("testkit_connector", "echo");
    env.register("Echo", "echo", "EchoConnector", true, "");
    let d = env.start();
    let before = d.connector("Echo").unwrap();
    assert_eq!(before["loaded"], true);

    std::fs::write(&file, b"a half-copied, broken build").unwrap();
    let after =
        wait_for("the broken build to be noticed", WAIT, || d.connector("Echo").filter(|c| c["error"].is_string()));
    assert_eq!(after["loaded"], true, "the previous build keeps running: {after}");
    assert_eq!(after["library"], before["library"]);
    let error = after["error"].as_str().unwrap();
    assert!(error.contains("not a loadable library") && error.contains("previous build keeps running"), "{error}");

    // A good build again clears the error.
    std::fs::copy(bus_tests::artifacts().library("testkit_v2_connector"), &file).unwrap();
    wait_for("the good build to load", WAIT, || d.connector("Echo").filter(|c| c["error"].is_null()));
}

#[test]
fn shutdown_calls_every_connectors_shutdown() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    env.register("EchoA", "testkit", "EchoConnector", true, "log_on_shutdown");
    env.register("EchoB", "testkit", "EchoConnector", true, "log_on_shutdown");
    let d = env.start();
    assert_eq!(d.connector("EchoA").unwrap()["loaded"], true);
    let status = d.stop();
    assert!(status.success(), "the daemon exits cleanly on SIGTERM: {status:?}");
    let count: i64 = env
        .sql()
        .query_row("SELECT COUNT(*) FROM CMS_EventLog WHERE EventCode = 'SHUTDOWN'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 2);
}

#[test]
fn a_reinitialization_shuts_the_replaced_instances_down() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    env.register("EchoA", "testkit", "EchoConnector", true, "log_on_shutdown");
    let d = env.start();
    let shutdowns = || {
        env.sql()
            .query_row("SELECT COUNT(*) FROM CMS_EventLog WHERE EventCode = 'SHUTDOWN'", [], |r| r.get::<i64>(0))
            .unwrap()
    };
    assert_eq!(shutdowns(), 0);
    // Edits through the API and through SQL each replace the instance; the
    // replaced one is shut down while the daemon runs (the instance of the
    // first load too, which nothing may keep).
    let r = d.put("/api/connectors/EchoA", &serde_json::json!({"display_name": "Echo A"}));
    assert_eq!(r.status, 200, "{}", r.text);
    bus_tests::wait_for("the first instance's shutdown", Duration::from_secs(20), || (shutdowns() == 1).then_some(()));
    env.sql()
        .execute("UPDATE Integration_Connector SET ConnectorDisplayName = 'Echo' WHERE ConnectorName = 'EchoA'", [])
        .unwrap();
    bus_tests::wait_for("the second instance's shutdown", Duration::from_secs(20), || (shutdowns() == 2).then_some(()));
}

/// A connector whose create outlives the reinitialization (it is
/// `starting`) and then fails writes its load warning once, however many
/// reinitializations meet the same failure; after it loads once, a new
/// failure is written again.
#[test]
fn a_slow_create_that_fails_writes_its_warning_once_over_reinitializations() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    // Its create takes longer than a reinitialization waits (1 s): each
    // reinitialization publishes it as starting, and it fails after.
    let script = |error: Option<&str>| {
        serde_json::json!({"create_sleep_ms": 1500, "create_error": error, "subscriptions": []}).to_string()
    };
    env.register("Slow", "testkit", "ScriptedConnector", true, &script(Some("no licence")));
    env.register("Other", "testkit", "ScriptedConnector", true, "");
    let d = env.start_unsettled();
    let warnings = |d: &bus_tests::Daemon| {
        d.events("&type=W&code=CONNECTORLOAD")
            .iter()
            .filter(|w| w["description"].as_str().unwrap().contains("`Slow`"))
            .count()
    };
    let settled = |d: &bus_tests::Daemon| {
        bus_tests::wait_for("Slow to settle", Duration::from_secs(30), || {
            let c = d.connector("Slow")?;
            (c["starting"] == false && c["error"].as_str().is_some_and(|e| e.contains("no licence"))).then_some(())
        })
    };
    settled(&d);
    assert_eq!(warnings(&d), 1);
    for text in ["one", "two"] {
        assert_eq!(d.put("/api/connectors/Other", &serde_json::json!({"display_name": text})).status, 200);
        settled(&d);
    }
    assert_eq!(warnings(&d), 1, "the same failure after each reinitialization is written once");
    // Loaded once, then failing again: written again.
    assert_eq!(d.put("/api/connectors/Slow", &serde_json::json!({"config": script(None)})).status, 200);
    bus_tests::wait_for("Slow to load", Duration::from_secs(30), || {
        (d.connector("Slow")?["loaded"] == true).then_some(())
    });
    assert_eq!(d.put("/api/connectors/Slow", &serde_json::json!({"config": script(Some("no licence"))})).status, 200);
    bus_tests::wait_for("the failure written again", Duration::from_secs(30), || (warnings(&d) == 2).then_some(()));
}
