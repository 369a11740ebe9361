//! The incoming direction through the real daemon and the scripted cdylib
//! connector: process types, foreign-key resolution, Snapshot, echo
//! suppression, and every trigger.

use bus_tests::{wait_for, Daemon, TestEnv};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// A connector "Crm" whose external IDs 7 (user) and 9 (role) are known.
fn start_with(extra: &[(&str, Value)]) -> (TestEnv, Daemon) {
    let env = TestEnv::new();
    env.scripted(
        "Crm",
        json!({
            "subscriptions": [{"process_type": "AsyncSimple", "scope": "objects"}],
            "external_objects": {
                "cms.user:7": {"code_name": "antonio"},
                "cms.role:9": {"code_name": "editors", "site_name": "CorpSite"},
                "cms.role:10": {"code_name": "nobody-has-this", "site_name": "CorpSite"}
            }
        }),
    );
    for (name, script) in extra {
        env.scripted(name, script.clone());
    }
    let d = env.start();
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    d.create("cms.role", json!({"code_name": "editors", "site_name": "CorpSite"}));
    (env, d)
}

fn incoming(d: &Daemon, connector: &str, body: Value) -> i64 {
    let r = d.post(&format!("/api/connectors/{connector}/incoming"), &body);
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["task_id"].as_i64().unwrap()
}

fn user(code_name: &str) -> Value {
    json!({"kind": "object", "object_type": "cms.user", "code_name": code_name, "fields": {"source": "crm"}})
}

fn task(obj: Value, task_type: &str, process_type: &str) -> Value {
    json!({"obj": obj, "task_type": task_type, "process_type": process_type})
}

fn process(d: &Daemon, connector: Option<&str>) {
    let path = match connector {
        Some(c) => format!("/api/integration/notify?connector={c}"),
        None => "/api/integration/notify".to_owned(),
    };
    let r = d.post(&path, &json!({}));
    assert_eq!(r.status, 202, "{}", r.text);
}

fn users(d: &Daemon) -> Vec<String> {
    d.get("/api/objects/cms.user").body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["code_name"].as_str().unwrap().to_owned())
        .collect()
}

