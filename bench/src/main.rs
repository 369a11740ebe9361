//! `bus-bench`: measures the integration bus against raw SQLite in one run,
//! on a fresh temp database, and prints a table of figures with their raw
//! anchors and ratios; writes the same as JSON and an SVG picture.
//!
//! `cargo run --release -p bus-bench -- [--backlog N] [--out DIR]`

mod bus;
mod postgres;
mod raw;
mod raw_ipc;
mod report;
mod rig;
mod schema;
mod slow;

use anyhow::{bail, Context, Result};
use bus_core::db::Durability;
use bus_core::isolation::Isolation;
use bus_core::worker::WorkerConfig;
use report::Figure;
use rig::{Rig, RigConfig};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Options {
    backlog: u64,
    out: PathBuf,
    budget: Duration,
    only: Option<String>,
    /// Measure on this PostgreSQL server instead (a URL whose database the
    /// benchmark may use to create its own).
    postgres: Option<String>,
    quick: bool,
}

fn options() -> Result<Options> {
    let mut o = Options {
        backlog: 1_000_000,
        out: PathBuf::from("bench-results"),
        budget: Duration::from_secs(3),
        only: None,
        postgres: None,
        quick: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backlog" => {
                o.backlog =
                    args.next().context("--backlog needs a number")?.parse().context("--backlog needs a number")?
            }
            "--out" => o.out = PathBuf::from(args.next().context("--out needs a folder")?),
            "--only" => {
                o.only = Some(
                    args.next()
                        .context("--only needs a phase: hand, logging, single, full, e2e, e2e-batched, latency (e2e and latency also as e2e-process, latency-process)")?,
                )
            }
            "--quick" => {
                o.backlog = 100_000;
                o.budget = Duration::from_secs(1);
                o.quick = true;
            }
            "--postgres" => o.postgres = Some(args.next().context("--postgres needs a postgres:// URL")?),
            other => bail!("unknown argument `{other}`; use --backlog N, --out DIR, --quick, --postgres URL"),
        }
    }
    Ok(o)
}

