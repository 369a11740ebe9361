//! The event log (`CMS_EventLog`): what happened, for people to read.

use crate::db::{Database, DbError};
use crate::grid::{contains_pattern, GridPage, GridQuery};
use crate::sql::{params, Conn};
use connector_abi::EventType;
use serde::Serialize;
use std::sync::Mutex;

/// The source of the rows the bus itself writes.
pub const BUS_SOURCE: &str = "Integration bus";

/// One event-log row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Event {
    pub id: i64,
    /// `I`, `W` or `E`.
    pub event_type: String,
    pub time: String,
    pub source: String,
    pub code: String,
    pub description: String,
    pub document_name: Option<String>,
    /// Who did it (a management action), and from where.
    pub user_name: Option<String>,
    pub ip_address: Option<String>,
}

/// Who did a management action, and from where: the token's or session's
/// user name with the client address, or `cli` for the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: String,
    pub address: Option<String>,
}

impl Actor {
    /// The command line on this machine.
    pub fn cli() -> Actor {
        Actor { user: "cli".into(), address: None }
    }
}

/// A row to write.
#[derive(Debug, Clone, Default)]
pub struct NewEvent<'a> {
    pub event_type: EventType,
    pub source: &'a str,
    pub code: &'a str,
    pub description: &'a str,
    pub document_name: Option<&'a str>,
    /// Who did it, for a management action.
    pub actor: Option<&'a Actor>,
}

/// Filters for reading the event log; newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub source: Option<String>,
    pub event_type: Option<String>,
    pub code: Option<String>,
    /// Only rows with an ID below this (the next page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// The columns the event-log grid sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventSort {
    /// Time (the event ID: the order rows were written in).
    #[default]
    Time,
    Type,
    Source,
    Code,
    User,
}

impl EventSort {
    fn sql(self) -> &'static str {
        match self {
            EventSort::Time => "EventID",
            EventSort::Type => "EventType",
            EventSort::Source => "Source COLLATE NOCASE",
            EventSort::Code => "EventCode",
            EventSort::User => "UserName COLLATE NOCASE",
        }
    }
}

impl std::str::FromStr for EventSort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "time" => Ok(EventSort::Time),
            "type" => Ok(EventSort::Type),
            "source" => Ok(EventSort::Source),
            "code" => Ok(EventSort::Code),
            "user" => Ok(EventSort::User),
            other => Err(format!("sort must be one of time, type, source, code, user; not `{other}`")),
        }
    }
}

const COLUMNS: &str =
    "EventID, EventType, EventTime, Source, EventCode, Description, DocumentName, UserName, IPAddress";

fn event(r: &crate::sql::Row<'_>) -> crate::sql::Result<Event> {
    Ok(Event {
        id: r.get(0)?,
        event_type: r.get(1)?,
        time: r.get(2)?,
        source: r.get(3)?,
        code: r.get(4)?,
        description: r.get(5)?,
        document_name: r.get(6)?,
        user_name: r.get(7)?,
        ip_address: r.get(8)?,
    })
}

/// Writes and reads the event log through one connection of its own.
#[derive(Debug)]
pub struct EventLog {
    conn: Mutex<Conn>,
    db: Database,
}

