//! The HTTP API (JSON). Routes and their contract are fixed by DESIGN.md.

mod auth;
mod caller;
mod connectors;
mod content;
pub mod error;
mod eventlog;
mod grid;
pub mod guard;
mod health;
mod incoming;
mod metrics;
mod openapi;
mod schedule;
pub mod server;
mod settings;
mod tasks;
mod ui;

use axum::routing::{get, post};
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
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/api/login", post(auth::login))
        .route("/api/logout", post(auth::logout))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/app.css", get(ui::style))
        .route("/api/tasks/outgoing/count", get(tasks::count_outgoing))
        .route("/api/tasks/incoming/count", get(tasks::count_incoming))
        .route("/api/connectors", get(connectors::list).post(connectors::create))
        .route("/api/connectors/{name}", get(connectors::get).put(connectors::update).delete(connectors::delete))
        .route("/api/connectors/{name}/incoming", post(incoming::log))
        .route("/api/integration/notify", post(incoming::notify))
        .route("/api/scheduled-tasks", get(schedule::list))
        .route("/api/scheduled-tasks/{name}", get(schedule::get).put(schedule::update))
        .route("/api/scheduled-tasks/{name}/execute", post(schedule::execute))
        .route("/api/settings", get(settings::get).put(settings::put))
        .route("/api/object-types", get(content::object_types))
        .route("/api/objects/{type}", get(content::list_objects).post(content::create_object))
        .route(
            "/api/objects/{type}/{id}",
            get(content::get_object).put(content::update_object).delete(content::delete_object),
        )
        .route("/api/objects/{type}/{id}/sites/{site}", post(content::add_to_site).delete(content::remove_from_site))
        .route("/api/documents", get(content::list_documents).post(content::create_document))
        .route(
            "/api/documents/{id}",
            get(content::get_document).put(content::update_document).delete(content::delete_document),
        )
        .route("/api/documents/{id}/publish", post(content::publish_document))
        .route("/api/documents/{id}/archive", post(content::archive_document))
        .route("/api/batch", post(content::batch))
        .route("/api/tasks/outgoing", get(tasks::list_outgoing))
        .route("/api/tasks/incoming", get(tasks::list_incoming))
        .route("/api/tasks/outgoing/synchronize", post(tasks::synchronize_outgoing))
        .route("/api/tasks/incoming/synchronize", post(tasks::synchronize_incoming))
        .route("/api/tasks/outgoing/delete", post(tasks::delete_outgoing))
        .route("/api/tasks/incoming/delete", post(tasks::delete_incoming))
        .route("/api/tasks/{id}", get(tasks::get).delete(tasks::delete))
        .route("/api/tasks/{id}/synchronize", post(tasks::synchronize_one))
        .route("/api/tasks/{id}/payload", get(tasks::payload))
        .route("/api/eventlog", get(eventlog::list))
        .route("/api/openapi.json", get(openapi::serve))
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "this route does not accept that method")
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard))
        .layer(axum::extract::DefaultBodyLimit::max(state.max_request_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        .with_state(state)
}
