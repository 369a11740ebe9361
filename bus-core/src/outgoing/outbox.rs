//! The outbox: inside the change's transaction, decide which connectors get
//! a change, store its payload once (the richest data mode they need) with
//! one relation per connector, and collect what is handed over after the
//! commit — the head rows of queues the change started, the workers to wake
//! and the synchronous subscribers with their snapshot. The tasks of a
//! transaction are written together when it is about to commit
//! ([`Outbox::finish`]: one round trip for all of them on PostgreSQL), after
//! every other write of the transaction.

use super::payload;
use super::subscribers::{self, subscribers, Route, Subscriber};
use crate::change::Applied;
use crate::connector::LiveConnector;
use crate::driver::{Ending, QueueHeads};
use crate::object_types::ObjectTypes;
use crate::queue::{self, Direction, Matching, NewRelation, NewTask, Queued};
use crate::store::StoreError;
use connector_abi::protocol::SyncTask;
use connector_abi::{CmsObject, TaskDataType, TaskProcessType};
use std::sync::Arc;

/// Whether queued tasks go to the workers right after the commit (the
/// `process_outgoing` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandOver {
    /// Processing is on: wake the workers, hand over new queue heads, run
    /// the synchronous subscribers.
    Now,
    /// Processing is off: the tasks wait; synchronous subscribers are
    /// passed over (their data is not kept).
    Later,
}

/// One transaction's outbox.
pub(crate) struct Outbox<'a> {
    tx: &'a crate::sql::Conn,
    types: &'a ObjectTypes,
    live: &'a [Arc<LiveConnector>],
    origin: Option<&'a str>,
    hand_over: HandOver,
    /// Connectors an earlier task of this transaction is queued for.
    busy: Vec<i64>,
    /// The tasks to write at [`Self::finish`], in the order of the changes.
    tasks: Vec<PendingTask<'a>>,
    after_commit: AfterCommit,
}

/// A task the outbox writes when the transaction is about to commit.
struct PendingTask<'a> {
    applied: &'a Applied,
    title: String,
    data_type: TaskDataType,
    data: String,
    relations: Vec<NewRelation>,
    /// The queues this task may start (see `QueueHeads`): connector name
    /// and the index of its relation.
    starts: Vec<(String, usize)>,
}

/// Which pending task an [`Entry`] logged (its ID is known after
/// [`Outbox::finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskRef(usize);

/// What the outbox wrote, once the transaction's tasks are written.
pub(crate) struct Logged {
    task_ids: Vec<i64>,
    pub after_commit: AfterCommit,
}

impl Logged {
    /// The ID of a task an [`Entry`] names.
    pub(crate) fn task_id(&self, task: TaskRef) -> i64 {
        self.task_ids[task.0]
    }
}

/// What one change put in the outbox.
pub(crate) struct Entry {
    /// The task logged for the asynchronous subscribers, if any.
    pub task: Option<TaskRef>,
    /// Connectors whose queues got the task.
    pub queued_for: Vec<String>,
    /// What the synchronous subscribers get after the commit.
    pub sync: SyncPlan,
}

/// The synchronous subscribers of one change.
pub(crate) enum SyncPlan {
    None,
    /// Passed over because processing is off.
    Skipped(Vec<Subscriber>),
    /// Called after the commit with this task (custom subscriptions are
    /// asked first).
    Deliver(Vec<Subscriber>, Box<SyncTask>),
}

/// What the workers get once the transaction commits.
#[derive(Default)]
pub(crate) struct AfterCommit {
    /// New queue heads, by connector name.
    pub heads: Vec<(String, Queued)>,
    /// Connectors that got tasks (sorted, once each).
    pub woken: Vec<String>,
}

impl<'a> Outbox<'a> {
    /// An outbox writing through `tx` for the connectors in `live`; the
    /// connector named `origin` (an incoming change's source) gets nothing.
    pub(crate) fn new(
        tx: &'a crate::sql::Conn,
        types: &'a ObjectTypes,
        live: &'a [Arc<LiveConnector>],
        origin: Option<&'a str>,
        hand_over: HandOver,
    ) -> Self {
        Outbox {
            tx,
            types,
            live,
            origin,
            hand_over,
            busy: Vec::new(),
            tasks: Vec::new(),
            after_commit: AfterCommit::default(),
        }
    }

