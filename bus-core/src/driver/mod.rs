//! The storage drivers: what the two engines do differently, one method per
//! operation, each driver with its own SQL — `sqlite.rs` for the embedded
//! file, `postgres.rs` for a server shared by several daemons. Business
//! code asks [`of`] for the driver of its connection and never branches on
//! the engine itself (River's `riverdriver` is the model).
//!
//! The statements both engines spell alike are still written once, beside
//! the business code; an operation moves here when the engines need
//! different SQL or a different number of round trips for it.

pub mod conformance;
mod postgres;
mod sqlite;

pub(crate) use postgres::bigint_array;

use crate::queue_rows::{NewRelation, NewTask};
use crate::settings::Settings;
use crate::sql::{Conn, Dialect, SqlError, ToValue};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) type Result<T> = std::result::Result<T, SqlError>;

/// How a change's transaction tells that its new task heads a connector's
/// queue (and so hands it to the worker with the wake-up: the worker calls
/// the connector without reading its queue first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueHeads {
    /// One writer at a time (SQLite's write lock): what the transaction
    /// reads is what is committed before it, so a queue empty before the
    /// task is one the task heads.
    Known,
    /// Writers on several daemons: an older task may commit meanwhile, so
    /// only a read after the commit can tell — made in the commit's own
    /// round trip ([`Driver::log_task_heading`]), for a transaction of one
    /// task ending with its commit. It is what the worker would read at
    /// that moment, in the order it reads (task IDs, in which each
    /// writer's tasks follow one another). Other transactions hand nothing
    /// over.
    AfterCommit,
}

/// What follows a transaction's tasks ([`Driver::log_tasks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// More of the transaction (a dry run reads the tasks back, then
    /// rolls back).
    Open,
    /// Its commit, nothing else: PostgreSQL sends the `COMMIT` in the same
    /// round trip as the tasks, and the caller's own commit then has
    /// nothing left to do. (SQLite commits when the caller does.)
    Commit,
}

/// Where a change's transaction takes its start ([`ChangeStart`]) from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// From what the daemon read before ([`StartCache`]), if it has it: no
    /// round trip on PostgreSQL. The transaction then checks, with its
    /// first statement, that the settings and the registry are still those;
    /// if they are not, or a connector it queues for was deleted meanwhile,
    /// it fails
    /// with an error [`Driver::start_was_stale`] recognizes, and the change
    /// runs again from [`Start::Fresh`].
    Cached,
    /// Read from the database in the transaction.
    Fresh,
}

/// What [`Driver::begin_change`] is asked.
pub(crate) struct StartAsk<'a> {
    /// The connectors the caller would queue for.
    pub ids: &'a [i64],
    /// The registry version those connectors were loaded from.
    pub registry_version: i64,
    /// How many objects the change will create.
    pub creates: usize,
    pub start: Start,
    pub cache: &'a StartCache,
}

/// How long object IDs drawn ahead are handed out: then the rest are
/// dropped, so that an object's ID stays close to the order objects are
/// created in (a client reading objects "oldest first" by ID) — a daemon
/// that creates little does not keep IDs older than others' new ones.
const IDS_KEPT_FOR: Duration = Duration::from_secs(1);

/// What a daemon's changes keep between their transactions (PostgreSQL):
/// the settings last read, with the server's version of them, and object
/// IDs drawn ahead.
#[derive(Debug, Default)]
pub(crate) struct StartCache(Mutex<Cached>);

#[derive(Debug, Default)]
struct Cached {
    settings: Option<Read>,
    object_ids: VecDeque<i64>,
    /// When the oldest of `object_ids` was drawn.
    drawn_at: Option<Instant>,
}

/// The settings as a start read them.
#[derive(Debug, Clone)]
struct Read {
    settings: Settings,
    /// The server's version of the settings and of the registry.
    version: String,
    /// The registry version the caller's connectors were loaded from (the
    /// one the server had then): a daemon that has not reloaded its
    /// registry since reads again.
    registry_version: i64,
}

impl Cached {
    /// Drops the object IDs kept longer than [`IDS_KEPT_FOR`].
    fn expire(&mut self) {
        if self.drawn_at.is_some_and(|at| at.elapsed() > IDS_KEPT_FOR) {
            self.object_ids.clear();
            self.drawn_at = None;
        }
    }
}

