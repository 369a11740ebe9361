//! The HTTP API (JSON). Routes and their contract are fixed by DESIGN.md.

mod auth;
mod caller;
pub mod cluster;
pub mod cluster_auth;
mod connections;
mod connectors;
mod content;
pub mod error;
mod eventlog;
pub mod events;
mod grid;
pub mod guard;
mod health;
mod history;
mod incoming;
mod metrics;
mod openapi;
pub mod request_metrics;
mod routes;
mod schedule;
mod schema_shape;
pub mod server;
mod settings;
mod state;
mod tasks;
mod ui;

use axum::Router;
use bus_core::db::Database;
use bus_core::eventlog::EventLog;
use bus_core::incoming::Incoming;
use bus_core::manager::ConnectorManager;
use bus_core::metrics::Metrics;
use bus_core::pipeline::Pipeline;
use bus_core::registry::Registry;
use bus_core::scheduler::Scheduler;
use bus_core::worker::Workers;
use error::ApiError;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub registry: Registry,
    pub events: Arc<EventLog>,
    pub manager: Arc<ConnectorManager>,
    pub outgoing: Arc<Workers>,
    pub pipeline: Arc<Pipeline>,
    pub incoming: Arc<Incoming>,
    pub scheduler: Arc<Scheduler>,
    pub metrics: Arc<Metrics>,
    /// When set, the API needs this token (see `auth.rs`).
    pub auth_token: Option<Arc<str>>,
    /// The user name management actions are logged under.
    pub auth_user: Arc<str>,
    /// Host, origin, body and storage protections (see `guard.rs`).
    pub protection: Arc<guard::Protection>,
    /// Failed logins per client (see `auth.rs`).
    pub logins: Arc<auth::LoginLimiter>,
    /// Served over TLS: the session cookie is `Secure`.
    pub tls: bool,
    /// The largest request body accepted.
    pub max_request_bytes: usize,
    /// Requests by route, method and status (see `request_metrics.rs`).
    pub requests: Arc<request_metrics::RequestMetrics>,
    /// Checks the signature of calls routed here by the cluster's daemons
    /// (see `cluster_auth.rs`).
    pub cluster_calls: Arc<cluster_auth::CallAuth>,
    /// What changed, for `GET /api/events` (see `events.rs`).
    pub changes: Arc<events::Changes>,
}

pub fn router(state: AppState) -> Router {
    routes::table()
        .into_iter()
        .fold(Router::new(), |router, r| router.route(r.path, r.handler))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "this route does not accept that method")
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard))
        .layer(axum::extract::DefaultBodyLimit::max(state.max_request_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(axum::middleware::from_fn_with_state(state.requests.clone(), request_metrics::count))
        .with_state(state)
}
