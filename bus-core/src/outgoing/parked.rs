//! Which task a parked task waits for, as the queue listings show it
//! (`waiting_for`): in `object` ordering a task behind a failed one —
//! sharing a key with it, directly or through the tasks between them —
//! is not delivered until the failed task is; the listing names the failed
//! task at the head of its chain.

use super::keys::{Held, Keys};
use crate::queue::{self, Direction};
use crate::sql::{params, Conn};
use std::collections::{BTreeMap, HashMap};

/// The most queued tasks read to work out one connector's chains.
const MAX_SCAN: usize = 100_000;

/// Of the listed outgoing rows — `(connector name, task ID)` —, those of
/// connectors in `object` ordering that wait behind a failed task, with the
/// failed task's ID.
pub(crate) fn waiting_for(
    conn: &Conn,
    direction: Direction,
    rows: &[(&str, i64)],
) -> crate::sql::Result<HashMap<(String, i64), i64>> {
    if direction != Direction::Outgoing || rows.is_empty() {
        return Ok(HashMap::new());
    }
    // Per connector in `object` ordering: the newest listed task.
    let object_ordered: HashMap<String, i64> = conn
        .prepare_cached(
            "SELECT ConnectorName, ConnectorID FROM Integration_Connector WHERE trim(ConnectorOrdering) = 'object'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut newest: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (connector, task_id) in rows {
        if let Some(id) = object_ordered.get(*connector) {
            let n = newest.entry(connector).or_insert((*id, *task_id));
            n.1 = n.1.max(*task_id);
        }
    }
    let mut waiting = HashMap::new();
    for (connector, (connector_id, until)) in newest {
        for (task_id, by) in chains(conn, connector_id, until)? {
            waiting.insert((connector.to_owned(), task_id), by);
        }
    }
    Ok(waiting)
}

/// The tasks up to `until` waiting behind a failed one, with the failed
/// task each waits for.
fn chains(conn: &Conn, connector_id: i64, until: i64) -> crate::sql::Result<Vec<(i64, i64)>> {
    let not_delivered = crate::driver::of(conn).not_delivered();
    let first: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT min(s.SynchronizationTaskID) FROM Integration_Synchronization s \
             WHERE s.SynchronizationConnectorID = $1 AND s.SynchronizationIsInbound = 0 \
             AND s.SynchronizationErrorMessage IS NOT NULL AND s.SynchronizationIsSkipped = 0 AND {not_delivered}"
        ))?
        .query_row(params![connector_id], |r| r.get(0))?;
    let Some(first) = first.filter(|f| *f < until) else { return Ok(Vec::new()) };
    let mut parked = Held::default();
    let mut out = Vec::new();
    let (mut after, mut read) = (first - 1, 0);
    while read < MAX_SCAN {
        let batch = queue::next_batch(conn, connector_id, Direction::Outgoing, after, 1000, false)?;
        let Some(last) = batch.last().map(|q| q.task_id) else { break };
        read += batch.len();
        for q in batch.iter().filter(|q| q.task_id <= until) {
            let keys = Keys::of(q);
            // In queue order: a task's place is its ID.
            let place = u64::try_from(q.task_id).unwrap_or(0);
            match parked.blocker(&keys, place) {
                Some(by) => {
                    out.push((q.task_id, by));
                    parked.add(&keys, by, place);
                }
                None if q.failed => parked.add(&keys, q.task_id, place),
                None => {}
            }
        }
        if last >= until {
            break;
        }
        after = last;
    }
    Ok(out)
}
