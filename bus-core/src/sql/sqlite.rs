//! The SQLite side of [`super::Conn`]: parameters bound by their `$n` names
//! without copying, its values and error codes in the shared terms.

use super::{ErrorKind, ToValue, ValueRef};
use rusqlite::types::{ToSqlOutput, ValueRef as SqliteRef};

/// A parameter as rusqlite binds it (borrowed, never copied).
pub(super) struct Bind<'a>(&'a dyn ToValue);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0.to_value() {
            ValueRef::Null => SqliteRef::Null,
            ValueRef::Integer(n) => SqliteRef::Integer(n),
            ValueRef::Real(f) => SqliteRef::Real(f),
            ValueRef::Text(t) => SqliteRef::Text(t),
            ValueRef::Blob(b) => SqliteRef::Blob(b),
        }))
    }
}

/// Binds `params` to `stmt` by name: the parameter `$n` takes the `n`-th
/// value (SQLite numbers named parameters in order of first appearance, so
/// binding by position would misplace `$2` written before `$1`). The SQL is
/// the same text PostgreSQL gets; nothing is rewritten.
pub(super) fn bind(stmt: &mut rusqlite::Statement<'_>, params: &[&dyn ToValue]) -> rusqlite::Result<()> {
    let mut highest = 0;
    for index in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(index).unwrap_or("?");
        let n: usize =
            name.strip_prefix('$').and_then(|digits| digits.parse().ok()).filter(|n| *n > 0).ok_or_else(|| {
                rusqlite::Error::InvalidParameterName(format!("{name} (parameters are written $1, $2, …)"))
            })?;
        let value = params.get(n - 1).ok_or(rusqlite::Error::InvalidParameterCount(n, params.len()))?;
        stmt.raw_bind_parameter(index, Bind(*value))?;
        highest = highest.max(n);
    }
    if highest != params.len() {
        return Err(rusqlite::Error::InvalidParameterCount(params.len(), highest));
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
