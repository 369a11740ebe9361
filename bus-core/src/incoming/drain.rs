//! The incoming drain: applies each queued incoming task to the content
//! store (one transaction per task, which also removes the task), honouring
//! its process type: Default (on error mark the task Error and stop),
//! SkipOnce (pass over it once, then Default), SkipOnError (on error record
//! it and go on), DeleteOnError (on error delete it and go on), Error (stop
//! at it).

use super::apply;
use crate::backend::{QueueError, QueueKey, QueueSession};
use crate::connector::LiveConnector;
use crate::eventlog::{EventLog, NewEvent, BUS_SOURCE};
use crate::outgoing::payload::Payload;
use crate::pipeline::{ChangeError, Pipeline};
use crate::queue::{Direction, Queued};
use crate::settings::Settings;
use crate::worker::{Drain, Run, RunEnd, RunKind, TaskResult};
use connector_abi::{EventType, IntegrationProcessType};
use std::sync::Arc;
use std::time::Instant;

/// Drains incoming queues into the content store.
pub(crate) struct IncomingDrain {
    pub pipeline: Arc<Pipeline>,
    pub events: Arc<EventLog>,
}

impl Drain for IncomingDrain {
    fn direction(&self) -> Direction {
        Direction::Incoming
    }

    fn enabled(&self, settings: &Settings) -> bool {
        settings.processes_incoming()
    }

    fn automatic(&self) -> bool {
        false
    }

    fn process(&self, run: &mut Run<'_>) -> Result<RunEnd, QueueError> {
        // Incoming runs always include tasks passed over before (SkipOnError).
        let mut batches = run.batches(Direction::Incoming, true);
        let manual = run.kind == RunKind::Manual;
        loop {
            let batch = batches.next(run.queue)?;
            if batch.is_empty() {
                return Ok(RunEnd::Drained);
            }
            for q in &batch {
                if !run.is_current(Direction::Incoming) {
                    return Ok(RunEnd::Interrupted);
                }
                let started = Instant::now();
                let key = run.key(Direction::Incoming);
                let (result, error) = self.process_one(run.queue, key, run.connector, q, manual)?;
                let stop = matches!(result, TaskResult::Error | TaskResult::Blocked);
                run.recorder.record(q.task_id, result, error, started.elapsed());
                if stop {
                    return Ok(RunEnd::Stopped);
                }
            }
        }
    }
}

impl IncomingDrain {
    fn process_one(
        &self,
        queue: &mut dyn QueueSession,
        key: QueueKey,
        connector: &LiveConnector,
        q: &Queued,
        manual: bool,
    ) -> Result<(TaskResult, Option<String>), QueueError> {
        let process_type = q.process_type.unwrap_or_default();
        match process_type {
            // A manual synchronize is someone deciding to try again.
            IntegrationProcessType::Error if !manual => {
                return Ok((TaskResult::Blocked, Some("the task is marked Error; synchronize or delete it".into())))
            }
            IntegrationProcessType::SkipOnce if !manual => {
                queue.set_process_type(key, q.task_id, IntegrationProcessType::Default)?;
                return Ok((TaskResult::SkippedOnce, None));
            }
            _ => {}
        }
        let error = match self.apply(connector, q) {
            Ok(()) => return Ok((TaskResult::Ok, None)),
            Err(message) => message,
        };
        tracing::warn!(connector = %connector.name, task = q.task_id, process_type = %process_type, error = %error, "incoming task failed");
        Ok(match process_type {
            IntegrationProcessType::SkipOnError => {
                queue.record_failure(key, q.sync_id, &error, false)?;
                (TaskResult::SkippedOnError, Some(error))
            }
            IntegrationProcessType::DeleteOnError => {
                queue.complete(key, &[q.sync_id])?;
                self.events.write_or_warn(&NewEvent {
                    event_type: EventType::Warning,
                    source: BUS_SOURCE,
                    code: "INCOMINGDELETEDONERROR",
                    description: &format!(
                        "Incoming task {} `{}` of `{}` failed and was deleted: {error}",
                        q.task_id, q.title, connector.name
                    ),
                    document_name: None,
                    ..Default::default()
                });
                (TaskResult::DeletedOnError, Some(error))
            }
            _ => {
                queue.record_failure(key, q.sync_id, &error, false)?;
                queue.set_process_type(key, q.task_id, IntegrationProcessType::Error)?;
                (TaskResult::Error, Some(error))
            }
        })
    }

