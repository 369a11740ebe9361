//! The management UI in headless Chromium: the walk-through of the spec's
//! chapter 2.3 by clicking, load failures with their tooltip, a failed
//! task's synchronization log, escaping; a screenshot of each tab is saved
//! under `target/test-artifacts/ui/`.

use bus_tests::browser::Browser;
use bus_tests::{artifacts, wait_for, TestEnv};
use serde_json::json;
use std::time::Duration;

/// A scripted connector `name` that takes every user change, outgoing
/// processing off so its tasks stay listed; the daemon started.
fn holding_user_tasks(env: &TestEnv, name: &str) -> bus_tests::Daemon {
    env.scripted(
        name,
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    );
    env.set_setting("process_outgoing", false);
    env.start()
}

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
    let maria = d.create("cms.user", json!({"code_name": "maria"}))["task_id"].as_i64().unwrap();
    b.click_css("[data-tab='outgoing']");
    b.find("tr.task");
    let titles: Vec<String> =
        b.find_all("tr.task[data-connector='SampleIntegrationConnector'] .title").iter().map(|e| b.text(e)).collect();
    assert_eq!(
        titles,
        [
            "Create User '<script>alert('x')</script>'",
            "Create document Apple iPad 2",
            "Update document Apple iPad 2",
            "Create User 'maria'"
        ],
        "oldest first, and the name shows as text"
    );
    // ✖ on one row deletes that connector's relation only.
    b.click_css(&format!("tr.task[data-connector='Mirror'][data-task-id='{antonio}'] .remove"));
    let asked = b.answer_dialog(true);
    assert!(asked.starts_with("Delete 1 task") && asked.contains("Mirror"), "the delete asks first: {asked}");
    b.wait_until("Mirror's row to go", |b| {
        b.find_all(&format!("tr.task[data-connector='Mirror'][data-task-id='{antonio}']")).is_empty()
    });
    let mirror: Vec<i64> =
        d.queue("outgoing", "&connector=Mirror").iter().map(|t| t["task_id"].as_i64().unwrap()).collect();
    assert_eq!(mirror, [maria], "only that row's relation was deleted");
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

    // Sync on one row synchronizes that connector's relation only.
    b.click_css("[data-tab='outgoing']");
    let mirror_row = format!("tr.task[data-connector='Mirror'][data-task-id='{maria}']");
    b.wait_until("Sync to be enabled", |b| {
        b.find_all(&format!("{mirror_row} .sync")).first().is_some_and(|e| b.is_enabled(e))
    });
    b.click_css(&format!("{mirror_row} .sync"));
    b.wait_until("Mirror's row to go", |b| b.find_all(&mirror_row).is_empty());
    assert!(d.reports("Mirror").iter().any(|r| r["name"] == "maria"), "Mirror got the task");
    let sample: Vec<i64> = d
        .queue("outgoing", "&connector=SampleIntegrationConnector")
        .iter()
        .map(|t| t["task_id"].as_i64().unwrap())
        .collect();
    assert!(sample.contains(&maria), "the sample's relation of the same task is still queued: {sample:?}");

    // Outgoing: synchronize all from the bulk action, with progress; the
    // failing connector's task is reported as a failure, with its reason.
    b.find("#bulk-scope");
    b.click_css("#bulk-scope option[value='all']");
    b.click_css("#bulk-action option[value='synchronize']");
    b.click_css("#bulk-ok");
    b.wait_seeing("the bulk action to finish", |b| {
        let status = b.find_all("#bulk-status").first().map(|e| b.text(e)).unwrap_or_default();
        if status.starts_with("1 failed: ERP says no;") {
            Ok(())
        } else {
            Err(status)
        }
    });
    shot(&b, "bulk-failed");
    wait_for("the sample's queue to drain", Duration::from_secs(10), || {
        d.queue("outgoing", "&connector=SampleIntegrationConnector").is_empty().then_some(())
    });

    // Event log: the sample connector's rows, newest first.
    b.click_css("[data-tab='eventlog']");
    // The log is live: the deliveries just made may repaint it while the
    // filter is typed (`fill` types into the field as it is now).
    b.fill("#log-source", "SampleIntegrationConnector");
    b.click_css("#log-filter");
    b.wait_until("the connector's rows", |b| b.find_all("tr.event .source").len() == 4);
    let codes: Vec<String> = b.find_all("tr.event .code").iter().map(|e| b.text(e)).collect();
    assert_eq!(codes, ["CREATEOBJECT", "UPDATEDOCUMENT", "CREATEDOCUMENT", "CREATEOBJECT"], "newest first");
    let docs: Vec<String> = b.find_all("tr.event .document").iter().map(|e| b.text(e)).collect();
    assert_eq!(docs[1..3], ["Apple iPad 2", "Apple iPad 2"]);
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

/// Shows one kind of content and waits until the view has changed to it
/// (its "New …" button says so), so later clicks hit the new view.
fn choose_kind(b: &Browser, kind: &str, button: &str) {
    b.click_css(&format!("#content-kind option[value='{kind}']"));
    let css = if kind == "documents" { "#new-document" } else { "#new-object" };
    b.wait_until(&format!("the {kind} view"), |b| b.find_all(css).first().is_some_and(|e| b.text(e) == button));
}

/// Adds a field row to the open form (`c`: an object's, `d`: a document's)
/// and fills in its name, kind and value.
fn add_field(b: &Browser, form: &str, name: &str, kind: &str, value: &str) {
    b.click_css(&format!("#{form}-add-field"));
    let row = format!("#{form}-fields .field-row:last-of-type");
    b.fill(&format!("{row} .field-name"), name);
    b.click_css(&format!("{row} .field-kind option[value='{kind}']"));
    b.fill(&format!("{row} .field-value"), value);
}

/// Sets a checkbox by clicking it when it is not as wanted.
fn set_checkbox(b: &Browser, css: &str, on: bool) {
    let e = b.find(css);
    if b.is_selected(&e) != on {
        b.click(&e);
    }
}

