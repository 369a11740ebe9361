//! `/api/scheduled-tasks`: last run, next run, executions; execute now;
//! change the interval.

use super::caller::Caller;
use super::error::{blocking, ApiError, ApiJson, ApiPath};
use super::AppState;
use crate::audit::{self, Action};
use axum::extract::State;
use axum::Json;
use bus_core::scheduler::{self, ScheduledTask};
use serde::Deserialize;

pub async fn list(State(s): State<AppState>) -> Result<Json<Vec<ScheduledTask>>, ApiError> {
    Ok(Json(blocking(move || Ok(scheduler::list(&*s.db.connect()?)?)).await?))
}

pub async fn get(State(s): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Json<ScheduledTask>, ApiError> {
    Ok(Json(blocking(move || Ok(scheduler::get(&*s.db.connect()?, &name)?)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
#[schemars(rename = "ScheduleUpdate")]
pub struct Update {
    /// How often it runs, in seconds (at most a year).
    #[serde(default, deserialize_with = "bus_core::json_int::optional")]
    #[schemars(range(min = 1, max = 31622400))]
    interval_seconds: Option<i64>,
    #[serde(default)]
    enabled: Option<bool>,
}

pub async fn update(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(u): ApiJson<Update>,
) -> Result<Json<ScheduledTask>, ApiError> {
    Ok(Json(
        blocking(move || {
            let task = scheduler::update(&*s.db.connect()?, &name, u.interval_seconds, u.enabled)?;
            let what = format!(
                "Changed scheduled task `{name}`: every {} s, {}",
                task.interval_seconds,
                if task.enabled { "enabled" } else { "disabled" }
            );
            audit::record(&s.events, &actor, Action::UpdateScheduledTask, &what);
            Ok(task)
        })
        .await?,
    ))
}

pub async fn execute(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ScheduledTask>, ApiError> {
    Ok(Json(
        blocking(move || {
            let task = s.scheduler.execute(&name)?;
            let result = task.last_result.as_deref().unwrap_or("no result");
            audit::record(
                &s.events,
                &actor,
                Action::RunScheduledTask,
                &format!("Ran scheduled task `{name}` on request: {result}"),
            );
            Ok(task)
        })
        .await?,
    ))
}
