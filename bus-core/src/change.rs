//! Changes of the content store, as requests describe them, and applying one
//! inside a transaction.

use crate::object_types::ObjectTypes;
use crate::sql::Conn;
use crate::store::ahead::Ahead;
use crate::store::documents::{self, DocumentInput, DocumentPatch};
use crate::store::objects::{self, ObjectInput, ObjectPatch};
use crate::store::{snapshot, Nulls, StoreError};
use connector_abi::{CmsObject, TaskType};
use serde::Deserialize;

/// One change (also the element of a batch: `{"op": "create_object", ...}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[derive(schemars::JsonSchema)]
pub enum Change {
    CreateObject {
        object_type: String,
        object: ObjectInput,
    },
    UpdateObject {
        object_type: String,
        #[serde(deserialize_with = "crate::json_int::integer")]
        id: i64,
        patch: ObjectPatch,
    },
    DeleteObject {
        object_type: String,
        #[serde(deserialize_with = "crate::json_int::integer")]
        id: i64,
    },
    AddToSite {
        object_type: String,
        #[serde(deserialize_with = "crate::json_int::integer")]
        id: i64,
        site_name: String,
    },
    RemoveFromSite {
        object_type: String,
        #[serde(deserialize_with = "crate::json_int::integer")]
        id: i64,
        site_name: String,
    },
    CreateDocument {
        document: DocumentInput,
    },
    UpdateDocument {
        #[serde(deserialize_with = "crate::json_int::integer")]
        document_id: i64,
        patch: DocumentPatch,
    },
    DeleteDocument {
        #[serde(deserialize_with = "crate::json_int::integer")]
        document_id: i64,
    },
    PublishDocument {
        #[serde(deserialize_with = "crate::json_int::integer")]
        document_id: i64,
    },
    ArchiveDocument {
        #[serde(deserialize_with = "crate::json_int::integer")]
        document_id: i64,
    },
}

/// A change as applied: what happened, to what, on which site.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub task_type: TaskType,
    /// The object or document after the change (before it, for a delete).
    pub object: CmsObject,
    /// The task's site: the object's site, or the target site of AddToSite
    /// and RemoveFromSite.
    pub site_name: Option<String>,
    /// True when `object` already carries its children and bindings (a
    /// deleted object's snapshot must be taken before it is gone).
    pub snapshot_loaded: bool,
}

/// Marks the snapshots that need no reading: nothing can refer to an
/// object before it exists, so an object created by one change of a
/// transaction can only have children or bindings made by a later change
/// of the same transaction — when no later change touches one of its child
/// or binding types, it has none, and its payload is built without asking
/// the database (a round trip per change on PostgreSQL).
pub(crate) fn mark_fresh_snapshots(types: &ObjectTypes, applied: &mut [Applied]) {
    for i in 0..applied.len() {
        let (done, later) = applied.split_at_mut(i + 1);
        let created = &mut done[i];
        let CmsObject::Object(o) = &created.object else { continue };
        if created.task_type != TaskType::CreateObject || created.snapshot_loaded {
            continue;
        }
        let referrers: Vec<&str> = types
            .children_of(&o.object_type)
            .into_iter()
            .map(|t| t.name.as_str())
            .chain(types.bindings_of(&o.object_type).into_iter().map(|(t, _)| t.name.as_str()))
            .collect();
        let referred_later = later.iter().any(|a| match &a.object {
            CmsObject::Object(other) => referrers.iter().any(|r| r.eq_ignore_ascii_case(&other.object_type)),
            CmsObject::Document(_) => false,
        });
        if !referred_later {
            created.snapshot_loaded = true;
        }
    }
}

/// Applies a change on `conn` (the caller's transaction).
pub(crate) fn apply(conn: &Conn, types: &ObjectTypes, change: Change) -> Result<Applied, StoreError> {
    apply_ahead(conn, types, change, &mut Ahead::default())
}

