//! Each connector's recent history in the bus database
//! (`Integration_ConnectorHistory`): per minute, the tasks it processed
//! `Ok`, the attempts that failed, and how many tasks waited. Every daemon
//! adds what it did ([`Metrics::take_unrecorded`]) and the depth it reads,
//! every few seconds ([`record`]); rows older than [`KEPT_MINUTES`] are
//! deleted then, so the table stays bounded (connectors × a day of
//! minutes). A minute without a row is a minute with nothing done and
//! nothing waiting. What reads it: the operations view's sparklines and
//! connector page (`GET /api/history`).

use crate::db::{Database, DbError};
use crate::metrics::Metrics;
use crate::queue_admin;
use crate::sql::{params, Conn};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// How far back the history goes: a day of minutes.
pub const KEPT_MINUTES: i64 = 24 * 60;

/// Minutes since 1970-01-01 00:00 UTC.
pub fn minute_of(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs() / 60).unwrap_or(i64::MAX))
}

/// When minute `minute` (of [`minute_of`]) began, as RFC 3339 UTC.
pub fn minute_start(minute: i64) -> String {
    let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(minute).unwrap_or(0) * 60);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// What one connector did in the current minute, as this daemon saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sample {
    delivered: u64,
    failed: u64,
    depth: i64,
}

/// Adds what this daemon did since the last call (taken from `metrics`)
/// and the queue depths it reads now to the history of minute `minute`,
/// and deletes what is older than a day, in one transaction. What could
/// not be written is handed back to `metrics` for the next call.
pub fn record(db: &Database, metrics: &Metrics, minute: i64) -> Result<(), DbError> {
    let stats = queue_admin::stats(&*db.connect()?)?;
    let done = metrics.take_unrecorded();
    let mut samples: BTreeMap<&str, Sample> = BTreeMap::new();
    for q in &stats {
        samples.entry(&q.connector).or_default().depth += q.depth;
    }
    for (connector, (delivered, failed)) in &done {
        let s = samples.entry(connector).or_default();
        s.delivered += delivered;
        s.failed += failed;
    }
    let written = write(db, minute, &samples);
    if written.is_err() {
        metrics.give_back(done);
    }
    written
}

fn write(db: &Database, minute: i64, samples: &BTreeMap<&str, Sample>) -> Result<(), DbError> {
    let mut turn = db.writer()?;
    let tx = turn.transaction()?;
    // A queue that emptied reads 0 for the rest of the minute (the upserts
    // below set the depth of every queue that still holds tasks).
    tx.prepare_cached(
        "UPDATE Integration_ConnectorHistory SET HistoryDepth = 0 WHERE HistoryMinute = $1 AND HistoryDepth <> 0",
    )?
    .execute(params![minute])?;
    {
        // A minute's depth is the last one read in it; its counts add up
        // over the daemons.
        let mut upsert = tx.prepare_cached(
            "INSERT INTO Integration_ConnectorHistory \
             (HistoryConnectorID, HistoryMinute, HistoryDelivered, HistoryFailed, HistoryDepth) \
             SELECT ConnectorID, $1, $2, $3, $4 FROM Integration_Connector WHERE ConnectorName = $5 \
             ON CONFLICT (HistoryConnectorID, HistoryMinute) DO UPDATE SET \
             HistoryDelivered = Integration_ConnectorHistory.HistoryDelivered + excluded.HistoryDelivered, \
             HistoryFailed = Integration_ConnectorHistory.HistoryFailed + excluded.HistoryFailed, \
             HistoryDepth = excluded.HistoryDepth",
        )?;
        for (connector, s) in samples.iter().filter(|(_, s)| **s != Sample::default()) {
            let delivered = i64::try_from(s.delivered).unwrap_or(i64::MAX);
            let failed = i64::try_from(s.failed).unwrap_or(i64::MAX);
            upsert.execute(params![minute, delivered, failed, s.depth, *connector])?;
        }
    }
    // Rows of connectors deleted with plain SQL while foreign keys were off
    // (sqlite3's default) go too: a new connector may get the old ID.
    tx.prepare_cached(
        "DELETE FROM Integration_ConnectorHistory WHERE HistoryMinute <= $1 \
         OR HistoryConnectorID NOT IN (SELECT ConnectorID FROM Integration_Connector)",
    )?
    .execute(params![minute - KEPT_MINUTES])?;
    tx.commit()?;
    Ok(())
}

/// One connector's history over consecutive minutes, oldest first (the
/// last one is the current minute, still going on).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Series {
    pub connector: String,
    /// Tasks processed `Ok`, per minute.
    pub delivered: Vec<i64>,
    /// Attempts that failed, per minute.
    pub failed: Vec<i64>,
    /// Tasks waiting (both directions), per minute.
    pub depth: Vec<i64>,
}