/// Chapter 2.3 of the specification, steps 3 to 8, with clicks only: enable
/// the sample connector, adjust the settings, create and modify users and
/// documents, see the tasks wait while processing is off, synchronize all,
/// read the event log.
#[test]
fn the_specifications_sample_walk_through_with_clicks_only() {
    let env = TestEnv::new();
    env.install("sample_connector", "sample_connector");
    let d = env.start();
    let b = Browser::start();
    b.goto(&format!("http://{}/#connectors", d.addr));

    // Steps 3–4: the sample is registered but not enabled; edit it, check Enabled, OK.
    // Not running yet, its Isolation column already says where it will run.
    let isolation = b.find("tr[data-name='SampleIntegrationConnector'] .isolation");
    assert_eq!(b.text(&isolation), "process");
    assert!(b.attribute(&isolation, "title").unwrap_or_default().contains("bus.toml default"));
    b.click_css("tr[data-name='SampleIntegrationConnector'] .edit");
    assert_eq!(b.property(&b.find("#f-name"), "value").as_deref(), Some("SampleIntegrationConnector"));
    set_checkbox(&b, "#f-enabled", true);
    b.click_css("#connector-ok");
    b.wait_until("the sample to load", |b| {
        b.find_all("tr[data-name='SampleIntegrationConnector'] .enabled").first().is_some_and(|e| b.text(e) == "Yes")
    });
    wait_for("the sample to be loaded", Duration::from_secs(10), || {
        (d.connector("SampleIntegrationConnector").unwrap()["loaded"] == true).then_some(())
    });
    // Its own process by default; moved into the daemon from the edit form.
    b.wait_until("the isolation column", |b| {
        b.find_all("tr[data-name='SampleIntegrationConnector'] .isolation")
            .first()
            .is_some_and(|e| b.text(e) == "process")
    });
    b.click_css("tr[data-name='SampleIntegrationConnector'] .edit");
    b.click_css("#f-isolation option[value='in-process']");
    b.click_css("#connector-ok");
    wait_for("the sample to run in-process", Duration::from_secs(10), || {
        let c = d.connector("SampleIntegrationConnector").unwrap();
        (c["isolation"] == "in-process" && c["running_isolation"] == "in-process").then_some(())
    });
    b.wait_until("the isolation column to follow", |b| {
        b.find_all("tr[data-name='SampleIntegrationConnector'] .isolation")
            .first()
            .is_some_and(|e| b.text(e) == "in-process")
    });
    // Delivery: per-object order with 4 calls at once and a rate limit; an
    // unusable value is refused in the form with the field named.
    b.click_css("tr[data-name='SampleIntegrationConnector'] .edit");
    b.click_css("#f-ordering option[value='object']");
    b.fill("#f-concurrency", "999");
    b.click_css("#connector-ok");
    b.wait_until("the refusal in the form", |b| {
        b.find_all("form.edit .error").first().is_some_and(|e| b.text(e).contains("concurrency"))
    });
    b.fill("#f-concurrency", "4");
    b.fill("#f-rate_limit", "7.5");
    b.click_css("#connector-ok");
    b.wait_until("the delivery column", |b| {
        b.find_all("tr[data-name='SampleIntegrationConnector'] .delivery")
            .first()
            .is_some_and(|e| b.text(e) == "per object, 4 at once, at most 7.5/s")
    });
    let c = d.connector("SampleIntegrationConnector").unwrap();
    assert_eq!(
        (c["ordering"].clone(), c["concurrency"].clone(), c["rate_limit"].clone()),
        (json!("object"), json!(4), json!(7.5))
    );

    // Step 5: the settings — the bus on, incoming off, outgoing logged but not processed.
    b.click_css("[data-tab='settings']");
    for (name, on) in [
        ("enabled", true),
        ("log_incoming", false),
        ("process_incoming", false),
        ("log_outgoing", true),
        ("process_outgoing", false),
    ] {
        set_checkbox(&b, &format!("#s-{name}"), on);
    }
    b.click_css("#save-settings");
    wait_for("the settings", Duration::from_secs(10), || {
        let s = d.get("/api/settings").body;
        (s["process_outgoing"] == false && s["log_incoming"] == false && s["log_outgoing"] == true).then_some(())
    });

    // Step 6: create and modify some users and documents — in the Content tab.
    b.click_css("[data-tab='content']");
    choose_kind(&b, "cms.site", "New site");
    b.click_css("#new-object");
    b.fill("#c-code_name", "CorpSite");
    b.click_css("#content-save");
    b.find("tr.content-row[data-code='CorpSite']");
    choose_kind(&b, "cms.user", "New user");
    b.click_css("#new-object");
    b.fill("#c-code_name", "antonio");
    b.fill("#c-display_name", "Antonio");
    b.click_css("#content-save");
    b.click_css("tr.content-row[data-code='antonio'] .edit");
    b.fill("#c-display_name", "Antonio Banderas");
    add_field(&b, "c", "email", "text", "antonio@example.com");
    // Previewed first: who would get the change and what; nothing written.
    b.click_css("#content-preview");
    b.wait_until("the preview", |b| {
        b.find_all("#preview").first().is_some_and(|e| {
            let text = b.text(e);
            text.contains("Nothing was written") && text.contains("SampleIntegrationConnector — queued (AsyncSnapshot)")
        })
    });
    let antonio = d.get("/api/objects/cms.user?limit=100").body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["code_name"] == "antonio")
        .cloned()
        .unwrap();
    assert_eq!(antonio["display_name"], "Antonio", "the preview changed nothing");
    b.click_css("#content-save");
    b.wait_until("the edited user", |b| {
        b.find_all("tr.content-row[data-code='antonio']")
            .first()
            .is_some_and(|e| b.text(e).contains("Antonio Banderas"))
    });
    let antonio = d.get(&format!("/api/objects/cms.user/{}", antonio["id"])).body;
    assert_eq!(antonio["fields"]["email"], "antonio@example.com", "the field added in the form: {antonio}");
    choose_kind(&b, "documents", "New document");
    b.click_css("#new-document");
    b.fill("#d-alias_path", "/Apple iPad 2");
    b.fill("#d-name", "Apple iPad 2");
    b.click_css("#document-save");
    b.click_css("tr.content-row.document[data-path='/Apple iPad 2'] .edit");
    add_field(&b, "d", "price", "number", "499");
    b.click_css("#document-preview");
    b.wait_until("the document's preview", |b| {
        b.find_all("#preview")
            .first()
            .is_some_and(|e| b.text(e).contains("SampleIntegrationConnector — queued (AsyncSimpleSnapshot)"))
    });
    b.click_css("#document-save");
    b.wait_until("the document's update", |b| {
        b.find_all("tr.content-row.document[data-path='/Apple iPad 2']").len() == 1
            && b.find_all("#modal:not([hidden])").is_empty()
    });
    shot(&b, "content");

    // The tasks wait in the outgoing queue; Synchronize is greyed out.
    b.click_css("[data-tab='outgoing']");
    let expected = [
        "Create User 'Antonio'",
        "Update User 'Antonio Banderas'",
        "Create document Apple iPad 2",
        "Update document Apple iPad 2",
    ];
    b.wait_until("the four tasks", |b| {
        b.find_all("tr.task[data-connector='SampleIntegrationConnector']").len() == expected.len()
    });
    let titles: Vec<String> =
        b.find_all("tr.task[data-connector='SampleIntegrationConnector'] .title").iter().map(|e| b.text(e)).collect();
    assert_eq!(titles, expected, "oldest first");
    assert!(!b.is_enabled(&b.find("tr.task .sync")));

    // Step 7: enable processing of outgoing tasks; All tasks → Synchronize → OK.
    b.click_css("[data-tab='settings']");
    set_checkbox(&b, "#s-process_outgoing", true);
    b.click_css("#save-settings");
    wait_for("processing on", Duration::from_secs(10), || {
        (d.get("/api/settings").body["process_outgoing"] == true).then_some(())
    });
    b.click_css("[data-tab='outgoing']");
    b.wait_until("Synchronize to be enabled", |b| b.find_all("tr.task .sync").first().is_some_and(|e| b.is_enabled(e)));
    assert_eq!(
        d.queue("outgoing", "").len(),
        expected.len(),
        "switching processing on left the queue for the synchronize"
    );
    b.click_css("#bulk-scope option[value='all']");
    b.click_css("#bulk-action option[value='synchronize']");
    b.click_css("#bulk-ok");
    b.wait_until("the bulk action to finish", |b| {
        b.find_all("#bulk-status").first().is_some_and(|e| b.text(e).starts_with("Done"))
    });
    assert!(d.queue("outgoing", "").is_empty());

    // Step 8: the event log shows what the sample did, and who synchronized from where.
    b.click_css("[data-tab='eventlog']");
    b.wait_until("the synchronize row", |b| {
        b.find_all("tr.event").iter().any(|e| b.text(e).contains("SYNCALLTASKSMULTIPLE"))
    });
    let rows: Vec<String> = b.find_all("tr.event").iter().map(|e| b.text(e)).collect();
    let sync = rows.iter().find(|r| r.contains("SYNCALLTASKSMULTIPLE")).unwrap();
    assert!(sync.contains("administrator") && sync.contains("127.0.0.1"), "{sync}");
    for code in ["CREATEOBJECT", "UPDATEOBJECT", "CREATEDOCUMENT", "UPDATEDOCUMENT"] {
        assert!(rows.iter().any(|r| r.contains("SampleIntegrationConnector") && r.contains(code)), "{code}: {rows:#?}");
    }
    assert!(rows.iter().any(|r| r.contains("Settings key") && r.contains("UPDATEOBJ")), "{rows:#?}");
    shot(&b, "eventlog-walk-through");
}

