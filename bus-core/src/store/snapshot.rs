//! Snapshot data: an object with its children (recursively) and bindings.

use super::objects::{self, referencing};
use super::StoreError;
use crate::object_types::ObjectTypes;
use crate::sql::Conn;
use connector_abi::ObjectData;

/// Loads the children and bindings of `object` (and of its children).
pub(crate) fn load(conn: &Conn, types: &ObjectTypes, object: &mut ObjectData) -> Result<(), StoreError> {
    for child_type in types.children_of(&object.object_type) {
        let field = child_type.parent_field.as_deref().expect("a child type has a parent field");
        for id in referencing(conn, &child_type.name, field, object.id)? {
            if let Some(mut child) = objects::get(conn, types, id)? {
                load(conn, types, &mut child)?;
                object.children.push(child);
            }
        }
    }
    for (binding_type, field) in types.bindings_of(&object.object_type) {
        for id in referencing(conn, &binding_type.name, field, object.id)? {
            if let Some(binding) = objects::get(conn, types, id)? {
                object.bindings.push(binding);
            }
        }
    }
    Ok(())
}
