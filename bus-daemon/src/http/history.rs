//! `GET /api/history`: each connector's recent history, a figure per
//! minute (tasks processed `Ok`, attempts that failed, tasks waiting) — the
//! Overview's sparklines (15 minutes) and a connector page's charts (a day).

use super::error::{blocking, ApiError, ApiQuery};
use super::AppState;
use axum::extract::State;
use axum::Json;
use bus_core::history::{self, Series, KEPT_MINUTES};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Only this connector (404 when there is none by that name).
    #[schemars(length(min = 1, max = 100))]
    connector: Option<String>,
    /// How many minutes, up to the current one (default 15, at most 1440:
    /// a day is kept).
    #[schemars(range(min = 1, max = 1440))]
    minutes: Option<i64>,
}

/// Figures per minute, oldest first; the last minute is the current one,
/// still going on.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "History")]
pub struct HistoryView {
    /// The start of the first minute (RFC 3339, UTC).
    pub from: String,
    /// How many minutes each series holds.
    pub minutes: i64,
    /// Per registered connector, by name.
    pub connectors: Vec<Series>,
}

pub async fn get(State(s): State<AppState>, ApiQuery(p): ApiQuery<Params>) -> Result<Json<HistoryView>, ApiError> {
    let minutes = p.minutes.unwrap_or(15);
    if !(1..=KEPT_MINUTES).contains(&minutes) {
        return Err(ApiError::bad_request(format!(
            "minutes must be between 1 and {KEPT_MINUTES} (a day is kept), not {minutes}"
        )));
    }
    let until = history::minute_of(SystemTime::now());
    let db = s.db.clone();
    let connector = p.connector.clone();
    let connectors =
        blocking(move || Ok(history::read(&*db.connect()?, connector.as_deref(), until, minutes)?)).await?;
    if let (Some(name), true) = (&p.connector, connectors.is_empty()) {
        return Err(ApiError::not_found(format!("no connector named `{name}`")));
    }
    Ok(Json(HistoryView { from: history::minute_start(until - minutes + 1), minutes, connectors }))
}
