//! The state the bus keeps for each connector (`Integration_ConnectorState`):
//! a small key-value store a connector reaches through its host
//! (`Host::state_get`, `state_put`, `state_delete`) — an ERP's IDs mapped to
//! the bus's code names, a cursor of what was read last — kept in the bus
//! database, so it survives restarts, lease moves and upgrades.
//!
//! What a connector writes while it processes outgoing tasks is held in
//! the call's [`Pending`] writes (its own reads see them) and committed in
//! the transaction that records the call's deliveries: a task delivered
//! `Ok` takes its writes with it; a call that delivered nothing (an
//! `Error`, a crash, a timeout) leaves none, so a task delivered again sees
//! the state as of the last recorded delivery. Outside such a call (create,
//! init, preparing incoming tasks, a thread of the connector's own) a write
//! is committed at once. The call's writes travel with the call: a
//! thread-local on the calling thread, carried to the threads that serve a
//! connector process's host requests (`isolation/supervisor.rs`).

use crate::db::{Database, DbError};
use crate::sql::{params, Conn, OptionalExtension};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// The longest key, in characters.
pub const MAX_KEY_CHARS: usize = 200;
/// The largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// What a connector asks of its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateOp<'a> {
    Get(&'a str),
    Put(&'a str, &'a str),
    Delete(&'a str),
}

/// Why a state request was refused.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("a state key must be 1 to {MAX_KEY_CHARS} characters, not {0}")]
    Key(usize),
    #[error("a state value must be at most {MAX_VALUE_BYTES} bytes, not {0}")]
    Value(usize),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<crate::sql::SqlError> for StateError {
    fn from(e: crate::sql::SqlError) -> Self {
        StateError::Db(DbError::Sql(e))
    }
}

/// The writes of one call into a connector, not committed yet: by key, the
/// new value or `None` for a delete.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    writes: Mutex<BTreeMap<String, Option<String>>>,
    /// The writes of the call this one is part of (one task of a call made
    /// one by one): read after its own.
    parent: Option<Arc<Pending>>,
}

/// Writes taken from a call, to commit with its deliveries.
pub(crate) type Writes = Vec<(String, Option<String>)>;

impl Pending {
    pub(crate) fn new() -> Arc<Pending> {
        Arc::default()
    }

    /// The writes of one part of `parent`'s call: its reads see its own
    /// writes, then `parent`'s.
    pub(crate) fn child(parent: &Arc<Pending>) -> Arc<Pending> {
        Arc::new(Pending { writes: Mutex::default(), parent: Some(parent.clone()) })
    }

    /// The writes made so far (and none left here).
    pub(crate) fn take(&self) -> Writes {
        std::mem::take(&mut *self.writes.lock().unwrap_or_else(|p| p.into_inner())).into_iter().collect()
    }

    /// Adds `writes` (taken from another call's writes) after those made
    /// so far.
    pub(crate) fn absorb(&self, writes: Writes) {
        self.writes.lock().unwrap_or_else(|p| p.into_inner()).extend(writes);
    }

    fn get(&self, key: &str) -> Option<Option<String>> {
        let own = self.writes.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned();
        own.or_else(|| self.parent.as_ref().and_then(|p| p.get(key)))
    }

    fn set(&self, key: &str, value: Option<&str>) {
        self.writes.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), value.map(str::to_owned));
    }
}

thread_local! {
    /// The writes of the call this thread runs or serves, if any.
    static SCOPE: RefCell<Option<Arc<Pending>>> = const { RefCell::new(None) };
}

/// The writes of the call this thread runs or serves, to carry to a thread
/// that serves it.
pub(crate) fn current() -> Option<Arc<Pending>> {
    SCOPE.with(|s| s.borrow().clone())
}

/// Runs `f` as part of the call whose writes are `scope` (the thread's
/// previous scope comes back when `f` returns or unwinds).
pub(crate) fn within<R>(scope: Option<Arc<Pending>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Pending>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            SCOPE.with(|s| *s.borrow_mut() = previous);
        }
    }
    let _restore = Restore(SCOPE.with(|s| s.replace(scope)));
    f()
}

