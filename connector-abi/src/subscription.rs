//! Subscriptions: the scope of changes a connector wants to receive.

use crate::data::CmsObject;
use crate::types::{TaskProcessType, TaskType};
use crate::wildcard::criterion_matches;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The site criterion that selects only global objects (objects of no site).
pub const GLOBAL_OBJECTS: &str = "##global##";

/// One subscription of a connector. Every string criterion may use `%`
/// (any run of characters); an absent or empty criterion matches everything;
/// `TaskType::All` matches every task type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Subscription {
    /// How matching changes are delivered and with how much data; when several
    /// of a connector's subscriptions match, the highest process type wins.
    pub process_type: TaskProcessType,
    /// The task type to match; `All` (the default) matches every task type.
    #[serde(default = "all_task_types")]
    pub task_type: TaskType,
    /// Site code name, or [`GLOBAL_OBJECTS`] for global objects only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    /// What kind of change the subscription looks at, with that kind's
    /// criteria.
    #[serde(flatten)]
    pub scope: Scope,
}

fn all_task_types() -> TaskType {
    TaskType::All
}

/// What kind of change a subscription looks at, with the criteria that kind has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum Scope {
    /// Objects and documents alike (the spec's base subscription).
    Any,
    /// Objects only, optionally narrowed by object type and code name.
    Objects {
        /// The object type, e.g. `cms.user` or `cms.%`; `None` matches every
        /// type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        object_type: Option<String>,
        /// The object's code name; `None` matches every object.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        object_code_name: Option<String>,
    },
    /// Documents only, optionally narrowed by alias path, culture and document
    /// type.
    Documents {
        /// The node alias path, e.g. `/Home/%`; `None` matches every document.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alias_path: Option<String>,
        /// The culture code, e.g. `en-%`; `None` matches every culture.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        culture: Option<String>,
        /// The document type, e.g. `cms.menuitem`; `None` matches every type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class_name: Option<String>,
    },
    /// The connector decides in `is_match`; the name tells it which of its
    /// custom subscriptions is asked. Site and task type still apply first.
    Custom {
        /// The name `is_match` gets as its `subscription` argument.
        name: String,
    },
}

/// The outcome of checking a subscription against a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The change does not match.
    No,
    /// The change matches, and is delivered with this process type.
    Yes(TaskProcessType),
    /// A custom subscription whose criteria passed: ask the connector.
    AskConnector,
}

/// A subscription that can never work, refused when it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSubscription(pub String);

impl fmt::Display for InvalidSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidSubscription {}

/// Reads as a sentence: `AsyncSnapshot subscription to documents at
/// `/Home/%`, task type All`.
impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} subscription to ", self.process_type)?;
        let mut criteria: Vec<String> = Vec::new();
        match &self.scope {
            Scope::Any => f.write_str("every change")?,
            Scope::Objects { object_type, object_code_name } => {
                match object_type {
                    Some(t) => write!(f, "objects of type `{t}`")?,
                    None => f.write_str("all objects")?,
                }
                criteria.extend(object_code_name.iter().map(|c| format!("code name `{c}`")));
            }
            Scope::Documents { alias_path, culture, class_name } => {
                match alias_path {
                    Some(p) => write!(f, "documents at `{p}`")?,
                    None => f.write_str("all documents")?,
                }
                criteria.extend(culture.iter().map(|c| format!("culture `{c}`")));
                criteria.extend(class_name.iter().map(|c| format!("class `{c}`")));
            }
            Scope::Custom { name } => write!(f, "custom `{name}`")?,
        }
        match self.site_name.as_deref() {
            Some(GLOBAL_OBJECTS) => criteria.push("global objects only".into()),
            Some(site) => criteria.push(format!("site `{site}`")),
            None => {}
        }
        criteria.push(format!("task type {}", self.task_type));
        write!(f, ", {}", criteria.join(", "))
    }
}

impl Subscription {
    fn new(process_type: TaskProcessType, scope: Scope) -> Self {
        Subscription { process_type, task_type: TaskType::All, site_name: None, scope }
    }

    /// Objects and documents of every kind.
    pub fn any(process_type: TaskProcessType) -> Self {
        Self::new(process_type, Scope::Any)
    }

    /// Objects whose type matches `object_type` (wildcards allowed).
    pub fn objects(process_type: TaskProcessType, object_type: impl Into<String>) -> Self {
        Self::new(process_type, Scope::Objects { object_type: Some(object_type.into()), object_code_name: None })
    }

    /// Every object of every type.
    pub fn all_objects(process_type: TaskProcessType) -> Self {
        Self::new(process_type, Scope::Objects { object_type: None, object_code_name: None })
    }

    /// Documents under `alias_path` (wildcards allowed, e.g. `/Home/%`).
    pub fn documents(process_type: TaskProcessType, alias_path: impl Into<String>) -> Self {
        Self::new(
            process_type,
            Scope::Documents { alias_path: Some(alias_path.into()), culture: None, class_name: None },
        )
    }