impl EventLog {
    pub fn new(db: &Database) -> Result<Self, DbError> {
        Ok(EventLog { conn: Mutex::new(db.open_connection()?), db: db.clone() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conn> {
        // A panic while holding the lock cannot leave the connection in a
        // half-written state (every write is one statement), so a poisoned
        // lock is still usable.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        self.db.revive(&mut conn);
        conn
    }

    /// Writes one row. A row refused because the server had closed the
    /// connection (a restart) is written again on a new one: the event of a
    /// connector's call is not lost to a reconnection.
    pub fn write(&self, e: &NewEvent<'_>) -> Result<i64, DbError> {
        match self.insert(e) {
            Err(DbError::Sql(s)) if s.kind() == crate::sql::ErrorKind::Disconnected => self.insert(e),
            other => other,
        }
    }

    fn insert(&self, e: &NewEvent<'_>) -> Result<i64, DbError> {
        let conn = self.lock();
        let id = conn.prepare_cached(
            "INSERT INTO CMS_EventLog (EventType, Source, EventCode, Description, DocumentName, UserName, IPAddress) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING EventID",
        )?
        .query_row(
            params![
            e.event_type.code(),
            e.source,
            e.code,
            e.description,
            e.document_name,
            e.actor.map(|a| a.user.as_str()),
            e.actor.and_then(|a| a.address.as_deref())
            ],
            |r| r.get(0),
        )?;
        Ok(id)
    }

    /// Writes one row, and only logs a warning when that fails: for callers
    /// that are themselves reporting a problem.
    pub fn write_or_warn(&self, e: &NewEvent<'_>) {
        if let Err(error) = self.write(e) {
            tracing::warn!(source = e.source, code = e.code, error = %error, "could not write to the event log");
        }
    }

    /// Reads rows, newest first.
    pub fn list(&self, q: &EventQuery) -> Result<Vec<Event>, DbError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM CMS_EventLog \
             WHERE (Source = $1 OR $1 IS NULL) AND (EventType = $2 OR $2 IS NULL) AND (EventCode = $3 OR $3 IS NULL) \
             AND (EventID < $4 OR $4 IS NULL) ORDER BY EventID DESC LIMIT {}",
            q.limit.max(1)
        ))?;
        let rows = stmt.query_map(params![q.source, q.event_type, q.code, q.before_id], event)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// A page for the grid: the filters of `filters` (but its paging; its
    /// source matches any source that contains it, ignoring case), sorted
    /// and searched (description, source, code, user, document) as `grid` says.
    pub fn grid(&self, filters: &EventQuery, grid: &GridQuery<EventSort>) -> Result<GridPage<Event>, DbError> {
        let conn = self.lock();
        let search = grid.search.as_deref().map(contains_pattern);
        let like = crate::driver::of(&conn).like_ignoring_case();
        let filter = &format!(
            "FROM CMS_EventLog WHERE (Source {like} $1 ESCAPE '\\' OR $1 IS NULL) AND (EventType = $2 OR $2 IS NULL) \
             AND (EventCode = $3 OR $3 IS NULL) AND (Description {like} $4 ESCAPE '\\' \
             OR Source {like} $4 ESCAPE '\\' OR EventCode {like} $4 ESCAPE '\\' OR UserName {like} $4 ESCAPE '\\' \
             OR DocumentName {like} $4 ESCAPE '\\' OR $4 IS NULL)"
        );
        // In the grid a source is what a person types: part of the name, in
        // any case.
        let source = filters.source.as_deref().map(contains_pattern);
        let args = params![source, filters.event_type, filters.code, search];
        let total: i64 = conn.prepare_cached(&format!("SELECT COUNT(*) {filter}"))?.query_row(args, |r| r.get(0))?;
        let order = grid.order.sql();
        let sql = format!(
            "SELECT {COLUMNS} {filter} ORDER BY {} {order}, EventID {order} LIMIT {} OFFSET {}",
            grid.sort.sql(),
            grid.limit.max(1),
            grid.offset
        );
        let items = conn.prepare(&sql)?.query_map(args, event)?.collect::<Result<Vec<_>, _>>()?;
        Ok(GridPage { items, total, offset: grid.offset, limit: grid.limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_newest_first_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Database::open(&dir.path().join("bus.db")).unwrap();
        let log = EventLog::new(&db).unwrap();
        for code in ["A", "B", "C"] {
            log.write(&NewEvent { source: "X", code, ..Default::default() }).unwrap();
        }
        log.write(&NewEvent { source: "Y", code: "D", event_type: EventType::Warning, ..Default::default() }).unwrap();
        let all = log.list(&EventQuery { limit: 10, ..Default::default() }).unwrap();
        assert_eq!(all.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(), ["D", "C", "B", "A"]);
        let x = log.list(&EventQuery { source: Some("X".into()), limit: 2, ..Default::default() }).unwrap();
        assert_eq!(x.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(), ["C", "B"]);
        let page2 = log
            .list(&EventQuery { source: Some("X".into()), limit: 2, before_id: Some(x[1].id), ..Default::default() })
            .unwrap();
        assert_eq!(page2.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(), ["A"]);
        let w = log.list(&EventQuery { event_type: Some("W".into()), limit: 10, ..Default::default() }).unwrap();
        assert_eq!(w.len(), 1);
    }
}
