//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the HTTP API.
//! One table names each route's handler types — its query parameters, its
//! body, its answer — and their JSON Schemas are generated from those very
//! types (schemars), so the document follows the code: a field added to a
//! handler's type appears here. A test checks that every route answers and
//! that live answers match their schemas.

use super::{connectors, content, eventlog, health, incoming, schedule, tasks};
use axum::Json;
use bus_core::pipeline::ChangeResult;
use bus_core::queue_admin::TaskDetail;
use bus_core::registry::{ConnectorPatch, NewConnector};
use bus_core::scheduler::ScheduledTask;
use bus_core::settings::{Settings, SettingsPatch};
use bus_core::store::documents::{DocumentInput, DocumentPatch};
use bus_core::store::objects::{ObjectInput, ObjectPatch};
use connector_abi::{DocumentData, ObjectData};
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{json, Map, Value};

/// Makes the schema of one type (a `$ref` into the components, or inline).
type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// One route: method, path, summary, and the handler's types.
struct Route {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    /// The query parameters (a struct whose fields are the parameters).
    query: Option<SchemaOf>,
    body: Option<SchemaOf>,
    /// The success status and its body (none for 204, text for /metrics).
    status: u16,
    answer: Answer,
}

enum Answer {
    Json(SchemaOf),
    Text,
    Nothing,
}

const fn route(method: &'static str, path: &'static str, summary: &'static str, status: u16, answer: Answer) -> Route {
    Route { method, path, summary, query: None, body: None, status, answer }
}

impl Route {
    const fn query(mut self, q: SchemaOf) -> Route {
        self.query = Some(q);
        self
    }
    const fn body(mut self, b: SchemaOf) -> Route {
        self.body = Some(b);
        self
    }
}

use Answer::{Json as J, Nothing, Text};

const ROUTES: &[Route] = &[
    route("get", "/api/connectors", "The registered connectors with their load state (grid: `sort`, `order`, `search`, `offset`; total in `X-Total-Count`)", 200, J(of::<Vec<connectors::ConnectorView>>)).query(of::<connectors::ListParams>),
    route("post", "/api/connectors", "Register a connector (all connectors are reinitialized)", 201, J(of::<connectors::ConnectorView>)).body(of::<NewConnector>),
    route("get", "/api/connectors/{name}", "One connector", 200, J(of::<connectors::ConnectorView>)),
    route("put", "/api/connectors/{name}", "Change a connector (all connectors are reinitialized)", 200, J(of::<connectors::ConnectorView>)).body(of::<ConnectorPatch>),
    route("delete", "/api/connectors/{name}", "Unregister a connector; with queued tasks only with `discard_queue=true` (409 otherwise)", 204, Nothing).query(of::<connectors::DeleteParams>),
    route("post", "/api/connectors/{name}/incoming", "Log an incoming task for a connector", 201, J(of::<incoming::Logged>)).body(of::<incoming::IncomingBody>),
    route("post", "/api/integration/notify", "Start processing incoming tasks, of one connector or all", 202, J(of::<incoming::Started>)).query(of::<incoming::NotifyParams>),
    route("get", "/api/settings", "The five settings", 200, J(of::<Settings>)),
    route("put", "/api/settings", "Change settings", 200, J(of::<Settings>)).body(of::<SettingsPatch>),
    route("get", "/api/object-types", "The object types and document classes, with their foreign keys", 200, J(of::<content::TypesView>)),
    route("get", "/api/objects/{type}", "Objects of a type", 200, J(of::<content::Page<ObjectData>>)).query(of::<content::ListParams>),
    route("post", "/api/objects/{type}", "Create an object", 201, J(of::<ChangeResult>)).body(of::<ObjectInput>),
    route("get", "/api/objects/{type}/{id}", "One object", 200, J(of::<ObjectData>)),
    route("put", "/api/objects/{type}/{id}", "Update an object (fields are merged)", 200, J(of::<ChangeResult>)).body(of::<ObjectPatch>),
    route("delete", "/api/objects/{type}/{id}", "Delete an object with its children and bindings", 200, J(of::<ChangeResult>)),
    route("post", "/api/objects/{type}/{id}/sites/{site}", "Add an object to a site", 200, J(of::<ChangeResult>)),
    route("delete", "/api/objects/{type}/{id}/sites/{site}", "Remove an object from a site", 200, J(of::<ChangeResult>)),
    route("get", "/api/documents", "Documents", 200, J(of::<content::Page<DocumentData>>)).query(of::<content::ListParams>),
    route("post", "/api/documents", "Create a document or a new culture version", 201, J(of::<ChangeResult>)).body(of::<DocumentInput>),
    route("get", "/api/documents/{id}", "One document", 200, J(of::<DocumentData>)),
    route("put", "/api/documents/{id}", "Update a document", 200, J(of::<ChangeResult>)).body(of::<DocumentPatch>),
    route("delete", "/api/documents/{id}", "Delete a document", 200, J(of::<ChangeResult>)),
    route("post", "/api/documents/{id}/publish", "Publish a document", 200, J(of::<ChangeResult>)),
    route("post", "/api/documents/{id}/archive", "Archive a document", 200, J(of::<ChangeResult>)),
    route("post", "/api/batch", "Apply many changes in one transaction", 200, J(of::<content::BatchResult>)).body(of::<content::Batch>),
    route("get", "/api/tasks/outgoing", "The outgoing queue, oldest first (or a grid page)", 200, J(of::<tasks::TaskPage>)).query(of::<tasks::ListParams>),
    route("get", "/api/tasks/incoming", "The incoming queue, oldest first (or a grid page)", 200, J(of::<tasks::TaskPage>)).query(of::<tasks::ListParams>),
    route("get", "/api/tasks/outgoing/count", "How many outgoing tasks wait", 200, J(of::<tasks::Count>)).query(of::<tasks::CountParams>),
    route("get", "/api/tasks/incoming/count", "How many incoming tasks wait", 200, J(of::<tasks::Count>)).query(of::<tasks::CountParams>),
    route("post", "/api/tasks/outgoing/synchronize", "Synchronize selected or all outgoing tasks, in creation order", 200, J(of::<tasks::SyncReport>)).body(of::<tasks::Bulk>),
    route("post", "/api/tasks/incoming/synchronize", "Synchronize selected or all incoming tasks, in creation order", 200, J(of::<tasks::SyncReport>)).body(of::<tasks::Bulk>),
    route("post", "/api/tasks/outgoing/delete", "Delete selected or all outgoing tasks", 200, J(of::<tasks::DeleteReport>)).body(of::<tasks::Bulk>),
    route("post", "/api/tasks/incoming/delete", "Delete selected or all incoming tasks", 200, J(of::<tasks::DeleteReport>)).body(of::<tasks::Bulk>),
    route("get", "/api/tasks/{id}", "One task with its data and synchronization log", 200, J(of::<TaskDetail>)),
    route("delete", "/api/tasks/{id}", "Delete a task (with `connector`: that connector's relation only)", 204, Nothing).query(of::<tasks::RowParams>),
    route("get", "/api/tasks/{id}/payload", "The document a connector gets for the task", 200, J(of::<Value>)).query(of::<tasks::PayloadParams>),
    route("post", "/api/tasks/{id}/synchronize", "Synchronize one task (with `connector`: for that connector only)", 200, J(of::<tasks::SyncReport>)).query(of::<tasks::RowParams>),
    route("get", "/api/eventlog", "The event log, newest first (or a grid page)", 200, J(of::<eventlog::Page>)).query(of::<eventlog::Params>),
    route("get", "/api/scheduled-tasks", "Scheduled tasks", 200, J(of::<Vec<ScheduledTask>>)),
    route("get", "/api/scheduled-tasks/{name}", "One scheduled task", 200, J(of::<ScheduledTask>)),
    route("put", "/api/scheduled-tasks/{name}", "Change a scheduled task's interval or enabled flag", 200, J(of::<ScheduledTask>)).body(of::<schedule::Update>),
    route("post", "/api/scheduled-tasks/{name}/execute", "Execute a scheduled task now", 200, J(of::<ScheduledTask>)),
    route("post", "/api/login", "Log in with the access token (sets the session cookie)", 204, Nothing).body(of::<super::auth::Login>),
    route("post", "/api/logout", "End the session", 204, Nothing),
    route("get", "/api/openapi.json", "This document", 200, J(of::<Value>)),
    route("get", "/health", "Liveness and readiness (`probe=ready` answers 503 when not ready)", 200, J(of::<health::Health>)).query(of::<health::Params>),
    route("get", "/metrics", "Prometheus metrics (text)", 200, Text),
];

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let integer = name == "id";
            json!({"name": name, "in": "path", "required": true, "schema": {"type": if integer { "integer" } else { "string" }}})
        })
        .collect()
}