/// A grid of more than one page: page size, Next / Last / Previous, a
/// column sort and the search box, all answered by the server.
#[test]
fn a_grid_sorts_searches_and_pages_in_the_browser() {
    let env = TestEnv::new();
    let d = holding_user_tasks(&env, "A");
    for i in 0..30 {
        d.create("cms.user", json!({"code_name": format!("user{i:02}")}));
    }
    let b = Browser::start();
    b.goto(&format!("http://{}/#outgoing", d.addr));
    b.find("tr.task");
    b.click_css(".page-size option[value='25']");
    let position = |b: &Browser| b.find_all(".pager .position").first().map(|e| b.text(e)).unwrap_or_default();
    b.wait_until("two pages", |b| position(b) == "Page 1 of 2 · 30 tasks");
    assert_eq!(b.find_all("tr.task").len(), 25);
    b.click_css(".pager .next-page");
    b.wait_until("page 2", |b| position(b).starts_with("Page 2 of 2"));
    assert_eq!(b.find_all("tr.task").len(), 5);
    assert!(!b.is_enabled(&b.find(".pager .last-page")));
    b.click_css(".pager .prev-page");
    b.wait_until("page 1", |b| position(b).starts_with("Page 1 of 2"));
    // Newest title first: the title header twice (ascending, then descending).
    b.click_css("button.sort[data-sort='title']");
    b.wait_until("sorted by title", |b| b.find_all("button.sort.active[data-sort='title']").len() == 1);
    b.click_css("button.sort[data-sort='title']");
    b.wait_until("descending", |b| {
        b.find_all("tr.task .title").first().is_some_and(|e| b.text(e) == "Create User 'user29'")
    });
    b.fill("#task-search", "user1");
    b.click_css("#task-search-go");
    b.wait_until("the search", |b| position(b) == "Page 1 of 1 · 10 tasks");
    let titles: Vec<String> = b.find_all("tr.task .title").iter().map(|e| b.text(e)).collect();
    assert_eq!(titles.first().map(String::as_str), Some("Create User 'user19'"), "still sorted: {titles:?}");
    shot(&b, "grid");

    // The bulk choices stay when the view is painted anew (a live refresh
    // between picking them and OK, or leaving the tab and coming back).
    b.click_css("#bulk-scope option[value='all']");
    b.click_css("#bulk-action option[value='delete']");
    b.click_css("[data-tab='scheduled']");
    b.find("tr[data-name='ProcessExternalIntegrationTasks']");
    b.click_css("[data-tab='outgoing']");
    b.wait_until("the search again", |b| position(b) == "Page 1 of 1 · 10 tasks");
    let chosen = |css: &str| b.property(&b.find(css), "value").unwrap_or_default();
    assert_eq!((chosen("#bulk-scope"), chosen("#bulk-action")), ("all".into(), "delete".into()), "the choices kept");

    // All tasks → Delete acts on the tasks the search lists, and asks first
    // naming their count: Cancel deletes nothing, OK deletes those ten.
    let delete_all = |b: &Browser| {
        b.click_css("#bulk-scope option[value='all']");
        b.click_css("#bulk-action option[value='delete']");
        b.click_css("#bulk-ok");
    };
    delete_all(&b);
    let asked = b.answer_dialog(false);
    assert!(asked.starts_with("Delete 10 outgoing tasks listed"), "{asked}");
    assert_eq!(d.queue("outgoing", "").len(), 30, "Cancel deleted nothing");
    delete_all(&b);
    b.answer_dialog(true);
    b.wait_until("the listed tasks to go", |b| {
        b.find_all("#bulk-status").first().is_some_and(|e| b.text(e) == "Done: 10 tasks deleted")
    });
    let left: Vec<String> = d.queue("outgoing", "").iter().map(|t| t["title"].as_str().unwrap().to_owned()).collect();
    assert_eq!(left.len(), 20, "only the listed tasks went: {left:?}");
    assert!(left.iter().all(|t| !t.contains("user1")), "{left:?}");
    // The grid lists again after a bulk action: wait for that before the
    // next clicks (they would hit the rows it replaces).
    b.wait_until("the grid to list again", |b| position(b) == "Page 1 of 1 · 0 tasks");
    b.fill("#task-search", "");
    b.click_css("#task-search-go");
    b.wait_until("the rest listed", |b| position(b) == "Page 1 of 1 · 20 tasks");
    // Selected → Delete asks too, naming how many rows are ticked.
    let picks = b.find_all("input.pick");
    b.click(&picks[0]);
    b.click(&picks[1]);
    b.click_css("#bulk-scope option[value='selected']");
    b.click_css("#bulk-action option[value='delete']");
    b.click_css("#bulk-ok");
    let asked = b.answer_dialog(true);
    assert!(asked.starts_with("Delete 2 outgoing tasks selected"), "{asked}");
    b.wait_until("the selected rows to go", |b| position(b) == "Page 1 of 1 · 18 tasks");
    // What is typed in the search box and not searched for yet survives a
    // repaint of the view (a live refresh, the grid listing again after a
    // bulk action — a test's next clicks once raced that —, another tab
    // and back).
    b.fill("#task-search", "user2");
    b.click_css("[data-tab='scheduled']");
    b.find("tr[data-name='ProcessExternalIntegrationTasks']");
    b.click_css("[data-tab='outgoing']");
    b.wait_until("the grid again", |b| position(b) == "Page 1 of 1 · 18 tasks");
    assert_eq!(b.property(&b.find("#task-search"), "value").as_deref(), Some("user2"), "the typed search is kept");

    // Tabs follow the URL: a click is a history entry, Back returns, a
    // changed hash switches.
    b.click_css("[data-tab='eventlog']");
    b.find("#log-source");
    b.back();
    b.wait_until("Back to the outgoing tab", |b| {
        b.find_all("[data-tab='outgoing'][aria-selected='true']").len() == 1 && !b.find_all("tr.task").is_empty()
    });
    b.goto(&format!("http://{}/#settings", d.addr));
    b.find("#save-settings");
}