impl StartCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The settings and their version, and `creates` object IDs — if the
    /// settings were read for the connectors of `registry_version` and
    /// enough IDs are left.
    fn take(&self, creates: usize, registry_version: i64) -> Option<(Settings, String, Vec<i64>)> {
        let mut cached = self.lock();
        cached.expire();
        let read = cached.settings.clone().filter(|r| r.registry_version == registry_version)?;
        if cached.object_ids.len() < creates {
            return None;
        }
        Some((read.settings, read.version, cached.object_ids.drain(..creates).collect()))
    }

    /// Up to `n` of the object IDs left.
    fn take_ids(&self, n: usize) -> Vec<i64> {
        let mut cached = self.lock();
        cached.expire();
        let n = n.min(cached.object_ids.len());
        cached.object_ids.drain(..n).collect()
    }

    /// Keeps the settings just read, with their version, for the
    /// connectors of `registry_version` (`None`: the daemon's connectors
    /// are not the registry's, so nothing is kept), and object IDs drawn for
    /// later changes.
    fn keep(&self, settings: Settings, version: String, registry_version: Option<i64>, ids: Vec<i64>) {
        let mut cached = self.lock();
        cached.settings = registry_version.map(|registry_version| Read { settings, version, registry_version });
        if !ids.is_empty() && cached.object_ids.is_empty() {
            cached.drawn_at = Some(Instant::now());
        }
        cached.object_ids.extend(ids);
    }

    /// Forgets the settings: the next change reads them.
    pub(crate) fn forget(&self) {
        self.lock().settings = None;
    }

    /// Forgets everything, object IDs too (the server may have lost track
    /// of them: a restart, a failover).
    pub(crate) fn forget_all(&self) {
        *self.lock() = Cached::default();
    }
}

/// Whether a change's transaction may run again ([`Driver::start_was_stale`],
/// rows sent together refused): its work then keeps what it needs for that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reruns {
    Never,
    Possible,
}

/// What a change's transaction starts from.
#[derive(Debug, Clone)]
pub(crate) struct ChangeStart {
    pub settings: Settings,
    /// The connectors (of those asked about) that still exist.
    pub present: Vec<i64>,
    /// Object IDs drawn for the objects the change will create (see
    /// `store/ahead.rs`): as many as asked on PostgreSQL, none on SQLite
    /// (an insert costs no round trip there).
    pub object_ids: Vec<i64>,
}

