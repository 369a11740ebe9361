//! Why a harness step failed, in the words the bus would use.

use thiserror::Error;

/// A step of a [`crate::TestBus`] that did not happen; the message says why.
#[derive(Debug, Error)]
pub enum HarnessError {
    /// The bus in the test could not start.
    #[error("the test bus could not start: {0}")]
    Start(#[from] bus_core::engine::EngineError),
    /// A connector did not load (its `create` or `init` failed, it reported
    /// another name, its subscriptions were refused).
    #[error("connector `{connector}` did not load: {cause}")]
    Load { connector: String, cause: String },
    /// The object types given to the builder are not valid.
    #[error("the object types are not valid: {0}")]
    ObjectTypes(String),
    /// The name given is not one of the connectors added to the bus.
    #[error(
        "no connector `{0}` was added to the test bus (add it with TestBus::builder().connector::<T>(name, config))"
    )]
    UnknownConnector(String),
    /// The change is not one the API accepts.
    #[error("the change is not valid: {0}")]
    BadChange(String),
    /// The bus refused the change (nothing of it was written).
    #[error(transparent)]
    Change(#[from] bus_core::pipeline::ChangeError),
    /// The bus refused an incoming task.
    #[error(transparent)]
    Incoming(#[from] bus_core::incoming::IncomingError),
    /// Processing a queue was refused.
    #[error(transparent)]
    Synchronize(#[from] bus_core::worker::SynchronizeError),
    /// A call into the connector failed (it panicked, or ran past its
    /// deadline).
    #[error("the call into `{connector}` failed: {cause}")]
    Call { connector: String, cause: String },
    /// Reading the bus's tables failed.
    #[error("the test bus could not read its data: {0}")]
    Read(String),
}
