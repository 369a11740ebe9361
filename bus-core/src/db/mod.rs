//! The SQLite database: opening connections with the bus's pragmas, and the
//! schema migrations.

pub mod holder;
mod location;
pub mod migrate;
mod postgres;

pub use location::Location;

use crate::checkpoint::Checkpointer;
use crate::sql::{Begin, Conn, Dialect, SqlError};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;

/// The size (bytes) a checkpointed WAL file is truncated to.
const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// How long a connection waits for another writer before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum DbError {
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open the database {location}: {source}")]
    Open { location: Location, source: SqlError },
    #[error("cannot migrate the database {location} to schema version {version}: {source}")]
    Migrate { location: Location, version: u32, source: SqlError },
    #[error(
        "the database {location} has schema version {found}, newer than this daemon knows ({known}); upgrade the daemon"
    )]
    TooNew { location: Location, found: u32, known: u32 },
    #[error(
        "the database {location} already holds {tables} table(s) but no bus schema; give the bus a database of its own"
    )]
    Foreign { location: Location, tables: i64 },
    #[error("cannot start the WAL checkpoint thread: {0}")]
    Checkpointer(String),
    #[error("cannot seed the new database: {0}; nothing was created")]
    Seed(String),
    #[error("database error: {0}")]
    Sql(#[from] SqlError),
    #[error("the database {location} is in use by {holder}; stop it first")]
    Held { location: Location, holder: String },
    #[error("cannot lock {path}: {source}")]
    Hold { path: PathBuf, source: std::io::Error },
    #[error("all {lent} database sessions this daemon lends out are in use (waited {} ms for one)", .waited.as_millis())]
    Exhausted { lent: usize, waited: std::time::Duration },
}

/// How hard a commit waits for the disk (SQLite's `synchronous`). In WAL
/// mode `Normal` loses nothing when the process dies, only (possibly) the
/// last commits when the machine loses power; `Full` loses nothing either way.
/// On PostgreSQL `Normal` lets only the record of a delivery (with the
/// connector state that call wrote) commit without waiting for the
/// server's disk (a server crash may repeat the last deliveries; a daemon's
/// death loses nothing); every other commit waits as the server says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    #[default]
    Normal,
    Full,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// One writer at a time inside the process, on one shared connection.
/// SQLite lets one transaction write at a time anyway; queueing here instead
/// of in SQLite's busy handler (which sleeps and retries) keeps a busy queue
/// drain from starving the writers of changes. Writing through one
/// connection keeps its page cache warm: a connection that finds another
/// connection's commit in the WAL drops its whole cache and reads every page
/// again. Other processes still meet the busy timeout.
#[derive(Debug, Clone)]
pub(crate) struct WriteGate(Arc<Mutex<Conn>>, Option<Location>);

/// Statements the shared writing connection keeps prepared: every write
/// path of the process uses it.
const WRITER_STATEMENTS: usize = 128;

impl WriteGate {
    /// Waits for the turn to write; the turn, and with it the writing
    /// connection, ends when the guard drops.
    pub(crate) fn enter(&self) -> MutexGuard<'_, Conn> {
        let mut conn = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(location) = &self.1 {
            revive(location, &mut conn);
        }
        conn
    }
}

/// A handle on the bus database; hands out configured connections.
#[derive(Debug, Clone)]
pub struct Database {
    location: Location,
    durability: Durability,
    gate: WriteGate,
    max_pages: Option<u64>,
    /// Idle PostgreSQL connections (a SQLite connection is cheap to open
    /// and is never pooled).
    idle: IdlePool,
    /// PostgreSQL connections lent out now (see [`MAX_LENT`]).
    lending: Arc<Lending>,
    /// Checkpoints the WAL while any handle on the database lives.
    _checkpointer: Option<Arc<Checkpointer>>,
}

