//! The connectors, event-log and health routes, including bad input.

use bus_tests::TestEnv;
use serde_json::{json, Value};

#[test]
fn connectors_crud_through_the_api_reinitializes_and_reports_load_state() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    let d = env.start();

    let created = d.post(
        "/api/connectors",
        &json!({"name": "Crm", "display_name": "CRM", "assembly_name": "testkit", "class_name": "EchoConnector", "enabled": true}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["loaded"], true, "the answer shows the new load state: {}", created.text);
    assert_eq!(created.body["display_name"], "CRM");

    let got = d.get("/api/connectors/Crm");
    assert_eq!(got.status, 200);
    assert_eq!(got.body["class_name"], "EchoConnector");

    let edited = d.put("/api/connectors/Crm", &json!({"class_name": "NoSuchClass"}));
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.body["class_name"], "NoSuchClass");
    assert!(edited.body["error"].as_str().unwrap().contains("not exported"), "{}", edited.text);

    let disabled = d.put("/api/connectors/Crm", &json!({"enabled": false, "class_name": "EchoConnector"}));
    assert_eq!(disabled.body["loaded"], false);
    assert_eq!(disabled.body["error"], Value::Null);

    let renamed = d.put("/api/connectors/Crm", &json!({"name": "Crm2"}));
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(d.get("/api/connectors/Crm").status, 404);

    assert_eq!(d.delete("/api/connectors/Crm2").status, 204);
    assert_eq!(d.delete("/api/connectors/Crm2").status, 404);
    let rows: i64 = env
        .sql()
        .query_row("SELECT COUNT(*) FROM Integration_Connector WHERE ConnectorName LIKE 'Crm%'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[test]
fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let env = TestEnv::new();
    let d = env.start();
    let before = d.get("/api/connectors").body;

    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        ("POST", "/api/connectors", Some(json!({"name": "x"})), 422, "missing field `assembly_name`"),
        (
            "POST",
            "/api/connectors",
            Some(json!({"name": "bad name", "assembly_name": "a", "class_name": "C"})),
            422,
            "contains ` `",
        ),
        (
            "POST",
            "/api/connectors",
            Some(json!({"name": "Ok", "assembly_name": "../etc", "class_name": "C"})),
            422,
            "connectors folder",
        ),
        (
            "POST",
            "/api/connectors",
            Some(json!({"name": "Ok", "assembly_name": "a", "class_name": "C", "colour": 1})),
            422,
            "unknown field `colour`",
        ),
        (
            "POST",
            "/api/connectors",
            Some(json!({"name": "SampleIntegrationConnector", "assembly_name": "a", "class_name": "C"})),
            409,
            "already registered",
        ),
        (
            "POST",
            "/api/connectors",
            Some(json!({"name": 5, "assembly_name": "a", "class_name": "C"})),
            422,
            "invalid type",
        ),
        ("PUT", "/api/connectors/Nope", Some(json!({"enabled": true})), 404, "no connector with code name `Nope`"),
        ("PUT", "/api/connectors/SampleIntegrationConnector", Some(json!({"enabled": "yes"})), 422, "invalid type"),
        ("DELETE", "/api/connectors/Nope", None, 404, "Nope"),
        ("GET", "/api/eventlog?limit=0", None, 400, "limit must be between 1 and 500"),
        ("GET", "/api/eventlog?type=X", None, 400, "type must be I, W or E"),
        ("GET", "/api/eventlog?before=abc", None, 400, "before"),
        ("GET", "/api/nothing-here", None, 404, "no such route"),
        ("PATCH", "/api/connectors", None, 405, "does not accept"),
        ("GET", "/health?probe=maybe", None, 400, "probe must be"),
    ];
    for (method, path, body, status, needle) in cases {
        let r = bus_tests::http::request(&d.addr, method, path, body.as_ref());
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        let error = r.body["error"].as_str().unwrap_or_else(|| panic!("{method} {path}: no JSON error in {}", r.text));
        assert!(error.contains(needle), "{method} {path}: expected `{needle}` in `{error}`");
    }
    let broken =
        bus_tests::http::request_raw(&d.addr, "POST", "/api/connectors", Some(b"{not json"), "application/json");
    assert_eq!(broken.status, 400, "{}", broken.text);
    assert!(broken.body["error"].as_str().unwrap().contains("JSON"), "{}", broken.text);
    let wrong_type = bus_tests::http::request_raw(&d.addr, "POST", "/api/connectors", Some(b"{}"), "text/plain");
    assert_eq!(wrong_type.status, 415, "{}", wrong_type.text);
    assert!(wrong_type.body["error"].is_string());

    assert_eq!(d.get("/api/connectors").body, before, "nothing was written");
}

