//! The specification's walk-through of the sample connector (chapter 2.3),
//! and what the settings do to logging and processing.

use bus_tests::{wait_for, TestEnv};
use serde_json::{json, Value};
use std::time::Duration;

#[test]
fn the_sample_connector_walk_through() {
    let env = TestEnv::new();
    env.install("sample_connector", "sample_connector");
    let d = env.start();
    // Steps 3-4: enable the registered sample connector.
    let enabled = d.put("/api/connectors/SampleIntegrationConnector", &json!({"enabled": true}));
    assert_eq!(enabled.body["loaded"], true, "{}", enabled.text);
    // Step 5: logging on, processing off.
    let settings = d
        .put("/api/settings", &json!({"process_outgoing": false, "log_incoming": false, "process_incoming": false}))
        .body;
    assert_eq!(
        settings,
        json!({"enabled": true, "log_incoming": false, "process_incoming": false, "log_outgoing": true, "process_outgoing": false})
    );
    // Step 6: change documents and users; the tasks accumulate.
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let mut ids = Vec::new();
    for name in ["Apple iPhone 3GS", "Apple iPhone 4 with inscription", "Apple iPad 2"] {
        let r = d.post("/api/documents", &json!({"site_name": "CorpSite", "alias_path": format!("/{name}"), "class_name": "cms.menuitem", "culture": "en-US", "name": name}));
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.body["object"]["document_id"].as_i64().unwrap());
    }
    for id in &ids {
        d.put(&format!("/api/documents/{id}"), &json!({"fields": {"price": 499}}));
    }
    let antonio = d.create("cms.user", json!({"code_name": "Antonio"}))["object"]["id"].as_i64().unwrap();
    d.post(&format!("/api/objects/cms.user/{antonio}/sites/CorpSite"), &json!({}));
    std::thread::sleep(Duration::from_millis(300));
    let queue = d.queue("outgoing", "&connector=SampleIntegrationConnector");
    let titles: Vec<&str> = queue.iter().map(|t| t["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles[3..],
        [
            "Update document Apple iPhone 3GS",
            "Update document Apple iPhone 4 with inscription",
            "Update document Apple iPad 2",
            "Create User 'Antonio'",
            "Add User 'Antonio' to site"
        ]
    );
    let codes: Vec<&str> = queue.iter().map(|t| t["task_type_code"].as_str().unwrap()).collect();
    assert_eq!(codes[3..], ["UPDATEDOC", "UPDATEDOC", "UPDATEDOC", "CREATEOBJ", "ADDTOSITE"]);
    assert_eq!(queue[0]["connector_display_name"], "Sample Integration Connector");
    // Synchronize is refused while processing is off, and says why.
    let refused = d.post("/api/tasks/outgoing/synchronize", &json!({"all": true}));
    assert_eq!(refused.status, 409);
    assert!(refused.body["error"].as_str().unwrap().contains("process_outgoing"), "{}", refused.text);
    assert!(d.events("&source=SampleIntegrationConnector").is_empty());
    // Step 7: processing on; synchronize all.
    d.put("/api/settings", &json!({"process_outgoing": true}));
    let synced = d.post("/api/tasks/outgoing/synchronize", &json!({"all": true}));
    assert_eq!(synced.status, 200, "{}", synced.text);
    wait_for("the queue to drain", Duration::from_secs(10), || d.queue("outgoing", "").is_empty().then_some(()));
    // Step 8: one event per task, in creation order.
    let mut events = d.events("&source=SampleIntegrationConnector");
    events.reverse();
    let rows: Vec<(String, Option<String>)> = events
        .iter()
        .map(|e| (e["code"].as_str().unwrap().to_owned(), e["document_name"].as_str().map(str::to_owned)))
        .collect();
    let doc = |code: &str, name: &str| (code.to_owned(), Some(name.to_owned()));
    assert_eq!(
        rows,
        [
            doc("CREATEDOCUMENT", "Apple iPhone 3GS"),
            doc("CREATEDOCUMENT", "Apple iPhone 4 with inscription"),
            doc("CREATEDOCUMENT", "Apple iPad 2"),
            doc("UPDATEDOCUMENT", "Apple iPhone 3GS"),
            doc("UPDATEDOCUMENT", "Apple iPhone 4 with inscription"),
            doc("UPDATEDOCUMENT", "Apple iPad 2"),
            ("CREATEOBJECT".to_owned(), None),
            ("ADDTOSITE".to_owned(), None),
        ]
    );
    assert_eq!(d.events("&code=SYNCALLTASKSMULTIPLE").len(), 1);
}

