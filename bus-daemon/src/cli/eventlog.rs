//! `bus-daemon eventlog`: read the event log, newest first.

use anyhow::{bail, Result};
use bus_core::engine::Store as Bus;
use bus_core::eventlog::EventQuery;
use clap::Args;

#[derive(Debug, Args)]
pub struct EventlogArgs {
    /// Only events from this source (a connector name, or `Integration bus`).
    #[arg(long)]
    source: Option<String>,
    /// Only events of this type: I, W or E.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Only events with this code.
    #[arg(long)]
    code: Option<String>,
    /// How many events to show.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print JSON instead of lines.
    #[arg(long)]
    json: bool,
}

pub fn run(bus: &Bus, args: EventlogArgs) -> Result<()> {
    if let Some(t) = args.event_type.as_deref() {
        if !matches!(t, "I" | "W" | "E") {
            bail!("--type must be I, W or E, not `{t}`");
        }
    }
    if args.limit == 0 {
        bail!("--limit must be at least 1");
    }
    let events = bus.events.list(&EventQuery {
        source: args.source,
        event_type: args.event_type,
        code: args.code,
        before_id: None,
        limit: args.limit,
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&events)?);
        return Ok(());
    }
    for e in &events {
        let doc = e.document_name.as_deref().map(|d| format!(" [{d}]")).unwrap_or_default();
        println!("{} {} {} {}{}: {}", e.time, e.event_type, e.source, e.code, doc, e.description);
    }
    Ok(())
}
