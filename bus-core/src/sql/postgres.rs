//! The PostgreSQL side of [`super::Conn`]: one synchronous client, its
//! statements prepared once per SQL text (as written: `$n` parameters), values
//! converted to and from the shared [`Value`] by the column's type.

use super::{ErrorKind, Result, RowInsert, SqlError, ToValue, Value, ValueRef, ValueRows};
use bytes::BytesMut;
use pg_client::types::{to_sql_checked, FromSql, IsNull, Kind, ToSql, Type};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// How many writes wait at most before they are sent ahead, in a
/// transaction whose rows go together: the server writes them while the
/// writer prepares the rest (a batch of changes), instead of after.
pub(crate) const SEND_AHEAD: usize = 32;

/// More distinct statement texts than this (SQL built at run time) clears
/// the cache instead of growing it without end.
const MAX_STATEMENTS: usize = 512;

/// How long a new connection, and any one call on it, may take (unless the
/// URL sets `connect_timeout`, or the server's `statement_timeout` through
/// `options`): a server that stopped answering — frozen, or behind a silent
/// network — fails the call instead of holding the caller.
const DEADLINES: pg_client::Deadlines =
    pg_client::Deadlines { connect: Duration::from_secs(5), call: Duration::from_secs(30) };

pub(crate) struct PgConn {
    client: pg_client::Client,
    statements: RefCell<HashMap<String, pg_client::Statement>>,
    in_transaction: Cell<bool>,
    /// Writes waiting to go with the next statement ([`super::Conn::defer`]).
    deferred: RefCell<Vec<Deferred>>,
    /// Why the transaction's pipelined `COMMIT` did not commit, for the
    /// caller's own `COMMIT` to answer (until the next `BEGIN`).
    rolled_back: RefCell<Option<String>>,
    /// How this transaction sends deferred rows of one insert.
    rows: Cell<Rows>,
    /// The statement to run first in the transaction ([`Self::defer_first`]).
    first: RefCell<Option<First>>,
}

/// A statement to run first in a transaction: sent in its `BEGIN`'s
/// message with the next call, unless its writer takes it back to send it
/// inside a statement of its own ([`PgConn::take_first`]).
struct First {
    /// As text, its values written in.
    batch: String,
    /// Its values, for the writer that takes it back.
    values: Vec<Value>,
    tag: i64,
}

/// How the deferred rows of one insert go out ([`super::Conn::defer_row`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// As one statement when several wait together.
    Together,
    /// Each with its own statement.
    OneByOne,
}

/// Whether a pipeline ends the transaction (its last statement is the
/// `COMMIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    Transaction,
    Nothing,
}

/// A statement's rows as the server sent them.
type PgRows = Vec<pg_client::Row>;

/// A write sent ahead of the next statement, in its round trip.
struct Deferred {
    sql: String,
    values: Vec<Value>,
    tag: i64,
    /// The insert it is a row of, if it is one.
    insert: Option<&'static RowInsert>,
}

/// A statement sent for deferred writes: one write's, or one for
/// consecutive rows of one insert.
struct Outgoing {
    sql: String,
    values: Vec<Value>,
    /// The tags of the writes it carries, in order.
    tags: Vec<i64>,
}

/// The statements that send `deferred`: consecutive rows of one insert as
/// one statement (each column an array), unless `rows` says one by one.
fn sends(deferred: &[Deferred], rows: Rows) -> Vec<Outgoing> {
    let mut out = Vec::with_capacity(deferred.len());
    let mut i = 0;
    while i < deferred.len() {
        let d = &deferred[i];
        let run = match (d.insert, rows) {
            (Some(insert), Rows::Together) => {
                deferred[i..].iter().take_while(|e| e.insert.is_some_and(|x| std::ptr::eq(x, insert))).count()
            }
            _ => 1,
        };
        match d.insert {
            Some(insert) if run > 1 => {
                let together = &deferred[i..i + run];
                let columns = together.iter().map(|r| r.values.len()).max().unwrap_or(0);
                let values = (0..columns)
                    .map(|c| {
                        Value::List(together.iter().map(|r| r.values.get(c).cloned().unwrap_or(Value::Null)).collect())
                    })
                    .collect();
                out.push(Outgoing {
                    sql: insert.many.to_owned(),
                    values,
                    tags: together.iter().map(|r| r.tag).collect(),
                });
            }
            _ => out.push(Outgoing { sql: d.sql.clone(), values: d.values.clone(), tags: vec![d.tag] }),
        }
        i += run;
    }
    out
}

