//! `bus-daemon connector replay`: a `task export` file handed to a
//! connector build in a process of its own, one line per task on stdout
//! (`task_id`, result, message), the connector's event-log writes on
//! stderr; exits non-zero when any task was not `Ok`. Needs no
//! configuration and no database, and writes nothing.

use anyhow::{bail, Context, Result};
use bus_core::replay::{self, ReplayTarget, Replayed};
use connector_abi::IntegrationProcessResult;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The connector library to run (`.so`/`.dll`), anywhere.
    #[arg(long)]
    library: PathBuf,
    /// The class to create.
    #[arg(long)]
    class: String,
    /// The connector's configuration text (`ConnectorConfig`).
    #[arg(long, default_value = "")]
    config_text: String,
    /// The deadline of each call, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    call_timeout_ms: u64,
    /// A file written by `bus-daemon task export`.
    file: PathBuf,
}

pub fn run(args: ReplayArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let tasks = replay::read_tasks(&text).with_context(|| format!("{} is not a task export", args.file.display()))?;
    let scratch = tempfile::tempdir().context("cannot make a folder for the library's copy")?;
    let target = ReplayTarget {
        library: args.library,
        class: args.class,
        config: args.config_text,
        host_program: std::env::current_exe().context("cannot find this program to run the connector")?,
        scratch: scratch.path().to_owned(),
        call_timeout: Duration::from_millis(args.call_timeout_ms),
    };
    let events = |e: &connector_abi::protocol::LogEventRequest| {
        eprintln!("event {:?} {}: {}", e.event_type, e.code, e.description);
    };
    let print = |r: &Replayed| {
        let message = r.message.as_deref().unwrap_or("").replace(['\n', '\t'], " ");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}\t{:?}\t{message}", r.task_id, r.result);
        let _ = out.flush();
    };
    let replayed = replay::replay(&target, &tasks, events, print)?;
    let not_ok = replayed.iter().filter(|r| r.result != IntegrationProcessResult::Ok).count();
    if not_ok > 0 {
        bail!("{not_ok} of {} task(s) were not Ok", replayed.len());
    }
    eprintln!("replayed {} task(s), every one Ok", replayed.len());
    Ok(())
}