fn queued(d: &Daemon) -> Vec<(i64, String)> {
    d.queue("incoming", "")
        .iter()
        .map(|t| (t["task_id"].as_i64().unwrap(), t["process_type"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

#[test]
fn default_applies_and_on_error_marks_the_task_error_and_stops() {
    let (_env, d) = start_with(&[]);
    let ok = incoming(&d, "Crm", task(user("antonio"), "CreateObject", "Default"));
    process(&d, None);
    wait_for("antonio to arrive", WAIT, || users(&d).contains(&"antonio".to_owned()).then_some(()));
    wait_for("the queue to empty", WAIT, || queued(&d).is_empty().then_some(()));
    assert_eq!(d.get(&format!("/api/tasks/{ok}")).status, 404);

    let failing = incoming(&d, "Crm", task(user("ghost"), "UpdateObject", "Default"));
    let after = incoming(&d, "Crm", task(user("later"), "CreateObject", "Default"));
    process(&d, Some("Crm"));
    let detail = wait_for("the failure to be recorded", WAIT, || {
        let t = d.get(&format!("/api/tasks/{failing}")).body;
        (t["process_type"] == "Error").then_some(t)
    });
    let error = detail["relations"][0]["log"][0]["error"].as_str().unwrap();
    assert!(error.contains("cms.user `ghost`") && error.contains("cannot be updated"), "{error}");
    assert_eq!(queued(&d), [(failing, "Error".into()), (after, "Default".into())], "processing stopped at the failure");
    assert!(!users(&d).contains(&"later".to_owned()));
    // A task marked Error keeps blocking the queue on the next run...
    process(&d, None);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!users(&d).contains(&"later".to_owned()));
    // ...until it is deleted (or synchronized by hand).
    assert_eq!(d.delete(&format!("/api/tasks/{failing}")).status, 204);
    process(&d, None);
    wait_for("later to arrive", WAIT, || users(&d).contains(&"later".to_owned()).then_some(()));
}

#[test]
fn skip_once_skip_on_error_delete_on_error_and_error() {
    let (_env, d) = start_with(&[]);
    let once = incoming(&d, "Crm", task(user("once"), "CreateObject", "SkipOnce"));
    let skip = incoming(&d, "Crm", task(user("missing"), "DeleteObject", "SkipOnError"));
    let delete = incoming(&d, "Crm", task(user("missing2"), "DeleteObject", "DeleteOnError"));
    let fine = incoming(&d, "Crm", task(user("fine"), "CreateObject", "Default"));
    let sync = d.post("/api/tasks/incoming/synchronize", &json!({"all": true})).body;
    let results: Vec<(i64, String)> = sync["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["task_id"].as_i64().unwrap(), o["result"].as_str().unwrap().to_owned()))
        .collect();
    // A manual synchronize processes SkipOnce tasks at once.
    assert_eq!(
        results,
        [(once, "Ok".into()), (skip, "SkippedOnError".into()), (delete, "DeletedOnError".into()), (fine, "Ok".into())]
    );
    assert_eq!(users(&d), ["once", "fine"]);
    // SkipOnError: still queued with its error; DeleteOnError: gone, with a warning.
    assert_eq!(queued(&d), [(skip, "SkipOnError".into())]);
    assert!(d.get(&format!("/api/tasks/{skip}")).body["relations"][0]["error"]
        .as_str()
        .unwrap()
        .contains("cannot be deleted"));
    assert_eq!(d.get(&format!("/api/tasks/{delete}")).status, 404);
    assert!(d.events("&code=INCOMINGDELETEDONERROR")[0]["description"].as_str().unwrap().contains("missing2"));
    d.delete(&format!("/api/tasks/{skip}"));

    // SkipOnce through a scheduled/notified run: passed over once, then Default.
    let later = incoming(&d, "Crm", task(user("patient"), "CreateObject", "SkipOnce"));
    process(&d, None);
    wait_for("the first run to pass over it", WAIT, || (queued(&d) == [(later, "Default".to_owned())]).then_some(()));
    assert!(!users(&d).contains(&"patient".to_owned()));
    process(&d, None);
    wait_for("the second run to apply it", WAIT, || users(&d).contains(&"patient".to_owned()).then_some(()));

    // Error: processing stops at it, without trying it.
    let blocked = incoming(&d, "Crm", task(user("blocked"), "CreateObject", "Error"));
    let behind = incoming(&d, "Crm", task(user("behind"), "CreateObject", "Default"));
    process(&d, None);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(queued(&d), [(blocked, "Error".into()), (behind, "Default".into())]);
    assert!(d.get(&format!("/api/tasks/{blocked}")).body["relations"][0]["log"].as_array().unwrap().is_empty());
    // Synchronizing the selected task by hand applies it; then the queue moves.
    let manual = d.post("/api/tasks/incoming/synchronize", &json!({"ids": [blocked]})).body;
    assert_eq!(manual["outcomes"][0]["result"], "Ok", "{manual}");
    process(&d, None);
    wait_for("behind to arrive", WAIT, || users(&d).contains(&"behind".to_owned()).then_some(()));
}

#[test]
fn foreign_keys_resolve_to_internal_ids_or_name_the_missing_reference() {
    let (_env, d) = start_with(&[]);
    let antonio = d.create("cms.user", json!({"code_name": "antonio"}))["object"]["id"].as_i64().unwrap();
    let role = d.get("/api/objects/cms.role").body["items"][0]["id"].as_i64().unwrap();
    let binding = json!({"kind": "object", "object_type": "cms.userrole", "fields": {"UserID": 7, "RoleID": 9}});
    incoming(&d, "Crm", json!({"obj": binding, "task_type": "CreateObject", "data_type": "SimpleSnapshot"}));
    let bad = json!({"kind": "object", "object_type": "cms.userrole", "fields": {"UserID": 7, "RoleID": 10}});
    let failing = incoming(&d, "Crm", json!({"obj": bad, "task_type": "CreateObject", "data_type": "SimpleSnapshot"}));
    let stored = d.get(&format!("/api/tasks/{failing}")).body;
    assert_eq!(
        stored["data"]["translations"]["objects"].as_array().unwrap().len(),
        2,
        "translation data collected when logged"
    );
    process(&d, None);
    let error = wait_for("the unresolvable key to fail", WAIT, || {
        d.get(&format!("/api/tasks/{failing}")).body["relations"][0]["error"].as_str().map(str::to_owned)
    });
    assert!(error.contains("cms.userrole.RoleID refers to cms.role `nobody-has-this` on site `CorpSite`"), "{error}");
    let bindings = d.get("/api/objects/cms.userrole").body["items"].as_array().unwrap().clone();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0]["fields"], json!({"UserID": antonio, "RoleID": role}), "stored with internal IDs");
}

#[test]
fn snapshot_applies_an_object_with_its_children_or_nothing() {
    let (_env, d) = start_with(&[]);
    let poll = |code: &str, answers: Value| json!({"kind": "object", "object_type": "poll.poll", "code_name": code, "site_name": "CorpSite", "children": answers});
    let answer = |code: &str| json!({"object_type": "poll.pollanswer", "code_name": code, "site_name": "CorpSite", "fields": {"AnswerPollID": 555}});
    incoming(
        &d,
        "Crm",
        json!({"obj": poll("colour", json!([answer("red"), answer("blue")])), "task_type": "CreateObject", "data_type": "Snapshot"}),
    );
    // The second answer has no code name: the whole task must roll back.
    let broken = incoming(
        &d,
        "Crm",
        json!({"obj": poll("size", json!([answer("small"), answer("")])), "task_type": "CreateObject", "data_type": "Snapshot"}),
    );
    process(&d, None);
    wait_for("the broken task to fail", WAIT, || {
        d.get(&format!("/api/tasks/{broken}")).body["relations"][0]["error"].as_str().map(|_| ())
    });
    let polls: Vec<String> = d.get("/api/objects/poll.poll").body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(polls, ["colour"], "the broken poll was not half-written");
    let answers = d.get("/api/objects/poll.pollanswer").body["items"].as_array().unwrap().clone();
    let colour = d.get("/api/objects/poll.poll").body["items"][0]["id"].clone();
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|a| a["fields"]["AnswerPollID"] == colour && a["parent"]["id"] == colour));
}

