//! The connector registry: the `Integration_Connector` table.

use crate::db::{Database, DbError};
use crate::delivery::{DeliverySettings, Ordering};
use crate::isolation::Isolation;
use crate::sql::{params, Conn, OptionalExtension, Row};
use crate::text;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One registered connector, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConnectorRow {
    pub id: i64,
    /// The code name; must equal the name the connector reports at init.
    pub name: String,
    pub display_name: String,
    /// The library in the connectors folder (`sample_connector` or a file name).
    pub assembly_name: String,
    /// The class of the library to create.
    pub class_name: String,
    pub enabled: bool,
    pub last_modified: String,
    /// The connector's own settings, handed to it when it is created.
    pub config: String,
    /// Where the connector runs (`ConnectorIsolation`).
    #[serde(default)]
    pub isolation: IsolationSetting,
    /// In which order its outgoing tasks go (`ConnectorOrdering`).
    #[serde(default)]
    pub ordering: Ordering,
    /// Calls in flight at once with `object` ordering
    /// (`ConnectorConcurrency`; null: 1).
    #[serde(default)]
    pub concurrency: Option<i64>,
    /// Tasks per delivery request (`ConnectorBatchSize`; null: the
    /// `[isolation] batch_size` of `bus.toml`).
    #[serde(default)]
    pub batch_size: Option<i64>,
    /// Calls per second at most (`ConnectorRateLimit`; null: no limit).
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Why the row cannot be used as stored (a value SQL put there that the
    /// daemon does not accept); such a row is not loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A row's `ConnectorIsolation`: a mode, or the default of `bus.toml`
/// (NULL or empty in the table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationSetting {
    /// Whatever `isolation` in `bus.toml` says.
    #[default]
    Default,
    /// In a child process of its own.
    Process,
    /// Inside the daemon.
    InProcess,
}

impl IsolationSetting {
    /// The mode, with `default` for [`IsolationSetting::Default`].
    pub fn or(self, default: Isolation) -> Isolation {
        match self {
            IsolationSetting::Default => default,
            IsolationSetting::Process => Isolation::Process,
            IsolationSetting::InProcess => Isolation::InProcess,
        }
    }

    /// The column's value.
    fn column(self) -> Option<&'static str> {
        match self {
            IsolationSetting::Default => None,
            IsolationSetting::Process => Some("process"),
            IsolationSetting::InProcess => Some("in-process"),
        }
    }

    fn from_column(value: &str, problems: &mut Vec<String>) -> IsolationSetting {
        value.trim().parse().unwrap_or_else(|e| {
            problems.push(format!("ConnectorIsolation: {e} (empty means the default)"));
            IsolationSetting::Default
        })
    }
}

impl std::str::FromStr for IsolationSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" | "" => Ok(IsolationSetting::Default),
            "process" => Ok(IsolationSetting::Process),
            "in-process" => Ok(IsolationSetting::InProcess),
            other => Err(format!("`{}` is not an isolation: use process, in-process or default", other.escape_debug())),
        }
    }
}

impl std::fmt::Display for IsolationSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.column().unwrap_or("default"))
    }
}

/// The code name of the specification's sample connector, which the schema
/// registers (disabled) in every new database.
pub(crate) const SAMPLE_CONNECTOR: &str = "SampleIntegrationConnector";

/// The longest assembly or class name accepted.
pub(crate) const MAX_NAME: usize = 400;
/// The longest connector configuration accepted.
pub(crate) const MAX_CONFIG: usize = 1024 * 1024;

