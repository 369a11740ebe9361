//! Documents: nodes of the content tree per site, each with culture versions.

use super::guid::{is_guid, new_guid};
use super::objects::check_foreign_keys;
use super::{check_name, parse_fields, StoreError};
use crate::object_types::{DocumentClass, ObjectTypes};
use crate::sql::{params, Conn, OptionalExtension, Row};
use connector_abi::DocumentData;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A new document (a new node, or a new culture version of an existing node
/// at the same alias path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct DocumentInput {
    pub site_name: String,
    /// `/Products/Apple iPad 2`; the parent path must exist (except `/`).
    #[schemars(pattern(crate::text::ALIAS_PATH), length(max = 450))]
    pub alias_path: String,
    pub class_name: String,
    #[schemars(pattern(crate::text::CULTURE), length(max = 10))]
    pub culture: String,
    #[schemars(pattern(crate::text::NAME), length(max = 200))]
    pub name: String,
    #[serde(default)]
    pub fields: Map<String, Value>,
    #[serde(default)]
    pub published: bool,
    /// For a new node only.
    #[serde(default)]
    #[schemars(pattern(crate::text::GUID))]
    pub node_guid: Option<String>,
}

/// Changes to a document; `fields` are merged into the stored ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct DocumentPatch {
    #[serde(default)]
    #[schemars(pattern(crate::text::NAME), length(max = 200))]
    pub name: Option<String>,
    /// Merged into the stored fields; through the API a field set to
    /// `null` is removed.
    #[serde(default)]
    pub fields: Option<Map<String, Value>>,
}

const SELECT: &str = "SELECT n.NodeID, n.NodeGUID, n.NodeAliasPath, n.NodeParentID, n.NodeClassName, n.NodeSiteName, \
    d.DocumentID, d.DocumentCulture, d.DocumentName, d.DocumentPublished, d.DocumentArchived, d.DocumentFields \
    FROM CMS_Document d JOIN CMS_Tree n ON n.NodeID = d.DocumentNodeID";

fn from_row(r: &Row<'_>) -> crate::sql::Result<DocumentData> {
    Ok(DocumentData {
        node_id: r.get(0)?,
        node_guid: r.get(1)?,
        node_alias_path: r.get(2)?,
        node_parent_id: r.get(3)?,
        class_name: r.get(4)?,
        site_name: r.get(5)?,
        document_id: r.get(6)?,
        culture: r.get(7)?,
        name: r.get(8)?,
        published: r.get::<i64>(9)? != 0,
        archived: r.get::<i64>(10)? != 0,
        fields: parse_fields(&r.get::<String>(11)?),
        ..Default::default()
    })
}

fn class<'t>(types: &'t ObjectTypes, name: &str) -> Result<&'t DocumentClass, StoreError> {
    types.document(name).ok_or_else(|| StoreError::UnknownDocumentClass {
        name: name.to_owned(),
        known: types.document_names().join(", "),
    })
}

/// Fills in which fields are foreign keys (from the class registry).
pub fn describe(types: &ObjectTypes, document: &mut DocumentData) {
    if let Some(c) = types.document(&document.class_name) {
        document.foreign_keys = c.foreign_keys.iter().map(|(f, to)| (f.clone(), Value::from(to.clone()))).collect();
    }
}

fn one(
    conn: &Conn,
    types: &ObjectTypes,
    filter: &str,
    p: impl crate::sql::Params,
) -> Result<Option<DocumentData>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE {filter}"))?;
    let mut doc = stmt.query_row(p, from_row).optional()?;
    if let Some(d) = &mut doc {
        describe(types, d);
    }
    Ok(doc)
}

/// A document (culture version) by DocumentID.
pub fn get(conn: &Conn, types: &ObjectTypes, document_id: i64) -> Result<DocumentData, StoreError> {
    one(conn, types, "d.DocumentID = $1", [document_id])?
        .ok_or_else(|| StoreError::NotFound(format!("there is no document with ID {document_id}")))
}