/// Builds the test connectors in release mode and returns the library.
fn library() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the binary has a folder")?.to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "testkit-connector"]);
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    anyhow::ensure!(cmd.status()?.success(), "building the test connectors failed");
    let lib = dir.join(format!("{}testkit_connector{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    anyhow::ensure!(lib.exists(), "{} is missing", lib.display());
    Ok(lib)
}

/// Flushes what earlier phases left for the kernel to write back, so it
/// does not compete with the next phase's commits (the raw batched phase
/// alone leaves hundreds of megabytes).
fn settle() {
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(200));
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some(bus_core::isolation::HOST_COMMAND) {
        // A connector process of a `process`-isolated rig.
        return Ok(bus_core::connector_host::run_host()?);
    }
    if std::env::args().nth(1).as_deref() == Some(raw_ipc::ECHO_COMMAND) {
        return raw_ipc::echo();
    }
    let o = options()?;
    let lib = library()?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    if let Some(url) = &o.postgres {
        println!("| PostgreSQL, same server, one run | value |\n|---|---|");
        for l in postgres::run(url, &lib, dir, o.budget, o.quick)? {
            println!("| {} | {:.1} {} |", l.what, l.value, l.unit);
        }
        return Ok(());
    }
    let mut figures = Vec::new();
    let mut n = 0u64;
    if o.only.as_deref() == Some("slow") {
        let s = slow::run(dir, &lib, o.quick, &mut n)?;
        for figure in slow_figures(&s) {
            eprintln!("{}: {:.1} {}", figure.name, figure.value, figure.unit);
        }
        return Ok(());
    }
    if o.only.as_deref() == Some("ipc") {
        for pairs in [1, 3] {
            let rate = raw_ipc::round_trips(pairs, 100_000)?;
            eprintln!("{pairs} pair(s): {rate:.0} round trips/s per pair ({:.1} µs each)", 1e6 / rate);
        }
        return Ok(());
    }
    if let Some(phase) = &o.only {
        // Profiling one phase: no raw anchors, no report.
        let delete_batch = if phase == "e2e-batched" { 256 } else { 1 };
        let isolation = if phase.contains("-process") { Isolation::Process } else { Isolation::InProcess };
        let batch_size = if phase.ends_with("-process-batched") { 16 } else { 1 };
        let phase = phase.trim_end_matches("-batched").trim_end_matches("-process");
        let rig = Rig::build(
            &dir.join("only"),
            &lib,
            RigConfig {
                workers: WorkerConfig { delete_batch, ..WorkerConfig::default() },
                isolation,
                batch_size,
                ..RigConfig::new(
                    if phase == "full" { Durability::Full } else { Durability::Normal },
                    if phase == "latency" { 1 } else { 3 },
                    if phase == "latency" { "signal" } else { "" },
                    !matches!(phase, "logging" | "single" | "full"),
                )
            },
        )?;
        let start = Instant::now();
        match phase {
            "hand" => {
                let (full, batch, queue) = hand_written(dir, o.budget)?;
                eprintln!("by hand: {full:.0} FULL changes/s, {batch:.0} changes/s 100 per tx, {queue:.0} tasks/s queue cycle")
            }
            "logging" => eprintln!("{:.0} changes/s", bus::logging(&rig, 100, o.budget, &mut n)?),
            "single" | "full" => eprintln!("{:.0} changes/s", bus::logging(&rig, 1, o.budget, &mut n)?),
            "e2e" | "e2e-batched" => eprintln!("{:.0} tasks/s", bus::end_to_end(&rig, 20_000, &mut n)?),
            "latency" => {
                let lat = bus::latency(&rig, 400, &mut n)?;
                eprintln!("p50 {:?} p99 {:?}", bus::percentile(&lat, 0.5), bus::percentile(&lat, 0.99))
            }
            other => bail!("unknown phase `{other}`"),
        }
        eprintln!("{phase} took {:.1} s", start.elapsed().as_secs_f64());
        return Ok(());
    }
    eprintln!("raw SQLite…");
    settle();
    let raw_full = raw::single_row_commits(dir, "FULL", o.budget)?;
    settle();
    let raw_normal = raw::single_row_commits(dir, "NORMAL", o.budget)?;
    settle();
    let raw_batch = raw::batched_rows(dir, o.budget)?;
    settle();
    let raw_queue = raw::queue_cycle(dir, 60_000)?;
    figures.push(Figure::plain("raw: 1-row transactions, FULL", raw_full, "tx/s"));
    figures.push(Figure::plain("raw: 1-row transactions, NORMAL", raw_normal, "tx/s"));
    figures.push(Figure::plain("raw: rows inserted 1,000 per transaction", raw_batch, "rows/s"));
    figures.push(Figure::plain("raw: bare queue cycle (task + 3 relations, dequeue, delete)", raw_queue, "tasks/s"));
    eprintln!("the bus's tables written by hand…");
    let (hand_full, hand_batch, hand_queue) = hand_written(dir, o.budget)?;
    figures.push(Figure::compared(
        "hand-written on the bus's tables: 1 change per transaction, FULL",
        hand_full,
        "changes/s",
        ("raw 1-row FULL", raw_full),
    ));
    figures.push(Figure::compared(
        "hand-written on the bus's tables: 100 changes per transaction, NORMAL",
        hand_batch,
        "changes/s",
        ("raw batched rows", raw_batch),
    ));
    figures.push(Figure::compared(
        "hand-written on the bus's tables: queue cycle",
        hand_queue,
        "tasks/s",
        ("raw queue cycle", raw_queue),
    ));

    settle();
    eprintln!("bus: logging…");
    let full = Rig::new(&dir.join("full"), &lib, Durability::Full, 3, "", false)?;
    let log_full = bus::logging(&full, 1, o.budget, &mut n)?;
    drop(full);
    figures.push(Figure::at_least(
        "bus: 1 change per transaction, FULL, fan-out to 3",
        log_full,
        "changes/s",
        ("raw 1-row FULL", raw_full),
        0.80,
    ));
    figures.push(Figure::compared(
        "bus: 1 change per transaction, FULL, vs the same tables by hand",
        log_full,
        "changes/s",
        ("by hand", hand_full),
    ));
    settle();
    let normal = Rig::new(&dir.join("normal"), &lib, Durability::Normal, 3, "", false)?;
    let log_100 = bus::logging(&normal, 100, o.budget, &mut n)?;
    let log_1000 = bus::logging(&normal, 1000, o.budget, &mut n)?;
    drop(normal);
    figures.push(Figure::at_least(
        "bus: 100 changes per transaction, NORMAL",
        log_100,
        "changes/s",
        ("raw batched rows", raw_batch),
        0.20,
    ));
    figures.push(Figure::compared(
        "bus: 100 changes per transaction, NORMAL, vs the same tables by hand",
        log_100,
        "changes/s",
        ("by hand", hand_batch),
    ));
    figures.push(Figure::at_least(
        "bus: 1,000 changes per transaction, NORMAL",
        log_1000,
        "changes/s",
        ("raw batched rows", raw_batch),
        0.20,
    ));

    settle();
    eprintln!("bus: end-to-end drain…");
    let e2e_rig = Rig::new(&dir.join("e2e"), &lib, Durability::Normal, 3, "", true)?;
    let e2e = bus::end_to_end(&e2e_rig, 60_000, &mut n)?;
    drop(e2e_rig);
    figures.push(Figure::at_least(
        "bus: end-to-end drain (log, fan-out, deliver, delete)",
        e2e,
        "tasks/s",
        ("raw batched rows", raw_batch),
        0.12,
    ));
    figures.push(Figure::at_least(
        "bus: end-to-end drain vs the bare queue cycle",
        e2e,
        "tasks/s",
        ("raw queue cycle", raw_queue),
        0.75,
    ));
    figures.push(Figure::compared(
        "bus: end-to-end drain vs the queue cycle on the same tables by hand",
        e2e,
        "tasks/s",
        ("by hand", hand_queue),
    ));
    let batched = WorkerConfig { delete_batch: 256, ..WorkerConfig::default() };
    settle();
    let batched_rig = Rig::build(
        &dir.join("e2e-batched"),
        &lib,
        RigConfig { workers: batched, ..RigConfig::new(Durability::Normal, 3, "", true) },
    )?;
    let e2e_batched = bus::end_to_end(&batched_rig, 60_000, &mut n)?;
    drop(batched_rig);
    figures.push(Figure::at_least(
        "bus: end-to-end drain, delete_batch = 256 (≤ 256 repeats after a crash)",
        e2e_batched,
        "tasks/s",
        ("raw queue cycle", raw_queue),
        0.75,
    ));
    figures.push(Figure::compared(
        "bus: end-to-end drain, delete_batch = 256, vs the queue cycle on the same tables by hand",
        e2e_batched,
        "tasks/s",
        ("by hand", hand_queue),
    ));

    settle();
    eprintln!("bus: end-to-end drain, connectors in their own processes…");
    let process_rig = Rig::build(
        &dir.join("e2e-process"),
        &lib,
        RigConfig { isolation: Isolation::Process, ..RigConfig::new(Durability::Normal, 3, "", true) },
    )?;
    let e2e_process = bus::end_to_end(&process_rig, 60_000, &mut n)?;
    drop(process_rig);
    figures.push(Figure::at_least(
        "bus: end-to-end drain, process isolation, vs in-process",
        e2e_process,
        "tasks/s",
        ("in-process end-to-end", e2e),
        0.90,
    ));
    settle();
    eprintln!("raw: round trips between two processes…");
    let ipc_one = raw_ipc::round_trips(1, 20_000)?;
    settle();
    let ipc_three = raw_ipc::round_trips(3, 20_000)?;
    figures.push(Figure::plain("raw: round trips between two processes over a Unix socket, one pair", ipc_one, "/s"));
    figures.push(Figure::plain(
        "raw: round trips between two processes over a Unix socket, three pairs at once, per pair",
        ipc_three,
        "/s",
    ));
    // Each connector delivers every task: the time a task takes per
    // connector is 1 / (tasks/s), in either mode.
    figures.push(Figure::compared(
        "bus: what process isolation adds to each task's delivery, vs one raw round trip (one pair)",
        1e6 / e2e_process - 1e6 / e2e,
        "µs",
        ("raw round trip", 1e6 / ipc_one),
    ));
    settle();
    let batched_process_rig = Rig::build(
        &dir.join("e2e-process-batched"),
        &lib,
        RigConfig { isolation: Isolation::Process, batch_size: 16, ..RigConfig::new(Durability::Normal, 3, "", true) },
    )?;
    let e2e_process_batched = bus::end_to_end(&batched_process_rig, 60_000, &mut n)?;
    drop(batched_process_rig);
    figures.push(Figure::at_least(
        "bus: end-to-end drain, process isolation, 16 tasks per request (≤ 16 repeats after a crash), vs in-process",
        e2e_process_batched,
        "tasks/s",
        ("in-process end-to-end", e2e),
        0.90,
    ));

    settle();
    eprintln!("bus: latency…");
    let idle = Rig::new(&dir.join("latency"), &lib, Durability::Normal, 1, "signal", true)?;
    let lat = bus::latency(&idle, 400, &mut n)?;
    drop(idle);
    let idle_process = Rig::build(
        &dir.join("latency-process"),
        &lib,
        RigConfig { isolation: Isolation::Process, ..RigConfig::new(Durability::Normal, 1, "signal", true) },
    )?;
    let lat_process = bus::latency(&idle_process, 400, &mut n)?;
    drop(idle_process);
    let raw_commit_ms = 1000.0 / raw_full;
    let p50 = bus::percentile(&lat, 0.50).as_secs_f64() * 1000.0;
    let p99 = bus::percentile(&lat, 0.99).as_secs_f64() * 1000.0;
    figures.push(Figure::at_most(
        "bus: change → connector call, p50",
        p50,
        "ms",
        ("raw FULL commit", raw_commit_ms),
        3.0,
    ));
    figures.push(Figure::at_most(
        "bus: change → connector call, p99",
        p99,
        "ms",
        ("raw FULL commit", raw_commit_ms),
        10.0,
    ));
    let p50_process = bus::percentile(&lat_process, 0.50).as_secs_f64() * 1000.0;
    let p99_process = bus::percentile(&lat_process, 0.99).as_secs_f64() * 1000.0;
    figures.push(Figure::compared(
        "bus: change → connector call, p50, process isolation",
        p50_process,
        "ms",
        ("in-process p50", p50),
    ));
    figures.push(Figure::compared(
        "bus: change → connector call, p99, process isolation",
        p99_process,
        "ms",
        ("in-process p99", p99),
    ));

    settle();
    eprintln!("bus: a connector that waits 20 ms per call…");
    figures.extend(slow_figures(&slow::run(dir, &lib, o.quick, &mut n)?));

    settle();
    eprintln!("bus: reinitialization…");
    let (noticed, reinit) = reinitialization(&dir.join("reinit"), &lib)?;
    figures.push(Figure::below("bus: registry edit noticed after commit", noticed, "ms", 1000.0));
    figures.push(Figure::below("bus: 20 connectors reinitialized", reinit, "ms", 50.0));

    eprintln!("bus: {} tasks queued…", o.backlog);
    let backlog = Rig::new(&dir.join("backlog"), &lib, Durability::Normal, 3, "", false)?;
    let fill_start = Instant::now();
    let mut filled = 0;
    while filled < o.backlog {
        let batch = 1000.min(o.backlog - filled) as usize;
        let changes = (0..batch).map(|i| bus::user(n + i as u64)).collect();
        n += batch as u64;
        backlog.pipeline.apply_all(changes, None)?;
        filled += batch as u64;
    }
    eprintln!("  queued in {:.1} s", fill_start.elapsed().as_secs_f64());
    let conn = backlog.db.connect()?;
    let time = |f: &dyn Fn() -> Result<usize>| -> Result<f64> {
        let start = Instant::now();
        let rows = f()?;
        anyhow::ensure!(rows > 0, "an empty page");
        Ok(start.elapsed().as_secs_f64() * 1000.0)
    };
    eprintln!("  paging…");
    let first_page =
        time(
            &|| Ok(bus_core::queue_admin::list(&conn, bus_core::queue::Direction::Outgoing, None, (0, 0), 50)?.len()),
        )?;
    let deep = (o.backlog as i64) / 2;
    let deep_page = time(&|| {
        Ok(bus_core::queue_admin::list(&conn, bus_core::queue::Direction::Outgoing, None, (deep, 0), 50)?.len())
    })?;
    let connector_page = time(&|| {
        Ok(bus_core::queue_admin::list(&conn, bus_core::queue::Direction::Outgoing, Some(2), (deep, 0), 50)?.len())
    })?;
    figures.push(Figure::below(&format!("bus: list page, {} queued, first page", o.backlog), first_page, "ms", 100.0));
    figures.push(Figure::below(&format!("bus: list page, {} queued, middle page", o.backlog), deep_page, "ms", 100.0));
    figures.push(Figure::below(
        &format!("bus: list page, {} queued, one connector", o.backlog),
        connector_page,
        "ms",
        100.0,
    ));
    settle();
    eprintln!("  draining…");
    let drain_relations = (o.backlog as i64 * 3 / 10).min(300_000);
    let backlog_rate = bus::drain(&backlog, drain_relations)?;
    drop(conn);
    drop(backlog);
    figures.push(Figure::at_least(
        &format!("bus: drain with {} queued", o.backlog),
        backlog_rate,
        "tasks/s",
        ("bus empty-queue drain", e2e),
        0.50,
    ));
    figures.push(Figure::below("bus: peak RSS of the process", peak_rss_mb(), "MB", 150.0));

    println!("{}", report::table(&figures));
    std::fs::create_dir_all(&o.out)?;
    std::fs::write(o.out.join("latest.json"), serde_json::to_string_pretty(&figures)?)?;
    let groups = vec![
        (
            "One change per transaction (FULL)",
            vec![
                ("raw 1-row FULL".to_string(), raw_full, "tx/s".to_string()),
                ("by hand on the bus's tables".into(), hand_full, "changes/s".into()),
                ("bus, fan-out to 3".into(), log_full, "changes/s".into()),
            ],
        ),
        (
            "Batched logging (NORMAL)",
            vec![
                ("raw rows, 1,000 per tx".into(), raw_batch, "rows/s".into()),
                ("by hand on the bus's tables, 100 per tx".into(), hand_batch, "changes/s".into()),
                ("bus, 100 per tx".into(), log_100, "changes/s".into()),
                ("bus, 1,000 per tx".into(), log_1000, "changes/s".into()),
            ],
        ),
        (
            "Queue throughput",
            vec![
                ("raw queue cycle".into(), raw_queue, "tasks/s".into()),
                ("queue cycle by hand on the bus's tables".into(), hand_queue, "tasks/s".into()),
                ("bus end-to-end".into(), e2e, "tasks/s".into()),
                ("bus end-to-end, delete_batch 256".into(), e2e_batched, "tasks/s".into()),
                (format!("bus with {} queued", o.backlog), backlog_rate, "tasks/s".into()),
            ],
        ),
        (
            "Latency change → connector",
            vec![
                ("raw FULL commit".into(), raw_commit_ms, "ms".into()),
                ("bus p50".into(), p50, "ms".into()),
                ("bus p99".into(), p99, "ms".into()),
            ],
        ),
    ];
    std::fs::write(o.out.join("latest.svg"), report::svg(&groups))?;
    eprintln!("wrote {}/latest.json and latest.svg", o.out.display());
    Ok(())
}

