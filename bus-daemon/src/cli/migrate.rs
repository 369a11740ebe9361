//! `bus-daemon migrate --to postgres://…`: copies the configured SQLite bus
//! into an empty PostgreSQL database (registry, settings, schedules,
//! content, queues in their order, sync log, event log), in one
//! transaction; refuses a target that is not empty.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use bus_core::db::migrate;
use bus_core::db::{Database, Location};
use clap::Args;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The empty PostgreSQL database to copy into: `postgres://user@host:port/dbname`.
    #[arg(long)]
    to: String,
}

pub fn run(config: &Config, args: MigrateArgs) -> Result<()> {
    let source = config.database_location();
    let Some(file) = source.file() else {
        bail!("the configured database {source} is not a SQLite file; migrate copies a SQLite bus into PostgreSQL")
    };
    if !file.exists() {
        bail!("the SQLite database {} does not exist; nothing to migrate", file.display());
    }
    let target = Location::parse(&args.to);
    if !target.is_postgres() {
        bail!("--to must be a postgres:// or postgresql:// URL, not `{}`", args.to);
    }
    let (db, _) = Database::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let copied = migrate::to_postgres(&db, &target)?;
    println!("copied {} into {target}:", file.display());
    for (table, rows) in &copied.tables {
        println!("  {table:<28} {rows:>8} row(s)");
    }
    println!("point `database` in bus.toml at {target} to run on it");
    Ok(())
}
