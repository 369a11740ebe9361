//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the HTTP API,
//! rendered from the route table (`routes.rs`), whose entries name each
//! route's handler (its `operationId` and tag), its types (their JSON
//! Schemas are generated from those very types with schemars, then shaped
//! for client generators in `schema_shape.rs`) and the error statuses its
//! handler answers; the statuses of the layers every request passes (host,
//! token, origin, body, storage) are added from the route's shape. Tests
//! check that every route answers, that live answers match their schemas,
//! and Schemathesis fuzzes the server against this document.

use super::auth::{daemon_route, open_route};
use super::routes::{Answer, Listed, Route, SchemaOf};
use super::schema_shape;
use schemars::generate::SchemaSettings;
use schemars::Schema;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// The path parameters of a route; `id` is a 64-bit integer, the others
/// text.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = if name == "id" {
                json!({"type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX})
            } else {
                json!({"type": "string", "minLength": 1})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

/// The query parameters of a query type: one per property of its schema.
fn query_parameters(query: SchemaOf) -> Vec<Value> {
    let mut inline = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true).into_generator();
    let mut schema = query(&mut inline).to_value();
    schema_shape::shape(&mut schema);
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else { return Vec::new() };
    properties
        .iter()
        .map(|(name, prop)| {
            // An absent parameter is how a query says "none": no `null`.
            let mut prop = prop.clone();
            if let Some(Value::Array(types)) = prop.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    prop["type"] = types[0].clone();
                }
            }
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

/// Every error status a route can answer: its handler's own, and those of
/// the layers in front of every handler.
fn error_statuses(r: &Route) -> BTreeSet<u16> {
    let mut statuses: BTreeSet<u16> = r.errors.iter().copied().collect();
    // Host not answered without a token; the daemon failing.
    statuses.extend([421, 500]);
    if !open_route(r.path) {
        statuses.insert(401);
    }
    if r.path.starts_with("/api/") {
        // The database unavailable or busy, or its file lost.
        statuses.insert(503);
    }
    if r.path.contains('{') || r.query.is_some() {
        statuses.insert(400);
    }
    if r.method != "get" {
        // A foreign Origin; a body that is not JSON; the database full.
        statuses.extend([403, 415, 507]);
    }
    if r.body.is_some() {
        statuses.extend([400, 413, 415, 422]);
    }
    if let Some((status, _)) = r.other {
        statuses.remove(&status);
    }
    statuses
}

/// The shared error answers, by status.
fn error_responses() -> Map<String, Value> {
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let retry = json!({"Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer", "minimum": 0}}});
    let with_retry = |description: &str| {
        let mut r = error(description);
        r["headers"] = retry.clone();
        r
    };
    [
        (400, error("The query, a path parameter or the body is malformed; the message names the part")),
        (401, error("An access token is configured and the request carries no matching bearer token or session cookie")),
        (403, error("A cross-site request (a foreign `Origin`) cannot change anything")),
        (404, error("The named connector, task, object, document, type or scheduled task does not exist")),
        (406, error("The route answers only in a format the request does not accept (`/api/events`: `Accept: text/event-stream`)")),
        (409, error("Conflicts with the current state: a duplicate, queued tasks, processing switched off, a connector not loaded or running on another daemon")),
        (413, error("The body is larger than `[http] max_request_bytes`; nothing was written")),
        (415, error("A request that changes something takes `Content-Type: application/json`")),
        (421, error("The `Host` is not one this daemon answers without an access token")),
        (422, error("The body is well-formed JSON but not acceptable (the message says why); nothing was written")),
        (429, with_retry("Too many failed logins from this client")),
        (500, error("The daemon failed; nothing was half-written")),
        (502, error("The connector did not answer on its daemon")),
        (503, with_retry("The database is unavailable or busy, or its file was lost (nothing was written), or too many event streams are open; retry later")),
        (507, error("The database is full; nothing was written")),
    ]
    .into_iter()
    .map(|(status, response)| (status.to_string(), response))
    .collect()
}

