//! `/api/eventlog`: the event log, newest first, paged by `before`.

use super::error::{blocking, ApiError, ApiQuery};
use super::grid::GridParams;
use super::AppState;
use axum::extract::State;
use axum::Json;
use bus_core::eventlog::{Event, EventQuery, EventSort};
use bus_core::grid::Order;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct Params {
    /// Only events of this source: exactly this name, or in grid paging
    /// (any of `sort`, `order`, `search`, `offset` given, as the UI asks)
    /// any source that contains it, ignoring case.
    source: Option<String>,
    /// `I`, `W` or `E`.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["I", "W", "E"]))]
    event_type: Option<String>,
    code: Option<String>,
    /// Only events older than this event ID (the `next_before` of a page;
    /// not used when a grid parameter — `sort`, `order`, `search`,
    /// `offset` — is given: those page by offset).
    before: Option<i64>,
    /// How many rows at most (default 50).
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    /// Grid paging: `time` (default), `type`, `source`, `code`, `user`.
    #[schemars(extend("enum" = ["time", "type", "source", "code", "user"]))]
    sort: Option<String>,
    /// `desc` (default: newest first) or `asc`.
    #[schemars(extend("enum" = ["asc", "desc"]))]
    order: Option<String>,
    /// Only events whose description, source, code, user or document contains this.
    #[schemars(length(max = 200))]
    search: Option<String>,
    /// Grid paging: skip this many rows.
    #[schemars(range(max = 9223372036854775807u64))]
    offset: Option<u64>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "EventPage")]
pub struct Page {
    pub items: Vec<Event>,
    /// Pass as `before` to get the next page; absent on the last page (and
    /// in grid paging).
    pub next_before: Option<i64>,
    /// Grid paging (any of `sort`, `order`, `search`, `offset` given): how
    /// many events match in all, and where this page starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
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
    let grid = GridParams::new(&p.sort, &p.order, &p.search, p.offset);
    // With a grid parameter the page is by offset, and `before` is not used.
    let grid = if grid.given() {
        let mut q = grid.query::<EventSort>(limit)?;
        // The event log reads newest first unless asked otherwise.
        if p.order.is_none() {
            q.order = Order::Desc;
        }
        Some(q)
    } else {
        None
    };
    let q = EventQuery { source: p.source, event_type: p.event_type, code: p.code, before_id: p.before, limit };
    let events = s.events.clone();
    if let Some(grid) = grid {
        let page = blocking(move || Ok(events.grid(&q, &grid)?)).await?;
        return Ok(Json(Page {
            items: page.items,
            next_before: None,
            total: Some(page.total),
            offset: Some(page.offset),
        }));
    }
    let items = blocking(move || Ok(events.list(&q)?)).await?;
    let next_before = if items.len() == limit as usize { items.last().map(|e| e.id) } else { None };
    Ok(Json(Page { items, next_before, total: None, offset: None }))
}
