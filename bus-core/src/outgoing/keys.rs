//! A task's keys for `object` ordering: the objects whose order it keeps —
//! its own object (a document: its node and culture version) and every
//! object it refers to (parent, foreign keys, so both sides of a binding; a
//! document's parent node). Two tasks of one connector that share a key go
//! in commit order, unless both only refer to it (two bindings to one role,
//! two pages under one parent: neither changes what the other depends on);
//! tasks that share none may go at once.
//!
//! Read from the stored payload, which names every reference with its
//! target (`foreign_keys`), so no lookup is needed; a payload that does not
//! read is a barrier that shares a key with every task.

use super::payload::Payload;
use crate::queue::Queued;
use connector_abi::{CmsObject, ObjectData, DOCUMENT_NODE, DOCUMENT_VERSION};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One object a task touches: its type (or `#node`, `#document` for the
/// tree) and its internal ID.
pub(crate) type Key = (Box<str>, i64);

/// How a task touches one of its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Access {
    /// It refers to the object (a parent, a foreign key).
    Refers,
    /// It is about the object itself.
    Own,
}

/// What a task's order depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Keys {
    /// These objects, each once with the stronger access.
    Of(Vec<(Key, Access)>),
    /// Everything: the task's data cannot be read, so it keeps its place
    /// in the whole queue.
    All,
}

impl Keys {
    /// The keys of a queued task.
    pub(crate) fn of(q: &Queued) -> Keys {
        if q.unreadable.is_some() {
            return Keys::All;
        }
        match serde_json::from_str::<Payload>(&q.data) {
            Ok(payload) => Keys::Of(of_object(&payload.object)),
            Err(_) => Keys::All,
        }
    }

    /// Whether the two must keep their order: they share a key that one
    /// of them owns.
    #[cfg(test)]
    pub(crate) fn meets(&self, other: &Keys) -> bool {
        match (self, other) {
            (Keys::All, _) | (_, Keys::All) => true,
            (Keys::Of(a), Keys::Of(b)) => {
                a.iter().any(|(k, x)| b.iter().any(|(l, y)| k == l && (*x == Access::Own || *y == Access::Own)))
            }
        }
    }
}

/// The keys held by tasks of a queue (parked behind a failure, or earlier
/// in a scan), each with the place in the queue where it was first held: a
/// task read after that place that shares the key waits; one read before
/// it does not.
#[derive(Default)]
pub(crate) struct Held {
    keys: HashMap<Key, Hold>,
    /// A task whose keys are unknown holds everything after it.
    all: Option<Hold>,
}

/// Who holds a key, how, and from where on.
#[derive(Debug, Clone, Copy)]
struct Hold {
    access: Access,
    /// The failed task the chain waits for.
    by: i64,
    /// The place in the queue (read order) of the first task holding it.
    from: u64,
}

impl Held {
    /// The failed task a task at `place` with `keys` waits for, if any.
    pub(crate) fn blocker(&self, keys: &Keys, place: u64) -> Option<i64> {
        if let Some(all) = self.all.filter(|h| h.from < place) {
            return Some(all.by);
        }
        let before = |h: &&Hold| h.from < place;
        match keys {
            Keys::All => self.keys.values().filter(before).min_by_key(|h| h.from).map(|h| h.by),
            Keys::Of(list) => list.iter().find_map(|(k, access)| match self.keys.get(k).filter(before) {
                Some(held) if held.access == Access::Own || *access == Access::Own => Some(held.by),
                _ => None,
            }),
        }
    }

    /// Holds `keys` for the chain of `by`, from `place` on.
    pub(crate) fn add(&mut self, keys: &Keys, by: i64, place: u64) {
        let hold = Hold { access: Access::Refers, by, from: place };
        match keys {
            Keys::All => {
                self.all.get_or_insert(hold);
            }
            Keys::Of(list) => {
                for (k, access) in list {
                    let entry = self.keys.entry(k.clone()).or_insert(Hold { access: *access, ..hold });
                    entry.access = entry.access.max(*access);
                    entry.from = entry.from.min(place);
                }
            }
        }
    }
}

const NODE: &str = "#node";
const DOCUMENT: &str = "#document";

fn of_object(object: &CmsObject) -> Vec<(Key, Access)> {
    let mut keys = Vec::new();
    match object {
        CmsObject::Object(o) => object_keys(o, &mut keys),
        CmsObject::Document(d) => {
            keys.push(((NODE.into(), d.node_id), Access::Own));
            keys.push(((DOCUMENT.into(), d.document_id), Access::Own));
            if let Some(parent) = d.node_parent_id {
                keys.push(((NODE.into(), parent), Access::Refers));
            }
            references(&d.fields, &d.foreign_keys, &mut keys);
        }
    }
    // Each key once, with the stronger access (`Own` sorts last).
    keys.sort();
    keys.reverse();
    keys.dedup_by(|later, kept| later.0 == kept.0);
    keys
}

