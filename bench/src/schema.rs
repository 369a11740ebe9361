//! The floor the bus's own tables set: the rows one change writes (the
//! object, its task, a relation per connector) inserted by hand-written SQL
//! on the bus's schema and pragmas, with no change pipeline, subscriptions,
//! JSON or connectors. The gap between these figures and the raw 1-row
//! anchors is what the storage layout costs; the gap between them and the
//! bus is what the bus's own code costs.

use crate::raw::PAYLOAD;
use anyhow::Result;
use bus_core::db::{Database, Durability};
use rusqlite::{params, Connection, TransactionBehavior};
use std::path::Path;
use std::time::{Duration, Instant};

const CONNECTORS: i64 = 3;

fn open(dir: &Path, durability: Durability) -> Result<(Database, Connection)> {
    std::fs::create_dir_all(dir)?;
    let (db, _) = Database::open_with(&dir.join("bus.db"), durability)?;
    let conn = db.connect_sqlite()?;
    for i in 1..=CONNECTORS {
        conn.execute(
            "INSERT INTO Integration_Connector (ConnectorName, ConnectorDisplayName, ConnectorAssemblyName, \
             ConnectorClassName) VALUES (?1, ?1, 'none', 'none')",
            [format!("Hand{i}")],
        )?;
    }
    Ok((db, conn))
}

/// Writes the rows of change `n`: what the bus writes for a created user.
fn write_change(tx: &Connection, n: u64, fields: &str) -> Result<()> {
    let now = bus_core::db::now();
    let guid = format!("{:08x}-0000-7000-8000-{:012x}", n >> 48, n & 0xffff_ffff_ffff);
    let code_name = format!("user{n:09}");
    tx.prepare_cached(
        "INSERT INTO CMS_Object (ObjectType, ObjectGUID, ObjectCodeName, ObjectDisplayName, ObjectFields, \
         ObjectLastModified) VALUES ('cms.user', ?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![guid, code_name, format!("User {n}"), fields, now])?;
    let object_id = tx.last_insert_rowid();
    let data = format!(
        r#"{{"object":{{"Object":{{"object_type":"cms.user","id":{object_id},"guid":"{guid}","code_name":"{code_name}","display_name":"User {n}","fields":{fields}}}}},"translations":{{}}}}"#
    );
    tx.prepare_cached(
        "INSERT INTO Integration_Task (TaskIsInbound, TaskType, TaskDataType, TaskSiteName, TaskTitle, \
         TaskObjectType, TaskObjectID, TaskData, TaskTime) \
         VALUES (0, 'CreateObject', 'Snapshot', NULL, ?1, 'cms.user', ?2, ?3, ?4)",
    )?
    .execute(params![format!("Create user User {n}"), object_id, data, now])?;
    let task_id = tx.last_insert_rowid();
    tx.prepare_cached(
        "INSERT INTO Integration_Synchronization (SynchronizationTaskID, SynchronizationIsInbound, \
         SynchronizationConnectorID, SynchronizationDataType) \
         VALUES (?1, 0, 1, 'Snapshot'), (?1, 0, 2, 'Snapshot'), (?1, 0, 3, 'Snapshot')",
    )?
    .execute([task_id])?;
    Ok(())
}

fn fields() -> String {
    serde_json::json!({ "bio": "x".repeat(PAYLOAD - 120) }).to_string()
}

/// Changes per second, `batch` per transaction, for `budget`.
pub fn changes(dir: &Path, durability: Durability, batch: u64, budget: Duration) -> Result<f64> {
    let (_db, mut conn) = open(dir, durability)?;
    let fields = fields();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for i in 0..batch {
            write_change(&tx, n + i, &fields)?;
        }
        tx.commit()?;
        n += batch;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// The bare queue cycle of `raw::queue_cycle` on the bus's tables: 100
/// changes per transaction, then per connector the oldest 256 relations read
/// with their task and deleted in one transaction (the schema's trigger
/// deletes a task with its last relation). Tasks fully processed per second.
pub fn queue_cycle(dir: &Path, tasks: u64) -> Result<f64> {
    let (_db, mut conn) = open(dir, Durability::Normal)?;
    let fields = fields();
    let start = Instant::now();
    let mut produced = 0;
    while produced < tasks {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for i in 0..100 {
            write_change(&tx, produced + i, &fields)?;
        }
        tx.commit()?;
        produced += 100;
        for connector in 1..=CONNECTORS {
            drain(&mut conn, connector)?;
        }
    }
    for connector in 1..=CONNECTORS {
        while drain(&mut conn, connector)? > 0 {}
    }
    Ok(tasks as f64 / start.elapsed().as_secs_f64())
}

fn drain(c: &mut Connection, connector: i64) -> Result<usize> {
    let rows: Vec<(i64, String)> = c
        .prepare_cached(
            "SELECT s.SynchronizationID, t.TaskData FROM Integration_Synchronization s \
             JOIN Integration_Task t ON t.TaskID = s.SynchronizationTaskID \
             WHERE s.SynchronizationConnectorID = ?1 AND s.SynchronizationIsInbound = 0 \
             ORDER BY s.SynchronizationTaskID LIMIT 256",
        )?
        .query_map([connector], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut del = tx.prepare_cached("DELETE FROM Integration_Synchronization WHERE SynchronizationID = ?1")?;
        for (id, data) in &rows {
            std::hint::black_box(data);
            del.execute([id])?;
        }
    }
    tx.commit()?;
    Ok(rows.len())
}
