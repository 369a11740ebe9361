//! The example's tests: the bus inside the test process (`connector-harness`).

use super::*;
use connector_harness::{json, HarnessError, TaskResult, TestBus};

#[test]
fn users_and_product_pages_reach_the_crm() -> Result<(), HarnessError> {
    let bus = TestBus::with::<AcmeCrm>("AcmeCrm", "https://crm.example/api")?;
    bus.apply(json!({"op": "create_object", "object_type": "cms.user", "object": {"code_name": "ann"}}))?;
    bus.apply(json!({"op": "create_object", "object_type": "cms.site", "object": {"code_name": "CorpSite"}}))?;
    for (alias_path, name) in [("/Products", "Products"), ("/Products/iPad", "iPad")] {
        let page = json!({"site_name": "CorpSite", "alias_path": alias_path, "class_name": "cms.menuitem",
                          "culture": "en-US", "name": name});
        bus.apply(json!({"op": "create_document", "document": page}))?;
    }

    // The tasks as the bus built them, each with its subscription's data
    // mode; the page /Products itself is not under "/Products/%".
    let tasks = bus.queued("AcmeCrm")?;
    let titles: Vec<&str> = tasks.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, ["Create User 'ann'", "Create document iPad"]);
    assert_eq!(tasks[0].data_type, TaskDataType::SimpleSnapshot);
    assert_eq!(tasks[1].data_type, TaskDataType::Simple);

    // Delivered as the bus delivers them: in order, each result applied.
    let outcomes = bus.deliver("AcmeCrm")?;
    assert!(outcomes.iter().all(|o| o.result == TaskResult::Ok), "{outcomes:?}");
    assert!(bus.queued("AcmeCrm")?.is_empty());
    Ok(())
}

#[test]
fn without_an_endpoint_it_does_not_load() {
    let Err(refused) = TestBus::with::<AcmeCrm>("AcmeCrm", " ") else { panic!("it loaded without an endpoint") };
    assert!(refused.to_string().contains("set ConnectorConfig to the CRM endpoint"), "{refused}");
}
