//! What a request can delete or change: bodies that are not JSON objects,
//! bulk actions on "all" that act on exactly what the grid's filter lists,
//! a renamed site that keeps its documents, and answers at the edges of
//! what the OpenAPI document allows.

use bus_tests::daemon::Backend;
use bus_tests::http::request_raw;
use bus_tests::TestEnv;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn users() -> Value {
    json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]})
}

/// `(task ID, connector)` of every row a listing shows.
fn rows(listed: &[Value]) -> BTreeSet<(i64, String)> {
    listed.iter().map(|t| (t["task_id"].as_i64().unwrap(), t["connector"].as_str().unwrap().to_owned())).collect()
}

#[test]
fn a_request_body_that_is_not_a_json_object_is_refused_and_changes_nothing() {
    let env = TestEnv::new();
    env.scripted("A", users());
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let id = d.create("cms.user", json!({"code_name": "kept"}))["object"]["id"].as_i64().unwrap();
    let queued = d.queue("outgoing", "").len();
    assert_eq!(queued, 1);

    // serde would read `[null, true, null]` as `{"ids": null, "all": true, …}`.
    let cases: [(&str, String, &[u8], &str); 6] = [
        ("POST", "/api/tasks/outgoing/delete".into(), b"[null,true,null]", "not an array"),
        ("POST", "/api/tasks/outgoing/delete".into(), b" [null, true] ", "not an array"),
        ("PUT", format!("/api/objects/cms.user/{id}"), b"[null,null]", "not an array"),
        ("POST", "/api/objects/cms.user".into(), b"\"kept\"", "not a string"),
        ("PUT", "/api/settings".into(), b"null", "not null"),
        ("POST", "/api/batch".into(), b"42", "not a number"),
    ];
    for (method, path, body, says) in cases {
        let r = request_raw(&d.addr, method, &path, Some(body), "application/json");
        assert_eq!(r.status, 422, "{method} {path} {}: {}", String::from_utf8_lossy(body), r.text);
        let error = r.body["error"].as_str().unwrap_or_default();
        assert!(error.contains("must be a JSON object") && error.contains(says), "{error}");
    }
    assert_eq!(d.queue("outgoing", "").len(), queued, "nothing was deleted and no task was logged");
    assert_eq!(d.get(&format!("/api/objects/cms.user/{id}")).body["code_name"], "kept");
    assert_eq!(d.get("/api/settings").body["process_outgoing"], false);
}

#[test]
fn bulk_actions_on_all_act_on_exactly_the_rows_the_filter_lists() {
    let env = TestEnv::new();
    env.scripted("A", users());
    env.scripted("B", users());
    env.set_setting("process_outgoing", false);
    let d = env.start();
    for name in ["anna", "maria", "bert", "mariano", "carl", "dora", "emil"] {
        d.create("cms.user", json!({"code_name": name}));
    }
    assert_eq!(d.queue("outgoing", "").len(), 14, "7 tasks for 2 connectors");

    // What the grid lists with a search is what "all" with that search deletes.
    let listed = rows(&d.queue("outgoing", "&search=MARIA"));
    assert_eq!(listed.len(), 4, "2 tasks × 2 connectors");
    let r = d.post("/api/tasks/outgoing/delete", &json!({"all": true, "search": "MARIA"}));
    assert_eq!((r.status, r.body["deleted"].as_u64()), (200, Some(4)), "{}", r.text);
    let left = rows(&d.queue("outgoing", ""));
    assert_eq!(left.len(), 10);
    assert!(left.is_disjoint(&listed), "exactly the listed rows went");

    // With a connector: only that connector's listed rows.
    let listed = rows(&d.queue("outgoing", "&connector=A&search=bert"));
    assert_eq!(listed.len(), 1, "bert for A: {listed:?}");
    let r = d.post("/api/tasks/outgoing/delete", &json!({"all": true, "connector": "A", "search": "bert"}));
    assert_eq!(r.body["deleted"], 1, "{}", r.text);
    let now = rows(&d.queue("outgoing", ""));
    assert_eq!(now, left.difference(&listed).cloned().collect(), "B keeps bert");

    // `search` belongs to `all`; with `ids` it is refused, and nothing goes.
    let some = now.iter().next().unwrap().0;
    let r = d.post("/api/tasks/outgoing/delete", &json!({"ids": [some], "search": "x"}));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(rows(&d.queue("outgoing", "")), now);

    // `ids` with a connector: only those relations (a grid row is one).
    let r = d.post("/api/tasks/outgoing/delete", &json!({"ids": [some], "connector": "B"}));
    assert_eq!(r.body["deleted"], 1, "{}", r.text);
    assert!(d.queue("outgoing", "&connector=A").iter().any(|t| t["task_id"] == some), "A keeps it");
    env.check_integrity();
}