#[test]
fn every_tab_and_popup_has_no_serious_or_critical_accessibility_violation() {
    let env = TestEnv::new();
    env.install("sample_connector", "sample_connector");
    env.scripted(
        "Mirror",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
    );
    // Held in the queue, so the grids have rows.
    env.set_setting("process_outgoing", false);
    let d = env.start();
    d.create(
        "cms.user",
        json!({"code_name": "antonio", "display_name": "Antonio", "fields": {"email": "a@example.com", "age": 40}}),
    );
    let b = Browser::start();
    let base = format!("http://{}/", d.addr);
    let mut found = Vec::new();
    let mut check = |b: &Browser, place: &str| {
        found.extend(b.accessibility_violations().into_iter().map(|v| format!("{place}: {v}")));
    };
    for tab in ["overview", "connectors", "outgoing", "incoming", "settings", "eventlog", "scheduled", "content"] {
        b.goto(&format!("{base}#{tab}"));
        b.wait_until(&format!("the {tab} tab"), |b| {
            b.find_all(&format!("#tabs [data-tab='{tab}'][aria-selected='true']")).len() == 1
                && !b.find_all("#view table, #view form, #view .cards").is_empty()
        });
        check(&b, &format!("#{tab}"));
    }
    // The popups: a connector's form, a task's data, a content form.
    for (tab, button, place) in [
        ("connectors", "tr[data-name='Mirror'] .edit", "the connector form"),
        ("outgoing", "tr .view", "a task's data"),
        ("content", "#new-object", "the content form"),
        ("content", "tr.content-row[data-code='antonio'] .edit", "an object's form with its fields"),
        ("scheduled", "tr[data-name='ProcessExternalIntegrationTasks'] .edit", "the schedule form"),
    ] {
        b.goto(&format!("{base}#{tab}"));
        b.click_css(button);
        b.find("#modal:not([hidden]) #modal-body > *");
        check(&b, place);
        // Escape closes it, and the focus goes back to what opened it.
        b.script("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}));");
        b.wait_until(&format!("{place} to close"), |b| b.find_all("#modal[hidden]").len() == 1);
        let back = b.script(&format!("return document.activeElement.matches({:?});", button));
        assert_eq!(back, json!(true), "the focus returns to `{button}` after {place}");
    }
    assert!(found.is_empty(), "axe-core found serious or critical violations:\n{}", found.join("\n"));
}

