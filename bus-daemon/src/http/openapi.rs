//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the HTTP API,
//! rendered from the route table (`routes.rs`), whose entries name each
//! route's handler types; their JSON Schemas are generated from those very
//! types (schemars), so a field added to a handler's type appears here. A
//! test checks that every route answers and that live answers match their
//! schemas.

use super::routes::{Answer, Listed, Route, SchemaOf};
use schemars::generate::SchemaSettings;
use schemars::Schema;
use serde_json::{json, Map, Value};

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

/// The OpenAPI document of the routes in `routes` (those of the API).
pub(super) fn document(routes: &[Route]) -> Value {
    let mut generator =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = "#/components/schemas/".into()).into_generator();
    let error = json!({"$ref": "#/components/schemas/Error"});
    let mut paths = Map::new();
    for r in routes.iter().filter(|r| r.listed == Listed::Api) {
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
