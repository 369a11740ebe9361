//! Snapshot data: an object with its children (recursively) and bindings.

use super::objects;
use super::StoreError;
use crate::object_types::ObjectTypes;
use crate::sql::Conn;
use connector_abi::ObjectData;

/// Loads the children and bindings of `object` (and of its children).
/// Children and bindings are found in one query (one round trip on
/// PostgreSQL), then read one by one.
pub(crate) fn load(conn: &Conn, types: &ObjectTypes, object: &mut ObjectData) -> Result<(), StoreError> {
    let children = types.children_of(&object.object_type);
    let mut references: Vec<(&str, &str)> = children
        .iter()
        .map(|c| (c.name.as_str(), c.parent_field.as_deref().expect("a child type has a parent field")))
        .collect();
    references.extend(types.bindings_of(&object.object_type).into_iter().map(|(b, field)| (b.name.as_str(), field)));
    let found = crate::driver::of(conn).objects_referencing(conn, &references, object.id)?;
    for (index, id) in found {
        if index < children.len() {
            if let Some(mut child) = objects::get(conn, types, id)? {
                load(conn, types, &mut child)?;
                object.children.push(child);
            }
        } else if let Some(binding) = objects::get(conn, types, id)? {
            object.bindings.push(binding);
        }
    }
    Ok(())
}