    /// Every document on every site.
    pub fn all_documents(process_type: TaskProcessType) -> Self {
        Self::new(process_type, Scope::Documents { alias_path: None, culture: None, class_name: None })
    }

    /// A subscription the connector's `is_match` decides.
    pub fn custom(name: impl Into<String>, process_type: TaskProcessType) -> Self {
        Self::new(process_type, Scope::Custom { name: name.into() })
    }

    /// Only this task type (the default is `All`).
    pub fn task_type(mut self, task_type: TaskType) -> Self {
        self.task_type = task_type;
        self
    }

    /// Only changes on this site (wildcards allowed).
    pub fn site(mut self, site_name: impl Into<String>) -> Self {
        self.site_name = Some(site_name.into());
        self
    }

    /// Only global objects (objects that belong to no site).
    pub fn global_objects_only(mut self) -> Self {
        self.site_name = Some(GLOBAL_OBJECTS.to_owned());
        self
    }

    /// Only objects whose code name matches (objects scope only).
    pub fn code_name(mut self, pattern: impl Into<String>) -> Self {
        if let Scope::Objects { object_code_name, .. } = &mut self.scope {
            *object_code_name = Some(pattern.into());
        }
        self
    }

    /// Only documents of this culture, e.g. `en-%` (documents scope only).
    pub fn culture(mut self, pattern: impl Into<String>) -> Self {
        if let Scope::Documents { culture, .. } = &mut self.scope {
            *culture = Some(pattern.into());
        }
        self
    }

    /// Only documents of this document type (documents scope only).
    pub fn class_name(mut self, pattern: impl Into<String>) -> Self {
        if let Scope::Documents { class_name, .. } = &mut self.scope {
            *class_name = Some(pattern.into());
        }
        self
    }

