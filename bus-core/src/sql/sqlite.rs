//! The SQLite side of [`super::Conn`]: parameters bound by their `$n` names
//! without copying, its values and error codes in the shared terms.

use super::{ErrorKind, ToValue, ValueRef};
use rusqlite::types::{ToSqlOutput, ValueRef as SqliteRef};

/// A parameter as rusqlite binds it (borrowed, never copied).
pub(super) struct Bind<'a>(&'a dyn ToValue);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0.to_value() {
            ValueRef::List(items) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!(
                        "a list of {} values cannot be bound in SQLite (an array parameter is PostgreSQL's)",
                        items.len()
                    )
                    .into(),
                ))
            }
            ValueRef::Null => SqliteRef::Null,
            ValueRef::Integer(n) => SqliteRef::Integer(n),
            ValueRef::Real(f) => SqliteRef::Real(f),
            ValueRef::Text(t) => SqliteRef::Text(t),
            ValueRef::Blob(b) => SqliteRef::Blob(b),
        }))
    }
}

/// Binds `params` to `stmt`: the value `n` to the parameter `$n`. The SQL
/// is the text PostgreSQL gets, nothing rewritten. SQLite numbers named
/// parameters in order of first appearance, and the bus's SQL writes them
/// in that order (`$1` first, then `$2`, … — a parameter may appear again
/// later), so the `n`-th value binds to index `n` without looking names up
/// on every execution; debug builds (every test) check each statement's
/// names, and the tidy test checks every SQL literal of the engine.
pub(super) fn bind(stmt: &mut rusqlite::Statement<'_>, params: &[&dyn ToValue]) -> rusqlite::Result<()> {
    let count = stmt.parameter_count();
    if count != params.len() {
        return Err(rusqlite::Error::InvalidParameterCount(params.len(), count));
    }
    #[cfg(debug_assertions)]
    check_names(stmt)?;
    for (index, value) in params.iter().enumerate() {
        stmt.raw_bind_parameter(index + 1, Bind(*value))?;
    }
    Ok(())
}

/// Each parameter is `$n` at index `n`.
#[cfg(debug_assertions)]
fn check_names(stmt: &rusqlite::Statement<'_>) -> rusqlite::Result<()> {
    for index in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(index).unwrap_or("?");
        if name.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) != Some(index) {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "{name} (parameters are written $1, $2, … in order of first appearance)"
            )));
        }
    }
    Ok(())
}

pub(super) fn value(v: SqliteRef<'_>) -> ValueRef<'_> {
    match v {
        SqliteRef::Null => ValueRef::Null,
        SqliteRef::Integer(n) => ValueRef::Integer(n),
        SqliteRef::Real(f) => ValueRef::Real(f),
        SqliteRef::Text(t) => ValueRef::Text(t),
        SqliteRef::Blob(b) => ValueRef::Blob(b),
    }
}

pub(super) fn kind(e: &rusqlite::Error) -> ErrorKind {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => ErrorKind::Constraint,
        Some(ErrorCode::DiskFull) => ErrorKind::Full,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ErrorKind::Busy,
        _ => ErrorKind::Other,
    }
}
