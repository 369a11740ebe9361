//! One connection type over the two engines the bus stores in: SQLite (the
//! embedded default) and PostgreSQL (several daemons on one database).
//!
//! The API follows rusqlite's shape (`prepare_cached` → `execute` /
//! `query_row` / `query_map`, `transaction` → `commit`). Parameters are
//! written `$1`, `$2`, … in order of first appearance — PostgreSQL's own
//! syntax, which SQLite reads as named parameters numbered in that same
//! order (`sqlite.rs`) — so the same text goes to either engine unchanged. What the engines do differently is a
//! method of a storage driver (`crate::driver`), which asks
//! [`Conn::dialect`].

mod postgres;
mod sqlite;
mod value;

pub(crate) use postgres::SEND_AHEAD;
pub use value::{FromValue, ToValue, Value, ValueRef};

use self::postgres::PgConn;
use thiserror::Error;

/// The SQL dialect of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// An error from either engine, or a column that did not read as asked.
#[derive(Debug, Error)]
pub enum SqlError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", postgres::describe(.0))]
    Postgres(pg_client::Error),
    #[error("column {index}: {message}")]
    Column { index: usize, message: String },
    #[error("the query returned no rows")]
    NoRows,
    /// The transaction's `COMMIT`, sent with its last statements, did not
    /// commit: it was rolled back (the reason).
    #[error("the transaction was rolled back: {0}")]
    RolledBack(String),
    /// A write deferred with [`Conn::defer`] failed when it was sent, with
    /// a later statement; `tag` is what its writer named it by.
    #[error("{source}")]
    Deferred { tag: i64, source: Box<SqlError> },
    /// Rows deferred with [`Conn::defer_row`] and sent together, as one
    /// statement, were refused — which of them is not known; sent one by
    /// one ([`Conn::send_rows_one_by_one`]), the failing row is named by
    /// its tag.
    #[error("{source}")]
    DeferredRows { source: Box<SqlError> },
}

impl From<pg_client::Error> for SqlError {
    /// A statement sent ahead that the server refused is the deferred
    /// write (or rows) it carried, named as when it is sent with the next
    /// statement; a connection lost on the way is no write's error.
    fn from(e: pg_client::Error) -> SqlError {
        let pg_client::Error::Sent { label, source } = e else { return SqlError::Postgres(e) };
        let source = pg_client::Error::Postgres(source);
        if !postgres::refused(&source) {
            return SqlError::Postgres(source);
        }
        let source = Box::new(SqlError::Postgres(source));
        match label {
            Some(tag) => SqlError::Deferred { tag, source },
            None => SqlError::DeferredRows { source },
        }
    }
}

/// A statement's rows, each as its columns' values.
pub type ValueRows = Vec<Vec<Value>>;

/// An insert of one row deferred with [`Conn::defer_row`], which PostgreSQL
/// sends as one statement for several rows waiting together.
#[derive(Debug)]
pub struct RowInsert {
    /// One row: its values are `$1`, `$2`, … in column order.
    pub one: &'static str,
    /// Several rows: `$k` is an array of column `k`'s values, one element
    /// per row in the order deferred, bound as one array parameter (write
    /// `$k::BIGINT[]`, [`ValueRef::List`]).
    pub many: &'static str,
}

/// What went wrong, in the terms callers act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A UNIQUE, CHECK, NOT NULL or foreign key constraint refused the write.
    Constraint,
    /// The database (or its disk, or its size limit) is full.
    Full,
    /// Another writer held the database past the busy timeout.
    Busy,
    /// The connection to the server is gone.
    Disconnected,
    /// The server did not answer within the deadline (frozen, or cut off
    /// silently): the connection is given up; a commit in flight may or
    /// may not have happened.
    NoAnswer,
    /// A serialization failure or deadlock: the transaction may be retried.
    Conflict,
    Other,
}

impl SqlError {
    /// The constraint a PostgreSQL error names (SQLite's errors name none).
    pub fn constraint(&self) -> Option<&str> {
        match self {
            SqlError::Postgres(pg_client::Error::Postgres(e)) => e.as_db_error().and_then(|d| d.constraint()),
            SqlError::Deferred { source, .. } | SqlError::DeferredRows { source } => source.constraint(),
            _ => None,
        }
    }

    /// The table a PostgreSQL error names, if any (SQLite's errors name
    /// none).
    pub fn table(&self) -> Option<&str> {
        match self {
            SqlError::Postgres(pg_client::Error::Postgres(e)) => e.as_db_error().and_then(|d| d.table()),
            SqlError::Deferred { source, .. } | SqlError::DeferredRows { source } => source.table(),
            _ => None,
        }
    }

