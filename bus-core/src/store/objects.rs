//! Objects: create, read, update, delete, add to and remove from a site.

use super::ahead::Ahead;
use super::guid::{is_guid, new_guid};
use super::{check_name, parse_fields, StoreError};
use crate::object_types::{ObjectType, ObjectTypes, SiteRule};
use crate::sql::{params, Conn, OptionalExtension, Row, ToValue};
use connector_abi::{ObjectData, ObjectRef, DOCUMENT_NODE, DOCUMENT_VERSION};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A new object, as a request describes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct ObjectInput {
    /// Required, except for bindings (derived from their keys).
    #[serde(default)]
    #[schemars(pattern(crate::text::NAME), length(max = 200))]
    pub code_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub site_name: Option<String>,
    #[serde(default, deserialize_with = "crate::json_int::optional")]
    pub group_id: Option<i64>,
    #[serde(default)]
    #[schemars(pattern(crate::text::GUID))]
    pub guid: Option<String>,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// Changes to an object; `fields` are merged into the stored ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct ObjectPatch {
    #[serde(default)]
    #[schemars(pattern(crate::text::NAME), length(max = 200))]
    pub code_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "crate::json_int::optional")]
    pub group_id: Option<i64>,
    /// Merged into the stored fields; through the API a field set to
    /// `null` is removed.
    #[serde(default)]
    pub fields: Option<Map<String, Value>>,
}

const SELECT: &str = "SELECT ObjectID, ObjectType, ObjectGUID, ObjectCodeName, ObjectDisplayName, ObjectSiteName, \
    ObjectParentType, ObjectParentID, ObjectGroupID, ObjectFields FROM CMS_Object";

fn from_row(r: &Row<'_>) -> crate::sql::Result<ObjectData> {
    let parent_type: Option<String> = r.get(6)?;
    let parent_id: Option<i64> = r.get(7)?;
    Ok(ObjectData {
        id: r.get(0)?,
        object_type: r.get(1)?,
        guid: Some(r.get(2)?),
        code_name: r.get(3)?,
        display_name: r.get(4)?,
        site_name: r.get(5)?,
        parent: parent_type.zip(parent_id).map(|(object_type, id)| ObjectRef { object_type, id }),
        group_id: r.get(8)?,
        fields: parse_fields(&r.get::<String>(9)?),
        ..Default::default()
    })
}

/// The type of `name`, or an error listing the known ones.
pub fn object_type<'t>(types: &'t ObjectTypes, name: &str) -> Result<&'t ObjectType, StoreError> {
    types
        .object(name)
        .ok_or_else(|| StoreError::UnknownObjectType { name: name.to_owned(), known: types.object_names().join(", ") })
}

/// Fills in which fields are foreign keys (from the type registry).
pub fn describe(types: &ObjectTypes, object: &mut ObjectData) {
    if let Some(t) = types.object(&object.object_type) {
        object.foreign_keys = t.foreign_keys.iter().map(|(f, to)| (f.clone(), Value::from(to.clone()))).collect();
    }
}

/// Any object by ID.
pub fn get(conn: &Conn, types: &ObjectTypes, id: i64) -> Result<Option<ObjectData>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE ObjectID = $1"))?;
    let mut object = stmt.query_row([id], from_row).optional()?;
    if let Some(o) = &mut object {
        describe(types, o);
    }
    Ok(object)
}

/// The object of `object_type` with `id`, or a clear not-found error.
pub fn get_typed(conn: &Conn, types: &ObjectTypes, object_type: &str, id: i64) -> Result<ObjectData, StoreError> {
    let t = self::object_type(types, object_type)?;
    match get(conn, types, id)? {
        Some(o) if o.object_type.eq_ignore_ascii_case(&t.name) => Ok(o),
        _ => Err(StoreError::NotFound(format!("there is no {} with ID {id}", t.name))),
    }
}

