//! `ScriptedConnector`: its subscriptions come from its configuration, and
//! what it does with a task from the object's fields, so the integration
//! tests can drive every outcome. Every delivery is written to the event log
//! (code = task type, description = a JSON report of what arrived).
//!
//! Config (JSON): `{"name": "A", "subscriptions": [<Subscription>...],
//! "custom": "AsyncSimple"}` — `custom` is the process type `is_match`
//! answers for objects whose code name starts with `vip`.
//!
//! Object fields read: `outcome` (async result), `sync_outcome` (sync
//! result), `fail_times` (answer Error that many times first), `sleep_ms`,
//! `message` (the error message), `message_bytes` (an error message of that
//! many bytes), `match_sleep_ms` (sleep in `is_match`),
//! `match_panic` (panic in `is_match`), `print` (print this to stdout),
//! `count_state` (a key of the connector's state: read it as a number, write
//! it back one higher — before anything else, so a `crash` comes after the
//! write — and report what was read as `state_before`),
//! `crash` (die, when the script says `"crashes": true`: see `crash.rs`). `sleep_ms` in the config slows every
//! call; `create_sleep_ms` in the config slows `create`, `create_error` then fails it; `sleep_ms` in the external data of an incoming task slows
//! `prepare_internal_object`.

use connector_abi::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct Script {
    name: Option<String>,
    subscriptions: Vec<Subscription>,
    custom: Option<TaskProcessType>,
    /// Sleep this long in every asynchronous call (a slow external system).
    sleep_ms: Option<u64>,
    /// Obey the `crash` field of a task (see `crash.rs`).
    crashes: bool,
    /// Sleep this long in `create` (a constructor that hangs).
    create_sleep_ms: Option<u64>,
    /// Then fail `create` with this message.
    create_error: Option<String>,
    /// Take batches in one go (`process_internal_tasks_async`): one sleep of
    /// `sleep_ms` for the whole batch, a `BATCH` event naming its tasks.
    bulk: bool,
    /// What `get_internal_object_params` answers, by `"<object type>:<external id>"`.
    external_objects: HashMap<String, ObjectParams>,
    /// What `get_internal_document_params` answers, by external ID.
    external_documents: HashMap<String, DocumentParams>,
}

pub struct ScriptedConnector {
    host: Host,
    script: Script,
    attempts: Mutex<HashMap<i64, u32>>,
}

fn fields(object: &CmsObject) -> &serde_json::Map<String, Value> {
    match object {
        CmsObject::Object(o) => &o.fields,
        CmsObject::Document(d) => &d.fields,
    }
}