/// A registry text column read as it is stored: anything SQLite accepts
/// can be there, so a value that is not usable text becomes a problem of the
/// row instead of an error of the whole read.
fn text(r: &Row<'_>, i: usize, column: &str, problems: &mut Vec<String>) -> crate::sql::Result<String> {
    use crate::sql::ValueRef;
    Ok(match r.get_ref(i)? {
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                problems.push(format!("{column} is not valid UTF-8 text"));
                String::from_utf8_lossy(bytes).into_owned()
            }
        },
        ValueRef::Blob(bytes) => {
            problems.push(format!("{column} holds binary data (a BLOB of {} bytes), not text", bytes.len()));
            String::from_utf8_lossy(bytes).into_owned()
        }
        ValueRef::Null => {
            problems.push(format!("{column} is NULL"));
            String::new()
        }
        ValueRef::Integer(n) => {
            problems.push(format!("{column} holds the number {n}, not text"));
            n.to_string()
        }
        ValueRef::Real(f) => {
            problems.push(format!("{column} holds the number {f}, not text"));
            f.to_string()
        }
        ValueRef::List(items) => {
            problems.push(format!("{column} holds a list of {} values, not text", items.len()));
            String::new()
        }
    })
}

/// The rules every row must meet, whoever wrote it (API, CLI, plain SQL):
/// each broken one is a problem naming its column.
fn check_row(row: &ConnectorRow, problems: &mut Vec<String>) {
    let mut check = |r: Result<(), RegistryError>| {
        if let Err(RegistryError::Invalid { field, reason }) = r {
            problems.push(format!("{} ({field}): {reason}", column_of(field)));
        }
    };
    check(validate_code_name(&row.name));
    check(validate_text("display name", &row.display_name, Rules::Read));
    check(validate_assembly(&row.assembly_name, Rules::Read));
    check(validate_text("class name", &row.class_name, Rules::Read));
    check(validate_config(&row.config));
}

fn column_of(field: &str) -> &'static str {
    match field {
        "code name" => "ConnectorName",
        "display name" => "ConnectorDisplayName",
        "assembly name" => "ConnectorAssemblyName",
        "class name" => "ConnectorClassName",
        _ => "ConnectorConfig",
    }
}

fn validate_config(config: &str) -> Result<(), RegistryError> {
    let invalid = |reason: String| RegistryError::Invalid { field: "config", reason };
    if config.chars().count() > MAX_CONFIG {
        return Err(invalid(format!("must be at most {MAX_CONFIG} characters, not {}", config.chars().count())));
    }
    if config.contains('\0') {
        return Err(invalid("contains a NUL character".into()));
    }
    Ok(())
}

/// A connector to register.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct NewConnector {
    /// The code name (the name the connector's `init` reports).
    #[schemars(pattern(text::CODE_NAME), length(min = 1, max = 100))]
    pub name: String,
    /// Absent or blank: the code name.
    #[serde(default)]
    #[schemars(pattern(text::NO_CONTROL), length(max = 400))]
    pub display_name: Option<String>,
    /// The library in the connectors folder (`sample_connector` is
    /// `libsample_connector.so`; a name with its extension is taken as is).
    #[schemars(pattern(text::LIBRARY), length(max = 400))]
    pub assembly_name: String,
    /// The connector class the library exports.
    #[schemars(pattern(text::NAME), length(max = 400))]
    pub class_name: String,
    #[serde(default)]
    pub enabled: bool,
    /// The connector's own settings, handed to it when it is created.
    #[serde(default)]
    #[schemars(pattern(text::NO_NUL), length(max = 1048576))]
    pub config: String,
    /// Where it runs; absent: the default of `bus.toml`.
    #[serde(default)]
    pub isolation: IsolationSetting,
    /// In which order its outgoing tasks go; absent: `connector`.
    #[serde(default)]
    pub ordering: Ordering,
    /// Calls in flight at once with `object` ordering; absent or null: 1.
    #[serde(default, deserialize_with = "crate::json_int::optional")]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: Option<i64>,
    /// Tasks per delivery request; absent or null: `[isolation] batch_size`.
    #[serde(default, deserialize_with = "crate::json_int::optional")]
    #[schemars(range(min = 1, max = 1000))]
    pub batch_size: Option<i64>,
    /// Calls per second at most; absent or null: no limit.
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub rate_limit: Option<f64>,
}

impl NewConnector {
    fn delivery(&self) -> DeliverySettings {
        DeliverySettings {
            ordering: self.ordering,
            concurrency: self.concurrency,
            batch_size: self.batch_size,
            rate_limit: self.rate_limit,
        }
    }
}

