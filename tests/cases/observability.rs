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

#[test]
fn each_connector_row_shows_its_queues_and_what_it_did_lately() {
    let env = TestEnv::new();
    env.scripted(
        "Crm",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    );
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let queue = |d: &Daemon| d.connector("Crm").unwrap()["queue"].clone();
    let q = queue(&d);
    assert_eq!(
        (q["outgoing"].clone(), q["incoming"].clone(), q["failed"].clone()),
        (json!(0), json!(0), json!(0)),
        "{q}"
    );
    assert_eq!(q["oldest_age_seconds"], json!(0.0));
    assert!(q["last_success_at"].is_null() && q["last_error"].is_null(), "{q}");

    // Held: the depth and the age of the oldest.
    d.create("cms.user", json!({"code_name": "ann"}));
    d.create("cms.user", json!({"code_name": "bob", "fields": {"outcome": "Error", "message": "CRM is down"}}));
    d.create("cms.user", json!({"code_name": "cy"}));
    let q = queue(&d);
    assert_eq!(q["outgoing"], json!(3), "{q}");
    assert!(q["oldest_age_seconds"].as_f64().unwrap() >= 0.0, "{q}");

    // Processed: ann goes, bob fails and stops the queue (cy waits behind it).
    assert_eq!(d.put("/api/settings", &json!({"process_outgoing": true})).status, 200);
    let r = d.post("/api/tasks/outgoing/synchronize", &json!({"all": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    let q = wait_for("the figures to follow", Duration::from_secs(15), || {
        let q = queue(&d);
        (q["failed"] == json!(1)).then_some(q)
    });
    assert_eq!(q["outgoing"], json!(2), "bob and cy still wait: {q}");
    assert!(q["delivered_last_minute"].as_u64().unwrap() >= 1, "{q}");
    assert!(q["last_success_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{q}");
    assert_eq!(q["last_error"], json!("CRM is down"), "{q}");
    // The same figures on the single row and in the grid form of the list.
    assert_eq!(d.get("/api/connectors/Crm").body["queue"]["failed"], json!(1));
    // And in the UI's Queue column, the last error as its tooltip.
    let b = bus_tests::browser::Browser::start();
    b.goto(&format!("http://{}/#connectors", d.addr));
    let cell = b.find("tr[data-name='Crm'] .queue");
    assert!(b.text(&cell).starts_with("2 out · 0 in · 1 failed"), "{}", b.text(&cell));
    assert!(b.attribute(&cell, "title").unwrap_or_default().contains("Last error: CRM is down"));
    let grid = d.get("/api/connectors?sort=name&order=asc");
    assert_eq!(
        grid.body.as_array().unwrap().iter().find(|c| c["name"] == "Crm").unwrap()["queue"]["outgoing"],
        json!(2)
    );
}

/// `GET /api/history`: what each connector did, a figure per minute, added
/// by the daemon every few seconds; bad input is refused by name, and a row
/// older than a day is deleted by the daemon (the table stays bounded).
#[test]
fn the_history_counts_each_connectors_deliveries_per_minute_and_keeps_a_day() {
    let env = TestEnv::new();
    env.scripted(
        "Mirror",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    );
    env.scripted(
        "Other",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.role"}]}),
    );
    let d = env.start();
    for i in 0..3 {
        d.create("cms.user", json!({"code_name": format!("u{i}")}));
    }
    let sum = |series: &serde_json::Value, figure: &str| -> i64 {
        series[figure].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).sum()
    };
    let all = wait_for("the three deliveries in the history", Duration::from_secs(20), || {
        let r = d.get("/api/history?minutes=5");
        assert_eq!(r.status, 200, "{}", r.text);
        let mirror = r.body["connectors"].as_array().unwrap().iter().find(|s| s["connector"] == "Mirror").cloned();
        (sum(mirror.as_ref()?, "delivered") == 3).then_some(r.body)
    });
    assert_eq!(all["minutes"], 5);
    let series = all["connectors"].as_array().unwrap();
    let names: Vec<&str> = series.iter().map(|s| s["connector"].as_str().unwrap()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]) && names.contains(&"Other"), "every connector, by name: {names:?}");
    let of = |name: &str| series.iter().find(|s| s["connector"] == name).unwrap();
    assert_eq!(of("Mirror")["delivered"].as_array().unwrap().len(), 5, "a figure per minute");
    assert_eq!(sum(of("Mirror"), "failed"), 0);
    assert_eq!(sum(of("Other"), "delivered"), 0, "another connector's deliveries are not counted");
    let one = d.get("/api/history?connector=Other&minutes=1440");
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.body["connectors"].as_array().unwrap().len(), 1);
    assert_eq!(one.body["connectors"][0]["delivered"].as_array().unwrap().len(), 1440);

    for (query, status, says) in [
        ("minutes=0", 400, "between 1 and 1440"),
        ("minutes=1441", 400, "between 1 and 1440"),
        ("connector=Nobody", 404, "Nobody"),
    ] {
        let r = d.get(&format!("/api/history?{query}"));
        assert_eq!(r.status, status, "{query}: {}", r.text);
        assert!(r.text.contains(says), "{query}: {}", r.text);
    }

    // A row older than a day (as a daemon stopped for a while leaves it)
    // is deleted at the daemon's next look.
    env.sql()
        .execute(
            "INSERT INTO Integration_ConnectorHistory (HistoryConnectorID, HistoryMinute, HistoryDelivered) \
             SELECT ConnectorID, 1000, 7 FROM Integration_Connector WHERE ConnectorName = 'Other'",
            [],
        )
        .unwrap();
    wait_for("the day-old row to be deleted", Duration::from_secs(20), || {
        let old: i64 = env
            .sql()
            .query_row("SELECT COUNT(*) FROM Integration_ConnectorHistory WHERE HistoryMinute = 1000", [], |r| r.get(0))
            .unwrap();
        (old == 0).then_some(())
    });
}