impl PgConn {
    pub(super) fn connect(url: &str) -> Result<PgConn> {
        let client = pg_client::Client::connect(url, DEADLINES)?;
        // The bus's locks are followed by looks that must see what was
        // committed while they waited (schema v8): READ COMMITTED, whatever
        // the server, database or role default to.
        client.batch_execute("SET default_transaction_isolation = 'read committed'")?;
        Ok(PgConn {
            client,
            statements: RefCell::new(HashMap::new()),
            in_transaction: Cell::new(false),
            deferred: RefCell::new(Vec::new()),
            rolled_back: RefCell::new(None),
            rows: Cell::new(Rows::Together),
            first: RefCell::new(None),
        })
    }

    /// Defers a write to the next statement of the transaction; outside one
    /// (nothing would end it) it runs at once.
    pub(super) fn defer(&self, sql: &str, params: &[&dyn ToValue], tag: i64) -> Result<()> {
        self.defer_write(sql, params, tag, None)
    }

    /// [`Self::defer`] for a row of `insert` (see [`super::Conn::defer_row`]).
    pub(super) fn defer_row(&self, insert: &'static RowInsert, params: &[&dyn ToValue], tag: i64) -> Result<()> {
        self.defer_write(insert.one, params, tag, Some(insert))
    }

    fn defer_write(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        tag: i64,
        insert: Option<&'static RowInsert>,
    ) -> Result<()> {
        if !self.in_transaction.get() {
            let statement = self.statement(sql)?;
            return self.execute(&statement, params).map(drop);
        }
        let values = params.iter().map(|p| p.to_value().to_owned_value()).collect();
        self.deferred.borrow_mut().push(Deferred { sql: sql.to_owned(), values, tag, insert });
        if insert.is_some() && self.rows.get() == Rows::Together && self.deferred.borrow().len() >= SEND_AHEAD {
            self.send_ahead()?;
        }
        Ok(())
    }

    /// Sends the writes waiting now, without waiting for their answers
    /// (read with the next call's, a failure named as for writes sent with
    /// it: see [`pg_client::Client::send`]).
    fn send_ahead(&self) -> Result<()> {
        self.send_first();
        let deferred = sends(&self.deferred.borrow(), self.rows.get());
        let prepared = deferred.iter().map(|d| self.statement(&d.sql)).collect::<Result<Vec<_>>>()?;
        for (statement, d) in prepared.iter().zip(deferred) {
            let label = match d.tags[..] {
                [tag] => Some(tag),
                _ => None,
            };
            let writes = d.tags.len();
            self.client.send(statement, d.values.into_iter().map(Owned).collect(), label)?;
            // Only what went: a write refused before it was sent (a value
            // that cannot be encoded, the connection gone) still waits.
            self.deferred.borrow_mut().drain(..writes);
        }
        Ok(())
    }

    /// The write waiting, if it is the only one and a row of `insert`:
    /// taken (its values and tag), for the caller to send in a statement
    /// of its own making.
    pub(super) fn take_lone_row(&self, insert: &'static RowInsert) -> Option<(Vec<Value>, i64)> {
        let mut deferred = self.deferred.borrow_mut();
        match &deferred[..] {
            [d] if d.insert.is_some_and(|i| std::ptr::eq(i, insert)) => deferred.pop().map(|d| (d.values, d.tag)),
            _ => None,
        }
    }