/// What differs between the engines.
pub(crate) trait Driver: Sync {
    /// Logs tasks, each with its relations (any number, none too), in the order
    /// given (their IDs grow in that order); returns their IDs. On
    /// PostgreSQL one round trip for all, with the commit when `ending`
    /// says so.
    fn log_tasks(&self, tx: &Conn, tasks: &[(NewTask<'_>, &[NewRelation])], ending: Ending) -> Result<Vec<i64>>;

    /// See [`QueueHeads`].
    fn queue_heads(&self) -> QueueHeads;

    /// Logs one task as [`Self::log_tasks`] with [`Ending::Commit`] and
    /// returns its ID — and, read once it committed, in the same round trip
    /// ([`QueueHeads::AfterCommit`]), which connectors of `ask` now have it
    /// at the head of their outgoing queue (no older task queued for them),
    /// each with the task's relation ID. By default none.
    fn log_task_heading(
        &self,
        tx: &Conn,
        task: (NewTask<'_>, &[NewRelation]),
        ask: &[i64],
    ) -> Result<(i64, Vec<(i64, i64)>)> {
        let _ = ask;
        let ids = self.log_tasks(tx, &[task], Ending::Commit)?;
        Ok((ids.first().copied().unwrap_or_default(), Vec::new()))
    }

    /// Defers the insert of a new object whose ID `id` was drawn ahead
    /// (`store/ahead.rs`); `values` are its columns from `ObjectID` to
    /// `ObjectLastModified`. A refused insert fails a later statement with
    /// its tag `id` — or, on PostgreSQL where the inserts of a batch go as
    /// one statement, with [`SqlError::DeferredRows`] (see
    /// [`crate::sql::Conn::defer_row`]).
    fn defer_object(&self, conn: &Conn, values: &[&dyn ToValue], id: i64) -> Result<()>;

    /// The start of a change's transaction: the settings as committed, and
    /// which connectors of `ask.ids` still exist, kept from being deleted
    /// until `tx` ends (a registry edit may not be reinitialized yet) — or,
    /// with [`Start::Cached`], what the daemon read before, checked by the
    /// transaction itself (see [`Start`]).
    fn begin_change(&self, tx: &Conn, ask: &StartAsk<'_>) -> Result<ChangeStart>;

    /// Whether `error` failed a transaction begun from [`Start::Cached`]
    /// because what it started from had changed: the settings, or a
    /// connector it queued for was deleted. Running it again from
    /// [`Start::Fresh`] is then right.
    fn start_was_stale(&self, error: &SqlError) -> bool;

    /// Whether, after `error`, object IDs drawn ahead may no longer be the
    /// server's to hand out (the connection lost — a restart, a failover —
    /// or an ID found taken): the [`StartCache`] then forgets them.
    fn ids_lost(&self, error: &SqlError) -> bool;

    /// See [`Reruns`].
    fn reruns(&self) -> Reruns;

    /// Whether connector `id` is still registered, and if so kept from
    /// being deleted until `tx` ends, for the relations (or the state) `tx`
    /// writes for it
    /// (PostgreSQL: a shared advisory lock its delete waits for, schema
    /// v8; SQLite's write lock holds it already).
    fn hold_connector(&self, tx: &Conn, id: i64) -> Result<bool>;

    /// Locks the connector `name` before a delete counts its queue, so no
    /// change queues for it in between.
    fn lock_connector_for_delete(&self, tx: &Conn, name: &str) -> Result<()>;

    /// After a unique violation inserting an object: whether its GUID was
    /// the value taken (else its code name was). On PostgreSQL nothing more
    /// can be asked in the failed transaction; the error names the
    /// constraint.
    fn guid_taken(&self, tx: &Conn, error: &SqlError, guid: &str) -> Result<bool>;

    /// Objects that refer to `id`: for each `(object type, JSON field)` of
    /// `references`, the objects of that type whose field holds the number
    /// `id`, as `(index in references, object ID)` in that order, then ID
    /// order (one round trip on PostgreSQL, however many references).
    fn objects_referencing(&self, conn: &Conn, references: &[(&str, &str)], id: i64) -> Result<Vec<(usize, i64)>>;

    /// A document of class `class_name` whose JSON `field` holds the number
    /// `id`, if any.
    fn document_referencing(&self, conn: &Conn, class_name: &str, field: &str, id: i64) -> Result<Option<i64>>;

    /// A condition on a relation `s` that passes over deliveries recorded
    /// but not yet removed (SQLite's `Integration_Delivered`; PostgreSQL
    /// removes a relation in its delivery's commit and keeps none).
    fn not_delivered(&self) -> &'static str;

    /// How many relations wait in one direction (`$1`) for one connector or
    /// all (`$2`, or NULL), deliveries recorded but not removed left out:
    /// one query returning one count.
    fn count_waiting(&self) -> &'static str;

    /// `LIKE` that ignores ASCII case, as grids search (SQLite's `LIKE`
    /// does; PostgreSQL's needs `ILIKE`).
    fn like_ignoring_case(&self) -> &'static str;
}

/// The driver of `conn`'s engine.
pub(crate) fn of(conn: &Conn) -> &'static dyn Driver {
    match conn.dialect() {
        Dialect::Sqlite => &sqlite::Sqlite,
        Dialect::Postgres => &postgres::Postgres,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings;

    fn settings() -> Settings {
        settings::from_keys(std::iter::empty())
    }

    #[test]
    fn a_cached_start_is_kept_for_its_registry_and_its_ids_for_a_while() {
        let cache = StartCache::default();
        cache.keep(settings(), "v".into(), Some(7), vec![1, 2, 3]);
        assert!(cache.take(1, 8).is_none(), "connectors loaded from another registry version start anew");
        let (_, version, ids) = cache.take(1, 7).expect("kept");
        assert_eq!((version.as_str(), ids), ("v", vec![1]));
        assert!(cache.take(3, 7).is_none(), "two IDs left, three asked");
        // Kept too long: dropped.
        let long_ago = Instant::now().checked_sub(IDS_KEPT_FOR + Duration::from_millis(10));
        cache.lock().drawn_at = long_ago;
        if long_ago.is_some() {
            assert!(cache.take_ids(5).is_empty(), "IDs kept past their time");
        }
        assert_eq!(cache.take(0, 7).map(|(_, _, ids)| ids), Some(Vec::new()), "the settings stay");
        // Read for connectors that are not the registry's: nothing kept.
        cache.keep(settings(), "w".into(), None, vec![4]);
        assert!(cache.take(0, 7).is_none());
        assert_eq!(cache.take_ids(5), [4]);
        cache.keep(settings(), "x".into(), Some(7), vec![5]);
        cache.forget_all();
        assert!(cache.take(0, 7).is_none() && cache.take_ids(1).is_empty(), "forgotten");
    }
}