/// Objects of one type, oldest first, after `after_id`, optionally on one site.
pub fn list(
    conn: &Conn,
    types: &ObjectTypes,
    object_type: &str,
    site_name: Option<&str>,
    after_id: i64,
    limit: u32,
) -> Result<Vec<ObjectData>, StoreError> {
    let t = self::object_type(types, object_type)?;
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE ObjectType = $1 AND (ObjectSiteName = $2 OR $2 IS NULL) AND ObjectID > $3 ORDER BY ObjectID LIMIT {limit}"
    ))?;
    let mut rows = stmt.query_map(params![t.name, site_name, after_id], from_row)?.collect::<Result<Vec<_>, _>>()?;
    rows.iter_mut().for_each(|o| describe(types, o));
    Ok(rows)
}

/// The object of a type with a code name, site and parent (how objects are
/// identified across systems).
pub(crate) fn find_by_code_name(
    conn: &Conn,
    types: &ObjectTypes,
    object_type: &str,
    code_name: &str,
    site_name: Option<&str>,
    parent_id: Option<i64>,
) -> Result<Option<ObjectData>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE ObjectType = $1 AND ObjectCodeName = $2 COLLATE NOCASE \
         AND coalesce(ObjectSiteName, '') = coalesce($3, '') AND (ObjectParentID = $4 OR $4 IS NULL)"
    ))?;
    let mut object = stmt.query_row(params![object_type, code_name, site_name, parent_id], from_row).optional()?;
    if let Some(o) = &mut object {
        describe(types, o);
    }
    Ok(object)
}

fn site_exists(conn: &Conn, site: &str) -> Result<bool, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM CMS_Object WHERE ObjectType = 'cms.site' AND ObjectCodeName = $1 COLLATE NOCASE",
    )?;
    Ok(stmt.exists([site])?)
}

/// Checks the site of an object of type `t`.
fn check_site(conn: &Conn, t: &ObjectType, site: Option<&str>) -> Result<(), StoreError> {
    match (t.site, site) {
        (SiteRule::Global, Some(s)) => {
            Err(StoreError::Invalid(format!("{} objects are global: remove site_name `{s}`", t.name)))
        }
        (SiteRule::Site, None) => {
            Err(StoreError::Invalid(format!("{} objects belong to a site: give site_name", t.name)))
        }
        (_, Some(s)) if !site_exists(conn, s)? => {
            Err(StoreError::Invalid(format!("site `{s}` does not exist (create a cms.site with that code name first)")))
        }
        _ => Ok(()),
    }
}

/// Checks every foreign-key field of `fields` against the store.
pub(crate) fn check_foreign_keys(
    conn: &Conn,
    types: &ObjectTypes,
    owner: &str,
    foreign_keys: &std::collections::BTreeMap<String, String>,
    fields: &Map<String, Value>,
) -> Result<(), StoreError> {
    for (field, target) in foreign_keys {
        let id = match fields.get(field) {
            None | Some(Value::Null) => continue,
            Some(v) => v.as_i64().ok_or_else(|| {
                StoreError::Invalid(format!(
                    "field `{field}` of {owner} is a foreign key and must be an integer ID, not {v}"
                ))
            })?,
        };
        let exists = match target.as_str() {
            DOCUMENT_VERSION => {
                conn.prepare_cached("SELECT 1 FROM CMS_Document WHERE DocumentID = $1")?.exists([id])?
            }
            DOCUMENT_NODE => conn.prepare_cached("SELECT 1 FROM CMS_Tree WHERE NodeID = $1")?.exists([id])?,
            object_type => conn
                .prepare_cached("SELECT 1 FROM CMS_Object WHERE ObjectID = $1 AND ObjectType = $2")?
                .exists(params![id, object_type])?,
        };
        if !exists {
            let what = match target.as_str() {
                DOCUMENT_VERSION => "document".to_owned(),
                DOCUMENT_NODE => "document node".to_owned(),
                t => types.object(t).map_or_else(|| t.to_owned(), |t| t.name.clone()),
            };
            return Err(StoreError::Invalid(format!(
                "field `{field}` of {owner} refers to {what} {id}, which does not exist"
            )));
        }
    }
    Ok(())
}

