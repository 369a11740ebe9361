//! The change pipeline: apply the changes to the content store, put them in
//! the outbox (`outgoing/outbox.rs`) in the same transaction, commit, then
//! hand over to the workers and the synchronous subscribers.

use crate::change::{self, Applied, Change};
use crate::connector::LiveConnector;
use crate::db::{Database, DbError};
use crate::driver::{Ending, Reruns, Start, StartAsk, StartCache};
use crate::eventlog::EventLog;
use crate::manager::ConnectorManager;
use crate::object_types::ObjectTypes;
use crate::outgoing::outbox::{synchronous_subscribers, Entry, HandOver, Logged, Outbox, SyncPlan};
use crate::outgoing::preview;
pub use crate::outgoing::preview::{Delivery, DryRun, How};
use crate::outgoing::sync::{self, SyncOutcome};
use crate::sql::Conn;
use crate::store::ahead::Ahead;
use crate::store::StoreError;
use crate::worker::Workers;
use connector_abi::CmsObject;
use serde::Serialize;
use std::sync::Arc;
use thiserror::Error;

/// Why a batch of changes was refused; nothing of it was written.
#[derive(Debug, Error)]
pub enum ChangeError {
    #[error("change {index}: {source}")]
    Change { index: usize, source: StoreError },
    #[error("{0}")]
    Single(StoreError),
    #[error("the change could not be saved: {0}")]
    Db(#[from] DbError),
}

impl From<crate::sql::SqlError> for ChangeError {
    fn from(e: crate::sql::SqlError) -> Self {
        ChangeError::Db(DbError::Sql(e))
    }
}

/// What became of one change.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChangeResult {
    /// The object or document after the change (before it, for a delete).
    pub object: CmsObject,
    pub task_type: connector_abi::TaskType,
    /// The outgoing task logged for the asynchronous subscribers, if any.
    pub task_id: Option<i64>,
    pub title: String,
    /// Connectors whose queues got the task.
    pub queued_for: Vec<String>,
    /// What the synchronous subscribers did.
    pub sync: Vec<SyncOutcome>,
}

/// A change's synchronous subscribers, called after the commit.
struct Pending {
    title: String,
    sync: SyncPlan,
}

/// Applies changes to the content store.
pub struct Pipeline {
    db: Database,
    types: Arc<ObjectTypes>,
    manager: Arc<ConnectorManager>,
    outgoing: Arc<Workers>,
    events: Arc<EventLog>,
    /// What the transactions start from without reading it again
    /// (PostgreSQL; see `driver::Start`).
    starts: StartCache,
}

/// What each attempt of a transaction works on ([`Pipeline::transact`]):
/// the first takes it, and a copy is kept for another only where a
/// transaction may run again (PostgreSQL).
pub(crate) struct Rerun<T: Clone> {
    first: Option<T>,
    kept: Option<T>,
}

impl<T: Clone> Rerun<T> {
    pub(crate) fn new(value: T) -> Self {
        Rerun { first: Some(value), kept: None }
    }

    pub(crate) fn for_attempt(&mut self, reruns: Reruns) -> T {
        match (self.first.take(), reruns) {
            (Some(value), Reruns::Never) => value,
            (Some(value), Reruns::Possible) => {
                self.kept = Some(value.clone());
                value
            }
            (None, _) => self.kept.clone().expect("a transaction runs again only where a copy was kept"),
        }
    }
}

/// How a change's transaction is staged ([`Pipeline::stage`]).
#[derive(Debug, Clone, Copy)]
struct StageAsk<'a> {
    /// The connector an incoming change came from.
    origin: Option<&'a str>,
    ending: Ending,
    /// How many objects the work will create.
    creates: usize,
    start: Start,
    rows: Rows,
}

/// How a transaction's deferred object inserts go out (PostgreSQL; see
/// `Conn::defer_row`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// Those of a batch as one statement.
    Together,
    /// Each with its own, so a refused one names its change.
    OneByOne,
}

/// What another attempt of a failed transaction would change
/// ([`Pipeline::transact`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Nothing: the error stands.
    No,
    /// What it started from had changed: start fresh.
    Fresh,
    /// Object inserts sent together were refused: send them one by one.
    RowsOneByOne,
}

