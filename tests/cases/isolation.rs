//! Connector isolation: under `process` (the shipped default) a connector
//! that segfaults, aborts, overflows its stack, exits, spins or leaks harms
//! only itself — the daemon's PID stays, `/health` stays live, the other
//! connectors keep delivering, the failing task is reported with its cause
//! and retried in order, and the connector resumes once the cause is gone.
//! Under `in-process` a crash ends the daemon (RELIABILITY.md says so).

use bus_tests::{wait_for, Daemon, TestEnv};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn users() -> Value {
    json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]})
}

fn names(d: &Daemon, connector: &str) -> Vec<String> {
    d.reports(connector).iter().filter_map(|r| r["name"].as_str().map(str::to_owned)).collect()
}

/// The relation of `connector` to a task, once it recorded an error.
fn failure(d: &Daemon, task: i64, connector: &str) -> Value {
    wait_for("the task to fail", WAIT, || {
        let detail = d.get(&format!("/api/tasks/{task}")).body;
        detail["relations"].as_array()?.iter().find(|r| r["connector"] == connector && r["error"].is_string()).cloned()
    })
}

/// Two connectors on the same users; `Crashy` obeys `crash` fields.
fn two_connectors(env: &TestEnv) -> Daemon {
    let mut crashy = users();
    crashy["crashes"] = json!(true);
    env.scripted("Crashy", crashy);
    env.scripted("Steady", users());
    env.start()
}

#[test]
fn a_crash_in_a_connector_process_harms_only_that_connector() {
    let env = TestEnv::new();
    let d = two_connectors(&env);
    let daemon_pid = d.pid();
    let crashy = d.connector("Crashy").unwrap();
    assert_eq!(crashy["running_isolation"], "process", "{crashy}");
    let first_child = crashy["pid"].as_u64().expect("a connector process");
    assert_ne!(first_child, u64::from(daemon_pid));

    d.create("cms.user", json!({"code_name": "before"}));
    wait_for("both to get the first user", WAIT, || {
        (names(&d, "Crashy") == ["before"] && names(&d, "Steady") == ["before"]).then_some(())
    });
    let mut expected_steady = vec!["before".to_owned()];
    for (how, cause) in [
        ("segfault", "signal 11 (SIGSEGV)"),
        ("abort", "aborted (signal 6, SIGABRT)"),
        ("overflow", "overflowed its stack"),
        ("exit", "exited with code 3"),
    ] {
        let victim = d.create("cms.user", json!({"code_name": format!("die-{how}"), "fields": {"crash": how}}));
        let victim = victim["task_id"].as_i64().unwrap();
        let after = format!("after-{how}");
        d.create("cms.user", json!({"code_name": after}));
        expected_steady.extend([format!("die-{how}"), after.clone()]);
        // The other connector gets everything, in order.
        wait_for("Steady to keep delivering", WAIT, || (names(&d, "Steady") == expected_steady).then_some(()));
        // The failing task names the cause and is retried: the queue stops at it.
        let relation = failure(&d, victim, "Crashy");
        let error = relation["error"].as_str().unwrap();
        assert!(error.contains(cause), "{how}: {error}");
        wait_for("a retry", WAIT, || {
            let detail = d.get(&format!("/api/tasks/{victim}")).body;
            let attempts =
                detail["relations"].as_array()?.iter().find(|r| r["connector"] == "Crashy")?["attempts"].as_i64()?;
            (attempts >= 2).then_some(())
        });
        assert!(!names(&d, "Crashy").contains(&after), "{how}: the task after the failing one waits");
        // The daemon never went down.
        assert_eq!(d.pid(), daemon_pid);
        let health = d.get("/health");
        assert_eq!(health.status, 200);
        assert_eq!(health.body["live"], true);
        // The cause removed (the task deleted for Crashy), the queue resumes in order.
        assert_eq!(d.delete(&format!("/api/tasks/{victim}?connector=Crashy")).status, 204);
        wait_for("Crashy to resume", WAIT, || names(&d, "Crashy").last().is_some_and(|n| *n == after).then_some(()));
    }
    let crashy = d.connector("Crashy").unwrap();
    assert!(crashy["restarts"].as_u64().unwrap() >= 4, "{crashy}");
    assert_ne!(crashy["pid"].as_u64(), Some(first_child), "a new process runs");
    let health = d.get("/health").body;
    assert!(health["connectors"]["Crashy"]["restarts"].as_u64().unwrap() >= 4, "{health}");
    assert!(d.get("/metrics").text.contains("bus_connector_restarts_total{connector=\"Crashy\"}"));
    let crashes = d.events("&source=Crashy&type=E");
    assert!(
        crashes.iter().any(|e| e["code"] == "CONNECTORCRASH"
            && e["description"].as_str().unwrap().contains("Crashy")
            && e["description"].as_str().unwrap().contains("SIGSEGV")),
        "{crashes:?}"
    );
    assert_eq!(names(&d, "Steady").len(), 9, "nothing repeated for the steady connector");
}

