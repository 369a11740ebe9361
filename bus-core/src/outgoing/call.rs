//! One delivery call and what is recorded of it, shared by both orderings
//! (`deliver.rs`: one call at a time; `parallel.rs`: several at once):
//! handing tasks to the connector (one request each, or one batch request),
//! whether the call got an answer at all, the custom subscriptions asked
//! right before, the result table applied to what came back, and the
//! removal of delivered relations.

use super::answer;
use super::payload::{self, Payload};
use super::subscribers;
use crate::backend::{CallWindow, QueueError, QueueKey, QueueSession, GATHER};
use crate::connector::LiveConnector;
use crate::queue::{Direction, Matching, Queued};
use crate::start_by;
use crate::state_store;
use crate::worker::Run;
use connector_abi::protocol::{kind, BatchResponse, ProcessResponse};
use connector_abi::{IntegrationProcessResult, TaskProcessType};
use std::borrow::Cow;
use std::time::{Duration, Instant};

/// Waits `wait` (in steps, so a reinitialization or a lost lease is seen);
/// false when the run is no longer current.
pub(super) fn pause(run: &Run<'_>, wait: Duration) -> bool {
    /// How often a long wait looks whether the run is still current.
    const LOOK: Duration = Duration::from_millis(50);
    let until = Instant::now() + wait;
    loop {
        if !run.is_current(Direction::Outgoing) {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(LOOK));
    }
}

/// Whether the queue goes on after a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Next,
    /// An `Error` stopped the queue.
    Stop,
}

/// One run's deliveries in progress.
pub(super) struct Delivering {
    pub(super) delivered: Delivered,
    /// Whether this worker's calls are short enough for a shared commit to
    /// wait for.
    pub(super) quick: bool,
    pub(super) key: QueueKey,
    /// The call window found at the last check: its deadline and fencing
    /// token go with the next call.
    pub(super) window: CallWindow,
}

impl Delivering {
    pub(super) fn new(key: QueueKey) -> Delivering {
        Delivering {
            delivered: Delivered { recorded: None, kept: Vec::new() },
            quick: true,
            key,
            window: CallWindow::Closed,
        }
    }

    /// Delivers `group` (one request) and records each result in order.
    pub(super) fn send(&mut self, run: &mut Run<'_>, group: &[Cow<'_, Queued>]) -> Result<Step, QueueError> {
        let tasks: Vec<&Queued> = group.iter().map(AsRef::as_ref).collect();
        let started = Instant::now();
        run.queue.call_begins(self.quick);
        let CallWindow::Open { until, token } = self.window else {
            return Err(QueueError::Fenced { connector_id: self.key.connector_id, direction: self.key.direction });
        };
        // The connector's state writes during the call go with its deliveries.
        let scope = state_store::Pending::new();
        let (responses, _) = state_store::within(Some(scope.clone()), || {
            start_by::within(until, || deliver_all(run.connector, &tasks, token))
        });
        let elapsed = started.elapsed();
        self.quick = elapsed < GATHER;
        self.record(run, &tasks, responses, elapsed, scope.take())
    }

    /// Records the results of one call, in order: what was delivered, the
    /// failures; `Stop` after an `Error` (the tasks after it got no result).
    /// `writes`, the connector's state writes during the call, are
    /// committed with its deliveries, and dropped when it delivered none.
    pub(super) fn record(
        &mut self,
        run: &mut Run<'_>,
        tasks: &[&Queued],
        responses: Vec<ProcessResponse>,
        elapsed: Duration,
        writes: state_store::Writes,
    ) -> Result<Step, QueueError> {
        let each = elapsed / tasks.len().max(1) as u32;
        let mut ok = Vec::new();
        let mut step = Step::Next;
        for (q, response) in tasks.iter().zip(responses) {
            run.recorder.record(q.task_id, response.result.into(), response.error_message.clone(), each);
            match response.result {
                IntegrationProcessResult::Ok => ok.push(q.sync_id),
                IntegrationProcessResult::SkipNow => run.queue.mark_run(self.key, q.sync_id)?,
                IntegrationProcessResult::ErrorAndSkip | IntegrationProcessResult::Error => {
                    let message = response
                        .error_message
                        .unwrap_or_else(|| format!("the connector returned {} without a message", response.result));
                    let skip = response.result == IntegrationProcessResult::ErrorAndSkip;
                    run.queue.record_failure(self.key, q.sync_id, &message, skip)?;
                    tracing::warn!(connector = %run.connector.name, task = q.task_id, result = %response.result, error = %message, "outgoing task failed");
                    if !skip {
                        step = Step::Stop;
                        break;
                    }
                }
            }
        }
        if ok.is_empty() {
            run.queue.call_ended();
        } else if run.config.delete_batch == 1 || !writes.is_empty() {
            // State writes are committed with a delivery record, whatever
            // the removal batch.
            run.queue.delivered(self.key, &ok, &writes, self.quick)?;
            let since = *self.delivered.recorded.get_or_insert_with(Instant::now);
            if since.elapsed() >= LISTED_AT_MOST {
                self.delivered.remove(run.queue, self.key)?;
            }
        } else {
            run.queue.call_ended();
            self.delivered.kept.extend(ok);
            if self.delivered.kept.len() >= run.config.delete_batch {
                self.delivered.remove(run.queue, self.key)?;
            }
        }
        if step == Step::Stop {
            self.delivered.remove(run.queue, self.key)?;
        }
        Ok(step)
    }
}