#[test]
fn a_reload_or_a_link_keeps_the_filtered_sorted_page_and_back_closes_the_popup() {
    let env = TestEnv::new();
    for name in ["Crm", "Erp"] {
        env.scripted(
            name,
            json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}),
        );
    }
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let users: Vec<_> = (0..60)
        .map(|i| json!({"op": "create_object", "object_type": "cms.user", "object": {"code_name": format!("u{i:02}")}}))
        .collect();
    assert_eq!(d.post("/api/batch", &json!({ "changes": users })).status, 200);
    let b = Browser::start();
    let base = format!("http://{}/", d.addr);
    b.goto(&format!("{base}#connectors"));
    b.find("tr[data-name='Crm']");
    b.click_css("#tabs [data-tab='outgoing']");

    // Crm's tasks, searched, newest title first, 25 a page, the second page.
    b.click_css("#connector-filter option[value='Crm']");
    b.wait_until("the filter", |b| b.find_all(".position").first().is_some_and(|p| b.text(p).contains("60 tasks")));
    b.fill("#task-search", "User");
    b.click_css("#task-search-go");
    b.wait_until("the search in the URL", |b| b.url().contains("search=User"));
    b.click_css("button.sort[data-sort='title']");
    b.wait_until("ascending", |b| b.find_all("th[aria-sort='ascending'] button[data-sort='title']").len() == 1);
    b.click_css("button.sort[data-sort='title']");
    b.wait_until("descending", |b| b.find_all("th[aria-sort='descending'] button[data-sort='title']").len() == 1);
    b.click_css(".page-size option[value='25']");
    b.wait_until("25 a page", |b| b.find_all(".position").first().is_some_and(|p| b.text(p).contains("Page 1 of 3")));
    b.click_css(".next-page");
    b.wait_until("the second page", |b| {
        b.find_all(".position").first().is_some_and(|p| b.text(p).contains("Page 2 of 3"))
    });
    let url = b.url();
    for part in ["#outgoing?", "connector=Crm", "search=User", "sort=title", "order=desc", "page=2", "limit=25"] {
        assert!(url.contains(part), "{part} in {url}");
    }
    let first_title = || -> String { b.text(&b.find("#view tbody tr td:nth-child(3)")) };
    let shown = first_title();
    assert!(shown.contains("u34"), "the second page of 60 titles, newest first, starts at u34: {shown}");

    // Reloaded, or opened from the link: the same view.
    for how in ["reload", "link"] {
        if how == "reload" {
            b.refresh();
        } else {
            b.goto(&format!("{base}#connectors"));
            b.find("tr[data-name='Crm']");
            b.goto(&url);
        }
        b.wait_until(&format!("the view after a {how}"), |b| {
            b.find_all(".position").first().is_some_and(|p| b.text(p).contains("Page 2 of 3 · 60 tasks"))
        });
        assert_eq!(first_title(), shown, "after a {how}");
        assert_eq!(b.property(&b.find("#connector-filter"), "value").as_deref(), Some("Crm"));
        assert_eq!(b.property(&b.find("#task-search"), "value").as_deref(), Some("User"));
        let sorted = b.find("th[aria-sort='descending']");
        assert!(b.text(&sorted).contains("Task title"), "the sorted column is announced");
    }

    // The open task is in the URL too; Back closes it with its view.
    b.click_css("#tabs [data-tab='connectors']");
    b.find("tr[data-name='Crm']");
    b.click_css("#tabs [data-tab='outgoing']");
    b.wait_until("the view kept in memory", |b| {
        b.find_all(".position").first().is_some_and(|p| b.text(p).contains("Page 2 of 3"))
    });
    b.click_css("#view tbody tr .view");
    b.find("#modal:not([hidden]) #modal-body > *");
    assert!(b.url().contains("task="), "{}", b.url());
    let with_task = b.url();
    b.refresh();
    b.find("#modal:not([hidden]) #modal-body > *");
    assert_eq!(b.url(), with_task, "reopened after a reload");
    b.back();
    b.wait_until("Back to the connectors, the popup gone", |b| {
        b.find_all("#modal[hidden]").len() == 1
            && b.find_all("#tabs [data-tab='connectors'][aria-selected='true']").len() == 1
    });

    // The tab list from the keyboard.
    b.script("document.querySelector(\"#tabs [data-tab='connectors']\").focus();");
    b.script("document.activeElement.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));");
    b.wait_until("the next tab", |b| b.find_all("#tabs [data-tab='outgoing'][aria-selected='true']").len() == 1);
    b.script("document.activeElement.dispatchEvent(new KeyboardEvent('keydown', {key: 'End', bubbles: true}));");
    b.wait_until("the last tab", |b| b.find_all("#tabs [data-tab='content'][aria-selected='true']").len() == 1);
    let focused = b.script("return document.activeElement.dataset.tab;");
    assert_eq!(focused, json!("content"));
}

#[test]
fn a_300_character_name_makes_no_page_wider_than_a_1366_pixel_window() {
    let env = TestEnv::new();
    let d = holding_user_tasks(&env, "Mirror");
    let long = "W".repeat(300);
    let r = d.put("/api/connectors/Mirror", &json!({"display_name": long}));
    assert_eq!(r.status, 200, "{}", r.text);
    let code = "u".repeat(200);
    let r = d.post("/api/objects/cms.user", &json!({"code_name": code, "display_name": long}));
    assert_eq!(r.status, 201, "{}", r.text);
    let b = Browser::start();
    b.set_window(1366, 900);
    let base = format!("http://{}/", d.addr);
    let mut wide = Vec::new();
    for tab in ["connectors", "outgoing", "eventlog", "content"] {
        b.goto(&format!("{base}#{tab}"));
        b.wait_until(&format!("the {tab} tab"), |b| !b.find_all("#view table").is_empty());
        let (page, window) =
            (b.script("return document.documentElement.scrollWidth;"), b.script("return window.innerWidth;"));
        if page.as_u64() > window.as_u64() {
            wide.push(format!("#{tab}: {page} px in a {window} px window"));
        }
    }
    assert!(wide.is_empty(), "{wide:?}");
}

