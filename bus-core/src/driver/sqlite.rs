//! The SQLite driver: one writer at a time (the write gate, then SQLite's
//! write lock), so a transaction sees exactly what committed before it.

use super::{ChangeStart, Driver, Ending, QueueHeads, Reruns, Result, StartAsk};
use crate::queue_rows::{self, NewRelation, NewTask};
use crate::settings;
use crate::sql::{params, Conn, OptionalExtension, SqlError, ToValue};

pub(super) struct Sqlite;

/// A JSON path naming one top-level field.
fn json_path(field: &str) -> String {
    format!("$.\"{}\"", field.replace('"', ""))
}

impl Driver for Sqlite {
    /// Two statements a task: SQLite has no `INSERT` inside `WITH`, and a
    /// statement costs no round trip. The commit stays the caller's (the
    /// write gate's group commit decides when it reaches the disk).
    fn log_tasks(&self, tx: &Conn, tasks: &[(NewTask<'_>, &[NewRelation])], _ending: Ending) -> Result<Vec<i64>> {
        tasks
            .iter()
            .map(|(task, relations)| {
                let task_id = queue_rows::insert_task(tx, task)?;
                queue_rows::insert_relations(tx, task_id, task.direction, relations)?;
                Ok(task_id)
            })
            .collect()
    }

    fn queue_heads(&self) -> QueueHeads {
        QueueHeads::Known
    }

    /// No ID is drawn ahead here (`begin_change`), so nothing calls this;
    /// were it called, the insert would run at once.
    fn defer_object(&self, conn: &Conn, values: &[&dyn ToValue], id: i64) -> Result<()> {
        conn.defer(
            "INSERT INTO CMS_Object (ObjectID, ObjectType, ObjectGUID, ObjectCodeName, ObjectDisplayName, \
             ObjectSiteName, ObjectParentType, ObjectParentID, ObjectGroupID, ObjectFields, ObjectLastModified) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            values,
            id,
        )
    }

    /// Statements cost no round trip here: the settings, then the registry
    /// version. The write lock keeps the registry as read until the commit;
    /// the rows are looked at only when the registry changed since the
    /// connectors were loaded.
    /// Nothing is cached ([`StartAsk::start`] makes no difference): reading
    /// costs less than checking would.
    fn begin_change(&self, tx: &Conn, ask: &StartAsk<'_>) -> Result<ChangeStart> {
        let ids = ask.ids;
        let settings = settings::read(tx)?;
        let version: i64 =
            tx.prepare_cached("SELECT Version FROM Integration_RegistryVersion")?.query_row([], |r| r.get(0))?;
        if version == ask.registry_version {
            return Ok(ChangeStart { settings, present: ids.to_vec(), object_ids: Vec::new() });
        }
        let mut exists = tx.prepare_cached("SELECT 1 FROM Integration_Connector WHERE ConnectorID = $1")?;
        let mut present = Vec::with_capacity(ids.len());
        for &id in ids {
            if exists.exists([id])? {
                present.push(id);
            }
        }
        Ok(ChangeStart { settings, present, object_ids: Vec::new() })
    }

    fn start_was_stale(&self, _error: &SqlError) -> bool {
        false
    }

    fn ids_lost(&self, _error: &SqlError) -> bool {
        false
    }

    /// A start is read under the write lock and rows go one by one.
    fn reruns(&self) -> Reruns {
        Reruns::Never
    }

    fn hold_connector(&self, tx: &Conn, id: i64) -> Result<bool> {
        tx.prepare_cached("SELECT 1 FROM Integration_Connector WHERE ConnectorID = $1")?.exists([id])
    }

    /// `BEGIN IMMEDIATE` already holds the write lock.
    fn lock_connector_for_delete(&self, _tx: &Conn, _name: &str) -> Result<()> {
        Ok(())
    }

    fn guid_taken(&self, tx: &Conn, _error: &SqlError, guid: &str) -> Result<bool> {
        tx.prepare_cached("SELECT 1 FROM CMS_Object WHERE ObjectGUID = $1")?.exists([guid])
    }

    fn objects_referencing(&self, conn: &Conn, references: &[(&str, &str)], id: i64) -> Result<Vec<(usize, i64)>> {
        let mut stmt = conn.prepare_cached(
            "SELECT ObjectID FROM CMS_Object WHERE ObjectType = $1 AND json_extract(ObjectFields, $2) = $3 \
             ORDER BY ObjectID",
        )?;
        let mut found = Vec::new();
        for (index, (object_type, field)) in references.iter().enumerate() {
            for object_id in stmt.query_map(params![object_type, json_path(field), id], |r| r.get(0))? {
                found.push((index, object_id?));
            }
        }
        Ok(found)
    }

    fn document_referencing(&self, conn: &Conn, class_name: &str, field: &str, id: i64) -> Result<Option<i64>> {
        conn.prepare_cached(
            "SELECT d.DocumentID FROM CMS_Document d JOIN CMS_Tree n ON n.NodeID = d.DocumentNodeID \
             WHERE n.NodeClassName = $1 AND json_extract(d.DocumentFields, $2) = $3 LIMIT 1",
        )?
        .query_row(params![class_name, json_path(field), id], |r| r.get(0))
        .optional()
    }

    fn not_delivered(&self) -> &'static str {
        "NOT EXISTS (SELECT 1 FROM Integration_Delivered d WHERE d.DeliveredSynchronizationID = s.SynchronizationID)"
    }

    fn count_waiting(&self) -> &'static str {
        // All relations minus the recorded deliveries among them: the first
        // count stays a scan of the index alone, the second reads a few rows.
        "SELECT (SELECT COUNT(*) FROM Integration_Synchronization WHERE SynchronizationIsInbound = $1 \
                 AND (SynchronizationConnectorID = $2 OR $2 IS NULL)) \
              - (SELECT COUNT(*) FROM Integration_Delivered d JOIN Integration_Synchronization s \
                 ON s.SynchronizationID = d.DeliveredSynchronizationID WHERE s.SynchronizationIsInbound = $1 \
                 AND (s.SynchronizationConnectorID = $2 OR $2 IS NULL))"
    }

    fn like_ignoring_case(&self) -> &'static str {
        "LIKE"
    }
}