/// A task that makes Crashy die `how`, then one more: Steady gets both,
/// Crashy's relation to the first records an error (returned), and once it
/// is deleted Crashy goes on with the next one.
fn dies_then_resumes(d: &Daemon, how: &str) -> String {
    let victim = d.create("cms.user", json!({"code_name": how, "fields": {"crash": how}}));
    let victim = victim["task_id"].as_i64().unwrap();
    d.create("cms.user", json!({"code_name": "next"}));
    wait_for("Steady to deliver both", WAIT, || (names(d, "Steady") == [how, "next"]).then_some(()));
    let error = failure(d, victim, "Crashy")["error"].as_str().unwrap().to_owned();
    assert_eq!(d.delete(&format!("/api/tasks/{victim}?connector=Crashy")).status, 204);
    wait_for("Crashy to resume", WAIT, || (names(d, "Crashy") == ["next"]).then_some(()));
    error
}

#[test]
fn a_spinning_call_is_killed_at_the_deadline() {
    let env = TestEnv::new();
    env.configure("call_timeout_ms = 700");
    let d = two_connectors(&env);
    let error = dies_then_resumes(&d, "spin");
    assert!(error.contains("within 700 ms") && error.contains("killed"), "{error}");
    // A hung call does not leave the connector hung: its process is gone.
    let health = d.get("/health").body;
    assert!(health["connectors"]["Crashy"]["hung_for_seconds"].is_null(), "{health}");
    let timeouts = d.events("&source=Crashy&type=E");
    assert!(timeouts.iter().any(|e| e["code"] == "CONNECTORTIMEOUT"), "{timeouts:?}");
}

#[test]
fn a_leak_past_the_memory_limit_stops_only_that_connector() {
    let env = TestEnv::new();
    env.isolate("[isolation]\nmode = \"process\"\nmemory_limit_mb = 256");
    let d = two_connectors(&env);
    let error = dies_then_resumes(&d, "leak");
    assert!(error.contains("memory allocation") && error.contains("failed"), "{error}");
    // The daemon itself stayed small.
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    assert!(rss_kb < 200 * 1024, "the daemon's RSS is {rss_kb} kB");
}

#[test]
fn a_call_past_the_cpu_limit_is_stopped_by_the_kernel() {
    let env = TestEnv::new();
    env.isolate("[isolation]\nmode = \"process\"\ncpu_limit_seconds = 1");
    let d = two_connectors(&env);
    let error = dies_then_resumes(&d, "spin");
    assert!(error.contains("SIGXCPU"), "{error}");
}

#[test]
fn a_connector_that_prints_does_not_corrupt_the_protocol() {
    let env = TestEnv::new();
    env.scripted("Chatty", users());
    let d = env.start();
    for i in 0..20 {
        let noise = format!("{{\"status\":\"ok\"}} line {i} with \u{0}binary-ish\u{7f} text");
        d.create("cms.user", json!({"code_name": format!("u{i}"), "fields": {"print": noise}}));
    }
    wait_for("all 20 delivered", WAIT, || (names(&d, "Chatty").len() == 20).then_some(()));
    wait_for("the output in the daemon's log", WAIT, || {
        let log = d.log();
        (log.contains("Chatty") && log.contains("line 19 with")).then_some(())
    });
    assert_eq!(d.connector("Chatty").unwrap()["restarts"], 0);
}