/// A binding's code name, derived from its keys: `RoleID=5;UserID=3`.
fn binding_code_name(t: &ObjectType, fields: &Map<String, Value>) -> Result<String, StoreError> {
    t.foreign_keys
        .keys()
        .map(|f| match fields.get(f).and_then(Value::as_i64) {
            Some(id) => Ok(format!("{f}={id}")),
            None => Err(StoreError::Invalid(format!("{} is a binding: field `{f}` is required", t.name))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|parts| parts.join(";"))
}

fn parent_of(t: &ObjectType, fields: &Map<String, Value>) -> Result<Option<(String, i64)>, StoreError> {
    let (Some(field), Some(parent_type)) = (&t.parent_field, t.parent_type()) else { return Ok(None) };
    match fields.get(field).and_then(Value::as_i64) {
        Some(id) => Ok(Some((parent_type.to_owned(), id))),
        None => Err(StoreError::Invalid(format!(
            "{} objects have a parent: field `{field}` must name a {parent_type}",
            t.name
        ))),
    }
}

fn duplicate(t: &ObjectType, code_name: &str, site: Option<&str>) -> StoreError {
    let place = site.map(|s| format!(" on site `{s}`")).unwrap_or_default();
    StoreError::Duplicate(format!("a {} with code name `{code_name}` already exists{place}", t.name))
}

/// What is said when a new object's GUID is taken.
fn guid_in_use(guid: &str) -> String {
    format!("an object with GUID {guid} already exists")
}

/// The columns of a new object's row after its ID, in the order of
/// [`NewRow::write`]'s values.
macro_rules! new_object_columns {
    () => {
        "ObjectType, ObjectGUID, ObjectCodeName, ObjectDisplayName, ObjectSiteName, ObjectParentType, \
         ObjectParentID, ObjectGroupID, ObjectFields, ObjectLastModified"
    };
}

/// A new object's row, but for its ID.
struct NewRow<'a> {
    t: &'a ObjectType,
    guid: &'a str,
    code_name: &'a str,
    display_name: Option<&'a str>,
    site: Option<&'a str>,
    parent: Option<&'a (String, i64)>,
    group_id: Option<i64>,
    fields: &'a str,
}

impl NewRow<'_> {
    /// Inserts the row: with an ID drawn ahead, deferred and tagged with it
    /// (see `store/ahead.rs`); without, its ID drawn by the database.
    fn write(&self, conn: &Conn, drawn: Option<i64>) -> crate::sql::Result<i64> {
        let now = crate::db::now();
        let (parent_type, parent_id) = (self.parent.map(|p| &p.0), self.parent.map(|p| p.1));
        let values: [&dyn ToValue; 10] = [
            &self.t.name,
            &self.guid,
            &self.code_name,
            &self.display_name,
            &self.site,
            &parent_type,
            &parent_id,
            &self.group_id,
            &self.fields,
            &now,
        ];
        match drawn {
            Some(id) => {
                let with_id: Vec<&dyn ToValue> = std::iter::once(&id as &dyn ToValue).chain(values).collect();
                crate::driver::of(conn).defer_object(conn, &with_id, id).map(|()| id)
            }
            None => conn
                .prepare_cached(concat!(
                    "INSERT INTO CMS_Object (",
                    new_object_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ObjectID"
                ))?
                .query_row(&values[..], |r| r.get::<i64>(0)),
        }
    }
}

/// Creates an object; returns it as stored.
pub fn create(
    conn: &Conn,
    types: &ObjectTypes,
    object_type: &str,
    input: ObjectInput,
) -> Result<ObjectData, StoreError> {
    create_ahead(conn, types, object_type, input, &mut Ahead::default())
}