    /// Puts one applied change in the outbox.
    pub(crate) fn log(&mut self, applied: &'a Applied, title: &str) -> Result<Entry, StoreError> {
        let (queued, sync): (Vec<Subscriber>, Vec<Subscriber>) =
            subscribers(self.live, applied, self.origin).into_iter().partition(Subscriber::is_queued);
        let mut entry = Entry { task: None, queued_for: Vec::new(), sync: SyncPlan::None };
        if !queued.is_empty() {
            entry.task = Some(self.log_task(applied, title, &queued)?);
            entry.queued_for = queued.into_iter().map(|s| s.connector.name.clone()).collect();
            self.after_commit.woken.extend(entry.queued_for.iter().cloned());
        }
        if !sync.is_empty() {
            entry.sync = match self.hand_over {
                HandOver::Later => SyncPlan::Skipped(sync),
                HandOver::Now => {
                    let data_type = payload::data_type_for(TaskProcessType::SyncSnapshot, &applied.object);
                    let snapshot = payload::build(self.tx, self.types, applied, data_type)?;
                    let task = SyncTask {
                        task_type: applied.task_type,
                        site_name: applied.site_name.clone(),
                        object: snapshot.object,
                    };
                    SyncPlan::Deliver(sync, Box::new(task))
                }
            };
        }
        Ok(entry)
    }