/// [`apply`], a created object taking its ID from `ahead` when one was
/// drawn (its insert then goes with the transaction's next round trip).
pub(crate) fn apply_ahead(
    conn: &Conn,
    types: &ObjectTypes,
    change: Change,
    ahead: &mut Ahead,
) -> Result<Applied, StoreError> {
    let object = |task_type, o: connector_abi::ObjectData, site: Option<String>| {
        let site_name = site.or_else(|| o.site_name.clone());
        Applied { task_type, object: CmsObject::Object(o), site_name, snapshot_loaded: false }
    };
    let document = |task_type, d: connector_abi::DocumentData| Applied {
        task_type,
        site_name: Some(d.site_name.clone()),
        object: CmsObject::Document(d),
        snapshot_loaded: false,
    };
    Ok(match change {
        Change::CreateObject { object_type, object: input } => {
            object(TaskType::CreateObject, objects::create_ahead(conn, types, &object_type, input, ahead)?, None)
        }
        Change::UpdateObject { object_type, id, patch } => {
            object(TaskType::UpdateObject, objects::update(conn, types, &object_type, id, patch, Nulls::Remove)?, None)
        }
        Change::DeleteObject { object_type, id } => {
            let mut before = objects::get_typed(conn, types, &object_type, id)?;
            snapshot::load(conn, types, &mut before)?;
            objects::delete(conn, types, &object_type, id)?;
            Applied { snapshot_loaded: true, ..object(TaskType::DeleteObject, before, None) }
        }
        Change::AddToSite { object_type, id, site_name } => {
            let o = objects::add_to_site(conn, types, &object_type, id, &site_name)?;
            object(TaskType::AddToSite, o, Some(site_name))
        }
        Change::RemoveFromSite { object_type, id, site_name } => {
            let o = objects::remove_from_site(conn, types, &object_type, id, &site_name)?;
            object(TaskType::RemoveFromSite, o, Some(site_name))
        }
        Change::CreateDocument { document: input } => {
            document(TaskType::CreateDocument, documents::create(conn, types, input)?)
        }
        Change::UpdateDocument { document_id, patch } => {
            document(TaskType::UpdateDocument, documents::update(conn, types, document_id, patch, Nulls::Remove)?)
        }
        Change::DeleteDocument { document_id } => {
            document(TaskType::DeleteDocument, documents::delete(conn, types, document_id)?)
        }
        Change::PublishDocument { document_id } => {
            document(TaskType::PublishDocument, documents::set_state(conn, types, document_id, true)?)
        }
        Change::ArchiveDocument { document_id } => {
            document(TaskType::ArchiveDocument, documents::set_state(conn, types, document_id, false)?)
        }
    })
}

/// The task title, as the task lists show it: `Create User 'Antonio'`,
/// `Add User 'Antonio' to site`, `Update document Apple iPad 2`.
pub fn title(types: &ObjectTypes, task_type: TaskType, object: &CmsObject) -> String {
    match object {
        CmsObject::Object(o) => {
            let kind = types.object(&o.object_type).map_or(o.object_type.as_str(), |t| t.display_name.as_str());
            let name = o.display_name.as_deref().filter(|n| !n.is_empty()).unwrap_or(&o.code_name);
            match task_type {
                TaskType::AddToSite => format!("Add {kind} '{name}' to site"),
                TaskType::RemoveFromSite => format!("Remove {kind} '{name}' from site"),
                TaskType::DeleteObject => format!("Delete {kind} '{name}'"),
                TaskType::UpdateObject => format!("Update {kind} '{name}'"),
                _ => format!("Create {kind} '{name}'"),
            }
        }
        CmsObject::Document(d) => {
            let verb = match task_type {
                TaskType::CreateDocument => "Create",
                TaskType::DeleteDocument => "Delete",
                TaskType::PublishDocument => "Publish",
                TaskType::ArchiveDocument => "Archive",
                _ => "Update",
            };
            format!("{verb} document {}", d.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn create(tx: &Conn, types: &ObjectTypes, object_type: &str, object: serde_json::Value) -> Applied {
        let object: ObjectInput = serde_json::from_value(object).unwrap();
        apply(tx, types, Change::CreateObject { object_type: object_type.into(), object }).unwrap()
    }

    #[test]
    fn a_new_objects_snapshot_is_read_only_when_a_later_change_may_refer_to_it() {
        let (_dir, db, _) = testing::database(&[]);
        let types = ObjectTypes::defaults();
        let mut conn = db.connect().unwrap();
        let tx = conn.transaction().unwrap();
        let user = create(&tx, &types, "cms.user", serde_json::json!({"code_name": "ann"}));
        let role = create(&tx, &types, "cms.role", serde_json::json!({"code_name": "editors"}));
        let CmsObject::Object(u) = &user.object else { panic!() };
        let CmsObject::Object(r) = &role.object else { panic!() };
        let binding =
            create(&tx, &types, "cms.userrole", serde_json::json!({"fields": {"UserID": u.id, "RoleID": r.id}}));
        let other = create(&tx, &types, "cms.user", serde_json::json!({"code_name": "bob"}));
        let mut applied = vec![user, role, binding, other];
        mark_fresh_snapshots(&types, &mut applied);
        let fresh: Vec<bool> = applied.iter().map(|a| a.snapshot_loaded).collect();
        // ann and editors get a binding later in the transaction: read;
        // the binding and bob have nothing after them that can refer.
        assert_eq!(fresh, [false, false, true, true]);
    }
}
