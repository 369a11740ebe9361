//! `bus-daemon settings get|set`: the five settings of the bus.

use crate::audit::{self, Action};
use anyhow::{bail, Result};
use bus_core::engine::Store as Bus;
use bus_core::eventlog::Actor;
use bus_core::settings::{self, SettingsPatch, KEYS};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Show the settings.
    Get {
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Change settings: `bus-daemon settings set process_outgoing=false log_incoming=true`.
    Set {
        /// `name=true|false` pairs; names: enabled, log_incoming, process_incoming, log_outgoing, process_outgoing.
        #[arg(required = true)]
        assignments: Vec<String>,
    },
}

pub fn run(bus: &Bus, command: SettingsCommand) -> Result<()> {
    let mut conn = bus.db.connect()?;
    match command {
        SettingsCommand::Get { json } => {
            let s = settings::read(&conn)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", settings::describe(&s));
            }
        }
        SettingsCommand::Set { assignments } => {
            let names: Vec<&str> = KEYS.iter().map(|(n, _)| *n).collect();
            let mut patch = SettingsPatch::default();
            for a in &assignments {
                let Some((name, value)) = a.split_once('=') else {
                    bail!("`{a}` is not `name=value`; names: {}", names.join(", "));
                };
                let value = match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "on" | "yes" | "1" => true,
                    "false" | "off" | "no" | "0" => false,
                    other => bail!("`{other}` is not true or false (in `{a}`)"),
                };
                if !patch.set(name.trim(), value) {
                    bail!("`{}` is not a setting; settings: {}", name.trim(), names.join(", "));
                }
            }
            let before = settings::read(&conn)?;
            let s = settings::update(&mut conn, &patch)?;
            let changed = settings::changes(&before, &s);
            if !changed.is_empty() {
                audit::record(
                    &bus.events,
                    &Actor::cli(),
                    Action::UpdateSettings,
                    &format!("Changed settings: {changed}"),
                );
            }
            print!("{}", settings::describe(&s));
        }
    }
    Ok(())
}