    pub(super) fn send_rows_one_by_one(&self) {
        self.rows.set(Rows::OneByOne);
    }

    /// Runs `calls` pipelined after the deferred writes (taken: sent once,
    /// whatever comes back) and returns the answers of `calls`; a deferred
    /// write that failed is named by its tag ([`SqlError::Deferred`]).
    fn pipelined(
        &self,
        calls: &[(pg_client::Statement, &[&dyn ToValue])],
        ends: Ends,
    ) -> Result<Vec<Vec<pg_client::Row>>> {
        self.pipelined_then(calls, ends, None).map(|(rows, _)| rows)
    }

    /// Binds each statement's parameters to the types the server inferred
    /// and runs them pipelined ([`pg_client::Client::query_pipelined_each`]).
    fn each(
        &self,
        calls: &[(&pg_client::Statement, &[&dyn ToValue])],
        required: usize,
    ) -> std::result::Result<Vec<pg_client::StatementAnswer>, pg_client::Error> {
        let binds: Vec<Vec<Bind<'_>>> =
            calls.iter().map(|(_, params)| params.iter().map(|p| Bind(p.to_value())).collect()).collect();
        let refs: Vec<Vec<&(dyn ToSql + Sync)>> =
            binds.iter().map(|b| b.iter().map(|b| b as &(dyn ToSql + Sync)).collect()).collect();
        let pairs: Vec<(&pg_client::Statement, &[&(dyn ToSql + Sync)])> =
            calls.iter().zip(&refs).map(|((s, _), r)| (*s, r.as_slice())).collect();
        self.client.query_pipelined_each(&pairs, required)
    }

    /// [`Self::pipelined`], and `after` in the same round trip once `calls`
    /// ended the transaction: a statement of its own (its own transaction),
    /// run after the `COMMIT`. Its rows, if it ran and succeeded; its
    /// failure is never the transaction's (which has committed by then).
    fn pipelined_then(
        &self,
        calls: &[(pg_client::Statement, &[&dyn ToValue])],
        ends: Ends,
        after: Option<(&pg_client::Statement, &[&dyn ToValue])>,
    ) -> Result<(Vec<PgRows>, Option<PgRows>)> {
        self.send_first();
        // A transaction of one statement (nothing sent before it, nothing
        // waiting, its `COMMIT` after it): the statement alone, which the
        // server commits as it ends — one answer instead of three.
        if let [(statement, params), _] = calls {
            if ends == Ends::Transaction && !self.has_deferred() && self.client.deferred_is("BEGIN") {
                self.client.cancel_deferred();
                self.in_transaction.set(false);
                let mut all = vec![(statement, *params)];
                all.extend(after);
                let mut answers = match self.each(&all, 1) {
                    Ok(answers) => answers.into_iter(),
                    Err(e) => {
                        *self.rolled_back.borrow_mut() = Some(e.to_string());
                        return Err(e.into());
                    }
                };
                return match answers.next().flatten() {
                    Some(Ok(rows)) => Ok((vec![rows, Vec::new()], answers.next().flatten().and_then(Result::ok))),
                    Some(Err(e)) => {
                        *self.rolled_back.borrow_mut() = Some(e.to_string());
                        Err(e.into())
                    }
                    None => Err(SqlError::Column { index: 0, message: "the statement was not sent".into() }),
                };
            }
        }
        // Prepared before they are taken: a failed prepare leaves them waiting.
        let deferred = sends(&self.deferred.borrow(), self.rows.get());
        let prepared = deferred.iter().map(|d| self.statement(&d.sql)).collect::<Result<Vec<_>>>()?;
        self.deferred.borrow_mut().clear();
        let mut all: Vec<(pg_client::Statement, Vec<&dyn ToValue>)> = Vec::with_capacity(deferred.len() + calls.len());
        for (statement, d) in prepared.into_iter().zip(&deferred) {
            all.push((statement, d.values.iter().map(|v| v as &dyn ToValue).collect()));
        }
        all.extend(calls.iter().map(|(s, params)| (s.clone(), params.to_vec())));
        all.extend(after.map(|(s, params)| (s.clone(), params.to_vec())));
        let all: Vec<(&pg_client::Statement, &[&dyn ToValue])> = all.iter().map(|(s, p)| (s, p.as_slice())).collect();
        let required = all.len() - usize::from(after.is_some());
        let mut commit_unsent = false;
        let (results, after_rows) = match self.each(&all, required) {
            Ok(mut answers) => {
                let after_rows = match after {
                    Some(_) => answers.pop().flatten().and_then(Result::ok),
                    None => None,
                };
                commit_unsent = answers.last().is_some_and(Option::is_none);
                (pg_client::all_or_first_error(answers), after_rows)
            }
            Err(e) => (Err((None, e)), None),
        };
        // A `COMMIT` at the end ends the transaction, whatever came back: a
        // statement that failed before it made it a rollback. One never
        // sent (a statement before it could not be: a value the client
        // cannot encode) left the server's transaction open: rolled back
        // here, so the connection goes back to its pool with none.
        if ends == Ends::Transaction {
            self.in_transaction.set(false);
            if let Err((_, e)) = &results {
                *self.rolled_back.borrow_mut() = Some(e.to_string());
                if commit_unsent {
                    self.client.discard_sent();
                    if let Err(e) = self.client.batch_execute("ROLLBACK") {
                        tracing::warn!(error = %e, "could not roll back a transaction whose COMMIT was not sent");
                    }
                }
            }
        }
        match results {
            Ok(mut rows) => Ok((rows.split_off(deferred.len()), after_rows)),
            // (The server's refusal: a connection lost on the way is no
            // write's error — the `COMMIT` may have run.)
            Err((Some(index), e)) if index < deferred.len() && refused(&e) => match deferred[index].tags[..] {
                [tag] => Err(SqlError::Deferred { tag, source: Box::new(e.into()) }),
                _ => Err(SqlError::DeferredRows { source: Box::new(e.into()) }),
            },
            Err((_, e)) => Err(e.into()),
        }
    }