#[test]
fn connector_processes_follow_reloads_and_die_with_the_daemon() {
    let env = TestEnv::new();
    env.scripted("Worker", users());
    let d = env.start();
    let first = d.connector("Worker").unwrap()["pid"].as_u64().unwrap() as u32;
    assert!(alive(first));
    // A config change is a new instance: a new process, the old one shut down.
    let r = d.put("/api/connectors/Worker", &json!({"config": users().to_string() + " "}));
    assert_eq!(r.status, 200, "{}", r.text);
    let second = wait_for("a new process", WAIT, || {
        d.connector("Worker").unwrap()["pid"].as_u64().map(|p| p as u32).filter(|p| *p != first)
    });
    wait_for("the old process to end", WAIT, || (!alive(first)).then_some(()));
    d.create("cms.user", json!({"code_name": "still-works"}));
    wait_for("the new process to deliver", WAIT, || (names(&d, "Worker") == ["still-works"]).then_some(()));
    // Switched to in-process by plain SQL: no process any more.
    env.sql()
        .execute(
            "UPDATE Integration_Connector SET ConnectorIsolation = 'in-process' WHERE ConnectorName = 'Worker'",
            [],
        )
        .unwrap();
    wait_for("the in-process instance", WAIT, || {
        let c = d.connector("Worker").unwrap();
        (c["running_isolation"] == "in-process" && c["pid"].is_null() && c["isolation"] == "in-process").then_some(())
    });
    wait_for("its process to end", WAIT, || (!alive(second)).then_some(()));
    env.sql()
        .execute("UPDATE Integration_Connector SET ConnectorIsolation = NULL WHERE ConnectorName = 'Worker'", [])
        .unwrap();
    let third = wait_for("a process again", WAIT, || d.connector("Worker").unwrap()["pid"].as_u64().map(|p| p as u32));
    // A daemon killed with SIGKILL takes its connector processes with it.
    d.kill();
    wait_for("the connector process to die with the daemon", WAIT, || (!alive(third)).then_some(()));
}

#[test]
fn an_unusable_isolation_value_is_a_row_problem_that_names_the_column() {
    let env = TestEnv::new();
    env.scripted("Odd", users());
    env.sql()
        .execute("UPDATE Integration_Connector SET ConnectorIsolation = 'sandbox' WHERE ConnectorName = 'Odd'", [])
        .unwrap();
    let d = env.start();
    let odd = d.connector("Odd").unwrap();
    let error = odd["error"].as_str().unwrap();
    assert!(
        error.contains("ConnectorIsolation") && error.contains("sandbox") && error.contains("in-process"),
        "{error}"
    );
    let r = d.put("/api/connectors/Odd", &json!({"isolation": "sandbox"}));
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("sandbox") && r.text.contains("in-process"), "{}", r.text);
    let r = d.put("/api/connectors/Odd", &json!({"isolation": "in-process"}));
    assert_eq!(r.status, 200, "{}", r.text);
    wait_for("Odd to load in-process", WAIT, || {
        let c = d.connector("Odd").unwrap();
        (c["loaded"] == true && c["running_isolation"] == "in-process").then_some(())
    });
}

#[test]
fn in_process_a_crash_ends_the_daemon() {
    let env = TestEnv::new();
    env.isolate("isolation = \"in-process\"");
    env.scripted("Crashy", json!({"subscriptions": users()["subscriptions"], "crashes": true}));
    let mut d = env.start();
    assert_eq!(d.connector("Crashy").unwrap()["running_isolation"], "in-process");
    // The answer may not make it out: the daemon dies with the delivery.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        d.post("/api/objects/cms.user", &json!({"code_name": "die", "fields": {"crash": "abort"}}))
    }));
    wait_for("the daemon to die", WAIT, || (!d.is_running()).then_some(()));
}

fn alive(pid: u32) -> bool {
    // A zombie (exited, not reaped yet) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn bad_isolation_settings_stop_the_start_with_a_clear_error() {
    for (entry, says) in [
        ("isolation = \"sandbox\"", "isolation = \"sandbox\" is not a mode: use \"process\" or \"in-process\""),
        ("[isolation]\nmode = \"sandbox\"", "unknown variant `sandbox`"),
        ("[isolation]\nbatch_size = 0", "batch_size must be between 1 and 1000, not 0"),
        ("[isolation]\nmemory_limit_mb = 4", "memory_limit_mb must be at least 16"),
        ("[isolation]\ncpu_limit_seconds = 0", "must be at least 1 when set"),
    ] {
        let env = TestEnv::new();
        env.isolate(entry);
        let err = env.start_fails();
        assert!(err.contains(says), "{entry}: {err}");
    }
}

