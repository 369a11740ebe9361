//! Objects and documents as they travel in task payloads, and the translation
//! data that lets a connector map foreign keys to its own identifiers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A reference from an object to its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub object_type: String,
    pub id: i64,
}

/// A data object of the content store (a user, a role, a poll, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ObjectData {
    /// The object type, e.g. `cms.user`.
    pub object_type: String,
    /// The internal integer ID (0 for an object not stored yet).
    #[serde(default)]
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    /// The code name, the object's main identifier across systems.
    #[serde(default)]
    pub code_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The site the object belongs to; `None` for a global object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
    /// The object's own columns.
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// Which fields are foreign keys, and to which object type (or to
    /// `document` for a reference to a document). Filled in by the host.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub foreign_keys: Map<String, Value>,
    /// Child objects (Snapshot only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ObjectData>,
    /// Binding objects such as `cms.usersite` (Snapshot only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<ObjectData>,
}

impl ObjectData {
    /// The object type a foreign-key field refers to, if it is one.
    pub fn foreign_key_target(&self, field: &str) -> Option<&str> {
        self.foreign_keys.get(field).and_then(Value::as_str)
    }
}

/// A document (one culture version of a node in the content tree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DocumentData {
    /// Culture-independent node identity.
    #[serde(default)]
    pub node_id: i64,
    #[serde(default)]
    pub node_guid: String,
    #[serde(default)]
    pub node_alias_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_parent_id: Option<i64>,
    /// The document type, e.g. `cms.menuitem`.
    #[serde(default)]
    pub class_name: String,
    #[serde(default)]
    pub site_name: String,
    /// Identity of this culture version.
    #[serde(default)]
    pub document_id: i64,
    #[serde(default)]
    pub culture: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub published: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub fields: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub foreign_keys: Map<String, Value>,
}

/// An object or a document (the spec's `ICMSObject`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CmsObject {
    Object(ObjectData),
    Document(DocumentData),
}

impl CmsObject {
    /// The site the object or document belongs to (`None` for a global object).
    pub fn site_name(&self) -> Option<&str> {
        match self {
            CmsObject::Object(o) => o.site_name.as_deref(),
            CmsObject::Document(d) => Some(d.site_name.as_str()).filter(|s| !s.is_empty()),
        }
    }

    /// A human name: the document name, or the object's display or code name.
    pub fn title_name(&self) -> &str {
        match self {
            CmsObject::Object(o) => o.display_name.as_deref().unwrap_or(&o.code_name),
            CmsObject::Document(d) => &d.name,
        }
    }
}

/// What identifies a referenced object in any system: the translation record
/// of a foreign key to an object (also the parameters of
/// `get_external_object_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ObjectTranslation {
    pub object_type: String,
    /// The internal ID the foreign key holds.
    #[serde(default)]
    pub id: i64,
    pub code_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
}

/// What identifies a referenced document in any system (also the parameters of
/// `get_external_document_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DocumentTranslation {
    /// The internal ID the foreign key holds (a NodeID or a DocumentID).
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub class_name: String,
    pub node_guid: String,
    #[serde(default)]
    pub culture: String,
    pub site_name: String,
}

/// The translation data captured when a task is logged, so the task can be
/// translated even after the referenced objects changed or vanished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Translations {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectTranslation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<DocumentTranslation>,
}

impl Translations {
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty() && self.documents.is_empty()
    }

    /// The record of the object of `object_type` with internal `id`.
    pub fn object(&self, object_type: &str, id: i64) -> Option<&ObjectTranslation> {
        self.objects.iter().find(|t| t.id == id && t.object_type.eq_ignore_ascii_case(object_type))
    }

    /// The record of the document with internal `id` (NodeID or DocumentID).
    pub fn document(&self, id: i64) -> Option<&DocumentTranslation> {
        self.documents.iter().find(|t| t.id == id)
    }
}
