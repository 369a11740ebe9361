//! The tools for connector authors, as an author uses them: the daemon and
//! its command line, real cdylibs loaded through the real loader.

use bus_tests::artifacts::artifacts;
use bus_tests::{Daemon, TestEnv};
use serde_json::{json, Value};

/// A scripted connector `Erp` taking every user change, with processing
/// off so its tasks stay queued; three users, the second one's task
/// answered `Error` by the connector.
fn three_queued_tasks(env: &TestEnv) -> (Daemon, Vec<i64>) {
    env.scripted("Erp", json!({"subscriptions": [{"scope": "objects", "process_type": "AsyncSimple"}]}));
    env.set_setting("process_outgoing", false);
    let d = env.start();
    let tasks = [
        json!({"code_name": "ann"}),
        json!({"code_name": "bob", "fields": {"outcome": "Error", "message": "no such customer in the ERP"}}),
        json!({"code_name": "cy", "fields": {"outcome": "ErrorAndSkip", "message": "bad e-mail"}}),
    ]
    .into_iter()
    .map(|user| d.create("cms.user", user)["task_id"].as_i64().expect("a task was logged"))
    .collect();
    (d, tasks)
}

/// What a test must find untouched: queued relations, tasks, event-log rows.
fn footprint(env: &TestEnv) -> (i64, i64, i64) {
    let count = |table: &str| -> i64 {
        env.sql().query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
    };
    (count("Integration_Synchronization"), count("Integration_Task"), count("CMS_EventLog"))
}

/// `bus-daemon connector replay` of `file` with the testkit library's `class`.
fn replay(env: &TestEnv, class: &str, config: &str, file: &std::path::Path) -> std::process::Output {
    let library = artifacts().library("testkit_connector");
    env.cli(&[
        "connector",
        "replay",
        "--library",
        library.to_str().unwrap(),
        "--class",
        class,
        "--config-text",
        config,
        file.to_str().unwrap(),
    ])
}

