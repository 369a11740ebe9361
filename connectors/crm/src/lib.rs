//! The CRM connector: keeps users and roles in sync, both ways, with a CRM
//! whose data lives in its own SQLite file with its own IDs — users are
//! contacts, roles are groups, user–role bindings are memberships.
//!
//! Outgoing: users, roles and user–role bindings become CRM rows; binding
//! keys are translated to CRM IDs with `translate_columns_to_external`.
//! Incoming: a poller reads the CRM's change table (filled by triggers),
//! logs each change as an incoming task through the host
//! (`process_external_task`) and asks the bus to process them. The
//! connector's own writes mark their change rows as processed in the same
//! transaction, and the bus never sends a connector its own changes, so a
//! change cannot ping-pong.
//!
//! ConnectorConfig (JSON): `{"database": "/var/lib/crm/crm.db",
//! "site_name": "CorpSite", "poll_ms": 1000}`.

mod store;

use connector_abi::prelude::*;
use rusqlite::{params, Connection};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    database: PathBuf,
    /// The site the CRM's groups belong to as roles.
    site_name: String,
    #[serde(default = "default_poll_ms")]
    poll_ms: u64,
    #[serde(default)]
    name: Option<String>,
}

fn default_poll_ms() -> u64 {
    1000
}

pub struct CrmConnector {
    config: Config,
    db: Mutex<Connection>,
    stop: Arc<AtomicBool>,
    poller: Mutex<Option<JoinHandle<()>>>,
}

fn io(e: rusqlite::Error) -> String {
    format!("CRM database error: {e}")
}

impl Connector for CrmConnector {
    fn create(config: &str, host: Host) -> Result<Self, ConnectorError> {
        let config: Config = serde_json::from_str(config).map_err(|e| {
            ConnectorError(format!(
                "ConnectorConfig must be JSON like {{\"database\": \"/path/crm.db\", \"site_name\": \"CorpSite\"}}: {e}"
            ))
        })?;
        let conn = store::open(&config.database)
            .map_err(|e| ConnectorError(format!("cannot open the CRM database {}: {e}", config.database.display())))?;
        store::release_stale_claims(&conn).map_err(io)?;
        let stop = Arc::new(AtomicBool::new(false));
        let poller = Poller {
            host,
            database: config.database.clone(),
            interval: Duration::from_millis(config.poll_ms.max(10)),
            site_name: config.site_name.clone(),
            name: config.name.clone(),
            stop: stop.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("crm-poller".into())
            .spawn(move || poller.run())
            .map_err(|e| ConnectorError(format!("cannot start the CRM poller: {e}")))?;
        Ok(CrmConnector { config, db: Mutex::new(conn), stop, poller: Mutex::new(Some(handle)) })
    }

    fn init(&self, init: &mut Init) {
        let name = self.config.name.clone().unwrap_or_else(|| "Crm".to_owned());
        init.set_connector_name(name);
        init.subscribe_to(Subscription::objects(TaskProcessType::AsyncSimpleSnapshot, "cms.user"));
        init.subscribe_to(Subscription::objects(TaskProcessType::AsyncSimpleSnapshot, "cms.userrole"));
        init.subscribe_to(
            Subscription::objects(TaskProcessType::AsyncSimpleSnapshot, "cms.role").site(&self.config.site_name),
        );
    }

    fn process_object_async(&self, object: &ObjectData, task: &OutgoingTask) -> ProcessOutcome {
        match self.write(object, task) {
            Ok(()) => ProcessOutcome::ok(),
            Err(Failure::Later(why)) => ProcessOutcome::error(why),
            Err(Failure::Skip(why)) => ProcessOutcome::error_and_skip(why),
        }
    }

    fn get_external_object_id(&self, object: &ObjectTranslation) -> Option<i64> {
        let conn = self.db.lock().ok()?;
        match object.object_type.as_str() {
            "cms.user" => store::contact_id(&conn, &object.code_name).ok().flatten(),
            "cms.role" => store::group_id(&conn, &object.code_name).ok().flatten(),
            _ => None,
        }
    }

    fn prepare_internal_object(
        &self,
        request: &connector_abi::PrepareInternalObjectRequest,
    ) -> Result<CmsObject, ConnectorError> {
        let e = &request.external;
        let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
        let object = match e.get("entity").and_then(Value::as_str) {
            Some("contact") => ObjectData {
                object_type: "cms.user".into(),
                code_name: text("login").ok_or("a contact change without a login")?,
                display_name: text("full_name"),
                fields: [("email".to_owned(), e.get("email").cloned().unwrap_or(Value::Null))].into_iter().collect(),
                ..Default::default()
            },
            Some("group") => ObjectData {
                object_type: "cms.role".into(),
                code_name: text("code").ok_or("a group change without a code")?,
                display_name: text("title"),
                site_name: Some(self.config.site_name.clone()),
                ..Default::default()
            },
            Some("membership") => ObjectData {
                object_type: "cms.userrole".into(),
                fields: [
                    ("UserID".to_owned(), e.get("contact_id").cloned().unwrap_or(Value::Null)),
                    ("RoleID".to_owned(), e.get("group_id").cloned().unwrap_or(Value::Null)),
                ]
                .into_iter()
                .collect(),
                ..Default::default()
            },
            other => return Err(ConnectorError(format!("unknown CRM entity {other:?}"))),
        };
        Ok(CmsObject::Object(object))
    }

    fn get_internal_object_params(&self, id: i64, object_type: &str) -> Option<ObjectParams> {
        let conn = self.db.lock().ok()?;
        match object_type {
            "cms.user" => store::contact_login(&conn, id)
                .ok()
                .flatten()
                .map(|login| ObjectParams { code_name: login, ..Default::default() }),
            "cms.role" => store::group_code(&conn, id).ok().flatten().map(|code| ObjectParams {
                code_name: code,
                site_name: Some(self.config.site_name.clone()),
                ..Default::default()
            }),
            _ => None,
        }
    }

    fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.poller.lock().ok().and_then(|mut p| p.take()) {
            let _ = handle.join();
        }
    }
}