    /// The SQLSTATE a PostgreSQL server answered with (SQLite's errors
    /// have none).
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            SqlError::Postgres(pg_client::Error::Postgres(e)) => e.code().map(|c| c.code()),
            SqlError::Deferred { source, .. } | SqlError::DeferredRows { source } => source.sqlstate(),
            _ => None,
        }
    }

    /// Whether rows sent together refused this ([`SqlError::DeferredRows`]).
    pub fn rows_sent_together(&self) -> bool {
        matches!(self, SqlError::DeferredRows { .. })
    }

    /// The tag of the deferred write this error is about, if it is one.
    pub fn deferred_tag(&self) -> Option<i64> {
        match self {
            SqlError::Deferred { tag, .. } => Some(*tag),
            _ => None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            SqlError::Sqlite(e) => sqlite::kind(e),
            SqlError::Postgres(e) => postgres::kind(e),
            SqlError::Column { .. } | SqlError::NoRows | SqlError::RolledBack(_) => ErrorKind::Other,
            SqlError::Deferred { source, .. } | SqlError::DeferredRows { source } => source.kind(),
        }
    }
}

pub type Result<T, E = SqlError> = std::result::Result<T, E>;

/// `query_row` that may find nothing: [`SqlError::NoRows`] becomes `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(SqlError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Statement parameters: `params![a, b]`, `[a, b]` (one type) or `[]`.
pub trait Params {
    fn with<R>(&self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R;
}

impl Params for &[&dyn ToValue] {
    fn with<R>(&self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R {
        f(self)
    }
}

impl Params for [&dyn ToValue; 0] {
    fn with<R>(&self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R {
        f(&[])
    }
}

impl Params for Vec<&dyn ToValue> {
    fn with<R>(&self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R {
        f(self)
    }
}

macro_rules! array_params {
    ($($n:literal)*) => {$(
        impl<T: ToValue> Params for [T; $n] {
            fn with<R>(&self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R {
                let refs: [&dyn ToValue; $n] = std::array::from_fn(|i| &self[i] as &dyn ToValue);
                f(&refs)
            }
        }
    )*};
}
array_params!(1 2 3 4 5 6 7 8);

/// Parameters of different types: `params![id, name, None::<i64>]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::sql::ToValue] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::sql::ToValue),+] as &[&dyn $crate::sql::ToValue] };
}
pub use crate::params;

/// How a transaction begins. On SQLite `Immediate` takes the write lock at
/// once (a transaction that reads before it writes cannot then fail to
/// upgrade); PostgreSQL takes row locks as it goes either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    Deferred,
    Immediate,
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConn>),
}

/// A connection to the bus database.
pub struct Conn(Inner);

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Conn").field(&self.dialect()).finish()
    }
}

impl From<rusqlite::Connection> for Conn {
    fn from(c: rusqlite::Connection) -> Self {
        Conn(Inner::Sqlite(c))
    }
}

impl Conn {
    /// Connects to the PostgreSQL server at `url` (`postgres://…`).
    pub fn postgres(url: &str) -> Result<Conn> {
        Ok(Conn(Inner::Postgres(Box::new(PgConn::connect(url)?))))
    }

    pub fn dialect(&self) -> Dialect {
        match self.0 {
            Inner::Sqlite(_) => Dialect::Sqlite,
            Inner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas,
    /// checkpoints, page limits).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.0 {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) => None,
        }
    }

    pub(crate) fn as_postgres(&self) -> Option<&PgConn> {
        match &self.0 {
            Inner::Sqlite(_) => None,
            Inner::Postgres(c) => Some(c),
        }
    }