#[test]
fn a_change_from_one_connector_goes_out_to_the_others_but_not_back() {
    let (_env, d) = start_with(&[(
        "Shop",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    )]);
    incoming(&d, "Crm", task(user("echo"), "CreateObject", "Default"));
    process(&d, Some("Crm"));
    wait_for("echo to be applied", WAIT, || users(&d).contains(&"echo".to_owned()).then_some(()));
    wait_for("Shop to get the user", WAIT, || d.reports("Shop").iter().any(|r| r["name"] == "echo").then_some(()));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!d.reports("Crm").iter().any(|r| r["name"] == "echo"), "Crm never gets its own change back");
    // A change made in the content store goes to both.
    d.create("cms.user", json!({"code_name": "local"}));
    wait_for("both to get the local user", WAIT, || {
        (d.reports("Crm").iter().any(|r| r["name"] == "local")
            && d.reports("Shop").iter().any(|r| r["name"] == "local"))
        .then_some(())
    });
}

#[test]
fn a_connector_logs_an_incoming_task_itself_through_the_host() {
    let (_env, d) = start_with(&[]);
    // An outgoing task makes the scripted connector log an incoming one and
    // request processing, as a connector polling its system would.
    d.create("cms.user", json!({"code_name": "trigger", "fields": {"emit_incoming": user("from-the-crm")}}));
    wait_for("the incoming user to be applied", WAIT, || users(&d).contains(&"from-the-crm".to_owned()).then_some(()));
    let emitted = d.reports("Crm").into_iter().find(|r| r.get("emitted").is_some()).unwrap();
    assert_eq!(emitted["emitted"], true, "{emitted}");
}

#[test]
fn scheduled_notified_and_manual_processing_and_nothing_while_processing_is_off() {
    let (env, d) = start_with(&[]);
    env.set_setting("process_incoming", false);
    let first = incoming(&d, "Crm", task(user("a1"), "CreateObject", "Default"));
    let refused = d.post("/api/integration/notify", &json!({}));
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.body["error"].as_str().unwrap().contains("tasks stay queued"));
    assert_eq!(d.post(&format!("/api/tasks/{first}/synchronize"), &json!({})).status, 409);
    let scheduled = d.post("/api/scheduled-tasks/ProcessExternalIntegrationTasks/execute", &json!({})).body;
    assert!(scheduled["last_result"].as_str().unwrap().contains("failed"), "{scheduled}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(queued(&d).len(), 1, "nothing runs while processing is off");
    env.set_setting("process_incoming", true);

    // Manual: one task.
    let one = d.post(&format!("/api/tasks/{first}/synchronize"), &json!({})).body;
    assert_eq!(one["outcomes"][0]["result"], "Ok", "{one}");
    // Scheduled: a short interval makes the scheduler run it.
    incoming(&d, "Crm", task(user("a2"), "CreateObject", "Default"));
    let before = d.get("/api/scheduled-tasks/ProcessExternalIntegrationTasks").body["executions"].as_i64().unwrap();
    let set = d.put("/api/scheduled-tasks/ProcessExternalIntegrationTasks", &json!({"interval_seconds": 1}));
    assert_eq!(set.status, 200, "{}", set.text);
    wait_for("the scheduler to process a2", WAIT, || users(&d).contains(&"a2".to_owned()).then_some(()));
    let scheduled = d.get("/api/scheduled-tasks/ProcessExternalIntegrationTasks").body;
    assert!(scheduled["executions"].as_i64().unwrap() > before && scheduled["last_run"].is_string(), "{scheduled}");
    d.put("/api/scheduled-tasks/ProcessExternalIntegrationTasks", &json!({"interval_seconds": 86400}));
    // Notify for one connector, through the SDK's helper.
    incoming(&d, "Crm", task(user("a3"), "CreateObject", "Default"));
    let status = connector_http::request_tasks_processing(&format!("http://{}", d.addr), Some("Crm")).unwrap();
    assert_eq!(status, 202);
    wait_for("a3 to arrive", WAIT, || users(&d).contains(&"a3".to_owned()).then_some(()));
    assert_eq!(d.post("/api/integration/notify?connector=Nope", &json!({})).status, 404);
    let listed = d.get("/api/scheduled-tasks").body;
    assert_eq!(listed[0]["display_name"], "Process external integration tasks");
    assert_eq!(
        d.put("/api/scheduled-tasks/ProcessExternalIntegrationTasks", &json!({"interval_seconds": 0})).status,
        422
    );
}

