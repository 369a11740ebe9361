//! `GET /api/connectors/{name}/state`: the state the bus keeps for a
//! connector (what it wrote through `Host::state_put`), in key order and
//! paged by `after` — for ops to read what a connector remembers.

use super::error::{blocking, ApiError, ApiPath, ApiQuery};
use super::AppState;
use axum::extract::State;
use axum::Json;
use bus_core::state_store::{self, StateEntry};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Only keys after this one (the `next_after` of a page).
    #[schemars(length(min = 1, max = 200))]
    after: Option<String>,
    /// How many entries at most (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "ConnectorState")]
pub struct Page {
    pub items: Vec<StateEntry>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
}

pub async fn list(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(p): ApiQuery<Params>,
) -> Result<Json<Page>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be between 1 and 1000, not {limit}")));
    }
    if let Some(after) = p.after.as_deref() {
        let chars = after.chars().count();
        if !(1..=state_store::MAX_KEY_CHARS).contains(&chars) {
            return Err(ApiError::bad_request(format!(
                "after must be a key of 1 to {} characters, not {chars}",
                state_store::MAX_KEY_CHARS
            )));
        }
    }
    let db = s.db.clone();
    let connector = name.clone();
    let items =
        blocking(move || Ok(state_store::list(&*db.connect()?, &connector, p.after.as_deref(), limit + 1)?)).await?;
    let Some(mut items) = items else { return Err(ApiError::not_found(format!("no connector named `{name}`"))) };
    let next_after = (items.len() > limit as usize).then(|| {
        items.truncate(limit as usize);
        items.last().map(|e| e.key.clone()).unwrap_or_default()
    });
    Ok(Json(Page { items, next_after }))
}