/// Idle PostgreSQL connections, each with the moment it was given back.
type IdlePool = Arc<Mutex<Vec<(Conn, std::time::Instant)>>>;

/// At most this many PostgreSQL connections are lent out at once (besides
/// the few long-lived ones: the write gate, the liveness lock, the event
/// log, the incoming logger, the listener): a burst of requests or workers
/// waits for one instead of opening sessions until the server refuses.
const MAX_LENT: usize = 64;
/// How long a borrower waits for a lent connection to come back.
const LEND_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How many connections are lent out, and a signal when one comes back.
#[derive(Debug, Default)]
struct Lending {
    lent: Mutex<usize>,
    returned: std::sync::Condvar,
}

impl Lending {
    fn take(self: &Arc<Self>) -> Result<Arc<Self>, DbError> {
        let lent = self.lent.lock().unwrap_or_else(|p| p.into_inner());
        let (mut lent, wait) =
            self.returned.wait_timeout_while(lent, LEND_WAIT, |n| *n >= MAX_LENT).unwrap_or_else(|p| p.into_inner());
        if wait.timed_out() && *lent >= MAX_LENT {
            return Err(DbError::Exhausted { lent: MAX_LENT, waited: LEND_WAIT });
        }
        *lent += 1;
        Ok(self.clone())
    }

    fn give_back(&self) {
        let mut lent = self.lent.lock().unwrap_or_else(|p| p.into_inner());
        *lent = lent.saturating_sub(1);
        self.returned.notify_one();
    }
}

/// Idle PostgreSQL connections kept for the next caller.
const MAX_IDLE: usize = 8;
/// How long an idle PostgreSQL connection is kept: a daemon that is quiet
/// gives its sessions back to the server, which other daemons may need
/// (`max_connections` is shared by the whole cluster).
const IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(2);

struct Migration {
    version: u32,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("../schema/v1.sql") },
    Migration { version: 2, sql: include_str!("../schema/v2.sql") },
    Migration { version: 3, sql: include_str!("../schema/v3.sql") },
    Migration { version: 4, sql: include_str!("../schema/v4.sql") },
    Migration { version: 5, sql: include_str!("../schema/v5.sql") },
    Migration { version: 6, sql: include_str!("../schema/v6.sql") },
    Migration { version: 7, sql: include_str!("../schema/v7.sql") },
    Migration { version: 8, sql: include_str!("../schema/v8.sql") },
    Migration { version: 9, sql: include_str!("../schema/v9.sql") },
];

impl Database {
    /// Opens (creating if needed) the SQLite database at `path` and brings
    /// its schema up to date. Returns the handle and whether the database
    /// was new.
    pub fn open(path: &Path) -> Result<(Database, bool), DbError> {
        Self::open_with(path, Durability::default())
    }

    /// [`Self::open`] with a durability for every connection.
    pub fn open_with(path: &Path, durability: Durability) -> Result<(Database, bool), DbError> {
        Self::open_seeded(&Location::from(path), durability, &|_| Ok(()))
    }

    /// Opens the database at `location` (a SQLite file or a PostgreSQL
    /// server) and brings its schema up to date.
    pub fn open_at(location: &Location) -> Result<(Database, bool), DbError> {
        Self::open_seeded(location, Durability::default(), &|_| Ok(()))
    }

    /// [`Self::open_at`]; a new database is also `seed`ed, in the same
    /// transaction that creates its schema: a first start that dies half-way
    /// leaves an empty database, which the next start creates again.
    pub(crate) fn open_seeded(
        location: &Location,
        durability: Durability,
        seed: &Seed<'_>,
    ) -> Result<(Database, bool), DbError> {
        match location {
            Location::File(_) | Location::Memory(_) => Self::open_file(location, durability, seed),
            Location::Postgres(url) => {
                let (conn, created) = postgres::open(location, url, seed)?;
                let db = Database {
                    location: location.clone(),
                    durability,
                    gate: WriteGate(Arc::new(Mutex::new(conn)), Some(location.clone())),
                    max_pages: None,
                    idle: Arc::default(),
                    lending: Arc::default(),
                    _checkpointer: None,
                };
                Ok((db, created))
            }
        }
    }

