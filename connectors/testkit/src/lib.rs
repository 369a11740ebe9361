//! Connector classes for the integration tests. Not for production use.

const BUILD: u32 = 1;

mod crash;
mod echo;
mod scripted;

use connector_abi::prelude::*;
pub use echo::EchoConnector;
pub use scripted::ScriptedConnector;

/// A second class of the same library, to show that one library can
/// export several connectors.
pub struct SecondConnector;

impl Connector for SecondConnector {
    fn create(_config: &str, _host: Host) -> Result<Self, ConnectorError> {
        Ok(SecondConnector)
    }

    fn init(&self, init: &mut Init) {
        init.set_connector_name("Second");
        init.subscribe_to_all_objects(TaskProcessType::AsyncSimple, TaskType::DeleteObject);
    }
}

/// Panics in every method. Config `panic_in=create` or `panic_in=init`
/// makes it panic there already; otherwise creation and init succeed.
pub struct PanickingConnector {
    panic_in_init: bool,
}

impl Connector for PanickingConnector {
    fn create(config: &str, _host: Host) -> Result<Self, ConnectorError> {
        if config.contains("panic_in=create") {
            panic!("panicking in create on purpose");
        }
        Ok(PanickingConnector { panic_in_init: config.contains("panic_in=init") })
    }

    fn init(&self, init: &mut Init) {
        if self.panic_in_init {
            panic!("panicking in init on purpose");
        }
        init.set_connector_name(init.registry_name().to_owned());
        init.subscribe_to(Subscription::custom("everything", TaskProcessType::AsyncSimple));
    }

    fn is_match(&self, _s: &str, _o: &CmsObject, _t: TaskType) -> Option<TaskProcessType> {
        panic!("panicking in is_match on purpose")
    }
    fn process_internal_task_async(&self, _task: &OutgoingTask) -> ProcessOutcome {
        panic!("panicking in process_internal_task_async on purpose")
    }
    fn process_internal_task_sync(&self, _task: &SyncTask) -> ProcessOutcome {
        panic!("panicking in process_internal_task_sync on purpose")
    }
    fn get_external_object_id(&self, _o: &ObjectTranslation) -> Option<i64> {
        panic!("panicking in get_external_object_id on purpose")
    }
    fn get_external_document_id(&self, _d: &DocumentTranslation, _r: bool) -> Option<i64> {
        panic!("panicking in get_external_document_id on purpose")
    }
    fn prepare_internal_object(
        &self,
        _r: &connector_abi::PrepareInternalObjectRequest,
    ) -> Result<CmsObject, ConnectorError> {
        panic!("panicking in prepare_internal_object on purpose")
    }
    fn get_internal_object_params(&self, _id: i64, _t: &str) -> Option<ObjectParams> {
        panic!("panicking in get_internal_object_params on purpose")
    }
    fn get_internal_document_params(&self, _id: i64, _c: &str) -> Option<DocumentParams> {
        panic!("panicking in get_internal_document_params on purpose")
    }
    fn shutdown(&self) {
        panic!("panicking in shutdown on purpose")
    }
}

/// Does nothing, fast: for the benchmark. Subscribes to every object
/// (AsyncSimple); with config `signal`, tells the host (by an event) the ID
/// of each task it gets, so the benchmark can time delivery.
pub struct NoopConnector {
    host: Host,
    signal: bool,
    /// `sleep_ms=N` in the config: each call waits this long (a slow
    /// external system); `bulk`: a batch is one call that waits once.
    sleep: Option<std::time::Duration>,
    bulk: bool,
}

impl Connector for NoopConnector {
    fn create(config: &str, host: Host) -> Result<Self, ConnectorError> {
        let sleep = config
            .split_whitespace()
            .find_map(|w| w.strip_prefix("sleep_ms="))
            .map(|ms| ms.parse().map(std::time::Duration::from_millis))
            .transpose()
            .map_err(|e| ConnectorError::new(format!("sleep_ms: {e}")))?;
        Ok(NoopConnector {
            host,
            signal: config.contains("signal"),
            sleep,
            bulk: config.split_whitespace().any(|w| w == "bulk"),
        })
    }

    fn process_internal_tasks_async(&self, tasks: &[OutgoingTask]) -> Vec<ProcessOutcome> {
        if !self.bulk {
            return tasks.iter().map(|t| self.process_internal_task_async(t)).collect();
        }
        if let Some(sleep) = self.sleep {
            std::thread::sleep(sleep);
        }
        tasks.iter().map(|_| ProcessOutcome::ok()).collect()
    }

    fn init(&self, init: &mut Init) {
        init.set_connector_name(init.registry_name().to_owned());
        init.subscribe_to(Subscription::all_objects(TaskProcessType::AsyncSimple));
    }

    fn process_internal_task_async(&self, task: &OutgoingTask) -> ProcessOutcome {
        if let Some(sleep) = self.sleep {
            std::thread::sleep(sleep);
        }
        if self.signal {
            let _ = self.host.log_event(EventType::Information, "SEEN", &task.task_id.to_string(), None);
        }
        ProcessOutcome::ok()
    }
}

/// Makes a subscription that can never work (Snapshot for documents).
pub struct BadSubscriptionConnector;

impl Connector for BadSubscriptionConnector {
    fn create(_config: &str, _host: Host) -> Result<Self, ConnectorError> {
        Ok(BadSubscriptionConnector)
    }

    fn init(&self, init: &mut Init) {
        init.set_connector_name(init.registry_name().to_owned());
        init.subscribe_to(Subscription::all_documents(TaskProcessType::AsyncSnapshot));
    }
}

export_connectors!(
    EchoConnector,
    SecondConnector,
    PanickingConnector,
    BadSubscriptionConnector,
    ScriptedConnector,
    NoopConnector
);
