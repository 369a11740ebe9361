//! The example connector of `connector-abi/README.md`, word for word below
//! this header (a test keeps the two equal): it builds, loads and delivers.

use connector_abi::prelude::*;

pub struct AcmeCrm {
    host: Host,
    endpoint: String,
}

impl Connector for AcmeCrm {
    /// `config` is the registry's ConnectorConfig text (here: the endpoint).
    fn create(config: &str, host: Host) -> Result<Self, ConnectorError> {
        if config.trim().is_empty() {
            return Err("set ConnectorConfig to the CRM endpoint".into());
        }
        Ok(AcmeCrm { host, endpoint: config.trim().to_owned() })
    }

    /// The name must equal the code name the connector is registered with.
    fn init(&self, init: &mut Init) {
        init.set_connector_name("AcmeCrm");
        init.subscribe_to(Subscription::objects(TaskProcessType::AsyncSimpleSnapshot, "cms.user"));
        init.subscribe_to(Subscription::documents(TaskProcessType::AsyncSimple, "/Products/%").culture("en-%"));
    }

    fn process_object_async(&self, user: &ObjectData, task: &OutgoingTask) -> ProcessOutcome {
        // Translate foreign keys to CRM IDs with the data logged with the task.
        let mut object = task.object.clone();
        if let Err(e) = translate_columns_to_external(self, &mut object, &task.translations, false) {
            return ProcessOutcome::error_and_skip(e.to_string());
        }
        match push_to_crm(&self.endpoint, task.task_type, &object) {
            Ok(()) => ProcessOutcome::ok(),
            // Error stops this connector's queue; the task is retried later.
            Err(e) => {
                let _ = self.host.log_event(EventType::Warning, "CRMDOWN", &e, None);
                ProcessOutcome::error(format!("CRM unreachable while sending {}: {e}", user.code_name))
            }
        }
    }

    /// Documents of the subscription above (the default would refuse them
    /// with Error, which stops the queue).
    fn process_document_async(&self, page: &DocumentData, task: &OutgoingTask) -> ProcessOutcome {
        match push_to_crm(&self.endpoint, task.task_type, &task.object) {
            Ok(()) => ProcessOutcome::ok(),
            Err(e) => ProcessOutcome::error(format!("CRM unreachable while sending {}: {e}", page.node_alias_path)),
        }
    }

    /// Called by the translation helper for every foreign key to an object.
    fn get_external_object_id(&self, object: &ObjectTranslation) -> Option<i64> {
        lookup_crm_id(&self.endpoint, &object.object_type, &object.code_name)
    }
}

export_connectors!(AcmeCrm);

// Your CRM client goes here.
fn push_to_crm(_endpoint: &str, _task_type: TaskType, _object: &CmsObject) -> Result<(), String> {
    Ok(())
}
fn lookup_crm_id(_endpoint: &str, _object_type: &str, _code_name: &str) -> Option<i64> {
    None
}

#[cfg(test)]
mod tests; // src/tests.rs: "Testing your connector without the daemon"