#[test]
fn a_synchronization_log_shows_repeated_failures_as_one_line_with_their_count_and_time_span() {
    let env = TestEnv::new();
    env.scripted(
        "Failing",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.role"}]}),
    );
    let d = env.start();
    let task = d
        .create("cms.role", json!({"code_name": "editors", "fields": {"outcome": "Error", "message": "ERP says no"}}))
        ["task_id"]
        .as_i64()
        .unwrap();
    for _ in 0..3 {
        let r = d.post(&format!("/api/tasks/{task}/synchronize?connector=Failing"), &json!({}));
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let attempts = wait_for("four failed attempts", Duration::from_secs(15), || {
        let t = d.get(&format!("/api/tasks/{task}")).body;
        let n = t["relations"][0]["log"].as_array().map_or(0, Vec::len);
        (n >= 4).then_some(n)
    });
    let b = Browser::start();
    b.goto(&format!("http://{}/#outgoing?task={task}", d.addr));
    b.find("#modal:not([hidden]) .synclog");
    let rows = b.find_all("#modal-body .synclog tr.log-entry");
    assert_eq!(rows.len(), 1, "identical failures are one line");
    let count = b.text(&b.find("#modal-body .synclog tr.log-entry .log-attempts"));
    assert!(count.parse::<usize>().unwrap() >= attempts, "{count} attempts shown, {attempts} logged");
    assert_eq!(b.text(&b.find("#modal-body .synclog tr.log-entry .log-error")), "ERP says no");
    let span = b.text(&b.find("#modal-body .synclog tr.log-entry td"));
    assert!(span.contains(" – "), "from the first to the last attempt: {span}");
}

#[test]
fn a_schedule_is_changed_in_its_form_and_an_error_stays_until_dismissed() {
    let env = TestEnv::new();
    env.scripted("Gone", json!({"subscriptions": []}));
    let d = env.start();
    let b = Browser::start();
    let base = format!("http://{}/", d.addr);
    b.goto(&format!("{base}#scheduled"));
    b.click_css("tr[data-name='ProcessExternalIntegrationTasks'] .edit");
    b.fill("#t-interval_seconds", "0");
    b.click_css("#schedule-save");
    b.wait_until("the refusal next to the field", |b| {
        b.find_all("#schedule-form .error").first().is_some_and(|e| b.text(e).contains("at least 1"))
    });
    b.fill("#t-interval_seconds", "3600");
    b.click_css("#schedule-save");
    b.wait_until("the new interval", |b| {
        b.find_all("tr[data-name='ProcessExternalIntegrationTasks'] .interval")
            .first()
            .is_some_and(|e| b.text(e) == "3600 s")
    });
    assert_eq!(d.get("/api/scheduled-tasks/ProcessExternalIntegrationTasks").body["interval_seconds"], json!(3600));

    // An action that fails (the connector was deleted behind the page's
    // back): the error is an alert with a dismiss button, not a passing toast.
    // The page stops listening first (as when it is hidden), so the delete
    // is not shown before the click: the click meets the deleted connector.
    b.goto(&format!("{base}#connectors"));
    let toggle = b.find("tr[data-name='Gone'] .toggle");
    b.script("window.dispatchEvent(new Event('pagehide'));");
    b.wait_until("no refresh in flight", |b| b.script("return refreshing;") == json!(false));
    assert_eq!(d.delete("/api/connectors/Gone").status, 204);
    b.click(&toggle);
    b.wait_until("the error", |b| b.find_all("#toast.show.error[role='alert'] .dismiss").len() == 1);
    assert!(b.text(&b.find("#toast")).contains("Gone"), "{}", b.text(&b.find("#toast")));
    b.click_css("#toast .dismiss");
    b.wait_until("the error dismissed", |b| b.find_all("#toast.show").is_empty());
}

#[test]
fn a_user_is_added_to_a_site_picked_from_a_list() {
    let env = TestEnv::new();
    let d = env.start();
    d.create("cms.site", json!({"code_name": "CorpSite", "display_name": "Corporate"}));
    d.create("cms.site", json!({"code_name": "Shop"}));
    let user = d.create("cms.user", json!({"code_name": "antonio"}))["object"]["id"].as_i64().unwrap();
    let b = Browser::start();
    b.goto(&format!("http://{}/#content", d.addr));
    b.click_css("tr.content-row[data-code='antonio'] .add-to-site");
    // The form opens once the sites have been read.
    b.wait_until("the sites listed", |b| b.find_all("#site-pick option").len() == 2);
    let options: Vec<String> = b.find_all("#site-pick option").iter().map(|o| b.text(o)).collect();
    assert_eq!(options, ["Corporate (CorpSite)", "Shop"], "the sites there are, named");
    b.click_css("#site-pick option[value='Shop']");
    b.click_css("#site-ok");
    wait_for("the user on the site", Duration::from_secs(10), || {
        let bindings = d.get("/api/objects/cms.usersite?limit=100").body;
        bindings["items"].as_array().unwrap().iter().any(|b| b["fields"]["UserID"] == json!(user)).then_some(())
    });
    b.wait_until("the popup closed", |b| b.find_all("#modal[hidden]").len() == 1);
}

#[test]
fn deleting_a_connector_with_queued_tasks_asks_in_plain_words_with_the_count() {
    let env = TestEnv::new();
    let d = holding_user_tasks(&env, "Mirror");
    d.create("cms.user", json!({"code_name": "ann"}));
    d.create("cms.user", json!({"code_name": "bob"}));
    let b = Browser::start();
    b.goto(&format!("http://{}/#connectors", d.addr));
    b.click_css("tr[data-name='Mirror'] .delete");
    let asked = b.answer_dialog(false);
    assert_eq!(asked, "Connector Mirror has 2 queued tasks. Delete it and discard them? They will not be processed.");
    assert!(d.connector("Mirror").is_some(), "Cancel deleted nothing");
    b.click_css("tr[data-name='Mirror'] .delete");
    b.answer_dialog(true);
    wait_for("the connector to go", Duration::from_secs(10), || d.connector("Mirror").is_none().then_some(()));
    assert!(d.queue("outgoing", "").is_empty(), "its tasks went with it");
}

#[test]
fn the_content_tab_pages_through_every_object() {
    let env = TestEnv::new();
    let d = env.start();
    let users: Vec<_> = (0..230)
        .map(|i| json!({"op": "create_object", "object_type": "cms.user", "object": {"code_name": format!("u{i:03}")}}))
        .collect();
    assert_eq!(d.post("/api/batch", &json!({ "changes": users })).status, 200);
    let b = Browser::start();
    b.goto(&format!("http://{}/#content", d.addr));
    let position = |b: &Browser| b.find_all(".position").first().map(|p| b.text(p)).unwrap_or_default();
    b.wait_until("the first page", |b| position(b) == "Rows 1–100");
    assert_eq!(b.find_all("tr.content-row").len(), 100);
    b.click_css(".next-page");
    b.wait_until("the second page", |b| position(b) == "Rows 101–200");
    b.click_css(".next-page");
    b.wait_until("the last page", |b| position(b) == "Rows 201–230");
    assert_eq!(b.find_all("tr.content-row").len(), 30, "nothing stops at 200 rows");
    assert!(b.find_all("tr.content-row[data-code='u229']").len() == 1);
    assert!(!b.is_enabled(&b.find(".next-page")));
    b.click_css(".prev-page");
    b.wait_until("back to the second page", |b| position(b) == "Rows 101–200");
    b.click_css(".first-page");
    b.wait_until("back to the first page", |b| position(b) == "Rows 1–100");
}

#[test]
fn a_change_appears_without_a_click_and_a_restart_is_noticed_and_recovered_from() {
    let env = TestEnv::new();
    let d = holding_user_tasks(&env, "Mirror");
    let b = Browser::start();
    let base = format!("http://{}/", d.addr);
    b.goto(&format!("{base}#outgoing"));
    b.wait_until("the empty queue", |b| b.find_all(".position").first().is_some_and(|p| b.text(p).contains("0 tasks")));

    // A change made through the API shows up by itself.
    d.create("cms.user", json!({"code_name": "ann"}));
    b.wait_until("the new task, without a click", |b| {
        b.find_all("#view tbody tr.task").iter().any(|r| b.text(r).contains("ann"))
    });

    // A setting changed by someone else shows in the open form (its
    // checkbox state is not markup, and still counts as a change).
    b.click_css("#tabs [data-tab='settings']");
    b.wait_until("processing shown off", |b| {
        b.find_all("#s-process_outgoing").first().is_some_and(|c| !b.is_selected(c))
    });
    assert_eq!(d.put("/api/settings", &json!({"process_outgoing": true})).status, 200);
    b.wait_until("processing shown on, without a click", |b| {
        b.find_all("#s-process_outgoing").first().is_some_and(|c| b.is_selected(c))
    });
    // Off again, so what follows stays listed.
    assert_eq!(d.put("/api/settings", &json!({"process_outgoing": false})).status, 200);
    b.click_css("#tabs [data-tab='outgoing']");

    // The daemon stops: a banner says so. Started again on the same
    // address, the page reconnects by itself and shows what happened.
    let addr = d.addr.clone();
    d.stop();
    b.wait_until("the connection-lost banner", |b| b.find_all("#connection-lost:not([hidden])").len() == 1);
    let config = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(&env.config_path, config.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\"")))
        .unwrap();
    let d = env.start();
    assert_eq!(d.addr, addr);
    d.create("cms.user", json!({"code_name": "bob"}));
    b.wait_until("the banner gone and the view refreshed", |b| {
        b.find_all("#connection-lost[hidden]").len() == 1
            && b.find_all("#view tbody tr.task").iter().any(|r| b.text(r).contains("bob"))
    });
}