enum Failure {
    /// Try again later (keeps the queue's order).
    Later(String),
    /// This task cannot be applied; go on.
    Skip(String),
}

impl CrmConnector {
    fn write(&self, object: &ObjectData, task: &OutgoingTask) -> Result<(), Failure> {
        let mut conn = self.db.lock().map_err(|_| Failure::Later("the CRM connection is poisoned".into()))?;
        let later = |e: rusqlite::Error| Failure::Later(io(e));
        let text = |k: &str| object.fields.get(k).and_then(Value::as_str).map(str::to_owned);
        match (object.object_type.as_str(), task.task_type) {
            ("cms.user", TaskType::CreateObject | TaskType::UpdateObject) => store::write_quietly(&mut conn, |c| {
                c.execute(
                    "INSERT INTO crm_contact (login, full_name, email) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (login) DO UPDATE SET full_name = excluded.full_name, email = excluded.email",
                    params![object.code_name, object.display_name, text("email")],
                )
            })
            .map(|_| ())
            .map_err(later),
            ("cms.user", TaskType::DeleteObject) => {
                store::write_quietly(&mut conn, |c| c.execute("DELETE FROM crm_contact WHERE login = ?1", [&object.code_name]))
                    .map(|_| ())
                    .map_err(later)
            }
            ("cms.role", TaskType::CreateObject | TaskType::UpdateObject) => store::write_quietly(&mut conn, |c| {
                c.execute(
                    "INSERT INTO crm_group (code, title) VALUES (?1, ?2) ON CONFLICT (code) DO UPDATE SET title = excluded.title",
                    params![object.code_name, object.display_name],
                )
            })
            .map(|_| ())
            .map_err(later),
            ("cms.role", TaskType::DeleteObject) => {
                store::write_quietly(&mut conn, |c| c.execute("DELETE FROM crm_group WHERE code = ?1", [&object.code_name]))
                    .map(|_| ())
                    .map_err(later)
            }
            ("cms.userrole", TaskType::CreateObject | TaskType::DeleteObject) => {
                drop(conn);
                // The binding's keys are content-store IDs: translate them
                // to CRM IDs (a contact or group not in the CRM yet means
                // "later": its own task is still on its way).
                let mut translated = task.object.clone();
                translate_columns_to_external(self, &mut translated, &task.translations, false)
                    .map_err(|e| Failure::Later(e.to_string()))?;
                let CmsObject::Object(b) = translated else { return Err(Failure::Skip("not an object".into())) };
                let id = |k: &str| b.fields.get(k).and_then(Value::as_i64).ok_or_else(|| Failure::Skip(format!("the binding has no {k}")));
                let (contact, group) = (id("UserID")?, id("RoleID")?);
                let mut conn = self.db.lock().map_err(|_| Failure::Later("the CRM connection is poisoned".into()))?;
                let sql = if task.task_type == TaskType::CreateObject {
                    "INSERT OR IGNORE INTO crm_membership (contact_id, group_id) VALUES (?1, ?2)"
                } else {
                    "DELETE FROM crm_membership WHERE contact_id = ?1 AND group_id = ?2"
                };
                store::write_quietly(&mut conn, |c| c.execute(sql, params![contact, group])).map(|_| ()).map_err(later)
            }
            // AddToSite and the like have no CRM counterpart.
            _ => Ok(()),
        }
    }
}

/// Polls the CRM's change table and logs each change as an incoming task.
struct Poller {
    host: Host,
    database: PathBuf,
    interval: Duration,
    site_name: String,
    name: Option<String>,
    stop: Arc<AtomicBool>,
}

impl Poller {
    fn run(self) {
        let mut conn = None;
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(self.interval);
            if conn.is_none() {
                conn = store::open(&self.database).ok();
            }
            let Some(c) = conn.as_mut() else { continue };
            if self.poll(c).is_err() {
                conn = None;
            }
        }
    }

    fn poll(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        let changes = store::claim(conn, 100)?;
        if changes.is_empty() {
            return Ok(());
        }
        let mut logged = 0;
        let mut pending = changes.into_iter();
        while let Some(change) = pending.next() {
            let task_type = match change.op.as_str() {
                "insert" => TaskType::CreateObject,
                "delete" => TaskType::DeleteObject,
                _ => TaskType::UpdateObject,
            };
            let mut external = change.data.clone();
            external["entity"] = json!(change.entity);
            let (data_type, site) = match change.entity.as_str() {
                "membership" => (TaskDataType::SimpleSnapshot, None),
                "group" => (TaskDataType::Simple, Some(self.site_name.as_str())),
                _ => (TaskDataType::Simple, None),
            };
            match self.host.process_external_task(external, IntegrationProcessType::Default, task_type, data_type, site)
            {
                Ok(_) => {
                    store::settle(conn, change.id, true)?;
                    logged += 1;
                }
                Err(_) => {
                    // The bus is not ready (e.g. still loading this
                    // connector): try again at the next poll, in order.
                    store::settle(conn, change.id, false)?;
                    for rest in pending {
                        store::settle(conn, rest.id, false)?;
                    }
                    break;
                }
            }
        }
        if logged > 0 {
            let _ = self.host.request_processing(Some(self.name.as_deref().unwrap_or("Crm")));
        }
        Ok(())
    }
}

export_connectors!(CrmConnector);
