//! The `Open` exchange between the daemon and a connector host: what the
//! daemon asks the host to load, and the host's answer.

use super::Limits;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What the daemon asks the host to load (the body of an `Open` frame).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OpenRequest {
    /// The user's file (for messages).
    pub source: PathBuf,
    /// The content-addressed private copy the daemon checked.
    pub copy: PathBuf,
    pub class: String,
    pub config: String,
    /// The connector's registry name (for messages).
    pub name: String,
    pub limits: Limits,
}

/// The answer to `Open`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OpenAnswer {
    /// Why the class could not be created, in the loader's words.
    pub error: Option<String>,
}
