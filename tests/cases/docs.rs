//! The documentation a connector team reads is true: the README's example
//! connector is the crate the tests build and load, and it delivers; the
//! README lists every shipped object type; a missing-translation error says
//! how to fix it.

use bus_tests::{wait_for, TestEnv};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../connector-abi/README.md")).unwrap()
}

#[test]
fn the_readme_example_is_the_crate_that_builds_loads_and_delivers() {
    let readme = readme();
    let start =
        readme.find("```rust\nuse connector_abi::prelude::*;").expect("the README has its example") + "```rust\n".len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let crate_source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../connectors/readme-example/src/lib.rs"))
            .unwrap();
    let body: String =
        crate_source.lines().skip_while(|l| l.starts_with("//!") || l.is_empty()).map(|l| format!("{l}\n")).collect();
    assert_eq!(body, block, "connectors/readme-example/src/lib.rs must be the README's example, word for word");
    // Its test (run by `cargo test` of the workspace) is the README's too.
    let start = readme.find("```rust\n//! The example's tests").expect("the README shows the example's test")
        + "```rust\n".len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let tests =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../connectors/readme-example/src/tests.rs"))
            .unwrap();
    assert_eq!(tests, block, "connectors/readme-example/src/tests.rs must be the README's test, word for word");

    // Installed and registered as the README says, it loads and gets its tasks.
    let env = TestEnv::new();
    env.install("acme_crm_connector", "acme_crm_connector");
    env.register("AcmeCrm", "acme_crm_connector", "AcmeCrm", true, "https://crm.example/api");
    let d = env.start();
    let c = d.connector("AcmeCrm").unwrap();
    assert_eq!(c["loaded"], true, "{c}");
    assert!(c["library_hash"].as_str().is_some_and(|h| h.len() >= 16), "{c}");
    assert!(c["loaded_at"].is_string() && c["sdk_version"].is_string(), "{c}");
    d.create("cms.user", json!({"code_name": "antonio"}));
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let doc = d.post(
        "/api/documents",
        &json!({"site_name": "CorpSite", "alias_path": "/Products", "class_name": "cms.menuitem", "culture": "en-US", "name": "Products"}),
    );
    assert_eq!(doc.status, 201, "{}", doc.text);
    let r = d.post(
        "/api/documents",
        &json!({"site_name": "CorpSite", "alias_path": "/Products/iPad", "class_name": "cms.menuitem", "culture": "en-US", "name": "iPad"}),
    );
    assert_eq!(r.body["queued_for"], json!(["AcmeCrm"]), "{}", r.text);
    wait_for("the example to take its tasks", WAIT, || d.queue("outgoing", "").is_empty().then_some(()));
    let logged: i64 = env.sql().query_row("SELECT COUNT(*) FROM Integration_SyncLog", [], |r| r.get(0)).unwrap();
    assert_eq!(logged, 0, "every task went through");
}

#[test]
fn the_readme_lists_every_shipped_object_type_and_document_class() {
    let readme = readme();
    let types = bus_core::object_types::ObjectTypes::defaults();
    for name in types.object_names().into_iter().chain(types.document_names()) {
        assert!(readme.contains(&format!("`{name}`")), "connector-abi/README.md does not list `{name}`");
    }
}

#[test]
fn a_foreign_key_without_translation_data_says_which_process_type_to_use() {
    let env = TestEnv::new();
    // AsyncSimple carries no translation data: the user role's keys cannot be translated.
    env.scripted(
        "Plain",
        json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.userrole"}]}),
    );
    let d = env.start();
    let user = d.create("cms.user", json!({"code_name": "u"}))["object"]["id"].as_i64().unwrap();
    let role = d.create("cms.role", json!({"code_name": "r"}))["object"]["id"].as_i64().unwrap();
    d.create("cms.userrole", json!({"fields": {"UserID": user, "RoleID": role}}));
    let report = wait_for("the delivery", WAIT, || d.reports("Plain").into_iter().next());
    let error = report["translation_error"].as_str().unwrap();
    assert!(error.contains("no translation data for cms.user"), "{error}");
    assert!(error.contains("AsyncSimpleSnapshot or AsyncSnapshot"), "{error}");
}

/// The `sh` block of the README's incoming section: its request bodies.
fn incoming_bodies(readme: &str) -> Vec<serde_json::Value> {
    let section = &readme[readme.find("## 4. The incoming direction").expect("the README has section 4")..];
    let block = &section[section.find("```sh\n").unwrap()..];
    let block = &block[..block[6..].find("```").unwrap() + 6];
    block
        .split("-d '")
        .skip(1)
        .map(|rest| serde_json::from_str(&rest[..rest.find('\'').unwrap()]).expect("a body is JSON"))
        .collect()
}

#[test]
fn the_incoming_example_of_the_readme_is_the_crate_and_applies_as_written() {
    let readme = readme();
    let section = &readme[readme.find("## 4. The incoming direction").expect("the README has section 4")..];
    let start = section.find("```rust\n").unwrap() + "```rust\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let crate_source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../connectors/erp-example/src/lib.rs")).unwrap();
    let body: String =
        crate_source.lines().skip_while(|l| l.starts_with("//!") || l.is_empty()).map(|l| format!("{l}\n")).collect();
    assert_eq!(body, block, "connectors/erp-example/src/lib.rs must be the README's example, word for word");

    let env = TestEnv::new();
    env.install("erp_example_connector", "erp_example_connector");
    env.register("Erp", "erp_example_connector", "Erp", true, "");
    let d = env.start();
    assert_eq!(d.connector("Erp").unwrap()["loaded"], true, "{}", d.connector("Erp").unwrap());
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let editors =
        d.create("cms.role", json!({"code_name": "editors", "site_name": "CorpSite"}))["object"]["id"].clone();
    let bodies = incoming_bodies(&readme);
    assert_eq!(bodies.len(), 2, "a customer and a membership");
    for body in &bodies {
        let r = d.post("/api/connectors/Erp/incoming", body);
        assert_eq!(r.status, 201, "{body}: {}", r.text);
    }
    assert_eq!(d.post("/api/integration/notify?connector=Erp", &json!({})).status, 202);
    let maria = wait_for("the customer to be applied", WAIT, || {
        d.get("/api/objects/cms.user?limit=1000").body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["code_name"] == "maria" && u["display_name"] == "Maria")
            .map(|u| u["id"].clone())
    });
    // The membership's ERP numbers were translated to the bus's IDs.
    wait_for("the membership to be applied with translated keys", WAIT, || {
        d.get("/api/objects/cms.userrole?limit=1000").body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["fields"]["UserID"] == maria && b["fields"]["RoleID"] == editors)
            .then_some(())
    });
    assert!(d.queue("incoming", "").is_empty(), "both tasks were applied");
    // The customer's number was kept in the bus's state for the connector
    // (which is what translated the membership's key).
    let state = d.get("/api/connectors/Erp/state").body;
    assert_eq!(state["items"][0]["key"], "cms.user:7", "{state}");
    assert_eq!(state["items"][0]["value"], "maria", "{state}");
}
