//! Object IDs drawn ahead for a change's creates. On PostgreSQL a change
//! starts with an ID for each object it will create (`driver::StartCache`:
//! drawn in blocks, by a start that reads), so the object's insert needs no
//! answer: it is deferred (`Driver::defer_object`) and goes with the
//! transaction's next round trip — for a batch of creates, the one that
//! writes their tasks. A deferred insert that fails says so later, with
//! whatever statement took it along; this remembers which change each one
//! belongs to, so the error is still that change's own.

use super::StoreError;
use crate::sql::{Conn, SqlError};
use std::collections::VecDeque;

/// The IDs left to hand out, and the deferred inserts made with them.
#[derive(Debug, Default)]
pub(crate) struct Ahead {
    ids: VecDeque<i64>,
    /// The change being applied (its index in the batch).
    change: usize,
    inserts: Vec<Deferred>,
}

/// A deferred insert: the object's ID, its change, what to answer when its
/// GUID or its code name is taken.
#[derive(Debug)]
struct Deferred {
    id: i64,
    change: usize,
    guid: String,
    guid_taken: String,
    code_name_taken: String,
}

/// What a failed deferred insert comes to.
#[derive(Debug)]
pub(crate) struct Failed {
    /// The change the insert belongs to.
    pub change: usize,
    /// The change's own error (a duplicate), or `None` to keep the
    /// database's.
    pub error: Option<StoreError>,
}

impl Ahead {
    /// Hands out `ids` (none: every insert is made at once).
    pub(crate) fn new(ids: Vec<i64>) -> Self {
        Ahead { ids: ids.into(), ..Ahead::default() }
    }

    /// The change applied from now on.
    pub(crate) fn at_change(&mut self, index: usize) {
        self.change = index;
    }

    /// An ID for the next object created, if one was drawn.
    pub(crate) fn take_id(&mut self) -> Option<i64> {
        self.ids.pop_front()
    }

    /// Remembers the deferred insert of object `id`, and what its change
    /// answers if the GUID or the code name turns out to be taken.
    pub(crate) fn deferred(&mut self, id: i64, guid: &str, guid_taken: String, code_name_taken: String) {
        let change = self.change;
        self.inserts.push(Deferred { id, change, guid: guid.to_owned(), guid_taken, code_name_taken });
    }

    /// Whether any insert was deferred (sent or not).
    pub(crate) fn deferred_any(&self) -> bool {
        !self.inserts.is_empty()
    }

    /// The change whose deferred insert `error` is about, if it is one.
    pub(crate) fn failed(&self, conn: &Conn, error: &SqlError) -> Option<Failed> {
        let tag = error.deferred_tag()?;
        let insert = self.inserts.iter().find(|i| i.id == tag)?;
        if error.kind() != crate::sql::ErrorKind::Constraint {
            return Some(Failed { change: insert.change, error: None });
        }
        let guid = crate::driver::of(conn).guid_taken(conn, error, &insert.guid).unwrap_or(false);
        let message = if guid { &insert.guid_taken } else { &insert.code_name_taken };
        Some(Failed { change: insert.change, error: Some(StoreError::Duplicate(message.clone())) })
    }
}
