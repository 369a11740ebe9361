//! The integration bus engine: everything that is not the HTTP framework.
//!
//! - [`db`]: the SQLite database and its schema;
//! - [`registry`]: the `Integration_Connector` table;
//! - [`loader`]: from a registry row to a live connector (the only place
//!   that touches dynamic libraries);
//! - [`connector`]: a live connector and typed calls into it;
//! - [`host`] / [`services`]: what connectors may ask of the bus;
//! - [`manager`] / [`watch`]: the live set, reinitialized on every registry
//!   or library change;
//! - [`eventlog`]: the event log.

#![deny(unsafe_code)]
#![warn(unreachable_pub)]

mod backend;
pub mod change;
mod checkpoint;
pub mod cluster;
pub mod connector;
pub mod connector_host;
pub mod db;
pub mod delivery;
mod driver;
/// The storage drivers' conformance suite (for the tests of every engine).
#[doc(hidden)]
pub use driver::conformance as driver_conformance;
pub mod engine;
pub mod eventlog;
pub mod export;
pub mod grid;
pub mod history;
pub mod host;
pub mod incoming;
pub mod isolation;
pub mod json_int;
mod lane;
mod library;
pub mod loader;
pub mod manager;
pub mod metrics;
pub mod object_types;
mod outgoing;
pub mod pipeline;
pub mod queue;
pub mod queue_admin;
mod queue_rows;
mod rate_limit;
pub mod registry;
pub mod replay;
pub mod scheduler;
mod services;
pub mod settings;
pub mod sql;
mod start_by;
pub mod state_store;
pub mod storage;
pub mod store;
pub mod task_grid;
mod task_result;
#[cfg(test)]
mod testing;
pub mod text;
mod watch;
pub mod worker;
