//! Applying an incoming task to the content store: foreign keys are resolved
//! from external to internal IDs through the translation data (objects by
//! code name and site, documents by node GUID, culture and site), then the
//! change is made — with its children and bindings for Snapshot — inside the
//! caller's transaction.

use crate::change::Applied;
use crate::object_types::ObjectTypes;
use crate::outgoing::payload::Payload;
use crate::sql::Conn;
use crate::store::documents::{self, DocumentInput, DocumentPatch};
use crate::store::objects::{self, ObjectInput, ObjectPatch};
use crate::store::{snapshot, Nulls, StoreError};
use connector_abi::{
    CmsObject, DocumentData, ObjectData, TaskDataType, TaskType, Translations, DOCUMENT_NODE, DOCUMENT_VERSION,
};
use serde_json::{Map, Value};

/// Applies one incoming task; returns what changed (for outgoing logging).
pub(super) fn apply(
    conn: &Conn,
    types: &ObjectTypes,
    payload: Payload,
    task_type: TaskType,
    data_type: TaskDataType,
    site: Option<&str>,
) -> Result<Vec<Applied>, StoreError> {
    let t = &payload.translations;
    match payload.object {
        CmsObject::Object(o) => {
            let mut applied = Vec::new();
            let main = apply_object(conn, types, &o, t, task_type, data_type, site, &mut applied)?;
            if data_type.has_children() && task_type != TaskType::DeleteObject {
                apply_children(conn, types, &o, main, t, data_type, &mut applied)?;
            }
            Ok(applied)
        }
        CmsObject::Document(d) => Ok(vec![apply_document(conn, types, d, t, task_type, data_type, site)?]),
    }
}

/// Turns external foreign-key values into internal IDs.
fn resolve(
    conn: &Conn,
    types: &ObjectTypes,
    owner: &str,
    fields: &Map<String, Value>,
    foreign_keys: &std::collections::BTreeMap<String, String>,
    translations: &Translations,
    data_type: TaskDataType,
) -> Result<Map<String, Value>, StoreError> {
    let mut out = fields.clone();
    for (field, target) in foreign_keys {
        let Some(external) = fields.get(field).and_then(Value::as_i64) else { continue };
        if !data_type.has_translations() {
            // Simple: the values are taken as internal IDs (and checked).
            continue;
        }
        let internal = if target == DOCUMENT_VERSION || target == DOCUMENT_NODE {
            let rec = translations.document(external).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "{owner}.{field} holds external ID {external} but the task has no translation data for it"
                ))
            })?;
            let doc = documents::find_by_guid(conn, types, &rec.node_guid, &rec.culture, &rec.site_name)?.ok_or_else(
                || {
                    StoreError::Invalid(format!(
                        "{owner}.{field} refers to document {} ({}) on site `{}`, which is not in the content store",
                        rec.node_guid, rec.culture, rec.site_name
                    ))
                },
            )?;
            if target == DOCUMENT_VERSION {
                doc.document_id
            } else {
                doc.node_id
            }
        } else {
            let rec = translations.object(target, external).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "{owner}.{field} holds external ID {external} but the task has no translation data for it"
                ))
            })?;
            let site = rec.site_name.as_deref().map(|s| format!(" on site `{s}`")).unwrap_or_default();
            let found =
                objects::find_by_code_name(conn, types, target, &rec.code_name, rec.site_name.as_deref(), None)?;
            found
                .ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "{owner}.{field} refers to {target} `{}`{site}, which is not in the content store",
                        rec.code_name
                    ))
                })?
                .id
        };
        out.insert(field.clone(), Value::from(internal));
    }
    Ok(out)
}

fn object_type<'t>(types: &'t ObjectTypes, o: &ObjectData) -> Result<&'t crate::object_types::ObjectType, StoreError> {
    objects::object_type(types, &o.object_type)
}

/// The stored object an incoming object stands for: by code name (derived
/// from the resolved keys for a binding) and site.
fn existing(
    conn: &Conn,
    types: &ObjectTypes,
    o: &ObjectData,
    fields: &Map<String, Value>,
    site: Option<&str>,
) -> Result<Option<ObjectData>, StoreError> {
    let t = object_type(types, o)?;
    let code_name = if t.binding {
        t.foreign_keys
            .keys()
            .map(|f| fields.get(f).and_then(Value::as_i64).map(|id| format!("{f}={id}")))
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.join(";"))
            .unwrap_or_default()
    } else {
        o.code_name.clone()
    };
    objects::find_by_code_name(conn, types, &t.name, &code_name, site, None)
}

