//! The five settings of the integration bus, stored in `CMS_SettingsKey`.

use crate::sql::{params, Conn};
use serde::{Deserialize, Serialize};

/// The settings, as the API shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Settings {
    /// The whole bus: logging and processing in both directions.
    pub enabled: bool,
    /// Log incoming tasks received from external systems.
    pub log_incoming: bool,
    /// Process logged incoming tasks.
    pub process_incoming: bool,
    /// Log outgoing tasks for changes of the content store.
    pub log_outgoing: bool,
    /// Process logged outgoing tasks.
    pub process_outgoing: bool,
}

/// Changes to the settings; absent ones stay as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct SettingsPatch {
    pub enabled: Option<bool>,
    pub log_incoming: Option<bool>,
    pub process_incoming: Option<bool>,
    pub log_outgoing: Option<bool>,
    pub process_outgoing: Option<bool>,
}

/// The setting names of the API and the keys of `CMS_SettingsKey`.
pub const KEYS: [(&str, &str); 5] = [
    ("enabled", "CMSIntegrationEnabled"),
    ("log_incoming", "CMSIntegrationLogExternal"),
    ("process_incoming", "CMSIntegrationProcessExternal"),
    ("log_outgoing", "CMSIntegrationLogInternal"),
    ("process_outgoing", "CMSIntegrationProcessInternal"),
];

impl Settings {
    pub(crate) fn logs_outgoing(&self) -> bool {
        self.enabled && self.log_outgoing
    }
    pub fn processes_outgoing(&self) -> bool {
        self.enabled && self.process_outgoing
    }
    pub(crate) fn logs_incoming(&self) -> bool {
        self.enabled && self.log_incoming
    }
    pub fn processes_incoming(&self) -> bool {
        self.enabled && self.process_incoming
    }

    fn get(&self, name: &str) -> bool {
        match name {
            "enabled" => self.enabled,
            "log_incoming" => self.log_incoming,
            "process_incoming" => self.process_incoming,
            "log_outgoing" => self.log_outgoing,
            _ => self.process_outgoing,
        }
    }
}

impl SettingsPatch {
    fn get(&self, name: &str) -> Option<bool> {
        match name {
            "enabled" => self.enabled,
            "log_incoming" => self.log_incoming,
            "process_incoming" => self.process_incoming,
            "log_outgoing" => self.log_outgoing,
            _ => self.process_outgoing,
        }
    }

    /// Sets one setting by its API name; false when there is no such setting.
    pub fn set(&mut self, name: &str, value: bool) -> bool {
        let slot = match name {
            "enabled" => &mut self.enabled,
            "log_incoming" => &mut self.log_incoming,
            "process_incoming" => &mut self.process_incoming,
            "log_outgoing" => &mut self.log_outgoing,
            "process_outgoing" => &mut self.process_outgoing,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

/// Reads the settings (a missing key reads as enabled).
pub fn read(conn: &Conn) -> crate::sql::Result<Settings> {
    let mut stmt = conn.prepare_cached("SELECT KeyName, KeyValue FROM CMS_SettingsKey")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)))?;
    Ok(from_keys(rows.collect::<crate::sql::Result<Vec<_>>>()?))
}

/// The settings `CMS_SettingsKey`'s `(KeyName, KeyValue)` rows say (a
/// missing key reads as enabled; other keys are passed over).
pub(crate) fn from_keys(rows: impl IntoIterator<Item = (String, String)>) -> Settings {
    let mut s = Settings {
        enabled: true,
        log_incoming: true,
        process_incoming: true,
        log_outgoing: true,
        process_outgoing: true,
    };
    for (key, value) in rows {
        let on = value == "True";
        match key.as_str() {
            "CMSIntegrationEnabled" => s.enabled = on,
            "CMSIntegrationLogExternal" => s.log_incoming = on,
            "CMSIntegrationProcessExternal" => s.process_incoming = on,
            "CMSIntegrationLogInternal" => s.log_outgoing = on,
            "CMSIntegrationProcessInternal" => s.process_outgoing = on,
            _ => {}
        }
    }
    s
}

/// Applies a patch in one transaction and returns the new settings.
pub fn update(conn: &mut Conn, patch: &SettingsPatch) -> crate::sql::Result<Settings> {
    let tx = conn.transaction()?;
    write(&tx, patch)?;
    let s = read(&tx)?;
    tx.commit()?;
    Ok(s)
}

/// Writes the settings `patch` names, in the caller's transaction.
pub fn write(conn: &Conn, patch: &SettingsPatch) -> crate::sql::Result<()> {
    for (name, key) in KEYS {
        if let Some(on) = patch.get(name) {
            conn.execute(
                "INSERT INTO CMS_SettingsKey (KeyName, KeyValue) VALUES ($1, $2) \
                 ON CONFLICT (KeyName) DO UPDATE SET KeyValue = excluded.KeyValue",
                params![key, if on { "True" } else { "False" }],
            )?;
        }
    }
    Ok(())
}

/// The settings that differ, as `name: old → new` pairs (empty when none).
pub fn changes(before: &Settings, after: &Settings) -> String {
    KEYS.iter()
        .filter(|(name, _)| before.get(name) != after.get(name))
        .map(|(name, _)| format!("{name}: {} → {}", before.get(name), after.get(name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders the settings as `name = value` lines.
pub fn describe(s: &Settings) -> String {
    KEYS.iter().map(|(name, _)| format!("{name} = {}\n", s.get(name))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;

    #[test]
    fn patch_changes_only_what_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Database::open(&dir.path().join("bus.db")).unwrap();
        let mut conn = db.connect().unwrap();
        let s = read(&conn).unwrap();
        assert!(s.logs_outgoing() && s.processes_outgoing());
        let s = update(&mut conn, &SettingsPatch { process_outgoing: Some(false), ..Default::default() }).unwrap();
        assert!(s.logs_outgoing() && !s.processes_outgoing());
        let s = update(&mut conn, &SettingsPatch { enabled: Some(false), ..Default::default() }).unwrap();
        assert!(!s.logs_outgoing() && !s.logs_incoming() && s.log_outgoing);
        assert!(describe(&s).contains("enabled = false"));
    }
}
