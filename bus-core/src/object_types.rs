//! The object-type registry: what the bus knows about each object type and
//! document class (site binding, parent, foreign keys, children, bindings).

use connector_abi::{DOCUMENT_NODE, DOCUMENT_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use thiserror::Error;

/// The registry shipped with the bus.
pub(crate) const DEFAULT_OBJECT_TYPES: &str = include_str!("object-types.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[derive(schemars::JsonSchema)]
pub enum SiteRule {
    /// Never on a site.
    Global,
    /// Always on a site.
    Site,
    /// Either.
    Optional,
}

/// The binding an object is added to a site with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct SiteBinding {
    #[serde(rename = "type")]
    pub object_type: String,
    pub object_field: String,
    pub site_field: String,
}

/// One object type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct ObjectType {
    #[serde(rename = "type")]
    pub name: String,
    pub display_name: String,
    pub site: SiteRule,
    /// A binding (e.g. user–role): its code name is derived from its keys,
    /// and it is deleted with either end.
    #[serde(default)]
    pub binding: bool,
    /// The foreign-key field that names the parent (also in `foreign_keys`).
    #[serde(default)]
    pub parent_field: Option<String>,
    #[serde(default)]
    pub foreign_keys: BTreeMap<String, String>,
    #[serde(default)]
    pub site_binding: Option<SiteBinding>,
}

impl ObjectType {
    /// The parent's object type, if this type has a parent.
    pub(crate) fn parent_type(&self) -> Option<&str> {
        self.parent_field.as_ref().and_then(|f| self.foreign_keys.get(f)).map(String::as_str)
    }
}

/// One document class.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct DocumentClass {
    pub class_name: String,
    pub display_name: String,
    #[serde(default)]
    pub foreign_keys: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    object: Vec<ObjectType>,
    #[serde(default)]
    document: Vec<DocumentClass>,
}

#[derive(Debug, Error)]
pub enum ObjectTypesError {
    #[error("cannot read the object-type file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the object-type file is not valid: {0}")]
    Parse(String),
    #[error("the object-type file is not consistent: {0}")]
    Inconsistent(String),
}

/// All object types and document classes, by lower-case name.
#[derive(Debug, Clone)]
pub struct ObjectTypes {
    objects: BTreeMap<String, ObjectType>,
    documents: BTreeMap<String, DocumentClass>,
}

fn is_document_target(target: &str) -> bool {
    target == DOCUMENT_VERSION || target == DOCUMENT_NODE
}

impl ObjectTypes {
    /// The registry shipped with the bus.
    pub fn defaults() -> Self {
        Self::parse(DEFAULT_OBJECT_TYPES).expect("the shipped object types are valid")
    }

    pub fn load(path: &Path) -> Result<Self, ObjectTypesError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ObjectTypesError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, ObjectTypesError> {
        let file: File = toml::from_str(text).map_err(|e| ObjectTypesError::Parse(e.to_string()))?;
        let objects: BTreeMap<String, ObjectType> =
            file.object.into_iter().map(|t| (t.name.to_ascii_lowercase(), t)).collect();
        let documents: BTreeMap<String, DocumentClass> =
            file.document.into_iter().map(|d| (d.class_name.to_ascii_lowercase(), d)).collect();
        let types = ObjectTypes { objects, documents };
        types.check()?;
        Ok(types)
    }

