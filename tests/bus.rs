//! Black-box tests of the integration bus: real daemon processes, real
//! connector cdylibs loaded through the real loader.

#[path = "cases/api.rs"]
mod api;
#[path = "cases/author.rs"]
mod author;
#[path = "cases/boundary.rs"]
mod boundary;
#[path = "cases/cli.rs"]
mod cli;
#[path = "cases/cluster.rs"]
mod cluster;
#[path = "cases/content.rs"]
mod content;
#[path = "cases/contract.rs"]
mod contract;
#[path = "cases/crm.rs"]
mod crm;
#[path = "cases/delivery.rs"]
mod delivery;
#[path = "cases/docs.rs"]
mod docs;
#[path = "cases/drivers.rs"]
mod drivers;
#[path = "cases/faults.rs"]
mod faults;
#[path = "cases/hardening.rs"]
mod hardening;
#[path = "cases/incoming.rs"]
mod incoming;
#[path = "cases/isolation.rs"]
mod isolation;
#[path = "cases/loading.rs"]
mod loading;
#[path = "cases/migrate.rs"]
mod migrate;
#[path = "cases/observability.rs"]
mod observability;
#[path = "cases/operations.rs"]
mod operations;
#[path = "cases/outgoing.rs"]
mod outgoing;
#[path = "cases/sample.rs"]
mod sample;
#[path = "cases/security.rs"]
mod security;
#[path = "cases/server.rs"]
mod server;
#[path = "cases/tidy.rs"]
mod tidy;
#[path = "cases/trust.rs"]
mod trust;
#[path = "cases/ui.rs"]
mod ui;
#[path = "cases/watch.rs"]
mod watch;
#[path = "cases/webhook.rs"]
mod webhook;