/// Changes to a registered connector; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct ConnectorPatch {
    #[serde(default)]
    #[schemars(pattern(text::CODE_NAME), length(min = 1, max = 100))]
    pub name: Option<String>,
    #[serde(default)]
    #[schemars(pattern(text::NAME), length(max = 400))]
    pub display_name: Option<String>,
    #[serde(default)]
    #[schemars(pattern(text::LIBRARY), length(max = 400))]
    pub assembly_name: Option<String>,
    #[serde(default)]
    #[schemars(pattern(text::NAME), length(max = 400))]
    pub class_name: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    #[schemars(pattern(text::NO_NUL), length(max = 1048576))]
    pub config: Option<String>,
    /// `default` goes back to the default of `bus.toml`.
    #[serde(default)]
    pub isolation: Option<IsolationSetting>,
    #[serde(default)]
    pub ordering: Option<Ordering>,
    /// null goes back to the default (1).
    #[serde(default, deserialize_with = "crate::json_int::set_or_clear")]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: Option<Option<i64>>,
    /// null goes back to the default (`[isolation] batch_size`).
    #[serde(default, deserialize_with = "crate::json_int::set_or_clear")]
    #[schemars(range(min = 1, max = 1000))]
    pub batch_size: Option<Option<i64>>,
    /// null removes the limit.
    #[serde(default, deserialize_with = "set_or_clear_number")]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub rate_limit: Option<Option<f64>>,
}

/// A patch field that may be set to `null`: absent is `None`, `null` is
/// `Some(None)`.
fn set_or_clear_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