/// Refuses a key or value over the limits.
pub fn check(op: StateOp<'_>) -> Result<(), StateError> {
    let key = match op {
        StateOp::Get(k) | StateOp::Put(k, _) | StateOp::Delete(k) => k,
    };
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_KEY_CHARS {
        return Err(StateError::Key(chars));
    }
    match op {
        StateOp::Put(_, value) if value.len() > MAX_VALUE_BYTES => Err(StateError::Value(value.len())),
        _ => Ok(()),
    }
}

/// Serves one request of connector `connector`: a read sees the call's own
/// writes first; a write joins the call's writes, or is committed at once
/// outside a delivery call.
pub fn serve(db: &Database, connector: &str, op: StateOp<'_>) -> Result<Option<String>, StateError> {
    check(op)?;
    let scope = current();
    match (op, scope) {
        (StateOp::Get(key), Some(scope)) if scope.get(key).is_some() => Ok(scope.get(key).flatten()),
        (StateOp::Get(key), _) => Ok(read(&*db.connect()?, connector, key)?),
        (StateOp::Put(key, value), Some(scope)) => {
            scope.set(key, Some(value));
            Ok(None)
        }
        (StateOp::Delete(key), Some(scope)) => {
            scope.set(key, None);
            Ok(None)
        }
        (StateOp::Put(key, value), None) => {
            write_now(db, connector, &[(key.to_owned(), Some(value.to_owned()))])?;
            Ok(None)
        }
        (StateOp::Delete(key), None) => {
            write_now(db, connector, &[(key.to_owned(), None)])?;
            Ok(None)
        }
    }
}

fn read(conn: &Conn, connector: &str, key: &str) -> crate::sql::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT s.StateValue FROM Integration_ConnectorState s \
         JOIN Integration_Connector c ON c.ConnectorID = s.StateConnectorID \
         WHERE c.ConnectorName = $1 AND s.StateKey = $2",
    )?
    .query_row(params![connector, key], |r| r.get(0))
    .optional()
}