/// The processes whose command line is exactly `args` (NUL-separated in
/// `/proc/<pid>/cmdline`).
fn processes_running(args: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .collect()
}

#[test]
fn what_a_connector_process_starts_neither_hides_its_end_nor_reads_its_calls() {
    let env = TestEnv::new();
    let d = two_connectors(&env);
    // A program the connector starts that reads its stdin gets nothing of
    // the protocol: every call after it arrives.
    d.create("cms.user", json!({"code_name": "thief", "fields": {"crash": "stdin-thief"}}));
    let mut expected = vec!["thief".to_owned()];
    for i in 0..30 {
        d.create("cms.user", json!({"code_name": format!("t{i}")}));
        expected.push(format!("t{i}"));
    }
    wait_for("every call to reach Crashy", WAIT, || (names(&d, "Crashy") == expected).then_some(()));

    // A connector that exits and leaves a process behind (holding whatever
    // it inherited): the exit is seen, the cause named, the process started
    // again, and the leftover ended with it.
    let marker = "297.5";
    let victim = d.create("cms.user", json!({"code_name": "orphan", "fields": {"crash": format!("orphan:{marker}")}}));
    let victim = victim["task_id"].as_i64().unwrap();
    d.create("cms.user", json!({"code_name": "after-orphan"}));
    let error = failure(&d, victim, "Crashy")["error"].as_str().unwrap().to_owned();
    assert!(error.contains("exited with code 3"), "{error}");
    wait_for("the leftover process to be ended", WAIT, || {
        processes_running(&["sleep", marker]).is_empty().then_some(())
    });
    assert_eq!(d.delete(&format!("/api/tasks/{victim}?connector=Crashy")).status, 204);
    wait_for("Crashy to resume", WAIT, || {
        names(&d, "Crashy").last().is_some_and(|n| n == "after-orphan").then_some(())
    });
    let crashy = d.connector("Crashy").unwrap();
    assert!(crashy["restarts"].as_u64().unwrap() >= 1, "{crashy}");
    assert!(names(&d, "Steady").contains(&"after-orphan".to_owned()));
}

/// The daemon's resident memory now and its peak since the last reset, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the daemon's peak resident memory to what it uses now.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

#[test]
fn a_connector_flooding_its_output_is_cut_rate_limited_and_bounded() {
    let env = TestEnv::new();
    let d = two_connectors(&env);
    let pid = d.pid();
    d.create("cms.user", json!({"code_name": "warm"}));
    wait_for("a first delivery", WAIT, || (names(&d, "Crashy") == ["warm"]).then_some(()));
    reset_peak(pid);
    let (before, _) = memory_kib(pid);
    // 64 MiB without a newline, then 20,000 short lines.
    d.create("cms.user", json!({"code_name": "flood", "fields": {"crash": "flood:67108864"}}));
    d.create("cms.user", json!({"code_name": "lines", "fields": {"crash": "flood-lines:20000"}}));
    d.create("cms.user", json!({"code_name": "after"}));
    wait_for("the floods to pass", WAIT, || (names(&d, "Crashy") == ["warm", "flood", "lines", "after"]).then_some(()));
    let (_, peak) = memory_kib(pid);
    assert!(peak.saturating_sub(before) < 32 * 1024, "the daemon grew from {before} KiB to a peak of {peak} KiB");
    let log = wait_for("the rate limit to be reported", WAIT, || {
        let log = std::fs::read_to_string(&d.log_path).unwrap();
        log.contains("connector output is over the rate limit").then_some(log)
    });
    let longest = log.lines().map(str::len).max().unwrap();
    assert!(longest < 8 * 1024, "a log line of {longest} bytes");
    assert!(log.contains("[cut: the line is longer than 4096 bytes]"));
    let logged = log.lines().filter(|l| l.contains("flood line ")).count();
    assert!((1..5_000).contains(&logged), "{logged} of 20,000 lines logged");
    assert_eq!(d.get("/health").body["connectors"]["Crashy"]["restarts"], 0, "flooding is not a crash");
}