    /// A statement kept prepared on this connection, for statements run
    /// again and again.
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        Ok(Stmt(match &self.0 {
            Inner::Sqlite(c) => StmtInner::SqliteCached(c.prepare_cached(sql)?),
            Inner::Postgres(c) => StmtInner::Postgres(c, c.statement(sql)?),
        }))
    }

    /// A statement prepared for this use only (SQL built at run time).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        Ok(Stmt(match &self.0 {
            Inner::Sqlite(c) => StmtInner::Sqlite(c.prepare(sql)?),
            Inner::Postgres(c) => StmtInner::Postgres(c, c.statement(sql)?),
        }))
    }

    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    pub fn query_row<T>(&self, sql: &str, params: impl Params, f: impl FnOnce(&Row<'_>) -> Result<T>) -> Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Runs several statements and returns each one's rows (as values), in
    /// order; on PostgreSQL they are pipelined — one round trip for all.
    /// The first error is the answer.
    pub fn query_pipelined(&self, calls: &[(&str, &[&dyn ToValue])]) -> Result<Vec<Vec<Vec<Value>>>> {
        match &self.0 {
            Inner::Postgres(c) => c.query_pipelined(calls),
            Inner::Sqlite(_) => calls
                .iter()
                .map(|(sql, params)| {
                    let mut stmt = self.prepare_cached(sql)?;
                    let mut rows = stmt.query(*params)?;
                    let mut out = Vec::new();
                    while let Some(row) = rows.next()? {
                        let RowInner::Sqlite(r) = row.0 else { unreachable!("a SQLite row") };
                        let n = r.as_ref().column_count();
                        out.push((0..n).map(|i| row.get_ref(i).map(|v| v.to_owned_value())).collect::<Result<_>>()?);
                    }
                    Ok(out)
                })
                .collect(),
        }
    }

    /// [`Self::query_pipelined`] of a transaction's last statements (its
    /// `COMMIT` last), then `after` as a statement of its own, once the
    /// transaction committed — on PostgreSQL in the same round trip. The
    /// rows of `after` if it ran and succeeded: its failure is not the
    /// transaction's.
    pub fn query_pipelined_then(
        &self,
        calls: &[(&str, &[&dyn ToValue])],
        after: (&str, &[&dyn ToValue]),
    ) -> Result<(Vec<ValueRows>, Option<ValueRows>)> {
        match &self.0 {
            Inner::Postgres(c) => c.query_pipelined_then(calls, after),
            Inner::Sqlite(_) => {
                let rows = self.query_pipelined(calls)?;
                Ok((rows, self.query_pipelined(&[after]).ok().and_then(|mut r| r.pop())))
            }
        }
    }

    /// Runs a write whose answer nobody waits for: on PostgreSQL it is
    /// sent with the connection's next statement (in the same round trip;
    /// a transaction's `COMMIT` included), and if it fails then, that
    /// statement fails with [`SqlError::Deferred`] carrying `tag`; SQLite
    /// runs it at once (a statement costs no round trip there).
    pub fn defer(&self, sql: &str, params: &[&dyn ToValue], tag: i64) -> Result<()> {
        match &self.0 {
            Inner::Sqlite(_) => self.prepare_cached(sql)?.execute(params).map(drop),
            Inner::Postgres(c) => c.defer(sql, params, tag),
        }
    }

    /// [`Self::defer`] for a row of `insert`: PostgreSQL sends the rows of
    /// one insert that wait together as one statement ([`RowInsert::many`];
    /// if it fails, with [`SqlError::DeferredRows`]), unless
    /// [`Self::send_rows_one_by_one`]; SQLite runs [`RowInsert::one`] at
    /// once.
    pub fn defer_row(&self, insert: &'static RowInsert, params: &[&dyn ToValue], tag: i64) -> Result<()> {
        match &self.0 {
            Inner::Sqlite(_) => self.prepare_cached(insert.one)?.execute(params).map(drop),
            Inner::Postgres(c) => c.defer_row(insert, params, tag),
        }
    }

    /// The one write waiting to be sent, if it is the only one and a row of
    /// `insert` ([`Self::defer_row`]): taken, its values and its tag, for
    /// the caller to send within a statement of its own (PostgreSQL; SQLite
    /// wrote it at once and has none).
    pub fn take_lone_row(&self, insert: &'static RowInsert) -> Option<(Vec<Value>, i64)> {
        match &self.0 {
            Inner::Sqlite(_) => None,
            Inner::Postgres(c) => c.take_lone_row(insert),
        }
    }

    /// Sends the rows of [`Self::defer_row`] each with its own statement
    /// until the transaction ends, so that a refused one is named by its
    /// tag.
    pub fn send_rows_one_by_one(&self) {
        if let Inner::Postgres(c) = &self.0 {
            c.send_rows_one_by_one();
        }
    }

    /// Runs `batch` (a statement with its `values` written in as literals)
    /// first in the transaction, where it costs nothing of its own: on
    /// PostgreSQL in the same message as the transaction's `BEGIN`, with the
    /// next call (a failure is then that call's error, without a tag) —
    /// unless taken back with [`Self::take_first`] by a caller that runs it
    /// inside a statement of its own; SQLite runs it at once.
    pub fn defer_first(&self, batch: &str, values: &[&dyn ToValue], tag: i64) -> Result<()> {
        match &self.0 {
            Inner::Sqlite(_) => self.execute_batch(batch),
            Inner::Postgres(c) => c.defer_first(batch, values, tag),
        }
    }

    /// The values of the statement [`Self::defer_first`] left waiting with
    /// `tag`, if it still waits: taken back, for the caller to run inside
    /// its own statement — which is then the transaction's first.
    pub fn take_first(&self, tag: i64) -> Option<Vec<Value>> {
        match &self.0 {
            Inner::Sqlite(_) => None,
            Inner::Postgres(c) => c.take_first(tag),
        }
    }

    /// Runs statements separated by semicolons, without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.0 {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(c) => c.batch(sql),
        }
    }

    /// Begins a deferred transaction; it rolls back unless committed.
    pub fn transaction(&mut self) -> Result<Tx<'_>> {
        self.transaction_with(Begin::Deferred)
    }

    pub fn transaction_with(&mut self, begin: Begin) -> Result<Tx<'_>> {
        let sql = match (self.dialect(), begin) {
            (Dialect::Sqlite, Begin::Immediate) => "BEGIN IMMEDIATE",
            (Dialect::Sqlite, Begin::Deferred) => "BEGIN DEFERRED",
            (Dialect::Postgres, _) => "BEGIN",
        };
        self.execute_batch(sql)?;
        Ok(Tx { conn: self, open: true })
    }

    /// Whether the connection can still be used (a PostgreSQL connection
    /// whose server went away cannot).
    pub fn is_usable(&self) -> bool {
        match &self.0 {
            Inner::Sqlite(_) => true,
            Inner::Postgres(c) => !c.client().is_closed(),
        }
    }

    /// Whether a transaction is open (SQLite only knows; PostgreSQL
    /// connections are asked by the caller that began one).
    pub fn is_autocommit(&self) -> bool {
        match &self.0 {
            Inner::Sqlite(c) => c.is_autocommit(),
            Inner::Postgres(c) => !c.in_transaction(),
        }
    }
}