    /// Runs `batch` (a statement with its values written in) first in the
    /// transaction: in the same message as its `BEGIN`, with the next call
    /// — unless taken back first ([`Self::take_first`]).
    pub(super) fn defer_first(&self, batch: &str, values: &[&dyn ToValue], tag: i64) -> Result<()> {
        if !self.in_transaction.get() {
            return self.batch(batch);
        }
        let values = values.iter().map(|p| p.to_value().to_owned_value()).collect();
        *self.first.borrow_mut() = Some(First { batch: batch.to_owned(), values, tag });
        Ok(())
    }

    /// The values of the statement [`Self::defer_first`] left waiting with
    /// `tag`, taken back: the caller runs it inside its own statement.
    /// (Not while writes wait: they would run before it.)
    pub(super) fn take_first(&self, tag: i64) -> Option<Vec<Value>> {
        if self.has_deferred() {
            return None;
        }
        let mut first = self.first.borrow_mut();
        match &*first {
            Some(f) if f.tag == tag => first.take().map(|f| f.values),
            _ => None,
        }
    }

    /// Puts the statement to run first where it goes out with the next
    /// call: in the `BEGIN`'s message, or, if that went already, ahead of
    /// the writes waiting.
    fn send_first(&self) {
        let Some(first) = self.first.borrow_mut().take() else { return };
        if !self.client.append_deferred(&first.batch) {
            self.deferred
                .borrow_mut()
                .insert(0, Deferred { sql: first.batch, values: Vec::new(), tag: first.tag, insert: None });
        }
    }

    fn has_deferred(&self) -> bool {
        !self.deferred.borrow().is_empty()
    }

    /// The client, for what only PostgreSQL has (notifications).
    pub(crate) fn client(&self) -> &pg_client::Client {
        &self.client
    }

