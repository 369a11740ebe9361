//! `EchoConnector`: a configurable connector for the integration tests,
//! compiled into two builds (`BUILD` 1 and 2) to test library replacement.
//!
//! Config text: `key=value` pairs separated by `;`:
//! - `name=X`: report X as the connector name (default: the registry's name);
//! - `log_on_init`: write an `INIT` event (description `build N`) at init;
//! - `log_on_shutdown`: write a `SHUTDOWN` event at shutdown;
//! - `fail_create=message`: refuse to be created.

use super::BUILD;
use connector_abi::prelude::*;

pub struct EchoConnector {
    host: Host,
    options: Vec<(String, String)>,
}

fn parse(config: &str) -> Vec<(String, String)> {
    config
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

impl EchoConnector {
    fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl Connector for EchoConnector {
    fn create(config: &str, host: Host) -> Result<Self, ConnectorError> {
        let options = parse(config);
        if let Some((_, why)) = options.iter().find(|(k, _)| k == "fail_create") {
            return Err(ConnectorError(format!("refusing to start: {why}")));
        }
        Ok(EchoConnector { host, options })
    }

    fn init(&self, init: &mut Init) {
        let name = self.option("name").map(str::to_owned).unwrap_or_else(|| init.registry_name().to_owned());
        init.set_connector_name(name);
        init.subscribe_to(Subscription::objects(TaskProcessType::AsyncSimple, "cms.user"));
        if BUILD >= 2 {
            init.subscribe_to(Subscription::all_documents(TaskProcessType::AsyncSimpleSnapshot));
        }
        if self.option("log_on_init").is_some() {
            let _ = self.host.log_event(EventType::Information, "INIT", &format!("build {BUILD}"), None);
        }
    }

    fn process_internal_task_async(&self, task: &OutgoingTask) -> ProcessOutcome {
        let _ = self.host.log_event(
            EventType::Information,
            task.task_type.event_code(),
            &format!("build {BUILD} task {}", task.task_id),
            None,
        );
        ProcessOutcome::ok()
    }

    fn get_external_object_id(&self, object: &ObjectTranslation) -> Option<i64> {
        Some(i64::from(BUILD) * 1000 + object.id)
    }

    fn shutdown(&self) {
        if self.option("log_on_shutdown").is_some() {
            let _ = self.host.log_event(EventType::Information, "SHUTDOWN", &format!("build {BUILD}"), None);
        }
    }
}
