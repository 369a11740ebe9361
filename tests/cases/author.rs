//! The tools for connector authors, as an author uses them: the daemon and
//! its command line, real cdylibs loaded through the real loader.

use bus_tests::artifacts::artifacts;
use bus_tests::{Daemon, TestEnv};
use serde_json::{json, Value};

/// A scripted connector `Erp` taking every user change, with processing
/// off so its tasks stay queued; three users, the second one's task
/// answered `Error` by the connector.
fn three_queued_tasks(env: &TestEnv) -> (Daemon, Vec<i64>) {
    env.scripted("Erp", json!({"subscriptions": [{"scope": "objects", "process_type": "AsyncSimple"}]}));
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let tasks = [
        json!({"code_name": "ann"}),
        json!({"code_name": "bob", "fields": {"outcome": "Error", "message": "no such customer in the ERP"}}),
        json!({"code_name": "cy", "fields": {"outcome": "ErrorAndSkip", "message": "bad e-mail"}}),
    ]
    .into_iter()
    .map(|user| d.create("cms.user", user)["task_id"].as_i64().expect("a task was logged"))
    .collect();
    (d, tasks)
}

/// What a test must find untouched: queued relations, tasks, event-log rows.
fn footprint(env: &TestEnv) -> (i64, i64, i64) {
    let count = |table: &str| -> i64 {
        env.sql().query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
    };
    (count("Integration_Synchronization"), count("Integration_Task"), count("CMS_EventLog"))
}

fn lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn export_then_replay_reports_each_tasks_outcome_and_writes_nothing() {
    let env = TestEnv::new();
    let (d, tasks) = three_queued_tasks(&env);
    let file = env.dir.path().join("erp-tasks.jsonl");

    let out = env.cli(&["task", "export", "--connector", "Erp", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("exported 3 outgoing task(s)"), "{}", stderr(&out));
    let exported: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let ids: Vec<i64> = exported.iter().map(|t| t["task_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, tasks, "every queued task, oldest first");
    for task in &exported {
        assert_eq!(task["connector"], "Erp");
        assert_eq!(task["direction"], "outgoing");
        // Exactly what the connector receives (the API's own view of it).
        let sent = d.get(&format!("/api/tasks/{}/payload?connector=Erp", task["task_id"]));
        assert_eq!(sent.status, 200, "{}", sent.text);
        assert_eq!(task["document"], sent.body);
    }
    // Stopped, so nothing but the replay could write.
    d.stop();
    let before = footprint(&env);

    // Replayed against a build outside the connectors folder, in a process
    // of its own: one line per task, the exit status says a task failed.
    let library = artifacts().library("testkit_connector");
    let replay = |file: &std::path::Path| {
        env.cli(&[
            "connector",
            "replay",
            "--library",
            library.to_str().unwrap(),
            "--class",
            "ScriptedConnector",
            "--config-text",
            r#"{"name": "Erp", "subscriptions": [{"scope": "objects", "process_type": "AsyncSimple"}]}"#,
            file.to_str().unwrap(),
        ])
    };
    let out = replay(&file);
    assert!(!out.status.success(), "a task that was not Ok fails the replay");
    assert_eq!(
        lines(&out),
        [
            format!("{}\tOk\t", tasks[0]),
            format!("{}\tError\tno such customer in the ERP", tasks[1]),
            format!("{}\tErrorAndSkip\tbad e-mail", tasks[2]),
        ]
    );
    assert!(stderr(&out).contains("2 of 3 task(s) were not Ok"), "{}", stderr(&out));
    // What the connector wrote to the event log is shown, not stored.
    assert!(stderr(&out).contains("event Information"), "{}", stderr(&out));
    assert_eq!(footprint(&env), before, "the replay wrote nothing: the queue is as it was");

    // Only the good task: the replay succeeds.
    let good = env.dir.path().join("good.jsonl");
    let first = std::fs::read_to_string(&file).unwrap().lines().next().unwrap().to_owned();
    std::fs::write(&good, format!("{first}\n")).unwrap();
    let out = replay(&good);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&out), [format!("{}\tOk\t", tasks[0])]);
}

#[test]
fn export_and_replay_refuse_bad_input_clearly_and_leave_no_half_file() {
    let env = TestEnv::new();
    let (_d, _tasks) = three_queued_tasks(&env);
    let out = env.cli(&["task", "export", "--connector", "Nobody"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Nobody"), "the unknown connector is named: {}", stderr(&out));

    // Into a folder that does not exist: an error, and no file anywhere.
    let missing = env.dir.path().join("no-such-folder").join("x.jsonl");
    let out = env.cli(&["task", "export", "--connector", "Erp", "--out", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no-such-folder"), "{}", stderr(&out));
    assert!(!missing.exists());

    let library = artifacts().library("testkit_connector");
    let replay = |contents: &str| {
        let file = env.dir.path().join("bad.jsonl");
        std::fs::write(&file, contents).unwrap();
        env.cli(&[
            "connector",
            "replay",
            "--library",
            library.to_str().unwrap(),
            "--class",
            "ScriptedConnector",
            file.to_str().unwrap(),
        ])
    };
    let out = env.cli(&["task", "export", "--connector", "Erp"]);
    let good = String::from_utf8_lossy(&out.stdout).lines().next().unwrap().to_owned();
    for (contents, says) in [
        (format!("{good}\nnot json\n"), "line 2"),
        (good.replace("\"outgoing\"", "\"incoming\""), "only outgoing tasks can be replayed"),
        (good.replace("\"task_id\"", "\"task\""), "line 1"),
    ] {
        let out = replay(&contents);
        assert!(!out.status.success(), "{contents}");
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
        assert!(lines(&out).is_empty(), "nothing was called: {:?}", lines(&out));
    }
    let file = env.dir.path().join("good.jsonl");
    std::fs::write(&file, format!("{good}\n")).unwrap();
    let out = env.cli(&[
        "connector",
        "replay",
        "--library",
        library.to_str().unwrap(),
        "--class",
        "NoSuchClass",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("NoSuchClass"), "{}", stderr(&out));
}