#[allow(clippy::too_many_arguments)]
fn apply_object(
    conn: &Conn,
    types: &ObjectTypes,
    o: &ObjectData,
    t: &Translations,
    task_type: TaskType,
    data_type: TaskDataType,
    task_site: Option<&str>,
    applied: &mut Vec<Applied>,
) -> Result<i64, StoreError> {
    let ty = object_type(types, o)?;
    let fields = resolve(conn, types, &ty.name, &o.fields, &ty.foreign_keys, t, data_type)?;
    let own_site = o.site_name.as_deref().or(match task_type {
        TaskType::AddToSite | TaskType::RemoveFromSite => None,
        _ => task_site,
    });
    let own_site = own_site.filter(|_| ty.site != crate::object_types::SiteRule::Global);
    let missing = || {
        let place = own_site.map(|s| format!(" on site `{s}`")).unwrap_or_default();
        StoreError::NotFound(format!(
            "{} `{}`{place} is not in the content store, so it cannot be {}",
            ty.name,
            o.code_name,
            verb(task_type)
        ))
    };
    let (task_type, object, site_name) = match task_type {
        TaskType::CreateObject => {
            let input = ObjectInput {
                code_name: (!ty.binding).then(|| o.code_name.clone()),
                display_name: o.display_name.clone(),
                site_name: own_site.map(str::to_owned),
                group_id: o.group_id,
                guid: o.guid.clone(),
                fields,
            };
            let created = objects::create(conn, types, &ty.name, input)?;
            let site = created.site_name.clone();
            (task_type, created, site)
        }
        TaskType::UpdateObject => {
            let current = existing(conn, types, o, &fields, own_site)?.ok_or_else(missing)?;
            let patch = ObjectPatch {
                code_name: None,
                display_name: o.display_name.clone(),
                group_id: o.group_id,
                fields: Some(fields),
            };
            let updated = objects::update(conn, types, &ty.name, current.id, patch, Nulls::Keep)?;
            let site = updated.site_name.clone();
            (task_type, updated, site)
        }
        TaskType::DeleteObject => {
            let mut current = existing(conn, types, o, &fields, own_site)?.ok_or_else(missing)?;
            snapshot::load(conn, types, &mut current)?;
            objects::delete(conn, types, &ty.name, current.id)?;
            let site = current.site_name.clone();
            applied.push(Applied {
                task_type,
                site_name: site,
                object: CmsObject::Object(current.clone()),
                snapshot_loaded: true,
            });
            return Ok(current.id);
        }
        TaskType::AddToSite | TaskType::RemoveFromSite => {
            let site =
                task_site.ok_or_else(|| StoreError::Invalid(format!("{task_type} needs the task's site_name")))?;
            let current = existing(conn, types, o, &fields, own_site)?.ok_or_else(missing)?;
            let object = if task_type == TaskType::AddToSite {
                objects::add_to_site(conn, types, &ty.name, current.id, site)?
            } else {
                objects::remove_from_site(conn, types, &ty.name, current.id, site)?
            };
            (task_type, object, Some(site.to_owned()))
        }
        other => return Err(StoreError::Invalid(format!("task type {other} does not apply to an object"))),
    };
    let id = object.id;
    applied.push(Applied { task_type, site_name, object: CmsObject::Object(object), snapshot_loaded: false });
    Ok(id)
}

fn verb(task_type: TaskType) -> &'static str {
    match task_type {
        TaskType::DeleteObject | TaskType::DeleteDocument => "deleted",
        TaskType::AddToSite => "added to the site",
        TaskType::RemoveFromSite => "removed from the site",
        TaskType::PublishDocument => "published",
        TaskType::ArchiveDocument => "archived",
        _ => "updated",
    }
}