/// The history of every registered connector (or of `connector` only) over
/// the `minutes` minutes up to and including `until`, in name order.
pub fn read(conn: &Conn, connector: Option<&str>, until: i64, minutes: i64) -> crate::sql::Result<Vec<Series>> {
    let minutes = minutes.clamp(1, KEPT_MINUTES);
    let len = usize::try_from(minutes).unwrap_or(1);
    let from = until - minutes + 1;
    let mut series: BTreeMap<String, Series> = conn
        .prepare_cached("SELECT ConnectorName FROM Integration_Connector WHERE ConnectorName = $1 OR $1 IS NULL")?
        .query_map(params![connector], |r| r.get::<String>(0))?
        .map(|name| {
            name.map(|name| {
                let empty = vec![0; len];
                (
                    name.clone(),
                    Series { connector: name, delivered: empty.clone(), failed: empty.clone(), depth: empty },
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let mut rows = conn.prepare_cached(
        "SELECT c.ConnectorName, h.HistoryMinute, h.HistoryDelivered, h.HistoryFailed, h.HistoryDepth \
         FROM Integration_ConnectorHistory h JOIN Integration_Connector c ON c.ConnectorID = h.HistoryConnectorID \
         WHERE (c.ConnectorName = $1 OR $1 IS NULL) AND h.HistoryMinute >= $2 AND h.HistoryMinute <= $3",
    )?;
    let mut rows = rows.query(params![connector, from, until])?;
    while let Some(r) = rows.next()? {
        let name: String = r.get(0)?;
        let minute: i64 = r.get(1)?;
        let (Some(s), Ok(i)) = (series.get_mut(&name), usize::try_from(minute - from)) else { continue };
        if i < len {
            s.delivered[i] = r.get(2)?;
            s.failed[i] = r.get(3)?;
            s.depth[i] = r.get(4)?;
        }
    }
    Ok(series.into_values().collect())
}

/// A digest of the history since minute `since` (row count and the sum of
/// each figure): what the live view compares to know that a chart changed.
pub fn stamp(conn: &Conn, since: i64) -> crate::sql::Result<[i64; 4]> {
    // Each figure summed apart (a delivery moves one from depth to
    // delivered), and cast: PostgreSQL sums BIGINTs as NUMERIC.
    conn.prepare_cached(
        "SELECT COUNT(*), CAST(COALESCE(SUM(HistoryDelivered), 0) AS BIGINT), \
         CAST(COALESCE(SUM(HistoryFailed), 0) AS BIGINT), CAST(COALESCE(SUM(HistoryDepth), 0) AS BIGINT) \
         FROM Integration_ConnectorHistory WHERE HistoryMinute >= $1",
    )?
    .query_row(params![since], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_result::TaskResult;
    use std::time::Duration;

    fn database() -> (tempfile::TempDir, Database) {
        let (dir, db, _) = crate::testing::database(&["A", "B"]);
        (dir, db)
    }

    #[test]
    fn counts_add_up_per_minute_and_a_quiet_minute_reads_zero() {
        let (_dir, db) = database();
        let m = Metrics::default();
        let ms = Duration::from_millis(1);
        m.record("A", "outgoing", TaskResult::Ok, None, ms);
        m.record("A", "outgoing", TaskResult::Ok, None, ms);
        m.record("A", "outgoing", TaskResult::Error, Some("down"), ms);
        record(&db, &m, 1000).unwrap();
        m.record("A", "outgoing", TaskResult::Ok, None, ms);
        record(&db, &m, 1000).unwrap();
        record(&db, &m, 1002).unwrap();
        let all = read(&db.connect().unwrap(), None, 1002, 4).unwrap();
        let of = |name: &str| all.iter().find(|s| s.connector == name).unwrap_or_else(|| panic!("{name} in {all:?}"));
        assert_eq!(of("A").delivered, [0, 3, 0, 0]);
        assert_eq!(of("A").failed, [0, 1, 0, 0]);
        assert_eq!(of("B").delivered, [0, 0, 0, 0], "every connector, also one with no history");
        let only_b = read(&db.connect().unwrap(), Some("B"), 1002, 2).unwrap();
        assert_eq!(only_b.iter().map(|s| s.connector.as_str()).collect::<Vec<_>>(), ["B"]);
    }

    #[test]
    fn a_queue_that_empties_reads_zero_and_the_stamp_sees_a_task_move_from_waiting_to_delivered() {
        let (_dir, db) = database();
        let conn = db.connect().unwrap();
        conn.execute_batch(
            "INSERT INTO Integration_ConnectorHistory (HistoryConnectorID, HistoryMinute, HistoryDepth) \
             SELECT ConnectorID, 1000, 1 FROM Integration_Connector WHERE ConnectorName = 'A'",
        )
        .unwrap();
        let waiting = stamp(&conn, 990).unwrap();
        let m = Metrics::default();
        m.record("A", "outgoing", TaskResult::Ok, None, Duration::ZERO);
        record(&db, &m, 1000).unwrap();
        let a = read(&conn, Some("A"), 1000, 1).unwrap();
        assert_eq!((a[0].delivered[0], a[0].depth[0]), (1, 0), "nothing waits any more: {a:?}");
        assert_ne!(stamp(&conn, 990).unwrap(), waiting, "the same sum, another history");
    }

    #[test]
    fn rows_older_than_a_day_and_of_deleted_connectors_are_deleted() {
        let (_dir, db) = database();
        let m = Metrics::default();
        m.record("A", "outgoing", TaskResult::Ok, None, Duration::ZERO);
        record(&db, &m, 10).unwrap();
        m.record("B", "outgoing", TaskResult::Ok, None, Duration::ZERO);
        record(&db, &m, 10 + KEPT_MINUTES - 1).unwrap();
        let conn = db.connect().unwrap();
        let rows = || conn.query_row("SELECT COUNT(*) FROM Integration_ConnectorHistory", [], |r| r.get::<i64>(0));
        assert_eq!(rows().unwrap(), 2, "a row exactly a day old minus a minute stays");
        record(&db, &m, 10 + KEPT_MINUTES).unwrap();
        assert_eq!(rows().unwrap(), 1, "a day later the first row is gone");
        conn.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM Integration_Connector WHERE ConnectorName = 'B'")
            .unwrap();
        record(&db, &m, 10 + KEPT_MINUTES).unwrap();
        assert_eq!(rows().unwrap(), 0, "the rows of a connector deleted behind the daemon's back go");
    }
}
