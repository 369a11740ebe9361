//! The enumerations of the integration bus (the spec's "Important types").

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What happened to an object or document (outgoing), or what must happen to
/// it (incoming). `All` only makes sense in a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TaskType {
    /// An object is created.
    CreateObject,
    /// An existing object is changed.
    UpdateObject,
    /// An object is deleted; the task carries the object as it was before.
    DeleteObject,
    /// An object is assigned to a site; the task's `site_name` is that site.
    AddToSite,
    /// An object is removed from a site; the task's `site_name` is that site.
    RemoveFromSite,
    /// A document is created: a new node, or a new culture version of an
    /// existing node.
    CreateDocument,
    /// A document's name or fields are changed.
    UpdateDocument,
    /// A culture version of a document is deleted (with its node, when it was
    /// the last version); the task carries it as it was before.
    DeleteDocument,
    /// A document is published (`published` set, `archived` cleared).
    PublishDocument,
    /// A document is archived (`archived` set, `published` cleared).
    ArchiveDocument,
    /// Every task type; valid only in a subscription (an incoming task with it
    /// is refused).
    All,
}

impl TaskType {
    /// Every variant, `All` included, in declaration order.
    pub const ALL_VALUES: [TaskType; 11] = [
        TaskType::CreateObject,
        TaskType::UpdateObject,
        TaskType::DeleteObject,
        TaskType::AddToSite,
        TaskType::RemoveFromSite,
        TaskType::CreateDocument,
        TaskType::UpdateDocument,
        TaskType::DeleteDocument,
        TaskType::PublishDocument,
        TaskType::ArchiveDocument,
        TaskType::All,
    ];

    /// The short code shown in task lists (`CREATEOBJ`, `UPDATEDOC`, ...).
    pub fn code(self) -> &'static str {
        match self {
            TaskType::CreateObject => "CREATEOBJ",
            TaskType::UpdateObject => "UPDATEOBJ",
            TaskType::DeleteObject => "DELETEOBJ",
            TaskType::AddToSite => "ADDTOSITE",
            TaskType::RemoveFromSite => "REMOVEFROMSITE",
            TaskType::CreateDocument => "CREATEDOC",
            TaskType::UpdateDocument => "UPDATEDOC",
            TaskType::DeleteDocument => "DELETEDOC",
            TaskType::PublishDocument => "PUBLISHDOC",
            TaskType::ArchiveDocument => "ARCHIVEDOC",
            TaskType::All => "ALL",
        }
    }

    /// The code a connector writes to the event log for this task type
    /// (`CREATEOBJECT`, `UPDATEDOCUMENT`, ...).
    pub fn event_code(self) -> &'static str {
        match self {
            TaskType::CreateObject => "CREATEOBJECT",
            TaskType::UpdateObject => "UPDATEOBJECT",
            TaskType::DeleteObject => "DELETEOBJECT",
            TaskType::AddToSite => "ADDTOSITE",
            TaskType::RemoveFromSite => "REMOVEFROMSITE",
            TaskType::CreateDocument => "CREATEDOCUMENT",
            TaskType::UpdateDocument => "UPDATEDOCUMENT",
            TaskType::DeleteDocument => "DELETEDOCUMENT",
            TaskType::PublishDocument => "PUBLISHDOCUMENT",
            TaskType::ArchiveDocument => "ARCHIVEDOCUMENT",
            TaskType::All => "ALL",
        }
    }

    /// True for the task types that concern documents.
    pub fn is_document(self) -> bool {
        matches!(
            self,
            TaskType::CreateDocument
                | TaskType::UpdateDocument
                | TaskType::DeleteDocument
                | TaskType::PublishDocument
                | TaskType::ArchiveDocument
        )
    }

    /// True for the task types that concern objects.
    pub fn is_object(self) -> bool {
        !self.is_document() && self != TaskType::All
    }
}

/// When and with how much data an outgoing change reaches a connector.
/// Declared from the lowest to the highest priority (see [`Self::priority`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TaskProcessType {
    /// Queued and delivered later on the connector's own thread, with the
    /// item's own data only (Simple).
    AsyncSimple,
    /// Queued, with translation data for the foreign keys (SimpleSnapshot).
    AsyncSimpleSnapshot,
    /// Queued, with translation data plus children and bindings (Snapshot); for
    /// objects only.
    AsyncSnapshot,
    /// Delivered at once, inside the request that made the change, right after
    /// it commits; objects come with their children and bindings, but there is
    /// no translation data.
    SyncSnapshot,
}

impl TaskProcessType {
    /// When one connector has several matching subscriptions, the one with the
    /// highest priority wins: SyncSnapshot > AsyncSnapshot >
    /// AsyncSimpleSnapshot > AsyncSimple.
    pub fn priority(self) -> u8 {
        match self {
            TaskProcessType::AsyncSimple => 0,
            TaskProcessType::AsyncSimpleSnapshot => 1,
            TaskProcessType::AsyncSnapshot => 2,
            TaskProcessType::SyncSnapshot => 3,
        }
    }