    fn open_file(location: &Location, durability: Durability, seed: &Seed<'_>) -> Result<(Database, bool), DbError> {
        let path = location.sqlite_path().expect("a SQLite location has a path");
        if let Some(dir) = location.file().and_then(Path::parent).filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir { path: dir.to_owned(), source })?;
        }
        let open_err = |source: rusqlite::Error| DbError::Open { location: location.clone(), source: source.into() };
        let conn = Connection::open(&path).and_then(|c| configure(c, durability, None)).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        let mut conn = Conn::from(conn);
        let created = migrate(location, &mut conn, seed)?;
        // A database in memory has no WAL to checkpoint.
        let checkpointer = match location {
            Location::File(_) => Some(Arc::new(
                Checkpointer::spawn(path.clone(), move || connection(&path, durability, None))
                    .map_err(|e| DbError::Checkpointer(e.to_string()))?,
            )),
            _ => None,
        };
        let db = Database {
            location: location.clone(),
            durability,
            gate: WriteGate(Arc::new(Mutex::new(conn)), None),
            max_pages: None,
            idle: Arc::default(),
            lending: Arc::default(),
            _checkpointer: checkpointer,
        };
        Ok((db, created))
    }

    /// Caps a SQLite database at `pages` pages for the shared writing
    /// connection and every connection opened from now on: past it, writes
    /// fail with "database or disk is full" and nothing of the failed
    /// transaction is kept. (PostgreSQL: the server's disk is the limit.)
    pub(crate) fn with_max_pages(mut self, pages: Option<u64>) -> Result<Self, DbError> {
        if let Some(pages) = pages {
            if let Some(c) = self.gate.enter().as_sqlite() {
                c.pragma_update(None, "max_page_count", pages).map_err(SqlError::from)?;
            }
        }
        self.max_pages = pages;
        Ok(self)
    }

    /// The in-process write gate every writer of this database passes, with
    /// the connection it writes through.
    pub(crate) fn gate(&self) -> &WriteGate {
        &self.gate
    }

    /// Where a write transaction of this process runs: on SQLite the
    /// shared writing connection, one writer at a time (the gate); on
    /// PostgreSQL a pooled connection of the writer's own — the server
    /// takes concurrent writers, and a gate would make them one.
    pub(crate) fn writer(&self) -> Result<Writer<'_>, DbError> {
        Ok(match self.location {
            Location::File(_) | Location::Memory(_) => Writer::Gate(self.gate.enter()),
            Location::Postgres(_) => Writer::Pooled(self.connect()?),
        })
    }

    /// Where the database is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// How hard a commit waits for the disk (the `synchronous` setting).
    pub fn durability(&self) -> Durability {
        self.durability
    }

    pub fn dialect(&self) -> Dialect {
        match self.location {
            Location::File(_) | Location::Memory(_) => Dialect::Sqlite,
            Location::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A connection: for SQLite a new one with the bus's pragmas (WAL, busy
    /// timeout, foreign keys, no automatic checkpoints: see
    /// [`crate::checkpoint`]); for PostgreSQL an idle one from the pool, or
    /// a new one. It goes back to the pool when dropped.
    pub fn connect(&self) -> Result<Pooled, DbError> {
        let conn = match &self.location {
            Location::File(_) | Location::Memory(_) => self
                .connect_raw()
                .map(Conn::from)
                .map_err(|source| DbError::Open { location: self.location.clone(), source: source.into() })?,
            Location::Postgres(url) => {
                let permit = self.lending.take()?;
                let idle = {
                    let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                    idle.retain(|(_, since)| since.elapsed() < IDLE_FOR);
                    idle.pop().map(|(conn, _)| conn)
                };
                let conn = match idle {
                    Some(c) => c,
                    None => match Conn::postgres(url) {
                        Ok(c) => c,
                        Err(source) => {
                            permit.give_back();
                            return Err(DbError::Open { location: self.location.clone(), source });
                        }
                    },
                };
                return Ok(Pooled { conn: Some(conn), idle: Some(self.idle.clone()), permit: Some(permit) });
            }
        };
        Ok(Pooled { conn: Some(conn), idle: None, permit: None })
    }

    /// A connection of its own for a long-lived owner (the event log, the
    /// listener), never pooled nor counted as lent.
    pub fn open_connection(&self) -> Result<Conn, DbError> {
        match &self.location {
            Location::Postgres(url) => {
                Conn::postgres(url).map_err(|source| DbError::Open { location: self.location.clone(), source })
            }
            Location::File(_) | Location::Memory(_) => {
                let mut pooled = self.connect()?;
                Ok(pooled.conn.take().expect("a new connection is present"))
            }
        }
    }

    /// A plain rusqlite connection with the bus's pragmas, for tools that
    /// measure SQLite itself (the benchmark's anchors).
    pub fn connect_sqlite(&self) -> Result<Connection, DbError> {
        self.connect_raw().map_err(|source| DbError::Open { location: self.location.clone(), source: source.into() })
    }

    fn connect_raw(&self) -> rusqlite::Result<Connection> {
        match self.location.sqlite_path() {
            Some(path) => connection(&path, self.durability, self.max_pages),
            None => Err(rusqlite::Error::InvalidPath(PathBuf::from("(a PostgreSQL database)"))),
        }
    }
}

/// Replaces a PostgreSQL connection whose server went away (a restart, a
/// failover) with a new one; the failed statement that noticed it already
/// answered with its error, the next one works again. A connection that
/// cannot be made yet is left as it is (its use fails with the reason).
fn revive(location: &Location, conn: &mut Conn) {
    let Location::Postgres(url) = location else { return };
    if conn.is_usable() {
        return;
    }
    match Conn::postgres(url) {
        Ok(fresh) => {
            tracing::warn!(database = %location, "the connection to the database server was lost; connected again");
            *conn = fresh;
        }
        Err(e) => tracing::warn!(database = %location, error = %e, "the database server cannot be reached"),
    }
}

impl Database {
    /// A long-lived connection that broke with its server is made again
    /// (see [`revive`]); a no-op on SQLite.
    pub(crate) fn revive(&self, conn: &mut Conn) {
        revive(&self.location, conn);
    }
}

/// A write turn from [`Database::writer`]; derefs to its [`Conn`].
pub(crate) enum Writer<'a> {
    Gate(MutexGuard<'a, Conn>),
    Pooled(Pooled),
}

impl std::ops::Deref for Writer<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match self {
            Writer::Gate(c) => c,
            Writer::Pooled(c) => c,
        }
    }
}

