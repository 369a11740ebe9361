//! The PostgreSQL mode (`--postgres postgres://…`): the bus on one server
//! beside anchors measured on that same server in the same run — a raw
//! commit of one row (durable, and with `synchronous_commit = off`) and a
//! hand-written ordered queue cycle (take the oldest row of one queue,
//! delete it, commit) — so the figures are ratios, not absolute claims.
//! The batched logging and end-to-end phases also run on SQLite in the
//! same invocation, for PostgreSQL's ratio to the embedded engine.

use crate::bus;
use crate::raw::PAYLOAD;
use crate::rig::{Rig, RigConfig};
use anyhow::{Context, Result};
use bus_core::db::Durability;
use bus_core::sql::Conn;
use std::path::Path;
use std::time::{Duration, Instant};

/// One figure of the run.
pub struct Line {
    pub what: &'static str,
    pub value: f64,
    pub unit: &'static str,
}

/// A fresh database on the server for one phase.
fn database(admin: &str, name: &str) -> Result<String> {
    let conn = Conn::postgres(admin).with_context(|| format!("cannot connect to {admin}"))?;
    conn.execute_batch(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    conn.execute_batch(&format!("CREATE DATABASE {name}"))?;
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// Raw one-row commits per second.
fn raw_commits(url: &str, durable: bool, budget: Duration) -> Result<f64> {
    let conn = Conn::postgres(url)?;
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS raw_row (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL); SET synchronous_commit = {}",
        if durable { "on" } else { "off" }
    ))?;
    let payload = "x".repeat(PAYLOAD);
    let mut stmt = conn.prepare("INSERT INTO raw_row (payload) VALUES ($1)")?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        stmt.execute([&payload])?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// A hand-written ordered queue on the same server: one queue of `count`
/// rows drained oldest first, one durable commit per row taken.
fn hand_queue(url: &str, count: u64) -> Result<f64> {
    let mut conn = Conn::postgres(url)?;
    conn.execute_batch(
        "CREATE TABLE hand_queue (id BIGSERIAL PRIMARY KEY, queue BIGINT NOT NULL, payload TEXT NOT NULL); \
         CREATE INDEX hand_queue_order ON hand_queue (queue, id)",
    )?;
    let payload = "x".repeat(PAYLOAD);
    {
        let tx = conn.transaction()?;
        let mut insert = tx.prepare("INSERT INTO hand_queue (queue, payload) VALUES (1, $1)")?;
        for _ in 0..count {
            insert.execute([&payload])?;
        }
        drop(insert);
        tx.commit()?;
    }
    let start = Instant::now();
    for _ in 0..count {
        let tx = conn.transaction()?;
        let id: i64 =
            tx.query_row("SELECT id FROM hand_queue WHERE queue = 1 ORDER BY id LIMIT 1 FOR UPDATE", [], |r| r.get(0))?;
        tx.execute("DELETE FROM hand_queue WHERE id = $1", [id])?;
        tx.commit()?;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

fn rig(dir: &Path, lib: &Path, url: &str, connectors: usize, config: &str, processing: bool) -> Result<Rig> {
    rig_with(dir, lib, url, Durability::Normal, (connectors, config, processing))
}

/// A rig with `durability` (`synchronous`): with `Full` every delivery's
/// record waits for the server's disk too.
fn rig_with(
    dir: &Path,
    lib: &Path,
    url: &str,
    durability: Durability,
    (connectors, config, processing): (usize, &str, bool),
) -> Result<Rig> {
    let mut c = RigConfig::new(durability, connectors, config, processing);
    c.database = Some(url.to_owned());
    Rig::build(dir, lib, c)
}

/// Changes per second from `writers` threads at once, one per transaction.
fn concurrent_logging(rig: &Rig, writers: u64, budget: Duration) -> Result<f64> {
    let start = Instant::now();
    let done: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                s.spawn(move || -> Result<u64> {
                    let mut n = 0;
                    while start.elapsed() < budget {
                        rig.pipeline.apply(bus::user(1_000_000_000 * (w + 1) + n), None)?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a writer thread").unwrap_or(0)).collect()
    });
    Ok(done.iter().sum::<u64>() as f64 / start.elapsed().as_secs_f64())
}

/// `count` changes logged through `entry` (100 per transaction) while the
/// workers of every rig deliver them to 3 connectors; tasks per second
/// until the queue is empty.
fn end_to_end(entry: &Rig, all: &[&Rig], count: u64, first: &mut u64) -> Result<f64> {
    let delivered = || all.iter().map(|r| r.delivered()).sum::<u64>();
    let target = delivered() + 3 * count;
    let start = Instant::now();
    let mut logged = 0;
    while logged < count {
        let changes = (0..100).map(|i| bus::user(*first + i)).collect();
        *first += 100;
        entry.pipeline.apply_all(changes, None)?;
        logged += 100;
    }
    while delivered() < target || entry.queued()? > 0 {
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

pub fn run(admin: &str, lib: &Path, dir: &Path, budget: Duration, quick: bool) -> Result<Vec<Line>> {
    let count: u64 = if quick { 3_000 } else { 20_000 };
    let mut lines = Vec::new();
    let mut line = |what, value, unit| {
        eprintln!("{what}: {value:.1} {unit}");
        lines.push(Line { what, value, unit });
    };
    let anchors = database(admin, "bench_anchors")?;
    let raw_durable = raw_commits(&anchors, true, budget)?;
    line("raw commit of one row, durable", raw_durable, "commits/s");
    line("raw commit of one row, synchronous_commit=off", raw_commits(&anchors, false, budget)?, "commits/s");
    let hand = hand_queue(&anchors, count)?;
    line("hand-written ordered queue cycle (one queue)", hand, "rows/s");

    let mut n = 0u64;
    let pg_logging;
    {
        let r = rig(&dir.join("pg-logging"), lib, &database(admin, "bench_logging")?, 3, "", false)?;
        line("bus: one change per transaction, 1 writer", bus::logging(&r, 1, budget, &mut n)?, "changes/s");
        line("bus: one change per transaction, 8 writers", concurrent_logging(&r, 8, budget)?, "changes/s");
        pg_logging = bus::logging(&r, 100, budget, &mut n)?;
        line("bus: 100 changes per transaction", pg_logging, "changes/s");
    }
    // The same two phases on SQLite (a file, WAL, synchronous=NORMAL as the
    // daemon's default), in this run, for the ratios below.
    let sqlite_logging = {
        let r = Rig::new(&dir.join("sqlite-logging"), lib, Durability::Normal, 3, "", false)?;
        bus::logging(&r, 100, budget, &mut n)?
    };
    line("SQLite, same run: 100 changes per transaction", sqlite_logging, "changes/s");
    line("PostgreSQL / SQLite: 100 changes per transaction", pg_logging / sqlite_logging * 100.0, "%");
    let sqlite_e2e = {
        let r = Rig::new(&dir.join("sqlite-e2e"), lib, Durability::Normal, 3, "", true)?;
        bus::end_to_end(&r, count, &mut n)?
    };
    line("SQLite, same run: end to end, 3 connectors", sqlite_e2e, "tasks/s (each to 3 connectors)");
    let e2e_url = database(admin, "bench_e2e")?;
    {
        let r = rig(&dir.join("pg-e2e"), lib, &e2e_url, 3, "", true)?;
        let tasks = end_to_end(&r, &[&r], count, &mut n)?;
        line("bus: end to end, 3 connectors, 1 daemon", tasks, "tasks/s (each to 3 connectors)");
        line("bus: end to end per connector / hand-written ordered cycle", tasks / hand * 100.0, "%");
        line("PostgreSQL / SQLite: end to end", tasks / sqlite_e2e * 100.0, "%");
    }
    {
        // Every delivery's record durable (`synchronous = "full"`), as the
        // hand-written cycle's commits are.
        let r = rig_with(
            &dir.join("pg-e2e-full"),
            lib,
            &database(admin, "bench_e2e_full")?,
            Durability::Full,
            (3, "", true),
        )?;
        let tasks = end_to_end(&r, &[&r], count, &mut n)?;
        line("bus: end to end, 3 connectors, synchronous = full", tasks, "tasks/s (each to 3 connectors)");
        line(
            "bus: end to end per connector, synchronous = full / hand-written ordered cycle",
            tasks / hand * 100.0,
            "%",
        );
    }
    {
        let url = database(admin, "bench_e2e2")?;
        let a = rig(&dir.join("pg-e2e2-a"), lib, &url, 3, "", true)?;
        let b = rig(&dir.join("pg-e2e2-b"), lib, &url, 3, "", true)?;
        // Until the second daemon took its share.
        let deadline = Instant::now() + Duration::from_secs(30);
        while b.held() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let tasks = end_to_end(&a, &[&a, &b], count, &mut n)?;
        line("bus: end to end, 3 connectors, 2 daemons", tasks, "tasks/s (each to 3 connectors)");
    }
    {
        let r = rig(&dir.join("pg-latency"), lib, &database(admin, "bench_latency")?, 1, "signal", true)?;
        let samples = bus::latency(&r, if quick { 200 } else { 1000 }, &mut n)?;
        let p50 = bus::percentile(&samples, 0.5).as_secs_f64() * 1000.0;
        let p99 = bus::percentile(&samples, 0.99).as_secs_f64() * 1000.0;
        line("bus: latency change → connector call, p50", p50, "ms");
        line("bus: latency change → connector call, p99", p99, "ms");
        line("bus: latency p50 / raw durable commit", p50 / (1000.0 / raw_durable), "×");
    }
    Ok(lines)
}
