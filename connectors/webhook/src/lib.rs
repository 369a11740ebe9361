//! The webhook connector: posts every outgoing task it subscribed to as JSON
//! to a URL. 2xx ⇒ OK; 4xx ⇒ ErrorAndSkip (the endpoint refused this task;
//! the queue goes on); 5xx, a timeout or a refused connection ⇒ Error (the
//! queue stops and the task is retried, so the order is kept).
//!
//! ConnectorConfig (JSON):
//! ```json
//! {"url": "https://hooks.example.com/bus", "timeout_ms": 5000,
//!  "headers": {"Authorization": "Bearer s3cret"},
//!  "ca_cert": "/etc/bus/hooks-ca.pem",
//!  "lookup_url": "http://127.0.0.1:9000/lookup",
//!  "subscriptions": [{"process_type": "AsyncSimpleSnapshot", "scope": "objects", "object_type": "cms.user"}]}
//! ```
//! `subscriptions` defaults to every object and every document with
//! AsyncSimpleSnapshot. With `lookup_url`, foreign keys are translated to the
//! receiver's IDs: `GET <lookup_url>?object_type=cms.role&code_name=editors&site_name=CorpSite`
//! (documents: `?node_guid=..&culture=..&site_name=..&document_id=true|false`)
//! answers `{"id": 17}` (404: unknown). The posted task always carries the
//! translation data (`translations`) so a receiver can resolve keys itself.
//! `https://` endpoints are verified against the public roots, or against
//! `ca_cert` (a PEM file) when given — for a self-signed endpoint.

use connector_abi::prelude::*;
use connector_http::{query_escape, Client, Options, Unreachable};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    name: Option<String>,
    url: String,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    lookup_url: Option<String>,
    #[serde(default)]
    subscriptions: Option<Vec<Subscription>>,
    /// A PEM file of CA certificates to trust for https:// instead of the public roots.
    #[serde(default)]
    ca_cert: Option<std::path::PathBuf>,
}

fn default_timeout_ms() -> u64 {
    5000
}

pub struct WebhookConnector {
    name: Option<String>,
    url: String,
    lookup: Option<String>,
    client: Client,
    headers: Vec<(String, String)>,
    subscriptions: Vec<Subscription>,
}

impl WebhookConnector {
    fn lookup(&self, query: &[(&str, String)]) -> Option<i64> {
        let url = self.lookup.as_ref()?;
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", query_escape(v))).collect();
        let separator = if url.contains('?') { '&' } else { '?' };
        let response = self.client.send("GET", &format!("{url}{separator}{}", q.join("&")), &self.headers, b"").ok()?;
        if !(200..300).contains(&response.status) {
            return None;
        }
        serde_json::from_str::<Value>(&response.body).ok()?.get("id")?.as_i64()
    }
}

impl Connector for WebhookConnector {
    fn create(config: &str, _host: Host) -> Result<Self, ConnectorError> {
        let config: Config = serde_json::from_str(config).map_err(|e| {
            ConnectorError(format!("ConnectorConfig must be JSON such as {{\"url\": \"http://host:port/path\"}}: {e}"))
        })?;
        if config.timeout_ms == 0 {
            return Err("timeout_ms must be at least 1".into());
        }
        let subscriptions = config.subscriptions.unwrap_or_else(|| {
            vec![
                Subscription::all_objects(TaskProcessType::AsyncSimpleSnapshot),
                Subscription::all_documents(TaskProcessType::AsyncSimpleSnapshot),
            ]
        });
        connector_http::check_url(&config.url)?;
        if let Some(lookup) = &config.lookup_url {
            connector_http::check_url(lookup)?;
        }
        let client =
            Client::new(&Options { timeout: Duration::from_millis(config.timeout_ms), ca_cert: config.ca_cert })?;
        Ok(WebhookConnector {
            name: config.name,
            url: config.url,
            lookup: config.lookup_url,
            client,
            headers: config.headers.into_iter().collect(),
            subscriptions,
        })
    }

    fn init(&self, init: &mut Init) {
        let name = self.name.clone().unwrap_or_else(|| init.registry_name().to_owned());
        init.set_connector_name(name);
        for s in &self.subscriptions {
            init.subscribe_to(s.clone());
        }
    }

    fn process_internal_task_async(&self, task: &OutgoingTask) -> ProcessOutcome {
        let mut object = task.object.clone();
        let untranslated = match (&self.lookup, task.data_type) {
            (Some(_), TaskDataType::SimpleSnapshot | TaskDataType::Snapshot) => {
                let children = task.data_type == TaskDataType::Snapshot;
                translate_columns_to_external(self, &mut object, &task.translations, children).err().map(|e| e.0)
            }
            _ => None,
        };
        let body = json!({
            "task_id": task.task_id,
            "task_type": task.task_type,
            "data_type": task.data_type,
            "site_name": task.site_name,
            "title": task.title,
            "object": object,
            "translations": task.translations,
            "untranslated": untranslated.unwrap_or_default(),
        });
        let bytes = serde_json::to_vec(&body).expect("a task serializes");
        match self.client.send("POST", &self.url, &self.headers, &bytes) {
            Ok(r) if (200..300).contains(&r.status) => ProcessOutcome::ok(),
            Ok(r) => {
                let snippet: String = r.body.chars().take(200).collect();
                let message = format!("{} answered HTTP {}: {snippet}", self.url, r.status);
                if (400..500).contains(&r.status) {
                    ProcessOutcome::error_and_skip(message)
                } else {
                    ProcessOutcome::error(message)
                }
            }
            Err(Unreachable(why)) => ProcessOutcome::error(why),
        }
    }

    fn get_external_object_id(&self, object: &ObjectTranslation) -> Option<i64> {
        let mut q = vec![("object_type", object.object_type.clone()), ("code_name", object.code_name.clone())];
        if let Some(site) = &object.site_name {
            q.push(("site_name", site.clone()));
        }
        self.lookup(&q)
    }

    fn get_external_document_id(&self, document: &DocumentTranslation, return_document_id: bool) -> Option<i64> {
        self.lookup(&[
            ("node_guid", document.node_guid.clone()),
            ("culture", document.culture.clone()),
            ("site_name", document.site_name.clone()),
            ("document_id", return_document_id.to_string()),
        ])
    }
}

export_connectors!(WebhookConnector);
