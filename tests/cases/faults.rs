//! Faults: hung and misbehaving connectors, a locked or full database,
//! hostile input, a crash in the middle of draining.

use bus_tests::{wait_for, TestEnv};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_hung_connector_is_cut_off_and_the_others_keep_flowing() {
    let env = TestEnv::new();
    env.configure("call_timeout_ms = 400");
    // In the daemon a hung call cannot be interrupted: this is that mode's
    // behaviour (`isolation::a_spinning_call_is_killed_at_the_deadline` is
    // the other mode's).
    env.isolate("isolation = \"in-process\"");
    env.scripted("Slow", json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}], "sleep_ms": 2500}));
    env.scripted(
        "Fast",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    );
    env.scripted(
        "SyncSlow",
        json!({"subscriptions": [{"process_type": "SyncSnapshot", "scope": "objects", "object_type": "cms.role"}]}),
    );
    let d = env.start();
    d.create("cms.user", json!({"code_name": "first"}));
    d.create("cms.user", json!({"code_name": "second"}));
    wait_for("Fast to get both users", WAIT, || (d.reports("Fast").len() == 2).then_some(()));
    let health = wait_for("Slow to count as hung", WAIT, || {
        let h = d.get("/health").body;
        h["connectors"]["Slow"]["hung_for_seconds"].is_number().then_some(h)
    });
    assert_eq!(health["ready"], false, "{health}");
    assert!(d.get("/metrics").text.contains("bus_connector_hung{connector=\"Slow\"} 1"));

    // A synchronous subscription waits only up to the timeout.
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let role =
        d.create("cms.role", json!({"code_name": "slowpoke", "site_name": "CorpSite", "fields": {"sleep_ms": 2500}}));
    assert_eq!(role["sync"][0]["result"], "Error", "{role}");
    assert!(
        role["sync"][0]["error"]
            .as_str()
            .unwrap()
            .contains("did not answer `process_internal_task_sync` within 400 ms"),
        "{role}"
    );
    assert!(d.reports("SyncSlow").is_empty(), "the response came back before the connector finished");
    // When the slow calls return, Slow catches up and is healthy again.
    wait_for("Slow to deliver both", WAIT, || (d.reports("Slow").len() == 2).then_some(()));
    wait_for("Slow to be healthy", WAIT, || {
        d.get("/health").body["connectors"]["Slow"]["hung_for_seconds"].is_null().then_some(())
    });
}

#[test]
fn malformed_responses_become_clear_task_errors() {
    let env = TestEnv::new();
    env.install("legacy_connector", "legacy");
    env.register("Legacy", "legacy", "LegacyConnector", true, "");
    let d = env.start();
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let error_of = |code: &str| {
        let task =
            d.create("cms.role", json!({"code_name": code, "site_name": "CorpSite"}))["task_id"].as_i64().unwrap();
        wait_for("the failure", WAIT, || {
            d.get(&format!("/api/tasks/{task}")).body["relations"][0]["error"].as_str().map(str::to_owned)
        })
    };
    let e = error_of("malformed");
    assert!(e.contains("malformed response to `process_internal_task_async`") && e.contains("Banana"), "{e}");
    d.delete("/api/tasks/1");
    d.post("/api/tasks/outgoing/delete", &json!({"all": true}));
    let e = error_of("garbage");
    assert!(e.contains("malformed response"), "{e}");
    assert_eq!(d.get("/health").status, 200);
}

#[test]
fn a_locked_database_gives_a_clear_error_and_nothing_half_written() {
    let env = TestEnv::new();
    let d = env.start();
    let blocker = env.sql();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let r = d.post("/api/objects/cms.site", &json!({"code_name": "Locked"}));
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("locked by another writer"), "{}", r.text);
    blocker.execute_batch("ROLLBACK").unwrap();
    assert!(d.get("/api/objects/cms.site").body["items"].as_array().unwrap().is_empty());
    d.create("cms.site", json!({"code_name": "Locked"}));
}