/// [`create`] with an ID drawn ahead, when `ahead` has one: the insert is
/// then deferred (see `store/ahead.rs`), and a GUID or code name found taken
/// when it is sent is answered as this change's.
pub(crate) fn create_ahead(
    conn: &Conn,
    types: &ObjectTypes,
    object_type: &str,
    input: ObjectInput,
    ahead: &mut Ahead,
) -> Result<ObjectData, StoreError> {
    let t = self::object_type(types, object_type)?;
    let site = input.site_name.as_deref().filter(|s| !s.is_empty());
    check_site(conn, t, site)?;
    check_foreign_keys(conn, types, &t.name, &t.foreign_keys, &input.fields)?;
    let code_name = match (&input.code_name, t.binding) {
        (Some(c), _) => c.clone(),
        (None, true) => binding_code_name(t, &input.fields)?,
        (None, false) => return Err(StoreError::Invalid(format!("code_name is required for a {}", t.name))),
    };
    check_name("code_name", &code_name)?;
    let parent = parent_of(t, &input.fields)?;
    let guid = match input.guid {
        Some(g) if is_guid(&g) => g,
        Some(g) => {
            return Err(StoreError::Invalid(format!("guid `{g}` is not a GUID (8-4-4-4-12 hexadecimal digits)")))
        }
        None => new_guid(),
    };
    let fields = serde_json::to_string(&input.fields).expect("a JSON map serializes");
    let row = NewRow {
        t,
        guid: &guid,
        code_name: &code_name,
        display_name: input.display_name.as_deref(),
        site,
        parent: parent.as_ref(),
        group_id: input.group_id,
        fields: &fields,
    };
    let drawn = ahead.take_id();
    let inserted = row.write(conn, drawn);
    if let (Some(id), Ok(_)) = (drawn, &inserted) {
        ahead.deferred(id, &guid, guid_in_use(&guid), duplicate(t, &code_name, site).to_string());
    }
    let id = match inserted {
        Ok(id) => id,
        Err(e) if StoreError::unique_violation(&e) => {
            let guid_taken = crate::driver::of(conn).guid_taken(conn, &e, &guid)?;
            return Err(if guid_taken {
                StoreError::Duplicate(guid_in_use(&guid))
            } else {
                duplicate(t, &code_name, site)
            });
        }
        Err(e) => return Err(e.into()),
    };
    let mut object = ObjectData {
        object_type: t.name.clone(),
        id,
        guid: Some(guid),
        code_name,
        display_name: input.display_name,
        site_name: site.map(str::to_owned),
        parent: parent.map(|(object_type, id)| ObjectRef { object_type, id }),
        group_id: input.group_id,
        fields: input.fields,
        ..Default::default()
    };
    describe(types, &mut object);
    Ok(object)
}

