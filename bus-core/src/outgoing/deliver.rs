//! The outgoing drain: hands each queued task to the connector, oldest first,
//! and handles each result as the specification says (OK: delete; Error:
//! sync log, stop the queue, retry later; ErrorAndSkip: sync log, mark the
//! task skipped, go on; SkipNow: leave it for the next run).

use super::group_commit::{GroupCommit, GATHER};
use super::payload;
use crate::connector::LiveConnector;
use crate::db::WriteGate;
use crate::queue::{self, Direction, Queued, Selection};
use crate::settings::Settings;
use crate::worker::{Batches, Drain, Recorder, RunEnd, WorkerConfig};
use connector_abi::protocol::{kind, ProcessResponse};
use connector_abi::IntegrationProcessResult;
use rusqlite::Connection;
use std::time::{Duration, Instant};

/// Drains outgoing queues.
#[derive(Default)]
pub struct OutgoingDrain {
    /// Deliveries are recorded in commits shared by the workers.
    completions: GroupCommit,
}

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

    fn process(
        &self,
        conn: &mut Connection,
        gate: &WriteGate,
        connector: &LiveConnector,
        selection: &Selection,
        manual: bool,
        handed: Vec<Queued>,
        config: &WorkerConfig,
        recorder: &mut Recorder<'_>,
    ) -> Result<RunEnd, rusqlite::Error> {
        // Delivered, not yet removed: recorded one by one (delete_batch = 1),
        // or only kept here until `delete_batch` of them are removed at once.
        let mut delivered = Delivered { recorded: None, kept: Vec::new() };
        let mut batches = Batches::new(selection, connector.id, false, manual, config.batch_size).starting_with(handed);
        // Whether this worker's calls are short enough for a group commit
        // leader to wait for.
        let mut quick = true;
        loop {
            let batch = batches.next(conn)?;
            if batch.is_empty() {
                return Ok(RunEnd::Drained);
            }
            let mut next_call = None;
            for q in &batch {
                let started = Instant::now();
                let call = next_call.take().unwrap_or_else(|| self.completions.delivering(quick));
                let response = deliver(connector, q);
                let elapsed = started.elapsed();
                quick = elapsed < GATHER;
                recorder.record(q.task_id, response.result.into(), response.error_message.clone(), elapsed);
                match response.result {
                    IntegrationProcessResult::Ok if config.delete_batch == 1 => {
                        next_call = Some(self.completions.record_delivered(gate, &[q.sync_id], call, quick)?);
                        let since = *delivered.recorded.get_or_insert_with(Instant::now);
                        if since.elapsed() >= LISTED_AT_MOST {
                            delivered.remove(gate)?;
                        }
                    }
                    IntegrationProcessResult::Ok => {
                        delivered.kept.push(q.sync_id);
                        if delivered.kept.len() >= config.delete_batch {
                            delivered.remove(gate)?;
                        }
                    }
                    IntegrationProcessResult::SkipNow => queue::mark_run(&gate.enter(), q.sync_id)?,
                    IntegrationProcessResult::ErrorAndSkip | IntegrationProcessResult::Error => {
                        delivered.remove(gate)?;
                        let message = response
                            .error_message
                            .unwrap_or_else(|| format!("the connector returned {} without a message", response.result));
                        let skip = response.result == IntegrationProcessResult::ErrorAndSkip;
                        queue::record_failure(&mut gate.enter(), q.sync_id, &message, skip)?;
                        tracing::warn!(connector = %connector.name, task = q.task_id, result = %response.result, error = %message, "outgoing task failed");
                        if !skip {
                            return Ok(RunEnd::Stopped);
                        }
                    }
                }
            }
            drop(next_call);
            delivered.remove(gate)?;
        }
    }
}

/// Recorded deliveries are removed at the end of their batch, or once the
/// oldest is this old (they are invisible already; this keeps the table of
/// recorded deliveries, which every queue read consults, small).
const LISTED_AT_MOST: Duration = Duration::from_millis(100);

/// What a run delivered and has not removed yet.
struct Delivered {
    /// Since when deliveries are recorded in `Integration_Delivered`.
    recorded: Option<Instant>,
    /// Delivered relations not recorded anywhere yet (`delete_batch` > 1).
    kept: Vec<i64>,
}

impl Delivered {
    /// Removes the delivered relations (and tasks left with none) in one
    /// transaction.
    fn remove(&mut self, gate: &WriteGate) -> rusqlite::Result<()> {
        if self.recorded.is_some() {
            queue::remove_delivered(&mut gate.enter())?;
            self.recorded = None;
        }
        if !self.kept.is_empty() {
            queue::complete(&mut gate.enter(), &self.kept)?;
            self.kept.clear();
        }
        Ok(())
    }
}

/// Hands one task to the connector; a call that fails counts as `Error`.
fn deliver(connector: &LiveConnector, q: &Queued) -> ProcessResponse {
    let request = match payload::async_request(q) {
        Ok(r) => r,
        Err(e) => return ProcessResponse::error(e),
    };
    connector
        .request_raw::<ProcessResponse>(kind::PROCESS_ASYNC, &request)
        .unwrap_or_else(|e| ProcessResponse::error(e.to_string()))
}