impl ConnectorPatch {
    /// The fields this patch changes from `before` (the row as it was), for
    /// the event log: a form that sends every field logs only what it
    /// changed (the configuration's text is not repeated, it may hold
    /// credentials).
    pub fn describe(&self, before: &ConnectorRow) -> String {
        let mut parts = Vec::new();
        let mut text = |label: &str, new: &Option<String>, old: &str| {
            if let Some(v) = new.as_deref().filter(|v| *v != old) {
                parts.push(format!("{label} → `{v}`"));
            }
        };
        text("code name", &self.name, &before.name);
        text("display name", &self.display_name, &before.display_name);
        text("assembly name", &self.assembly_name, &before.assembly_name);
        text("class name", &self.class_name, &before.class_name);
        if let Some(v) = self.enabled.filter(|v| *v != before.enabled) {
            parts.push(format!("enabled → {v}"));
        }
        if self.config.as_ref().is_some_and(|c| *c != before.config) {
            parts.push("configuration changed".into());
        }
        if let Some(v) = self.isolation.filter(|v| *v != before.isolation) {
            parts.push(format!("isolation → {}", v.column().unwrap_or("default")));
        }
        if let Some(v) = self.ordering.filter(|v| *v != before.ordering) {
            parts.push(format!("ordering → {v}"));
        }
        let or_default = |v: Option<String>| v.unwrap_or_else(|| "default".into());
        if let Some(v) = self.concurrency.filter(|v| *v != before.concurrency) {
            parts.push(format!("concurrency → {}", or_default(v.map(|n| n.to_string()))));
        }
        if let Some(v) = self.batch_size.filter(|v| *v != before.batch_size) {
            parts.push(format!("batch size → {}", or_default(v.map(|n| n.to_string()))));
        }
        if let Some(v) = self.rate_limit.filter(|v| *v != before.rate_limit) {
            parts.push(format!("rate limit → {}", v.map_or_else(|| "none".into(), |r| format!("{r}/s"))));
        }
        if parts.is_empty() {
            "nothing changed".into()
        } else {
            parts.join(", ")
        }
    }
}

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("a connector with code name `{0}` is already registered")]
    Duplicate(String),
    #[error(
        "code name `{name}` equals the registered `{other}` but for case; code names must be unique ignoring case"
    )]
    DuplicateIgnoringCase { name: String, other: String },
    #[error("no connector with code name `{0}` is registered")]
    NotFound(String),
    #[error("connector `{name}` still has {queued} queued task relation(s); deleting it discards them: ask for that explicitly (API `?discard_queue=true`, CLI `--discard-queue`), or delete or synchronize the tasks first")]
    HasQueue { name: String, queued: i64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<crate::sql::SqlError> for RegistryError {
    fn from(e: crate::sql::SqlError) -> Self {
        RegistryError::Db(DbError::Sql(e))
    }
}

const COLUMNS: &str = "ConnectorID, ConnectorName, ConnectorDisplayName, ConnectorAssemblyName, \
    ConnectorClassName, ConnectorEnabled, ConnectorLastModified, ConnectorConfig, ConnectorIsolation, \
    ConnectorOrdering, ConnectorConcurrency, ConnectorBatchSize, ConnectorRateLimit";

fn from_row(r: &Row<'_>) -> crate::sql::Result<ConnectorRow> {
    use crate::sql::ValueRef;
    let mut problems = Vec::new();
    let enabled = match r.get_ref(5)? {
        ValueRef::Integer(n) => n != 0,
        other => {
            problems.push(format!("ConnectorEnabled is {}, not 0 or 1", other.kind()));
            false
        }
    };
    let mut row = ConnectorRow {
        id: r.get(0)?,
        name: text(r, 1, "ConnectorName", &mut problems)?,
        display_name: text(r, 2, "ConnectorDisplayName", &mut problems)?,
        assembly_name: text(r, 3, "ConnectorAssemblyName", &mut problems)?,
        class_name: text(r, 4, "ConnectorClassName", &mut problems)?,
        enabled,
        last_modified: text(r, 6, "ConnectorLastModified", &mut problems)?,
        config: text(r, 7, "ConnectorConfig", &mut problems)?,
        isolation: IsolationSetting::Default,
        ordering: Ordering::Connector,
        concurrency: None,
        batch_size: None,
        rate_limit: None,
        problems: Vec::new(),
    };
    if !matches!(r.get_ref(8)?, crate::sql::ValueRef::Null) {
        let value = text(r, 8, "ConnectorIsolation", &mut problems)?;
        row.isolation = IsolationSetting::from_column(&value, &mut problems);
    }
    row.set_delivery(DeliverySettings::from_columns(r, 9, &mut problems)?);
    check_row(&row, &mut problems);
    row.problems = problems;
    Ok(row)
}

/// Marks rows whose code names equal an earlier row's but for case (code
/// names must be unique ignoring case: they name the connector everywhere).
fn mark_case_duplicates(rows: &mut [ConnectorRow]) {
    let mut by_id: Vec<(i64, String)> = rows.iter().map(|r| (r.id, r.name.to_lowercase())).collect();
    by_id.sort();
    for row in rows.iter_mut() {
        let lower = row.name.to_lowercase();
        if let Some((first, _)) = by_id.iter().find(|(id, n)| *n == lower && *id < row.id) {
            row.problems.push(format!(
                "ConnectorName `{}` equals the name of connector ID {first} but for case; code names must be unique ignoring case",
                row.name
            ));
        }
    }
}

/// Checks a code name: letters, digits, `_`, `.`, `-` ([`text::CODE_NAME`]);
/// 1 to 100 characters.
pub(crate) fn validate_code_name(name: &str) -> Result<(), RegistryError> {
    let invalid = |reason: String| RegistryError::Invalid { field: "code name", reason };
    if name.is_empty() || name.chars().count() > MAX_CODE_NAME {
        return Err(invalid(format!("`{name}` must be 1 to {MAX_CODE_NAME} characters long")));
    }
    if let Some(c) = name.chars().find(|c| !text::is_code_name_char(*c)) {
        return Err(invalid(format!("`{name}` contains `{c}`; use letters, digits, `_`, `.` and `-` only")));
    }
    Ok(())
}

/// The longest connector code name.
pub const MAX_CODE_NAME: usize = 100;

/// How strictly a registry value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// What the API and the CLI accept: the patterns of the API document
    /// (`text`).
    Write,
    /// What a row needs to load: a row written before the write rules were
    /// tightened, or by SQL, keeps loading unless it is unusable (empty, a
    /// NUL, a path out of the connectors folder).
    Read,
}

