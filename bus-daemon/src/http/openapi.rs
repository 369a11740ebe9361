//! `GET /api/openapi.json`: the OpenAPI 3 description of the HTTP API, built
//! from one table of routes (a test checks that each one answers).

use axum::Json;
use serde_json::{json, Map, Value};

/// Method, path, summary, request body description (if any), success status.
const ROUTES: &[(&str, &str, &str, Option<&str>, u16)] = &[
    ("get", "/api/connectors", "List the registered connectors with `loaded` and `error`", None, 200),
    ("post", "/api/connectors", "Register a connector (all connectors are reinitialized)", Some("NewConnector"), 201),
    ("get", "/api/connectors/{name}", "One connector", None, 200),
    (
        "put",
        "/api/connectors/{name}",
        "Change a connector (all connectors are reinitialized)",
        Some("ConnectorPatch"),
        200,
    ),
    (
        "delete",
        "/api/connectors/{name}",
        "Unregister a connector; with queued tasks only with `?discard_queue=true` (409 otherwise)",
        None,
        204,
    ),
    ("post", "/api/connectors/{name}/incoming", "Log an incoming task for a connector", Some("IncomingTask"), 201),
    ("post", "/api/integration/notify", "Start processing incoming tasks (`?connector=` for one)", None, 202),
    ("get", "/api/settings", "The five settings", None, 200),
    ("put", "/api/settings", "Change settings", Some("SettingsPatch"), 200),
    ("get", "/api/object-types", "The object types and document classes, with their foreign keys", None, 200),
    ("get", "/api/objects/{type}", "Objects of a type (`site`, `after`, `limit`)", None, 200),
    ("post", "/api/objects/{type}", "Create an object", Some("ObjectInput"), 201),
    ("get", "/api/objects/{type}/{id}", "One object", None, 200),
    ("put", "/api/objects/{type}/{id}", "Update an object (fields are merged)", Some("ObjectPatch"), 200),
    ("delete", "/api/objects/{type}/{id}", "Delete an object with its children and bindings", None, 200),
    ("post", "/api/objects/{type}/{id}/sites/{site}", "Add an object to a site", None, 200),
    ("delete", "/api/objects/{type}/{id}/sites/{site}", "Remove an object from a site", None, 200),
    ("get", "/api/documents", "Documents (`site`, `path`, `after`, `limit`)", None, 200),
    ("post", "/api/documents", "Create a document or a new culture version", Some("DocumentInput"), 201),
    ("get", "/api/documents/{id}", "One document", None, 200),
    ("put", "/api/documents/{id}", "Update a document", Some("DocumentPatch"), 200),
    ("delete", "/api/documents/{id}", "Delete a document", None, 200),
    ("post", "/api/documents/{id}/publish", "Publish a document", None, 200),
    ("post", "/api/documents/{id}/archive", "Archive a document", None, 200),
    ("post", "/api/batch", "Apply many changes in one transaction", Some("Batch"), 200),
    ("get", "/api/tasks/outgoing", "Outgoing queue, oldest first (`connector`, `cursor`, `limit`)", None, 200),
    ("get", "/api/tasks/incoming", "Incoming queue, oldest first (`connector`, `cursor`, `limit`)", None, 200),
    ("get", "/api/tasks/outgoing/count", "How many outgoing tasks wait (`connector`)", None, 200),
    ("get", "/api/tasks/incoming/count", "How many incoming tasks wait (`connector`)", None, 200),
    (
        "post",
        "/api/tasks/outgoing/synchronize",
        "Synchronize selected or all outgoing tasks, in creation order",
        Some("Bulk"),
        200,
    ),
    (
        "post",
        "/api/tasks/incoming/synchronize",
        "Synchronize selected or all incoming tasks, in creation order",
        Some("Bulk"),
        200,
    ),
    ("post", "/api/tasks/outgoing/delete", "Delete selected or all outgoing tasks", Some("Bulk"), 200),
    ("post", "/api/tasks/incoming/delete", "Delete selected or all incoming tasks", Some("Bulk"), 200),
    ("get", "/api/tasks/{id}", "One task with its data and synchronization log", None, 200),
    ("delete", "/api/tasks/{id}", "Delete a task (`?connector=`: that connector's relation only)", None, 204),
    ("get", "/api/tasks/{id}/payload", "The document a connector gets for the task (`?connector=`)", None, 200),
    ("post", "/api/tasks/{id}/synchronize", "Synchronize one task (`?connector=`: for that connector only)", None, 200),
    ("get", "/api/eventlog", "The event log, newest first (`source`, `type`, `code`, `before`, `limit`)", None, 200),
    ("get", "/api/scheduled-tasks", "Scheduled tasks", None, 200),
    ("get", "/api/scheduled-tasks/{name}", "One scheduled task", None, 200),
    (
        "put",
        "/api/scheduled-tasks/{name}",
        "Change a scheduled task's interval or enabled flag",
        Some("ScheduleUpdate"),
        200,
    ),
    ("post", "/api/scheduled-tasks/{name}/execute", "Execute a scheduled task now", None, 200),
    ("get", "/api/openapi.json", "This document", None, 200),
    ("get", "/health", "Liveness and readiness (`probe=ready` answers 503 when not ready)", None, 200),
    ("get", "/metrics", "Prometheus metrics", None, 200),
];

fn parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let integer = name == "id";
            json!({"name": name, "in": "path", "required": true, "schema": {"type": if integer { "integer" } else { "string" }}})
        })
        .collect()
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, body, status) in ROUTES {
        let mut op = json!({
            "summary": summary,
            "parameters": parameters(path),
            "responses": {
                status.to_string(): {"description": "success"},
                "4XX": {"description": "bad input; the body says what is wrong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "5XX": {"description": "the daemon failed; nothing was half-written", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if let Some(body) = body {
            op["requestBody"] = json!({"required": true, "description": body, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Integration bus", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Connectors, settings, content changes, task queues, event log, scheduler. Errors are `{\"error\": \"...\"}`."},
        "paths": paths,
        "components": {"schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}
