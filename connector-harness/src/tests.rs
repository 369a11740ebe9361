//! The harness as an author uses it: connectors written here with the SDK,
//! driven through the bus's own pipeline, workers and incoming path.

use crate::{json, HarnessError, TaskResult, TestBus};
use connector_abi::prelude::*;
use connector_abi::protocol::LogIncomingTaskRequest;

/// Takes users with their bindings and translation data; counts its
/// deliveries in the bus's state.
struct Mirror {
    host: Host,
}

impl Connector for Mirror {
    fn create(_config: &str, host: Host) -> Result<Self, ConnectorError> {
        Ok(Mirror { host })
    }

    fn init(&self, init: &mut Init) {
        init.set_connector_name("Mirror");
        init.subscribe_to(Subscription::objects(TaskProcessType::AsyncSnapshot, "cms.user"));
    }

    fn process_object_async(&self, user: &ObjectData, _task: &OutgoingTask) -> ProcessOutcome {
        let seen: u32 = self.host.state_get("delivered").ok().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
        if self.host.state_put("delivered", &(seen + 1).to_string()).is_err() {
            return ProcessOutcome::error("the state was refused");
        }
        let _ = self.host.log_event(EventType::Information, "MIRRORED", &user.code_name, None);
        ProcessOutcome::ok()
    }
}

/// Pushes users in: `{"login": .., "name": ..}` becomes a user.
struct Feed;

impl Connector for Feed {
    fn create(_config: &str, _host: Host) -> Result<Self, ConnectorError> {
        Ok(Feed)
    }

    fn init(&self, init: &mut Init) {
        init.set_connector_name("Feed");
        init.subscribe_to(Subscription::objects(TaskProcessType::AsyncSimple, "cms.user"));
    }

    fn prepare_internal_object(&self, request: &PrepareInternalObjectRequest) -> Result<CmsObject, ConnectorError> {
        let login = request.external["login"].as_str().ok_or("a record without a login")?;
        Ok(CmsObject::Object(ObjectData {
            object_type: "cms.user".into(),
            code_name: login.into(),
            display_name: request.external["name"].as_str().map(Into::into),
            ..Default::default()
        }))
    }
}

fn create(bus: &TestBus, object_type: &str, object: serde_json::Value) -> i64 {
    let done = bus.apply(json!({"op": "create_object", "object_type": object_type, "object": object})).unwrap();
    let CmsObject::Object(o) = done.object else { panic!("an object was created") };
    o.id
}

#[test]
fn a_snapshot_task_carries_the_bindings_and_what_their_keys_point_to() {
    let bus = TestBus::with::<Mirror>("Mirror", "").unwrap();
    let role = create(&bus, "cms.role", json!({"code_name": "editors"}));
    let ann = create(&bus, "cms.user", json!({"code_name": "ann"}));
    create(&bus, "cms.userrole", json!({"fields": {"UserID": ann, "RoleID": role}}));
    bus.apply(json!({"op": "update_object", "object_type": "cms.user", "id": ann, "patch": {"display_name": "Ann"}}))
        .unwrap();

    let tasks = bus.queued("Mirror").unwrap();
    let titles: Vec<&str> = tasks.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, ["Create User 'ann'", "Update User 'Ann'"], "the title names the display name");
    let update = &tasks[1];
    assert_eq!(update.data_type, TaskDataType::Snapshot);
    let CmsObject::Object(user) = &update.object else { panic!("a user") };
    assert_eq!(user.display_name.as_deref(), Some("Ann"));
    assert_eq!(user.bindings.len(), 1, "{user:?}");
    assert_eq!(user.bindings[0].object_type, "cms.userrole");
    let editors = update.translations.object("cms.role", role).expect("the role's translation data");
    assert_eq!(editors.code_name, "editors");
}

/// Refused with Error while [`DOWN`] is set; counts its calls in the
/// bus's state.
struct Flaky {
    host: Host,
}

/// Whether [`Flaky`]'s system is down (only its test uses it).
static DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

impl Connector for Flaky {
    fn create(_config: &str, host: Host) -> Result<Self, ConnectorError> {
        Ok(Flaky { host })
    }

    fn init(&self, init: &mut Init) {
        init.set_connector_name("Flaky");
        init.subscribe_to(Subscription::objects(TaskProcessType::AsyncSimple, "cms.user"));
    }

    fn process_object_async(&self, _user: &ObjectData, _task: &OutgoingTask) -> ProcessOutcome {
        let calls: u32 = self.host.state_get("calls").ok().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
        if self.host.state_put("calls", &(calls + 1).to_string()).is_err() {
            return ProcessOutcome::error("the state was refused");
        }
        if DOWN.load(std::sync::atomic::Ordering::SeqCst) {
            return ProcessOutcome::error("the system is down");
        }
        ProcessOutcome::ok()
    }
}