#[test]
fn a_full_database_refuses_changes_cleanly_and_recovers_when_space_returns() {
    let env = TestEnv::new();
    let pages: i64 = env.sql().query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    env.configure(&format!("max_database_pages = {}", pages + 12));
    env.scripted("A", json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects"}]}));
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let big = "x".repeat(3000);
    let mut created = 0;
    let full = loop {
        let r = d.post("/api/objects/cms.user", &json!({"code_name": format!("u{created}"), "fields": {"bio": big}}));
        if r.status != 201 {
            break r;
        }
        created += 1;
        assert!(created < 500, "the quota never filled");
    };
    assert_eq!(full.status, 507, "{}", full.text);
    assert!(full.body["error"].as_str().unwrap().contains("full; nothing was written"), "{}", full.text);
    let users =
        |d: &bus_tests::Daemon| d.get("/api/objects/cms.user?limit=1000").body["items"].as_array().unwrap().len();
    assert_eq!(users(&d), created, "the refused change left nothing behind");
    let tasks: i64 = env.sql().query_row("SELECT COUNT(*) FROM Integration_Task", [], |r| r.get(0)).unwrap();
    assert_eq!(tasks as usize, created, "and no task either");
    // Space returns: deleting the queued tasks frees pages.
    assert_eq!(d.post("/api/tasks/outgoing/delete", &json!({"all": true})).status, 200);
    d.create("cms.user", json!({"code_name": "after", "fields": {"bio": big}}));
    env.check_integrity();
}

/// A small deterministic pseudo-random generator (xorshift), so a failure
/// can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

const HOSTILE: &[&str] = &[
    "",
    "%",
    "%25",
    "'",
    "\"",
    "' OR 1=1 --",
    "; DROP TABLE Integration_Task; --",
    "..",
    "../../etc/passwd",
    "a/b",
    "<script>alert(1)</script>",
    "💥",
    "-1",
    "0",
    "99999999999999999999",
    "null",
    "true",
    "{}",
    "[]",
    "cms.user",
    "SampleIntegrationConnector",
    "%00",
    "\\u0000",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
];

fn hostile_value(rng: &mut Rng) -> Value {
    match rng.next() % 9 {
        0 => json!(rng.pick(HOSTILE)),
        1 => json!(rng.next() as i64),
        2 => json!(-(rng.next() as i64 % 1000)),
        3 => json!(null),
        4 => json!([rng.pick(HOSTILE), 1, {"x": rng.pick(HOSTILE)}]),
        5 => {
            json!({"kind": rng.pick(&["object", "document", "spaceship"]), "object_type": rng.pick(HOSTILE), "code_name": rng.pick(HOSTILE)})
        }
        6 => json!(true),
        7 => json!(1.5e300),
        _ => json!({"enabled": rng.pick(HOSTILE), "fields": {"UserID": rng.pick(HOSTILE)}}),
    }
}

fn hostile_body(rng: &mut Rng) -> Vec<u8> {
    let keys = [
        "name",
        "assembly_name",
        "class_name",
        "code_name",
        "site_name",
        "fields",
        "obj",
        "task_type",
        "process_type",
        "data_type",
        "ids",
        "all",
        "connector",
        "changes",
        "op",
        "object_type",
        "object",
        "enabled",
        "interval_seconds",
        "alias_path",
        "class_name",
        "culture",
        "token",
        "patch",
        "display_name",
        "config",
    ];
    match rng.next() % 10 {
        0 => b"{not json".to_vec(),
        1 => b"[1,2,".to_vec(),
        2 => vec![0xff, 0xfe, b'{'],
        3 => b"".to_vec(),
        4 => b"\"just a string\"".to_vec(),
        _ => {
            let mut o = serde_json::Map::new();
            for _ in 0..(rng.next() % 6) {
                o.insert((*rng.pick(&keys)).to_owned(), hostile_value(rng));
            }
            if rng.next() % 3 == 0 {
                o.insert("changes".into(), json!([{"op": rng.pick(&["create_object", "delete_object", "nope"]), "object_type": rng.pick(HOSTILE)}]));
            }
            serde_json::to_vec(&Value::Object(o)).unwrap()
        }
    }
}

fn escape_path(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn ten_thousand_hostile_requests_get_clear_4xx_answers_and_the_database_stays_intact() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    env.register("Echo", "testkit", "EchoConnector", true, "");
    let d = env.start();
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let routes: &[(&str, &str)] = &[
        ("POST", "/api/connectors"),
        ("PUT", "/api/connectors/{s}"),
        ("DELETE", "/api/connectors/{s}"),
        ("GET", "/api/connectors/{s}"),
        ("POST", "/api/connectors/{s}/incoming"),
        ("POST", "/api/integration/notify?connector={s}"),
        ("PUT", "/api/settings"),
        ("POST", "/api/objects/{s}"),
        ("PUT", "/api/objects/{s}/{n}"),
        ("DELETE", "/api/objects/{s}/{n}"),
        ("GET", "/api/objects/{s}/{n}"),
        ("GET", "/api/objects/{s}?site={s}&after={s}&limit={s}"),
        ("POST", "/api/objects/cms.user/{n}/sites/{s}"),
        ("POST", "/api/documents"),
        ("PUT", "/api/documents/{n}"),
        ("POST", "/api/documents/{n}/publish"),
        ("GET", "/api/documents?path={s}"),
        ("POST", "/api/batch"),
        ("GET", "/api/tasks/outgoing?connector={s}&cursor={s}&limit={s}"),
        ("GET", "/api/tasks/{s}"),
        ("POST", "/api/tasks/outgoing/synchronize"),
        ("POST", "/api/tasks/incoming/delete"),
        ("POST", "/api/tasks/{n}/synchronize"),
        ("GET", "/api/eventlog?source={s}&type={s}&before={s}"),
        ("PUT", "/api/scheduled-tasks/{s}"),
        ("POST", "/api/scheduled-tasks/{s}/execute"),
        ("PATCH", "/api/{s}"),
        ("GET", "/{s}"),
        ("POST", "/api/login"),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..10_000 {
        let (method, template) = *rng.pick(routes);
        let mut path = template.to_owned();
        while let Some(at) = path.find("{s}") {
            let v = escape_path(rng.pick::<&str>(HOSTILE));
            path.replace_range(at..at + 3, &v);
        }
        while let Some(at) = path.find("{n}") {
            let v = rng.pick(&["1", "2", "0", "-5", "abc", "99999999999999999999", "1.5"]).to_string();
            path.replace_range(at..at + 3, &v);
        }
        let body = if i % 2_500 == 7 { vec![b'{'; 3 * 1024 * 1024] } else { hostile_body(&mut rng) };
        let ct = if i % 50 == 3 { "text/plain" } else { "application/json" };
        let r = bus_tests::http::request_raw(&d.addr, method, &path, Some(&body), ct);
        *counts.entry(r.status).or_default() += 1;
        assert!(
            r.status < 500,
            "request {i}: {method} {path} {} → {} {}",
            String::from_utf8_lossy(&body[..body.len().min(200)]),
            r.status,
            r.text
        );
        if r.status >= 400 {
            let message = r.body["error"]
                .as_str()
                .unwrap_or_else(|| panic!("request {i}: {method} {path}: no JSON error: {}", r.text));
            assert!(!message.trim().is_empty(), "request {i}: an empty message");
        }
    }
    assert!(counts.keys().any(|s| *s >= 400), "{counts:?}");
    assert_eq!(d.get("/health").status, 200, "the daemon is still serving");
    env.check_integrity();
}

#[test]
fn killed_mid_drain_nothing_is_lost_and_order_is_kept() {
    let env = TestEnv::new();
    env.scripted(
        "A",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    );
    let d = env.start();
    // Changes keep arriving while the daemon drains; it is killed mid-way.
    let addr = d.addr.clone();
    let producer = std::thread::spawn(move || {
        let mut committed = Vec::new();
        for i in 0..600 {
            let body = json!({"code_name": format!("u{i:04}")});
            let Ok(r) = std::panic::catch_unwind(|| {
                bus_tests::http::request(&addr, "POST", "/api/objects/cms.user", Some(&body))
            }) else {
                break;
            };
            if r.status != 201 {
                break;
            }
            committed.push(i);
        }
        committed
    });
    wait_for("deliveries to be under way", WAIT, || (d.reports("A").len() >= 150).then_some(()));
    d.kill();
    let acknowledged = producer.join().unwrap();
    assert!(!acknowledged.is_empty());

    env.check_integrity();
    let d = env.start();
    let users: i64 =
        env.sql().query_row("SELECT COUNT(*) FROM CMS_Object WHERE ObjectType = 'cms.user'", [], |r| r.get(0)).unwrap();
    assert!(users as usize >= acknowledged.len(), "every acknowledged change is stored");
    wait_for("the queue to drain after the restart", Duration::from_secs(60), || {
        d.queue("outgoing", "").is_empty().then_some(())
    });
    let reports = d.reports("A");
    let ids: Vec<i64> = reports.iter().map(|r| r["task_id"].as_i64().unwrap()).collect();
    let mut first_seen = ids.clone();
    first_seen.dedup();
    assert!(
        first_seen.windows(2).all(|w| w[0] < w[1]),
        "deliveries in commit order (a repeat only right after a restart)"
    );
    let distinct: std::collections::BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct.len() as i64, users, "every stored change was delivered");
    assert!(
        ids.len() - distinct.len() <= 1,
        "at most the task in flight at the kill is delivered twice: {} repeats",
        ids.len() - distinct.len()
    );
}

#[test]
fn killed_while_applying_incoming_tasks_each_is_applied_exactly_once() {
    let env = TestEnv::new();
    env.scripted("Crm", json!({"subscriptions": []}));
    env.set_setting("process_incoming", false);
    let d = env.start();
    let changes: Vec<Value> = (0..400)
        .map(|i| json!({"obj": {"kind": "object", "object_type": "cms.user", "code_name": format!("in{i:04}")}, "task_type": "CreateObject"}))
        .collect();
    for c in &changes {
        assert_eq!(d.post("/api/connectors/Crm/incoming", c).status, 201);
    }
    env.set_setting("process_incoming", true);
    let users = || -> i64 {
        env.sql().query_row("SELECT COUNT(*) FROM CMS_Object WHERE ObjectType = 'cms.user'", [], |r| r.get(0)).unwrap()
    };
    assert_eq!(d.post("/api/integration/notify", &json!({})).status, 202);
    wait_for("processing to be under way", WAIT, || (users() >= 50).then_some(()));
    d.kill();
    env.check_integrity();
    let d = env.start();
    assert_eq!(d.post("/api/integration/notify", &json!({})).status, 202);
    wait_for("the incoming queue to drain", Duration::from_secs(60), || {
        d.queue("incoming", "").is_empty().then_some(())
    });
    // Applying and removing a task is one transaction: no task applied twice
    // (a second CreateObject would have failed as a duplicate and stayed queued).
    assert_eq!(users(), 400);
}