/// The slow-connector figures, each against the serial rate (or the limit).
fn slow_figures(s: &slow::Slow) -> Vec<Figure> {
    let serial = ("one call at a time", s.serial);
    vec![
        Figure::plain("bus: 20 ms connector, one call at a time (connector ordering)", s.serial, "tasks/s"),
        Figure::at_least(
            "bus: 20 ms connector, object ordering, 16 calls at once",
            s.object_16,
            "tasks/s",
            serial,
            12.0,
        ),
        Figure::at_least(
            "bus: 20 ms connector, object ordering, 64 calls at once",
            s.object_64,
            "tasks/s",
            serial,
            40.0,
        ),
        Figure::at_least(
            "bus: 20 ms connector, object ordering, 16 calls at once, process isolation",
            s.object_16_process,
            "tasks/s",
            serial,
            12.0,
        ),
        Figure::at_least("bus: 20 ms per batch of 100 (the SDK batch method)", s.batch_100, "tasks/s", serial, 50.0),
        Figure::at_least("bus: rate limit 100 calls/s, measured", s.rate_100, "calls/s", ("the limit", 100.0), 0.95),
        Figure::at_most(
            "bus: rate limit 100 calls/s, measured, at most",
            s.rate_100,
            "calls/s",
            ("the limit", 100.0),
            1.05,
        ),
    ]
}

