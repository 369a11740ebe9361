//! `/health`: liveness (always 200 while serving) and readiness (every
//! enabled connector loaded without error, none hung, and the database file
//! still the one the daemon opened). `?probe=ready` answers 503 when not
//! ready, for load balancers.

use super::error::{ApiError, ApiQuery};
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct Params {
    /// `live` (default: always 200 while serving) or `ready` (503 when not ready).
    #[schemars(extend("enum" = ["live", "ready"]))]
    probe: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ConnectorHealth {
    pub enabled: bool,
    pub loaded: bool,
    pub error: Option<String>,
    /// Set while a call into the connector has run past the call timeout.
    pub hung_for_seconds: Option<f64>,
    /// How often the connector's process was started again after a crash.
    pub restarts: u64,
    /// The daemon that runs it, when another one of the cluster does.
    pub running_on: Option<String>,
    /// Its create or init has not returned yet.
    pub starting: bool,
    /// Why one of its workers cannot reach the database (and has not made
    /// progress since), while that lasts.
    pub stalled: Option<String>,
}

/// This daemon's part in a PostgreSQL cluster.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ClusterHealth {
    pub daemon: String,
    /// The connectors whose leases it holds (by registry ID).
    pub leases: Vec<i64>,
    pub lease_changes: u64,
    pub leader: bool,
    /// Why it could not renew its leases for a whole lease time.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Health {
    pub live: bool,
    pub ready: bool,
    pub generation: u64,
    pub reinitializations: u64,
    /// Set when the database file was deleted, replaced or lost its log.
    pub storage_fault: Option<String>,
    pub connectors: BTreeMap<String, ConnectorHealth>,
    /// Set on PostgreSQL, where several daemons may share the database.
    pub cluster: Option<ClusterHealth>,
}

/// How long a worker may fail to reach the database (retrying with a
/// growing pause) before the daemon stops being ready: a session cut once
/// heals at the next try, well within it.
const STALLED_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn health(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<Params>,
) -> Result<(StatusCode, Json<Health>), ApiError> {
    let set = s.manager.current();
    let mut troubles = s.outgoing.troubles();
    for (name, trouble) in s.incoming.workers().troubles() {
        troubles.entry(name).or_insert(trouble);
    }
    let connectors: BTreeMap<String, ConnectorHealth> = set
        .status
        .iter()
        .map(|(name, st)| {
            let live = set.live.get(name);
            let hung_for_seconds = live.and_then(|c| c.hung_for()).map(|d| d.as_secs_f64());
            let restarts = live.map_or(0, |c| c.restarts());
            let health = ConnectorHealth {
                enabled: st.enabled,
                loaded: st.loaded,
                error: st.error.clone(),
                hung_for_seconds,
                restarts,
                running_on: st.running_on.clone(),
                starting: st.starting,
                stalled: troubles.get(name).filter(|(since, _)| *since >= STALLED_AFTER).map(|(since, why)| {
                    format!("its worker cannot reach the database (for {:.1} s): {why}", since.as_secs_f64())
                }),
            };
            (name.clone(), health)
        })
        .collect();
    let storage_fault = s.protection.storage.fault();
    let ready = storage_fault.is_none()
        && connectors.values().all(|c| {
            !c.enabled
                || ((c.loaded || c.running_on.is_some())
                    && c.error.is_none()
                    && c.hung_for_seconds.is_none()
                    && c.stalled.is_none())
        });
    let cluster_trouble = s.manager.cluster().and_then(|c| c.trouble());
    let ready = ready && cluster_trouble.is_none();
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
        storage_fault,
        connectors,
        cluster: s.manager.cluster().map(|c| ClusterHealth {
            daemon: c.id().to_owned(),
            leases: c.held().into_iter().collect(),
            lease_changes: c.lease_changes(),
            leader: c.is_leader(),
            error: c.trouble(),
        }),
    };
    Ok((status, Json(health)))
}
