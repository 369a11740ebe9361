//! `bus-daemon`: the integration bus daemon and its management commands.

mod app;
mod audit;
mod cli;
mod config;
mod http;
mod serve;

use anyhow::Result;
use clap::{Parser, Subcommand};
use config::{Config, Overrides};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "bus-daemon",
    version,
    about = "The integration bus: keeps the content store in sync with external systems through connectors."
)]
struct Cli {
    /// The configuration file (default: ./bus.toml when it exists, else built-in defaults).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The database: a SQLite file, or a `postgres://` URL (overrides the
    /// configuration).
    #[arg(long, global = true)]
    database: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: load the connectors, watch the registry, serve HTTP.
    Serve {
        /// The HTTP listen address (overrides the configuration).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// The connectors folder (overrides the configuration).
        #[arg(long)]
        connectors_dir: Option<PathBuf>,
    },
    /// Manage the connector registry.
    #[command(subcommand)]
    Connector(cli::connector::ConnectorCommand),
    /// Read the event log.
    Eventlog(cli::eventlog::EventlogArgs),
    /// Show or change the settings.
    #[command(subcommand)]
    Settings(cli::settings::SettingsCommand),
    /// List, run or change scheduled tasks.
    #[command(subcommand)]
    Schedule(cli::schedule::ScheduleCommand),
    /// List, show, synchronize or delete queued tasks.
    #[command(subcommand)]
    Task(cli::task::TaskCommand),
    /// Copy this SQLite bus into an empty PostgreSQL database (`--to postgres://…`).
    Migrate(cli::migrate::MigrateArgs),
    /// Run one connector in this process for a daemon that started it
    /// (`process` isolation); speaks frames on stdin and stdout.
    #[command(name = "connector-host", hide = true)]
    ConnectorHost,
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::ConnectorHost = cli.command {
        return Ok(bus_core::connector_host::run_host()?);
    }
    let config_path = cli.config.clone().or_else(|| {
        let default = PathBuf::from("bus.toml");
        default.exists().then_some(default)
    });
    let mut overrides = Overrides { database: cli.database.clone(), ..Default::default() };
    match cli.command {
        Command::Serve { listen, connectors_dir } => {
            init_tracing("info");
            overrides.listen = listen;
            overrides.connectors_dir = connectors_dir;
            let config = Config::load(config_path.as_deref(), &overrides)?;
            serve::run(config)
        }
        Command::Migrate(args) => {
            init_tracing("warn");
            cli::migrate::run(&Config::load(config_path.as_deref(), &overrides)?, args)
        }
        // Outside any bus: no configuration, no database.
        Command::Connector(cli::connector::ConnectorCommand::Replay(args)) => {
            init_tracing("warn");
            cli::replay::run(args)
        }
        Command::Connector(cli::connector::ConnectorCommand::New(args)) => cli::scaffold::run(args),
        command => {
            init_tracing("warn");
            let config = Config::load(config_path.as_deref(), &overrides)?;
            let bus = app::open_store(&config)?;
            match command {
                Command::Task(c) => cli::task::run(&bus, &cli::task::Daemon::of(&config), c),
                Command::Connector(c) => cli::connector::run(&bus, c),
                Command::Eventlog(a) => cli::eventlog::run(&bus, a),
                Command::Settings(c) => cli::settings::run(&bus, c),
                Command::Schedule(c) => cli::schedule::run(&bus, c),
                Command::Serve { .. } | Command::ConnectorHost | Command::Migrate(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}