    /// Applies the task and removes it, in one transaction.
    fn apply(&self, connector: &LiveConnector, q: &Queued) -> Result<(), String> {
        if let Some(problem) = &q.unreadable {
            return Err(problem.clone());
        }
        let payload: Payload =
            serde_json::from_str(&q.data).map_err(|e| format!("the stored task data is unreadable: {e}"))?;
        let mut payload = crate::pipeline::Rerun::new(payload);
        let (task_type, data_type) = (q.task_type, q.task_data_type);
        let sync_id = q.sync_id;
        let site = q.site_name.clone();
        self.pipeline
            .transact(Some(&connector.name), 0, move |tx, types, _| {
                let payload = payload.for_attempt(crate::driver::of(tx).reruns());
                let applied = apply::apply(tx, types, payload, task_type, data_type, site.as_deref())
                    .map_err(ChangeError::Single)?;
                // Nothing removed: another worker (another daemon, after a
                // lease moved) applied it meanwhile; this copy rolls back.
                let removed =
                    tx.execute("DELETE FROM Integration_Synchronization WHERE SynchronizationID = $1", [sync_id])?;
                if removed == 0 {
                    return Err(ChangeError::Single(crate::store::StoreError::Conflict(
                        "the task is no longer queued: it was applied elsewhere".into(),
                    )));
                }
                Ok(applied)
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::SqliteQueues;
    use crate::loader::Loader;
    use crate::manager::{ConnectorManager, ConnectorSet};
    use crate::metrics::Metrics;
    use crate::object_types::ObjectTypes;
    use crate::outgoing::OutgoingDrain;
    use crate::queue::Selection;
    use crate::registry::Registry;
    use crate::testing;
    use crate::worker::{TaskOutcome, WorkerConfig, Workers};

    #[test]
    fn each_process_type_decides_what_a_failure_does() {
        let (dir, db, ids) = testing::database(&["In"]);
        let events = Arc::new(EventLog::new(&db).unwrap());
        let services = Arc::new(testing::Events::default());
        let loader = Loader::new(dir.path().join("connectors"), dir.path().join("state"));
        let manager = ConnectorManager::new(crate::manager::ManagerParts {
            registry: Registry::new(db.clone()),
            loader,
            services,
            events: events.clone(),
            cluster: None,
        });
        let queues: Arc<dyn crate::backend::Queues> = Arc::new(SqliteQueues::new(db.clone()));
        let metrics = Arc::new(Metrics::default());
        let config = WorkerConfig::default();
        let outgoing = Workers::new(queues.clone(), config, Arc::new(OutgoingDrain), metrics.clone());
        let types = Arc::new(ObjectTypes::defaults());
        let pipeline = Arc::new(Pipeline::new(&db, types, manager, outgoing, events.clone()).unwrap());
        let incoming = Workers::new(queues, config, Arc::new(IncomingDrain { pipeline, events }), metrics.clone());

        use IntegrationProcessType as P;
        let conn = db.connect().unwrap();
        let tasks = [
            testing::enqueue_incoming(&db, ids[0], "one", "cms.user", P::Default),
            testing::enqueue_incoming(&db, ids[0], "skip", "cms.nope", P::SkipOnError),
            testing::enqueue_incoming(&db, ids[0], "three", "cms.user", P::Default),
            testing::enqueue_incoming(&db, ids[0], "delete", "cms.nope", P::DeleteOnError),
            testing::enqueue_incoming(&db, ids[0], "five", "cms.user", P::Default),
            testing::enqueue_incoming(&db, ids[0], "stop", "cms.nope", P::Default),
            testing::enqueue_incoming(&db, ids[0], "seven", "cms.user", P::Default),
        ];
        // A new worker runs its queue once: every process type in turn.
        let live = testing::live::<testing::Quiet>(ids[0], "In", "");
        incoming.update(&ConnectorSet { live: [("In".to_owned(), live)].into_iter().collect(), ..Default::default() });
        use TaskResult as R;
        let total = |r| metrics.total("incoming", r);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while total(R::Error) == 0 {
            assert!(std::time::Instant::now() < deadline, "the first run did not reach the failing Default task");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let counts = [R::Ok, R::SkippedOnError, R::DeletedOnError, R::Error].map(total);
        assert_eq!(counts, [3, 1, 1, 1], "three applied, one skipped, one deleted, then the queue stopped");
        let left: Vec<(i64, Option<String>)> = conn
            .prepare(
                "SELECT t.TaskID, t.TaskProcessType FROM Integration_Task t JOIN Integration_Synchronization s \
                 ON s.SynchronizationTaskID = t.TaskID ORDER BY t.TaskID",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            left,
            [
                (tasks[1], Some("SkipOnError".to_owned())),
                (tasks[5], Some("Error".to_owned())),
                (tasks[6], Some("Default".to_owned())),
            ],
            "applied tasks are gone, the deleted one too; the failed Default task is marked Error"
        );
        let users: Vec<String> = conn
            .prepare("SELECT ObjectCodeName FROM CMS_Object WHERE ObjectType = 'cms.user' ORDER BY ObjectID")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(users, ["one", "three", "five"], "each applied task made its user, in order");
        // A synchronize retries what was passed over and the task marked
        // Error, in order, and stops at it again.
        let outcomes: Vec<(i64, TaskResult)> = incoming
            .synchronize("In", Selection::All)
            .unwrap()
            .into_iter()
            .map(|TaskOutcome { task_id, result, .. }| (task_id, result))
            .collect();
        assert_eq!(outcomes, [(tasks[1], R::SkippedOnError), (tasks[5], R::Error)]);
        incoming.stop_all();
    }
}