fn outcome(fields: &serde_json::Map<String, Value>, key: &str) -> ProcessOutcome {
    let message = match fields.get("message_bytes").and_then(Value::as_u64) {
        // A message of that many bytes (a connector that sends its whole
        // response body as the error).
        Some(n) => "e".repeat(usize::try_from(n).unwrap_or(0)),
        None => fields.get("message").and_then(Value::as_str).unwrap_or("scripted failure").to_owned(),
    };
    match fields.get(key).and_then(Value::as_str) {
        Some("Error") => ProcessOutcome::error(message),
        Some("ErrorAndSkip") => ProcessOutcome::error_and_skip(message),
        Some("SkipNow") => ProcessOutcome::skip_now(),
        Some("Panic") => panic!("scripted panic"),
        _ => ProcessOutcome::ok(),
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn names(list: &[ObjectData]) -> Vec<String> {
    list.iter().map(|o| format!("{}:{}", o.object_type, o.code_name)).collect()
}

impl ScriptedConnector {
    /// One task; `sleep`: the configured `sleep_ms` applies (not within a
    /// bulk batch, which slept once for all).
    fn process(&self, task: &OutgoingTask, sleep: bool) -> ProcessOutcome {
        let called_at_us = now_us();
        let f = fields(&task.object);
        let state_before = f.get("count_state").and_then(Value::as_str).map(|key| {
            let before = self.host.state_get(key).ok().flatten().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let _ = self.host.state_put(key, &(before + 1).to_string());
            before
        });
        if let Some(text) = f.get("print").and_then(Value::as_str) {
            // To stdout on purpose: under process isolation it must reach
            // the daemon's log, not the protocol.
            println!("{text}");
        }
        if let Some(how) = f.get("crash").and_then(Value::as_str).filter(|_| self.script.crashes) {
            crate::crash::crash(how);
        }
        if let Some(ms) = f.get("sleep_ms").and_then(Value::as_u64).or(self.script.sleep_ms.filter(|_| sleep)) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(task.task_id).or_insert(0);
            *n += 1;
            *n
        };
        let mut translated = task.object.clone();
        let translation = translate_columns_to_external(self, &mut translated, &task.translations, true);
        let (code_name, children, bindings) = match &task.object {
            CmsObject::Object(o) => (o.code_name.clone(), names(&o.children), names(&o.bindings)),
            CmsObject::Document(d) => (d.name.clone(), Vec::new(), Vec::new()),
        };
        let report = json!({
            "task_id": task.task_id,
            "attempt": attempt,
            "called_at_us": called_at_us,
            "returning_at_us": now_us(),
            "fencing_token": task.fencing_token,
            "state_before": state_before,
            "task_type": task.task_type,
            "data_type": task.data_type,
            "site_name": task.site_name,
            "title": task.title,
            "name": code_name,
            "fields": f,
            "translated_fields": fields(&translated),
            "translation_error": translation.err().map(|e| e.to_string()),
            "translations": task.translations,
            "children": children,
            "bindings": bindings,
        });
        let _ = self.host.log_event(EventType::Information, task.task_type.event_code(), &report.to_string(), None);
        // An outgoing task can make this connector log an incoming task
        // itself, as a connector polling its external system would.
        if let Some(external) = f.get("emit_incoming") {
            let logged = self.host.process_external_task(
                external.clone(),
                IntegrationProcessType::Default,
                TaskType::CreateObject,
                TaskDataType::SimpleSnapshot,
                None,
            );
            let _ = self.host.log_event(
                EventType::Information,
                "EMITTED",
                &json!({"emitted": logged.is_ok(), "error": logged.err().map(|e| e.to_string())}).to_string(),
                None,
            );
            let _ = self.host.request_processing(None);
        }
        let fail_times = f.get("fail_times").and_then(Value::as_u64).unwrap_or(0);
        if u64::from(attempt) <= fail_times {
            return ProcessOutcome::error(format!("scripted failure {attempt} of {fail_times}"));
        }
        outcome(f, "outcome")
    }
}

impl Connector for ScriptedConnector {
    fn create(config: &str, host: Host) -> Result<Self, ConnectorError> {
        let script: Script = if config.trim().is_empty() {
            Script::default()
        } else {
            serde_json::from_str(config).map_err(|e| ConnectorError(format!("the script is not valid JSON: {e}")))?
        };
        if let Some(ms) = script.create_sleep_ms {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if let Some(message) = &script.create_error {
            return Err(ConnectorError(message.clone()));
        }
        Ok(ScriptedConnector { host, script, attempts: Mutex::new(HashMap::new()) })
    }

    fn init(&self, init: &mut Init) {
        let name = self.script.name.clone().unwrap_or_else(|| init.registry_name().to_owned());
        init.set_connector_name(name);
        for s in &self.script.subscriptions {
            init.subscribe_to(s.clone());
        }
    }

    fn is_match(&self, _subscription: &str, object: &CmsObject, _task_type: TaskType) -> Option<TaskProcessType> {
        let f = fields(object);
        if let Some(ms) = f.get("match_sleep_ms").and_then(Value::as_u64) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if f.get("match_panic").is_some() {
            panic!("scripted panic in is_match");
        }
        match object {
            CmsObject::Object(o) if o.code_name.starts_with("vip") => self.script.custom,
            _ => None,
        }
    }

    fn process_internal_tasks_async(&self, tasks: &[OutgoingTask]) -> Vec<ProcessOutcome> {
        let sleep = !self.script.bulk;
        if self.script.bulk {
            let ids: Vec<i64> = tasks.iter().map(|t| t.task_id).collect();
            let _ = self.host.log_event(EventType::Information, "BATCH", &json!({"batch": ids}).to_string(), None);
            if let Some(ms) = self.script.sleep_ms {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
        // Up to the first Error, as the batch method promises.
        let mut results = Vec::with_capacity(tasks.len());
        for t in tasks {
            let result = self.process(t, sleep);
            let stop = result.result == IntegrationProcessResult::Error;
            results.push(result);
            if stop {
                break;
            }
        }
        results
    }

    fn process_internal_task_async(&self, task: &OutgoingTask) -> ProcessOutcome {
        self.process(task, true)
    }

    fn process_internal_task_sync(&self, task: &SyncTask) -> ProcessOutcome {
        if let Some(ms) = fields(&task.object).get("sleep_ms").and_then(Value::as_u64).or(self.script.sleep_ms) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let (name, children) = match &task.object {
            CmsObject::Object(o) => (o.code_name.clone(), names(&o.children)),
            CmsObject::Document(d) => (d.name.clone(), Vec::new()),
        };
        let report = json!({"sync": true, "task_type": task.task_type, "name": name, "children": children});
        let _ = self.host.log_event(EventType::Information, "SYNC", &report.to_string(), None);
        outcome(fields(&task.object), "sync_outcome")
    }

    /// The external data is already shaped like an internal object or
    /// document (with external IDs in its keys); `{"refuse": "why"}` fails.
    fn prepare_internal_object(
        &self,
        request: &connector_abi::PrepareInternalObjectRequest,
    ) -> Result<CmsObject, ConnectorError> {
        if let Some(ms) = request.external.get("sleep_ms").and_then(Value::as_u64) {
            // Tests wait for this row to know the call is under way.
            let _ = self.host.log_event(EventType::Information, "PREPARESLEEP", &ms.to_string(), None);
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if let Some(why) = request.external.get("refuse").and_then(Value::as_str) {
            return Err(ConnectorError(why.to_owned()));
        }
        serde_json::from_value(request.external.clone())
            .map_err(|e| ConnectorError(format!("not an object or document: {e}")))
    }

    fn get_internal_object_params(&self, id: i64, object_type: &str) -> Option<ObjectParams> {
        self.script.external_objects.get(&format!("{object_type}:{id}")).cloned()
    }

    fn get_internal_document_params(&self, id: i64, _class_name: &str) -> Option<DocumentParams> {
        self.script.external_documents.get(&id.to_string()).cloned()
    }

    fn get_external_object_id(&self, object: &ObjectTranslation) -> Option<i64> {
        (object.code_name != "untranslatable").then_some(10_000 + object.id)
    }

    fn get_external_document_id(&self, document: &DocumentTranslation, return_document_id: bool) -> Option<i64> {
        Some(if return_document_id { 20_000 } else { 30_000 } + document.id)
    }
}