/// Checks that an assembly name names a library inside the connectors
/// folder (surrounding spaces are ignored when it is resolved); the reason
/// says what is wrong otherwise. These are the rules a row must meet to
/// load; the API and the CLI also require [`text::LIBRARY`].
pub(crate) fn check_assembly_name(name: &str) -> Result<(), &'static str> {
    let name = name.trim();
    if name.is_empty() {
        Err("it is empty")
    } else if name.contains("..") {
        Err("it contains `..`; name a library inside the connectors folder")
    } else if name.contains('/') || name.contains('\\') {
        Err("it contains a path separator; name a library inside the connectors folder")
    } else if name.contains('\0') || name.contains(':') {
        Err("it contains a character that is not allowed in a library name")
    } else {
        Ok(())
    }
}

fn validate_assembly(name: &str, rules: Rules) -> Result<(), RegistryError> {
    if name.chars().count() > MAX_NAME {
        return Err(RegistryError::Invalid {
            field: "assembly name",
            reason: format!("must be at most {MAX_NAME} characters, not {}", name.chars().count()),
        });
    }
    let library = |name: &str| match rules {
        Rules::Write if !text::is_library(name) => Err(
            "use letters, digits, `_`, `+` and `-`, in runs joined by single dots (`sample_connector`, `libcrm-2.so`)",
        ),
        _ => Ok(()),
    };
    check_assembly_name(name).and_then(|()| library(name)).map_err(|reason| RegistryError::Invalid {
        field: "assembly name",
        reason: format!("`{}` is refused: {reason}", name.escape_debug()),
    })
}

/// Refuses a code name that equals another connector's but for case.
fn check_unique_ignoring_case(conn: &Conn, name: &str, except_id: i64) -> Result<(), RegistryError> {
    let other: Option<String> = conn
        .query_row(
            "SELECT ConnectorName FROM Integration_Connector \
             WHERE ConnectorName = $1 COLLATE NOCASE AND ConnectorName != $1 AND ConnectorID != $2",
            params![name, except_id],
            |r| r.get(0),
        )
        .optional()?;
    match other {
        Some(other) => Err(RegistryError::DuplicateIgnoringCase { name: name.to_owned(), other }),
        None => Ok(()),
    }
}

/// A display or class name: not blank, at most [`MAX_NAME`] characters; no
/// control character ([`text::NAME`]) when written, no NUL when read.
fn validate_text(field: &'static str, value: &str, rules: Rules) -> Result<(), RegistryError> {
    if text::is_blank(value) {
        return Err(RegistryError::Invalid { field, reason: "must not be empty".into() });
    }
    if value.chars().count() > MAX_NAME {
        return Err(RegistryError::Invalid {
            field,
            reason: format!("must be at most {MAX_NAME} characters, not {}", value.chars().count()),
        });
    }
    match rules {
        Rules::Write if text::has_control(value) => {
            Err(RegistryError::Invalid { field, reason: "contains a control character".into() })
        }
        Rules::Read if value.contains('\0') => {
            Err(RegistryError::Invalid { field, reason: "contains a NUL character".into() })
        }
        _ => Ok(()),
    }
}

/// Reads and edits the registry.
#[derive(Debug, Clone)]
pub struct Registry {
    db: Database,
}

impl Registry {
    pub fn new(db: Database) -> Self {
        Registry { db }
    }

    fn conn(&self) -> Result<crate::db::Pooled, RegistryError> {
        Ok(self.db.connect()?)
    }

