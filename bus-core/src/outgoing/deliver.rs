//! The outgoing drain: hands each queued task to the connector, oldest first,
//! and handles each result as the specification says (OK: delete; Error:
//! sync log, stop the queue, retry later; ErrorAndSkip: sync log, mark the
//! task skipped, go on; SkipNow: leave it for the next run).

use super::payload::{self, Payload};
use super::subscribers;
use crate::backend::{QueueError, QueueKey, QueueSession, GATHER};
use crate::connector::LiveConnector;
use crate::queue::{Direction, Matching, Queued};
use crate::settings::Settings;
use crate::worker::{Drain, Run, RunEnd, RunKind};
use connector_abi::protocol::{kind, ProcessResponse};
use connector_abi::{IntegrationProcessResult, TaskDataType, TaskProcessType};
use std::borrow::Cow;
use std::time::{Duration, Instant};

/// Drains outgoing queues.
#[derive(Default)]
pub(crate) struct OutgoingDrain;

impl Drain for OutgoingDrain {
    fn direction(&self) -> Direction {
        Direction::Outgoing
    }

    fn enabled(&self, settings: &Settings) -> bool {
        settings.processes_outgoing()
    }

    fn automatic(&self) -> bool {
        true
    }

    fn process(&self, run: &mut Run<'_>) -> Result<RunEnd, QueueError> {
        let (connector, config) = (run.connector, run.config);
        let key = run.key(Direction::Outgoing);
        // Delivered, not yet removed: made durable one by one (delete_batch
        // = 1), or only kept here until `delete_batch` of them are removed
        // at once.
        let mut delivered = Delivered { recorded: None, kept: Vec::new() };
        let mut batches = run.batches(Direction::Outgoing, run.kind == RunKind::Manual);
        // Whether this worker's calls are short enough for a shared commit
        // to wait for.
        let mut quick = true;
        loop {
            let batch = batches.next(run.queue)?;
            if batch.is_empty() {
                return Ok(RunEnd::Drained);
            }
            for q in &batch {
                if !run.is_current() {
                    run.queue.call_ended();
                    delivered.remove(run.queue, key)?;
                    return Ok(RunEnd::Interrupted);
                }
                let q = match decide(connector, q) {
                    Ok(Some(q)) => q,
                    // No custom subscription matched: removed without a call
                    // (with the batch's removals; a crash before asks again).
                    Ok(None) => {
                        run.recorder.passed(q.task_id);
                        delivered.kept.push(q.sync_id);
                        continue;
                    }
                    // Unreadable task data: the delivery itself reports it.
                    Err(e) => {
                        tracing::warn!(connector = %connector.name, task = q.task_id, error = %e, "cannot ask the custom subscriptions");
                        Cow::Borrowed(q)
                    }
                };
                let q = q.as_ref();
                let started = Instant::now();
                run.queue.call_begins(quick);
                let response = deliver(connector, q);
                let elapsed = started.elapsed();
                quick = elapsed < GATHER;
                run.recorder.record(q.task_id, response.result.into(), response.error_message.clone(), elapsed);
                match response.result {
                    IntegrationProcessResult::Ok if config.delete_batch == 1 => {
                        run.queue.delivered(key, &[q.sync_id], quick)?;
                        let since = *delivered.recorded.get_or_insert_with(Instant::now);
                        if since.elapsed() >= LISTED_AT_MOST {
                            delivered.remove(run.queue, key)?;
                        }
                    }
                    IntegrationProcessResult::Ok => {
                        run.queue.call_ended();
                        delivered.kept.push(q.sync_id);
                        if delivered.kept.len() >= config.delete_batch {
                            delivered.remove(run.queue, key)?;
                        }
                    }
                    IntegrationProcessResult::SkipNow => {
                        run.queue.call_ended();
                        run.queue.mark_run(key, q.sync_id)?;
                    }
                    IntegrationProcessResult::ErrorAndSkip | IntegrationProcessResult::Error => {
                        run.queue.call_ended();
                        delivered.remove(run.queue, key)?;
                        let message = response
                            .error_message
                            .unwrap_or_else(|| format!("the connector returned {} without a message", response.result));
                        let skip = response.result == IntegrationProcessResult::ErrorAndSkip;
                        run.queue.record_failure(key, q.sync_id, &message, skip)?;
                        tracing::warn!(connector = %connector.name, task = q.task_id, result = %response.result, error = %message, "outgoing task failed");
                        if !skip {
                            return Ok(RunEnd::Stopped);
                        }
                    }
                }
            }
            run.queue.call_ended();
            delivered.remove(run.queue, key)?;
        }
    }
}

