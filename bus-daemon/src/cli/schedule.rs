//! `bus-daemon schedule list|run|set`: scheduled tasks. `run` makes the task
//! due now, so the running daemon executes it within a second.

use crate::audit::{self, Action};
use anyhow::Result;
use bus_core::engine::Store as Bus;
use bus_core::eventlog::Actor;
use bus_core::scheduler;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// List the scheduled tasks with their last and next run.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Ask the running daemon to execute a task now.
    Run { name: String },
    /// Change a task's interval or switch it on or off.
    Set {
        name: String,
        #[arg(long)]
        interval_seconds: Option<i64>,
        #[arg(long)]
        enabled: Option<bool>,
    },
}

pub fn run(bus: &Bus, command: ScheduleCommand) -> Result<()> {
    let conn = bus.db.connect()?;
    match command {
        ScheduleCommand::List { json } => {
            let tasks = scheduler::list(&conn)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tasks)?);
                return Ok(());
            }
            println!(
                "{:<34} {:<8} {:<26} {:<26} {:>10}  LAST RESULT",
                "NAME", "EVERY", "LAST RUN", "NEXT RUN", "EXECUTIONS"
            );
            for t in tasks {
                println!(
                    "{:<34} {:<8} {:<26} {:<26} {:>10}  {}",
                    t.name,
                    format!("{}s", t.interval_seconds),
                    t.last_run.as_deref().unwrap_or("-"),
                    if t.enabled { t.next_run.as_str() } else { "(disabled)" },
                    t.executions,
                    t.last_result.as_deref().unwrap_or("-")
                );
            }
        }
        ScheduleCommand::Run { name } => {
            scheduler::run_soon(&conn, &name)?;
            audit::record(
                &bus.events,
                &Actor::cli(),
                Action::RunScheduledTask,
                &format!("Made scheduled task `{name}` due now"),
            );
            println!("`{name}` is due now; a running daemon executes it within a second");
        }
        ScheduleCommand::Set { name, interval_seconds, enabled } => {
            if interval_seconds.is_none() && enabled.is_none() {
                anyhow::bail!("nothing to change: give --interval-seconds or --enabled");
            }
            let t = scheduler::update(&conn, &name, interval_seconds, enabled)?;
            let what = format!(
                "Changed scheduled task `{name}`: every {} s, {}",
                t.interval_seconds,
                if t.enabled { "enabled" } else { "disabled" }
            );
            audit::record(&bus.events, &Actor::cli(), Action::UpdateScheduledTask, &what);
            println!(
                "`{}` runs every {}s, next at {}{}",
                t.name,
                t.interval_seconds,
                t.next_run,
                if t.enabled { "" } else { " (disabled)" }
            );
        }
    }
    Ok(())
}
