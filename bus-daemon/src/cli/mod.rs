//! Management subcommands: they work on the database directly, also while a
//! daemon runs — except `connector replay` and `connector new`, which need none.

pub mod connector;
pub mod eventlog;
pub mod migrate;
pub mod replay;
pub mod scaffold;
pub mod schedule;
pub mod settings;
pub mod task;