    /// All registered connectors, by code name.
    pub fn list(&self) -> Result<Vec<ConnectorRow>, RegistryError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM Integration_Connector ORDER BY ConnectorName"))?;
        let mut rows = stmt.query_map([], from_row)?.collect::<Result<Vec<_>, _>>()?;
        mark_case_duplicates(&mut rows);
        Ok(rows)
    }

    pub fn get(&self, name: &str) -> Result<ConnectorRow, RegistryError> {
        let conn = self.conn()?;
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM Integration_Connector WHERE ConnectorName = $1"),
            [name],
            from_row,
        )
        .optional()?
        .ok_or_else(|| RegistryError::NotFound(name.to_owned()))
    }

    /// Registers a connector.
    pub fn add(&self, new: &NewConnector) -> Result<ConnectorRow, RegistryError> {
        let display = checked(new)?;
        let conn = self.conn()?;
        check_unique_ignoring_case(&conn, &new.name, -1)?;
        let inserted = insert(&conn, new, &display, "DO NOTHING")?;
        if inserted == 0 {
            return Err(RegistryError::Duplicate(new.name.clone()));
        }
        drop(conn);
        self.get(&new.name)
    }

    /// Changes a connector; the fields absent from `patch` stay as they are.
    pub fn update(&self, name: &str, patch: &ConnectorPatch) -> Result<ConnectorRow, RegistryError> {
        let current = self.get(name)?;
        let next = ConnectorRow {
            name: patch.name.clone().unwrap_or(current.name.clone()),
            display_name: patch.display_name.clone().unwrap_or(current.display_name.clone()),
            assembly_name: patch.assembly_name.clone().unwrap_or(current.assembly_name.clone()),
            class_name: patch.class_name.clone().unwrap_or(current.class_name.clone()),
            enabled: patch.enabled.unwrap_or(current.enabled),
            config: patch.config.clone().unwrap_or(current.config.clone()),
            isolation: patch.isolation.unwrap_or(current.isolation),
            ordering: patch.ordering.unwrap_or(current.ordering),
            concurrency: patch.concurrency.unwrap_or(current.concurrency),
            batch_size: patch.batch_size.unwrap_or(current.batch_size),
            rate_limit: patch.rate_limit.unwrap_or(current.rate_limit),
            ..current.clone()
        };
        // What the patch sets meets the write rules; what it leaves as it
        // was needs only to load (a row written before those rules stays
        // editable).
        let rules = |given: bool| if given { Rules::Write } else { Rules::Read };
        validate_code_name(&next.name)?;
        validate_text("display name", &next.display_name, rules(patch.display_name.is_some()))?;
        validate_assembly(&next.assembly_name, rules(patch.assembly_name.is_some()))?;
        validate_text("class name", &next.class_name, rules(patch.class_name.is_some()))?;
        validate_config(&next.config)?;
        validate_delivery(&next.delivery())?;
        if next == current {
            return Ok(current);
        }
        let conn = self.conn()?;
        if next.name != current.name {
            check_unique_ignoring_case(&conn, &next.name, current.id)?;
        }
        let result = conn.execute(
            "UPDATE Integration_Connector SET ConnectorName = $1, ConnectorDisplayName = $2, \
             ConnectorAssemblyName = $3, ConnectorClassName = $4, ConnectorEnabled = $5, ConnectorConfig = $6, \
             ConnectorIsolation = $7, ConnectorOrdering = $8, ConnectorConcurrency = $9, ConnectorBatchSize = $10, \
             ConnectorRateLimit = $11, ConnectorLastModified = bus_now() \
             WHERE ConnectorID = $12",
            params![
                next.name,
                next.display_name,
                next.assembly_name,
                next.class_name,
                next.enabled,
                next.config,
                next.isolation.column(),
                next.ordering.column(),
                next.concurrency,
                next.batch_size,
                next.rate_limit,
                current.id
            ],
        );
        match result {
            Ok(0) => return Err(RegistryError::NotFound(name.to_owned())),
            Ok(_) => {}
            Err(e) if e.kind() == crate::sql::ErrorKind::Constraint => {
                return Err(RegistryError::Duplicate(next.name));
            }
            Err(e) => return Err(e.into()),
        }
        drop(conn);
        self.get(&next.name)
    }

    /// Unregisters a connector. With queued tasks it is refused unless
    /// `queue` is [`QueuedTasks::Discard`]; the discarded tasks are then
    /// named in the event log (a trigger, so plain SQL deletes say so too).
    /// Returns how many task relations were discarded.
    pub fn delete(&self, name: &str, queue: QueuedTasks) -> Result<i64, RegistryError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with(crate::sql::Begin::Immediate)?;
        crate::driver::of(&tx).lock_connector_for_delete(&tx, name)?;
        let queued = queued_relations(&tx, name)?.ok_or_else(|| RegistryError::NotFound(name.to_owned()))?;
        if queued > 0 && queue == QueuedTasks::Keep {
            return Err(RegistryError::HasQueue { name: name.to_owned(), queued });
        }
        tx.execute("DELETE FROM Integration_Connector WHERE ConnectorName = $1", [name])?;
        tx.commit()?;
        Ok(queued)
    }

    /// The registry's change counter.
    pub fn version(&self) -> Result<i64, RegistryError> {
        Ok(registry_version(&*self.conn()?)?)
    }
}