/// An open transaction; derefs to its connection. Dropped without
/// [`Tx::commit`], it rolls back.
pub struct Tx<'c> {
    conn: &'c Conn,
    open: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.open = false;
        let result = self.conn.execute_batch("COMMIT");
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    pub fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.conn.execute_batch("ROLLBACK")
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

enum StmtInner<'c> {
    SqliteCached(rusqlite::CachedStatement<'c>),
    Sqlite(rusqlite::Statement<'c>),
    Postgres(&'c PgConn, pg_client::Statement),
}

/// A prepared statement.
pub struct Stmt<'c>(StmtInner<'c>);

impl Stmt<'_> {
    /// Runs the statement; the number of rows it changed.
    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        params.with(|p| match &mut self.0 {
            StmtInner::SqliteCached(s) => {
                sqlite::bind(s, p)?;
                Ok(s.raw_execute()?)
            }
            StmtInner::Sqlite(s) => {
                sqlite::bind(s, p)?;
                Ok(s.raw_execute()?)
            }
            StmtInner::Postgres(c, s) => c.execute(s, p),
        })
    }

    /// The rows, one at a time.
    pub fn query(&mut self, params: impl Params) -> Result<Rows<'_>> {
        params.with(|p| {
            Ok(Rows(match &mut self.0 {
                StmtInner::SqliteCached(s) => {
                    sqlite::bind(s, p)?;
                    RowsInner::Sqlite(s.raw_query())
                }
                StmtInner::Sqlite(s) => {
                    sqlite::bind(s, p)?;
                    RowsInner::Sqlite(s.raw_query())
                }
                StmtInner::Postgres(c, s) => RowsInner::Postgres(c.query(s, p)?.into_iter(), None),
            }))
        })
    }

    /// The first row, through `f`; [`SqlError::NoRows`] when there is none.
    pub fn query_row<T>(&mut self, params: impl Params, f: impl FnOnce(&Row<'_>) -> Result<T>) -> Result<T> {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(row) => f(&row),
            None => Err(SqlError::NoRows),
        }
    }

    /// Every row through `f`, read before the first is handed back.
    pub fn query_map<T>(
        &mut self,
        params: impl Params,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut rows = self.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(f(&row));
        }
        Ok(out.into_iter())
    }

    /// Whether the statement returns at least one row.
    pub fn exists(&mut self, params: impl Params) -> Result<bool> {
        Ok(self.query(params)?.next()?.is_some())
    }
}