    /// True for `SyncSnapshot`, the only process type delivered synchronously.
    pub fn is_sync(self) -> bool {
        self == TaskProcessType::SyncSnapshot
    }

    /// The data mode this process type carries.
    pub fn data_type(self) -> TaskDataType {
        match self {
            TaskProcessType::AsyncSimple => TaskDataType::Simple,
            TaskProcessType::AsyncSimpleSnapshot => TaskDataType::SimpleSnapshot,
            TaskProcessType::AsyncSnapshot | TaskProcessType::SyncSnapshot => TaskDataType::Snapshot,
        }
    }
}

/// How much data travels with a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TaskDataType {
    /// The object's or document's own fields.
    Simple,
    /// Plus translation data for every foreign key.
    SimpleSnapshot,
    /// Plus children and bindings (objects only).
    Snapshot,
}

impl TaskDataType {
    /// True when tasks of this data type carry translation data (SimpleSnapshot
    /// and Snapshot).
    pub fn has_translations(self) -> bool {
        self != TaskDataType::Simple
    }
    /// True when objects come with their children and bindings (Snapshot only).
    pub fn has_children(self) -> bool {
        self == TaskDataType::Snapshot
    }
}

/// What a connector reports after processing an outgoing task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum IntegrationProcessResult {
    /// Processed; go on.
    Ok,
    /// Critical error: stop (this connector's queue when async, everything when sync).
    Error,
    /// Non-critical error: record it and go on.
    ErrorAndSkip,
    /// Leave the task for the next run and go on.
    SkipNow,
}

/// How an incoming task is to be processed and what happens on error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum IntegrationProcessType {
    /// Process now; on error stop and mark the task `Error`.
    #[default]
    Default,
    /// Skip this run, then behave as `Default`.
    SkipOnce,
    /// Process now; on error skip the task and go on.
    SkipOnError,
    /// Process now; on error delete the task and go on.
    DeleteOnError,
    /// A task that failed critically: processing stops at it.
    Error,
}

/// The severity of an event-log row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum EventType {
    /// Information (`I`).
    #[default]
    Information,
    /// A warning (`W`).
    Warning,
    /// An error (`E`).
    Error,
}

impl EventType {
    /// The one-letter code the event log shows (`I`, `W`, `E`).
    pub fn code(self) -> &'static str {
        match self {
            EventType::Information => "I",
            EventType::Warning => "W",
            EventType::Error => "E",
        }
    }
}

/// A value that is not one of an enumeration's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// The enumeration's type name, e.g. `TaskType`.
    pub enumeration: &'static str,
    /// The text that was parsed.
    pub value: String,
    /// The accepted names, comma-separated.
    pub expected: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a {}; expected one of: {}", self.value, self.enumeration, self.expected)
    }
}

impl std::error::Error for UnknownValue {}

/// Implements `Display` (the variant name) and `FromStr` (the variant name,
/// case-insensitive) for the enumerations above, through serde so the names
/// stay the ones the documents use.
macro_rules! name_conversions {
    ($($ty:ident => [$($variant:ident),+]),+ $(,)?) => {$(
        impl $ty {
            /// The variant name, as documents and the database spell it.
            pub fn name(&self) -> &'static str {
                match self { $($ty::$variant => stringify!($variant)),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl FromStr for $ty {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(if s.eq_ignore_ascii_case(stringify!($variant)) { return Ok($ty::$variant); })+
                Err(UnknownValue {
                    enumeration: stringify!($ty),
                    value: s.to_owned(),
                    expected: [$(stringify!($variant)),+].join(", "),
                })
            }
        }
    )+};
}

name_conversions! {
    TaskType => [CreateObject, UpdateObject, DeleteObject, AddToSite, RemoveFromSite,
        CreateDocument, UpdateDocument, DeleteDocument, PublishDocument, ArchiveDocument, All],
    TaskProcessType => [AsyncSimple, AsyncSimpleSnapshot, AsyncSnapshot, SyncSnapshot],
    TaskDataType => [Simple, SimpleSnapshot, Snapshot],
    IntegrationProcessResult => [Ok, Error, ErrorAndSkip, SkipNow],
    IntegrationProcessType => [Default, SkipOnce, SkipOnError, DeleteOnError, Error],
    EventType => [Information, Warning, Error],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for t in TaskType::ALL_VALUES {
            assert_eq!(t.to_string().to_lowercase().parse::<TaskType>().unwrap(), t);
        }
        let err = "CreateThing".parse::<TaskType>().unwrap_err();
        assert!(err.to_string().contains("CreateObject"), "{err}");
    }

    #[test]
    fn priority_follows_the_spec() {
        use TaskProcessType::*;
        let mut all = [AsyncSimple, SyncSnapshot, AsyncSimpleSnapshot, AsyncSnapshot];
        all.sort_by_key(|p| std::cmp::Reverse(p.priority()));
        assert_eq!(all, [SyncSnapshot, AsyncSnapshot, AsyncSimpleSnapshot, AsyncSimple]);
    }
}