/// The registry's change counter (bumped by triggers on every edit).
pub(crate) fn registry_version(conn: &Conn) -> Result<i64, crate::sql::SqlError> {
    conn.prepare_cached("SELECT Version FROM Integration_RegistryVersion")?.query_row([], |r| r.get(0))
}

/// Checks a connector to register; returns its display name (the code name
/// when none is given).
fn checked(new: &NewConnector) -> Result<String, RegistryError> {
    validate_code_name(&new.name)?;
    validate_assembly(&new.assembly_name, Rules::Write)?;
    validate_text("class name", &new.class_name, Rules::Write)?;
    if new.display_name.as_deref().is_some_and(text::has_control) {
        return Err(RegistryError::Invalid { field: "display name", reason: "contains a control character".into() });
    }
    let display = new.display_name.clone().filter(|d| !text::is_blank(d)).unwrap_or_else(|| new.name.clone());
    validate_text("display name", &display, Rules::Write)?;
    validate_config(&new.config)?;
    validate_delivery(&new.delivery())?;
    Ok(display)
}

fn validate_delivery(settings: &DeliverySettings) -> Result<(), RegistryError> {
    settings.check().map_err(|(field, reason)| RegistryError::Invalid { field, reason })
}

impl ConnectorRow {
    /// How its outgoing queue is delivered.
    pub fn delivery(&self) -> DeliverySettings {
        DeliverySettings {
            ordering: self.ordering,
            concurrency: self.concurrency,
            batch_size: self.batch_size,
            rate_limit: self.rate_limit,
        }
    }

    fn set_delivery(&mut self, d: DeliverySettings) {
        self.ordering = d.ordering;
        self.concurrency = d.concurrency;
        self.batch_size = d.batch_size;
        self.rate_limit = d.rate_limit;
    }
}

/// Registers `new`, or brings the row with its code name to these values,
/// in the caller's transaction (seeding a new database).
pub(crate) fn seed(conn: &Conn, new: &NewConnector) -> Result<(), RegistryError> {
    let display = checked(new)?;
    insert(
        conn,
        new,
        &display,
        "DO UPDATE SET ConnectorDisplayName = excluded.ConnectorDisplayName, \
         ConnectorAssemblyName = excluded.ConnectorAssemblyName, ConnectorClassName = excluded.ConnectorClassName, \
         ConnectorEnabled = excluded.ConnectorEnabled, ConnectorConfig = excluded.ConnectorConfig, \
         ConnectorIsolation = excluded.ConnectorIsolation, ConnectorOrdering = excluded.ConnectorOrdering, \
         ConnectorConcurrency = excluded.ConnectorConcurrency, ConnectorBatchSize = excluded.ConnectorBatchSize, \
         ConnectorRateLimit = excluded.ConnectorRateLimit",
    )?;
    Ok(())
}

