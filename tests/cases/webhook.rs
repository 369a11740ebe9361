//! The webhook connector against a local HTTP server.

use bus_tests::hook_server::HookServer;
use bus_tests::{wait_for, Daemon, TestEnv};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn start(server: &HookServer, config: Value) -> (TestEnv, Daemon) {
    let env = TestEnv::new();
    env.install("webhook_connector", "webhook_connector");
    let mut config = config;
    config["url"] = json!(server.url("/hook"));
    env.register("Webhook", "webhook_connector", "WebhookConnector", true, &config.to_string());
    let d = env.start();
    let c = d.connector("Webhook").unwrap();
    assert_eq!(c["loaded"], true, "{c}");
    (env, d)
}

fn users_only() -> Value {
    json!([{"process_type": "AsyncSimpleSnapshot", "scope": "objects", "object_type": "cms.user%"}])
}

#[test]
fn tasks_are_posted_with_headers_and_foreign_keys_translated_by_lookup() {
    let server = HookServer::start();
    let (_env, d) = start(
        &server,
        json!({"headers": {"Authorization": "Bearer s3cret"}, "lookup_url": server.url("/lookup"), "subscriptions": users_only()}),
    );
    server.map_id("editors", 501);
    server.map_id("antonio", 601);
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let role = d.create("cms.role", json!({"code_name": "editors", "site_name": "CorpSite"}))["object"]["id"]
        .as_i64()
        .unwrap();
    let user = d.create("cms.user", json!({"code_name": "antonio", "display_name": "Antonio"}))["object"]["id"]
        .as_i64()
        .unwrap();
    d.create("cms.userrole", json!({"fields": {"UserID": user, "RoleID": role}}));
    wait_for("both tasks to be posted", WAIT, || (server.posts().len() == 2).then_some(()));
    let posts = server.posts();
    assert_eq!(posts[0].body["title"], "Create User 'Antonio'");
    assert!(posts[0].headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v == "Bearer s3cret"));
    let binding = &posts[1].body;
    assert_eq!(binding["object"]["fields"]["RoleID"], 501, "{binding}");
    assert_eq!(binding["object"]["fields"]["UserID"], 601);
    assert_eq!(binding["translations"]["objects"].as_array().unwrap().len(), 2);
    assert_eq!(binding["untranslated"], json!([]));
    wait_for("the queue to drain", WAIT, || d.queue("outgoing", "").is_empty().then_some(()));
}

#[test]
fn server_errors_are_retried_in_order_and_client_errors_skip_the_task() {
    let server = HookServer::start();
    let (_env, d) = start(&server, json!({"subscriptions": users_only()}));
    server.respond_with(&[503, 503]);
    d.create("cms.user", json!({"code_name": "first"}));
    d.create("cms.user", json!({"code_name": "second"}));
    wait_for("both users to arrive", WAIT, || (server.posts().len() == 4).then_some(()));
    let names: Vec<Value> = server.posts().iter().map(|p| p.body["object"]["code_name"].clone()).collect();
    assert_eq!(
        names,
        [json!("first"), json!("first"), json!("first"), json!("second")],
        "retried until accepted, in order"
    );
    wait_for("the queue to drain", WAIT, || d.queue("outgoing", "").is_empty().then_some(()));

    server.respond_with(&[422]);
    let rejected = d.create("cms.user", json!({"code_name": "rejected"}))["task_id"].as_i64().unwrap();
    d.create("cms.user", json!({"code_name": "after"}));
    wait_for("the next user to arrive", WAIT, || {
        server.posts().iter().any(|p| p.body["object"]["code_name"] == "after").then_some(())
    });
    let task = d.get(&format!("/api/tasks/{rejected}")).body;
    let error = task["relations"][0]["error"].as_str().unwrap();
    assert!(error.contains("HTTP 422"), "{error}");
}

#[test]
fn an_unreachable_endpoint_keeps_the_task_queued_with_the_reason() {
    let server = HookServer::start();
    let (_env, d) = start(&server, json!({"subscriptions": users_only(), "timeout_ms": 500}));
    let gone = server.url("/hook");
    drop(server);
    std::thread::sleep(Duration::from_millis(100));
    let task = d.create("cms.user", json!({"code_name": "lost"}))["task_id"].as_i64().unwrap();
    let detail = wait_for("the failure to be recorded", WAIT, || {
        let t = d.get(&format!("/api/tasks/{task}")).body;
        t["relations"][0]["error"].is_string().then_some(t)
    });
    let error = detail["relations"][0]["error"].as_str().unwrap();
    assert!(error.contains("cannot connect"), "{error} ({gone})");
    assert_eq!(d.queue("outgoing", "").len(), 1, "the task is kept");
}

#[test]
fn tasks_are_posted_over_https_to_an_endpoint_whose_certificate_is_trusted() {
    let keys = tempfile::tempdir().unwrap();
    let certs = bus_tests::tls::issue(keys.path());
    let server = HookServer::start_tls(&certs.chain, &certs.key);
    assert!(server.url("/hook").starts_with("https://"));
    let (_env, d) = start(&server, json!({"subscriptions": users_only(), "ca_cert": certs.ca}));
    d.create("cms.user", json!({"code_name": "secure"}));
    wait_for("the HTTPS post", WAIT, || {
        server.posts().iter().any(|p| p.body["object"]["code_name"] == "secure").then_some(())
    });
    wait_for("the task to be gone", WAIT, || d.queue("outgoing", "").is_empty().then_some(()));

    // Without the CA to trust, the endpoint's certificate is refused
    // and the task stays queued with the reason.
    let (_env, d) = start(&server, json!({"subscriptions": users_only(), "timeout_ms": 2000}));
    let task = d.create("cms.user", json!({"code_name": "untrusted"}))["task_id"].as_i64().unwrap();
    let detail = wait_for("the failure", WAIT, || {
        let t = d.get(&format!("/api/tasks/{task}")).body;
        t["relations"][0]["error"].is_string().then_some(t)
    });
    let error = detail["relations"][0]["error"].as_str().unwrap().to_lowercase();
    assert!(error.contains("certificate") || error.contains("issuer"), "{error}");
    assert!(!server.posts().iter().any(|p| p.body["object"]["code_name"] == "untrusted"));
}
