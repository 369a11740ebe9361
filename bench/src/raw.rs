//! The raw limits of the same bundled SQLite with the same pragmas: what a
//! hand-written program could do at best on this machine.

use anyhow::Result;
use rusqlite::{params, Connection};
use std::path::Path;
use std::time::{Duration, Instant};

pub const PAYLOAD: usize = 256;

pub fn payload() -> Vec<u8> {
    (0..PAYLOAD).map(|i| b'a' + (i % 26) as u8).collect()
}

fn open(path: &Path, synchronous: &str) -> Result<Connection> {
    let c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", synchronous)?;
    c.busy_timeout(Duration::from_secs(5))?;
    Ok(c)
}

/// Single-row transactions per second.
pub fn single_row_commits(dir: &Path, synchronous: &str, budget: Duration) -> Result<f64> {
    let c = open(&dir.join(format!("raw-single-{synchronous}.db")), synchronous)?;
    c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")?;
    let p = payload();
    let start = Instant::now();
    let mut n = 0u64;
    let mut stmt = c.prepare("INSERT INTO t (payload) VALUES (?1)")?;
    while start.elapsed() < budget {
        c.execute_batch("BEGIN")?;
        stmt.execute([&p])?;
        c.execute_batch("COMMIT")?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Rows per second, 1,000 per transaction (NORMAL).
pub fn batched_rows(dir: &Path, budget: Duration) -> Result<f64> {
    let mut c = open(&dir.join("raw-batch.db"), "NORMAL")?;
    c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")?;
    let p = payload();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        let tx = c.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO t (payload) VALUES (?1)")?;
            for _ in 0..1000 {
                stmt.execute([&p])?;
            }
        }
        tx.commit()?;
        n += 1000;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// The bare queue cycle: insert a task and 3 relation rows (100 tasks per
/// transaction), then per connector select the oldest 256 relations and
/// delete them (and each task with its last relation) in one transaction.
/// Tasks fully processed per second.
pub fn queue_cycle(dir: &Path, tasks: u64) -> Result<f64> {
    let mut c = open(&dir.join("raw-queue.db"), "NORMAL")?;
    c.execute_batch(
        "CREATE TABLE task (id INTEGER PRIMARY KEY, payload BLOB NOT NULL);
         CREATE TABLE rel (id INTEGER PRIMARY KEY, task INTEGER NOT NULL, connector INTEGER NOT NULL);
         CREATE UNIQUE INDEX rel_queue ON rel (connector, task);
         CREATE INDEX rel_task ON rel (task);",
    )?;
    let p = payload();
    let start = Instant::now();
    let mut produced = 0;
    while produced < tasks {
        let tx = c.transaction()?;
        {
            let mut task = tx.prepare_cached("INSERT INTO task (payload) VALUES (?1)")?;
            let mut rel = tx.prepare_cached("INSERT INTO rel (task, connector) VALUES (?1, ?2)")?;
            for _ in 0..100 {
                task.execute([&p])?;
                let id = tx.last_insert_rowid();
                for connector in 1..=3 {
                    rel.execute(params![id, connector])?;
                }
            }
        }
        tx.commit()?;
        produced += 100;
        // Consume as it goes, as the bus's workers do.
        for connector in 1..=3 {
            drain(&mut c, connector)?;
        }
    }
    for connector in 1..=3 {
        while drain(&mut c, connector)? > 0 {}
    }
    Ok(tasks as f64 / start.elapsed().as_secs_f64())
}

fn drain(c: &mut Connection, connector: i64) -> Result<usize> {
    let rows: Vec<(i64, i64, Vec<u8>)> = c
        .prepare_cached(
            "SELECT rel.id, rel.task, task.payload FROM rel JOIN task ON task.id = rel.task \
             WHERE rel.connector = ?1 ORDER BY rel.task LIMIT 256",
        )?
        .query_map([connector], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let tx = c.transaction()?;
    {
        let mut del = tx.prepare_cached("DELETE FROM rel WHERE id = ?1")?;
        let mut left = tx.prepare_cached("SELECT 1 FROM rel WHERE task = ?1")?;
        let mut del_task = tx.prepare_cached("DELETE FROM task WHERE id = ?1")?;
        for (id, task, payload) in &rows {
            std::hint::black_box(payload);
            del.execute([id])?;
            if !left.exists([task])? {
                del_task.execute([task])?;
            }
        }
    }
    tx.commit()?;
    Ok(rows.len())
}
