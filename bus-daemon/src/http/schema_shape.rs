//! Shapes the JSON Schemas schemars generates for client generators and
//! fuzzers, without changing what they accept: an "anything" schema is `{}`
//! rather than the literal `true` (some generators refuse it); a plain
//! string enum is an `enum` rather than a `oneOf` of `const`s; a tagged
//! union (every branch an object whose tag property is a `const`) has its
//! branches as named components and a `discriminator` naming the tag.

use serde_json::{json, Map, Value};

/// The keywords whose value is one schema.
const SCHEMA_KEYS: [&str; 8] =
    ["additionalProperties", "items", "not", "contains", "propertyNames", "if", "then", "else"];
/// The keywords whose value is a list of schemas.
const LIST_KEYS: [&str; 4] = ["oneOf", "anyOf", "allOf", "prefixItems"];
/// The keywords whose value maps names to schemas.
const MAP_KEYS: [&str; 3] = ["properties", "patternProperties", "$defs"];

/// Shapes one schema and every schema inside it.
pub(super) fn shape(schema: &mut Value) {
    if *schema == Value::Bool(true) {
        *schema = json!({});
        return;
    }
    let Some(object) = schema.as_object_mut() else { return };
    for key in SCHEMA_KEYS {
        if let Some(inner) = object.get_mut(key) {
            shape(inner);
        }
    }
    for key in LIST_KEYS {
        if let Some(Value::Array(list)) = object.get_mut(key) {
            list.iter_mut().for_each(shape);
        }
    }
    for key in MAP_KEYS {
        if let Some(Value::Object(map)) = object.get_mut(key) {
            map.values_mut().for_each(shape);
        }
    }
    string_enum(object);
    integer_bounds(object);
}

/// An integer's `format` as bounds a validator checks: a generated id past
/// 64 bits is not "valid input" the server then refuses.
fn integer_bounds(object: &mut Map<String, Value>) {
    let (min, max): (Value, Value) = match object.get("format").and_then(Value::as_str) {
        Some("int64") => (json!(i64::MIN), json!(i64::MAX)),
        Some("int32") => (json!(i32::MIN), json!(i32::MAX)),
        Some("uint64" | "uint") => (json!(0), json!(u64::MAX)),
        Some("uint32") => (json!(0), json!(u32::MAX)),
        Some("uint16") => (json!(0), json!(u16::MAX)),
        Some("uint8") => (json!(0), json!(u8::MAX)),
        _ => return,
    };
    object.entry("minimum").or_insert(min);
    object.entry("maximum").or_insert(max);
}

/// `oneOf: [{const: "A", description: …}, …]` → `enum: ["A", …]`, the
/// branch descriptions kept as one list in the description.
fn string_enum(object: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = object.get("oneOf") else { return };
    let values: Option<Vec<(String, Option<String>)>> = branches
        .iter()
        .map(|b| {
            let value = b.get("const")?.as_str()?.to_owned();
            let keys_ok = b.as_object()?.keys().all(|k| matches!(k.as_str(), "const" | "type" | "description"));
            keys_ok.then(|| (value, b.get("description").and_then(Value::as_str).map(str::to_owned)))
        })
        .collect();
    let Some(values) = values else { return };
    let described: Vec<String> =
        values.iter().filter_map(|(v, d)| d.as_ref().map(|d| format!("`{v}`: {}", d.replace('\n', " ")))).collect();
    object.remove("oneOf");
    object.insert("type".into(), json!("string"));
    object.insert("enum".into(), values.iter().map(|(v, _)| json!(v)).collect());
    if !described.is_empty() {
        let lead = object.get("description").and_then(Value::as_str).map(|d| format!("{d}\n\n")).unwrap_or_default();
        object.insert("description".into(), json!(format!("{lead}{}", described.join("; "))));
    }
}

/// Shapes every schema of an OpenAPI document: its components, and those
/// written inline in parameters, request bodies and responses; then names
/// the branches of tagged unions.
pub(super) fn shape_components(document: &mut Value) {
    if let Some(Value::Object(schemas)) = document.pointer_mut("/components/schemas") {
        schemas.values_mut().for_each(shape);
        let unions: Vec<String> = schemas.iter().filter(|(_, s)| tag_of(s).is_some()).map(|(n, _)| n.clone()).collect();
        for name in unions {
            name_branches(schemas, &name);
        }
    }
    let Some(Value::Object(paths)) = document.get_mut("paths") else { return };
    for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|p| p.values_mut()) {
        let Some(operation) = operation.as_object_mut() else { continue };
        for (key, part) in operation.iter_mut() {
            match key.as_str() {
                "parameters" => {
                    part.as_array_mut().into_iter().flatten().filter_map(|p| p.get_mut("schema")).for_each(shape)
                }
                "requestBody" => shape_content(part),
                "responses" => part.as_object_mut().into_iter().flat_map(|r| r.values_mut()).for_each(shape_content),
                _ => {}
            }
        }
    }
}

/// Shapes the schemas of a request body's or response's content.
fn shape_content(body: &mut Value) {
    for media in body.get_mut("content").and_then(Value::as_object_mut).into_iter().flat_map(|c| c.values_mut()) {
        if let Some(s) = media.get_mut("schema") {
            shape(s);
        }
    }
}