enum RowsInner<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Postgres(std::vec::IntoIter<Vec<Value>>, Option<Vec<Value>>),
}

/// The rows of a query, read with [`Rows::next`].
pub struct Rows<'s>(RowsInner<'s>);

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match &mut self.0 {
            RowsInner::Sqlite(rows) => Ok(rows.next()?.map(|r| Row(RowInner::Sqlite(r)))),
            RowsInner::Postgres(rows, current) => {
                *current = rows.next();
                Ok(current.as_deref().map(|r| Row(RowInner::Postgres(r))))
            }
        }
    }
}

enum RowInner<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r [Value]),
}

/// One row of a result.
pub struct Row<'r>(RowInner<'r>);

impl Row<'_> {
    /// Column `index` as stored.
    pub fn get_ref(&self, index: usize) -> Result<ValueRef<'_>> {
        match &self.0 {
            RowInner::Sqlite(r) => Ok(sqlite::value(r.get_ref(index)?)),
            RowInner::Postgres(r) => r
                .get(index)
                .map(Value::as_ref)
                .ok_or(SqlError::Column { index, message: format!("the row has {} columns", r.len()) }),
        }
    }

    /// Column `index` read as `T`.
    pub fn get<T: FromValue>(&self, index: usize) -> Result<T> {
        value::read(index, self.get_ref(index)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Conn {
        Conn::from(rusqlite::Connection::open_in_memory().unwrap())
    }

    #[test]
    fn statements_bind_read_and_roll_back_on_drop() {
        let mut c = memory();
        c.execute_batch("CREATE TABLE t (a INTEGER, b TEXT)").unwrap();
        c.execute("INSERT INTO t VALUES ($1, $2)", params![1, "one"]).unwrap();
        c.execute("INSERT INTO t (a, b) VALUES ($1, $2)", params![2, None::<String>]).unwrap();
        let rows: Vec<(i64, Option<String>)> = c
            .prepare("SELECT a, b FROM t ORDER BY a")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(rows, vec![(1, Some("one".into())), (2, None)]);
        {
            let tx = c.transaction().unwrap();
            tx.execute("DELETE FROM t", []).unwrap();
        }
        let n: i64 = c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2, "a dropped transaction rolls back");
        let missing =
            c.query_row("SELECT a FROM t WHERE a = $1 OR $1 = -$1", [9], |r| r.get::<i64>(0)).optional().unwrap();
        assert_eq!(missing, None);
        let err = c.query_row("SELECT b FROM t WHERE a = 1", [], |r| r.get::<i64>(0)).unwrap_err();
        assert!(err.to_string().contains("column 0: expected an integer, found text"), "{err}");
        let err = c.execute("INSERT INTO t (a) VALUES ('x'); ", []).map(|_| ()).and_then(|()| {
            c.execute_batch("CREATE UNIQUE INDEX u ON t (a)")?;
            c.execute("INSERT INTO t (a) VALUES (1)", [])
        });
        assert_eq!(err.unwrap_err().kind(), ErrorKind::Constraint);
    }

    #[test]
    fn parameters_are_written_as_postgresql_writes_them() {
        let c = memory();
        let err = c.query_row("SELECT ?1", [1], |r| r.get::<i64>(0)).unwrap_err();
        assert!(err.to_string().contains("parameters are written $1, $2"), "{err}");
        let err = c.query_row("SELECT $2 - $1", [1, 5], |r| r.get::<i64>(0)).unwrap_err();
        assert!(err.to_string().contains("in order of first appearance"), "{err}");
        let err = c.query_row("SELECT $1 + $2", [1], |r| r.get::<i64>(0)).unwrap_err();
        assert!(matches!(err, SqlError::Sqlite(rusqlite::Error::InvalidParameterCount(1, 2))), "{err}");
        let err = c.query_row("SELECT $1", [1, 2], |r| r.get::<i64>(0)).unwrap_err();
        assert!(matches!(err, SqlError::Sqlite(rusqlite::Error::InvalidParameterCount(2, 1))), "{err}");
        assert_eq!(
            c.query_row("SELECT $1 - $2 + $1", [5, 1], |r| r.get::<i64>(0)).unwrap(),
            9,
            "a parameter used twice"
        );
        let list = Value::List(vec![Value::Integer(1), Value::Null]);
        let err = c.query_row("SELECT $1", [&list], |r| r.get::<i64>(0)).unwrap_err();
        assert!(err.to_string().contains("a list of 2 values cannot be bound in SQLite"), "{err}");
    }
}