/// A client of `GET /api/events`, as a browser's `EventSource` is: a stream
/// that ends (every 25 s) is opened again.
struct Events {
    addr: String,
    stream: std::io::BufReader<std::net::TcpStream>,
}

impl Events {
    fn open(addr: &str) -> Events {
        use std::io::Write;
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        write!(tcp, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n").unwrap();
        Events { addr: addr.to_owned(), stream: std::io::BufReader::new(tcp) }
    }

    /// Reads until a `change` event names `part`; false once 20 s passed.
    fn names(&mut self, part: &str) -> bool {
        use std::io::BufRead;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut line = String::new();
        while std::time::Instant::now() < deadline {
            // A line cut by the read timeout is completed by the next read.
            match self.stream.read_line(&mut line) {
                Ok(0) => {
                    line.clear();
                    *self = Events::open(&self.addr);
                }
                Ok(_) if line.ends_with('\n') => {
                    if line.starts_with("data:") && line.contains(&format!("\"{part}\"")) {
                        return true;
                    }
                    line.clear();
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading the event stream: {e}"),
            }
        }
        false
    }
}

/// `GET /api/events` on either engine: after its first look it names what
/// changed — the queues when a task waits, the history once deliveries are
/// added to it.
#[test]
fn the_event_stream_names_queue_and_history_changes() {
    let env = TestEnv::new();
    env.scripted(
        "Mirror",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    );
    // Held, so the queue is seen to change (a task delivered between two
    // looks leaves it as it was).
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let mut events = Events::open(&d.addr);
    // The first look names everything; what follows is news.
    assert!(events.names("history"), "the first look");
    d.create("cms.user", json!({"code_name": "ann"}));
    assert!(events.names("queues"), "a queued task is named");
    assert_eq!(d.put("/api/settings", &json!({"process_outgoing": true})).status, 200);
    d.create("cms.user", json!({"code_name": "bob"}));
    // Other history events may come first (the waiting task's depth, a new
    // minute): one comes once both deliveries are in it.
    let delivered = || -> i64 {
        let h = d.get("/api/history?connector=Mirror&minutes=3").body;
        h["connectors"][0]["delivered"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).sum()
    };
    for seen in 1.. {
        assert!(events.names("history"), "the deliveries reach the history");
        if delivered() == 2 {
            break;
        }
        assert!(seen < 10, "history events without the deliveries");
    }
}
