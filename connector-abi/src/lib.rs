//! The connector ABI and SDK of the integration bus.
//!
//! A connector is a `cdylib` crate that implements [`Connector`] for one or
//! more types and exports them with [`export_connectors!`]. The host loads
//! the library, creates a connector per registry row, and talks to it through
//! JSON documents over a frozen binary surface ([`abi`]), so a connector built
//! today keeps loading in tomorrow's host. See `README.md` of this crate.

#![deny(missing_docs)]

pub mod abi;
mod connector;
pub mod data;
#[doc(hidden)]
pub mod export;
mod host;
mod init;
mod panic;
pub mod protocol;
pub mod subscription;
mod translate;
pub mod types;
pub mod wildcard;

pub use connector::{Connector, ConnectorError, ProcessOutcome};
pub use data::{CmsObject, DocumentData, DocumentTranslation, ObjectData, ObjectRef, ObjectTranslation, Translations};
pub use host::Host;
pub use init::Init;
pub use panic::panic_message;
pub use protocol::{
    CallFailure, DocumentParams, ObjectParams, OutgoingTask, PrepareInternalObjectRequest, ProcessResponse, SyncTask,
};
pub use subscription::{Subscription, GLOBAL_OBJECTS};
pub use translate::{translate_columns_to_external, Untranslated, DOCUMENT_NODE, DOCUMENT_VERSION};
pub use types::{EventType, IntegrationProcessResult, IntegrationProcessType, TaskDataType, TaskProcessType, TaskType};

/// Everything a connector usually needs: `use connector_abi::prelude::*;`
pub mod prelude {
    pub use crate::{
        export_connectors, translate_columns_to_external, CmsObject, Connector, ConnectorError, DocumentData,
        DocumentParams, DocumentTranslation, EventType, Host, Init, IntegrationProcessResult, IntegrationProcessType,
        ObjectData, ObjectParams, ObjectTranslation, OutgoingTask, PrepareInternalObjectRequest, ProcessOutcome,
        Subscription, SyncTask, TaskDataType, TaskProcessType, TaskType,
    };
}