/// The query parameters of a query type: one per property of its schema.
fn query_parameters(query: SchemaOf) -> Vec<Value> {
    let mut inline = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true).into_generator();
    let schema = query(&mut inline).to_value();
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else { return Vec::new() };
    properties
        .iter()
        .map(|(name, prop)| {
            let mut p =
                json!({"name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": prop});
            if let Some(d) = prop.get("description") {
                p["description"] = d.clone();
            }
            p
        })
        .collect()
}

fn json_content(schema: Schema) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut generator =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = "#/components/schemas/".into()).into_generator();
    let error = json!({"$ref": "#/components/schemas/Error"});
    let mut paths = Map::new();
    for r in ROUTES {
        let mut parameters = path_parameters(r.path);
        parameters.extend(r.query.map(query_parameters).unwrap_or_default());
        let success = match r.answer {
            Answer::Json(schema) => json!({"description": "success", "content": json_content(schema(&mut generator))}),
            Answer::Text => {
                json!({"description": "success", "content": {"text/plain": {"schema": {"type": "string"}}}})
            }
            Answer::Nothing => json!({"description": "success"}),
        };
        let mut op = json!({
            "summary": r.summary,
            "parameters": parameters,
            "responses": {
                r.status.to_string(): success,
                "4XX": {"description": "bad input; the body says what is wrong", "content": {"application/json": {"schema": error}}},
                "5XX": {"description": "the daemon failed or is unavailable; nothing was half-written", "content": {"application/json": {"schema": error}}}
            }
        });
        if let Some(body) = r.body {
            op["requestBody"] = json!({"required": true, "content": json_content(body(&mut generator))});
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    let mut schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "string", "description": "What is wrong, in words"}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Integration bus", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Connectors, settings, content changes, task queues, event log, scheduler. Errors are `{\"error\": \"...\"}`."},
        "paths": paths,
        "components": {"schemas": schemas}
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}