/// The same rows a change writes, by hand on the bus's tables: FULL changes
/// per second one per transaction, changes per second 100 per transaction,
/// and tasks per second through the queue cycle.
fn hand_written(dir: &std::path::Path, budget: Duration) -> Result<(f64, f64, f64)> {
    settle();
    let full = schema::changes(&dir.join("hand-full"), Durability::Full, 1, budget)?;
    settle();
    let batch = schema::changes(&dir.join("hand-batch"), Durability::Normal, 100, budget)?;
    settle();
    let queue = schema::queue_cycle(&dir.join("hand-queue"), 60_000)?;
    Ok((full, batch, queue))
}

/// Median over 5 edits: how long until the watcher noticed a registry edit,
/// and how long reinitializing 20 connectors took.
fn reinitialization(dir: &std::path::Path, lib: &std::path::Path) -> Result<(f64, f64)> {
    let rig = Rig::build(
        dir,
        lib,
        RigConfig { watch: Some(Duration::from_millis(250)), ..RigConfig::new(Durability::Normal, 20, "", false) },
    )?;
    let mut noticed = Vec::new();
    let mut took = Vec::new();
    let sql = rig.db.connect()?;
    for i in 0..5 {
        let generation = rig.manager.current().generation;
        sql.execute(
            "UPDATE Integration_Connector SET ConnectorDisplayName = $1 WHERE ConnectorName = 'Noop1'",
            [format!("Noop {i}")],
        )?;
        let committed = Instant::now();
        let set = loop {
            let set = rig.manager.current();
            if set.generation > generation {
                break set;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let started = set.started.context("a reload has a start")?;
        noticed.push(started.saturating_duration_since(committed).as_secs_f64() * 1000.0);
        took.push(set.took.as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(rig);
    noticed.sort_by(f64::total_cmp);
    took.sort_by(f64::total_cmp);
    Ok((noticed[2], took[2]))
}