impl Pipeline {
    pub fn new(
        db: &Database,
        types: Arc<ObjectTypes>,
        manager: Arc<ConnectorManager>,
        outgoing: Arc<Workers>,
        events: Arc<EventLog>,
    ) -> Result<Self, DbError> {
        Ok(Pipeline { db: db.clone(), types, manager, outgoing, events, starts: StartCache::default() })
    }

    pub fn types(&self) -> &ObjectTypes {
        &self.types
    }

    /// Applies one change (see [`Self::apply_all`]).
    pub fn apply(&self, change: Change, origin: Option<&str>) -> Result<ChangeResult, ChangeError> {
        let mut results = self.apply_all(vec![change], origin).map_err(|e| match e {
            ChangeError::Change { source, .. } => ChangeError::Single(source),
            other => other,
        })?;
        Ok(results.remove(0))
    }

    /// Applies changes in one transaction with the outgoing tasks they cause:
    /// all of it commits, or nothing. Then wakes the workers of the
    /// connectors that got tasks and hands the changes to the synchronous
    /// subscribers. `origin` names the connector an incoming change came
    /// from: it never gets a task for its own change.
    pub fn apply_all(&self, changes: Vec<Change>, origin: Option<&str>) -> Result<Vec<ChangeResult>, ChangeError> {
        let creates = changes.iter().filter(|c| matches!(c, Change::CreateObject { .. })).count();
        let mut changes = Rerun::new(changes);
        self.transact(origin, creates, |tx, types, ahead| {
            changes
                .for_attempt(crate::driver::of(tx).reruns())
                .into_iter()
                .enumerate()
                .map(|(index, change)| {
                    ahead.at_change(index);
                    change::apply_ahead(tx, types, change, ahead)
                        .map_err(|source| ChangeError::Change { index, source })
                })
                .collect()
        })
    }

    /// Runs `work` in one transaction — it changes the content store and
    /// says what it changed — and logs the outgoing tasks of those changes in
    /// the same transaction (see [`Self::apply_all`]). `creates`: how many
    /// objects `work` will create (their IDs are drawn ahead, see
    /// `store/ahead.rs`). `work` runs again, in a new transaction (nothing
    /// of the one before was written), when the first started from what
    /// the daemon read before and that had changed (see `driver::Start`),
    /// and when object inserts sent together were refused (so that the
    /// change whose insert it was is named): three attempts at most.
    pub(crate) fn transact(
        &self,
        origin: Option<&str>,
        creates: usize,
        mut work: impl FnMut(&Conn, &ObjectTypes, &mut Ahead) -> Result<Vec<Applied>, ChangeError>,
    ) -> Result<Vec<ChangeResult>, ChangeError> {
        let mut ask = StageAsk { origin, ending: Ending::Commit, creates, start: Start::Cached, rows: Rows::Together };
        let staged = loop {
            match self.commit_once(ask, &mut work) {
                Ok(done) => break done,
                Err((e, Retry::Fresh)) if ask.start == Start::Cached => {
                    tracing::debug!(error = %e, "the change started from stale settings or connectors; running it again");
                    self.starts.forget();
                    ask.start = Start::Fresh;
                }
                Err((e, Retry::RowsOneByOne)) if ask.rows == Rows::Together => {
                    tracing::debug!(error = %e, "object inserts sent together were refused; running them one by one");
                    ask.rows = Rows::OneByOne;
                }
                Err((e, _)) => return Err(e),
            }
        };
        let Staged { applied: applied_all, entries, logged, .. } = staged;
        let mut results = Vec::with_capacity(applied_all.len());
        let mut pending = Vec::with_capacity(applied_all.len());
        for (applied, (title, entry)) in applied_all.into_iter().zip(entries) {
            pending.push(Pending { title: title.clone(), sync: entry.sync });
            results.push(ChangeResult {
                object: applied.object,
                task_type: applied.task_type,
                task_id: entry.task.map(|t| logged.task_id(t)),
                title,
                queued_for: entry.queued_for,
                sync: Vec::new(),
            });
        }
        let after_commit = logged.after_commit;
        if !after_commit.woken.is_empty() {
            self.outgoing.hand_over(after_commit.heads);
            self.outgoing.wake(after_commit.woken.iter().map(String::as_str));
        }
        for (p, result) in pending.into_iter().zip(results.iter_mut()) {
            result.sync = match p.sync {
                SyncPlan::None => Vec::new(),
                SyncPlan::Skipped(subs) => sync::skipped(&self.events, &subs, &p.title),
                SyncPlan::Deliver(subs, task) => {
                    let subs = synchronous_subscribers(subs, &task);
                    sync::process(&self.events, &subs, &task, &p.title)
                }
            };
        }
        Ok(results)
    }

