//! Incoming tasks from external systems: logging one for a connector, and the
//! notify endpoint that starts processing (the spec's `RequestTasksProcessing`).

use super::error::{blocking, ApiError, ApiJson, ApiPath, ApiQuery};
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use connector_abi::protocol::LogIncomingTaskRequest;
use connector_abi::{IntegrationProcessType, TaskDataType, TaskType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An external change, in the external system's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct IncomingBody {
    /// The external object or document; the connector turns it into an
    /// internal one.
    pub obj: Value,
    /// What must happen (any task type but `All`, which only subscriptions use).
    #[schemars(schema_with = "incoming_task_type")]
    pub task_type: TaskType,
    #[serde(default = "simple")]
    pub data_type: TaskDataType,
    #[serde(default)]
    pub process_type: IntegrationProcessType,
    #[serde(default)]
    pub site_name: Option<String>,
}

/// The task types an incoming task can have: all but `All`.
fn incoming_task_type(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<Value> = TaskType::ALL_VALUES
        .iter()
        .filter(|t| **t != TaskType::All)
        .filter_map(|t| serde_json::to_value(t).ok())
        .collect();
    schemars::json_schema!({"type": "string", "enum": names})
}

fn simple() -> TaskDataType {
    TaskDataType::Simple
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Logged {
    pub task_id: i64,
}

pub async fn log(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<IncomingBody>,
) -> Result<(StatusCode, Json<Logged>), ApiError> {
    let request = LogIncomingTaskRequest {
        external: body.obj,
        task_type: body.task_type,
        data_type: body.data_type,
        process_type: body.process_type,
        site_name: body.site_name,
    };
    let task_id = blocking(move || Ok(s.incoming.log(&name, request)?)).await?;
    Ok((StatusCode::CREATED, Json(Logged { task_id })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct NotifyParams {
    connector: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Started {
    /// The connectors whose incoming queues are being processed, each on its own thread.
    pub processing: Vec<String>,
}

pub async fn notify(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<NotifyParams>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let processing = blocking(move || Ok(s.incoming.request_processing(p.connector.as_deref())?)).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { processing })))
}
