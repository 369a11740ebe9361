//! Group commit of deliveries (SQLite backend only). Each worker records a delivered task
//! (`queue::record_delivered`) before it hands the connector the next one
//! (so a crash repeats at most the task in flight), but the workers of
//! different connectors share the commit: whoever arrives while no commit
//! runs becomes the leader and records everything pending — its own
//! deliveries and those of every worker waiting — in one transaction; the
//! others wait until that transaction committed. A leader first waits (at
//! most [`GATHER`]) for the workers on their way to a quick connector call —
//! counted from the moment their previous round committed, so a worker not
//! yet scheduled again still counts; a worker whose last call was slow is
//! never waited for. Workers delivering the same task to different
//! connectors then share one commit (end-to-end with three connectors:
//! 4,500 tasks/s with a commit per delivery, 13,000 with shared commits and
//! recorded deliveries; BENCHMARKS.md).

use crate::db::WriteGate;
use crate::queue;
use crate::state_store::Writes;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a leader waits for workers in a connector call to join its
/// round. A worker whose last call took longer is not waited for.
pub(crate) const GATHER: Duration = Duration::from_micros(200);

/// How many failed rounds are remembered for their waiters.
const FAILED_KEPT: usize = 64;

#[derive(Default)]
struct State {
    /// Relations waiting for the next round.
    pending: Vec<i64>,
    /// The connectors' state writes made with them, by connector ID.
    pending_state: Vec<(i64, Writes)>,
    /// A round is being committed.
    leading: bool,
    /// The round the pending relations will be committed in.
    next_round: u64,
    /// Every round below this one has ended.
    ended: u64,
    /// Rounds whose transaction failed (their waiters retry on their own).
    failed: VecDeque<u64>,
    /// Workers in (or on their way to) a quick connector call.
    delivering: usize,
    /// Workers in the pending relations that go on to another quick call:
    /// counted as delivering as soon as their round ends.
    continuing: usize,
    /// A leader waits for them to join its round.
    gathering: bool,
}

/// Shared by the outgoing workers of one database.
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    cv: Condvar,
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a connector call in progress until the guard drops: a leader
    /// waits (at most [`GATHER`]) for it to join its round — if `quick`, the
    /// call is expected to be short (the worker's last one was).
    pub(crate) fn delivering(self: &Arc<Self>, quick: bool) -> Delivering {
        if quick {
            self.lock().delivering += 1;
        }
        Delivering { group: self.clone(), active: quick }
    }

    /// Records the relations `sync_ids` as delivered and returns once that
    /// is committed, possibly together with other workers' deliveries,
    /// through the `gate`'s connection. `call`, the call that
    /// delivered them, ends as they join the round; the guard returned is
    /// the worker's next call, counted from the moment the round commits
    /// when `next_quick` (so the next leader waits for a worker that has not
    /// been scheduled yet).
    /// `state`: the connector's state writes made in that call, committed
    /// in the same transaction.
    pub(crate) fn record_delivered(
        self: &Arc<Self>,
        gate: &WriteGate,
        sync_ids: &[i64],
        state: (i64, &[(String, Option<String>)]),
        mut call: Delivering,
        next_quick: bool,
    ) -> crate::sql::Result<Delivering> {
        let mut st = self.lock();
        if call.active {
            call.active = false;
            st.delivering -= 1;
            if st.gathering && st.delivering == 0 {
                self.cv.notify_all();
            }
        }
        st.pending.extend_from_slice(sync_ids);
        if !state.1.is_empty() {
            st.pending_state.push((state.0, state.1.to_vec()));
        }
        if next_quick {
            st.continuing += 1;
        }
        let next = Delivering { group: self.clone(), active: next_quick };
        let mine = st.next_round;
        loop {
            if st.ended > mine {
                if st.failed.contains(&mine) {
                    // The shared transaction failed: try ours alone, so the
                    // error this worker reports is its own.
                    drop(st);
                    let own = [(state.0, state.1.to_vec())];
                    let own: &[(i64, Writes)] = if state.1.is_empty() { &[] } else { &own };
                    return queue::record_delivered(&mut gate.enter(), sync_ids, own).map(|()| next);
                }
                return Ok(next);
            }
            if st.leading {
                st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.leading = true;
            if st.delivering > 0 {
                st.gathering = true;
                let deadline = Instant::now() + GATHER;
                while st.delivering > 0 {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
                    st = self.cv.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
                }
                st.gathering = false;
            }
            let round = st.next_round;
            st.next_round += 1;
            let batch = std::mem::take(&mut st.pending);
            let batch_state = std::mem::take(&mut st.pending_state);
            let continuing = std::mem::take(&mut st.continuing);
            drop(st);
            let result = queue::record_delivered(&mut gate.enter(), &batch, &batch_state);
            st = self.lock();
            st.leading = false;
            st.ended = round + 1;
            st.delivering += continuing;
            if result.is_err() {
                st.failed.push_back(round);
                if st.failed.len() > FAILED_KEPT {
                    st.failed.pop_front();
                }
            }
            self.cv.notify_all();
            // A round this worker leads always carries its relations (an
            // earlier leader would have taken them and ended that round).
            debug_assert_eq!(round, mine);
            return result.map(|()| next);
        }
    }
}

