//! Foreign-key translation to external identifiers, from the translation data
//! captured when a task was logged (the spec's `TranslateColumnsToExternal`).

use crate::connector::Connector;
use crate::data::{CmsObject, Translations};
use serde_json::{Map, Value};
use std::fmt;

/// The foreign-key target naming a document's NodeID.
pub const DOCUMENT_NODE: &str = "document.node";
/// The foreign-key target naming a document's DocumentID (culture version).
pub const DOCUMENT_VERSION: &str = "document";

/// Foreign keys that could not be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslated(pub Vec<String>);

impl fmt::Display for Untranslated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not translate foreign keys: {}", self.0.join("; "))
    }
}

impl std::error::Error for Untranslated {}

/// Replaces every foreign-key value of `object` with the external ID the
/// connector returns for it. With `process_children`, the children and
/// bindings are translated too (for Snapshot: translate without children,
/// save the main object, then translate again with children).
///
/// Keys whose value is null or 0 are left as they are. A key the connector
/// cannot translate is left unchanged and reported in the error, after all
/// other keys were translated.
pub fn translate_columns_to_external<C: Connector>(
    connector: &C,
    object: &mut CmsObject,
    translations: &Translations,
    process_children: bool,
) -> Result<(), Untranslated> {
    let mut failures = Vec::new();
    match object {
        CmsObject::Object(o) => {
            translate_fields(connector, &o.object_type, &mut o.fields, &o.foreign_keys, translations, &mut failures);
            if process_children {
                for child in o.children.iter_mut().chain(o.bindings.iter_mut()) {
                    let mut wrapped = CmsObject::Object(std::mem::take(child));
                    if let Err(Untranslated(f)) =
                        translate_columns_to_external(connector, &mut wrapped, translations, true)
                    {
                        failures.extend(f);
                    }
                    if let CmsObject::Object(o) = wrapped {
                        *child = o;
                    }
                }
            }
        }
        CmsObject::Document(d) => {
            translate_fields(connector, &d.class_name, &mut d.fields, &d.foreign_keys, translations, &mut failures)
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    if translations.objects.is_empty() && translations.documents.is_empty() {
        failures.push(NO_TRANSLATION_DATA.to_owned());
    }
    Err(Untranslated(failures))
}

/// Said when a task came without any translation data: the usual cause is
/// the subscription's process type.
pub const NO_TRANSLATION_DATA: &str = "the task carries no translation data at all: a subscription with process type \
    AsyncSimple (data type Simple) gets the object only; subscribe with AsyncSimpleSnapshot or AsyncSnapshot \
    to get the translation data foreign keys need (see \"What each process type carries\" in connector-abi's README)";

fn translate_fields<C: Connector>(
    connector: &C,
    owner: &str,
    fields: &mut Map<String, Value>,
    foreign_keys: &Map<String, Value>,
    translations: &Translations,
    failures: &mut Vec<String>,
) {
    for (field, target) in foreign_keys {
        let Some(target) = target.as_str() else {
            continue;
        };
        let Some(id) = fields.get(field).and_then(Value::as_i64).filter(|id| *id != 0) else {
            continue;
        };
        let external = if target == DOCUMENT_NODE || target == DOCUMENT_VERSION {
            match translations.document(id) {
                Some(t) => connector.get_external_document_id(t, target == DOCUMENT_VERSION),
                None => {
                    failures.push(format!("{owner}.{field}: no translation data for document {id}"));
                    continue;
                }
            }
        } else {
            match translations.object(target, id) {
                Some(t) => connector.get_external_object_id(t),
                None => {
                    failures.push(format!("{owner}.{field}: no translation data for {target} {id}"));
                    continue;
                }
            }
        };
        match external {
            Some(ext) => {
                fields.insert(field.clone(), Value::from(ext));
            }
            None => failures.push(format!("{owner}.{field}: the connector knows no external ID for {target} {id}")),
        }
    }
}
