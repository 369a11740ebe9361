//! `/metrics` (Prometheus text whose numbers follow the tasks) and `/health`.

use bus_tests::{wait_for, Daemon, TestEnv};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// Parses Prometheus text: every sample line is `name{labels} value`.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            assert!(
                line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                "bad comment: {line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad metric name: {line}");
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unterminated labels: {line}");
        }
        let value: f64 =
            if value == "+Inf" { f64::INFINITY } else { value.parse().unwrap_or_else(|_| panic!("bad value: {line}")) };
        samples.insert(series.to_owned(), value);
    }
    samples
}

fn metrics(d: &Daemon) -> HashMap<String, f64> {
    let r = d.get("/metrics");
    assert_eq!(r.status, 200);
    parse(&r.text)
}

#[test]
fn metrics_follow_the_tasks_and_health_reports_failed_connectors() {
    let env = TestEnv::new();
    env.scripted("A", json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects"}]}));
    env.register("Broken", "missing", "X", true, "");
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let m = metrics(&d);
    assert_eq!(m["bus_connector_loaded{connector=\"A\"}"], 1.0);
    assert_eq!(m["bus_connector_loaded{connector=\"Broken\"}"], 0.0);
    assert_eq!(m["bus_connector_load_error{connector=\"Broken\"}"], 1.0);
    assert!(m["bus_connector_reinitializations_total"] >= 1.0);

    for i in 0..3 {
        d.create(
            "cms.user",
            json!({"code_name": format!("u{i}"), "fields": {"outcome": if i == 2 { "ErrorAndSkip" } else { "Ok" }}}),
        );
    }
    let m = metrics(&d);
    assert_eq!(m["bus_queue_depth{connector=\"A\",direction=\"outgoing\"}"], 3.0);
    assert!(m["bus_queue_oldest_task_age_seconds{connector=\"A\",direction=\"outgoing\"}"] >= 0.0);

    d.put("/api/settings", &json!({"process_outgoing": true}));
    // Switching processing on leaves the queue for the next trigger.
    assert_eq!(d.post("/api/tasks/outgoing/synchronize", &json!({"all": true})).status, 200);
    wait_for("the tasks to flow", Duration::from_secs(10), || {
        metrics(&d)
            .get("bus_tasks_processed_total{connector=\"A\",direction=\"outgoing\",result=\"Ok\"}")
            .filter(|v| **v == 2.0)
            .map(|_| ())
    });
    let m = metrics(&d);
    assert_eq!(m["bus_tasks_processed_total{connector=\"A\",direction=\"outgoing\",result=\"ErrorAndSkip\"}"], 1.0);
    assert_eq!(m["bus_task_duration_seconds_count{connector=\"A\",direction=\"outgoing\"}"], 3.0);
    assert_eq!(m["bus_queue_depth{connector=\"A\",direction=\"outgoing\"}"], 1.0, "the skipped task stays queued");

    // Health: live, but not ready while a connector failed to load.
    let h = d.get("/health");
    assert_eq!(h.status, 200);
    assert_eq!(h.body["live"], true);
    assert_eq!(h.body["ready"], false);
    assert_eq!(h.body["connectors"]["Broken"]["loaded"], false);
    assert!(h.body["connectors"]["Broken"]["error"].as_str().unwrap().contains("does not exist"));
    assert_eq!(d.get("/health?probe=ready").status, 503);
    d.put("/api/connectors/Broken", &json!({"enabled": false}));
    assert_eq!(d.get("/health?probe=ready").status, 200);
}

#[test]
fn metrics_read_zero_for_empty_queues_forget_deleted_connectors_and_count_requests_by_route() {
    let env = TestEnv::new();
    env.scripted(
        "Gone",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    );
    let d = env.start();
    let task = d.create("cms.user", json!({"code_name": "u"}))["task_id"].as_i64().unwrap();
    wait_for("the delivery", Duration::from_secs(30), || d.queue("outgoing", "").is_empty().then_some(()));
    assert_eq!(d.get(&format!("/api/tasks/{task}")).status, 404);
    assert_eq!(d.get(&format!("/api/tasks/{}", task + 1000)).status, 404);
    assert_eq!(d.get("/no/such/route").status, 404);

    let text = d.get("/metrics").text;
    let m = parse(&text);
    // A drained queue reads 0 instead of vanishing.
    assert_eq!(m.get("bus_queue_depth{connector=\"Gone\",direction=\"outgoing\"}"), Some(&0.0), "{text}");
    assert_eq!(m.get("bus_queue_depth{connector=\"Gone\",direction=\"incoming\"}"), Some(&0.0), "{text}");
    assert_eq!(m.get("bus_tasks_processed_total{connector=\"Gone\",direction=\"outgoing\",result=\"Ok\"}"), Some(&1.0));
    // Requests by route template (not by raw path), method and status.
    assert_eq!(
        m.get("bus_http_requests_total{route=\"/api/tasks/{id}\",method=\"GET\",status=\"404\"}"),
        Some(&2.0),
        "{text}"
    );
    assert_eq!(m.get("bus_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"), Some(&1.0));
    assert!(m.keys().any(|k| k.starts_with("bus_http_request_duration_seconds_count{route=\"/api/objects/{type}\"}")));
    assert!(!text.contains(&format!("/api/tasks/{task}\"")), "no raw paths as labels");
    let build = text.lines().find(|l| l.starts_with("bus_build_info{")).expect("bus_build_info");
    assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))) && build.ends_with(" 1"), "{build}");

    // A connector that leaves the registry leaves the scrape.
    assert_eq!(d.delete("/api/connectors/Gone").status, 204);
    let text = d.get("/metrics").text;
    assert!(!text.contains("connector=\"Gone\""), "{text}");
}
