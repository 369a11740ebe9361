//! `/health`: liveness (always 200 while serving) and readiness (every
//! enabled connector loaded without error). `?probe=ready` answers 503 when
//! not ready, for load balancers.

use super::error::{ApiError, ApiQuery};
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    probe: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ConnectorHealth {
    pub enabled: bool,
    pub loaded: bool,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub live: bool,
    pub ready: bool,
    pub generation: u64,
    pub reinitializations: u64,
    pub connectors: BTreeMap<String, ConnectorHealth>,
}

pub async fn health(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<Params>,
) -> Result<(StatusCode, Json<Health>), ApiError> {
    let set = s.manager.current();
    let connectors: BTreeMap<String, ConnectorHealth> = set
        .status
        .iter()
        .map(|(name, st)| {
            (name.clone(), ConnectorHealth { enabled: st.enabled, loaded: st.loaded, error: st.error.clone() })
        })
        .collect();
    let ready = connectors.values().all(|c| !c.enabled || (c.loaded && c.error.is_none()));
    let status = match p.probe.as_deref() {
        None | Some("live") => StatusCode::OK,
        Some("ready") if ready => StatusCode::OK,
        Some("ready") => StatusCode::SERVICE_UNAVAILABLE,
        Some(other) => return Err(ApiError::bad_request(format!("probe must be `live` or `ready`, not `{other}`"))),
    };
    let health = Health {
        live: true,
        ready,
        generation: set.generation,
        reinitializations: s.manager.reinitializations(),
        connectors,
    };
    Ok((status, Json(health)))
}