fn object_keys(o: &ObjectData, keys: &mut Vec<(Key, Access)>) {
    keys.push(((o.object_type.as_str().into(), o.id), Access::Own));
    if let Some(parent) = &o.parent {
        keys.push(((parent.object_type.as_str().into(), parent.id), Access::Refers));
    }
    references(&o.fields, &o.foreign_keys, keys);
}

/// The objects the foreign-key fields point at (a field that is null or
/// not an integer points at nothing).
fn references(fields: &Map<String, Value>, foreign_keys: &Map<String, Value>, keys: &mut Vec<(Key, Access)>) {
    for (field, target) in foreign_keys {
        let (Some(target), Some(id)) = (target.as_str(), fields.get(field).and_then(Value::as_i64)) else {
            continue;
        };
        let kind = match target {
            DOCUMENT_NODE => NODE,
            DOCUMENT_VERSION => DOCUMENT,
            object_type => object_type,
        };
        keys.push(((kind.into(), id), Access::Refers));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_abi::ObjectRef;
    use serde_json::json;

    fn object(object_type: &str, id: i64, fields: Value, foreign_keys: Value) -> Keys {
        let o = ObjectData {
            object_type: object_type.into(),
            id,
            fields: fields.as_object().unwrap().clone(),
            foreign_keys: foreign_keys.as_object().unwrap().clone(),
            ..Default::default()
        };
        Keys::Of(of_object(&CmsObject::Object(o)))
    }

    #[test]
    fn a_binding_meets_both_sides_and_unrelated_objects_meet_nothing() {
        let user = object("cms.user", 1, json!({}), json!({}));
        let other_user = object("cms.user", 2, json!({}), json!({}));
        let role = object("cms.role", 1, json!({}), json!({}));
        let binding = object(
            "cms.userrole",
            9,
            json!({"UserID": 1, "RoleID": 1}),
            json!({"UserID": "cms.user", "RoleID": "cms.role"}),
        );
        assert!(binding.meets(&user) && binding.meets(&role));
        assert!(!binding.meets(&other_user));
        assert!(!user.meets(&role), "same ID, another type");
        assert!(!user.meets(&other_user));
        assert!(Keys::All.meets(&other_user));
    }

    #[test]
    fn a_child_meets_its_parent_and_a_document_its_node_and_parent_node() {
        let answer = ObjectData {
            object_type: "poll.answer".into(),
            id: 5,
            parent: Some(ObjectRef { object_type: "poll.poll".into(), id: 3 }),
            ..Default::default()
        };
        let answer = Keys::Of(of_object(&CmsObject::Object(answer)));
        assert!(answer.meets(&object("poll.poll", 3, json!({}), json!({}))));
        let doc = |node_id, document_id, parent| {
            Keys::Of(of_object(&CmsObject::Document(connector_abi::DocumentData {
                node_id,
                document_id,
                node_parent_id: parent,
                ..Default::default()
            })))
        };
        assert!(doc(2, 20, Some(1)).meets(&doc(2, 21, Some(1))), "two cultures of one node");
        assert!(doc(2, 20, Some(1)).meets(&doc(1, 10, None)), "a child and its parent node");
        assert!(!doc(2, 20, Some(1)).meets(&doc(3, 30, Some(1))), "siblings only refer to their parent");
    }

    #[test]
    fn a_held_key_holds_only_the_tasks_after_the_one_that_holds_it() {
        let user = object("cms.user", 1, json!({}), json!({}));
        let binding = object("cms.userrole", 9, json!({"UserID": 1}), json!({"UserID": "cms.user"}));
        let mut parked = Held::default();
        // A binding at place 10 was parked behind failed task 7.
        parked.add(&binding, 7, 10);
        assert_eq!(parked.blocker(&user, 11), Some(7), "a later change of the user waits");
        assert_eq!(parked.blocker(&user, 5), None, "an earlier one does not");
        assert_eq!(parked.blocker(&binding, 12), Some(7));
        let other = object("cms.user", 2, json!({}), json!({}));
        assert_eq!(parked.blocker(&other, 11), None);
        parked.add(&Keys::All, 3, 20);
        assert_eq!(parked.blocker(&other, 21), Some(3), "behind a task whose keys are unknown");
        assert_eq!(parked.blocker(&other, 19), None);
    }

    #[test]
    fn two_bindings_to_one_role_keep_no_order_between_them() {
        let binding = |id, user| {
            object(
                "cms.userrole",
                id,
                json!({"UserID": user, "RoleID": 1}),
                json!({"UserID": "cms.user", "RoleID": "cms.role"}),
            )
        };
        assert!(!binding(1, 1).meets(&binding(2, 2)));
        assert!(binding(1, 1).meets(&binding(1, 1)), "the same binding twice");
        // An object that refers to itself keeps the stronger access.
        let own = object("cms.user", 1, json!({"ManagerID": 1}), json!({"ManagerID": "cms.user"}));
        assert_eq!(own, Keys::Of(vec![(("cms.user".into(), 1), Access::Own)]));
    }
}