/// The Overview opens first: a card per connector with its state and
/// figures, updated without a click when a change is posted through the
/// API; its sparkline and the connector's page (a day of history, a bar a
/// minute) count what was delivered; both pass axe-core; a reload keeps
/// the connector's page.
#[test]
fn the_overview_opens_first_updates_by_itself_and_leads_to_a_connectors_day() {
    let env = TestEnv::new();
    env.scripted(
        "Shop",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.role"}]}),
    );
    let d = holding_user_tasks(&env, "Mirror");
    let b = Browser::start();
    let base = format!("http://{}/", d.addr);
    b.goto(&base);
    b.wait_until("the Overview, first", |b| {
        b.url().ends_with("#overview")
            && b.find_all("#tabs [data-tab='overview'][aria-selected='true']").len() == 1
            && b.find_all(".card[data-name='Mirror'] .waiting")
                .first()
                .is_some_and(|w| b.text(w).contains("0 outgoing"))
    });
    assert_eq!(b.text(&b.find(".card[data-name='Mirror'] p.state")), "Running");

    // A change posted through the API shows on the card by itself.
    let posted = std::time::Instant::now();
    d.create("cms.user", json!({"code_name": "ann"}));
    b.wait_until("the waiting task on the card, without a click", |b| {
        b.find_all(".card[data-name='Mirror'] .waiting").first().is_some_and(|w| b.text(w).contains("1 outgoing"))
    });
    eprintln!("the overview showed the new task {} ms after it was posted", posted.elapsed().as_millis());
    let mut found: Vec<String> = b.accessibility_violations().into_iter().map(|v| format!("#overview: {v}")).collect();

    // Delivered: the cards' sparklines count it (the history is added to
    // every few seconds), still without a click. Processing switched on
    // starts with the next task (the specification's trigger).
    assert_eq!(d.put("/api/settings", &json!({"process_outgoing": true})).status, 200);
    d.create("cms.user", json!({"code_name": "bob"}));
    for i in 0..3 {
        d.create("cms.role", json!({"code_name": format!("r{i}")}));
    }
    b.wait_until("the deliveries in the sparklines", |b| {
        let total = |name: &str| {
            b.find_all(&format!(".card[data-name='{name}'] .spark-total"))
                .first()
                .map(|t| b.text(t))
                .unwrap_or_default()
        };
        total("Mirror") == "2 delivered in 15 min" && total("Shop") == "3 delivered in 15 min"
    });
    // A task the shop refuses: the card says so, in red, with the error.
    d.create("cms.role", json!({"code_name": "blocked", "fields": {"outcome": "Error", "message": "ERP says no"}}));
    b.wait_until("the failure on Shop's card", |b| {
        b.find_all(".card.bad[data-name='Shop'] .failed-count").first().is_some_and(|f| b.text(f) == "1")
            && b.find_all(".card[data-name='Shop'] .last-error").first().is_some_and(|e| b.text(e) == "ERP says no")
    });
    shot(&b, "overview");

    // The connector's page: a day of history, and links to its tasks.
    b.click_css(".card[data-name='Shop'] h2 a");
    b.wait_until("Shop's page with its deliveries", |b| {
        b.url().ends_with("#connector?name=Shop")
            && b.find_all(".summary.delivered").first().is_some_and(|s| b.text(s) == "3 tasks")
            // The refused task is tried again after a pause: one or more.
            && b.find_all(".summary.failed").first().is_some_and(|s| {
                b.text(s).split(' ').next().and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n >= 1)
            })
    });
    assert_eq!(b.find_all("figure.chart svg.bars").len(), 3, "delivered, failed and waiting");
    found.extend(b.accessibility_violations().into_iter().map(|v| format!("#connector: {v}")));
    shot(&b, "connector");
    b.refresh();
    b.wait_until("the same page after a reload", |b| {
        b.find_all("#connector-title").first().is_some_and(|t| b.text(t).contains("Shop"))
    });
    b.click_css("#view a[href='#outgoing?connector=Shop']");
    b.wait_until("its outgoing tasks", |b| b.url().ends_with("#outgoing?connector=Shop"));
    assert!(found.is_empty(), "axe-core found serious or critical violations:\n{}", found.join("\n"));
}

