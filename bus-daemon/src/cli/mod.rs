//! Management subcommands: they work on the database directly, also while a
//! daemon runs — except `connector replay`, which needs none.

pub mod connector;
pub mod eventlog;
pub mod migrate;
pub mod replay;
pub mod schedule;
pub mod settings;
pub mod task;