/// Snapshot: creates or updates the children and bindings of the object
/// stored as `main`, pointing their parent keys at it.
fn apply_children(
    conn: &Conn,
    types: &ObjectTypes,
    o: &ObjectData,
    main: i64,
    t: &Translations,
    data_type: TaskDataType,
    applied: &mut Vec<Applied>,
) -> Result<(), StoreError> {
    let main_type = object_type(types, o)?;
    for child in o.children.iter().chain(&o.bindings) {
        let ct = object_type(types, child)?;
        // The key that points at the main object is set to its internal ID;
        // the others are resolved like any foreign key.
        let link = ct
            .foreign_keys
            .iter()
            .find(|(f, to)| {
                to.eq_ignore_ascii_case(&main_type.name)
                    && (ct.binding || ct.parent_field.as_deref() == Some(f.as_str()))
            })
            .map(|(f, _)| f.clone())
            .ok_or_else(|| {
                StoreError::Invalid(format!("{} is neither a child nor a binding of {}", ct.name, main_type.name))
            })?;
        let mut keys = ct.foreign_keys.clone();
        keys.remove(&link);
        let mut fields = resolve(conn, types, &ct.name, &child.fields, &keys, t, data_type)?;
        fields.insert(link, Value::from(main));
        let site = child.site_name.as_deref();
        let (task_type, object) = match existing(conn, types, child, &fields, site)? {
            Some(current) => {
                let patch = ObjectPatch {
                    code_name: None,
                    display_name: child.display_name.clone(),
                    group_id: child.group_id,
                    fields: Some(fields),
                };
                (TaskType::UpdateObject, objects::update(conn, types, &ct.name, current.id, patch, Nulls::Keep)?)
            }
            None => {
                let input = ObjectInput {
                    code_name: (!ct.binding).then(|| child.code_name.clone()),
                    display_name: child.display_name.clone(),
                    site_name: site.map(str::to_owned),
                    group_id: child.group_id,
                    guid: None,
                    fields,
                };
                (TaskType::CreateObject, objects::create(conn, types, &ct.name, input)?)
            }
        };
        let site_name = object.site_name.clone();
        applied.push(Applied { task_type, site_name, object: CmsObject::Object(object), snapshot_loaded: false });
    }
    Ok(())
}

fn apply_document(
    conn: &Conn,
    types: &ObjectTypes,
    d: DocumentData,
    t: &Translations,
    task_type: TaskType,
    data_type: TaskDataType,
    task_site: Option<&str>,
) -> Result<Applied, StoreError> {
    let class = types.document(&d.class_name).ok_or_else(|| StoreError::UnknownDocumentClass {
        name: d.class_name.clone(),
        known: types.document_names().join(", "),
    })?;
    let fields = resolve(conn, types, &class.class_name, &d.fields, &class.foreign_keys, t, data_type)?;
    let site = if d.site_name.is_empty() { task_site.unwrap_or_default().to_owned() } else { d.site_name.clone() };
    let find = || -> Result<DocumentData, StoreError> {
        documents::find_by_guid(conn, types, &d.node_guid, &d.culture, &site)?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "document {} ({}) on site `{site}` is not in the content store, so it cannot be {}",
                d.node_guid,
                d.culture,
                verb(task_type)
            ))
        })
    };
    let document = match task_type {
        TaskType::CreateDocument => documents::create(
            conn,
            types,
            DocumentInput {
                site_name: site.clone(),
                alias_path: d.node_alias_path.clone(),
                class_name: class.class_name.clone(),
                culture: d.culture.clone(),
                name: d.name.clone(),
                fields,
                published: d.published,
                node_guid: (!d.node_guid.is_empty()).then(|| d.node_guid.clone()),
            },
        )?,
        TaskType::UpdateDocument => {
            let current = find()?;
            documents::update(
                conn,
                types,
                current.document_id,
                DocumentPatch { name: Some(d.name.clone()), fields: Some(fields) },
                Nulls::Keep,
            )?
        }
        TaskType::DeleteDocument => documents::delete(conn, types, find()?.document_id)?,
        TaskType::PublishDocument => documents::set_state(conn, types, find()?.document_id, true)?,
        TaskType::ArchiveDocument => documents::set_state(conn, types, find()?.document_id, false)?,
        other => return Err(StoreError::Invalid(format!("task type {other} does not apply to a document"))),
    };
    Ok(Applied {
        task_type,
        site_name: Some(document.site_name.clone()),
        object: CmsObject::Document(document),
        snapshot_loaded: false,
    })
}