    /// Writes the transaction's tasks (in the order of their changes; IDs
    /// drawn after every other write of the transaction, so a later change
    /// to an object always has a later task) and says what to hand the
    /// workers after the commit (nothing when processing is off). With
    /// [`Ending::Commit`] nothing of the transaction may follow: PostgreSQL
    /// commits it with the tasks.
    pub(crate) fn finish(self, ending: Ending) -> Result<Logged, StoreError> {
        let tasks: Vec<NewTask<'_>> = self.tasks.iter().map(PendingTask::new_task).collect();
        let rows: Vec<(NewTask<'_>, &[NewRelation])> =
            tasks.iter().zip(&self.tasks).map(|(t, p)| (*t, p.relations.as_slice())).collect();
        let driver = crate::driver::of(self.tx);
        let heads_after_commit = driver.queue_heads() == QueueHeads::AfterCommit;
        // Which queues a lone task committed with its statement heads is
        // read in the commit's round trip (see `QueueHeads`).
        let ask: Vec<i64> = match &self.tasks[..] {
            [pending] if heads_after_commit && ending == Ending::Commit => {
                pending.starts.iter().map(|(_, index)| pending.relations[*index].connector_id).collect()
            }
            _ => Vec::new(),
        };
        let (task_ids, heads) = match &rows[..] {
            [] => (Vec::new(), Vec::new()),
            [row] if !ask.is_empty() => {
                let (id, heads) = driver.log_task_heading(self.tx, *row, &ask)?;
                (vec![id], heads)
            }
            _ => (driver.log_tasks(self.tx, &rows, ending)?, Vec::new()),
        };
        let mut after = self.after_commit;
        if self.hand_over == HandOver::Later {
            return Ok(Logged { task_ids, after_commit: AfterCommit::default() });
        }
        for ((pending, task), &task_id) in self.tasks.iter().zip(&tasks).zip(&task_ids) {
            if pending.starts.is_empty() {
                continue;
            }
            let ids = match heads_after_commit {
                true => heads.clone(),
                false => queue::relation_ids(self.tx, task_id, Direction::Outgoing)?,
            };
            for (name, index) in &pending.starts {
                let relation = &pending.relations[*index];
                if let Some(&(_, sync_id)) = ids.iter().find(|(c, _)| *c == relation.connector_id) {
                    after.heads.push((name.clone(), Queued::head(task, task_id, sync_id, relation)));
                }
            }
        }
        after.woken.sort();
        after.woken.dedup();
        Ok(Logged { task_ids, after_commit: after })
    }

    /// Puts one task in the outbox for the queued subscribers: the payload
    /// once, for the richest data mode among them, and one relation per
    /// connector (written at [`Self::finish`]). When the task starts a
    /// connector's queue (and processing is on) it is kept as that queue's
    /// head: the worker gets it with its wake-up and calls the connector
    /// without reading the queue.
    fn log_task(&mut self, applied: &'a Applied, title: &str, subs: &[Subscriber]) -> Result<TaskRef, StoreError> {
        let relations: Vec<NewRelation> = subs.iter().map(|s| relation(s, &applied.object)).collect();
        let richest = subs
            .iter()
            .zip(&relations)
            .map(|(s, r)| match s.route {
                // The custom subscription may ask for the richest mode.
                Route::QueueAsk(_) => payload::data_type_for(TaskProcessType::AsyncSnapshot, &applied.object),
                _ => r.data_type,
            })
            .fold(TaskDataType::Simple, payload::richer);
        let data = serde_json::to_string(&payload::build(self.tx, self.types, applied, richest)?)
            .expect("a payload serializes");
        // The task may head the queues of the connectors it is the first
        // of this transaction's tasks for: with one writer at a time, those
        // empty now (see `QueueHeads`); else those the read after the
        // commit finds it heads, in `finish`.
        let mut starts = Vec::new();
        if self.hand_over == HandOver::Now {
            let heads = crate::driver::of(self.tx).queue_heads();
            for (index, s) in subs.iter().enumerate() {
                if self.busy.contains(&s.connector.id) {
                    continue;
                }
                self.busy.push(s.connector.id);
                if heads == QueueHeads::AfterCommit || queue::is_empty(self.tx, s.connector.id, Direction::Outgoing)? {
                    starts.push((s.connector.name.clone(), index));
                }
            }
        }
        self.tasks.push(PendingTask { applied, title: title.to_owned(), data_type: richest, data, relations, starts });
        Ok(TaskRef(self.tasks.len() - 1))
    }
}

impl PendingTask<'_> {
    fn new_task(&self) -> NewTask<'_> {
        NewTask {
            direction: Direction::Outgoing,
            task_type: self.applied.task_type,
            data_type: self.data_type,
            process_type: None,
            site_name: self.applied.site_name.as_deref(),
            title: &self.title,
            object: &self.applied.object,
            data: &self.data,
        }
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
pub(crate) fn synchronous_subscribers(candidates: Vec<Subscriber>, task: &SyncTask) -> Vec<Subscriber> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{self, Change};
    use crate::store::objects::ObjectInput;
    use crate::testing;
    use connector_abi::prelude::*;
    use serde_json::json;

    /// Subscribes to what its config lists (JSON subscriptions).
    struct Subscribes(Vec<Subscription>);

    impl Connector for Subscribes {
        fn create(config: &str, _host: Host) -> Result<Self, ConnectorError> {
            Ok(Subscribes(serde_json::from_str(config).unwrap()))
        }
        fn init(&self, init: &mut Init) {
            init.set_connector_name(init.registry_name().to_owned());
            for s in &self.0 {
                init.subscribe_to(s.clone());
            }
        }
    }

    fn users(process_type: &str) -> serde_json::Value {
        json!({"process_type": process_type, "scope": "objects", "object_type": "cms.user"})
    }

    fn user(code_name: &str) -> Change {
        Change::CreateObject {
            object_type: "cms.user".into(),
            object: ObjectInput { code_name: Some(code_name.into()), ..Default::default() },
        }
    }