    pub(super) fn in_transaction(&self) -> bool {
        self.in_transaction.get()
    }

    pub(super) fn statement(&self, sql: &str) -> Result<pg_client::Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        // (Preparing sends what waits to go first.)
        self.send_first();
        let statement = self.client.prepare(sql)?;
        let mut cache = self.statements.borrow_mut();
        if cache.len() >= MAX_STATEMENTS {
            cache.clear();
        }
        cache.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(super) fn batch(&self, sql: &str) -> Result<()> {
        let word = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        if word == "ROLLBACK" {
            // What was deferred in the transaction goes with it (and
            // what was sent ahead, whatever its answers say).
            self.deferred.borrow_mut().clear();
            self.client.discard_sent();
            self.first.borrow_mut().take();
        }
        match word.as_str() {
            // Sent with the transaction's first statement: no round trip.
            "BEGIN" if sql.trim().eq_ignore_ascii_case("BEGIN") => {
                self.rolled_back.borrow_mut().take();
                self.rows.set(Rows::Together);
                self.client.defer_batch("BEGIN");
                self.in_transaction.set(true);
                return Ok(());
            }
            // Writes still waiting go with the `COMMIT`, in one round trip
            // (a `BEGIN` not sent yet goes first).
            "COMMIT" | "END" if self.has_deferred() => {
                return self.pipelined(&[(self.statement("COMMIT")?, &[])], Ends::Transaction).map(drop);
            }
            // A transaction that ran nothing was never begun on the server
            // (nor needs its first statement).
            "COMMIT" | "ROLLBACK" | "END" if self.client.cancel_deferred() => {
                self.in_transaction.set(false);
                self.first.borrow_mut().take();
                return Ok(());
            }
            // Ended already: its `COMMIT` went pipelined with its last
            // statements (see `query_pipelined`).
            "COMMIT" | "END" if !self.in_transaction.get() => {
                return match self.rolled_back.borrow_mut().take() {
                    Some(why) => Err(SqlError::RolledBack(why)),
                    None => Ok(()),
                };
            }
            "ROLLBACK" if !self.in_transaction.get() => {
                self.rolled_back.borrow_mut().take();
                return Ok(());
            }
            // Anything else runs after the writes waiting.
            _ if self.has_deferred() || self.first.borrow().is_some() => {
                self.pipelined(&[], Ends::Nothing)?;
            }
            _ => {}
        }
        let result = self.client.batch_execute(sql);
        match word.as_str() {
            "BEGIN" if result.is_ok() => self.in_transaction.set(true),
            "COMMIT" | "ROLLBACK" | "END" => self.in_transaction.set(false),
            _ => {}
        }
        Ok(result?)
    }

