//! Moving up: copying a SQLite bus into an empty PostgreSQL database —
//! registry, settings, schedules, content, queues (with their order and
//! IDs), sync log, event log, connector state and history — in one transaction, so a failed copy
//! leaves the target as empty as it was.

use super::{Database, DbError, Location};
use crate::sql::{Conn, Dialect, SqlError, ToValue, Value};
use serde::Serialize;
use thiserror::Error;

/// Why nothing was copied.
#[derive(Debug, Error)]
pub enum MigrateError {
    #[error("the source must be a SQLite file, not {0}")]
    SourceNotFile(Location),
    #[error("the target must be a postgres:// URL, not {0}")]
    TargetNotPostgres(Location),
    #[error(
        "the target database {location} is not empty ({tables} table(s)); migrate copies into an empty database only"
    )]
    NotEmpty { location: Location, tables: i64 },
    #[error("cannot copy {table} (row with {key} = {id}): {source}; nothing was copied")]
    Row { table: &'static str, key: &'static str, id: String, source: SqlError },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}; nothing was copied")]
    Sql(#[from] SqlError),
}

/// How many rows each table got.
#[derive(Debug, Clone, Serialize)]
pub struct Copied {
    pub tables: Vec<(String, i64)>,
}

/// One table to copy: its name, its columns in SQLite, its key, and the
/// rows to take (a `WHERE` clause; queue rows already delivered are left
/// behind, as a restart would remove them).
struct Table {
    name: &'static str,
    key: &'static str,
    filter: &'static str,
    /// Whether the key is an identity whose sequence moves past the copy.
    identity: bool,
}

/// In the order foreign keys need.
const TABLES: &[Table] = &[
    Table { name: "Integration_Connector", key: "ConnectorID", filter: "", identity: true },
    Table { name: "CMS_SettingsKey", key: "KeyName", filter: "", identity: false },
    Table { name: "CMS_ScheduledTask", key: "TaskName", filter: "", identity: false },
    Table { name: "CMS_Object", key: "ObjectID", filter: "", identity: true },
    Table { name: "CMS_Tree", key: "NodeID", filter: "", identity: true },
    Table { name: "CMS_Document", key: "DocumentID", filter: "", identity: true },
    Table {
        name: "Integration_Task",
        key: "TaskID",
        filter: "WHERE EXISTS (SELECT 1 FROM Integration_Synchronization s WHERE s.SynchronizationTaskID = TaskID \
                 AND s.SynchronizationID NOT IN (SELECT DeliveredSynchronizationID FROM Integration_Delivered))",
        identity: true,
    },
    Table {
        name: "Integration_Synchronization",
        key: "SynchronizationID",
        filter: "WHERE SynchronizationID NOT IN (SELECT DeliveredSynchronizationID FROM Integration_Delivered) \
                 AND SynchronizationConnectorID IN (SELECT ConnectorID FROM Integration_Connector)",
        identity: true,
    },
    Table {
        name: "Integration_SyncLog",
        key: "SyncLogID",
        filter: "WHERE SyncLogSynchronizationID IN (SELECT SynchronizationID FROM Integration_Synchronization \
                 WHERE SynchronizationID NOT IN (SELECT DeliveredSynchronizationID FROM Integration_Delivered) \
                 AND SynchronizationConnectorID IN (SELECT ConnectorID FROM Integration_Connector))",
        identity: true,
    },
    Table { name: "CMS_EventLog", key: "EventID", filter: "", identity: true },
    Table {
        name: "Integration_ConnectorState",
        key: "StateConnectorID",
        filter: "WHERE StateConnectorID IN (SELECT ConnectorID FROM Integration_Connector)",
        identity: false,
    },
    Table {
        name: "Integration_ConnectorHistory",
        key: "HistoryConnectorID",
        filter: "WHERE HistoryConnectorID IN (SELECT ConnectorID FROM Integration_Connector)",
        identity: false,
    },
];

/// Copies the SQLite bus `source` into the empty PostgreSQL database at
/// `target` (creating its schema); refuses a target that holds any table.
pub fn to_postgres(source: &Database, target: &Location) -> Result<Copied, MigrateError> {
    if source.dialect() != Dialect::Sqlite {
        return Err(MigrateError::SourceNotFile(source.location().clone()));
    }
    let Location::Postgres(url) = target else { return Err(MigrateError::TargetNotPostgres(target.clone())) };
    // No daemon may write the file while it is copied (what it accepted
    // after the copy began would be missing from the target), and none may
    // start on it until the copy is done.
    let _hold = match source.location() {
        Location::File(path) => Some(super::holder::take(path, &format!("a migration (PID {})", std::process::id()))?),
        Location::Postgres(_) | Location::Memory(_) => None,
    };
    let mut from = source.connect()?;
    // One read transaction: every table as of one moment, even while a
    // daemon still writes to the file.
    let from = from.transaction()?;
    let mut to = Conn::postgres(url).map_err(|source| DbError::Open { location: target.clone(), source })?;
    let tx = to.transaction()?;
    // Under the lock daemons create the schema under: empty, and it stays so
    // until this commits.
    super::postgres::lock_schema(&tx)?;
    let tables = super::postgres::table_count(&tx)?;
    if tables > 0 {
        return Err(MigrateError::NotEmpty { location: target.clone(), tables });
    }
    // The schema and its seeds, in this very transaction: the seeded rows
    // make way for the copied ones.
    super::postgres::create_schema(target, &tx)?;
    tx.execute_batch(
        "DELETE FROM Integration_Connector; DELETE FROM CMS_SettingsKey; DELETE FROM CMS_ScheduledTask; \
         DELETE FROM CMS_EventLog",
    )?;
    let mut copied = Vec::new();
    for table in TABLES {
        let n = copy_table(&from, &tx, table)?;
        if table.identity {
            tx.execute_batch(&format!(
                "SELECT setval(pg_get_serial_sequence('{name}', '{key}'), COALESCE((SELECT MAX({key}) FROM {name}), 0) + 1, false)",
                name = table.name.to_ascii_lowercase(),
                key = table.key.to_ascii_lowercase()
            ))?;
        }
        copied.push((table.name.to_owned(), n));
    }
    tx.commit()?;
    Ok(Copied { tables: copied })
}

fn copy_table(from: &Conn, to: &Conn, table: &Table) -> Result<i64, MigrateError> {
    let columns: Vec<String> = from
        .prepare(&format!("SELECT name FROM pragma_table_info('{}') ORDER BY cid", table.name))?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let key_index = columns.iter().position(|c| c.eq_ignore_ascii_case(table.key)).unwrap_or(0);
    let list = columns.join(", ");
    let marks = (1..=columns.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let insert = format!("INSERT INTO {} ({list}) VALUES ({marks})", table.name);
    let mut read =
        from.prepare(&format!("SELECT {list} FROM {} {} ORDER BY {}", table.name, table.filter, table.key))?;
    let rows = read.query_map([], |r| (0..columns.len()).map(|i| r.get::<Value>(i)).collect::<Result<Vec<_>, _>>())?;
    let mut write = to.prepare_cached(&insert)?;
    let mut n = 0;
    for row in rows {
        let row = row?;
        let values: Vec<&dyn ToValue> = row.iter().map(|v| v as &dyn ToValue).collect();
        write.execute(values).map_err(|source| MigrateError::Row {
            table: table.name,
            key: table.key,
            id: format!("{:?}", row.get(key_index).unwrap_or(&Value::Null)),
            source,
        })?;
        n += 1;
    }
    Ok(n)
}
