//! The content store: the objects and documents the bus keeps in sync.
//! Every function works inside the caller's transaction, so a change and the
//! tasks it causes commit together.

pub(crate) mod ahead;
pub mod documents;
mod guid;
pub mod objects;
pub(crate) mod snapshot;
pub(crate) mod translation;

use thiserror::Error;

/// Why a change of the content store was refused. Every message says what
/// is wrong in terms of the request.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("unknown object type `{name}`; known types: {known}")]
    UnknownObjectType { name: String, known: String },
    #[error("unknown document class `{name}`; known classes: {known}")]
    UnknownDocumentClass { name: String, known: String },
    /// The request is malformed or breaks a rule (→ 422).
    #[error("{0}")]
    Invalid(String),
    /// The object or document does not exist (→ 404).
    #[error("{0}")]
    NotFound(String),
    /// Another object already has that identity (→ 409).
    #[error("{0}")]
    Duplicate(String),
    /// The change conflicts with other data, e.g. a referenced object (→ 409).
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Sql(#[from] crate::sql::SqlError),
}

impl StoreError {
    /// Whether the statement just made hit a unique key (a deferred write
    /// that failed, alone or sent with others, is another change's: see
    /// `store/ahead.rs`).
    pub(crate) fn unique_violation(e: &crate::sql::SqlError) -> bool {
        e.kind() == crate::sql::ErrorKind::Constraint && e.deferred_tag().is_none() && !e.rows_sent_together()
    }
}

/// Checks a code name or a document name: 1 to 200 characters, no control
/// characters.
pub(crate) fn check_name(what: &str, value: &str) -> Result<(), StoreError> {
    if crate::text::is_blank(value) {
        return Err(StoreError::Invalid(format!("{what} is missing or empty")));
    }
    if value.chars().count() > crate::text::MAX_NAME {
        return Err(StoreError::Invalid(format!("{what} is longer than {} characters", crate::text::MAX_NAME)));
    }
    if crate::text::has_control(value) {
        return Err(StoreError::Invalid(format!("{what} contains a control character")));
    }
    Ok(())
}

/// Parses a JSON text column into a field map.
pub(crate) fn parse_fields(text: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(text).unwrap_or_default()
}

/// What a `null` among a patch's fields means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    /// It removes the field (JSON Merge Patch): the API's and the UI's
    /// updates, where a removed or cleared field is sent as `null`.
    Remove,
    /// It is stored as `null`: a connector's object applied as it sent it
    /// (as its create stores it).
    Keep,
}

/// Applies a patch's `changes` to `fields`: a value replaces or adds its
/// field; a `null` does what `nulls` says.
pub(crate) fn merge_fields(
    fields: &mut serde_json::Map<String, serde_json::Value>,
    changes: serde_json::Map<String, serde_json::Value>,
    nulls: Nulls,
) {
    for (key, value) in changes {
        if value.is_null() && nulls == Nulls::Remove {
            fields.remove(&key);
        } else {
            fields.insert(key, value);
        }
    }
}
