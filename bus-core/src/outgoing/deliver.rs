//! The outgoing drain: hands each queued task to the connector, oldest first,
//! and handles each result as the specification says (OK: delete; Error:
//! sync log, stop the queue, retry later; ErrorAndSkip: sync log, mark the
//! task skipped, go on; SkipNow: leave it for the next run).

use super::call::{decide, pause, Delivering, Step};
use crate::backend::{CallWindow, QueueError};
use crate::delivery::Ordering;
use crate::queue::{Direction, Queued};
use crate::settings::Settings;
use crate::worker::{Drain, Run, RunEnd, RunKind};
use std::borrow::Cow;

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
        let key = run.key(Direction::Outgoing);
        let mut state = Delivering::new(key);
        match run.connector.delivery.ordering {
            Ordering::Connector => in_queue_order(run, &mut state),
            Ordering::Object => {
                state.quick = false;
                super::parallel::per_object(run, &mut state)
            }
        }
    }
}

/// The specification's order: one call at a time, oldest first; an `Error`
/// stops the queue.
fn in_queue_order(run: &mut Run<'_>, state: &mut Delivering) -> Result<RunEnd, QueueError> {
    let key = state.key;
    let group_size = run.connector.delivery_batch();
    let mut batches = run.batches(Direction::Outgoing, run.kind == RunKind::Manual);
    loop {
        let batch = batches.next(run.queue)?;
        if batch.is_empty() {
            run.connector.set_batch_failed(false);
            return Ok(RunEnd::Drained);
        }
        // Tasks decided and waiting to go out together (one request to a
        // connector process that takes batches; one task otherwise).
        let mut group: Vec<Cow<'_, Queued>> = Vec::with_capacity(group_size);
        for q in &batch {
            // The rate limit counts calls: a slot for the first task of
            // each request.
            state.window = if group.is_empty() { wait_for_rate(run) } else { run.call_window(Direction::Outgoing) };
            if state.window == CallWindow::Closed {
                run.queue.call_ended();
                state.delivered.remove(run.queue, key)?;
                return Ok(RunEnd::Interrupted);
            }
            match decide(run.connector, q) {
                Ok(Some(q)) => group.push(q),
                // No custom subscription matched: removed without a call
                // (with the batch's removals; a crash before asks again).
                Ok(None) => {
                    run.recorder.passed(q.task_id);
                    state.delivered.kept.push(q.sync_id);
                }
                // Unreadable task data: the delivery itself reports it.
                Err(e) => {
                    tracing::warn!(connector = %run.connector.name, task = q.task_id, error = %e, "cannot ask the custom subscriptions");
                    group.push(Cow::Borrowed(q));
                }
            }
            if group.len() >= group_size && state.send(run, &std::mem::take(&mut group))? == Step::Stop {
                run.queue.call_ended();
                return Ok(RunEnd::Stopped);
            }
        }
        if !group.is_empty() && state.send(run, &group)? == Step::Stop {
            run.queue.call_ended();
            return Ok(RunEnd::Stopped);
        }
        run.queue.call_ended();
        state.delivered.remove(run.queue, key)?;
    }
}

/// Waits until the connector's rate limit lets the next call start, then
/// says whether it may (a reinitialization or a lost lease during the wait
/// closes the window).
fn wait_for_rate(run: &Run<'_>) -> CallWindow {
    if let Some(limit) = &run.connector.rate {
        while let Some(wait) = limit.take() {
            if !pause(run, wait) {
                return CallWindow::Closed;
            }
        }
    }
    run.call_window(Direction::Outgoing)
}