/// The culture version of the node with `node_guid` on `site`.
pub(crate) fn find_by_guid(
    conn: &Conn,
    types: &ObjectTypes,
    node_guid: &str,
    culture: &str,
    site: &str,
) -> Result<Option<DocumentData>, StoreError> {
    one(
        conn,
        types,
        "n.NodeGUID = $1 AND d.DocumentCulture = $2 COLLATE NOCASE AND n.NodeSiteName = $3 COLLATE NOCASE",
        params![node_guid, culture, site],
    )
}

/// Documents, oldest first, optionally of one site and under a path prefix.
pub fn list(
    conn: &Conn,
    types: &ObjectTypes,
    site: Option<&str>,
    path_prefix: Option<&str>,
    after_id: i64,
    limit: u32,
) -> Result<Vec<DocumentData>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE (n.NodeSiteName = $1 OR $1 IS NULL) AND (substr(n.NodeAliasPath, 1, length($2)) = $2 OR $2 IS NULL) \
         AND d.DocumentID > $3 ORDER BY d.DocumentID LIMIT {limit}"
    ))?;
    let mut rows = stmt.query_map(params![site, path_prefix, after_id], from_row)?.collect::<Result<Vec<_>, _>>()?;
    rows.iter_mut().for_each(|d| describe(types, d));
    Ok(rows)
}

fn check_alias_path(path: &str) -> Result<(), StoreError> {
    let ok = crate::text::is_alias_path(path) && path.chars().count() <= crate::text::MAX_ALIAS_PATH;
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "alias_path `{path}` is not valid: write it like `/Products/Apple iPad 2` (starts with `/`, no empty, `.` or `..` segments, no trailing `/`)"
        )))
    }
}

fn check_culture(culture: &str) -> Result<(), StoreError> {
    let ok = crate::text::is_culture(culture) && culture.len() <= crate::text::MAX_CULTURE;
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("culture `{culture}` is not a culture code such as `en-US`")))
    }
}

fn site_exists(conn: &Conn, site: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM CMS_Object WHERE ObjectType = 'cms.site' AND ObjectCodeName = $1 COLLATE NOCASE",
        )?
        .exists([site])?)
}

/// Creates a document; returns it as stored.
pub fn create(conn: &Conn, types: &ObjectTypes, input: DocumentInput) -> Result<DocumentData, StoreError> {
    let class = class(types, &input.class_name)?;
    check_alias_path(&input.alias_path)?;
    check_culture(&input.culture)?;
    check_name("name", &input.name)?;
    if !site_exists(conn, &input.site_name)? {
        return Err(StoreError::Invalid(format!("site `{}` does not exist", input.site_name)));
    }
    check_foreign_keys(conn, types, &class.class_name, &class.foreign_keys, &input.fields)?;
    let node: Option<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT NodeID, NodeClassName, NodeGUID FROM CMS_Tree WHERE NodeSiteName = $1 AND NodeAliasPath = $2",
        )?
        .query_row(params![input.site_name, input.alias_path], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let node_id = match node {
        Some((id, existing_class, existing_guid)) => {
            if !existing_class.eq_ignore_ascii_case(&class.class_name) {
                return Err(StoreError::Conflict(format!(
                    "the node at {} is a {existing_class}, not a {}",
                    input.alias_path, class.class_name
                )));
            }
            if input.node_guid.as_ref().is_some_and(|g| !g.eq_ignore_ascii_case(&existing_guid)) {
                return Err(StoreError::Conflict(format!(
                    "the node at {} has GUID {existing_guid}, not the node_guid given",
                    input.alias_path
                )));
            }
            id
        }
        None => {
            let parent_path = &input.alias_path[..input.alias_path.rfind('/').expect("an alias path starts with /")];
            let parent_id: Option<i64> = if parent_path.is_empty() {
                None
            } else {
                Some(
                    conn.prepare_cached("SELECT NodeID FROM CMS_Tree WHERE NodeSiteName = $1 AND NodeAliasPath = $2")?
                        .query_row(params![input.site_name, parent_path], |r| r.get(0))
                        .optional()?
                        .ok_or_else(|| {
                            StoreError::Invalid(format!(
                                "the parent document {parent_path} does not exist on site `{}`",
                                input.site_name
                            ))
                        })?,
                )
            };
            let guid = match input.node_guid {
                Some(g) if is_guid(&g) => g,
                Some(g) => return Err(StoreError::Invalid(format!("node_guid `{g}` is not a GUID"))),
                None => new_guid(),
            };
            conn.prepare_cached(
                "INSERT INTO CMS_Tree (NodeGUID, NodeAliasPath, NodeParentID, NodeClassName, NodeSiteName) VALUES ($1, $2, $3, $4, $5) RETURNING NodeID",
            )?
            .query_row(params![guid, input.alias_path, parent_id, class.class_name, input.site_name], |r| r.get(0))
            .map_err(|e| {
                if StoreError::unique_violation(&e) {
                    StoreError::Duplicate(format!("a node with GUID {guid} already exists"))
                } else {
                    e.into()
                }
            })?
        }
    };
    let fields = serde_json::to_string(&input.fields).expect("a JSON map serializes");
    let document_id = conn.prepare_cached(
        "INSERT INTO CMS_Document (DocumentNodeID, DocumentCulture, DocumentName, DocumentFields, DocumentPublished) \
         VALUES ($1, $2, $3, $4, $5) RETURNING DocumentID",
    )?
    .query_row(params![node_id, input.culture, input.name, fields, input.published], |r| r.get::<i64>(0))
    .map_err(|e| {
        if StoreError::unique_violation(&e) {
            StoreError::Duplicate(format!("{} already has a {} version", input.alias_path, input.culture))
        } else {
            e.into()
        }
    })?;
    get(conn, types, document_id)
}