impl std::ops::DerefMut for Writer<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        match self {
            Writer::Gate(c) => c,
            Writer::Pooled(c) => c,
        }
    }
}

/// A connection from [`Database::connect`]; derefs to [`Conn`].
pub struct Pooled {
    conn: Option<Conn>,
    idle: Option<IdlePool>,
    /// Counted as lent until dropped (PostgreSQL).
    permit: Option<Arc<Lending>>,
}

impl std::ops::Deref for Pooled {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("a pooled connection is present until dropped")
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("a pooled connection is present until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            permit.give_back();
        }
        let (Some(conn), Some(idle)) = (self.conn.take(), &self.idle) else { return };
        // A connection left inside a transaction, or broken, is not reused.
        if conn.is_autocommit() && conn.is_usable() {
            let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|(_, since)| since.elapsed() < IDLE_FOR);
            if idle.len() < MAX_IDLE {
                idle.push((conn, std::time::Instant::now()));
            }
        }
    }
}

/// A new connection to the existing database at `path` with the bus's
/// pragmas. It never creates the file: a database deleted under the daemon
/// is an error, not a new empty file.
fn connection(path: &Path, durability: Durability, max_pages: Option<u64>) -> rusqlite::Result<Connection> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
        | rusqlite::OpenFlags::SQLITE_OPEN_URI
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    configure(Connection::open_with_flags(path, flags)?, durability, max_pages)
}

