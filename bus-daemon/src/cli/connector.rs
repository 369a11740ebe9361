//! `bus-daemon connector …`: edit the registry. Works while a daemon runs:
//! the daemon notices the edit and reinitializes every connector.

use crate::audit::{self, Action};
use anyhow::Result;
use bus_core::delivery::Ordering;
use bus_core::engine::Store as Bus;
use bus_core::eventlog::Actor;
use bus_core::registry::{ConnectorPatch, ConnectorRow, IsolationSetting, NewConnector, QueuedTasks};
use clap::Subcommand;

/// An option that sets a value or, with `default`, goes back to the default.
#[derive(Debug, Clone, Copy)]
pub struct OrDefault<T>(Option<T>);

impl<T: std::str::FromStr> std::str::FromStr for OrDefault<T>
where
    T::Err: std::fmt::Display,
{
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "default" | "none" => Ok(OrDefault(None)),
            value => value.parse().map(|v| OrDefault(Some(v))).map_err(|e| format!("{e} (or `default`)")),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ConnectorCommand {
    /// List the registered connectors.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one connector.
    Show { name: String },
    /// Register a connector.
    Add {
        /// The code name (must equal the name the connector reports).
        #[arg(long)]
        name: String,
        #[arg(long)]
        display_name: Option<String>,
        /// The library in the connectors folder, e.g. `sample_connector`.
        #[arg(long)]
        assembly: String,
        /// The class the library exports.
        #[arg(long)]
        class: String,
        /// Enable it right away.
        #[arg(long)]
        enabled: bool,
        /// The connector's own settings text.
        #[arg(long, default_value = "")]
        config_text: String,
        /// Where it runs: process, in-process, or default (bus.toml's `isolation`).
        #[arg(long, default_value = "default")]
        isolation: IsolationSetting,
        #[command(flatten)]
        delivery: DeliveryArgs,
    },
    /// Change a connector; options not given stay as they are.
    Edit {
        name: String,
        #[arg(long)]
        new_name: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        assembly: Option<String>,
        #[arg(long)]
        class: Option<String>,
        #[arg(long)]
        enabled: Option<bool>,
        #[arg(long)]
        config_text: Option<String>,
        /// Where it runs: process, in-process, or default (bus.toml's `isolation`).
        #[arg(long)]
        isolation: Option<IsolationSetting>,
        #[command(flatten)]
        delivery: DeliveryArgs,
    },
    /// Unregister a connector.
    Delete {
        name: String,
        /// Delete it although tasks are queued for it (they are discarded).
        #[arg(long)]
        discard_queue: bool,
    },
    /// Enable a connector.
    Enable { name: String },
    /// Disable a connector.
    Disable { name: String },
    /// Hand a build the tasks of a `task export` file, in a process of its
    /// own, and print what each call answers; writes nothing.
    Replay(super::replay::ReplayArgs),
    /// Create a connector crate that builds as it is, with a README and a
    /// test (writes nothing else).
    New(super::scaffold::NewArgs),
}

/// How the connector's outgoing tasks are delivered (`default` goes back to
/// the default when editing).
#[derive(Debug, clap::Args)]
pub struct DeliveryArgs {
    /// connector (the specification's order; the default) or object
    /// (parallel calls for tasks that share no object).
    #[arg(long)]
    ordering: Option<Ordering>,
    /// Calls in flight at once with object ordering, 1–256 (default 1).
    #[arg(long)]
    concurrency: Option<OrDefault<i64>>,
    /// Tasks per delivery request, 1–1000 (default: bus.toml's batch_size).
    #[arg(long)]
    batch_size: Option<OrDefault<i64>>,
    /// Calls per second at most (default: none).
    #[arg(long)]
    rate_limit: Option<OrDefault<f64>>,
}

fn print_row(row: &ConnectorRow) {
    println!("code name:     {}", row.name);
    println!("display name:  {}", row.display_name);
    println!("assembly:      {}", row.assembly_name);
    println!("class:         {}", row.class_name);
    println!("enabled:       {}", row.enabled);
    println!("isolation:     {}", row.isolation);
    println!("ordering:      {}", row.ordering);
    println!("concurrency:   {}", row.concurrency.map_or_else(|| "default (1)".into(), |n| n.to_string()));
    println!("batch size:    {}", row.batch_size.map_or_else(|| "default".into(), |n| n.to_string()));
    println!("rate limit:    {}", row.rate_limit.map_or_else(|| "none".into(), |r| format!("{r} calls/s")));
    println!("last modified: {}", row.last_modified);
    if !row.config.is_empty() {
        println!("config:        {}", row.config);
    }
}

pub fn run(bus: &Bus, command: ConnectorCommand) -> Result<()> {
    let registry = &bus.registry;
    match command {
        ConnectorCommand::List { json } => {
            let rows = registry.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(9);
            println!("{:<width$}  {:<7}  {:<24}  {:<28}  DISPLAY NAME", "CODE NAME", "ENABLED", "ASSEMBLY", "CLASS");
            for r in &rows {
                println!(
                    "{:<width$}  {:<7}  {:<24}  {:<28}  {}",
                    r.name,
                    if r.enabled { "yes" } else { "no" },
                    r.assembly_name,
                    r.class_name,
                    r.display_name
                );
            }
        }
        ConnectorCommand::Show { name } => print_row(&registry.get(&name)?),
        ConnectorCommand::Add { name, display_name, assembly, class, enabled, config_text, isolation, delivery } => {
            let row = registry.add(&NewConnector {
                name,
                display_name,
                assembly_name: assembly,
                class_name: class,
                enabled,
                config: config_text,
                isolation,
                ordering: delivery.ordering.unwrap_or_default(),
                concurrency: delivery.concurrency.and_then(|v| v.0),
                batch_size: delivery.batch_size.and_then(|v| v.0),
                rate_limit: delivery.rate_limit.and_then(|v| v.0),
            })?;
            audit::record(
                &bus.events,
                &Actor::cli(),
                Action::CreateConnector,
                &format!("Registered connector `{}`", row.name),
            );
            println!("registered connector `{}`", row.name);
        }
        ConnectorCommand::Edit {
            name,
            new_name,
            display_name,
            assembly,
            class,
            enabled,
            config_text,
            isolation,
            delivery,
        } => {
            let patch = ConnectorPatch {
                name: new_name,
                display_name,
                assembly_name: assembly,
                class_name: class,
                enabled,
                config: config_text,
                isolation,
                ordering: delivery.ordering,
                concurrency: delivery.concurrency.map(|v| v.0),
                batch_size: delivery.batch_size.map(|v| v.0),
                rate_limit: delivery.rate_limit.map(|v| v.0),
            };
            if patch == ConnectorPatch::default() {
                anyhow::bail!("nothing to change: give at least one of --new-name, --display-name, --assembly, --class, --enabled, --config-text, --isolation, --ordering, --concurrency, --batch-size, --rate-limit");
            }
            let before = registry.get(&name)?;
            let row = registry.update(&name, &patch)?;
            let what = format!("Changed connector `{name}`: {}", patch.describe(&before));
            audit::record(&bus.events, &Actor::cli(), Action::UpdateConnector, &what);
            println!("updated connector `{}`", row.name);
        }
        ConnectorCommand::Delete { name, discard_queue } => {
            let queue = if discard_queue { QueuedTasks::Discard } else { QueuedTasks::Keep };
            let discarded = registry.delete(&name, queue)?;
            let what = format!("Deleted connector `{name}` ({discarded} queued task relation(s) discarded)");
            audit::record(&bus.events, &Actor::cli(), Action::DeleteConnector, &what);
            println!("deleted connector `{name}` ({discarded} queued task relation(s) discarded)");
        }
        ConnectorCommand::Enable { name } => {
            let patch = ConnectorPatch { enabled: Some(true), ..Default::default() };
            let before = registry.get(&name)?;
            registry.update(&name, &patch)?;
            let what = format!("Changed connector `{name}`: {}", patch.describe(&before));
            audit::record(&bus.events, &Actor::cli(), Action::UpdateConnector, &what);
            println!("enabled connector `{name}`");
        }
        ConnectorCommand::Disable { name } => {
            let patch = ConnectorPatch { enabled: Some(false), ..Default::default() };
            let before = registry.get(&name)?;
            registry.update(&name, &patch)?;
            let what = format!("Changed connector `{name}`: {}", patch.describe(&before));
            audit::record(&bus.events, &Actor::cli(), Action::UpdateConnector, &what);
            println!("disabled connector `{name}`");
        }
        ConnectorCommand::Replay(args) => super::replay::run(args)?,
        ConnectorCommand::New(args) => super::scaffold::run(args)?,
    }
    Ok(())
}