#[test]
fn an_error_keeps_the_task_and_drops_its_state_writes_until_a_retry_succeeds() {
    let bus = TestBus::with::<Flaky>("Flaky", "").unwrap();
    create(&bus, "cms.user", json!({"code_name": "ann"}));
    create(&bus, "cms.user", json!({"code_name": "bob"}));

    let first = bus.deliver("Flaky").unwrap();
    assert_eq!(first.len(), 1, "an Error stops the run: {first:?}");
    assert_eq!(first[0].result, TaskResult::Error);
    assert_eq!(first[0].error.as_deref(), Some("the system is down"));
    assert_eq!(bus.queued("Flaky").unwrap().len(), 2, "both wait");
    assert!(bus.state("Flaky").unwrap().is_empty(), "the refused task's write is not kept");

    DOWN.store(false, std::sync::atomic::Ordering::SeqCst);
    let second = bus.deliver("Flaky").unwrap();
    let results: Vec<TaskResult> = second.iter().map(|o| o.result).collect();
    assert_eq!(results, [TaskResult::Ok, TaskResult::Ok]);
    assert!(bus.queued("Flaky").unwrap().is_empty());
    assert_eq!(bus.state("Flaky").unwrap()["calls"], "2", "only the delivered calls' writes");
}

#[test]
fn delivered_tasks_leave_the_queue_with_their_state_and_events() {
    let bus = TestBus::with::<Mirror>("Mirror", "").unwrap();
    for name in ["ann", "bob"] {
        create(&bus, "cms.user", json!({"code_name": name}));
    }
    let outcomes = bus.deliver("Mirror").unwrap();
    assert!(outcomes.iter().all(|o| o.result == TaskResult::Ok), "{outcomes:?}");
    assert!(bus.queued("Mirror").unwrap().is_empty());
    assert_eq!(bus.state("Mirror").unwrap()["delivered"], "2");
    let mirrored: Vec<String> = bus.events_from("Mirror").unwrap().into_iter().map(|e| e.description).collect();
    assert_eq!(mirrored, ["ann", "bob"]);
    assert!(bus.deliver("Mirror").unwrap().is_empty(), "nothing is delivered twice");
}

#[test]
fn an_incoming_record_becomes_a_user_that_reaches_the_others_but_not_its_source() {
    let bus = TestBus::builder().connector::<Feed>("Feed", "").connector::<Mirror>("Mirror", "").start().unwrap();
    let record = |login: serde_json::Value| LogIncomingTaskRequest {
        external: json!({"login": login, "name": "Ann"}),
        task_type: TaskType::CreateObject,
        data_type: TaskDataType::Simple,
        process_type: Default::default(),
        site_name: None,
    };
    let id = bus.log_incoming("Feed", record(json!("ann"))).unwrap();
    let refused = bus.log_incoming("Feed", record(json!(null))).unwrap_err();
    assert!(refused.to_string().contains("a record without a login"), "{refused}");
    let waiting = bus.incoming("Feed").unwrap();
    assert_eq!(waiting.iter().map(|t| t.task_id).collect::<Vec<_>>(), [id]);
    assert!(bus.object("cms.user", "ann").unwrap().is_none(), "not applied before it is processed");

    let applied = bus.process_incoming("Feed").unwrap();
    assert_eq!(applied[0].result, TaskResult::Ok, "{applied:?}");
    assert_eq!(bus.object("cms.user", "ann").unwrap().unwrap().display_name.as_deref(), Some("Ann"));
    assert!(bus.queued("Feed").unwrap().is_empty(), "no echo to the source");
    assert_eq!(bus.queued("Mirror").unwrap()[0].title, "Create User 'Ann'");

    // A record that cannot be applied is marked Error and blocks the queue
    // for the scheduled runs; a synchronize tries it again.
    bus.log_incoming("Feed", record(json!("ann"))).unwrap();
    let failed = bus.process_incoming("Feed").unwrap();
    assert_eq!(failed[0].result, TaskResult::Error, "a second ann: {failed:?}");
    assert_eq!(bus.process_incoming("Feed").unwrap()[0].result, TaskResult::Blocked);
    assert_eq!(bus.synchronize_incoming("Feed").unwrap()[0].result, TaskResult::Error);
}

#[test]
fn inbound_methods_are_called_as_the_bus_calls_them() {
    let bus = TestBus::with::<Feed>("Feed", "").unwrap();
    let request = PrepareInternalObjectRequest {
        external: json!({"login": "cy"}),
        task_type: TaskType::CreateObject,
        data_type: TaskDataType::Simple,
        site_name: None,
    };
    let CmsObject::Object(o) = bus.prepare_internal_object("Feed", &request).unwrap() else { panic!("an object") };
    assert_eq!(o.code_name, "cy");
    assert_eq!(bus.get_internal_object_params("Feed", 7, "cms.role").unwrap(), None, "the SDK's default");
}

