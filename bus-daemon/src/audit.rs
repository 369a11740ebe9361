//! Management actions in the event log, with who did them and from where
//! (as the specification's event-log screen shows them): registry edits,
//! settings changes, synchronizing and deleting tasks, scheduled-task runs
//! and changes — from the HTTP API (the configured `auth_user` and the
//! client's address) and from the command line (`cli`).

use bus_core::eventlog::{Actor, EventLog, NewEvent, BUS_SOURCE};
use connector_abi::EventType;

/// The source of connector registry edits.
pub const CONNECTOR_SOURCE: &str = "Integration connector";
/// The source of settings changes (as in the specification's screen).
pub const SETTINGS_SOURCE: &str = "Settings key";
/// The source of scheduled-task runs and changes.
pub const SCHEDULER_SOURCE: &str = "Scheduled task";

/// What was done.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    CreateConnector,
    UpdateConnector,
    DeleteConnector,
    UpdateSettings,
    SynchronizeAll,
    SynchronizeSelected,
    SynchronizeOne,
    DeleteAll,
    DeleteSelected,
    DeleteOne,
    RunScheduledTask,
    UpdateScheduledTask,
}

impl Action {
    fn source_and_code(self) -> (&'static str, &'static str) {
        match self {
            Action::CreateConnector => (CONNECTOR_SOURCE, "CREATEOBJ"),
            Action::UpdateConnector => (CONNECTOR_SOURCE, "UPDATEOBJ"),
            Action::DeleteConnector => (CONNECTOR_SOURCE, "DELETEOBJ"),
            Action::UpdateSettings => (SETTINGS_SOURCE, "UPDATEOBJ"),
            Action::SynchronizeAll => (BUS_SOURCE, "SYNCALLTASKSMULTIPLE"),
            Action::SynchronizeSelected => (BUS_SOURCE, "SYNCSELECTEDTASKS"),
            Action::SynchronizeOne => (BUS_SOURCE, "SYNCTASK"),
            Action::DeleteAll => (BUS_SOURCE, "DELETEALLTASKS"),
            Action::DeleteSelected => (BUS_SOURCE, "DELETESELECTEDTASKS"),
            Action::DeleteOne => (BUS_SOURCE, "DELETETASK"),
            Action::RunScheduledTask => (SCHEDULER_SOURCE, "RUNTASK"),
            Action::UpdateScheduledTask => (SCHEDULER_SOURCE, "UPDATEOBJ"),
        }
    }
}

/// Writes one management action to the event log (a failure to write is
/// logged, never the action's failure).
pub fn record(events: &EventLog, actor: &Actor, action: Action, description: &str) {
    let (source, code) = action.source_and_code();
    events.write_or_warn(&NewEvent {
        event_type: EventType::Information,
        source,
        code,
        description,
        document_name: None,
        actor: Some(actor),
    });
}
