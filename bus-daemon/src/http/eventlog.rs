//! `/api/eventlog`: the event log, newest first, paged by `before`.

use super::error::{blocking, ApiError, ApiQuery};
use super::AppState;
use axum::extract::State;
use axum::Json;
use bus_core::eventlog::{Event, EventQuery};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    source: Option<String>,
    /// `I`, `W` or `E`.
    #[serde(rename = "type")]
    event_type: Option<String>,
    code: Option<String>,
    /// Only events older than this event ID (the `next_before` of a page).
    before: Option<i64>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct Page {
    pub items: Vec<Event>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_before: Option<i64>,
}

pub const MAX_LIMIT: u32 = 500;

pub async fn list(State(s): State<AppState>, ApiQuery(p): ApiQuery<Params>) -> Result<Json<Page>, ApiError> {
    let limit = p.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_LIMIT}, not {limit}")));
    }
    if let Some(t) = p.event_type.as_deref() {
        if !matches!(t, "I" | "W" | "E") {
            return Err(ApiError::bad_request(format!("type must be I, W or E, not `{t}`")));
        }
    }
    let q = EventQuery { source: p.source, event_type: p.event_type, code: p.code, before_id: p.before, limit };
    let events = s.events.clone();
    let items = blocking(move || Ok(events.list(&q)?)).await?;
    let next_before = if items.len() == limit as usize { items.last().map(|e| e.id) } else { None };
    Ok(Json(Page { items, next_before }))
}