#[test]
fn mistakes_are_named() {
    let bus = TestBus::with::<Mirror>("Mirror", "").unwrap();
    let unknown = bus.deliver("Nobody").unwrap_err();
    assert!(matches!(unknown, HarnessError::UnknownConnector(ref n) if n == "Nobody"), "{unknown}");
    let bad = bus.apply(json!({"op": "create_object", "object_type": "cms.user"})).unwrap_err();
    assert!(bad.to_string().contains("object"), "{bad}");
    let refused = bus.apply(json!({"op": "create_object", "object_type": "cms.nothing", "object": {}})).unwrap_err();
    assert!(refused.to_string().contains("cms.nothing"), "{refused}");
    let Err(misnamed) = TestBus::with::<Mirror>("Other", "") else { panic!("a name mismatch loads") };
    assert!(misnamed.to_string().contains("calls itself `Mirror`"), "{misnamed}");
}

/// Answers `ErrorAndSkip` for users whose code name starts with `bad`;
/// takes batches, writing a `BATCH` event with their size; slow where its
/// config says so (`slow-create`, `slow-params`).
struct Picky {
    host: Host,
    slow_params: bool,
}

impl Connector for Picky {
    fn create(config: &str, host: Host) -> Result<Self, ConnectorError> {
        if config.contains("slow-create") {
            // Past the moment the bus publishes a connector as still starting.
            std::thread::sleep(std::time::Duration::from_millis(1500));
        }
        Ok(Picky { host, slow_params: config.contains("slow-params") })
    }

    fn init(&self, init: &mut Init) {
        init.set_connector_name("Picky");
        init.subscribe_to(Subscription::objects(TaskProcessType::AsyncSimple, "cms.user"));
    }

    fn process_internal_tasks_async(&self, tasks: &[OutgoingTask]) -> Vec<ProcessOutcome> {
        let _ = self.host.log_event(EventType::Information, "BATCH", &tasks.len().to_string(), None);
        tasks.iter().map(|t| self.process_internal_task_async(t)).collect()
    }

    fn process_object_async(&self, user: &ObjectData, _task: &OutgoingTask) -> ProcessOutcome {
        if user.code_name.starts_with("bad") {
            return ProcessOutcome::error_and_skip(format!("{} is refused", user.code_name));
        }
        ProcessOutcome::ok()
    }

    fn get_internal_object_params(&self, _id: i64, _object_type: &str) -> Option<ObjectParams> {
        if self.slow_params {
            std::thread::sleep(std::time::Duration::from_millis(800));
        }
        None
    }
}

#[test]
fn a_skipped_task_is_passed_over_by_later_deliveries_and_tried_again_by_a_synchronize() {
    let bus = TestBus::with::<Picky>("Picky", "").unwrap();
    for name in ["bad-ann", "bob"] {
        create(&bus, "cms.user", json!({"code_name": name}));
    }
    let results = |outcomes: Vec<crate::TaskOutcome>| outcomes.into_iter().map(|o| o.result).collect::<Vec<_>>();
    assert_eq!(results(bus.deliver("Picky").unwrap()), [TaskResult::ErrorAndSkip, TaskResult::Ok]);
    assert!(bus.deliver("Picky").unwrap().is_empty(), "the bus passes a skipped task over");
    assert_eq!(results(bus.synchronize("Picky").unwrap()), [TaskResult::ErrorAndSkip], "a synchronize retries it");
}

#[test]
fn a_batch_size_hands_the_connector_its_tasks_together() {
    let delivery = crate::DeliverySettings { batch_size: Some(10), ..Default::default() };
    let bus = TestBus::builder().connector_with::<Picky>("Picky", "", delivery).start().unwrap();
    for name in ["ann", "bob", "cy"] {
        create(&bus, "cms.user", json!({"code_name": name}));
    }
    assert_eq!(bus.deliver("Picky").unwrap().len(), 3);
    let batches: Vec<String> = bus.events_from("Picky").unwrap().into_iter().map(|e| e.description).collect();
    assert_eq!(batches, ["3"], "one call for the three tasks");
}

#[test]
fn a_slow_create_is_waited_for_and_a_slow_call_ends_at_its_deadline() {
    TestBus::with::<Picky>("Picky", "slow-create").expect("a create slower than the bus's settling moment loads");
    let bus = TestBus::builder()
        .connector::<Picky>("Picky", "slow-params")
        .call_timeout(std::time::Duration::from_millis(200))
        .start()
        .unwrap();
    let late = bus.get_internal_object_params("Picky", 1, "cms.role").unwrap_err();
    assert!(matches!(late, HarnessError::Call { .. }), "{late}");
    assert!(late.to_string().contains("200 ms"), "{late}");
}
