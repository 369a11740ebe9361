//! One tick of a daemon's cluster membership, in SQL: heartbeat, renew,
//! hand over what is above this daemon's share, claim up to it, and read
//! where every other instance runs.

use super::remote::{self, RemoteSpec};
use super::{DaemonView, Holding, LeaseView};
use crate::db::{Database, DbError};
use crate::sql::{params, Conn, ToValue};
use std::collections::BTreeMap;
use std::time::Duration;

type Result<T, E = DbError> = std::result::Result<T, E>;

pub(super) struct Tick {
    pub holding: Holding,
    /// Connectors claimed while the previous owner's lease still ran, with
    /// how much of it was left.
    pub taken_early: Vec<(i64, Duration)>,
    pub remote: BTreeMap<i64, RemoteSpec>,
    pub leader: bool,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `IN (?, ?, …)` for `n` values starting at placeholder `first`.
fn marks(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

pub(super) fn tick(db: &Database, me: &str, lock_key: i64, address: Option<&str>, ttl: Duration) -> Result<Tick> {
    let mut conn = db.connect()?;
    let ttl_ms = millis(ttl);
    let tx = conn.transaction()?;
    // A tick that waits on a lock (a connector delete in progress, say)
    // gives up well before the leases could expire: the next tick tries
    // again, and a daemon that cannot renew in time steps down.
    tx.execute_batch(&format!(
        "SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}",
        (ttl_ms / 5).max(100),
        (ttl_ms / 2).max(200)
    ))?;
    tx.execute(
        "INSERT INTO Integration_Daemon (DaemonID, DaemonAddress, DaemonLockKey) VALUES ($1, $2, $3) \
         ON CONFLICT (DaemonID) DO UPDATE SET DaemonHeartbeat = clock_timestamp(), DaemonAddress = excluded.DaemonAddress",
        params![me, address, lock_key],
    )?;
    let (others, gone) = other_daemons(&tx, me, ttl_ms)?;
    // Every enabled connector has its two lease rows; a disabled one's are
    // let go (nothing runs it).
    tx.execute(
        "INSERT INTO Integration_Lease (LeaseConnectorID, LeaseIsInbound) \
         SELECT c.ConnectorID, d.Inbound FROM Integration_Connector c CROSS JOIN (VALUES (0), (1)) AS d (Inbound) \
         WHERE c.ConnectorEnabled = 1 ON CONFLICT DO NOTHING",
        [],
    )?;
    tx.execute(
        "UPDATE Integration_Lease SET LeaseOwner = NULL, LeaseExpires = NULL WHERE LeaseOwner = $1 \
         AND LeaseConnectorID IN (SELECT ConnectorID FROM Integration_Connector WHERE ConnectorEnabled <> 1)",
        [me],
    )?;
    let mut holding = Holding::default();
    for row in tx
        .prepare_cached(
            "UPDATE Integration_Lease SET LeaseExpires = clock_timestamp() + $1 * interval '1 millisecond' \
             WHERE LeaseOwner = $2 RETURNING LeaseConnectorID, LeaseIsInbound, LeaseEpoch",
        )?
        .query_map(params![ttl_ms, me], |r| Ok(((r.get::<i64>(0)?, r.get::<bool>(1)?), r.get::<i64>(2)?)))?
    {
        let (key, epoch) = row?;
        holding.epochs.insert(key, epoch);
    }
    let enabled: i64 =
        tx.query_row("SELECT COUNT(*) FROM Integration_Connector WHERE ConnectorEnabled = 1", [], |r| r.get(0))?;
    let held_by: BTreeMap<String, usize> = tx
        .prepare_cached(
            "SELECT LeaseOwner, COUNT(*) FROM Integration_Lease \
             WHERE LeaseOwner IS NOT NULL AND LeaseIsInbound = 0 GROUP BY LeaseOwner",
        )?
        .query_map([], |r| Ok((r.get::<String>(0)?, usize::try_from(r.get::<i64>(1)?).unwrap_or(0))))?
        .collect::<crate::sql::Result<_>>()?;
    let share = share(usize::try_from(enabled).unwrap_or(0), me, &others, &held_by);
    let held: Vec<i64> = holding.connectors().into_iter().collect();
    if held.len() > share {
        // Above this daemon's share (another one joined): hand the newest
        // registrations over; the rest stays where it runs.
        let extra = &held[share..];
        let mut values: Vec<&dyn ToValue> = vec![&me];
        values.extend(extra.iter().map(|id| id as &dyn ToValue));
        tx.prepare(&format!(
            "UPDATE Integration_Lease SET LeaseOwner = NULL, LeaseExpires = NULL \
             WHERE LeaseOwner = $1 AND LeaseConnectorID IN ({})",
            marks(2, extra.len())
        ))?
        .execute(values)?;
        holding.epochs.retain(|(id, _), _| !extra.contains(id));
    }
    let mut taken_early = Vec::new();
    if held.len() < share {
        taken_early = claim(&tx, me, ttl_ms, &gone, share - held.len(), &mut holding)?;
    }
    tx.commit()?;
    let remote = remote::declared(&conn)?;
    let leader: Option<String> = conn
        .query_row(
            "SELECT DaemonID FROM Integration_Daemon \
             WHERE DaemonHeartbeat > clock_timestamp() - $1 * interval '1 millisecond' \
             ORDER BY DaemonStarted, DaemonID LIMIT 1",
            [ttl_ms],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| if matches!(e, crate::sql::SqlError::NoRows) { Ok(None) } else { Err(e) })?;
    let leader = leader.as_deref() == Some(me);
    if leader {
        maintain(&conn, ttl_ms)?;
    }
    Ok(Tick { holding, taken_early, remote, leader })
}

/// Whether the session holding a daemon's liveness lock (`DaemonLockKey`,
/// as `pg_locks` shows a bigint advisory key: high half in `classid`, low
/// half in `objid`, `objsubid` 1) still lives. Read, never taken: a prober
/// taking the lock would make a gone daemon look alive to the others.
const SESSION_LIVES: &str = "EXISTS (SELECT 1 FROM pg_locks k WHERE k.locktype = 'advisory' AND k.granted \
     AND k.objsubid = 1 AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
     AND k.classid = ((DaemonLockKey >> 32) & 4294967295)::oid AND k.objid = (DaemonLockKey & 4294967295)::oid)";

/// This daemon's share of `enabled` connectors among the daemons alive
/// (`others` and itself): each gets the whole part, and the remainder goes
/// one each to the daemons holding the most now (then by ID), so a daemon
/// joining moves nothing that need not move — and with at least as many
/// connectors as daemons every daemon runs one (rounding every share up
/// left the last daemon idle: 4 connectors on 3 daemons went 2/2/0).
fn share(enabled: usize, me: &str, others: &[String], held_by: &BTreeMap<String, usize>) -> usize {
    let alive = others.len() + 1;
    let held = |id: &str| held_by.get(id).copied().unwrap_or(0);
    let before_me =
        others.iter().filter(|o| (std::cmp::Reverse(held(o)), o.as_str()) < (std::cmp::Reverse(held(me)), me)).count();
    enabled / alive + usize::from(before_me < enabled % alive)
}

/// The other daemons that heartbeat recently and whose session lives, and
/// those whose session ended (killed, disconnected): they deliver nothing
/// any more.
fn other_daemons(tx: &Conn, me: &str, ttl_ms: i64) -> crate::sql::Result<(Vec<String>, Vec<String>)> {
    let others: Vec<(String, bool)> = tx
        .prepare_cached(&format!(
            "SELECT DaemonID, {SESSION_LIVES} FROM Integration_Daemon WHERE DaemonID <> $1 \
             AND DaemonHeartbeat > clock_timestamp() - $2 * interval '1 millisecond'"
        ))?
        .query_map(params![me, ttl_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<crate::sql::Result<_>>()?;
    let (alive, gone): (Vec<_>, Vec<_>) = others.into_iter().partition(|(_, lives)| *lives);
    Ok((alive.into_iter().map(|(id, _)| id).collect(), gone.into_iter().map(|(id, _)| id).collect()))
}

/// Claims up to `wanted` connectors whose two leases are both free, expired
/// or held by a daemon that is `gone` (rows another daemon is claiming
/// right now are skipped). Returns the connectors taken from a gone daemon
/// before its lease ran out, with what was left of it: its session ended
/// (a kill, or a server restart that ended every session), but it may
/// still trust its last renewal that long.
fn claim(
    tx: &Conn,
    me: &str,
    ttl_ms: i64,
    gone: &[String],
    wanted: usize,
    holding: &mut Holding,
) -> crate::sql::Result<Vec<(i64, Duration)>> {
    let of_gone =
        if gone.is_empty() { String::new() } else { format!(" OR l.LeaseOwner IN ({})", marks(1, gone.len())) };
    let values: Vec<&dyn ToValue> = gone.iter().map(|g| g as &dyn ToValue).collect();
    let free: Vec<(i64, bool, i64)> = tx
        .prepare_cached(&format!(
            "SELECT l.LeaseConnectorID, l.LeaseIsInbound, CASE WHEN l.LeaseOwner IS NULL OR l.LeaseExpires IS NULL THEN 0 \
             ELSE GREATEST(0, CEIL(EXTRACT(EPOCH FROM (l.LeaseExpires - clock_timestamp())) * 1000))::BIGINT END \
             FROM Integration_Lease l \
             JOIN Integration_Connector c ON c.ConnectorID = l.LeaseConnectorID AND c.ConnectorEnabled = 1 \
             WHERE (l.LeaseOwner IS NULL OR l.LeaseExpires IS NULL OR l.LeaseExpires < clock_timestamp(){of_gone}) \
             ORDER BY l.LeaseConnectorID, l.LeaseIsInbound FOR UPDATE OF l SKIP LOCKED"
        ))?
        .query_map(values, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<crate::sql::Result<_>>()?;
    let mut both: Vec<i64> = Vec::new();
    let mut early = Vec::new();
    for pair in free.windows(2) {
        if pair[0].0 == pair[1].0 && !pair[0].1 && pair[1].1 && both.len() < wanted {
            both.push(pair[0].0);
            let left = pair[0].2.max(pair[1].2);
            if left > 0 {
                early.push((pair[0].0, Duration::from_millis(u64::try_from(left).unwrap_or(0))));
            }
        }
    }
    if both.is_empty() {
        return Ok(early);
    }
    let mut values: Vec<&dyn ToValue> = vec![&me, &ttl_ms];
    values.extend(both.iter().map(|id| id as &dyn ToValue));
    for row in tx
        .prepare(&format!(
            "UPDATE Integration_Lease SET LeaseOwner = $1, LeaseEpoch = LeaseEpoch + 1, \
             LeaseExpires = clock_timestamp() + $2 * interval '1 millisecond' \
             WHERE LeaseConnectorID IN ({}) RETURNING LeaseConnectorID, LeaseIsInbound, LeaseEpoch",
            marks(3, both.len())
        ))?
        .query_map(values, |r| Ok(((r.get::<i64>(0)?, r.get::<bool>(1)?), r.get::<i64>(2)?)))?
    {
        let (key, epoch) = row?;
        holding.epochs.insert(key, epoch);
    }
    Ok(early)
}

/// The elected daemon's chores: daemons gone for a long time are
/// forgotten, with what they published.
fn maintain(conn: &Conn, ttl_ms: i64) -> crate::sql::Result<()> {
    conn.execute(
        "DELETE FROM Integration_ConnectorInstance WHERE InstanceDaemonID IN (SELECT DaemonID FROM Integration_Daemon \
         WHERE DaemonHeartbeat < clock_timestamp() - $1 * interval '1 millisecond')",
        [ttl_ms * 10],
    )?;
    conn.execute(
        "DELETE FROM Integration_Daemon WHERE DaemonHeartbeat < clock_timestamp() - $1 * interval '1 millisecond'",
        [ttl_ms * 10],
    )?;
    Ok(())
}

/// Releases every lease this daemon holds and removes it from the cluster.
pub(super) fn leave(db: &Database, me: &str) -> Result<()> {
    let mut conn = db.connect()?;
    let tx = conn.transaction()?;
    tx.execute("UPDATE Integration_Lease SET LeaseOwner = NULL, LeaseExpires = NULL WHERE LeaseOwner = $1", [me])?;
    tx.execute("DELETE FROM Integration_ConnectorInstance WHERE InstanceDaemonID = $1", [me])?;
    tx.execute("DELETE FROM Integration_Daemon WHERE DaemonID = $1", [me])?;
    Ok(tx.commit()?)
}

pub(super) fn view(db: &Database, ttl: Duration) -> Result<(Vec<DaemonView>, Vec<LeaseView>)> {
    let conn = db.connect()?;
    let ttl_ms = millis(ttl);
    let leases: Vec<LeaseView> = conn
        .prepare_cached(
            "SELECT c.ConnectorName, l.LeaseIsInbound, l.LeaseOwner, l.LeaseEpoch, \
             CAST(EXTRACT(EPOCH FROM (l.LeaseExpires - clock_timestamp())) AS DOUBLE PRECISION) \
             FROM Integration_Lease l JOIN Integration_Connector c ON c.ConnectorID = l.LeaseConnectorID \
             ORDER BY c.ConnectorName, l.LeaseIsInbound",
        )?
        .query_map([], |r| {
            Ok(LeaseView {
                connector: r.get(0)?,
                direction: if r.get::<bool>(1)? { "incoming" } else { "outgoing" }.to_owned(),
                owner: r.get(2)?,
                epoch: r.get(3)?,
                expires_in_seconds: r.get(4)?,
            })
        })?
        .collect::<crate::sql::Result<_>>()?;
    let daemons = conn
        .prepare_cached(&format!(
            "SELECT DaemonID, DaemonAddress, DaemonStarted, \
                 CAST(EXTRACT(EPOCH FROM (clock_timestamp() - DaemonHeartbeat)) AS DOUBLE PRECISION), \
                 {SESSION_LIVES} FROM Integration_Daemon ORDER BY DaemonStarted, DaemonID"
        ))?
        .query_map([], |r| {
            let id: String = r.get(0)?;
            let age: f64 = r.get(3)?;
            // Alive: heard of within the lease time, and its session (which
            // holds its liveness lock) still there.
            let session_lives: bool = r.get(4)?;
            #[allow(clippy::cast_precision_loss)]
            let alive = age * 1000.0 < ttl_ms as f64 && session_lives;
            let connectors = leases
                .iter()
                .filter(|l| l.direction == "outgoing" && l.owner.as_deref() == Some(id.as_str()))
                .filter(|l| l.expires_in_seconds.is_some_and(|s| s > 0.0))
                .map(|l| l.connector.clone())
                .collect();
            Ok(DaemonView { id, address: r.get(1)?, started: r.get(2)?, heartbeat_age_seconds: age, alive, connectors })
        })?
        .collect::<crate::sql::Result<_>>()?;
    Ok((daemons, leases))
}

#[cfg(test)]
mod tests {
    use super::share;
    use std::collections::BTreeMap;

    #[test]
    fn every_daemon_gets_a_share_when_there_are_enough_connectors() {
        let ids = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let holding =
            |pairs: &[(&str, usize)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect::<BTreeMap<_, _>>();
        let shares = |enabled: usize, held: &BTreeMap<String, usize>| -> Vec<usize> {
            let all = ["a", "b", "c"];
            all.iter()
                .map(|me| share(enabled, me, &ids(&all.iter().filter(|o| *o != me).copied().collect::<Vec<_>>()), held))
                .collect()
        };
        // 4 on 3, split 2/2/0: one of the two gives one up, the idle one takes it.
        assert_eq!(shares(4, &holding(&[("a", 2), ("b", 2)])), [2, 1, 1]);
        assert_eq!(shares(4, &holding(&[("b", 2), ("c", 2)])), [1, 2, 1]);
        // Nothing held yet: by ID.
        assert_eq!(shares(4, &BTreeMap::new()), [2, 1, 1]);
        // A daemon joining takes nothing that need not move: 1 on 2.
        assert_eq!(share(1, "a", &ids(&["b"]), &holding(&[("b", 1)])), 0);
        assert_eq!(share(1, "b", &ids(&["a"]), &holding(&[("b", 1)])), 1);
        assert_eq!(shares(6, &BTreeMap::new()), [2, 2, 2]);
        assert_eq!(share(0, "a", &[], &BTreeMap::new()), 0);
        assert_eq!(share(5, "a", &[], &BTreeMap::new()), 5);
    }
}
