//! Capturing translation data when a task is logged: for every foreign key,
//! what identifies the referenced object or document in any system.

use super::objects;
use super::StoreError;
use crate::object_types::ObjectTypes;
use crate::sql::{params, Conn, OptionalExtension};
use connector_abi::{DocumentTranslation, ObjectTranslation, Translations, DOCUMENT_NODE, DOCUMENT_VERSION};
use serde_json::{Map, Value};

/// Adds to `out` a record for every foreign key of `fields` (described by
/// `foreign_keys`: field → target). References to missing items are skipped
/// (the store refuses dangling keys, so only a deleted target is missing).
pub(crate) fn collect(
    conn: &Conn,
    types: &ObjectTypes,
    fields: &Map<String, Value>,
    foreign_keys: &Map<String, Value>,
    out: &mut Translations,
) -> Result<(), StoreError> {
    for (field, target) in foreign_keys {
        let (Some(target), Some(id)) = (target.as_str(), fields.get(field).and_then(Value::as_i64)) else { continue };
        match target {
            DOCUMENT_VERSION | DOCUMENT_NODE => {
                if out.document(id).is_some() {
                    continue;
                }
                if let Some(t) = document(conn, id, target == DOCUMENT_VERSION)? {
                    out.documents.push(t);
                }
            }
            object_type => {
                if out.object(object_type, id).is_some() {
                    continue;
                }
                if let Some(o) = objects::get(conn, types, id)? {
                    out.objects.push(ObjectTranslation {
                        object_type: o.object_type,
                        id,
                        code_name: o.code_name,
                        site_name: o.site_name,
                        parent_type: o.parent.as_ref().map(|p| p.object_type.clone()),
                        parent_id: o.parent.as_ref().map(|p| p.id),
                        group_id: o.group_id,
                    });
                }
            }
        }
    }
    Ok(())
}

/// The translation record of a document: by DocumentID (`by_document_id`) or
/// by NodeID (then the culture is that of the node's first version).
fn document(conn: &Conn, id: i64, by_document_id: bool) -> Result<Option<DocumentTranslation>, StoreError> {
    let sql = if by_document_id {
        "SELECT n.NodeClassName, n.NodeGUID, d.DocumentCulture, n.NodeSiteName FROM CMS_Document d \
         JOIN CMS_Tree n ON n.NodeID = d.DocumentNodeID WHERE d.DocumentID = $1"
    } else {
        "SELECT n.NodeClassName, n.NodeGUID, coalesce((SELECT DocumentCulture FROM CMS_Document WHERE DocumentNodeID = n.NodeID \
         ORDER BY DocumentID LIMIT 1), ''), n.NodeSiteName FROM CMS_Tree n WHERE n.NodeID = $1"
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![id], |r| {
            Ok(DocumentTranslation {
                id,
                class_name: r.get(0)?,
                node_guid: r.get(1)?,
                culture: r.get(2)?,
                site_name: r.get(3)?,
            })
        })
        .optional()?)
}
