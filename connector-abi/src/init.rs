//! What a connector declares in `init`: its name and its subscriptions.

use crate::subscription::Subscription;
use crate::types::{TaskProcessType, TaskType};

/// Collects the connector name and subscriptions during [`crate::Connector::init`].
#[derive(Debug, Default)]
pub struct Init {
    registry_name: String,
    pub(crate) connector_name: Option<String>,
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) errors: Vec<String>,
}

impl Init {
    pub(crate) fn new(registry_name: String) -> Self {
        Init { registry_name, ..Default::default() }
    }

    /// The code name the registry uses for this connector. A class that
    /// several registry rows share can take its name from here.
    pub fn registry_name(&self) -> &str {
        &self.registry_name
    }

    /// Sets the connector name (the spec's `ConnectorName`). It must equal the
    /// code name the connector is registered with.
    pub fn set_connector_name(&mut self, name: impl Into<String>) {
        self.connector_name = Some(name.into());
    }

    /// Registers a subscription; one that can never work is refused and
    /// reported when the connector is loaded.
    pub fn subscribe_to(&mut self, subscription: Subscription) {
        match subscription.validate() {
            Ok(()) => self.subscriptions.push(subscription),
            Err(e) => self.errors.push(format!("{subscription} refused: {e}")),
        }
    }

    /// Objects of `object_type` (wildcards allowed), every task type.
    pub fn subscribe_to_objects(&mut self, process_type: TaskProcessType, object_type: &str) {
        self.subscribe_to(Subscription::objects(process_type, object_type));
    }

    /// Every object, for one task type (or `All`).
    pub fn subscribe_to_all_objects(&mut self, process_type: TaskProcessType, task_type: TaskType) {
        self.subscribe_to(Subscription::all_objects(process_type).task_type(task_type));
    }

    /// Documents under `alias_path` (wildcards allowed), every task type.
    pub fn subscribe_to_documents(&mut self, process_type: TaskProcessType, alias_path: &str) {
        self.subscribe_to(Subscription::documents(process_type, alias_path));
    }

    /// Every document on every site, for one task type (or `All`).
    pub fn subscribe_to_all_documents(&mut self, process_type: TaskProcessType, task_type: TaskType) {
        self.subscribe_to(Subscription::all_documents(process_type).task_type(task_type));
    }
}
