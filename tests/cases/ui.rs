//! The management UI in headless Chromium: the walk-through of the spec's
//! chapter 2.3 by clicking, load failures with their tooltip, a failed
//! task's synchronization log, escaping; a screenshot of each tab is saved
//! under `target/test-artifacts/ui/`.

use bus_tests::browser::Browser;
use bus_tests::{artifacts, wait_for, TestEnv};
use serde_json::json;
use std::time::Duration;

fn shot(b: &Browser, name: &str) {
    let dir = artifacts().dir.parent().unwrap().join("test-artifacts/ui");
    b.screenshot(&dir.join(format!("{name}.png")));
}

#[test]
fn the_management_ui_walk_through() {
    let env = TestEnv::new();
    env.install("sample_connector", "sample_connector");
    env.register("Broken", "nothing_here", "Whatever", true, "");
    env.scripted(
        "Failing",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.role"}]}),
    );
    env.scripted(
        "Mirror",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    );
    let d = env.start();
    let b = Browser::start();
    let base = format!("http://{}/", d.addr);

    // Connectors: the broken one shows ⚠ with the cause as its tooltip.
    b.goto(&format!("{base}#connectors"));
    let warn = b.find("tr[data-name='Broken'] .warn");
    let tooltip = b.attribute(&warn, "title").unwrap_or_default();
    assert!(tooltip.contains("does not exist"), "{tooltip}");
    // Enable the sample connector by clicking.
    assert_eq!(b.text(&b.find("tr[data-name='SampleIntegrationConnector'] .enabled")), "No");
    b.click_css("tr[data-name='SampleIntegrationConnector'] .toggle");
    b.wait_until("the sample to be enabled", |b| {
        b.find_all("tr[data-name='SampleIntegrationConnector'] .enabled").first().is_some_and(|e| b.text(e) == "Yes")
    });
    assert_eq!(d.connector("SampleIntegrationConnector").unwrap()["loaded"], true);
    shot(&b, "connectors");

    // A failing task, for its synchronization log.
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let failed = d.create("cms.role", json!({"code_name": "blocked", "site_name": "CorpSite", "fields": {"outcome": "Error", "message": "ERP says no"}}))["task_id"].as_i64().unwrap();
    wait_for("the failure", Duration::from_secs(10), || {
        d.get(&format!("/api/tasks/{failed}")).body["relations"][0]["error"].as_str().map(|_| ())
    });

    // Processing off: changes accumulate, synchronize is disabled and says why.
    d.put("/api/settings", &json!({"process_outgoing": false}));
    let antonio = d.create("cms.user", json!({"code_name": "antonio", "display_name": "<script>alert('x')</script>"}))
        ["task_id"]
        .as_i64()
        .unwrap();
    let doc = d.post("/api/documents", &json!({"site_name": "CorpSite", "alias_path": "/Apple iPad 2", "class_name": "cms.menuitem", "culture": "en-US", "name": "Apple iPad 2"})).body;
    d.put(&format!("/api/documents/{}", doc["object"]["document_id"]), &json!({"fields": {"price": 499}}));
    b.click_css("[data-tab='outgoing']");
    b.find("tr.task");
    let titles: Vec<String> =
        b.find_all("tr.task[data-connector='SampleIntegrationConnector'] .title").iter().map(|e| b.text(e)).collect();
    assert_eq!(
        titles,
        ["Create User '<script>alert('x')</script>'", "Create document Apple iPad 2", "Update document Apple iPad 2"],
        "oldest first, and the name shows as text"
    );
    // ✖ on one row deletes that connector's relation only.
    b.click_css(&format!("tr.task[data-connector='Mirror'][data-task-id='{antonio}'] .remove"));
    b.wait_until("Mirror's row to go", |b| {
        b.find_all(&format!("tr.task[data-connector='Mirror'][data-task-id='{antonio}']")).is_empty()
    });
    assert_eq!(d.queue("outgoing", "&connector=Mirror").len(), 0);
    let sample: Vec<i64> = d
        .queue("outgoing", "&connector=SampleIntegrationConnector")
        .iter()
        .map(|t| t["task_id"].as_i64().unwrap())
        .collect();
    assert!(sample.contains(&antonio), "the same task stays queued for the sample connector: {sample:?}");
    let sync = b.find("tr.task .sync");
    assert!(!b.is_enabled(&sync));
    assert!(b.attribute(&sync, "title").unwrap_or_default().contains("disabled in Settings"));
    shot(&b, "outgoing");

    // The failed task: hover text and, on click, its synchronization log.
    let link = b.find("tr.task[data-connector='Failing'] a.failed");
    assert_eq!(b.attribute(&link, "title").as_deref(), Some("ERP says no"));
    b.click(&link);
    // The popup is filled once the task's detail has arrived.
    b.wait_until("the synchronization log", |b| {
        b.find_all("#modal-body .synclog").first().is_some_and(|e| b.text(e).contains("Synchronization log — Failing"))
    });
    let body = b.text(&b.find("#modal-body"));
    assert!(body.contains("Synchronization log — Failing") && body.contains("ERP says no"), "{body}");
    shot(&b, "failed-task-log");
    b.click_css("#modal-close");

    // Settings: switch processing back on.
    b.click_css("[data-tab='settings']");
    b.click_css("#s-process_outgoing");
    b.click_css("#save-settings");
    wait_for("processing to be on", Duration::from_secs(10), || {
        (d.get("/api/settings").body["process_outgoing"] == true).then_some(())
    });
    shot(&b, "settings");

    // Outgoing: synchronize all from the bulk action, with progress.
    b.click_css("[data-tab='outgoing']");
    b.find("#bulk-scope");
    b.click_css("#bulk-scope option[value='all']");
    b.click_css("#bulk-action option[value='synchronize']");
    b.click_css("#bulk-ok");
    b.wait_until("the bulk action to finish", |b| {
        b.find_all("#bulk-status").first().is_some_and(|e| b.text(e).starts_with("Done"))
    });
    wait_for("the sample's queue to drain", Duration::from_secs(10), || {
        d.queue("outgoing", "&connector=SampleIntegrationConnector").is_empty().then_some(())
    });

    // Event log: the sample connector's rows, newest first.
    b.click_css("[data-tab='eventlog']");
    let source = b.find("#log-source");
    b.call_type(&source, "SampleIntegrationConnector");
    b.click_css("#log-filter");
    b.wait_until("the connector's rows", |b| b.find_all("tr.event .source").len() == 3);
    let codes: Vec<String> = b.find_all("tr.event .code").iter().map(|e| b.text(e)).collect();
    assert_eq!(codes, ["UPDATEDOCUMENT", "CREATEDOCUMENT", "CREATEOBJECT"]);
    let docs: Vec<String> = b.find_all("tr.event .document").iter().map(|e| b.text(e)).collect();
    assert_eq!(docs[..2], ["Apple iPad 2", "Apple iPad 2"]);
    shot(&b, "eventlog");

    // Scheduled tasks and incoming tasks render too.
    b.click_css("[data-tab='scheduled']");
    b.click_css("tr[data-name='ProcessExternalIntegrationTasks'] .execute");
    b.wait_until("the execution count", |b| {
        b.find_all("tr[data-name='ProcessExternalIntegrationTasks'] .executions")
            .first()
            .is_some_and(|e| b.text(e) == "1")
    });
    shot(&b, "scheduled");
    b.click_css("[data-tab='incoming']");
    b.find("#connector-filter");
    shot(&b, "incoming");
}
