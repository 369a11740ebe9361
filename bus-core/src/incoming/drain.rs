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
                if !run.is_current() {
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
        let (task_type, data_type) = (q.task_type, q.task_data_type);
        let sync_id = q.sync_id;
        let site = q.site_name.clone();
        self.pipeline
            .transact(Some(&connector.name), move |tx, types| {
                let applied = apply::apply(tx, types, payload, task_type, data_type, site.as_deref())
                    .map_err(ChangeError::Single)?;
                tx.execute("DELETE FROM Integration_Synchronization WHERE SynchronizationID = ?1", [sync_id])?;
                Ok(applied)
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
