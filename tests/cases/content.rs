//! The content-store routes: changes, reads, batches, and bad input.

use bus_tests::TestEnv;
use serde_json::json;

#[test]
fn objects_and_documents_round_trip_through_the_api() {
    let env = TestEnv::new();
    let d = env.start();
    d.create("cms.site", json!({"code_name": "CorpSite", "display_name": "Corporate site"}));
    let poll = d
        .create("poll.poll", json!({"code_name": "colour", "site_name": "CorpSite", "fields": {"question": "Which?"}}));
    let poll_id = poll["object"]["id"].as_i64().unwrap();
    assert_eq!(poll["object"]["site_name"], "CorpSite");
    assert!(poll["object"]["guid"].as_str().unwrap().len() == 36);
    let answer = d.create(
        "poll.pollanswer",
        json!({"code_name": "red", "site_name": "CorpSite", "fields": {"AnswerPollID": poll_id}}),
    );
    assert_eq!(answer["object"]["parent"], json!({"object_type": "poll.poll", "id": poll_id}));

    let updated = d.put(&format!("/api/objects/poll.poll/{poll_id}"), &json!({"fields": {"open": true}})).body;
    assert_eq!(updated["object"]["fields"], json!({"question": "Which?", "open": true}), "fields are merged");
    assert_eq!(d.get(&format!("/api/objects/poll.poll/{poll_id}")).body["fields"]["open"], true);
    let listed = d.get("/api/objects/poll.pollanswer?site=CorpSite").body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    // Deleting the poll deletes its answers with it.
    let deleted = d.delete(&format!("/api/objects/poll.poll/{poll_id}"));
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body["task_type"], "DeleteObject");
    assert!(d.get("/api/objects/poll.pollanswer").body["items"].as_array().unwrap().is_empty());

    let home = d.post("/api/documents", &json!({"site_name": "CorpSite", "alias_path": "/Home", "class_name": "cms.menuitem", "culture": "en-US", "name": "Home"}));
    assert_eq!(home.status, 201, "{}", home.text);
    let id = home.body["object"]["document_id"].as_i64().unwrap();
    let czech = d.post("/api/documents", &json!({"site_name": "CorpSite", "alias_path": "/Home", "class_name": "cms.menuitem", "culture": "cs-CZ", "name": "Domů"}));
    assert_eq!(czech.status, 201, "{}", czech.text);
    assert_eq!(czech.body["object"]["node_id"], home.body["object"]["node_id"], "a new culture of the same node");
    assert_eq!(d.post(&format!("/api/documents/{id}/publish"), &json!({})).body["object"]["published"], true);
    let archived = d.post(&format!("/api/documents/{id}/archive"), &json!({})).body;
    assert_eq!(
        (archived["object"]["published"].clone(), archived["object"]["archived"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(archived["task_type"], "ArchiveDocument");
    let renamed = d.put(&format!("/api/documents/{id}"), &json!({"name": "Start"})).body;
    assert_eq!(renamed["title"], "Update document Start");
    assert_eq!(d.get("/api/documents?site=CorpSite&path=/Home").body["items"].as_array().unwrap().len(), 2);
    assert_eq!(d.delete(&format!("/api/documents/{id}")).status, 200);
    assert_eq!(d.get(&format!("/api/documents/{id}")).status, 404);
}

#[test]
fn bad_changes_get_a_clear_4xx_and_write_nothing() {
    let env = TestEnv::new();
    let d = env.start();
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let user = d.create("cms.user", json!({"code_name": "antonio"}))["object"]["id"].as_i64().unwrap();
    d.create("cms.role", json!({"code_name": "editors", "site_name": "CorpSite"}));
    let doc = |body: serde_json::Value| d.post("/api/documents", &body);
    let cases = vec![
        (d.post("/api/objects/cms.usr", &json!({"code_name": "x"})), 404, "unknown object type `cms.usr`"),
        (d.post("/api/objects/cms.user", &json!({"display_name": "x"})), 422, "code_name is required"),
        (d.post("/api/objects/cms.user", &json!({"code_name": "ANTONIO"})), 409, "already exists"),
        (d.post("/api/objects/cms.user", &json!({"code_name": "x", "site_name": "CorpSite"})), 422, "global"),
        (
            d.post("/api/objects/cms.role", &json!({"code_name": "x", "site_name": "Nowhere"})),
            422,
            "site `Nowhere` does not exist",
        ),
        (
            d.post("/api/objects/cms.userrole", &json!({"fields": {"UserID": user, "RoleID": 999}})),
            422,
            "refers to cms.role 999, which does not exist",
        ),
        (
            d.post("/api/objects/cms.userrole", &json!({"fields": {"UserID": user, "RoleID": "editors"}})),
            422,
            "must be an integer ID",
        ),
        (d.post("/api/objects/poll.pollanswer", &json!({"code_name": "a"})), 422, "must name a poll.poll"),
        (d.post("/api/objects/cms.user", &json!({"code_name": "x", "colour": "red"})), 422, "unknown field `colour`"),
        (d.post("/api/objects/cms.user", &json!({"code_name": "x", "guid": "nope"})), 422, "is not a GUID"),
        (d.put("/api/objects/cms.user/999", &json!({"display_name": "x"})), 404, "no cms.user with ID 999"),
        (d.put("/api/objects/cms.role/1", &json!({})), 404, "no cms.role with ID 1"),
        (d.get("/api/objects/cms.user/abc"), 400, "abc"),
        (d.delete("/api/objects/cms.site/1"), 409, "site `CorpSite` still has 1 object(s)"),
        (
            d.post(&format!("/api/objects/cms.user/{user}/sites/Nowhere"), &json!({})),
            404,
            "site `Nowhere` does not exist",
        ),
        (
            d.post("/api/objects/cms.role/1/sites/CorpSite", &json!({})),
            404,
            "cannot be added to or removed from a site",
        ),
        (d.delete(&format!("/api/objects/cms.user/{user}/sites/CorpSite")), 404, "is not on site `CorpSite`"),
        (
            doc(
                json!({"site_name": "CorpSite", "alias_path": "Home", "class_name": "cms.menuitem", "culture": "en-US", "name": "H"}),
            ),
            422,
            "alias_path `Home` is not valid",
        ),
        (
            doc(
                json!({"site_name": "CorpSite", "alias_path": "/A/B", "class_name": "cms.menuitem", "culture": "en-US", "name": "B"}),
            ),
            422,
            "parent document /A does not exist",
        ),
        (
            doc(
                json!({"site_name": "CorpSite", "alias_path": "/A", "class_name": "cms.nothing", "culture": "en-US", "name": "A"}),
            ),
            404,
            "unknown document class",
        ),
        (
            doc(
                json!({"site_name": "CorpSite", "alias_path": "/A", "class_name": "cms.menuitem", "culture": "en US", "name": "A"}),
            ),
            422,
            "not a culture code",
        ),
        (
            doc(
                json!({"site_name": "CorpSite", "alias_path": "/A", "class_name": "cms.product", "culture": "en-US", "name": "A", "fields": {"ProductManagerID": 12345}}),
            ),
            422,
            "refers to cms.user 12345",
        ),
        (d.post("/api/batch", &json!({"changes": []})), 422, "no changes"),
        (d.post("/api/batch", &json!({"changes": [{"op": "explode"}]})), 422, "unknown variant `explode`"),
    ];
    for (i, (r, status, needle)) in cases.into_iter().enumerate() {
        assert_eq!(r.status, status, "case {i}: {}", r.text);
        let error = r.body["error"].as_str().unwrap_or_else(|| panic!("case {i}: no JSON error: {}", r.text));
        assert!(error.contains(needle), "case {i}: expected `{needle}` in `{error}`");
    }
    // An object a document refers to cannot be deleted under it.
    let product = doc(
        json!({"site_name": "CorpSite", "alias_path": "/P", "class_name": "cms.product", "culture": "en-US", "name": "P", "fields": {"ProductManagerID": user}}),
    );
    assert_eq!(product.status, 201, "{}", product.text);
    let refused = d.delete(&format!("/api/objects/cms.user/{user}"));
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.body["error"].as_str().unwrap().contains("still referenced by document"), "{}", refused.text);
    // A batch is all or nothing: the third change fails, the first two are not kept.
    let r = d.post(
        "/api/batch",
        &json!({"changes": [
            {"op": "create_object", "object_type": "cms.role", "object": {"code_name": "a", "site_name": "CorpSite"}},
            {"op": "create_object", "object_type": "cms.role", "object": {"code_name": "b", "site_name": "CorpSite"}},
            {"op": "create_object", "object_type": "cms.role", "object": {"code_name": "a", "site_name": "CorpSite"}}
        ]}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().starts_with("change 2:"), "{}", r.text);
    assert_eq!(d.get("/api/objects/cms.role").body["items"].as_array().unwrap().len(), 1, "only the role made before");
    // A taken GUID is its own change's error too, though (on PostgreSQL)
    // the insert is only sent with the batch's tasks.
    let taken = d.get(&format!("/api/objects/cms.user/{user}")).body["guid"].as_str().unwrap().to_owned();
    let r = d.post(
        "/api/batch",
        &json!({"changes": [
            {"op": "create_object", "object_type": "cms.user", "object": {"code_name": "fresh"}},
            {"op": "create_object", "object_type": "cms.user", "object": {"code_name": "other", "guid": taken}},
            {"op": "create_object", "object_type": "cms.user", "object": {"code_name": "third"}}
        ]}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    let error = r.body["error"].as_str().unwrap();
    assert!(error.starts_with("change 1:") && error.contains(&format!("GUID {taken}")), "{}", r.text);
    // The first change refused is the one named, even when a later one is
    // refused before the earlier insert was sent.
    let r = d.post(
        "/api/batch",
        &json!({"changes": [
            {"op": "create_object", "object_type": "cms.user", "object": {"code_name": "fresh", "guid": taken}},
            {"op": "create_object", "object_type": "cms.user", "object": {"code_name": "other", "site_name": "CorpSite"}}
        ]}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().starts_with("change 0:"), "{}", r.text);
    // Batches longer than PostgreSQL keeps waiting (their first inserts are
    // sent ahead while the rest are prepared): the refused change is still
    // the one named, whichever part of the batch it is in.
    let many = |prefix: &str, refused: Option<usize>| -> serde_json::Value {
        let changes: Vec<serde_json::Value> = (0..45)
            .map(|i| {
                let mut object = json!({"code_name": format!("{prefix}{i}")});
                if Some(i) == refused {
                    object["guid"] = json!(taken);
                }
                json!({"op": "create_object", "object_type": "cms.user", "object": object})
            })
            .collect();
        json!({ "changes": changes })
    };
    for refused in [5, 38] {
        let r = d.post("/api/batch", &many("many", Some(refused)));
        assert_eq!(r.status, 409, "{}", r.text);
        let error = r.body["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("change {refused}:")) && error.contains(&format!("GUID {taken}")),
            "{}",
            r.text
        );
    }
    let ok = d.post(
        "/api/batch",
        &json!({"changes": [
            {"op": "create_object", "object_type": "cms.role", "object": {"code_name": "a", "site_name": "CorpSite"}},
            {"op": "add_to_site", "object_type": "cms.user", "id": user, "site_name": "CorpSite"}
        ]}),
    );
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["results"][1]["title"], "Add User 'antonio' to site");
    let users: i64 =
        env.sql().query_row("SELECT COUNT(*) FROM CMS_Object WHERE ObjectType = 'cms.user'", [], |r| r.get(0)).unwrap();
    assert_eq!(users, 1, "nothing of the refused batches");
    let r = d.post("/api/batch", &many("long", None));
    assert_eq!(r.status, 200, "{}", r.text);
    let users: i64 =
        env.sql().query_row("SELECT COUNT(*) FROM CMS_Object WHERE ObjectType = 'cms.user'", [], |r| r.get(0)).unwrap();
    assert_eq!(users, 46, "every user of a long batch");
}