/// Updates an object; returns it as stored after the change.
pub fn update(
    conn: &Conn,
    types: &ObjectTypes,
    object_type: &str,
    id: i64,
    patch: ObjectPatch,
    nulls: super::Nulls,
) -> Result<ObjectData, StoreError> {
    let t = self::object_type(types, object_type)?;
    let current = get_typed(conn, types, object_type, id)?;
    let mut fields = current.fields.clone();
    if let Some(changes) = patch.fields {
        check_foreign_keys(conn, types, &t.name, &t.foreign_keys, &changes)?;
        super::merge_fields(&mut fields, changes, nulls);
    }
    let code_name = match (patch.code_name, t.binding) {
        (_, true) => binding_code_name(t, &fields)?,
        (Some(c), false) => c,
        (None, false) => current.code_name.clone(),
    };
    check_name("code_name", &code_name)?;
    let parent = parent_of(t, &fields)?;
    let display_name = patch.display_name.or(current.display_name);
    let group_id = patch.group_id.or(current.group_id);
    let text = serde_json::to_string(&fields).expect("a JSON map serializes");
    let updated = conn
        .prepare_cached(
            "UPDATE CMS_Object SET ObjectCodeName = $1, ObjectDisplayName = $2, ObjectGroupID = $3, ObjectFields = $4, \
             ObjectParentType = $5, ObjectParentID = $6, ObjectLastModified = bus_now() \
             WHERE ObjectID = $7",
        )?
        .execute(params![
            code_name,
            display_name,
            group_id,
            text,
            parent.as_ref().map(|p| &p.0),
            parent.as_ref().map(|p| p.1),
            id
        ]);
    match updated {
        Ok(_) => {}
        Err(e) if StoreError::unique_violation(&e) => {
            return Err(duplicate(t, &code_name, current.site_name.as_deref()))
        }
        Err(e) => return Err(e.into()),
    }
    if t.name == "cms.site" && code_name != current.code_name {
        move_site(conn, &current.code_name, &code_name)?;
    }
    Ok(get(conn, types, id)?.expect("the object exists"))
}

/// A renamed site keeps what is on it: its objects and document nodes name
/// the site by its code name, so they move to the new name in the change's
/// transaction (never left under a site that no longer exists).
fn move_site(conn: &Conn, from: &str, to: &str) -> Result<(), StoreError> {
    conn.execute("UPDATE CMS_Tree SET NodeSiteName = $1 WHERE NodeSiteName = $2 COLLATE NOCASE", params![to, from])?;
    conn.execute(
        "UPDATE CMS_Object SET ObjectSiteName = $1 WHERE ObjectSiteName = $2 COLLATE NOCASE",
        params![to, from],
    )?;
    Ok(())
}

/// IDs of objects of `binding_type` whose `field` holds `id`.
pub(crate) fn referencing(conn: &Conn, object_type: &str, field: &str, id: i64) -> Result<Vec<i64>, StoreError> {
    let found = crate::driver::of(conn).objects_referencing(conn, &[(object_type, field)], id)?;
    Ok(found.into_iter().map(|(_, object_id)| object_id).collect())
}

/// Deletes an object with its children and the bindings that refer to it;
/// refuses when another object still refers to it. Returns the object as it
/// was.
pub fn delete(conn: &Conn, types: &ObjectTypes, object_type: &str, id: i64) -> Result<ObjectData, StoreError> {
    let t = self::object_type(types, object_type)?;
    let current = get_typed(conn, types, object_type, id)?;
    let children: Vec<&str> = types.children_of(&t.name).iter().map(|c| c.name.as_str()).collect();
    for (referrer, field) in types.references_to(&t.name) {
        let is_child = children.iter().any(|c| c.eq_ignore_ascii_case(&referrer.name));
        if referrer.binding || is_child {
            continue;
        }
        if let Some(other) = referencing(conn, &referrer.name, field, id)?.first() {
            return Err(StoreError::Conflict(format!(
                "{} {id} is still referenced by {} {other} (field `{field}`); change or delete that first",
                t.name, referrer.name
            )));
        }
    }
    for class in types.document_classes() {
        for (field, target) in &class.foreign_keys {
            if !target.eq_ignore_ascii_case(&t.name) {
                continue;
            }
            let referrer = crate::driver::of(conn).document_referencing(conn, &class.class_name, field, id)?;
            if let Some(doc) = referrer {
                return Err(StoreError::Conflict(format!(
                    "{} {id} is still referenced by document {doc} (field `{field}`); change or delete that first",
                    t.name
                )));
            }
        }
    }
    if t.name == "cms.site" {
        let on_site = |sql: &str| -> Result<i64, StoreError> {
            Ok(conn.prepare_cached(sql)?.query_row([&current.code_name], |r| r.get(0))?)
        };
        let objects = on_site("SELECT COUNT(*) FROM CMS_Object WHERE ObjectSiteName = $1 COLLATE NOCASE")?;
        let documents = on_site("SELECT COUNT(*) FROM CMS_Tree WHERE NodeSiteName = $1 COLLATE NOCASE")?;
        if objects + documents > 0 {
            return Err(StoreError::Conflict(format!(
                "site `{}` still has {objects} object(s) and {documents} document node(s); delete or move them first",
                current.code_name
            )));
        }
    }
    delete_tree(conn, types, t, id)?;
    Ok(current)
}

