//! The bus measured through its real code path.

use crate::raw::PAYLOAD;
use crate::rig::Rig;
use anyhow::Result;
use bus_core::change::Change;
use bus_core::store::objects::ObjectInput;
use serde_json::json;
use std::time::{Duration, Instant};

/// A user change whose stored object is about 256 bytes.
pub fn user(n: u64) -> Change {
    let mut fields = serde_json::Map::new();
    fields.insert("bio".into(), json!("x".repeat(PAYLOAD - 120)));
    Change::CreateObject {
        object_type: "cms.user".into(),
        object: ObjectInput {
            code_name: Some(format!("user{n:09}")),
            display_name: Some(format!("User {n}")),
            fields,
            ..Default::default()
        },
    }
}

/// Changes logged per second, `batch` per transaction, for `budget`.
pub fn logging(rig: &Rig, batch: usize, budget: Duration, first: &mut u64) -> Result<f64> {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        let changes: Vec<Change> = (0..batch).map(|i| user(*first + i as u64)).collect();
        *first += batch as u64;
        let results = rig.pipeline.apply_all(changes, None)?;
        debug_assert!(results.iter().all(|r| r.queued_for.len() == 3));
        n += batch as u64;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Logs `count` changes (100 per transaction) while the workers drain them;
/// returns tasks per second from the first change to the last delivery.
pub fn end_to_end(rig: &Rig, count: u64, first: &mut u64) -> Result<f64> {
    let target = rig.delivered() + 3 * count;
    let start = Instant::now();
    let mut logged = 0;
    while logged < count {
        let changes: Vec<Change> = (0..100).map(|i| user(*first + i)).collect();
        *first += 100;
        rig.pipeline.apply_all(changes, None)?;
        logged += 100;
    }
    rig.wait_delivered(target);
    // Delivered is counted before the delete commits: wait for the last ones.
    while rig.queued()? > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// Waits until `relations` relations were processed; returns tasks per
/// second (three relations per task).
pub fn drain(rig: &Rig, relations: i64) -> Result<f64> {
    let relations = relations.min(rig.queued()?) as u64;
    let target = rig.delivered() + relations;
    let start = Instant::now();
    rig.set_processing(true)?;
    rig.wait_delivered(target);
    Ok(relations as f64 / 3.0 / start.elapsed().as_secs_f64())
}

/// Change → connector call latency, one change at a time on an idle bus.
pub fn latency(rig: &Rig, samples: usize, first: &mut u64) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let result = rig.pipeline.apply(user(*first), None)?;
        *first += 1;
        let task = result.task_id.expect("a task was logged");
        let seen = rig.signals.wait(task);
        out.push(seen - start);
        std::thread::sleep(Duration::from_millis(2));
    }
    out.sort();
    Ok(out)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
