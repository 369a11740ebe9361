//! Tests for a connector crate, without a daemon.
//!
//! A [`TestBus`] is the integration bus inside the test process: the
//! daemon's own engine — content store, change pipeline and outbox, workers
//! and their result table, incoming logging and applying, event log, the
//! state the bus keeps for connectors — on a SQLite database held in
//! memory (nothing to install, no file, gone with the bus). The connectors
//! are created from their Rust types, so no library is built or loaded,
//! and they get the tasks the bus itself builds: every data mode, the
//! snapshot's children and bindings, the translation data.
//!
//! Nothing runs by itself: a change waits in the queues until the test
//! calls [`TestBus::deliver`], an incoming task until
//! [`TestBus::process_incoming`]; each call returns when it is done, with
//! the outcome of every task.
//!
//! Add it to the connector crate's `[dev-dependencies]` (by path, from the
//! bus's source tree, like `connector-abi`), then:
//!
//! ```
//! use connector_abi::prelude::*;
//! use connector_harness::{json, TaskResult, TestBus};
//!
//! struct Hello {
//!     host: Host,
//! }
//!
//! impl Connector for Hello {
//!     fn create(_config: &str, host: Host) -> Result<Self, ConnectorError> {
//!         Ok(Hello { host })
//!     }
//!     fn init(&self, init: &mut Init) {
//!         init.set_connector_name("Hello");
//!         init.subscribe_to(Subscription::objects(TaskProcessType::AsyncSimple, "cms.user"));
//!     }
//!     fn process_object_async(&self, user: &ObjectData, _task: &OutgoingTask) -> ProcessOutcome {
//!         let _ = self.host.log_event(EventType::Information, "HELLO", &user.code_name, None);
//!         ProcessOutcome::ok()
//!     }
//! }
//!
//! let bus = TestBus::with::<Hello>("Hello", "")?;
//! bus.apply(json!({"op": "create_object", "object_type": "cms.user", "object": {"code_name": "ann"}}))?;
//! assert_eq!(bus.queued("Hello")?[0].title, "Create User 'ann'");
//! let outcomes = bus.deliver("Hello")?;
//! assert_eq!(outcomes[0].result, TaskResult::Ok);
//! assert_eq!(bus.events_from("Hello")?[0].description, "ann");
//! # Ok::<(), connector_harness::HarnessError>(())
//! ```

mod bus;
mod error;

pub use bus::{Builder, IncomingTask, TestBus};
/// The bus's own types, for what the harness's answers and errors carry.
pub use bus_core;
pub use bus_core::delivery::{DeliverySettings, Ordering};
pub use bus_core::eventlog::Event;
pub use bus_core::pipeline::ChangeResult;
pub use bus_core::settings::SettingsPatch;
pub use bus_core::worker::{TaskOutcome, TaskResult};
pub use error::HarnessError;
pub use serde_json::json;
#[cfg(test)]
mod tests;