#[test]
fn a_bulk_synchronize_of_the_listed_rows_reports_failures_as_failures() {
    let env = TestEnv::new();
    env.scripted("A", users());
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let bad =
        d.create("cms.user", json!({"code_name": "bad", "fields": {"outcome": "Error", "message": "CRM says no"}}));
    let bad = bad["task_id"].as_i64().unwrap();
    d.create("cms.user", json!({"code_name": "fine"}));
    d.put("/api/settings", &json!({"process_outgoing": true}));

    // Only the listed (searched) task runs, and its failure is counted.
    let r = d.post("/api/tasks/outgoing/synchronize", &json!({"all": true, "search": "'bad'"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.body["ok"].as_u64(), r.body["failed"].as_u64()), (Some(0), Some(1)), "{}", r.text);
    let outcomes = r.body["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 1, "{}", r.text);
    assert_eq!((outcomes[0]["task_id"].as_i64(), outcomes[0]["error"].as_str()), (Some(bad), Some("CRM says no")));
    assert_eq!(d.queue("outgoing", "").len(), 2, "the unlisted task did not run");
}

#[test]
fn renaming_a_site_moves_its_documents_and_objects_with_it() {
    let env = TestEnv::new();
    let d = env.start();
    let site = d.create("cms.site", json!({"code_name": "CorpSite"}))["object"]["id"].as_i64().unwrap();
    let home = d.post("/api/documents", &json!({"site_name": "CorpSite", "alias_path": "/Home", "class_name": "cms.menuitem", "culture": "en-US", "name": "Home"}));
    assert_eq!(home.status, 201, "{}", home.text);
    let role = d.create("cms.role", json!({"code_name": "editors", "site_name": "CorpSite"}))["object"]["id"]
        .as_i64()
        .unwrap();

    let renamed = d.put(&format!("/api/objects/cms.site/{site}"), &json!({"code_name": "Intranet"}));
    assert_eq!(renamed.status, 200, "{}", renamed.text);

    let on = |site: &str| d.get(&format!("/api/documents?site={site}")).body["items"].as_array().unwrap().len();
    assert_eq!((on("Intranet"), on("CorpSite")), (1, 0), "the document moved with its site");
    assert_eq!(d.get(&format!("/api/objects/cms.role/{role}")).body["site_name"], "Intranet");
    let child = d.post("/api/documents", &json!({"site_name": "Intranet", "alias_path": "/Home/News", "class_name": "cms.menuitem", "culture": "en-US", "name": "News"}));
    assert_eq!(child.status, 201, "a child goes under the moved parent: {}", child.text);
    // The site still cannot be deleted while it has content, under its new name.
    let r = d.delete(&format!("/api/objects/cms.site/{site}"));
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("Intranet") && r.text.contains("2 document node(s)"), "{}", r.text);
}

#[test]
fn answers_at_the_edges_are_the_documented_ones() {
    let env = TestEnv::new();
    let d = env.start();
    for path in ["/api/tasks/outgoing", "/api/tasks/incoming", "/api/eventlog", "/api/connectors"] {
        let r = d.get(&format!("{path}?offset=9223372036854775808"));
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert!(r.body["error"].as_str().unwrap_or_default().contains("offset"), "{path}: {}", r.text);
        let r = d.get(&format!("{path}?offset=9223372036854775807"));
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        // `/api/connectors` answers the rows themselves, the others a page.
        let items = r.body.get("items").unwrap_or(&r.body);
        assert_eq!(items.as_array().map(Vec::len), Some(0), "{path}: {}", r.text);
    }
    // The route between daemons: on SQLite there is no cluster, whatever the
    // body; on PostgreSQL an unknown connector is 404 and an oversized body
    // 413 — always a JSON error, never text.
    let call =
        |body: &[u8]| request_raw(&d.addr, "POST", "/api/cluster/connectors/Any/call", Some(body), "application/json");
    let expected = match env.backend() {
        Backend::Sqlite => [(404, "not part of a cluster"), (404, "not part of a cluster")],
        Backend::Postgres => [(404, "no connector"), (413, "max_request_bytes")],
    };
    for (body, (status, says)) in [b"{}".to_vec(), vec![b' '; 3 << 20]].iter().zip(expected) {
        let r = call(body);
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.body["error"].as_str().unwrap_or_default().contains(says), "{}", r.text);
    }
    // A body over the limit is a JSON 413 on every route.
    let r = request_raw(&d.addr, "POST", "/api/batch", Some(&vec![b' '; 3 << 20]), "application/json");
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
}