fn delete_tree(conn: &Conn, types: &ObjectTypes, t: &ObjectType, id: i64) -> Result<(), StoreError> {
    for child_type in types.children_of(&t.name) {
        let field = child_type.parent_field.as_deref().expect("a child type has a parent field");
        for child in referencing(conn, &child_type.name, field, id)? {
            delete_tree(conn, types, child_type, child)?;
        }
    }
    for (binding, field) in types.bindings_of(&t.name) {
        for b in referencing(conn, &binding.name, field, id)? {
            conn.prepare_cached("DELETE FROM CMS_Object WHERE ObjectID = $1")?.execute([b])?;
        }
    }
    conn.prepare_cached("DELETE FROM CMS_Object WHERE ObjectID = $1")?.execute([id])?;
    Ok(())
}

fn site_id(conn: &Conn, site: &str) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "SELECT ObjectID FROM CMS_Object WHERE ObjectType = 'cms.site' AND ObjectCodeName = $1 COLLATE NOCASE",
    )?
    .query_row([site], |r| r.get(0))
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("site `{site}` does not exist")))
}

fn site_binding<'t>(
    types: &'t ObjectTypes,
    object_type: &str,
) -> Result<(&'t ObjectType, &'t crate::object_types::SiteBinding), StoreError> {
    let t = self::object_type(types, object_type)?;
    let b = t.site_binding.as_ref().ok_or_else(|| {
        StoreError::NotFound(format!(
            "{} objects have no site binding: they cannot be added to or removed from a site",
            t.name
        ))
    })?;
    Ok((t, b))
}

/// Adds an object to a site (creates its site binding); returns the object.
pub fn add_to_site(
    conn: &Conn,
    types: &ObjectTypes,
    object_type: &str,
    id: i64,
    site: &str,
) -> Result<ObjectData, StoreError> {
    let (t, b) = site_binding(types, object_type)?;
    let object = get_typed(conn, types, &t.name, id)?;
    let site_id = site_id(conn, site)?;
    let mut fields = Map::new();
    fields.insert(b.object_field.clone(), Value::from(id));
    fields.insert(b.site_field.clone(), Value::from(site_id));
    match create(conn, types, &b.object_type, ObjectInput { fields, ..Default::default() }) {
        Ok(_) => Ok(object),
        Err(StoreError::Duplicate(_)) => {
            Err(StoreError::Duplicate(format!("{} {id} is already on site `{site}`", t.name)))
        }
        Err(e) => Err(e),
    }
}

/// Removes an object from a site (deletes its site binding); returns the object.
pub fn remove_from_site(
    conn: &Conn,
    types: &ObjectTypes,
    object_type: &str,
    id: i64,
    site: &str,
) -> Result<ObjectData, StoreError> {
    let (t, b) = site_binding(types, object_type)?;
    let object = get_typed(conn, types, &t.name, id)?;
    let site_id = site_id(conn, site)?;
    let bindings = referencing(conn, &b.object_type, &b.object_field, id)?;
    for binding in bindings {
        let row = get(conn, types, binding)?.expect("the binding exists");
        if row.fields.get(&b.site_field).and_then(Value::as_i64) == Some(site_id) {
            conn.prepare_cached("DELETE FROM CMS_Object WHERE ObjectID = $1")?.execute([binding])?;
            return Ok(object);
        }
    }
    Err(StoreError::NotFound(format!("{} {id} is not on site `{site}`", t.name)))
}