fn configure(conn: Connection, durability: Durability, max_pages: Option<u64>) -> rusqlite::Result<Connection> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", durability.pragma())?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A WAL grown by a burst is cut back to this size once checkpointed.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    if let Some(pages) = max_pages {
        conn.pragma_update(None, "max_page_count", pages)?;
    }
    register_functions(&conn)?;
    Ok(conn)
}

/// The functions the bus's SQL uses beside the standard ones, defined the
/// same way in the PostgreSQL schema: `bus_now()` (the current time as the
/// columns store it) and `bus_after(seconds)` (that many seconds later).
fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function("bus_now", 0, FunctionFlags::SQLITE_UTF8, |_| Ok(now()))?;
    conn.create_scalar_function("bus_after", 1, FunctionFlags::SQLITE_UTF8, |ctx| {
        let seconds: i64 = ctx.get(0)?;
        Ok(after(seconds))
    })
}

/// What a new database is filled with when it is created (connectors and
/// settings from the configuration).
pub(crate) type Seed<'a> = dyn Fn(&Conn) -> Result<(), DbError> + 'a;

/// Applies the migrations the database at `path` lacks, all in one
/// transaction (with `seed` when the database was empty); true when it was
/// empty.
fn migrate(location: &Location, conn: &mut Conn, seed: &Seed<'_>) -> Result<bool, DbError> {
    let tx = conn.transaction_with(Begin::Immediate)?;
    let current: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(DbError::TooNew { location: location.clone(), found: current, known });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let err = |source| DbError::Migrate { location: location.clone(), version: m.version, source };
        tx.execute_batch(m.sql).map_err(err)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", m.version)).map_err(err)?;
    }
    if current == 0 {
        seed(&tx)?;
    }
    tx.commit()?;
    Ok(current == 0)
}

/// The current time as the bus stores it: ISO 8601 UTC with milliseconds,
/// as SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ','now')` writes it (the column
/// defaults), formatted here because SQLite's date functions cost more than
/// any other part of a row on the logging path.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// The time `seconds` from now (earlier when negative), as [`now`] writes it.
pub fn after(seconds: i64) -> String {
    let now = std::time::SystemTime::now();
    let shift = Duration::from_secs(seconds.unsigned_abs());
    let t = if seconds >= 0 { now.checked_add(shift) } else { now.checked_sub(shift) };
    humantime::format_rfc3339_millis(t.unwrap_or(now)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_database_is_migrated_once_and_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/bus.db");
        let (db, created) = Database::open(&path).unwrap();
        assert!(created);
        let (_, created_again) = Database::open(&path).unwrap();
        assert!(!created_again);
        let conn = db.connect().unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn now_has_the_format_of_the_column_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Database::open(&dir.path().join("bus.db")).unwrap();
        let sql: String =
            db.connect().unwrap().query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ','now')", [], |r| r.get(0)).unwrap();
        let ours = now();
        assert_eq!(ours.len(), sql.len(), "{ours} vs {sql}");
        assert_eq!(&ours[..16], &sql[..16], "{ours} vs {sql}");
        assert!(ours.ends_with('Z') && ours.as_bytes()[10] == b'T' && ours.as_bytes()[19] == b'.', "{ours}");
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus.db");
        Database::open(&path).unwrap();
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 999).unwrap();
        let err = Database::open(&path).unwrap_err();
        assert!(err.to_string().contains("upgrade the daemon"), "{err}");
    }
}