fn tags() -> Value {
    json!([
        {"name": "connectors", "description": "The connector registry (`Integration_Connector`) with each connector's load state"},
        {"name": "incoming", "description": "Incoming tasks logged for a connector, and requests to process them"},
        {"name": "settings", "description": "The five settings"},
        {"name": "content", "description": "The content store: objects and documents; each change logs its outgoing tasks in the same transaction"},
        {"name": "tasks", "description": "The outgoing and incoming queues: list, synchronize, delete"},
        {"name": "eventlog", "description": "The event log"},
        {"name": "schedule", "description": "Scheduled tasks"},
        {"name": "auth", "description": "The session cookie for browsers (API clients send the bearer token)"},
        {"name": "cluster", "description": "Several daemons on one PostgreSQL database"},
        {"name": "health", "description": "Liveness and readiness"},
        {"name": "metrics", "description": "Prometheus metrics"},
        {"name": "meta", "description": "This document"}
    ])
}

/// The OpenAPI document of the routes in `routes` (those of the API).
pub(super) fn document(routes: &[Route]) -> Value {
    let mut generator =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = "#/components/schemas/".into()).into_generator();
    let mut paths = Map::new();
    for r in routes.iter().filter(|r| r.listed == Listed::Api) {
        let mut parameters = path_parameters(r.path);
        parameters.extend(r.query.map(query_parameters).unwrap_or_default());
        let mut success = match r.answer {
            Answer::Json(schema) => json!({"description": "success", "content": json_content(schema(&mut generator))}),
            Answer::Text => {
                json!({"description": "success", "content": {"text/plain": {"schema": {"type": "string"}}}})
            }
            Answer::EventStream => {
                json!({"description": "success", "content": {"text/event-stream": {"schema": {"type": "string"}}}})
            }
            Answer::Nothing => json!({"description": "success"}),
        };
        if !r.headers.is_empty() {
            let headers: Map<String, Value> = r
                .headers
                .iter()
                .map(|(name, description)| {
                    let schema = if *name == "X-Total-Count" {
                        json!({"type": "integer", "minimum": 0})
                    } else {
                        json!({"type": "string"})
                    };
                    (name.to_string(), json!({"description": description, "schema": schema}))
                })
                .collect();
            success["headers"] = Value::Object(headers);
        }
        let mut responses = Map::new();
        responses.insert(r.status.to_string(), success);
        if let Some((status, schema)) = r.other {
            responses.insert(
                status.to_string(),
                json!({"description": "not ready; the report says why", "content": json_content(schema(&mut generator))}),
            );
        }
        for status in error_statuses(r) {
            responses.insert(status.to_string(), json!({"$ref": format!("#/components/responses/{status}")}));
        }
        let mut op = json!({
            "operationId": r.operation_id(),
            "tags": [r.tag()],
            "summary": r.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if open_route(r.path) {
            op["security"] = json!([]);
        }
        if daemon_route(r.path) {
            op["security"] = json!([{}, {"cluster": []}]);
        }
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
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {"title": "Integration bus", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Connectors, settings, content changes, task queues, event log, scheduler. Errors are `{\"error\": \"...\"}`; a 503 or 429 carries `Retry-After`. Without a configured access token no credentials are needed (loopback only)."},
        "tags": tags(),
        "security": [{}, {"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": error_responses(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "The daemon's `auth_token` (bus.toml)"},
                "session": {"type": "apiKey", "in": "cookie", "name": super::auth::COOKIE,
                            "description": "Set by `POST /api/login`; requests that change something also send `X-Bus-Csrf: 1`"},
                "cluster": {"type": "apiKey", "in": "header", "name": super::cluster_auth::SIGNATURE_HEADER,
                            "description": "Between daemons only: an HMAC-SHA256 signature with a key derived from the shared `auth_token`, over the route, `X-Bus-Cluster-From`, `X-Bus-Cluster-Time` (seconds, within 30 s) and the body's SHA-256; each signature is accepted once. The token itself is not accepted on this route."}
            }
        }
    });
    schema_shape::shape_components(&mut document);
    document
}