/// Deliveries made durable are removed at the end of their batch, or once
/// the oldest is this old (they are invisible already; this keeps the
/// record of deliveries, which every queue read consults, small).
const LISTED_AT_MOST: Duration = Duration::from_millis(100);

/// What a run delivered and has not removed yet.
struct Delivered {
    /// Since when deliveries are recorded apart (not removed yet).
    recorded: Option<Instant>,
    /// Delivered relations not recorded anywhere yet (`delete_batch` > 1).
    kept: Vec<i64>,
}

impl Delivered {
    /// Removes the delivered relations (and tasks left with none).
    fn remove(&mut self, queue: &mut dyn QueueSession, key: QueueKey) -> Result<(), QueueError> {
        if self.recorded.take().is_some() {
            queue.remove_recorded()?;
        }
        if !self.kept.is_empty() {
            queue.complete(key, &self.kept)?;
            self.kept.clear();
        }
        Ok(())
    }
}

/// Hands one task to the connector; a call that fails counts as `Error`.
fn deliver(connector: &LiveConnector, q: &Queued) -> ProcessResponse {
    if let Some(problem) = &q.unreadable {
        return ProcessResponse::error(problem.clone());
    }
    let request = match payload::async_request(q) {
        Ok(r) => r,
        Err(e) => return ProcessResponse::error(e),
    };
    connector
        .request_raw::<ProcessResponse>(kind::PROCESS_ASYNC, &request)
        .unwrap_or_else(|e| ProcessResponse::error(e.to_string()))
}

/// A relation that still has to ask the connector's custom subscriptions
/// (see `outgoing::subscribers`), decided here, on the connector's own
/// worker, right before delivery: `None` when nothing matches, else the task
/// with the data type of the winning process type.
fn decide<'q>(connector: &LiveConnector, q: &'q Queued) -> Result<Option<Cow<'q, Queued>>, String> {
    if let Some(problem) = &q.unreadable {
        return Err(problem.clone());
    }
    let decided = match q.matching {
        Matching::Decided => return Ok(Some(Cow::Borrowed(q))),
        Matching::Ask => None,
        Matching::AskOrKeep => Some(match q.data_type {
            TaskDataType::Simple => TaskProcessType::AsyncSimple,
            TaskDataType::SimpleSnapshot => TaskProcessType::AsyncSimpleSnapshot,
            TaskDataType::Snapshot => TaskProcessType::AsyncSnapshot,
        }),
    };
    let payload: Payload =
        serde_json::from_str(&q.data).map_err(|e| format!("the stored task data is unreadable: {e}"))?;
    let site = q.site_name.as_deref();
    let best = subscribers::ask(connector, &payload.object, q.task_type, site, false, decided, |request| {
        subscribers::is_match_here(connector, request)
    });
    Ok(best.map(|p| {
        // The change is committed: a synchronous answer is delivered as the
        // richest asynchronous mode.
        let p = if p.is_sync() { TaskProcessType::AsyncSnapshot } else { p };
        let data_type = payload::data_type_for(p, &payload.object);
        Cow::Owned(Queued { data_type, matching: Matching::Decided, ..q.clone() })
    }))
}