    pub(super) fn execute(&self, s: &pg_client::Statement, params: &[&dyn ToValue]) -> Result<usize> {
        // (A row count is not an answer a pipelined query gives: the writes
        // waiting go first, in a round trip of their own — rare: reads
        // usually come first and take them along.)
        self.send_first();
        if self.has_deferred() {
            self.pipelined(&[], Ends::Nothing)?;
        }
        let binds: Vec<Bind<'_>> = params.iter().map(|p| Bind(p.to_value())).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        let n = self.client.execute(s, &refs)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Statements pipelined, after the writes waiting: one round trip for
    /// all (see [`pg_client::Client::query_pipelined`]).
    pub(super) fn query_pipelined(&self, calls: &[(&str, &[&dyn ToValue])]) -> Result<Vec<Vec<Vec<Value>>>> {
        let prepared =
            calls.iter().map(|(sql, params)| Ok((self.statement(sql)?, *params))).collect::<Result<Vec<_>>>()?;
        let ends = match calls.last() {
            Some((sql, _)) if sql.eq_ignore_ascii_case("COMMIT") => Ends::Transaction,
            _ => Ends::Nothing,
        };
        self.pipelined(&prepared, ends)?.iter().map(|rows| rows.iter().map(values).collect()).collect()
    }

    /// [`Self::query_pipelined`] of a transaction's last statements (its
    /// `COMMIT` last), then `after` in the same round trip as a statement
    /// of its own: its rows when it ran and succeeded.
    pub(super) fn query_pipelined_then(
        &self,
        calls: &[(&str, &[&dyn ToValue])],
        after: (&str, &[&dyn ToValue]),
    ) -> Result<(Vec<ValueRows>, Option<ValueRows>)> {
        let prepared =
            calls.iter().map(|(sql, params)| Ok((self.statement(sql)?, *params))).collect::<Result<Vec<_>>>()?;
        let after_statement = self.statement(after.0)?;
        let (rows, after_rows) =
            self.pipelined_then(&prepared, Ends::Transaction, Some((&after_statement, after.1)))?;
        let rows = rows.iter().map(|rows| rows.iter().map(values).collect()).collect::<Result<_>>()?;
        // Rows that cannot be read are no answer (the transaction stands).
        let after_rows = after_rows.and_then(|rows| rows.iter().map(values).collect::<Result<Vec<_>>>().ok());
        Ok((rows, after_rows))
    }

    pub(super) fn query(&self, s: &pg_client::Statement, params: &[&dyn ToValue]) -> Result<Vec<Vec<Value>>> {
        self.send_first();
        if self.has_deferred() {
            let mut rows = self.pipelined(&[(s.clone(), params)], Ends::Nothing)?;
            return rows.pop().unwrap_or_default().iter().map(values).collect();
        }
        let binds: Vec<Bind<'_>> = params.iter().map(|p| Bind(p.to_value())).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query(s, &refs)?;
        rows.iter().map(values).collect()
    }
}

/// Whether the server refused the statement (rather than the connection
/// failing on the way).
pub(super) fn refused(e: &pg_client::Error) -> bool {
    matches!(e, pg_client::Error::Postgres(e) | pg_client::Error::Sent { source: e, .. } if e.as_db_error().is_some())
}

/// A row's columns as [`Value`]s.
fn values(row: &pg_client::Row) -> Result<Vec<Value>> {
    (0..row.len())
        .map(|i| row.try_get::<_, Any>(i).map(|a| a.0).map_err(|e| SqlError::from(pg_client::Error::from(e))))
        .collect()
}

/// A parameter converted to the type the server inferred for it.
struct Bind<'a>(ValueRef<'a>);

