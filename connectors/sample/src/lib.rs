//! The sample integration connector: subscribes to every user object
//! (AsyncSnapshot) and every document on every site (AsyncSimpleSnapshot), and
//! writes one event-log row per task it processes. It exists to show the bus
//! working end to end and as a template for real connectors.

use connector_abi::prelude::*;

pub struct SampleIntegrationConnector {
    host: Host,
}

impl Connector for SampleIntegrationConnector {
    fn create(_config: &str, host: Host) -> Result<Self, ConnectorError> {
        Ok(SampleIntegrationConnector { host })
    }

    fn init(&self, init: &mut Init) {
        init.set_connector_name("SampleIntegrationConnector");
        init.subscribe_to(Subscription::objects(TaskProcessType::AsyncSnapshot, "cms.user"));
        init.subscribe_to(Subscription::all_documents(TaskProcessType::AsyncSimpleSnapshot));
    }

    fn process_object_async(&self, object: &ObjectData, task: &OutgoingTask) -> ProcessOutcome {
        let description = format!("{} {} '{}'", task.task_type, object.object_type, object.code_name);
        self.log(task.task_type, &description, None)
    }

    fn process_document_async(&self, document: &DocumentData, task: &OutgoingTask) -> ProcessOutcome {
        let description = format!("{} {} ({})", task.task_type, document.node_alias_path, document.culture);
        self.log(task.task_type, &description, Some(&document.name))
    }
}

impl SampleIntegrationConnector {
    fn log(&self, task_type: TaskType, description: &str, document_name: Option<&str>) -> ProcessOutcome {
        match self.host.log_event(EventType::Information, task_type.event_code(), description, document_name) {
            Ok(()) => ProcessOutcome::ok(),
            Err(e) => ProcessOutcome::error(format!("could not write to the event log: {e}")),
        }
    }
}

export_connectors!(SampleIntegrationConnector);