fn write_now(db: &Database, connector: &str, writes: &[(String, Option<String>)]) -> Result<(), DbError> {
    let mut turn = db.writer()?;
    let tx = turn.transaction()?;
    // A connector deleted meanwhile has no state to keep; one still there
    // is held until the commit (PostgreSQL: its state has no foreign key,
    // and a delete removes the state it sees committed).
    if let Some(id) = connector_id(&tx, connector)? {
        if crate::driver::of(&tx).hold_connector(&tx, id)? {
            apply(&tx, id, writes)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The ID of the connector named `connector`, if there is one.
fn connector_id(conn: &Conn, connector: &str) -> crate::sql::Result<Option<i64>> {
    conn.prepare_cached("SELECT ConnectorID FROM Integration_Connector WHERE ConnectorName = $1")?
        .query_row(params![connector], |r| r.get(0))
        .optional()
}

/// Applies `writes` of connector `connector_id` in `tx` (the transaction
/// that records the deliveries they were made for).
pub(crate) fn apply(tx: &Conn, connector_id: i64, writes: &[(String, Option<String>)]) -> crate::sql::Result<()> {
    for (key, value) in writes {
        match value {
            // A connector deleted during its call keeps nothing (and fails
            // no shared commit).
            Some(value) => tx
                .prepare_cached(
                    "INSERT INTO Integration_ConnectorState (StateConnectorID, StateKey, StateValue) \
                     SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM Integration_Connector WHERE ConnectorID = $1) \
                     ON CONFLICT (StateConnectorID, StateKey) DO UPDATE SET \
                     StateValue = excluded.StateValue, StateLastModified = bus_now()",
                )?
                .execute(params![connector_id, key, value])?,
            None => tx
                .prepare_cached("DELETE FROM Integration_ConnectorState WHERE StateConnectorID = $1 AND StateKey = $2")?
                .execute(params![connector_id, key])?,
        };
    }
    Ok(())
}

/// One entry of a connector's state, as ops see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct StateEntry {
    pub key: String,
    pub value: String,
    /// When it was last written (RFC 3339).
    pub modified: String,
}

/// A connector's state in key order, after `after` (exclusive), at most
/// `limit` entries; `None` when there is no connector `connector`.
pub fn list(
    conn: &Conn,
    connector: &str,
    after: Option<&str>,
    limit: u32,
) -> crate::sql::Result<Option<Vec<StateEntry>>> {
    let Some(id) = connector_id(conn, connector)? else { return Ok(None) };
    let entries = conn
        .prepare_cached(&format!(
            "SELECT StateKey, StateValue, StateLastModified FROM Integration_ConnectorState \
             WHERE StateConnectorID = $1 AND (StateKey > $2 OR $2 IS NULL) ORDER BY StateKey LIMIT {}",
            limit.max(1)
        ))?
        .query_map(params![id, after], |r| Ok(StateEntry { key: r.get(0)?, value: r.get(1)?, modified: r.get(2)? }))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(db: &Database, key: &str) -> Option<String> {
        read(&db.connect().unwrap(), "A", key).unwrap()
    }

    #[test]
    fn a_calls_writes_wait_for_its_delivery_record_and_others_commit_at_once() {
        let (_dir, db, _) = crate::testing::database(&["A"]);
        serve(&db, "A", StateOp::Put("k", "1")).unwrap();
        serve(&db, "A", StateOp::Put("gone", "x")).unwrap();
        assert_eq!(value(&db, "k").as_deref(), Some("1"), "outside a delivery call: committed at once");

        let scope = Pending::new();
        within(Some(scope.clone()), || {
            serve(&db, "A", StateOp::Put("k", "2")).unwrap();
            serve(&db, "A", StateOp::Delete("gone")).unwrap();
            assert_eq!(serve(&db, "A", StateOp::Get("k")).unwrap().as_deref(), Some("2"), "the call reads its own");
            assert_eq!(serve(&db, "A", StateOp::Get("gone")).unwrap(), None);
        });
        assert_eq!(value(&db, "k").as_deref(), Some("1"), "not committed before the delivery");
        // One task of a call made one by one reads the call's writes.
        let part = Pending::child(&scope);
        within(Some(part.clone()), || {
            assert_eq!(serve(&db, "A", StateOp::Get("k")).unwrap().as_deref(), Some("2"));
            serve(&db, "A", StateOp::Put("k", "3")).unwrap();
        });
        assert_eq!(scope.get("k"), Some(Some("2".to_owned())), "a part's writes stay its own until absorbed");
        scope.absorb(part.take());
        assert_eq!(current().map(|_| ()), None, "the scope ends with the call");

        let writes = scope.take();
        let mut conn = db.connect().unwrap();
        let tx = conn.transaction().unwrap();
        let id: i64 = tx.query_row("SELECT ConnectorID FROM Integration_Connector", [], |r| r.get(0)).unwrap();
        apply(&tx, id, &writes).unwrap();
        tx.commit().unwrap();
        assert_eq!(value(&db, "k").as_deref(), Some("3"));
        assert_eq!(value(&db, "gone"), None);
        let listed = list(&db.connect().unwrap(), "A", None, 10).unwrap().unwrap();
        assert_eq!(listed.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["k"]);
        assert!(list(&db.connect().unwrap(), "Nobody", None, 10).unwrap().is_none());
    }

    #[test]
    fn keys_and_values_over_the_limits_are_refused_by_name() {
        let long_key = "k".repeat(MAX_KEY_CHARS + 1);
        let e = check(StateOp::Get(&long_key)).unwrap_err().to_string();
        assert!(e.contains("1 to 200 characters, not 201"), "{e}");
        assert!(check(StateOp::Delete("")).is_err());
        let big = "v".repeat(MAX_VALUE_BYTES + 1);
        let e = check(StateOp::Put("k", &big)).unwrap_err().to_string();
        assert!(e.contains("at most 65536 bytes"), "{e}");
        assert!(check(StateOp::Put("k", &"v".repeat(MAX_VALUE_BYTES))).is_ok());
    }
}