    #[test]
    fn the_outbox_stores_one_payload_for_the_richest_mode_and_a_relation_per_connector() {
        let (_dir, db, ids) = testing::database(&["A", "B", "C"]);
        let live = vec![
            testing::live::<Subscribes>(ids[0], "A", &json!([users("AsyncSimple")]).to_string()),
            testing::live::<Subscribes>(
                ids[1],
                "B",
                &json!([users("AsyncSimple"), {"process_type": "AsyncSnapshot", "scope": "custom", "name": "vip"}])
                    .to_string(),
            ),
            testing::live::<Subscribes>(ids[2], "C", &json!([users("SyncSnapshot")]).to_string()),
        ];
        let types = ObjectTypes::defaults();
        let mut conn = db.connect().unwrap();
        let tx = conn.transaction().unwrap();
        let first = change::apply(&tx, &types, user("ann")).unwrap();
        let second = change::apply(&tx, &types, user("bob")).unwrap();
        let mut outbox = Outbox::new(&tx, &types, &live, None, HandOver::Now);
        let entry = outbox.log(&first, "Create User 'ann'").unwrap();
        assert_eq!(entry.queued_for, ["A", "B"], "the synchronous subscriber is not queued");
        let SyncPlan::Deliver(sync, task) = &entry.sync else { panic!("C gets the change synchronously") };
        assert_eq!(sync.iter().map(|s| s.connector.name.as_str()).collect::<Vec<_>>(), ["C"]);
        let CmsObject::Object(o) = &task.object else { panic!() };
        assert_eq!(o.code_name, "ann");
        // The second change in the same transaction: the queues are known
        // not to be empty any more, so it is no queue head.
        let entry2 = outbox.log(&second, "Create User 'bob'").unwrap();
        let logged = outbox.finish(Ending::Open).unwrap();
        let task_id = logged.task_id(entry.task.unwrap());
        assert!(logged.task_id(entry2.task.unwrap()) > task_id, "tasks are written in the order of their changes");
        let after = logged.after_commit;
        assert_eq!(after.woken, ["A", "B"], "each connector woken once");
        let heads: Vec<(&str, i64, TaskDataType, crate::queue::Matching)> =
            after.heads.iter().map(|(n, q)| (n.as_str(), q.task_id, q.data_type, q.matching)).collect();
        assert_eq!(
            heads,
            [
                ("A", task_id, TaskDataType::Simple, crate::queue::Matching::Decided),
                // B's custom subscription may ask for more: the payload is
                // the richest mode; B asks is_match before delivery.
                ("B", task_id, TaskDataType::Simple, crate::queue::Matching::AskOrKeep),
            ]
        );
        assert!(after.heads.iter().all(|(_, q)| q.task_data_type == TaskDataType::Snapshot));
        let stored: String = tx
            .query_row("SELECT TaskDataType FROM Integration_Task WHERE TaskID = $1", [task_id], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, "Snapshot", "one payload, for the richest mode any subscriber may need");
        let relations: i64 = tx
            .query_row(
                "SELECT count(*) FROM Integration_Synchronization WHERE SynchronizationTaskID = $1",
                [task_id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(relations, 2);
    }

    #[test]
    fn the_origin_gets_nothing_and_with_processing_off_nothing_is_handed_over() {
        let (_dir, db, ids) = testing::database(&["A", "C"]);
        let live = vec![
            testing::live::<Subscribes>(ids[0], "A", &json!([users("AsyncSimple")]).to_string()),
            testing::live::<Subscribes>(ids[1], "C", &json!([users("SyncSnapshot")]).to_string()),
        ];
        let types = ObjectTypes::defaults();
        let mut conn = db.connect().unwrap();
        let tx = conn.transaction().unwrap();
        let applied = change::apply(&tx, &types, user("ann")).unwrap();
        let mut outbox = Outbox::new(&tx, &types, &live, Some("A"), HandOver::Later);
        let entry = outbox.log(&applied, "t").unwrap();
        assert_eq!(entry.task, None, "the connector a change came from gets no task for it");
        assert!(matches!(&entry.sync, SyncPlan::Skipped(s) if s.len() == 1), "processing off: C is passed over");
        let after = outbox.finish(Ending::Open).unwrap().after_commit;
        assert!(after.heads.is_empty() && after.woken.is_empty());
    }
}
