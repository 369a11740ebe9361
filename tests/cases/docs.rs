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
