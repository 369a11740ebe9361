//! Opening a PostgreSQL bus database: the schema created or migrated by
//! whichever daemon comes first (the others wait on an advisory lock and
//! find it done), with the seed in the same transaction.

use super::{DbError, Location, Seed};
use crate::sql::Conn;

struct Migration {
    version: u32,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("../schema/postgres/v1.sql") },
    Migration { version: 2, sql: include_str!("../schema/postgres/v2.sql") },
    Migration { version: 3, sql: include_str!("../schema/postgres/v3.sql") },
    Migration { version: 4, sql: include_str!("../schema/postgres/v4.sql") },
    Migration { version: 5, sql: include_str!("../schema/postgres/v5.sql") },
    Migration { version: 6, sql: include_str!("../schema/postgres/v6.sql") },
    Migration { version: 7, sql: include_str!("../schema/postgres/v7.sql") },
    Migration { version: 8, sql: include_str!("../schema/postgres/v8.sql") },
];

/// The advisory lock key daemons migrate under ("bus" in ASCII).
const MIGRATION_LOCK: i64 = 0x0062_7573;

pub(super) fn open(location: &Location, url: &str, seed: &Seed<'_>) -> Result<(Conn, bool), DbError> {
    let mut conn = Conn::postgres(url).map_err(|source| DbError::Open { location: location.clone(), source })?;
    let created = migrate(location, &mut conn, seed)?;
    Ok((conn, created))
}

/// Takes the lock daemons (and `migrate --to`) create the schema under, for
/// the rest of `tx`.
pub(super) fn lock_schema(tx: &Conn) -> Result<(), DbError> {
    tx.query_row("SELECT pg_advisory_xact_lock($1)::text", [MIGRATION_LOCK], |_| Ok(()))?;
    Ok(())
}

/// How many tables the database's schema holds.
pub(super) fn table_count(conn: &Conn) -> Result<i64, DbError> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
        [],
        |r| r.get(0),
    )?)
}

/// Creates the whole schema (with its seeds) in `tx`, on an empty database.
pub(super) fn create_schema(location: &Location, tx: &Conn) -> Result<(), DbError> {
    tx.execute_batch(
        "CREATE TABLE Integration_SchemaVersion (Version BIGINT NOT NULL); \
         INSERT INTO Integration_SchemaVersion (Version) VALUES (0)",
    )?;
    apply(location, tx, 0)
}

fn apply(location: &Location, tx: &Conn, current: u32) -> Result<(), DbError> {
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let err = |source| DbError::Migrate { location: location.clone(), version: m.version, source };
        tx.execute_batch(m.sql).map_err(err)?;
        tx.execute("UPDATE Integration_SchemaVersion SET Version = $1", [m.version]).map_err(err)?;
    }
    Ok(())
}

fn migrate(location: &Location, conn: &mut Conn, seed: &Seed<'_>) -> Result<bool, DbError> {
    let tx = conn.transaction()?;
    lock_schema(&tx)?;
    let versioned: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name = 'integration_schemaversion')",
        [],
        |r| r.get(0),
    )?;
    let current: u32 = if versioned {
        tx.query_row("SELECT Version FROM Integration_SchemaVersion", [], |r| r.get(0))?
    } else {
        let tables = table_count(&tx)?;
        if tables > 0 {
            return Err(DbError::Foreign { location: location.clone(), tables });
        }
        create_schema(location, &tx)?;
        MIGRATIONS.last().map_or(0, |m| m.version)
    };
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(DbError::TooNew { location: location.clone(), found: current, known });
    }
    apply(location, &tx, current)?;
    let created = !versioned;
    if created {
        seed(&tx)?;
    }
    tx.commit()?;
    Ok(created)
}