impl std::fmt::Debug for Bind<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        match (self.0, ty) {
            (ValueRef::Null, _) => Ok(IsNull::Yes),
            (ValueRef::Integer(n), &Type::INT8) => n.to_sql(ty, out),
            (ValueRef::Integer(n), &Type::INT4) => i32::try_from(n)?.to_sql(ty, out),
            (ValueRef::Integer(n), &Type::INT2) => i16::try_from(n)?.to_sql(ty, out),
            (ValueRef::Integer(n), &Type::BOOL) => (n != 0).to_sql(ty, out),
            #[allow(clippy::cast_precision_loss)]
            (ValueRef::Integer(n), &Type::FLOAT8) => (n as f64).to_sql(ty, out),
            (ValueRef::Integer(n), t) if is_text(t) => n.to_string().as_str().to_sql(ty, out),
            (ValueRef::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            #[allow(clippy::cast_possible_truncation)]
            (ValueRef::Real(f), &Type::FLOAT4) => (f as f32).to_sql(ty, out),
            (ValueRef::Real(f), t) if is_text(t) => f.to_string().as_str().to_sql(ty, out),
            (ValueRef::Text(b), t) if is_text(t) => text(b)?.to_sql(ty, out),
            (ValueRef::Text(b), &Type::JSONB) => {
                out.extend_from_slice(&[1]);
                out.extend_from_slice(text(b)?.as_bytes());
                Ok(IsNull::No)
            }
            (ValueRef::Text(b), &Type::INT8 | &Type::INT4 | &Type::INT2) => {
                let n: i64 =
                    text(b)?.trim().parse().map_err(|_| format!("`{}` is not an integer", text(b).unwrap_or("?")))?;
                Bind(ValueRef::Integer(n)).to_sql(ty, out)
            }
            (ValueRef::Text(b) | ValueRef::Blob(b), &Type::BYTEA) => b.to_sql(ty, out),
            // An array parameter (`$n::BIGINT[]`) in the binary format, each
            // element bound to the array's element type as above.
            (ValueRef::List(items), t) if matches!(t.kind(), Kind::Array(_)) => {
                items.iter().map(|v| Bind(v.as_ref())).collect::<Vec<_>>().to_sql(ty, out)
            }
            (v, t) => Err(format!("cannot bind {} to a parameter of type {t}", v.kind()).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// An owned parameter, for a statement sent ahead
/// ([`pg_client::Client::send`]), bound as [`Bind`].
#[derive(Debug)]
struct Owned(Value);

impl ToSql for Owned {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        Bind(self.0.as_ref()).to_sql(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn text(b: &[u8]) -> std::result::Result<&str, BoxError> {
    std::str::from_utf8(b).map_err(|_| BoxError::from("text parameter is not UTF-8"))
}

fn is_text(t: &Type) -> bool {
    matches!(*t, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON)
}

/// A column of any type the bus's schema uses, as a [`Value`].
struct Any(Value);

impl<'a> FromSql<'a> for Any {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        Ok(Any(match *ty {
            Type::BOOL => Value::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Value::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Value::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::OID => Value::Integer(i64::from(u32::from_sql(ty, raw)?)),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::JSONB => Value::Text(String::from_utf8_lossy(raw.get(1..).unwrap_or_default()).into_owned()),
            ref t if is_text(t) => Value::Text(<&str>::from_sql(ty, raw)?.to_owned()),
            ref t => return Err(format!("a column of type {t} is not read by the bus (cast it in the query)").into()),
        }))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(Any(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The server's message with its detail, instead of the client's bare
/// "db error".
pub(super) fn describe(e: &pg_client::Error) -> String {
    let (pg_client::Error::Postgres(e) | pg_client::Error::Sent { source: e, .. }) = e else { return e.to_string() };
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                s.push_str(&format!(" ({detail})"));
            }
            s
        }
        None => {
            use std::error::Error;
            match e.source() {
                Some(source) => format!("{e}: {source}"),
                None => e.to_string(),
            }
        }
    }
}

pub(super) fn kind(e: &pg_client::Error) -> ErrorKind {
    use pg_client::SqlState;
    let e = match e {
        pg_client::Error::Postgres(e) => e,
        pg_client::Error::TimedOut(_) => return ErrorKind::NoAnswer,
        pg_client::Error::Closed | pg_client::Error::Runtime(_) => return ErrorKind::Disconnected,
        pg_client::Error::Tls(_) => return ErrorKind::Other,
        pg_client::Error::Sent { source, .. } => source,
    };
    if e.is_closed() {
        return ErrorKind::Disconnected;
    }
    match e.code() {
        Some(c) if c.code().starts_with("23") => ErrorKind::Constraint,
        Some(c) if *c == SqlState::DISK_FULL || *c == SqlState::OUT_OF_MEMORY => ErrorKind::Full,
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
            ErrorKind::Conflict
        }
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::QUERY_CANCELED => ErrorKind::Busy,
        // Down, restarting, or refusing more sessions (`max_connections`):
        // the server cannot be used now; the message says which.
        Some(c)
            if c.code().starts_with("08") || c.code().starts_with("57P") || *c == SqlState::TOO_MANY_CONNECTIONS =>
        {
            ErrorKind::Disconnected
        }
        Some(_) => ErrorKind::Other,
        None => ErrorKind::Disconnected,
    }
}