#[test]
fn a_huge_error_message_is_cut_and_an_oversized_answer_is_not_read() {
    let env = TestEnv::new();
    let d = two_connectors(&env);
    let pid = d.pid();
    let long =
        d.create("cms.user", json!({"code_name": "long", "fields": {"outcome": "Error", "message_bytes": 1_000_000}}));
    let long = long["task_id"].as_i64().unwrap();
    let error = failure(&d, long, "Crashy")["error"].as_str().unwrap().to_owned();
    assert!(error.len() < 4200, "{} bytes kept", error.len());
    assert!(error.starts_with("eeee") && error.ends_with("[cut: the message has 1000000 bytes]"), "{}", &error[4000..]);
    let detail = d.get(&format!("/api/tasks/{long}")).body;
    let relation = detail["relations"].as_array().unwrap().iter().find(|r| r["connector"] == "Crashy").unwrap().clone();
    assert!(relation["log"][0]["error"].as_str().unwrap().len() < 4200);
    assert_eq!(d.delete(&format!("/api/tasks/{long}?connector=Crashy")).status, 204);

    reset_peak(pid);
    let (before, _) = memory_kib(pid);
    let huge = d
        .create("cms.user", json!({"code_name": "huge", "fields": {"outcome": "Error", "message_bytes": 100_000_000}}));
    let huge = huge["task_id"].as_i64().unwrap();
    let error = failure(&d, huge, "Crashy")["error"].as_str().unwrap().to_owned();
    assert!(error.contains("over the limit of 64 MiB"), "{error}");
    let (_, peak) = memory_kib(pid);
    assert!(peak.saturating_sub(before) < 32 * 1024, "the daemon grew from {before} KiB to a peak of {peak} KiB");
    assert_eq!(d.delete(&format!("/api/tasks/{huge}?connector=Crashy")).status, 204);
    d.create("cms.user", json!({"code_name": "next"}));
    wait_for("Crashy to go on", WAIT, || names(&d, "Crashy").last().is_some_and(|n| n == "next").then_some(()));
}

#[test]
fn a_connector_hanging_in_create_delays_no_other_connector() {
    let env = TestEnv::new();
    env.configure("call_timeout_ms = 8000");
    let mut hangs = users();
    hangs["create_sleep_ms"] = json!(60_000);
    env.scripted("Hangs", hangs);
    env.scripted("Fast", users());
    let d = env.start_unsettled();
    // Fast runs while Hangs is still in its constructor.
    d.create("cms.user", json!({"code_name": "first"}));
    wait_for("Fast to deliver", WAIT, || (names(&d, "Fast") == ["first"]).then_some(()));
    let still = d.connector("Hangs").unwrap();
    assert_eq!(still["starting"], true, "{still}");
    assert_eq!(still["loaded"], false, "{still}");
    assert!(still["error"].as_str().unwrap().starts_with("starting"), "{still}");
    let health = d.get("/health?probe=ready");
    assert_eq!(health.status, 503, "not ready while a connector is starting: {}", health.text);
    assert_eq!(health.body["connectors"]["Hangs"]["starting"], true);
    // Registering another connector answers with its own load, at once.
    let added = d.post(
        "/api/connectors",
        &json!({"name": "Added", "assembly_name": "testkit", "class_name": "ScriptedConnector", "enabled": true, "config": users().to_string()}),
    );
    assert_eq!(added.status, 201, "{}", added.text);
    assert_eq!(added.body["loaded"], true, "{}", added.text);
    assert_eq!(d.connector("Hangs").unwrap()["starting"], true, "the edit did not wait for Hangs");
    d.create("cms.user", json!({"code_name": "second"}));
    wait_for("Added and Fast to deliver", WAIT, || {
        (names(&d, "Fast") == ["first", "second"] && names(&d, "Added") == ["second"]).then_some(())
    });
    // Its deadline passes: the process is stopped and the reason shown.
    let settled = wait_for("Hangs to settle", WAIT, || {
        let row = d.connector("Hangs").unwrap();
        (row["starting"] == false).then_some(row)
    });
    assert_eq!(settled["loaded"], false);
    assert!(settled["error"].as_str().unwrap().contains("8000 ms"), "{settled}");
}
