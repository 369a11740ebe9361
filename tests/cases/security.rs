//! Access control: the token, the UI's session cookie and its CSRF header,
//! and the refusal to listen beyond loopback without a token.

use bus_tests::http::{request_with, Response};
use bus_tests::TestEnv;
use serde_json::json;

const TOKEN: &str = "correct-horse-battery-staple";

fn call(addr: &str, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Response {
    request_with(addr, method, path, body.map(str::as_bytes), "application/json", headers)
}

#[test]
fn with_a_token_every_api_route_needs_it_and_the_ui_resists_forged_requests() {
    let env = TestEnv::new();
    env.configure(&format!("auth_token = \"{TOKEN}\""));
    let d = env.start();
    let a = d.addr.as_str();
    let bearer = format!("Bearer {TOKEN}");

    let denied = call(a, "GET", "/api/connectors", None, &[]);
    assert_eq!(denied.status, 401);
    assert!(denied.body["error"].as_str().unwrap().contains("access token"), "{}", denied.text);
    assert_eq!(
        call(a, "GET", "/api/connectors", None, &[("Authorization", "Bearer wrong-token-wrong-token")]).status,
        401
    );
    assert_eq!(call(a, "GET", "/metrics", None, &[]).status, 401);
    assert_eq!(call(a, "POST", "/api/objects/cms.site", Some(r#"{"code_name":"X"}"#), &[]).status, 401);
    assert_eq!(call(a, "GET", "/api/connectors", None, &[("Authorization", &bearer)]).status, 200);
    assert_eq!(call(a, "GET", "/metrics", None, &[("Authorization", &bearer)]).status, 200);
    // Open: liveness and the UI's files (the UI asks for the token itself).
    assert_eq!(call(a, "GET", "/health", None, &[]).status, 200);
    assert_eq!(call(a, "GET", "/", None, &[]).status, 200);
    assert_eq!(call(a, "GET", "/ui/app.js", None, &[]).status, 200);

    // The UI's login sets an HttpOnly, SameSite=Strict session cookie.
    assert_eq!(call(a, "POST", "/api/login", Some(r#"{"token":"nope"}"#), &[]).status, 401);
    let login = call(a, "POST", "/api/login", Some(&json!({"token": TOKEN}).to_string()), &[]);
    assert_eq!(login.status, 204, "{}", login.text);
    let set = login.header("set-cookie").unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    assert_eq!(call(a, "GET", "/api/settings", None, &[("Cookie", &cookie)]).status, 200);
    // A cross-site form post carries the cookie but cannot add the header.
    let forged = call(a, "PUT", "/api/settings", Some(r#"{"enabled":false}"#), &[("Cookie", &cookie)]);
    assert_eq!(forged.status, 403, "{}", forged.text);
    assert!(forged.body["error"].as_str().unwrap().contains("X-Bus-Csrf"));
    assert_eq!(
        call(a, "GET", "/api/settings", None, &[("Authorization", &bearer)]).body["enabled"],
        true,
        "nothing changed"
    );
    let from_ui =
        call(a, "PUT", "/api/settings", Some(r#"{"enabled":true}"#), &[("Cookie", &cookie), ("X-Bus-Csrf", "1")]);
    assert_eq!(from_ui.status, 200, "{}", from_ui.text);
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let env = TestEnv::new();
    let text = std::fs::read_to_string(&env.config_path).unwrap().replace("127.0.0.1:0", "0.0.0.0:0");
    std::fs::write(&env.config_path, text).unwrap();
    let err = env.start_fails();
    assert!(err.contains("refusing to listen on 0.0.0.0:0 without an auth_token"), "{err}");
    env.configure("auth_token = \"short\"");
    let err = env.start_fails();
    assert!(err.contains("auth_token must be at least 16 characters"), "{err}");
}
