//! The change pipeline: apply changes to the content store and log the
//! outgoing tasks they cause in the same transaction (a transactional
//! outbox), then wake the connectors' workers and run the synchronous
//! subscriptions.

use crate::change::{self, Applied, Change};
use crate::db::{Database, DbError, WriteGate};
use crate::eventlog::EventLog;
use crate::manager::ConnectorManager;
use crate::object_types::ObjectTypes;
use crate::outgoing::payload;
use crate::outgoing::subscribers::{self, subscribers, Route, Subscriber};
use crate::outgoing::sync::{self, SyncOutcome};
use crate::queue::{self, Direction, Matching, NewRelation, NewTask, Queued};
use crate::registry;
use crate::settings;
use crate::store::StoreError;
use crate::worker::Workers;
use connector_abi::protocol::SyncTask;
use connector_abi::{CmsObject, TaskDataType, TaskProcessType};
use rusqlite::{Connection, TransactionBehavior};
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

impl ChangeError {
    /// The store error behind it, if any.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            ChangeError::Change { source, .. } | ChangeError::Single(source) => Some(source),
            ChangeError::Db(_) => None,
        }
    }
}

impl From<rusqlite::Error> for ChangeError {
    fn from(e: rusqlite::Error) -> Self {
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

/// A task logged for asynchronous subscribers.
struct Logged {
    task_id: i64,
    /// The task as the head of the queues it started, by connector name.
    heads: Vec<(String, Queued)>,
}

struct Pending {
    task_type: connector_abi::TaskType,
    site_name: Option<String>,
    title: String,
    sync_subscribers: Vec<Subscriber>,
    sync_object: Option<CmsObject>,
}

/// Applies changes to the content store.
pub struct Content {
    gate: WriteGate,
    types: Arc<ObjectTypes>,
    manager: Arc<ConnectorManager>,
    outgoing: Arc<Workers>,
    events: Arc<EventLog>,
}

impl Content {
    pub fn new(
        db: &Database,
        types: Arc<ObjectTypes>,
        manager: Arc<ConnectorManager>,
        outgoing: Arc<Workers>,
        events: Arc<EventLog>,
    ) -> Result<Self, DbError> {
        Ok(Content { gate: db.gate().clone(), types, manager, outgoing, events })
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
        self.transact(origin, |tx, types| {
            changes
                .into_iter()
                .enumerate()
                .map(|(index, change)| {
                    change::apply(tx, types, change).map_err(|source| ChangeError::Change { index, source })
                })
                .collect()
        })
    }

    /// Runs `work` in one transaction — it changes the content store and
    /// says what it changed — and logs the outgoing tasks of those changes in
    /// the same transaction (see [`Self::apply_all`]).
    pub fn transact(
        &self,
        origin: Option<&str>,
        work: impl FnOnce(&Connection, &ObjectTypes) -> Result<Vec<Applied>, ChangeError>,
    ) -> Result<Vec<ChangeResult>, ChangeError> {
        let set = self.manager.current();
        let mut turn = self.gate.enter();
        let tx = turn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let settings = settings::read(&tx)?;
        // A registry edit not yet reinitialized (a connector deleted with
        // plain SQL, say): only connectors that still exist get tasks.
        let stale = registry::registry_version(&tx)? != set.registry_version;
        let mut live = Vec::with_capacity(set.live.len());
        for c in set.live.values() {
            if !stale || registry::exists(&tx, c.id)? {
                live.push(c.clone());
            }
        }
        let applied_all = work(&tx, &self.types)?;
        let mut results = Vec::with_capacity(applied_all.len());
        let mut pending = Vec::with_capacity(applied_all.len());
        let mut woken: Vec<String> = Vec::new();
        // Connectors whose queue is known not to be empty in this transaction.
        let mut busy: Vec<i64> = Vec::new();
        let mut handed: Vec<(String, Queued)> = Vec::new();
        // Synchronous subscribers passed over because processing is off.
        let mut skipped_sync: Vec<(usize, String, Vec<Subscriber>)> = Vec::new();
        let hand_over = settings.processes_outgoing();
        for (index, applied) in applied_all.into_iter().enumerate() {
            let title = change::title(&self.types, applied.task_type, &applied.object);
            let mut task_id = None;
            let mut queued_for = Vec::new();
            let mut sync_subscribers = Vec::new();
            let mut sync_object = None;
            if settings.logs_outgoing() {
                let (async_subs, sync_subs): (Vec<Subscriber>, Vec<Subscriber>) =
                    subscribers(&live, &applied, origin).into_iter().partition(Subscriber::is_queued);
                if !async_subs.is_empty() {
                    let logged = self
                        .log_task(&tx, &applied, &title, &async_subs, hand_over.then_some(&mut busy))
                        .map_err(|source| ChangeError::Change { index, source })?;
                    task_id = Some(logged.task_id);
                    handed.extend(logged.heads);
                    queued_for = async_subs.into_iter().map(|s| s.connector.name.clone()).collect();
                    woken.extend(queued_for.iter().cloned());
                }
                if !sync_subs.is_empty() && !settings.processes_outgoing() {
                    skipped_sync.push((index, title.clone(), sync_subs.clone()));
                } else if !sync_subs.is_empty() {
                    let data_type = payload::data_type_for(TaskProcessType::SyncSnapshot, &applied.object);
                    let snapshot = payload::build(&tx, &self.types, &applied, data_type)
                        .map_err(|source| ChangeError::Change { index, source })?;
                    sync_object = Some(snapshot.object);
                    sync_subscribers = sync_subs;
                }
            }
            pending.push(Pending {
                task_type: applied.task_type,
                site_name: applied.site_name,
                title: title.clone(),
                sync_subscribers,
                sync_object,
            });
            results.push(ChangeResult {
                object: applied.object,
                task_type: applied.task_type,
                task_id,
                title,
                queued_for,
                sync: Vec::new(),
            });
        }
        tx.commit()?;
        drop(turn);
        if settings.processes_outgoing() {
            woken.sort();
            woken.dedup();
            self.outgoing.hand_over(handed);
            self.outgoing.wake(woken.iter().map(String::as_str));
        }
        for (index, title, subs) in skipped_sync {
            results[index].sync = sync::skipped(&self.events, &subs, &title);
        }
        for (p, result) in pending.into_iter().zip(results.iter_mut()) {
            if let Some(object) = p.sync_object {
                let task = SyncTask { task_type: p.task_type, site_name: p.site_name, object };
                let subs = synchronous_subscribers(p.sync_subscribers, &task);
                result.sync = sync::process(&self.events, &subs, &task, &p.title);
            }
        }
        Ok(results)
    }

    /// Logs one task for the asynchronous subscribers: the payload once, for
    /// the richest data mode among them, and one relation per connector.
    /// With `busy` (processing is on), the task is also returned as the head
    /// of each queue it starts (the queue was empty): the worker gets it with
    /// its wake-up and calls the connector without reading the queue.
    /// `busy` lists the connectors whose queues are known not to be empty.
    fn log_task(
        &self,
        tx: &Connection,
        applied: &Applied,
        title: &str,
        subs: &[Subscriber],
        busy: Option<&mut Vec<i64>>,
    ) -> Result<Logged, StoreError> {
        let relations: Vec<NewRelation> = subs.iter().map(|s| relation(s, &applied.object)).collect();
        let data_types: Vec<TaskDataType> = relations
            .iter()
            .zip(subs)
            .map(|(r, s)| match s.route {
                // The custom subscription may ask for the richest mode.
                Route::QueueAsk(_) => payload::data_type_for(TaskProcessType::AsyncSnapshot, &applied.object),
                _ => r.data_type,
            })
            .collect();
        let richest = data_types.iter().copied().fold(TaskDataType::Simple, payload::richer);
        let data =
            serde_json::to_string(&payload::build(tx, &self.types, applied, richest)?).expect("a payload serializes");
        let task_id = queue::insert_task(
            tx,
            &NewTask {
                direction: Direction::Outgoing,
                task_type: applied.task_type,
                data_type: richest,
                process_type: None,
                site_name: applied.site_name.as_deref(),
                title,
                object: &applied.object,
                data: &data,
            },
        )?;
        let mut heads = Vec::new();
        if let Some(busy) = busy {
            for (s, r) in subs.iter().zip(&relations) {
                if busy.contains(&s.connector.id) {
                    continue;
                }
                busy.push(s.connector.id);
                if queue::is_empty(tx, s.connector.id, Direction::Outgoing)? {
                    heads.push((s, *r));
                }
            }
        }
        queue::insert_relations(tx, task_id, Direction::Outgoing, &relations)?;
        let heads = if heads.is_empty() {
            Vec::new()
        } else {
            let ids = queue::relation_ids(tx, task_id, Direction::Outgoing)?;
            heads
                .into_iter()
                .filter_map(|(s, r)| {
                    let sync_id = ids.iter().find(|(c, _)| *c == s.connector.id)?.1;
                    Some((
                        s.connector.name.clone(),
                        Queued {
                            sync_id,
                            task_id,
                            task_type: applied.task_type.name().to_owned(),
                            task_data_type: richest.name().to_owned(),
                            data_type: r.data_type.name().to_owned(),
                            process_type: None,
                            site_name: applied.site_name.clone(),
                            title: title.to_owned(),
                            data: data.clone(),
                            matching: r.matching,
                        },
                    ))
                })
                .collect()
        };
        Ok(Logged { task_id, heads })
    }
}

/// The relation a queued subscriber gets.
fn relation(s: &Subscriber, object: &CmsObject) -> NewRelation {
    let (process_type, matching) = match s.route {
        Route::Queue(p) => (p, Matching::Decided),
        Route::QueueAsk(Some(p)) => (p, Matching::AskOrKeep),
        Route::QueueAsk(None) => (TaskProcessType::AsyncSnapshot, Matching::Ask),
        Route::Sync | Route::SyncAsk => unreachable!("synchronous subscribers are not queued"),
    };
    NewRelation { connector_id: s.connector.id, data_type: payload::data_type_for(process_type, object), matching }
}

/// The synchronous subscribers that take the change: those decided by their
/// subscriptions, and those whose synchronous custom subscription matches
/// (asked now, after the commit, on each connector's lane).
fn synchronous_subscribers(candidates: Vec<Subscriber>, task: &SyncTask) -> Vec<Subscriber> {
    candidates
        .into_iter()
        .filter(|s| match s.route {
            Route::SyncAsk => subscribers::ask(
                &s.connector,
                &task.object,
                task.task_type,
                task.site_name.as_deref(),
                true,
                None,
                |request| subscribers::is_match_on_lane(&s.connector, request),
            )
            .is_some(),
            _ => true,
        })
        .collect()
}
