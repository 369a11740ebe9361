//! Management subcommands: they work on the database directly, also while a
//! daemon runs.

pub mod connector;
pub mod eventlog;
pub mod migrate;
pub mod schedule;
pub mod settings;
pub mod task;