#[test]
fn the_event_log_pages_and_filters() {
    let env = TestEnv::new();
    env.install("testkit_connector", "testkit");
    for i in 0..5 {
        env.register(&format!("E{i}"), "testkit", "EchoConnector", true, "log_on_init");
    }
    env.register("Broken", "missing", "EchoConnector", true, "");
    let d = env.start();
    let first = d.get("/api/eventlog?source=E1&limit=1").body;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    assert_eq!(first["items"][0]["code"], "INIT");
    assert_eq!(first["items"][0]["event_type"], "I");
    let page1 = d.get("/api/eventlog?code=INIT&limit=3").body;
    assert_eq!(page1["items"].as_array().unwrap().len(), 3);
    let before = page1["next_before"].as_i64().unwrap();
    let page2 = d.get(&format!("/api/eventlog?code=INIT&limit=3&before={before}")).body;
    assert_eq!(page2["items"].as_array().unwrap().len(), 2);
    assert!(page2["next_before"].is_null());
    let ids: Vec<i64> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let warnings = d.get("/api/eventlog?type=W").body;
    assert_eq!(warnings["items"][0]["source"], "Integration bus");
    assert!(warnings["items"][0]["description"].as_str().unwrap().contains("`Broken`"));
    // In the grid (as the UI asks) a source is part of a name, in any case;
    // without grid parameters it is the exact name.
    let typed = d.get("/api/eventlog?source=e1&code=INIT&sort=source&order=asc").body;
    let sources: Vec<&str> = typed["items"].as_array().unwrap().iter().map(|e| e["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["E1"], "{typed}");
    let typed = d.get("/api/eventlog?source=INTEGRATION&sort=time").body;
    assert!(typed["total"].as_i64().unwrap() >= 1, "{typed}");
    assert_eq!(d.get("/api/eventlog?source=e1").body["items"].as_array().unwrap().len(), 0, "exact outside the grid");
}

#[test]
fn every_route_of_the_openapi_document_answers() {
    let env = TestEnv::new();
    let d = env.start();
    let doc = d.get("/api/openapi.json");
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{}", paths.len());
    for (path, ops) in paths {
        let concrete = path
            .replace("{name}", "NoSuchThing")
            .replace("{type}", "cms.user")
            .replace("{id}", "999999")
            .replace("{site}", "NoSite");
        for method in ops.as_object().unwrap().keys() {
            let body = (method != "get" && method != "delete").then(|| json!({}));
            let r = bus_tests::http::request(&d.addr, &method.to_uppercase(), &concrete, body.as_ref());
            let unrouted = r.status == 405 || (r.status == 404 && r.body["error"] == "no such route");
            assert!(!unrouted, "{method} {path} is documented but not routed: {} {}", r.status, r.text);
            assert!(r.status < 500, "{method} {path}: {} {}", r.status, r.text);
            assert!(
                r.body.is_object() || r.body.is_array() || path == "/metrics" || r.status == 204,
                "{method} {path}: not JSON: {}",
                r.text
            );
        }
    }
}

#[test]
fn the_connector_list_pages_by_code_name() {
    let env = TestEnv::new();
    for n in ["A1", "B2", "C3"] {
        env.register(n, "missing", "X", false, "");
    }
    let d = env.start();
    let names = |q: &str| -> Vec<String> {
        d.get(&format!("/api/connectors{q}"))
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("?limit=2"), ["A1", "B2"]);
    assert_eq!(names("?limit=2&after=B2"), ["C3", "SampleIntegrationConnector"]);
    assert_eq!(d.get("/api/connectors?limit=0").status, 400);
}

#[test]
fn grids_sort_search_and_page_with_a_total() {
    let env = TestEnv::new();
    env.scripted(
        "A",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    );
    for n in ["Zed", "Alpha"] {
        env.register(n, "missing", "X", true, "");
    }
    env.set_setting("process_outgoing", false);
    let d = env.start();
    for name in ["carol", "alice", "bob", "dave", "erin", "alfred", "zoe"] {
        d.create("cms.user", json!({"code_name": name}));
    }
    let titles = |q: &str| -> (Vec<String>, i64) {
        let r = d.get(&format!("/api/tasks/outgoing?{q}"));
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        let items =
            r.body["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap().to_owned()).collect();
        (items, r.body["total"].as_i64().unwrap())
    };
    let (page, total) = titles("sort=title&order=desc&limit=3");
    assert_eq!(page, ["Create User 'zoe'", "Create User 'erin'", "Create User 'dave'"]);
    assert_eq!(total, 7);
    let (page, _) = titles("sort=title&order=desc&limit=3&offset=6");
    assert_eq!(page, ["Create User 'alfred'"], "the last page");
    let (page, total) = titles("search=AL&sort=time");
    assert_eq!((page, total), (vec!["Create User 'alice'".to_owned(), "Create User 'alfred'".to_owned()], 2));
    let (page, _) = titles("search=100%25");
    assert!(page.is_empty(), "% is searched literally");
    for bad in ["sort=colour", "order=up", "order=DESC", "cursor=1.x", "limit=0&sort=title"] {
        let r = d.get(&format!("/api/tasks/outgoing?{bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    // A grid parameter pages by offset: a cursor beside it is not used.
    assert_eq!(titles("cursor=1.1&sort=title&limit=1").0, ["Create User 'alfred'"]);
    // The event log: searched, sorted, paged with a total.
    let r = d.get("/api/eventlog?search=CONNECTORLOAD&limit=1");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["total"].as_i64().unwrap() >= 2, "{}", r.text);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = d.get("/api/eventlog?sort=source&order=asc");
    let sources: Vec<String> =
        r.body["items"].as_array().unwrap().iter().map(|e| e["source"].as_str().unwrap().to_lowercase()).collect();
    let mut sorted = sources.clone();
    sorted.sort();
    assert_eq!(sources, sorted);
    // The connectors: sorted and searched on the server, the total in a header.
    let r = d.get("/api/connectors?sort=name&order=desc&search=a&limit=2");
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r.body.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["SampleIntegrationConnector", "Alpha"]);
    assert_eq!(r.header("x-total-count"), Some("3"), "A, Alpha and the sample contain an `a`");
}

#[test]
fn the_payload_view_shows_what_the_connector_receives() {
    let env = TestEnv::new();
    env.scripted(
        "Plain",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.role"}]}),
    );
    env.scripted(
        "Rich",
        json!({"subscriptions": [{"process_type": "AsyncSnapshot", "scope": "objects", "object_type": "cms.role"}]}),
    );
    env.set_setting("process_outgoing", false);
    let d = env.start();
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let task =
        d.create("cms.role", json!({"code_name": "editors", "site_name": "CorpSite"}))["task_id"].as_i64().unwrap();
    let plain = d.get(&format!("/api/tasks/{task}/payload?connector=Plain"));
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert_eq!(plain.body["task_id"], task);
    assert_eq!(plain.body["data_type"], "Simple");
    assert_eq!(plain.body["object"]["code_name"], "editors");
    let rich = d.get(&format!("/api/tasks/{task}/payload?connector=Rich"));
    assert_eq!(rich.body["data_type"], "Snapshot", "{}", rich.text);
    assert_eq!(d.get(&format!("/api/tasks/{task}/payload?connector=Nobody")).status, 404);
}

#[test]
fn live_answers_match_the_schemas_of_the_openapi_document() {
    let env = TestEnv::new();
    env.scripted(
        "A",
        json!({"subscriptions": [{"process_type": "AsyncSnapshot", "scope": "objects", "object_type": "cms.user"}]}),
    );
    env.register("Broken", "missing", "X", true, "");
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let doc = d.get("/api/openapi.json").body;
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let user = d.create("cms.user", json!({"code_name": "antonio", "fields": {"email": "a@b.c"}}));
    let user_id = user["object"]["id"].as_i64().unwrap();
    let task = user["task_id"].as_i64().unwrap();
    let doc_created = d.post(
        "/api/documents",
        &json!({"site_name": "CorpSite", "alias_path": "/Home", "class_name": "cms.menuitem", "culture": "en-US", "name": "Home"}),
    );
    let document_id = doc_created.body["object"]["document_id"].as_i64().unwrap();
    // Each answer, checked against the schema the document gives its route.
    let checks: Vec<(&str, &str, String, Option<Value>)> = vec![
        ("get", "/api/connectors", "/api/connectors".into(), None),
        ("get", "/api/connectors/{name}", "/api/connectors/A".into(), None),
        ("get", "/api/settings", "/api/settings".into(), None),
        ("get", "/api/object-types", "/api/object-types".into(), None),
        ("get", "/api/objects/{type}", "/api/objects/cms.user".into(), None),
        ("get", "/api/objects/{type}/{id}", format!("/api/objects/cms.user/{user_id}"), None),
        ("get", "/api/documents", "/api/documents?site=CorpSite".into(), None),
        ("get", "/api/documents/{id}", format!("/api/documents/{document_id}"), None),
        ("get", "/api/tasks/outgoing", "/api/tasks/outgoing".into(), None),
        ("get", "/api/tasks/outgoing", "/api/tasks/outgoing?sort=title".into(), None),
        ("get", "/api/tasks/outgoing/count", "/api/tasks/outgoing/count".into(), None),
        ("get", "/api/tasks/{id}", format!("/api/tasks/{task}"), None),
        ("get", "/api/eventlog", "/api/eventlog".into(), None),
        ("get", "/api/eventlog", "/api/eventlog?search=load".into(), None),
        ("get", "/api/scheduled-tasks", "/api/scheduled-tasks".into(), None),
        ("get", "/health", "/health".into(), None),
        (
            "put",
            "/api/objects/{type}/{id}",
            format!("/api/objects/cms.user/{user_id}"),
            Some(json!({"display_name": "Antonio"})),
        ),
        (
            "post",
            "/api/batch",
            "/api/batch".into(),
            Some(
                json!({"changes": [{"op": "create_object", "object_type": "cms.role", "object": {"code_name": "editors", "site_name": "CorpSite"}}]}),
            ),
        ),
    ];
    for (method, route, path, body) in checks {
        let r = bus_tests::http::request(&d.addr, &method.to_uppercase(), &path, body.as_ref());
        assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.text);
        let op = &doc["paths"][route][method];
        let schema = &op["responses"][r.status.to_string()]["content"]["application/json"]["schema"];
        assert!(!schema.is_null(), "{method} {route} documents no schema for {}", r.status);
        if let Err(e) = bus_tests::schema::check(&doc, schema, &r.body, "$") {
            panic!("{method} {path} does not match its documented schema: {e}\n{}", r.text);
        }
    }
    // The checker does refuse what does not match.
    let task_row = json!({"$ref": "#/components/schemas/TaskRow"});
    assert!(bus_tests::schema::check(&doc, &task_row, &json!({"task_id": "seven"}), "$").is_err());
    // An error answer matches the Error schema.
    let r = d.get("/api/objects/no.such.type");
    assert!(r.status >= 400);
    bus_tests::schema::check(&doc, &json!({"$ref": "#/components/schemas/Error"}), &r.body, "$").unwrap();
    // Query parameters come from the handlers' own types.
    let params: Vec<&str> = doc["paths"]["/api/tasks/outgoing"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in ["connector", "cursor", "limit", "sort", "order", "search", "offset"] {
        assert!(params.contains(&p), "{p} missing from {params:?}");
    }
    assert!(doc["components"]["schemas"]["NewConnector"]["required"]
        .as_array()
        .unwrap()
        .contains(&json!("assembly_name")));
}
