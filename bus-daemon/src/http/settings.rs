//! `/api/settings`: the five settings of the bus.

use super::error::{blocking, ApiError, ApiJson};
use super::AppState;
use axum::extract::State;
use axum::Json;
use bus_core::settings::{self, Settings, SettingsPatch};

pub async fn get(State(s): State<AppState>) -> Result<Json<Settings>, ApiError> {
    let db = s.db.clone();
    Ok(Json(blocking(move || Ok(settings::read(&db.connect()?)?)).await?))
}

pub async fn put(
    State(s): State<AppState>,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> Result<Json<Settings>, ApiError> {
    let db = s.db.clone();
    let updated = blocking(move || Ok(settings::update(&mut db.connect()?, &patch)?)).await?;
    // Processing may just have been switched on: let the queues move.
    s.outgoing.wake_all();
    Ok(Json(updated))
}
