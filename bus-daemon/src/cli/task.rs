//! `bus-daemon task list|show|export|sync|delete`: the queues. `list`,
//! `show`, `export` and `delete` work on the database; `sync` asks the
//! running daemon (which runs the connectors) over HTTP, in chunks, oldest
//! first, with a progress bar.

use crate::audit::{self, Action};
use anyhow::{bail, Context, Result};
use bus_core::engine::Store as Bus;
use bus_core::eventlog::Actor;
use bus_core::queue::{Direction, Selection};
use bus_core::queue_admin;
use clap::{Args, Subcommand};
use connector_http as http;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct Which {
    /// Task IDs, comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "all", required_unless_present = "all")]
    ids: Vec<i64>,
    /// Every task of the direction (and connector).
    #[arg(long)]
    all: bool,
    /// `outgoing` or `incoming`.
    #[arg(long, default_value = "outgoing")]
    direction: Direction,
    /// Only this connector's tasks.
    #[arg(long)]
    connector: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// List queued tasks, oldest first.
    List {
        /// `outgoing` or `incoming`.
        #[arg(long, default_value = "outgoing")]
        direction: Direction,
        #[arg(long)]
        connector: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one task: its data and synchronization log.
    Show { id: i64 },
    /// Write the tasks queued for a connector as JSON lines, oldest first,
    /// each with the document the connector receives (replay them with
    /// `connector replay`).
    Export {
        #[arg(long)]
        connector: String,
        /// `outgoing` or `incoming`.
        #[arg(long, default_value = "outgoing")]
        direction: Direction,
        /// The file to write (default: standard output); written whole or
        /// not at all.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Process tasks now through the running daemon, in creation order.
    Sync {
        #[command(flatten)]
        which: Which,
        /// The daemon's address (default: `listen` of the configuration).
        #[arg(long)]
        url: Option<String>,
    },
    /// Delete tasks without processing them.
    Delete {
        #[command(flatten)]
        which: Which,
    },
}

fn connector_id(bus: &Bus, name: Option<&str>) -> Result<Option<i64>> {
    Ok(match name {
        Some(n) => Some(bus.registry.get(n)?.id),
        None => None,
    })
}

/// Writes the export to `out` (through a temporary file renamed at the
/// end, so a failed export leaves no half file) or to stdout.
fn export(
    bus: &Bus,
    conn: &bus_core::sql::Conn,
    connector: &str,
    direction: Direction,
    out: Option<std::path::PathBuf>,
) -> Result<()> {
    let id = bus.registry.get(connector)?.id;
    let write_all = |sink: &mut dyn Write| {
        bus_core::export::export_each(conn, id, direction, |task| {
            serde_json::to_writer(&mut *sink, &task)?;
            sink.write_all(b"\n")
        })
    };
    let n = match &out {
        None => {
            let mut stdout = std::io::stdout().lock();
            let n = write_all(&mut stdout)?;
            stdout.flush()?;
            n
        }
        Some(path) => {
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let mut file = tempfile::NamedTempFile::new_in(folder)
                .with_context(|| format!("cannot write in {}", folder.display()))?;
            let n = {
                let mut sink = std::io::BufWriter::new(file.as_file_mut());
                let n = write_all(&mut sink)?;
                sink.flush()?;
                n
            };
            file.as_file().sync_all()?;
            file.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
            n
        }
    };
    eprintln!("exported {n} {} task(s) of connector `{connector}`", direction.name());
    Ok(())
}

/// Draws `[#####.....]  40/100` on stderr.
fn progress(done: usize, total: usize) {
    let width = 30;
    let filled = (done * width).checked_div(total).unwrap_or(width);
    eprint!("\r[{}{}] {done}/{total}", "#".repeat(filled), ".".repeat(width - filled));
    let _ = std::io::stderr().flush();
}

/// How to reach the running daemon: its URL (https when it serves TLS, its
/// certificate then trusted), and its access token.
pub struct Daemon {
    pub url: String,
    pub token: Option<String>,
    pub ca_cert: Option<std::path::PathBuf>,
}

impl Daemon {
    pub fn of(config: &crate::config::Config) -> Daemon {
        let scheme = if config.tls_cert.is_some() { "https" } else { "http" };
        Daemon {
            url: format!("{scheme}://{}", config.listen),
            token: config.auth_token.clone(),
            ca_cert: config.tls_cert.clone(),
        }
    }
}

pub fn run(bus: &Bus, daemon: &Daemon, command: TaskCommand) -> Result<()> {
    let mut conn = bus.db.connect()?;
    match command {
        TaskCommand::List { direction, connector, limit, json } => {
            if limit == 0 {
                bail!("--limit must be at least 1");
            }
            let rows = queue_admin::list(&conn, direction, connector_id(bus, connector.as_deref())?, (0, 0), limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!("{:>8}  {:<24}  {:<10}  {:<20}  {:<8}  TITLE", "TASK", "TIME", "TYPE", "CONNECTOR", "RESULT");
            for r in rows {
                println!(
                    "{:>8}  {:<24}  {:<10}  {:<20}  {:<8}  {}",
                    r.task_id,
                    r.time,
                    r.task_type_code,
                    r.connector,
                    if r.error.is_some() { "Failed" } else { "" },
                    r.title
                );
            }
        }
        TaskCommand::Export { connector, direction, out } => export(bus, &conn, &connector, direction, out)?,
        TaskCommand::Show { id } => {
            let detail = queue_admin::detail(&conn, id)?.with_context(|| format!("there is no task with ID {id}"))?;
            println!("{}", serde_json::to_string_pretty(&detail)?);
        }
        TaskCommand::Delete { which } => {
            let connector = connector_id(bus, which.connector.as_deref())?;
            let selection = if which.all { Selection::All } else { Selection::Ids(which.ids) };
            let action = if which.all { Action::DeleteAll } else { Action::DeleteSelected };
            let n = queue_admin::delete(&mut conn, which.direction, &selection, connector)?;
            let scope = which.connector.as_deref().map_or(String::new(), |c| format!(" of connector `{c}`"));
            let what = format!("Deleted {n} {} task relation(s){scope} from the command line", which.direction.name());
            audit::record(&bus.events, &Actor::cli(), action, &what);
            println!("deleted {n} {} task relation(s)", which.direction.name());
        }
        TaskCommand::Sync { which, url } => {
            let base = url.unwrap_or_else(|| daemon.url.clone());
            let base = base.trim_end_matches('/').to_owned();
            http::check_url(&base).map_err(|e| anyhow::anyhow!(e))?;
            let client = http::Client::new(&http::Options {
                timeout: Duration::from_secs(600),
                ca_cert: daemon.ca_cert.clone(),
            })
            .map_err(|e| anyhow::anyhow!(e))?;
            let headers: Vec<(String, String)> =
                daemon.token.iter().map(|t| ("Authorization".to_owned(), format!("Bearer {t}"))).collect();
            let unreachable = |e: http::Unreachable| anyhow::anyhow!("cannot reach the daemon at {base}: {e}");
            client.send("GET", &format!("{base}/health"), &headers, b"").map_err(unreachable)?;
            let connector = connector_id(bus, which.connector.as_deref())?;
            let ids: Vec<i64> = if which.all {
                let mut ids = Vec::new();
                let mut after = (0, 0);
                loop {
                    let page = queue_admin::list(&conn, which.direction, connector, after, 1000)?;
                    let Some(last) = page.last() else { break };
                    after = (last.task_id, last.sync_id);
                    ids.extend(page.iter().map(|t| t.task_id));
                }
                ids.dedup();
                ids
            } else {
                let mut ids = which.ids;
                ids.sort_unstable();
                ids.dedup();
                ids
            };
            let path = format!("{base}/api/tasks/{}/synchronize", which.direction.name());
            let (mut done, mut failed) = (0, 0);
            progress(0, ids.len());
            for chunk in ids.chunks(100) {
                let mut body = serde_json::json!({ "ids": chunk });
                if let Some(c) = &which.connector {
                    body["connector"] = serde_json::json!(c);
                }
                let bytes = serde_json::to_vec(&body)?;
                let r = client.send("POST", &path, &headers, &bytes).map_err(unreachable)?;
                let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
                if r.status != 200 {
                    eprintln!();
                    bail!("the daemon refused: {}", answer["error"].as_str().unwrap_or(&r.body));
                }
                failed += answer["failed"].as_u64().unwrap_or(0) as usize;
                done += chunk.len();
                progress(done, ids.len());
            }
            eprintln!();
            println!("synchronized {done} {} task(s); {failed} attempt(s) did not succeed", which.direction.name());
        }
    }
    Ok(())
}
