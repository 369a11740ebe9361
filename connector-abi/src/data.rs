//! Objects and documents as they travel in task payloads, and the translation
//! data that lets a connector map foreign keys to its own identifiers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A reference from an object to its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ObjectRef {
    /// The parent's object type, e.g. `poll.poll`.
    pub object_type: String,
    /// The parent's internal ID.
    pub id: i64,
}

/// A data object of the content store (a user, a role, a poll, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ObjectData {
    /// The object type, e.g. `cms.user`.
    pub object_type: String,
    /// The internal integer ID (0 for an object not stored yet).
    #[serde(default)]
    pub id: i64,
    /// The object's GUID. Stored objects always have one; when an object a
    /// connector prepares has none, the bus assigns one on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    /// The code name, the object's main identifier across systems.
    #[serde(default)]
    pub code_name: String,
    /// The name shown to users, for object types that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The site the object belongs to; `None` for a global object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    /// The parent object, for object types that belong to a parent (e.g. a poll
    /// answer to its poll).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ObjectRef>,
    /// The ID of the group the object belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
    /// The object's own columns.
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// Which fields are foreign keys, and to what: an object type,
    /// [`crate::DOCUMENT_VERSION`] (a DocumentID) or [`crate::DOCUMENT_NODE`]
    /// (a NodeID). Filled in by the host.
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DocumentData {
    /// Culture-independent node identity.
    #[serde(default)]
    pub node_id: i64,
    /// The node's GUID, shared by all its culture versions; identifies the node
    /// across systems.
    #[serde(default)]
    pub node_guid: String,
    /// The node's path in the content tree, e.g. `/Products/Apple iPad 2`;
    /// document subscriptions match on it.
    #[serde(default)]
    pub node_alias_path: String,
    /// The NodeID of the parent node; `None` for a node at the top of the tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_parent_id: Option<i64>,
    /// The document type, e.g. `cms.menuitem`.
    #[serde(default)]
    pub class_name: String,
    /// The code name of the site the document belongs to (every document
    /// belongs to a site).
    #[serde(default)]
    pub site_name: String,
    /// Identity of this culture version.
    #[serde(default)]
    pub document_id: i64,
    /// The culture code of this version, e.g. `en-US`.
    #[serde(default)]
    pub culture: String,
    /// The document name, as task titles show it.
    #[serde(default)]
    pub name: String,
    /// True while the document is published: PublishDocument sets it,
    /// ArchiveDocument clears it.
    #[serde(default)]
    pub published: bool,
    /// True once the document is archived: ArchiveDocument sets it,
    /// PublishDocument clears it.
    #[serde(default)]
    pub archived: bool,
    /// The document type's own columns.
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// Which fields are foreign keys, and to what: an object type,
    /// [`crate::DOCUMENT_VERSION`] (a DocumentID) or [`crate::DOCUMENT_NODE`]
    /// (a NodeID). Filled in by the host.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub foreign_keys: Map<String, Value>,
}

/// An object or a document (the spec's `ICMSObject`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CmsObject {
    /// A data object, for the object task types.
    Object(ObjectData),
    /// A document, for the document task types.
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ObjectTranslation {
    /// The referenced object's type, e.g. `cms.role`.
    pub object_type: String,
    /// The ID the foreign key holds: the internal ID in an outgoing task's
    /// translation data, the external system's ID in an incoming one's.
    #[serde(default)]
    pub id: i64,
    /// The referenced object's code name, which identifies it in any system.
    pub code_name: String,
    /// The code name of the referenced object's site; `None` for a global
    /// object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    /// The object type of the referenced object's parent, if it has one. Not
    /// set in the translation data of incoming tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_type: Option<String>,
    /// The ID of the referenced object's parent, if it has one (for incoming
    /// tasks, as `get_internal_object_params` returned it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<i64>,
    /// The group ID of the referenced object, if it has one (for incoming
    /// tasks, as `get_internal_object_params` returned it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
}

/// What identifies a referenced document in any system (also the parameters of
/// `get_external_document_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DocumentTranslation {
    /// The ID the foreign key holds (a NodeID or a DocumentID): internal in
    /// an outgoing task's translation data, external in an incoming one's.
    #[serde(default)]
    pub id: i64,
    /// The referenced document's type, e.g. `cms.menuitem`; empty in the
    /// translation data of incoming tasks.
    #[serde(default)]
    pub class_name: String,
    /// The GUID of the referenced node, which identifies it in any system.
    pub node_guid: String,
    /// The culture of the referenced version; for a NodeID reference, the
    /// culture of the node's first version.
    #[serde(default)]
    pub culture: String,
    /// The code name of the site the referenced document belongs to.
    pub site_name: String,
}

/// The translation data captured when a task is logged, so the task can be
/// translated even after the referenced objects changed or vanished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Translations {
    /// One record per object referenced by a foreign key of the object, its
    /// children or its bindings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectTranslation>,
    /// One record per document referenced by a foreign key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<DocumentTranslation>,
}

impl Translations {
    /// True when there are no records, as in every task with the Simple data
    /// type.
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
