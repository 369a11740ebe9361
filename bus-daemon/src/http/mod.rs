//! The HTTP API (JSON). Routes and their contract are fixed by DESIGN.md.

mod connectors;
pub mod error;
mod eventlog;
mod health;

use axum::routing::get;
use axum::Router;
use bus_core::eventlog::EventLog;
use bus_core::manager::ConnectorManager;
use bus_core::registry::Registry;
use error::ApiError;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub events: Arc<EventLog>,
    pub manager: Arc<ConnectorManager>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/connectors", get(connectors::list).post(connectors::create))
        .route("/api/connectors/{name}", get(connectors::get).put(connectors::update).delete(connectors::delete))
        .route("/api/eventlog", get(eventlog::list))
        .route("/health", get(health::health))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "this route does not accept that method")
        })
        .with_state(state)
}