    /// Refuses subscriptions that can never work.
    pub fn validate(&self) -> Result<(), InvalidSubscription> {
        match &self.scope {
            Scope::Documents { .. } => {
                if self.process_type == TaskProcessType::AsyncSnapshot {
                    return Err(InvalidSubscription(
                        "the Snapshot data mode is not supported for documents: subscribe to documents \
                         with AsyncSimpleSnapshot, AsyncSimple or SyncSnapshot"
                            .into(),
                    ));
                }
                if self.task_type.is_object() {
                    return Err(InvalidSubscription(format!(
                        "a document subscription with task type {} can never match: use a document task \
                         type or All",
                        self.task_type
                    )));
                }
                if self.site_name.as_deref() == Some(GLOBAL_OBJECTS) {
                    return Err(InvalidSubscription(
                        "a document subscription for global objects only can never match: documents \
                         always belong to a site"
                            .into(),
                    ));
                }
            }
            Scope::Objects { .. } if self.task_type.is_document() => {
                return Err(InvalidSubscription(format!(
                    "an object subscription with task type {} can never match: use an object task type \
                     or All",
                    self.task_type
                )));
            }
            Scope::Custom { name } if name.trim().is_empty() => {
                return Err(InvalidSubscription("a custom subscription needs a name".into()));
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks this subscription against a change. `site_name` is the task's
    /// site: the object's own site, or the target site of AddToSite and
    /// RemoveFromSite; `None` for a global object.
    pub fn check(&self, object: &CmsObject, task_type: TaskType, site_name: Option<&str>) -> Match {
        if self.task_type != TaskType::All && self.task_type != task_type {
            return Match::No;
        }
        let site = site_name;
        let site_ok = match self.site_name.as_deref() {
            Some(GLOBAL_OBJECTS) => site.is_none() && matches!(object, CmsObject::Object(_)),
            criterion => criterion_matches(criterion, site.unwrap_or("")),
        };
        if !site_ok {
            return Match::No;
        }
        let scope_ok = match (&self.scope, object) {
            (Scope::Any, _) => true,
            (Scope::Custom { .. }, _) => return Match::AskConnector,
            (Scope::Objects { object_type, object_code_name }, CmsObject::Object(o)) => {
                criterion_matches(object_type.as_deref(), &o.object_type)
                    && criterion_matches(object_code_name.as_deref(), &o.code_name)
            }
            (Scope::Documents { alias_path, culture, class_name }, CmsObject::Document(d)) => {
                criterion_matches(alias_path.as_deref(), &d.node_alias_path)
                    && criterion_matches(culture.as_deref(), &d.culture)
                    && criterion_matches(class_name.as_deref(), &d.class_name)
            }
            _ => false,
        };
        if scope_ok {
            Match::Yes(self.process_type)
        } else {
            Match::No
        }
    }
}

/// Picks the process type for a change among one connector's subscriptions:
/// the matching subscription of highest priority wins. `ask` decides custom
/// subscriptions (it is the connector's `is_match`).
pub fn best_match<'a>(
    subscriptions: impl IntoIterator<Item = &'a Subscription>,
    object: &CmsObject,
    task_type: TaskType,
    site_name: Option<&str>,
    mut ask: impl FnMut(&'a Subscription) -> Option<TaskProcessType>,
) -> Option<TaskProcessType> {
    let mut best: Option<TaskProcessType> = None;
    for s in subscriptions {
        let found = match s.check(object, task_type, site_name) {
            Match::No => None,
            Match::Yes(p) => Some(p),
            Match::AskConnector => ask(s),
        };
        if let Some(p) = found {
            if best.is_none_or(|b| p.priority() > b.priority()) {
                best = Some(p);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DocumentData, ObjectData};
    use TaskProcessType::*;

    fn user(code: &str, site: Option<&str>) -> CmsObject {
        CmsObject::Object(ObjectData {
            object_type: "cms.user".into(),
            code_name: code.into(),
            site_name: site.map(Into::into),
            ..Default::default()
        })
    }

    fn doc(path: &str, culture: &str) -> CmsObject {
        CmsObject::Document(DocumentData {
            node_alias_path: path.into(),
            culture: culture.into(),
            class_name: "cms.menuitem".into(),
            site_name: "CorpSite".into(),
            ..Default::default()
        })
    }

    #[test]
    fn object_criteria() {
        let s = Subscription::objects(AsyncSimple, "cms.%").code_name("admin%").site("CorpSite");
        assert_eq!(
            s.check(&user("administrator", Some("CorpSite")), TaskType::UpdateObject, Some("CorpSite")),
            Match::Yes(AsyncSimple)
        );
        assert_eq!(s.check(&user("antonio", Some("CorpSite")), TaskType::UpdateObject, Some("CorpSite")), Match::No);
        assert_eq!(s.check(&user("administrator", None), TaskType::UpdateObject, None), Match::No);
        assert_eq!(s.check(&doc("/Home", "en-US"), TaskType::UpdateDocument, Some("CorpSite")), Match::No);
    }

    #[test]
    fn global_only_and_task_type() {
        let s = Subscription::all_objects(AsyncSimple).global_objects_only().task_type(TaskType::CreateObject);
        assert_eq!(s.check(&user("a", None), TaskType::CreateObject, None), Match::Yes(AsyncSimple));
        assert_eq!(s.check(&user("a", None), TaskType::DeleteObject, None), Match::No);
        assert_eq!(s.check(&user("a", Some("CorpSite")), TaskType::CreateObject, Some("CorpSite")), Match::No);
        // A user added to a site is matched by the task's site.
        let site_sub = Subscription::all_objects(AsyncSimple).site("Corp%");
        assert_eq!(site_sub.check(&user("a", None), TaskType::AddToSite, Some("CorpSite")), Match::Yes(AsyncSimple));
    }

    #[test]
    fn document_criteria_and_refusals() {
        let s = Subscription::documents(AsyncSimpleSnapshot, "/Home/%").culture("en-%");
        assert_eq!(
            s.check(&doc("/Home/News", "en-GB"), TaskType::PublishDocument, Some("CorpSite")),
            Match::Yes(AsyncSimpleSnapshot)
        );
        assert_eq!(s.check(&doc("/Home/News", "cs-CZ"), TaskType::PublishDocument, Some("CorpSite")), Match::No);
        assert!(s.validate().is_ok());
        let err = Subscription::all_documents(AsyncSnapshot).validate().unwrap_err();
        assert!(err.to_string().contains("not supported for documents"), "{err}");
    }

    #[test]
    fn highest_priority_wins_and_custom_is_asked() {
        let subs = [
            Subscription::all_objects(AsyncSimple),
            Subscription::custom("vip", AsyncSnapshot),
            Subscription::objects(AsyncSimpleSnapshot, "cms.user"),
        ];
        let got = best_match(&subs, &user("a", None), TaskType::CreateObject, None, |_| None);
        assert_eq!(got, Some(AsyncSimpleSnapshot));
        let got = best_match(&subs, &user("a", None), TaskType::CreateObject, None, |_| Some(SyncSnapshot));
        assert_eq!(got, Some(SyncSnapshot));
        let none = best_match(&subs[2..], &doc("/x", "en-US"), TaskType::CreateDocument, Some("CorpSite"), |_| None);
        assert_eq!(none, None);
    }

    #[test]
    fn a_subscription_reads_as_a_sentence() {
        let s = Subscription::documents(TaskProcessType::AsyncSnapshot, "/Home/%").culture("en-%");
        assert_eq!(
            s.to_string(),
            "AsyncSnapshot subscription to documents at `/Home/%`, culture `en-%`, task type All"
        );
        let s = Subscription::all_objects(TaskProcessType::AsyncSimple).global_objects_only();
        assert_eq!(s.to_string(), "AsyncSimple subscription to all objects, global objects only, task type All");
    }

    #[test]
    fn serde_shape_is_flat() {
        let s = Subscription::objects(AsyncSnapshot, "cms.user");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["scope"], "objects");
        assert_eq!(v["object_type"], "cms.user");
        let back: Subscription = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