    /// One attempt of [`Self::transact`]: the transaction staged and
    /// committed. An error comes with what another attempt would change.
    fn commit_once(
        &self,
        ask: StageAsk<'_>,
        work: &mut impl FnMut(&Conn, &ObjectTypes, &mut Ahead) -> Result<Vec<Applied>, ChangeError>,
    ) -> Result<Staged, (ChangeError, Retry)> {
        let mut writer = self.db.writer().map_err(|e| (e.into(), Retry::No))?;
        let tx = writer.transaction_with(crate::sql::Begin::Immediate).map_err(|e| (e.into(), Retry::No))?;
        if ask.rows == Rows::OneByOne {
            tx.send_rows_one_by_one();
        }
        let driver = crate::driver::of(&tx);
        let retry = |e: ChangeError| {
            if sql_error(&e).is_some_and(|sql| driver.ids_lost(sql)) {
                self.starts.forget_all();
            }
            let retry = match sql_error(&e) {
                Some(sql) if driver.start_was_stale(sql) => Retry::Fresh,
                Some(sql) if sql.rows_sent_together() => Retry::RowsOneByOne,
                _ => Retry::No,
            };
            (e, retry)
        };
        let staged = self.stage(&tx, ask, work).map_err(retry)?;
        // (On PostgreSQL the tasks' round trip committed already, unless the
        // transaction logged none: its deferred inserts go with this.)
        if let Err(e) = tx.commit() {
            return Err(retry(attribute(&writer, &staged.ahead, e.into())));
        }
        Ok(staged)
    }

    /// Applies one change and logs its tasks as [`Self::apply`] would, reads
    /// what each connector would get, and rolls it all back: nothing is
    /// written and no connector is called (`outgoing/preview.rs`).
    pub fn dry_run(&self, change: Change) -> Result<DryRun, ChangeError> {
        let mut writer = self.db.writer()?;
        let tx = writer.transaction_with(crate::sql::Begin::Immediate)?;
        let ask =
            StageAsk { origin: None, ending: Ending::Open, creates: 0, start: Start::Fresh, rows: Rows::Together };
        let mut change = Some(change);
        let staged = self.stage(&tx, ask, &mut |tx, types, _| {
            let change = change.take().expect("a dry run stages once");
            change::apply(tx, types, change).map(|a| vec![a]).map_err(ChangeError::Single)
        })?;
        let (Some(applied), Some((title, entry))) = (staged.applied.first(), staged.entries.first()) else {
            unreachable!("one change was staged")
        };
        let deliveries = preview::deliveries(&tx, &staged.live, entry, entry.task.map(|t| staged.logged.task_id(t)))?;
        let dry_run = DryRun {
            written: false,
            note: preview::NOTHING_WRITTEN,
            task_type: applied.task_type,
            title: title.clone(),
            object: applied.object.clone(),
            deliveries,
        };
        // Dropped uncommitted: rolled back.
        drop(tx);
        Ok(dry_run)
    }

    /// A change's transaction up to its commit: the settings and live
    /// connectors it starts from (`driver::begin_change`: read, or kept
    /// and checked), `work` applied, its tasks put in the outbox and
    /// written — and, with [`Ending::Commit`] on PostgreSQL, committed in
    /// the same round trip.
    fn stage(
        &self,
        tx: &Conn,
        ask: StageAsk<'_>,
        work: &mut impl FnMut(&Conn, &ObjectTypes, &mut Ahead) -> Result<Vec<Applied>, ChangeError>,
    ) -> Result<Staged, ChangeError> {
        let set = self.manager.current();
        // The settings as committed, and — a registry edit may not be
        // reinitialized yet (a connector deleted with plain SQL, say) —
        // only connectors that still exist get tasks.
        let ids: Vec<i64> = set.live.values().map(|c| c.id).collect();
        let start = crate::driver::of(tx).begin_change(
            tx,
            &StartAsk {
                ids: &ids,
                registry_version: set.registry_version,
                creates: ask.creates,
                start: ask.start,
                cache: &self.starts,
            },
        )?;
        let settings = start.settings;
        let live: Vec<_> = set.live.values().filter(|c| start.present.contains(&c.id)).cloned().collect();
        let mut ahead = Ahead::new(start.object_ids);
        match self.logged(tx, (ask.origin, ask.ending), settings, live, &mut ahead, work) {
            Ok(staged) => Ok(Staged { ahead, ..staged }),
            Err(e) => Err(attribute(tx, &ahead, earlier_failure(tx, &ahead, e))),
        }
    }

