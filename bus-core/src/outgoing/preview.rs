//! What a change would reach, read inside its own transaction before that
//! transaction is rolled back (`Pipeline::dry_run`, `POST /api/dry-run`):
//! for each connector, how it would get the change and the exact document
//! it would receive — read back from the rows the outbox wrote, as a
//! worker would read them. No connector is called: what its custom
//! subscriptions decide (`is_match`) is said to be decided later.

use super::outbox::{Entry, SyncPlan};
use super::payload;
use super::subscribers::{Route, Subscriber};
use crate::connector::LiveConnector;
use crate::queue::{self, Direction, Matching};
use crate::queue_admin;
use crate::sql::Conn;
use connector_abi::{CmsObject, TaskProcessType, TaskType};
use serde::Serialize;
use std::sync::Arc;

/// What a change would cause; nothing of it was written.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DryRun {
    /// Always `false`: the change ran in a transaction that was rolled back.
    pub written: bool,
    /// The same, in words.
    pub note: &'static str,
    pub task_type: TaskType,
    pub title: String,
    /// The object or document as the change would leave it.
    pub object: CmsObject,
    /// The connectors it would reach, in the order the bus would hand it
    /// over (queued ones by name, then the synchronous ones in call order).
    pub deliveries: Vec<Delivery>,
}

/// How one connector would get the change.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Delivery {
    pub connector: String,
    pub how: How,
    /// The process type; `null` when the connector's custom subscriptions
    /// decide it (`is_match`, asked at that moment).
    pub process_type: Option<TaskProcessType>,
    /// The document the connector would receive: the body of its
    /// `process_internal_task_async` request (queued) or
    /// `process_internal_task_sync` request (synchronous); `null` when it
    /// would not be called.
    pub document: Option<serde_json::Value>,
}

/// What [`DryRun::note`] says.
pub(crate) const NOTHING_WRITTEN: &str =
    "Nothing was written: the change was applied in a transaction that was rolled back, and no connector was called.";

/// When a connector would get the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// A task in its queue.
    Queued,
    /// A task in its queue; right before delivery its `is_match` is asked,
    /// and no match drops the task (or keeps it with the process type of
    /// the subscriptions that matched without asking).
    QueuedIfMatched,
    /// Called after the commit, inside the change's request.
    Synchronous,
    /// Asked with `is_match` after the commit; called synchronously when it
    /// matches.
    SynchronousIfMatched,
    /// A synchronous subscriber passed over: outgoing processing is off.
    NotCalledProcessingOff,
}

/// The deliveries of one staged change, read in its (uncommitted)
/// transaction.
pub(crate) fn deliveries(
    tx: &Conn,
    live: &[Arc<LiveConnector>],
    entry: &Entry,
    task_id: Option<i64>,
) -> crate::sql::Result<Vec<Delivery>> {
    let mut out = Vec::new();
    if let Some(task_id) = task_id {
        for name in &entry.queued_for {
            let Some(connector) = live.iter().find(|c| &c.name == name) else { continue };
            let Some(q) = queue::queued_task(tx, connector.id, Direction::Outgoing, task_id)? else { continue };
            let document = queue_admin::document(tx, connector.id, Direction::Outgoing, task_id)?
                .map(|d| d.unwrap_or_else(|problem| serde_json::json!({ "unreadable": problem })));
            let (how, process_type) = match q.matching {
                Matching::Decided => (How::Queued, Some(payload::async_process_type(q.data_type))),
                Matching::Ask | Matching::AskOrKeep => (How::QueuedIfMatched, None),
            };
            out.push(Delivery { connector: name.clone(), how, process_type, document });
        }
    }
    let synchronous = |subs: &[Subscriber], document: Option<serde_json::Value>, off: bool| {
        subs.iter()
            .map(|s| {
                let (how, process_type) = match (off, &s.route) {
                    (true, _) => (How::NotCalledProcessingOff, None),
                    (false, Route::SyncAsk) => (How::SynchronousIfMatched, None),
                    (false, _) => (How::Synchronous, Some(TaskProcessType::SyncSnapshot)),
                };
                let document = if off { None } else { document.clone() };
                Delivery { connector: s.connector.name.clone(), how, process_type, document }
            })
            .collect::<Vec<_>>()
    };
    match &entry.sync {
        SyncPlan::None => {}
        SyncPlan::Skipped(subs) => out.extend(synchronous(subs, None, true)),
        SyncPlan::Deliver(subs, task) => {
            let document = serde_json::to_value(task.as_ref()).expect("a task serializes");
            out.extend(synchronous(subs, Some(document), false));
        }
    }
    Ok(out)
}
