//! The CRM's own database: contacts, groups, memberships (with its own IDs
//! and foreign keys), and a change table its triggers fill, which the
//! connector polls for incoming changes.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS crm_group (
    id    INTEGER PRIMARY KEY,
    code  TEXT NOT NULL UNIQUE,
    title TEXT
);
CREATE TABLE IF NOT EXISTS crm_contact (
    id        INTEGER PRIMARY KEY,
    login     TEXT NOT NULL UNIQUE,
    full_name TEXT,
    email     TEXT
);
CREATE TABLE IF NOT EXISTS crm_membership (
    contact_id INTEGER NOT NULL REFERENCES crm_contact (id) ON DELETE CASCADE,
    group_id   INTEGER NOT NULL REFERENCES crm_group (id) ON DELETE CASCADE,
    PRIMARY KEY (contact_id, group_id)
);
-- Every change, whoever makes it; `processed`: 0 new, 2 being logged, 1 done.
CREATE TABLE IF NOT EXISTS crm_change (
    id        INTEGER PRIMARY KEY,
    entity    TEXT NOT NULL,
    op        TEXT NOT NULL,
    data      TEXT NOT NULL,
    processed INTEGER NOT NULL DEFAULT 0,
    claimed   TEXT
);
CREATE TRIGGER IF NOT EXISTS crm_contact_ins AFTER INSERT ON crm_contact BEGIN
    INSERT INTO crm_change (entity, op, data) VALUES ('contact', 'insert',
        json_object('id', NEW.id, 'login', NEW.login, 'full_name', NEW.full_name, 'email', NEW.email));
END;
CREATE TRIGGER IF NOT EXISTS crm_contact_upd AFTER UPDATE ON crm_contact BEGIN
    INSERT INTO crm_change (entity, op, data) VALUES ('contact', 'update',
        json_object('id', NEW.id, 'login', NEW.login, 'full_name', NEW.full_name, 'email', NEW.email));
END;
CREATE TRIGGER IF NOT EXISTS crm_contact_del AFTER DELETE ON crm_contact BEGIN
    INSERT INTO crm_change (entity, op, data) VALUES ('contact', 'delete', json_object('id', OLD.id, 'login', OLD.login));
END;
CREATE TRIGGER IF NOT EXISTS crm_group_ins AFTER INSERT ON crm_group BEGIN
    INSERT INTO crm_change (entity, op, data) VALUES ('group', 'insert', json_object('id', NEW.id, 'code', NEW.code, 'title', NEW.title));
END;
CREATE TRIGGER IF NOT EXISTS crm_group_upd AFTER UPDATE ON crm_group BEGIN
    INSERT INTO crm_change (entity, op, data) VALUES ('group', 'update', json_object('id', NEW.id, 'code', NEW.code, 'title', NEW.title));
END;
CREATE TRIGGER IF NOT EXISTS crm_group_del AFTER DELETE ON crm_group BEGIN
    INSERT INTO crm_change (entity, op, data) VALUES ('group', 'delete', json_object('id', OLD.id, 'code', OLD.code));
END;
CREATE TRIGGER IF NOT EXISTS crm_membership_ins AFTER INSERT ON crm_membership BEGIN
    INSERT INTO crm_change (entity, op, data) VALUES ('membership', 'insert',
        json_object('contact_id', NEW.contact_id, 'group_id', NEW.group_id));
END;
CREATE TRIGGER IF NOT EXISTS crm_membership_del AFTER DELETE ON crm_membership BEGIN
    INSERT INTO crm_change (entity, op, data) VALUES ('membership', 'delete',
        json_object('contact_id', OLD.contact_id, 'group_id', OLD.group_id,
                    'login', (SELECT login FROM crm_contact WHERE id = OLD.contact_id),
                    'code', (SELECT code FROM crm_group WHERE id = OLD.group_id)));
END;
";

/// Opens (creating if needed) the CRM database.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Runs `write` in one transaction and marks the change rows it caused as
/// processed in the same transaction: the connector's own writes never come
/// back to the bus as incoming changes.
pub fn write_quietly<T>(
    conn: &mut Connection,
    write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let before: i64 = tx.query_row("SELECT ifnull(max(id), 0) FROM crm_change", [], |r| r.get(0))?;
    let out = write(&tx)?;
    tx.execute("UPDATE crm_change SET processed = 1 WHERE id > ?1", [before])?;
    tx.commit()?;
    Ok(out)
}

pub fn contact_id(conn: &Connection, login: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT id FROM crm_contact WHERE login = ?1", [login], |r| r.get(0)).optional()
}

pub fn group_id(conn: &Connection, code: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT id FROM crm_group WHERE code = ?1", [code], |r| r.get(0)).optional()
}

pub fn contact_login(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT login FROM crm_contact WHERE id = ?1", [id], |r| r.get(0)).optional()
}

pub fn group_code(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT code FROM crm_group WHERE id = ?1", [id], |r| r.get(0)).optional()
}

/// A change made in the CRM, not yet handed to the bus.
pub struct Change {
    pub id: i64,
    pub entity: String,
    pub op: String,
    pub data: Value,
}

/// Claims the oldest new changes (so two pollers never log one twice).
pub fn claim(conn: &mut Connection, limit: u32) -> rusqlite::Result<Vec<Change>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let changes = tx
        .prepare("SELECT id, entity, op, data FROM crm_change WHERE processed = 0 ORDER BY id LIMIT ?1")?
        .query_map([limit], |r| {
            Ok(Change {
                id: r.get(0)?,
                entity: r.get(1)?,
                op: r.get(2)?,
                data: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or(Value::Null),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for c in &changes {
        tx.execute("UPDATE crm_change SET processed = 2, claimed = datetime('now') WHERE id = ?1", [c.id])?;
    }
    tx.commit()?;
    Ok(changes)
}

/// Marks a claimed change done (`true`) or new again (`false`).
pub fn settle(conn: &Connection, id: i64, done: bool) -> rusqlite::Result<()> {
    conn.execute("UPDATE crm_change SET processed = ?1 WHERE id = ?2", params![if done { 1 } else { 0 }, id])?;
    Ok(())
}

/// Changes claimed a minute ago or more were left by an instance that
/// stopped (a crash): they are new again.
pub fn release_stale_claims(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE crm_change SET processed = 0 WHERE processed = 2 AND claimed < datetime('now', '-60 seconds')",
        [],
    )?;
    Ok(())
}