/// Updates a document; returns it as stored after the change.
pub fn update(
    conn: &Conn,
    types: &ObjectTypes,
    document_id: i64,
    patch: DocumentPatch,
    nulls: super::Nulls,
) -> Result<DocumentData, StoreError> {
    let current = get(conn, types, document_id)?;
    let mut fields = current.fields.clone();
    if let Some(changes) = patch.fields {
        let class = class(types, &current.class_name)?;
        check_foreign_keys(conn, types, &class.class_name, &class.foreign_keys, &changes)?;
        super::merge_fields(&mut fields, changes, nulls);
    }
    let name = patch.name.unwrap_or(current.name);
    check_name("name", &name)?;
    conn.prepare_cached(
        "UPDATE CMS_Document SET DocumentName = $1, DocumentFields = $2, \
         DocumentLastModified = bus_now() WHERE DocumentID = $3",
    )?
    .execute(params![name, serde_json::to_string(&fields).expect("a JSON map serializes"), document_id])?;
    get(conn, types, document_id)
}

/// Publishes (`true`) or archives (`false`) a document.
pub(crate) fn set_state(
    conn: &Conn,
    types: &ObjectTypes,
    document_id: i64,
    publish: bool,
) -> Result<DocumentData, StoreError> {
    get(conn, types, document_id)?;
    conn.prepare_cached(
        "UPDATE CMS_Document SET DocumentPublished = $1, DocumentArchived = $2, \
         DocumentLastModified = bus_now() WHERE DocumentID = $3",
    )?
    .execute(params![publish, !publish, document_id])?;
    get(conn, types, document_id)
}

/// Deletes a culture version (and its node with the last one); refuses while
/// the node has child nodes. Returns the document as it was.
pub fn delete(conn: &Conn, types: &ObjectTypes, document_id: i64) -> Result<DocumentData, StoreError> {
    let current = get(conn, types, document_id)?;
    let versions: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM CMS_Document WHERE DocumentNodeID = $1")?
        .query_row([current.node_id], |r| r.get(0))?;
    if versions == 1 {
        let children: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM CMS_Tree WHERE NodeParentID = $1")?
            .query_row([current.node_id], |r| r.get(0))?;
        if children > 0 {
            return Err(StoreError::Conflict(format!(
                "{} has {children} child document(s); delete them first",
                current.node_alias_path
            )));
        }
    }
    conn.prepare_cached("DELETE FROM CMS_Document WHERE DocumentID = $1")?.execute([document_id])?;
    if versions == 1 {
        conn.prepare_cached("DELETE FROM CMS_Tree WHERE NodeID = $1")?.execute([current.node_id])?;
    }
    Ok(current)
}