/// A connector call in progress (see [`GroupCommit::delivering`]).
pub(crate) struct Delivering {
    group: Arc<GroupCommit>,
    /// Still counted (not handed to [`GroupCommit::record_delivered`]).
    active: bool,
}

impl Drop for Delivering {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let mut st = self.group.lock();
        st.delivering -= 1;
        if st.gathering && st.delivering == 0 {
            self.group.cv.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;
    use crate::sql::Conn;
    use std::sync::Arc;

    fn count(conn: &Conn, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn concurrent_workers_record_every_delivery_before_going_on() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Database::open(&dir.path().join("bus.db")).unwrap();
        let conn = db.connect().unwrap();
        conn.execute_batch(
            "INSERT INTO Integration_Connector (ConnectorName, ConnectorDisplayName, ConnectorAssemblyName, ConnectorClassName)
             VALUES ('A', 'A', 'a', 'A'), ('B', 'B', 'b', 'B'), ('C', 'C', 'c', 'C');",
        )
        .unwrap();
        let ids: Vec<i64> = conn
            .prepare("SELECT ConnectorID FROM Integration_Connector WHERE ConnectorName IN ('A','B','C')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for task in 1..=200 {
            conn.execute(
                "INSERT INTO Integration_Task (TaskIsInbound, TaskType, TaskDataType, TaskTitle, TaskData)
                 VALUES (0, 'CreateObject', 'SimpleSnapshot', 't', '{}')",
                [],
            )
            .unwrap();
            for c in &ids {
                conn.execute(
                    "INSERT INTO Integration_Synchronization (SynchronizationTaskID, SynchronizationConnectorID,
                     SynchronizationIsInbound, SynchronizationDataType) VALUES ($1, $2, 0, 'SimpleSnapshot')",
                    [task, *c],
                )
                .unwrap();
            }
        }
        let group = Arc::new(GroupCommit::default());
        let threads: Vec<_> = ids
            .iter()
            .map(|&connector| {
                let (db, group) = (db.clone(), group.clone());
                std::thread::spawn(move || {
                    let conn = db.connect().unwrap();
                    let mine: Vec<i64> = conn
                        .prepare("SELECT SynchronizationID FROM Integration_Synchronization WHERE SynchronizationConnectorID = $1 ORDER BY 1")
                        .unwrap()
                        .query_map([connector], |r| r.get(0))
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    for id in mine {
                        let call = group.delivering(true);
                        drop(group.record_delivered(db.gate(), &[id], (0, &[]), call, true).unwrap());
                        // Committed when the call returns: visible to a new reader.
                        let recorded: i64 = db
                            .connect()
                            .unwrap()
                            .query_row(
                                "SELECT count(*) FROM Integration_Delivered WHERE DeliveredSynchronizationID = $1",
                                [id],
                                |r| r.get(0),
                            )
                            .unwrap();
                        assert_eq!(recorded, 1, "relation {id} not recorded as delivered when the call returned");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(count(&conn, "Integration_Delivered"), 600);
        queue::remove_delivered(&mut db.connect().unwrap()).unwrap();
        assert_eq!(count(&conn, "Integration_Synchronization"), 0);
        assert_eq!(count(&conn, "Integration_Delivered"), 0);
        assert_eq!(count(&conn, "Integration_Task"), 0, "every task went with its last relation");
    }
}