/// Writes `new` as a registry row with `display` as its display name;
/// `on_conflict` says what a row with the same code name gets (`DO …`).
fn insert(conn: &Conn, new: &NewConnector, display: &str, on_conflict: &str) -> crate::sql::Result<usize> {
    conn.execute(
        &format!(
            "INSERT INTO Integration_Connector (ConnectorName, ConnectorDisplayName, ConnectorAssemblyName, \
             ConnectorClassName, ConnectorEnabled, ConnectorConfig, ConnectorIsolation, ConnectorOrdering, \
             ConnectorConcurrency, ConnectorBatchSize, ConnectorRateLimit) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (ConnectorName) {on_conflict}"
        ),
        params![
            new.name,
            display,
            new.assembly_name,
            new.class_name,
            new.enabled,
            new.config,
            new.isolation.column(),
            new.ordering.column(),
            new.concurrency,
            new.batch_size,
            new.rate_limit
        ],
    )
}

/// What deleting a connector does with its queued tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuedTasks {
    /// Refuse to delete a connector that has queued tasks.
    Keep,
    /// Delete it anyway; its queued tasks are discarded (and logged).
    Discard,
}

fn queued_relations(conn: &Conn, name: &str) -> Result<Option<i64>, crate::sql::SqlError> {
    conn.query_row(
        "SELECT (SELECT count(*) FROM Integration_Synchronization WHERE SynchronizationConnectorID = c.ConnectorID) \
         FROM Integration_Connector c WHERE c.ConnectorName = $1",
        [name],
        |r| r.get(0),
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (tempfile::TempDir, Registry, Database) {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Database::open(&dir.path().join("bus.db")).unwrap();
        (dir, Registry::new(db.clone()), db)
    }

    fn new(name: &str) -> NewConnector {
        NewConnector {
            name: name.into(),
            display_name: None,
            assembly_name: "x".into(),
            class_name: "X".into(),
            enabled: true,
            config: String::new(),
            isolation: IsolationSetting::Default,
            ordering: Ordering::Connector,
            concurrency: None,
            batch_size: None,
            rate_limit: None,
        }
    }

    #[test]
    fn new_database_has_the_sample_registered_but_disabled() {
        let (_d, reg, _) = registry();
        let sample = reg.get("SampleIntegrationConnector").unwrap();
        assert!(!sample.enabled);
        assert_eq!(sample.assembly_name, "sample_connector");
    }

    #[test]
    fn crud_and_clear_errors() {
        let (_d, reg, db) = registry();
        let v0 = registry_version(&db.connect().unwrap()).unwrap();
        let row = reg.add(&new("Crm")).unwrap();
        assert_eq!(row.display_name, "Crm");
        assert!(matches!(reg.add(&new("Crm")), Err(RegistryError::Duplicate(_))));
        let row = reg.update("Crm", &ConnectorPatch { enabled: Some(false), ..Default::default() }).unwrap();
        assert!(!row.enabled);
        reg.add(&new("Other")).unwrap();
        let dup = reg.update("Other", &ConnectorPatch { name: Some("Crm".into()), ..Default::default() });
        assert!(matches!(dup, Err(RegistryError::Duplicate(_))));
        reg.delete("Crm", QueuedTasks::Keep).unwrap();
        assert!(matches!(reg.delete("Crm", QueuedTasks::Keep), Err(RegistryError::NotFound(_))));
        let err = reg.add(&new("bad name/..")).unwrap_err();
        assert!(err.to_string().contains("contains ` `"), "{err}");
        assert!(registry_version(&db.connect().unwrap()).unwrap() >= v0 + 4);
    }

    #[test]
    fn a_plain_sql_update_bumps_last_modified() {
        let (_d, reg, db) = registry();
        let before = reg.get("SampleIntegrationConnector").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        db.connect().unwrap().execute("UPDATE Integration_Connector SET ConnectorEnabled = 1", []).unwrap();
        let after = reg.get("SampleIntegrationConnector").unwrap();
        assert!(after.enabled);
        assert_ne!(before.last_modified, after.last_modified);
    }
}