/// The tag property of a tagged union: every `oneOf` branch an object that
/// requires the same property and gives it a `const` string.
fn tag_of(schema: &Value) -> Option<String> {
    let branches = schema.get("oneOf")?.as_array()?;
    let tag_of_branch = |b: &Value| -> Option<String> {
        let properties = b.get("properties")?.as_object()?;
        let required = b.get("required")?.as_array()?;
        properties
            .iter()
            .find(|(name, p)| p.get("const").is_some_and(Value::is_string) && required.contains(&json!(name)))
            .map(|(name, _)| name.clone())
    };
    let first = tag_of_branch(branches.first()?)?;
    branches.iter().all(|b| tag_of_branch(b).as_deref() == Some(first.as_str())).then_some(first)
}

/// `Change` with branches tagged `op: "create_object"`, … becomes a `oneOf`
/// of `$ref`s to `ChangeCreateObject`, … with a discriminator mapping.
fn name_branches(schemas: &mut Map<String, Value>, name: &str) {
    let Some(tag) = schemas.get(name).and_then(tag_of) else { return };
    let Some(Value::Array(branches)) = schemas.get_mut(name).and_then(|s| s.as_object_mut()?.remove("oneOf")) else {
        return;
    };
    // Fields every branch shares (serde's `flatten`) move into each branch:
    // generators read a union's branches, not properties beside `oneOf`.
    let union = schemas.get_mut(name).and_then(Value::as_object_mut);
    let shared_properties = union.as_ref().and_then(|u| u.get("properties")).cloned();
    let shared_required = union.as_ref().and_then(|u| u.get("required")).cloned();
    if let Some(u) = union {
        u.remove("properties");
        u.remove("required");
    }
    let mut refs = Vec::new();
    let mut mapping = Map::new();
    for mut branch in branches {
        if let (Some(Value::Object(shared)), Some(own)) = (&shared_properties, branch.as_object_mut()) {
            let properties = own.entry("properties").or_insert_with(|| json!({}));
            for (key, value) in shared {
                properties[key] = value.clone();
            }
            if let Some(Value::Array(shared)) = &shared_required {
                let required = own.entry("required").or_insert_with(|| json!([]));
                if let Some(list) = required.as_array_mut() {
                    list.extend(shared.iter().filter(|r| !list.contains(r)).cloned().collect::<Vec<_>>());
                }
            }
        }
        let value = branch["properties"][&tag]["const"].as_str().unwrap_or_default().to_owned();
        let mut component = format!("{name}{}", pascal(&value));
        while schemas.contains_key(&component) {
            component.push_str("Variant");
        }
        // A branch that extends another schema (`$ref` beside its own
        // keywords) says so with allOf, which every generator reads.
        if let Some(base) = branch.as_object_mut().and_then(|b| b.remove("$ref")) {
            let description = branch.as_object_mut().and_then(|b| b.remove("description"));
            let mut merged = json!({"allOf": [{"$ref": base}, branch]});
            if let Some(d) = description {
                merged["description"] = d;
            }
            branch = merged;
        }
        let reference = format!("#/components/schemas/{component}");
        refs.push(json!({"$ref": reference}));
        mapping.insert(value, json!(reference));
        schemas.insert(component, branch);
    }
    if let Some(union) = schemas.get_mut(name) {
        union["oneOf"] = Value::Array(refs);
        union["discriminator"] = json!({"propertyName": tag, "mapping": mapping});
    }
}

/// `create_object` → `CreateObject`.
fn pascal(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anything_is_an_empty_schema_and_string_enums_are_enums() {
        let mut s = json!({"type": "object", "additionalProperties": true, "properties": {
            "kind": {"description": "Which", "oneOf": [{"const": "A", "type": "string", "description": "first"}, {"const": "B", "type": "string"}]}
        }});
        shape(&mut s);
        assert_eq!(s["additionalProperties"], json!({}));
        assert_eq!(s["properties"]["kind"]["enum"], json!(["A", "B"]));
        assert_eq!(s["properties"]["kind"]["description"], "Which\n\n`A`: first");
        assert!(s["properties"]["kind"].get("oneOf").is_none());
    }

    #[test]
    fn a_tagged_union_gets_named_branches_and_a_discriminator() {
        let mut doc = json!({"paths": {}, "components": {"schemas": {"Change": {"oneOf": [
            {"type": "object", "required": ["op"], "properties": {"op": {"const": "create_object", "type": "string"}}},
            {"$ref": "#/components/schemas/Base", "type": "object", "required": ["op"], "properties": {"op": {"const": "drop", "type": "string"}}}
        ]}}}});
        shape_components(&mut doc);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Change"]["discriminator"]["propertyName"], "op");
        assert_eq!(
            schemas["Change"]["discriminator"]["mapping"]["create_object"],
            "#/components/schemas/ChangeCreateObject"
        );
        assert_eq!(schemas["ChangeDrop"]["allOf"][0]["$ref"], "#/components/schemas/Base");
        assert_eq!(schemas["ChangeCreateObject"]["properties"]["op"]["const"], "create_object");
    }
}