#[test]
fn logging_incoming_tasks_refuses_bad_input_and_respects_the_setting() {
    let (env, d) = start_with(&[]);
    let cases = vec![
        ("Nope", task(user("x"), "CreateObject", "Default"), 404, "no connector with code name `Nope`"),
        ("Crm", json!({"obj": {"refuse": "no such contact"}, "task_type": "CreateObject"}), 422, "no such contact"),
        (
            "Crm",
            task(json!({"kind": "object", "object_type": "cms.nothing", "code_name": "x"}), "CreateObject", "Default"),
            422,
            "unknown type `cms.nothing`",
        ),
        ("Crm", task(user("x"), "CreateDocument", "Default"), 422, "does not fit"),
        ("Crm", task(user("x"), "All", "Default"), 422, "All only makes sense"),
        ("Crm", json!({"obj": {}, "task_type": "Explode"}), 422, "unknown variant `Explode`"),
        ("Crm", json!({"task_type": "CreateObject"}), 422, "missing field `obj`"),
    ];
    for (connector, body, status, needle) in cases {
        let r = d.post(&format!("/api/connectors/{connector}/incoming"), &body);
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert!(r.body["error"].as_str().unwrap().contains(needle), "expected `{needle}` in {}", r.text);
    }
    env.set_setting("log_incoming", false);
    let off = d.post("/api/connectors/Crm/incoming", &task(user("x"), "CreateObject", "Default"));
    assert_eq!(off.status, 409);
    assert!(off.body["error"].as_str().unwrap().contains("nothing was stored"));
    let tasks: i64 =
        env.sql().query_row("SELECT COUNT(*) FROM Integration_Task WHERE TaskIsInbound = 1", [], |r| r.get(0)).unwrap();
    assert_eq!(tasks, 0);
}

#[test]
fn incoming_documents_are_created_found_by_node_guid_and_keep_their_keys() {
    let env = TestEnv::new();
    let guid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    env.scripted(
        "Shop",
        json!({
            "subscriptions": [],
            "external_objects": {"cms.user:7": {"code_name": "manager"}},
            "external_documents": {"70": {"node_guid": guid, "culture": "en-US", "site_name": "CorpSite"}}
        }),
    );
    let d = env.start();
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let manager = d.create("cms.user", json!({"code_name": "manager"}))["object"]["id"].as_i64().unwrap();
    let home = json!({"kind": "document", "node_guid": guid, "node_alias_path": "/Home", "class_name": "cms.menuitem",
                      "site_name": "CorpSite", "culture": "en-US", "name": "Home"});
    incoming(&d, "Shop", json!({"obj": home, "task_type": "CreateDocument"}));
    let product = json!({"kind": "document", "node_alias_path": "/Home/iPad", "class_name": "cms.product", "site_name": "CorpSite",
                         "culture": "en-US", "name": "iPad", "fields": {"ProductManagerID": 7, "RelatedNodeID": 70}});
    incoming(&d, "Shop", json!({"obj": product, "task_type": "CreateDocument", "data_type": "SimpleSnapshot"}));
    let mut renamed = home.clone();
    renamed["name"] = json!("Start");
    incoming(&d, "Shop", json!({"obj": renamed, "task_type": "UpdateDocument"}));
    incoming(&d, "Shop", json!({"obj": home, "task_type": "PublishDocument"}));
    let sync = d.post("/api/tasks/incoming/synchronize", &json!({"all": true})).body;
    assert!(sync["outcomes"].as_array().unwrap().iter().all(|o| o["result"] == "Ok"), "{sync}");
    let docs = d.get("/api/documents?site=CorpSite").body["items"].as_array().unwrap().clone();
    let home_doc = docs.iter().find(|x| x["node_alias_path"] == "/Home").unwrap();
    assert_eq!(
        (home_doc["node_guid"].as_str(), home_doc["name"].as_str(), home_doc["published"].as_bool()),
        (Some(guid), Some("Start"), Some(true))
    );
    let ipad = docs.iter().find(|x| x["node_alias_path"] == "/Home/iPad").unwrap();
    assert_eq!(ipad["fields"]["ProductManagerID"], manager, "the external user 7 is the internal manager");
    assert_eq!(ipad["fields"]["RelatedNodeID"], home_doc["node_id"], "the external document 70 is the /Home node");
}
