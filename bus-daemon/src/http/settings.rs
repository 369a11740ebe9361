//! `/api/settings`: the five settings of the bus.

use super::caller::Caller;
use super::error::{blocking, ApiError, ApiJson};
use super::AppState;
use crate::audit::{self, Action};
use axum::extract::State;
use axum::Json;
use bus_core::settings::{self, Settings, SettingsPatch};

pub async fn get(State(s): State<AppState>) -> Result<Json<Settings>, ApiError> {
    let db = s.db.clone();
    Ok(Json(blocking(move || Ok(settings::read(&*db.connect()?)?)).await?))
}

pub async fn put(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> Result<Json<Settings>, ApiError> {
    let (db, events) = (s.db.clone(), s.events.clone());
    let updated = blocking(move || {
        let before = settings::read(&*db.connect()?)?;
        let after = settings::update(&mut *db.connect()?, &patch)?;
        let changed = settings::changes(&before, &after);
        if !changed.is_empty() {
            audit::record(&events, &actor, Action::UpdateSettings, &format!("Changed settings: {changed}"));
        }
        Ok(after)
    })
    .await?;
    // Processing may just have been switched on: let the queues move.
    s.outgoing.wake_all();
    Ok(Json(updated))
}