fn lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn export_then_replay_reports_each_tasks_outcome_and_writes_nothing() {
    let env = TestEnv::new();
    let (d, tasks) = three_queued_tasks(&env);
    let file = env.dir.path().join("erp-tasks.jsonl");

    let out = env.cli(&["task", "export", "--connector", "Erp", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("exported 3 outgoing task(s)"), "{}", stderr(&out));
    let exported: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let ids: Vec<i64> = exported.iter().map(|t| t["task_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, tasks, "every queued task, oldest first");
    for task in &exported {
        assert_eq!(task["connector"], "Erp");
        assert_eq!(task["direction"], "outgoing");
        // Exactly what the connector receives (the API's own view of it).
        let sent = d.get(&format!("/api/tasks/{}/payload?connector=Erp", task["task_id"]));
        assert_eq!(sent.status, 200, "{}", sent.text);
        assert_eq!(task["document"], sent.body);
    }
    // Stopped, so nothing but the replay could write.
    d.stop();
    let before = footprint(&env);

    // Replayed against a build outside the connectors folder, in a process
    // of its own: one line per task, the exit status says a task failed.
    let config = r#"{"name": "Erp", "subscriptions": [{"scope": "objects", "process_type": "AsyncSimple"}]}"#;
    let replay = |file: &std::path::Path| replay(&env, "ScriptedConnector", config, file);
    let out = replay(&file);
    assert!(!out.status.success(), "a task that was not Ok fails the replay");
    assert_eq!(
        lines(&out),
        [
            format!("{}\tOk\t", tasks[0]),
            format!("{}\tError\tno such customer in the ERP", tasks[1]),
            format!("{}\tErrorAndSkip\tbad e-mail", tasks[2]),
        ]
    );
    assert!(stderr(&out).contains("2 of 3 task(s) were not Ok"), "{}", stderr(&out));
    // What the connector wrote to the event log is shown, not stored.
    assert!(stderr(&out).contains("event Information"), "{}", stderr(&out));
    assert_eq!(footprint(&env), before, "the replay wrote nothing: the queue is as it was");

    // Only the good task: the replay succeeds.
    let good = env.dir.path().join("good.jsonl");
    let first = std::fs::read_to_string(&file).unwrap().lines().next().unwrap().to_owned();
    std::fs::write(&good, format!("{first}\n")).unwrap();
    let out = replay(&good);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&out), [format!("{}\tOk\t", tasks[0])]);
}

#[test]
fn export_and_replay_refuse_bad_input_clearly_and_leave_no_half_file() {
    let env = TestEnv::new();
    let (_d, _tasks) = three_queued_tasks(&env);
    let out = env.cli(&["task", "export", "--connector", "Nobody"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Nobody"), "the unknown connector is named: {}", stderr(&out));

    // Into a folder that does not exist: an error, and no file anywhere.
    let missing = env.dir.path().join("no-such-folder").join("x.jsonl");
    let out = env.cli(&["task", "export", "--connector", "Erp", "--out", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no-such-folder"), "{}", stderr(&out));
    assert!(!missing.exists());

    let replay_text = |contents: &str| {
        let file = env.dir.path().join("bad.jsonl");
        std::fs::write(&file, contents).unwrap();
        replay(&env, "ScriptedConnector", "", &file)
    };
    let out = env.cli(&["task", "export", "--connector", "Erp"]);
    let good = String::from_utf8_lossy(&out.stdout).lines().next().unwrap().to_owned();
    for (contents, says) in [
        (format!("{good}\nnot json\n"), "line 2"),
        (good.replace("\"outgoing\"", "\"incoming\""), "only outgoing tasks can be replayed"),
        (good.replace("\"task_id\"", "\"task\""), "line 1"),
    ] {
        let out = replay_text(&contents);
        assert!(!out.status.success(), "{contents}");
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
        assert!(lines(&out).is_empty(), "nothing was called: {:?}", lines(&out));
    }
    let file = env.dir.path().join("good.jsonl");
    std::fs::write(&file, format!("{good}\n")).unwrap();
    let out = replay(&env, "NoSuchClass", "", &file);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("NoSuchClass"), "{}", stderr(&out));
}

/// Runs `cargo <args>` offline in `dir`, with the generated crates' own
/// target folder beside the workspace's (kept between runs).
fn cargo(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let target = artifacts().dir.parent().expect("the profile folder is in the target folder").join("scaffold");
    std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--offline")
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(dir)
        .output()
        .expect("cargo runs")
}

#[test]
fn a_new_connector_builds_passes_its_test_and_delivers_once_registered() {
    let env = TestEnv::new();
    // Made in a folder of its own, with no configuration: nothing but the
    // crate is written.
    let work = env.dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let new = |name: &str| {
        std::process::Command::new(&artifacts().daemon)
            .args(["connector", "new", name, "--dir"])
            .arg(&work)
            .current_dir(&work)
            .output()
            .unwrap()
    };
    for (bad, says) in
        [("acme", "capital letter"), ("Acme-Erp", "letters and digits"), ("", "give the connector a name")]
    {
        let out = new(bad);
        assert!(!out.status.success(), "{bad}");
        assert!(stderr(&out).contains(says), "{bad}: {}", stderr(&out));
    }
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0, "a refused name writes nothing");
    let out = new("AcmeErp");
    assert!(out.status.success(), "{}", stderr(&out));
    let made: Vec<String> =
        std::fs::read_dir(&work).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(made, ["acme_erp"], "the crate and nothing else (no database)");
    let again = new("AcmeErp");
    assert!(!again.status.success() && stderr(&again).contains("exists already"), "{}", stderr(&again));

    // It builds offline as it is, and its own test passes.
    let crate_dir = work.join("acme_erp");
    let built = cargo(&crate_dir, &["build", "--quiet"]);
    assert!(built.status.success(), "{}", stderr(&built));
    let tested = cargo(&crate_dir, &["test", "--quiet"]);
    assert!(tested.status.success(), "{}", stderr(&tested));
    assert!(
        String::from_utf8_lossy(&tested.stdout).contains("2 passed"),
        "{}",
        String::from_utf8_lossy(&tested.stdout)
    );

    // Registered as its README says, it delivers to the event log.
    let file = format!("{}acme_erp_connector{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let library = artifacts().dir.parent().unwrap().join("scaffold").join("debug").join(&file);
    std::fs::copy(&library, env.library_path("acme_erp_connector")).unwrap();
    let add = env.cli(&[
        "connector",
        "add",
        "--name",
        "AcmeErp",
        "--assembly",
        "acme_erp_connector",
        "--class",
        "AcmeErpConnector",
        "--enabled",
    ]);
    assert!(add.status.success(), "{}", stderr(&add));
    let d = env.start();
    assert_eq!(d.connector("AcmeErp").unwrap()["loaded"], true, "{}", d.connector("AcmeErp").unwrap());
    d.create("cms.user", json!({"code_name": "ann"}));
    bus_tests::wait_for("the new connector's event-log entry", std::time::Duration::from_secs(15), || {
        let events = d.events("&source=AcmeErp&code=DELIVERED");
        events.first().map(|e| e["description"].as_str().unwrap_or_default().to_owned())
    });
    let events = d.events("&source=AcmeErp&code=DELIVERED");
    assert_eq!(events[0]["description"], "CreateObject cms.user ann");
}

#[test]
fn a_dry_run_shows_what_each_connector_would_get_and_writes_nothing() {
    let env = TestEnv::new();
    env.scripted("Queued", json!({"subscriptions": [{"scope": "objects", "process_type": "AsyncSimpleSnapshot"}]}));
    env.scripted(
        "Synced",
        json!({"subscriptions": [{"scope": "objects", "object_type": "cms.user", "process_type": "SyncSnapshot"}]}),
    );
    env.scripted(
        "Roles",
        json!({"subscriptions": [{"scope": "objects", "object_type": "cms.role", "process_type": "AsyncSimple"}]}),
    );
    let d = env.start();
    d.create("cms.role", json!({"code_name": "editors"}));
    // Delivered and reported, so nothing moves but what the test does.
    bus_tests::wait_for("the role to be delivered", std::time::Duration::from_secs(15), || {
        (d.reports("Queued").len() == 1 && d.reports("Roles").len() == 1 && footprint(&env).0 == 0).then_some(())
    });
    let before = footprint(&env);
    let objects = || -> i64 { env.sql().query_row("SELECT COUNT(*) FROM CMS_Object", [], |r| r.get(0)).unwrap() };
    let objects_before = objects();

    let change = json!({"op": "create_object", "object_type": "cms.user", "object": {"code_name": "ann", "fields": {"email": "ann@example.com"}}});
    let r = d.post("/api/dry-run", &change);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["written"], false);
    assert!(r.body["note"].as_str().unwrap().starts_with("Nothing was written"), "{}", r.text);
    assert_eq!(r.body["task_type"], "CreateObject");
    assert_eq!(r.body["object"]["code_name"], "ann");
    let deliveries = r.body["deliveries"].as_array().unwrap();
    let names: Vec<&str> = deliveries.iter().map(|d| d["connector"].as_str().unwrap()).collect();
    assert_eq!(names, ["Queued", "Synced"], "the user reaches these two, not Roles: {}", r.text);
    assert_eq!(deliveries[0]["how"], "queued");
    assert_eq!(deliveries[0]["process_type"], "AsyncSimpleSnapshot");
    assert_eq!(deliveries[1]["how"], "synchronous");
    assert_eq!(deliveries[1]["process_type"], "SyncSnapshot");
    assert_eq!(deliveries[1]["document"]["object"]["code_name"], "ann", "{}", r.text);
    assert_eq!(footprint(&env), before, "no task, relation or event-log row was written");
    assert_eq!(objects(), objects_before, "the object was not created");
    assert!(d.reports("Synced").is_empty(), "no connector was called");

    // Made for real, the queued connector gets exactly the document shown
    // (but for the IDs the real transaction draws).
    let mut shown = deliveries[0]["document"].clone();
    assert_eq!(d.put("/api/settings", &json!({"process_outgoing": false})).status, 200, "held in the queue to read");
    let made = d.post("/api/batch", &json!({"changes": [change]}));
    assert_eq!(made.status, 200, "{}", made.text);
    let task = made.body["results"][0]["task_id"].as_i64().unwrap();
    let mut sent = d.get(&format!("/api/tasks/{task}/payload?connector=Queued")).body;
    for doc in [&mut shown, &mut sent] {
        doc["task_id"] = Value::Null;
        for id in ["id", "guid"] {
            doc["object"][id] = Value::Null;
        }
    }
    assert_eq!(shown, sent);

    // Bad input: a clear 4xx, nothing written.
    let before = footprint(&env);
    for (bad, status, says) in [
        (json!({"op": "explode"}), 422, "unknown variant"),
        (json!({"op": "create_object", "object_type": "cms.user", "object": {"code_name": "ann"}}), 409, "ann"),
        (json!({"op": "update_object", "object_type": "cms.user", "id": 999999, "patch": {}}), 404, "999999"),
        (json!([null, true]), 422, ""),
    ] {
        let r = d.post("/api/dry-run", &bad);
        assert_eq!(r.status, status, "{bad}: {}", r.text);
        assert!(r.body["error"].as_str().unwrap_or_default().contains(says), "{bad}: {}", r.text);
    }
    assert_eq!(footprint(&env), before);
}

/// Blanks what two stores draw for themselves (GUIDs, the task's ID) so the
/// rest of two documents can be compared.
fn without_drawn_values(doc: &mut Value) {
    match doc {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "task_id" || key.ends_with("guid") {
                    *value = Value::Null;
                } else {
                    without_drawn_values(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(without_drawn_values),
        _ => {}
    }
}

#[test]
fn the_harness_builds_every_connectors_document_as_the_daemons_dry_run_shows_it() {
    let connectors = [
        (
            "Simple",
            json!({"subscriptions": [{"scope": "objects", "object_type": "cms.user", "process_type": "AsyncSimple"}]}),
        ),
        (
            "Lean",
            json!({"subscriptions": [{"scope": "objects", "object_type": "cms.user", "process_type": "AsyncSimpleSnapshot"}]}),
        ),
        (
            "Full",
            json!({"subscriptions": [{"scope": "objects", "object_type": "cms.user", "process_type": "AsyncSnapshot"}]}),
        ),
        ("Pages", json!({"subscriptions": [{"scope": "documents", "process_type": "AsyncSimpleSnapshot"}]})),
    ];
    let env = TestEnv::new();
    let mut harness = connector_harness::TestBus::builder();
    for (name, script) in &connectors {
        env.scripted(name, script.clone());
        harness = harness.connector::<testkit_connector::ScriptedConnector>(name, &script.to_string());
    }
    let harness = harness.start().unwrap();
    let d = env.start();
    // The same content in both: a user with a role binding on a site, a
    // page, then a product page whose keys point to the user and the page.
    let page = |alias_path: &str, class_name: &str, fields: Value| {
        json!({"op": "create_document", "document": {"site_name": "CorpSite", "alias_path": alias_path,
            "class_name": class_name, "culture": "en-US", "name": alias_path, "fields": fields}})
    };
    let setup = [
        json!({"op": "create_object", "object_type": "cms.site", "object": {"code_name": "CorpSite"}}),
        json!({"op": "create_object", "object_type": "cms.role", "object": {"code_name": "editors", "site_name": "CorpSite"}}),
        json!({"op": "create_object", "object_type": "cms.user", "object": {"code_name": "ann", "fields": {"email": "ann@example.com"}}}),
        json!({"op": "create_object", "object_type": "cms.userrole", "object": {"fields": {"UserID": 3, "RoleID": 2}}}),
        page("/Home", "cms.menuitem", json!({})),
    ];
    for change in &setup {
        let made = d.post("/api/batch", &json!({"changes": [change]}));
        assert_eq!(made.status, 200, "{change}: {}", made.text);
        harness.apply(change.clone()).unwrap();
    }
    let ids = |object: &Value| (object["object_type"].clone(), object["id"].clone());
    assert_eq!(ids(&d.get("/api/objects/cms.userrole").body["items"][0]), (json!("cms.userrole"), json!(4)));
    assert_eq!(harness.objects("cms.userrole").unwrap()[0].id, 4, "both stores drew the same IDs");
    let node = harness.document(1).unwrap().expect("the page").node_id;

    for (change, reached) in [
        (
            json!({"op": "update_object", "object_type": "cms.user", "id": 3, "patch": {"display_name": "Ann"}}),
            vec!["Full", "Lean", "Simple"],
        ),
        (page("/Home/Pad", "cms.product", json!({"ProductManagerID": 3, "RelatedNodeID": node})), vec!["Pages"]),
    ] {
        let shown = d.post("/api/dry-run", &change);
        assert_eq!(shown.status, 200, "{}", shown.text);
        let before: Vec<usize> = reached.iter().map(|n| harness.queued(n).unwrap().len()).collect();
        harness.apply(change.clone()).unwrap();
        let deliveries = shown.body["deliveries"].as_array().unwrap();
        let names: Vec<&str> = deliveries.iter().map(|x| x["connector"].as_str().unwrap()).collect();
        assert_eq!(names, reached, "{}", shown.text);
        for (delivery, (name, count)) in deliveries.iter().zip(reached.iter().zip(before)) {
            let queued = harness.queued(name).unwrap();
            assert_eq!(queued.len(), count + 1, "{name} got one task");
            let decoded: connector_abi::protocol::OutgoingTask =
                serde_json::from_value(delivery["document"].clone()).unwrap();
            let mut daemon = serde_json::to_value(decoded).unwrap();
            let mut built = serde_json::to_value(queued.last().unwrap()).unwrap();
            without_drawn_values(&mut daemon);
            without_drawn_values(&mut built);
            assert_eq!(built, daemon, "{name}: the harness's document is the daemon's");
        }
    }
    // What the documents carry differs by data mode, so the comparison
    // above covered each of them.
    let full = harness.queued("Full").unwrap();
    let connector_abi::CmsObject::Object(user) = &full.last().unwrap().object else { panic!("a user") };
    assert_eq!(user.bindings.len(), 1, "Snapshot: the binding");
    assert!(full.last().unwrap().translations.object("cms.role", 2).is_some(), "and what its key points to");
    let pad = harness.queued("Pages").unwrap();
    let translations = &pad.last().unwrap().translations;
    assert!(translations.object("cms.user", 3).is_some() && translations.document(node).is_some(), "{translations:?}");
}

/// What `GET /api/connectors/{name}/state` lists for `connector`, by key.
fn state_of(d: &Daemon, connector: &str) -> std::collections::BTreeMap<String, String> {
    let r = d.get(&format!("/api/connectors/{connector}/state"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["key"].as_str().unwrap().to_owned(), e["value"].as_str().unwrap().to_owned()))
        .collect()
}

/// Waits until `connector`'s state key `key` reads `value`.
fn wait_for_state(d: &Daemon, connector: &str, key: &str, value: &str) {
    bus_tests::wait_for(&format!("{connector}'s {key} = {value}"), std::time::Duration::from_secs(30), || {
        (state_of(d, connector).get(key).map(String::as_str) == Some(value)).then_some(())
    });
}

/// Waits until the task `task_id` is listed as failed with an error that
/// contains `why`.
fn failed(d: &Daemon, task_id: i64, why: &str) {
    bus_tests::wait_for(&format!("the task to fail with {why}"), std::time::Duration::from_secs(30), || {
        d.queue("outgoing", "")
            .into_iter()
            .find(|t| t["task_id"] == task_id)
            .and_then(|t| t["error"].as_str().filter(|e| e.contains(why)).map(drop))
    })
}

/// The state the bus keeps for a connector: what it writes while it
/// processes a task is committed with that task's delivery record — a task
/// answered `Error`, or one that crashes the connector process after its
/// write, leaves nothing, and every attempt reads the state as of the last
/// delivered task —, and the state survives a restart. Bad keys are
/// refused by name; ops read the state through the API.
#[test]
fn connector_state_is_committed_with_its_tasks_delivery_and_survives_a_restart() {
    let env = TestEnv::new();
    env.scripted(
        "Erp",
        json!({"crashes": true, "subscriptions": [{"scope": "objects", "object_type": "cms.user", "process_type": "AsyncSimple"}]}),
    );
    let d = env.start();
    let counting = |name: &str, extra: Value| {
        let mut fields = json!({"count_state": "seen"});
        fields.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        d.create("cms.user", json!({"code_name": name, "fields": fields}))["task_id"].as_i64().unwrap()
    };
    counting("u1", json!({}));
    counting("u2", json!({}));
    wait_for_state(&d, "Erp", "seen", "2");

    // The connector process dies right after its write: the write is not
    // kept (under in-process isolation the daemon would die with it).
    if std::env::var("BUS_TEST_ISOLATION").as_deref() != Ok("in-process") {
        let boom = counting("boom", json!({"crash": "abort"}));
        failed(&d, boom, "SIGABRT");
        assert_eq!(state_of(&d, "Erp")["seen"], "2", "a crashed call's write is not kept");
        assert_eq!(d.delete(&format!("/api/tasks/{boom}")).status, 204);
    }
    // An `Error`: not kept either, and each attempt read 2 again.
    let refused = counting("refused", json!({"outcome": "Error", "message": "ERP down"}));
    // (Its first attempt may meet the restart's pause instead.)
    failed(&d, refused, "ERP down");
    assert_eq!(state_of(&d, "Erp")["seen"], "2", "a failed task's write is not kept");
    let attempts: Vec<Value> = d.reports("Erp").into_iter().filter(|r| r["name"] == "refused").collect();
    assert!(!attempts.is_empty());
    assert!(attempts.iter().all(|r| r["state_before"] == 2), "every attempt read 2: {attempts:?}");
    assert_eq!(d.delete(&format!("/api/tasks/{refused}")).status, 204);

    // After a restart the state is there.
    d.stop();
    let d = env.start();
    d.create("cms.user", json!({"code_name": "u3", "fields": {"count_state": "seen"}}));
    wait_for_state(&d, "Erp", "seen", "3");
    let u3 = d.reports("Erp").into_iter().find(|r| r["name"] == "u3").unwrap();
    assert_eq!(u3["state_before"], 2);

    // Paging and bad input.
    let r = d.get("/api/connectors/Erp/state?limit=1");
    assert_eq!(r.status, 200);
    assert!(r.body["next_after"].is_null(), "one key, one page: {}", r.body);
    assert_eq!(d.get("/api/connectors/Nobody/state").status, 404);
    assert_eq!(d.get("/api/connectors/Erp/state?limit=0").status, 400);
}
