//! A connector as a build of an older SDK looks from the host: it implements
//! the frozen binary surface by itself (no SDK dispatcher) and knows only
//! the request kinds of its time, `init` and `process_internal_task_async`.
//! Its init answer lacks fields newer hosts know and carries one they do not
//! (`legacy_only_field`). The compatibility tests load it into today's host.

use abi_stable::export_root_module;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use connector_abi::abi::{ConnectorBox, ConnectorLib, ConnectorLibRef, ConnectorObject, ConnectorObject_TO, HostBox};
use serde_json::{json, Value};

const KINDS: [&str; 2] = ["init", "process_internal_task_async"];

struct Legacy {
    registry_name: std::sync::Mutex<String>,
}

fn respond(value: Value) -> RResult<RVec<u8>, RString> {
    RResult::ROk(RVec::from(serde_json::to_vec(&value).unwrap_or_default()))
}

impl ConnectorObject for Legacy {
    fn call(&self, request: RSlice<'_, u8>) -> RResult<RVec<u8>, RString> {
        let Ok(request) = serde_json::from_slice::<Value>(request.as_slice()) else {
            return respond(json!({"status": "error", "message": "unreadable request"}));
        };
        let kind = request["kind"].as_str().unwrap_or_default().to_owned();
        match kind.as_str() {
            "init" => {
                let name = request["body"]["registry_name"].as_str().unwrap_or("Legacy").to_owned();
                *self.registry_name.lock().unwrap_or_else(|p| p.into_inner()) = name.clone();
                respond(json!({"status": "ok", "body": {
                    "connector_name": name,
                    "subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.role"}],
                    "capabilities": KINDS,
                    "sdk_version": "0.9.0",
                    "legacy_only_field": true
                }}))
            }
            "process_internal_task_async" => match request["body"]["object"]["code_name"].as_str() {
                // Broken answers, for the host's fault tests.
                Some("malformed") => respond(json!({"status": "ok", "body": {"result": "Banana"}})),
                Some("garbage") => RResult::ROk(RVec::from(b"\xff not json at all".to_vec())),
                _ => respond(json!({"status": "ok", "body": {"result": "Ok"}})),
            },
            other => respond(json!({"status": "unsupported", "kind": other})),
        }
    }

    fn shutdown(&self) {}
}

extern "C" fn classes() -> RVec<RString> {
    RVec::from(vec![RString::from("LegacyConnector")])
}

extern "C" fn new_connector(class: RStr<'_>, _config: RStr<'_>, _host: HostBox) -> RResult<ConnectorBox, RString> {
    if class.as_str() != "LegacyConnector" {
        return RResult::RErr(RString::from(format!("no class {}", class.as_str())));
    }
    let legacy = Legacy { registry_name: std::sync::Mutex::new(String::new()) };
    RResult::ROk(ConnectorObject_TO::from_value(legacy, TD_Opaque))
}

#[export_root_module]
fn root() -> ConnectorLibRef {
    ConnectorLib { abi_version: 1, classes, new_connector }.leak_into_prefix()
}
