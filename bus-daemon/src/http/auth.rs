//! Access control: when `auth_token` is configured, every API route (and
//! `/metrics`) needs it — as `Authorization: Bearer <token>`, or as the
//! session cookie the UI gets from `POST /api/login`. Cookie-authenticated
//! requests that change something must also carry `X-Bus-Csrf: 1`, a header
//! another site's page cannot send without a CORS preflight this daemon never
//! grants, so a forged cross-site form post is refused. `/health`, the UI's
//! static files and the login route stay open.

use super::error::{ApiError, ApiJson};
use super::AppState;
use axum::extract::{Request, State};
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

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn open_route(path: &str) -> bool {
    path == "/" || path == "/health" || path.starts_with("/ui/") || path == "/api/login" || path == "/api/logout"
}

pub async fn guard(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let Some(token) = s.auth_token.as_deref() else { return next.run(request).await };
    if open_route(request.uri().path()) {
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
pub struct Login {
    token: String,
}

/// Checks the token and sets the session cookie (HttpOnly, SameSite=Strict).
pub async fn login(State(s): State<AppState>, ApiJson(body): ApiJson<Login>) -> Result<Response, ApiError> {
    let Some(token) = s.auth_token.as_deref() else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    if !same(body.token.as_bytes(), token.as_bytes()) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong access token"));
    }
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

pub async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}
