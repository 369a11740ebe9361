//! Access control: when `auth_token` is configured, every API route (and
//! `/metrics`) needs it — as `Authorization: Bearer <token>`, or as the
//! session cookie the UI gets from `POST /api/login`. Cookie-authenticated
//! requests that change something must also carry `X-Bus-Csrf: 1`, a header
//! another site's page cannot send without a CORS preflight this daemon never
//! grants, so a forged cross-site form post is refused. `/health`, the UI's
//! static files and the login route stay open.

use super::error::{ApiError, ApiJson};
use super::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

pub const COOKIE: &str = "bus_session";
pub const CSRF_HEADER: &str = "x-bus-csrf";

/// Compares without an early exit, so timing does not reveal the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer <token>` header; the scheme name
/// is case-insensitive (RFC 7235).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim_start();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Failed logins are limited per client address: after [`LOGIN_FAILURES`]
/// within [`LOGIN_WINDOW`], further attempts get 429 until the window ends.
pub const LOGIN_FAILURES: usize = 5;
pub const LOGIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Recent failed logins by client address.
#[derive(Default)]
pub struct LoginLimiter {
    failures: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, Vec<std::time::Instant>>>,
}

impl LoginLimiter {
    /// How long the client must wait, when it is over the limit.
    fn blocked_for(&self, client: std::net::IpAddr) -> Option<std::time::Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let recent = failures.entry(client).or_default();
        recent.retain(|at| at.elapsed() < LOGIN_WINDOW);
        (recent.len() >= LOGIN_FAILURES).then(|| LOGIN_WINDOW.saturating_sub(recent[0].elapsed()))
    }

    fn failed(&self, client: std::net::IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded memory under a flood of addresses: forget the quiet ones.
        if failures.len() > 10_000 {
            failures.retain(|_, v| v.last().is_some_and(|at| at.elapsed() < LOGIN_WINDOW));
        }
        failures.entry(client).or_default().push(std::time::Instant::now());
    }
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

pub(super) fn open_route(path: &str) -> bool {
    path == "/" || path == "/health" || path.starts_with("/ui/") || path == "/api/login" || path == "/api/logout"
}

/// The route the daemons of a cluster call each other on: it takes their
/// signature (`cluster_auth.rs`), checked by its handler, and no token.
pub(super) fn daemon_route(path: &str) -> bool {
    path.strip_prefix("/api/cluster/connectors/").is_some_and(|rest| rest.ends_with("/call"))
}

pub async fn guard(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let Some(token) = s.auth_token.as_deref() else { return next.run(request).await };
    if open_route(request.uri().path()) || daemon_route(request.uri().path()) {
        return next.run(request).await;
    }
    let headers = request.headers();
    if bearer(headers).is_some_and(|t| same(t.as_bytes(), token.as_bytes())) {
        return next.run(request).await;
    }
    if cookie(headers).is_some_and(|t| same(t.as_bytes(), token.as_bytes())) {
        let changes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if changes && headers.get(CSRF_HEADER).is_none() {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "a request that changes something must carry the X-Bus-Csrf header (cross-site requests are refused)",
            )
            .into_response();
        }
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing or wrong access token: send `Authorization: Bearer <token>` or log in at /",
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct Login {
    token: String,
}

/// Checks the token and sets the session cookie (HttpOnly, SameSite=Strict,
/// and Secure over TLS); failed attempts are rate-limited per client.
pub async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let Some(token) = s.auth_token.as_deref() else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    if let Some(wait) = s.logins.blocked_for(peer.ip()) {
        let seconds = wait.as_secs().max(1);
        let refusal = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed logins from {}; try again in {seconds} s", peer.ip()),
        );
        return Ok(
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, seconds.to_string())], refusal).into_response()
        );
    }
    if !same(body.token.as_bytes(), token.as_bytes()) {
        s.logins.failed(peer.ip());
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong access token"));
    }
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}", secure(&s));
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

fn secure(s: &AppState) -> &'static str {
    if s.tls {
        "; Secure"
    } else {
        ""
    }
}

pub async fn logout(State(s): State<AppState>) -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}", secure(&s));
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}