#[test]
fn logging_off_writes_no_task_and_the_bus_switch_covers_everything() {
    let env = TestEnv::new();
    env.scripted("A", json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects"}]}));
    let d = env.start();
    d.put("/api/settings", &json!({"log_outgoing": false}));
    let r = d.create("cms.user", json!({"code_name": "quiet"}));
    assert!(r["task_id"].is_null());
    d.put("/api/settings", &json!({"log_outgoing": true, "enabled": false}));
    assert!(
        d.create("cms.user", json!({"code_name": "quieter"}))["task_id"].is_null(),
        "the bus switch turns logging off"
    );
    let tasks: i64 = env.sql().query_row("SELECT COUNT(*) FROM Integration_Task", [], |r| r.get(0)).unwrap();
    assert_eq!(tasks, 0);
    d.put("/api/settings", &json!({"enabled": true}));
    assert!(d.create("cms.user", json!({"code_name": "heard"}))["task_id"].is_i64());
    let bad = d.put("/api/settings", &json!({"enabled": "yes"}));
    assert_eq!(bad.status, 422, "{}", bad.text);
    let unknown = d.put("/api/settings", &json!({"turbo": true}));
    assert!(unknown.body["error"].as_str().unwrap().contains("unknown field `turbo`"));
}

#[test]
fn settings_and_tasks_from_the_command_line() {
    let env = TestEnv::new();
    let out = env.cli(&["settings", "set", "process_outgoing=false", "log_incoming=off"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = env.cli(&["settings", "get", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(
        (s["process_outgoing"].clone(), s["log_incoming"].clone(), s["enabled"].clone()),
        (json!(false), json!(false), json!(true))
    );
    let bad = env.cli(&["settings", "set", "turbo=true"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`turbo` is not a setting"));
    let bad = env.cli(&["settings", "set", "enabled=maybe"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`maybe` is not true or false"));
}

#[test]
fn task_detail_and_bulk_delete() {
    let env = TestEnv::new();
    env.scripted("A", json!({"subscriptions": [{"process_type": "AsyncSimpleSnapshot", "scope": "objects"}]}));
    env.scripted("B", json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects"}]}));
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let first = d.create("cms.user", json!({"code_name": "one", "fields": {"email": "one@example.com"}}))["task_id"]
        .as_i64()
        .unwrap();
    for n in ["two", "three", "four"] {
        d.create("cms.user", json!({"code_name": n}));
    }
    let detail = d.get(&format!("/api/tasks/{first}")).body;
    assert_eq!(detail["direction"], "outgoing");
    assert_eq!(detail["task_type"], "CreateObject");
    assert_eq!(detail["data_type"], "SimpleSnapshot", "stored once for the richest subscriber");
    assert_eq!(detail["data"]["object"]["fields"]["email"], "one@example.com");
    let relations: Vec<(String, String)> = detail["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["connector"].as_str().unwrap().to_owned(), r["data_type"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(relations, [("A".into(), "SimpleSnapshot".into()), ("B".into(), "Simple".into())]);
    // Paging, oldest first, across connectors.
    let page = d.get("/api/tasks/outgoing?limit=3").body;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let next = page["next"].as_str().unwrap();
    let rest = d.get(&format!("/api/tasks/outgoing?limit=10&cursor={next}")).body;
    assert_eq!(rest["items"].as_array().unwrap().len(), 5);
    let rows = |p: &Value| -> Vec<(i64, String)> {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["task_id"].as_i64().unwrap(), i["connector"].as_str().unwrap().to_owned()))
            .collect()
    };
    let listed: Vec<(i64, String)> = rows(&page).into_iter().chain(rows(&rest)).collect();
    assert!(listed.windows(2).all(|w| w[0].0 <= w[1].0), "oldest first across connectors: {listed:?}");
    let distinct: std::collections::BTreeSet<_> = listed.iter().collect();
    assert_eq!(distinct.len(), 8, "every relation once: {listed:?}");
    assert_eq!(d.get("/api/tasks/outgoing?cursor=bogus").status, 400);
    assert_eq!(d.get("/api/tasks/outgoing?connector=Nope").status, 404);
    // Delete one connector's relation of one task, then all of B, then everything.
    let r = d.post("/api/tasks/outgoing/delete", &json!({"ids": [first], "connector": "A"}));
    assert_eq!(r.body["deleted"], 1, "{}", r.text);
    assert_eq!(d.get(&format!("/api/tasks/{first}")).body["relations"].as_array().unwrap().len(), 1);
    assert_eq!(d.post("/api/tasks/outgoing/delete", &json!({"all": true, "connector": "B"})).body["deleted"], 4);
    assert_eq!(d.get(&format!("/api/tasks/{first}")).status, 404, "a task goes with its last relation");
    assert_eq!(d.post("/api/tasks/outgoing/delete", &json!({"all": true})).body["deleted"], 3);
    assert!(d.queue("outgoing", "").is_empty());
    let bad = d.post("/api/tasks/outgoing/delete", &json!({"ids": [1], "all": true}));
    assert_eq!(bad.status, 422);
    assert!(bad.body["error"].as_str().unwrap().contains("not both"));
    assert_eq!(d.post("/api/tasks/outgoing/delete", &json!({})).status, 422);
}