/// A content form is made from the object-type registry: a user role's
/// user and role are picked from lists of the objects there are, a value
/// that cannot be read is said next to its field (and nothing is saved),
/// and what is saved has the kinds the form says.
#[test]
fn a_content_form_picks_foreign_keys_from_lists_and_says_what_is_wrong_next_to_the_field() {
    let env = TestEnv::new();
    let d = env.start();
    d.create("cms.user", json!({"code_name": "ann", "display_name": "Ann"}));
    d.create("cms.role", json!({"code_name": "editors", "display_name": "Editors"}));
    let id_of = |object_type: &str, code: &str| -> i64 {
        let list = d.get(&format!("/api/objects/{object_type}?limit=100")).body;
        list["items"].as_array().unwrap().iter().find(|o| o["code_name"] == code).unwrap()["id"].as_i64().unwrap()
    };
    let (ann, editors) = (id_of("cms.user", "ann"), id_of("cms.role", "editors"));
    let b = Browser::start();
    b.goto(&format!("http://{}/#content", d.addr));
    choose_kind(&b, "cms.userrole", "New user role");
    b.click_css("#new-object");
    b.click_css(&format!("#c-fk-UserID option[value='{ann}']"));
    b.click_css(&format!("#c-fk-RoleID option[value='{editors}']"));
    assert!(b.text(&b.find("label[for='c-fk-UserID']")).contains("User"), "the key says what it points to");

    // A number that is not one: said next to the field, nothing saved.
    add_field(&b, "c", "weight", "number", "heavy");
    b.click_css("#content-save");
    b.wait_until("the message next to the field", |b| {
        b.find_all("#c-fields .field-row:last-of-type .field-error")
            .first()
            .is_some_and(|e| b.text(e).contains("“heavy” is not a number"))
    });
    assert_eq!(
        b.script("return document.activeElement.getAttribute('aria-invalid');"),
        json!("true"),
        "the focus goes to the field that is wrong"
    );
    let count =
        |d: &bus_tests::Daemon| d.get("/api/objects/cms.userrole?limit=100").body["items"].as_array().unwrap().len();
    assert_eq!(count(&d), 0, "nothing was saved");

    b.fill("#c-fields .field-row:last-of-type .field-value", "2.5");
    b.click_css("#content-save");
    b.wait_until("the form to close", |b| b.find_all("#modal[hidden]").len() == 1);
    let saved = d.get("/api/objects/cms.userrole?limit=100").body["items"][0].clone();
    assert_eq!(saved["fields"]["UserID"], ann, "{saved}");
    assert_eq!(saved["fields"]["RoleID"], editors, "{saved}");
    assert_eq!(saved["fields"]["weight"], 2.5, "a number, as the form said: {saved}");

    // A field removed in the form is removed from the object.
    b.click_css("tr.content-row .edit");
    b.click_css("#c-fields .field-row:not(.fk) .remove-field");
    b.click_css("#content-save");
    b.wait_until("the form to close again", |b| b.find_all("#modal[hidden]").len() == 1);
    let saved = d.get(&format!("/api/objects/cms.userrole/{}", saved["id"])).body;
    assert!(saved["fields"].get("weight").is_none(), "the removed field is gone: {saved}");
    assert_eq!(saved["fields"]["UserID"], ann, "{saved}");
}