    fn check(&self) -> Result<(), ObjectTypesError> {
        let bad = |m: String| Err(ObjectTypesError::Inconsistent(m));
        let targets = self
            .objects
            .values()
            .flat_map(|t| t.foreign_keys.iter().map(move |(f, target)| (t.name.as_str(), f, target)))
            .chain(
                self.documents
                    .values()
                    .flat_map(|d| d.foreign_keys.iter().map(move |(f, target)| (d.class_name.as_str(), f, target))),
            );
        for (owner, field, target) in targets {
            if !is_document_target(target) && self.object(target).is_none() {
                return bad(format!("{owner}.{field} refers to unknown object type `{target}`"));
            }
        }
        for t in self.objects.values() {
            if let Some(p) = &t.parent_field {
                if !t.foreign_keys.contains_key(p) {
                    return bad(format!("{}: parent_field `{p}` must also be listed in foreign_keys", t.name));
                }
            }
            if let Some(b) = &t.site_binding {
                let Some(binding) = self.object(&b.object_type) else {
                    return bad(format!("{}: site binding type `{}` is unknown", t.name, b.object_type));
                };
                let fk = |f: &str| binding.foreign_keys.get(f).map(String::as_str);
                if fk(&b.object_field) != Some(t.name.as_str()) || fk(&b.site_field) != Some("cms.site") {
                    return bad(format!(
                        "{}: site binding `{}` must have {} → {} and {} → cms.site foreign keys",
                        t.name, b.object_type, b.object_field, t.name, b.site_field
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn object(&self, name: &str) -> Option<&ObjectType> {
        self.objects.get(&name.to_ascii_lowercase())
    }

    pub fn document(&self, class_name: &str) -> Option<&DocumentClass> {
        self.documents.get(&class_name.to_ascii_lowercase())
    }

    pub(crate) fn document_classes(&self) -> impl Iterator<Item = &DocumentClass> {
        self.documents.values()
    }

    /// Every object type, by name.
    pub fn objects(&self) -> impl Iterator<Item = &ObjectType> {
        self.objects.values()
    }

    /// Every document class, by name.
    pub fn documents(&self) -> impl Iterator<Item = &DocumentClass> {
        self.documents.values()
    }

    pub fn object_names(&self) -> Vec<&str> {
        self.objects.values().map(|t| t.name.as_str()).collect()
    }

    pub fn document_names(&self) -> Vec<&str> {
        self.documents.values().map(|d| d.class_name.as_str()).collect()
    }

    /// The non-binding types whose parent is `object_type` (Snapshot children).
    pub(crate) fn children_of(&self, object_type: &str) -> Vec<&ObjectType> {
        self.objects
            .values()
            .filter(|t| !t.binding && t.parent_type().is_some_and(|p| p.eq_ignore_ascii_case(object_type)))
            .collect()
    }

    /// The binding types with a foreign key to `object_type`, and that field.
    pub(crate) fn bindings_of(&self, object_type: &str) -> Vec<(&ObjectType, &str)> {
        self.objects
            .values()
            .filter(|t| t.binding)
            .flat_map(|t| {
                t.foreign_keys
                    .iter()
                    .filter(|(_, target)| target.eq_ignore_ascii_case(object_type))
                    .map(move |(f, _)| (t, f.as_str()))
            })
            .collect()
    }

    /// Every (type, field) whose foreign key refers to `target` (objects only).
    pub(crate) fn references_to(&self, target: &str) -> Vec<(&ObjectType, &str)> {
        self.objects
            .values()
            .flat_map(|t| {
                t.foreign_keys
                    .iter()
                    .filter(|(_, to)| to.eq_ignore_ascii_case(target))
                    .map(move |(f, _)| (t, f.as_str()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_types_derive_children_and_bindings() {
        let t = ObjectTypes::defaults();
        let children: Vec<&str> = t.children_of("poll.poll").iter().map(|c| c.name.as_str()).collect();
        assert_eq!(children, ["poll.pollanswer"]);
        let mut bindings: Vec<&str> = t.bindings_of("cms.user").iter().map(|(b, _)| b.name.as_str()).collect();
        bindings.sort();
        assert_eq!(bindings, ["cms.userrole", "cms.usersite"]);
        assert_eq!(t.object("CMS.User").unwrap().parent_type(), None);
        assert_eq!(t.object("poll.pollanswer").unwrap().parent_type(), Some("poll.poll"));
        assert!(t.document("cms.product").unwrap().foreign_keys.contains_key("ProductManagerID"));
    }

    #[test]
    fn inconsistent_files_are_refused_with_the_reason() {
        let err =
            ObjectTypes::parse("[[object]]\ntype='a'\ndisplay_name='A'\nsite='global'\nforeign_keys={X='nope'}\n")
                .unwrap_err();
        assert!(err.to_string().contains("unknown object type `nope`"), "{err}");
        let err = ObjectTypes::parse("[[object]]\ntype='a'\nsite='global'\n").unwrap_err();
        assert!(err.to_string().contains("display_name"), "{err}");
    }
}