/// Deliveries made durable are removed at the end of their batch, or once
/// the oldest is this old (they are invisible already; this keeps the
/// record of deliveries, which every queue read consults, small).
const LISTED_AT_MOST: Duration = Duration::from_millis(100);

/// What a run delivered and has not removed yet.
pub(super) struct Delivered {
    /// Since when deliveries are recorded apart (not removed yet).
    recorded: Option<Instant>,
    /// Delivered relations not recorded anywhere yet (`delete_batch` > 1).
    pub(super) kept: Vec<i64>,
}

impl Delivered {
    /// Removes the delivered relations (and tasks left with none).
    pub(super) fn remove(&mut self, queue: &mut dyn QueueSession, key: QueueKey) -> Result<(), QueueError> {
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

/// Whether a call got an answer from the connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// The connector answered (its results may be errors).
    Given,
    /// No answer at all: the process crashed, was killed or is down, or
    /// the call timed out (see [`crate::connector::CallError::lost`]).
    Lost,
}

/// Hands tasks to the connector — one request each, or one request for all
/// of them when it takes batches — and returns a result per task, in order:
/// a call that fails counts as `Error` for the task it was about; the tasks
/// after an `Error` are not attempted and get no result.
pub(super) fn deliver_all(
    connector: &LiveConnector,
    tasks: &[&Queued],
    token: Option<i64>,
) -> (Vec<ProcessResponse>, Answer) {
    if let [one] = tasks {
        let (response, answer) = deliver(connector, one, token);
        return (vec![response], answer);
    }
    if tasks.iter().any(|q| q.unreadable.is_some()) {
        return deliver_one_by_one(connector, tasks, token);
    }
    let request = match payload::batch_request(tasks, token) {
        Ok(r) => r,
        // One task cannot be spliced: each goes on its own, so the error is its own.
        Err(_) => return deliver_one_by_one(connector, tasks, token),
    };
    let count = u32::try_from(tasks.len()).unwrap_or(u32::MAX);
    let results = match connector.request_batch::<BatchResponse>(&request, count) {
        Ok(batch) => {
            let mut results = batch.results;
            let answered_all = results.len() >= tasks.len();
            let stopped = results.last().is_some_and(|r| r.result == IntegrationProcessResult::Error);
            results.truncate(tasks.len());
            let mut results: Vec<ProcessResponse> = results.into_iter().map(|r| answer::bounded(Ok(r))).collect();
            if !answered_all && !stopped {
                let message = format!(
                    "the connector answered {} of {} tasks of a batch without an Error before the rest",
                    results.len(),
                    tasks.len()
                );
                results.push(ProcessResponse::error(message));
            }
            results
        }
        // The call failed as a whole (a crash, a timeout): the first task
        // carries the error; the others were not confirmed and stay queued,
        // and go one by one from now on until the queue drains.
        Err(e) => {
            connector.set_batch_failed(true);
            let lost = if e.lost() { Answer::Lost } else { Answer::Given };
            return (vec![answer::bounded(Err(e))], lost);
        }
    };
    (results, Answer::Given)
}

fn deliver_one_by_one(
    connector: &LiveConnector,
    tasks: &[&Queued],
    token: Option<i64>,
) -> (Vec<ProcessResponse>, Answer) {
    let mut out = Vec::with_capacity(tasks.len());
    // Each task's state writes are its own: only a task delivered `Ok`
    // passes them on to the call's, which go with the deliveries.
    let call = state_store::current();
    for q in tasks {
        let own = call.as_ref().map_or_else(state_store::Pending::new, state_store::Pending::child);
        let (response, answer) = state_store::within(Some(own.clone()), || deliver(connector, q, token));
        if let (Some(call), IntegrationProcessResult::Ok) = (&call, response.result) {
            call.absorb(own.take());
        }
        let stop = response.result == IntegrationProcessResult::Error;
        out.push(response);
        if answer == Answer::Lost {
            return (out, answer);
        }
        if stop {
            break;
        }
    }
    (out, Answer::Given)
}

/// Hands one task to the connector; a call that fails counts as `Error`.
fn deliver(connector: &LiveConnector, q: &Queued, token: Option<i64>) -> (ProcessResponse, Answer) {
    if let Some(problem) = &q.unreadable {
        return (ProcessResponse::error(problem.clone()), Answer::Given);
    }
    let request = match payload::async_request(q, token) {
        Ok(r) => r,
        Err(e) => return (ProcessResponse::error(e), Answer::Given),
    };
    match connector.request_raw::<ProcessResponse>(kind::PROCESS_ASYNC, &request) {
        Ok(r) => (answer::bounded(Ok(r)), Answer::Given),
        Err(e) => {
            let lost = if e.lost() { Answer::Lost } else { Answer::Given };
            (answer::bounded(Err(e)), lost)
        }
    }
}

/// A relation that still has to ask the connector's custom subscriptions
/// (see `outgoing::subscribers`), decided here, on the connector's own
/// worker, right before delivery: `None` when nothing matches, else the task
/// with the data type of the winning process type.
pub(super) fn decide<'q>(connector: &LiveConnector, q: &'q Queued) -> Result<Option<Cow<'q, Queued>>, String> {
    if let Some(problem) = &q.unreadable {
        return Err(problem.clone());
    }
    let decided = match q.matching {
        Matching::Decided => return Ok(Some(Cow::Borrowed(q))),
        Matching::Ask => None,
        Matching::AskOrKeep => Some(payload::async_process_type(q.data_type)),
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