    /// The part of [`Self::stage`] after its start, for the
    /// connectors `live` that are still present.
    fn logged(
        &self,
        tx: &Conn,
        (origin, ending): (Option<&str>, Ending),
        settings: crate::settings::Settings,
        live: Vec<Arc<LiveConnector>>,
        ahead: &mut Ahead,
        work: &mut impl FnMut(&Conn, &ObjectTypes, &mut Ahead) -> Result<Vec<Applied>, ChangeError>,
    ) -> Result<Staged, ChangeError> {
        let mut applied = work(tx, &self.types, ahead)?;
        change::mark_fresh_snapshots(&self.types, &mut applied);
        let hand_over = if settings.processes_outgoing() { HandOver::Now } else { HandOver::Later };
        let mut outbox = Outbox::new(tx, &self.types, &live, origin, hand_over);
        let mut entries = Vec::with_capacity(applied.len());
        for (index, one) in applied.iter().enumerate() {
            let title = change::title(&self.types, one.task_type, &one.object);
            let entry = if settings.logs_outgoing() {
                outbox.log(one, &title).map_err(|source| ChangeError::Change { index, source })?
            } else {
                Entry { task: None, queued_for: Vec::new(), sync: SyncPlan::None }
            };
            entries.push((title, entry));
        }
        let logged = outbox.finish(ending).map_err(|e| match e {
            StoreError::Sql(e) => ChangeError::Db(DbError::Sql(e)),
            other => ChangeError::Single(other),
        })?;
        Ok(Staged { applied, entries, logged, live, ahead: Ahead::default() })
    }
}

/// When change `j` is refused while inserts of earlier changes still wait
/// (PostgreSQL), one of them may be refused too: they are sent (on this
/// error path only), so the first change that fails is the one named — as
/// on SQLite, where each insert runs at once.
fn earlier_failure(tx: &Conn, ahead: &Ahead, e: ChangeError) -> ChangeError {
    let ChangeError::Change { index, .. } = &e else { return e };
    if !ahead.deferred_any() {
        return e;
    }
    match tx.query_row("SELECT 1", [], |r| r.get::<i64>(0)) {
        // Which of them is not known: the caller sends them again one by one.
        Err(sent) if sent.rows_sent_together() => ChangeError::Db(DbError::Sql(sent)),
        Err(sent) if ahead.failed(tx, &sent).is_some_and(|f| f.change < *index) => ChangeError::Db(DbError::Sql(sent)),
        _ => e,
    }
}

/// The database's error in `e`, if it is one.
fn sql_error(e: &ChangeError) -> Option<&crate::sql::SqlError> {
    match e {
        ChangeError::Change { source: StoreError::Sql(sql), .. }
        | ChangeError::Single(StoreError::Sql(sql))
        | ChangeError::Db(DbError::Sql(sql)) => Some(sql),
        _ => None,
    }
}

/// A deferred insert that failed with a later statement (see
/// `store/ahead.rs`), answered as the error of the change it belongs to.
fn attribute(tx: &Conn, ahead: &Ahead, e: ChangeError) -> ChangeError {
    let failed = sql_error(&e).and_then(|sql| ahead.failed(tx, sql));
    let Some(failed) = failed else { return e };
    let source = failed.error.unwrap_or_else(|| match e {
        ChangeError::Change { source, .. } | ChangeError::Single(source) => source,
        ChangeError::Db(DbError::Sql(sql)) => StoreError::Sql(sql),
        ChangeError::Db(other) => StoreError::Invalid(other.to_string()),
    });
    ChangeError::Change { index: failed.change, source }
}

/// A change's transaction, staged and not committed yet.
struct Staged {
    applied: Vec<Applied>,
    entries: Vec<(String, Entry)>,
    logged: Logged,
    /// The connectors that could get its tasks.
    live: Vec<Arc<LiveConnector>>,
    /// The inserts still waiting to be sent, if any (with the commit).
    ahead: Ahead,
}
