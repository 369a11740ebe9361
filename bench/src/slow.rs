//! The slow-connector phase: a connector whose system answers in 20 ms per
//! call, drained one call at a time (the specification's order), with
//! `object` ordering at 16 and 64 calls at once, in batches of 100 it takes
//! in one call, and under a rate limit of 100 calls a second — each rate
//! beside the serial one, measured in the same run.

use crate::bus;
use crate::rig::{Rig, RigConfig};
use anyhow::Result;
use bus_core::db::Durability;
use bus_core::delivery::{DeliverySettings, Ordering};
use bus_core::isolation::Isolation;
use std::path::Path;
use std::time::Instant;

/// What one slow-connector drain measured.
pub struct Slow {
    pub serial: f64,
    pub object_16: f64,
    pub object_64: f64,
    /// 16 calls at once to a connector process.
    pub object_16_process: f64,
    pub batch_100: f64,
    pub rate_100: f64,
}

/// Tasks a second through one connector that waits 20 ms per call, the
/// tasks logged first and drained from the moment processing goes on.
fn drain(dir: &Path, lib: &Path, rig: RigConfig, tasks: u64, first: &mut u64) -> Result<f64> {
    let rig = Rig::build(dir, lib, rig)?;
    for start in (0..tasks).step_by(100) {
        let changes = (start..(start + 100).min(tasks)).map(|i| bus::user(*first + i)).collect();
        rig.pipeline.apply_all(changes, None)?;
    }
    *first += tasks;
    let target = rig.delivered() + tasks;
    let started = Instant::now();
    rig.set_processing(true)?;
    rig.wait_delivered(target);
    Ok(tasks as f64 / started.elapsed().as_secs_f64())
}

/// Runs the phase; `quick` measures fewer tasks.
pub fn run(dir: &Path, lib: &Path, quick: bool, first: &mut u64) -> Result<Slow> {
    let scale = if quick { 1 } else { 3 };
    let rig = |config: &str, delivery| RigConfig { delivery, ..RigConfig::new(Durability::Normal, 1, config, false) };
    let object = |n| DeliverySettings { ordering: Ordering::Object, concurrency: Some(n), ..Default::default() };
    let serial =
        drain(&dir.join("slow-serial"), lib, rig("sleep_ms=20", DeliverySettings::default()), 50 * scale, first)?;
    let object_16 = drain(&dir.join("slow-16"), lib, rig("sleep_ms=20", object(16)), 800 * scale, first)?;
    let object_64 = drain(&dir.join("slow-64"), lib, rig("sleep_ms=20", object(64)), 3000 * scale, first)?;
    let process = RigConfig { isolation: Isolation::Process, ..rig("sleep_ms=20", object(16)) };
    let object_16_process = drain(&dir.join("slow-16-process"), lib, process, 800 * scale, first)?;
    let batched = DeliverySettings { batch_size: Some(100), ..Default::default() };
    let batch_100 = drain(&dir.join("slow-batch"), lib, rig("sleep_ms=20 bulk", batched), 5000 * scale, first)?;
    let limited = DeliverySettings { rate_limit: Some(100.0), ..Default::default() };
    let rate_100 = drain(&dir.join("slow-rate"), lib, rig("", limited), 200 * scale, first)?;
    Ok(Slow { serial, object_16, object_64, object_16_process, batch_100, rate_100 })
}
