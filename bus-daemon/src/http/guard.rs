//! Protections every request passes before its route: the `Host` check
//! that defeats DNS rebinding when no token guards the API, the refusal of
//! cross-site "simple" requests (forms, text bodies, foreign origins) on
//! routes that change something, the bound on large bodies handled at once,
//! a storage fault (the database file gone or replaced) turning the API into
//! 503 (`/health` and `/metrics` still answer), and the security headers on
//! every response.

use super::auth::CSRF_HEADER;
use super::error::ApiError;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bus_core::storage::StorageWatch;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A body above this size waits for one of the `max_large_bodies` slots.
const LARGE_BODY: u64 = 64 * 1024;

/// What the guard needs, built once from `bus.toml`.
pub struct Protection {
    /// Hosts answered without a token besides loopback names and addresses.
    pub allowed_hosts: Vec<String>,
    /// True when an access token guards the API (then any `Host` is served).
    pub token: bool,
    pub large_bodies: Arc<Semaphore>,
    pub storage: StorageWatch,
}

/// True for `localhost`, `*.localhost`, 127.0.0.0/8 and `[::1]`, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { host })
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn host_name(host: &str) -> &str {
    host.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h)
}

fn host_allowed(p: &Protection, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return Err(ApiError::bad_request("the request has no Host header"));
    };
    if p.token || loopback_host(host) || p.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(host_name(host))) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        format!(
            "this daemon answers to loopback names only (Host `{host}` refused, as a page reached through DNS rebinding would send it); add the name to [http] allowed_hosts or set an auth_token"
        ),
    ))
}

/// A request that changes something must not be one a foreign page can send
/// without a preflight: no form or text body, no foreign `Origin`.
fn not_cross_site(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest.trim_end_matches('/'));
        if origin != "null" && origin_host.eq_ignore_ascii_case(host) {
            // same origin
        } else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("a cross-site request (Origin `{origin}`) cannot change anything here"),
            ));
        }
    }
    if headers.contains_key(CSRF_HEADER) {
        return Ok(());
    }
    let Some(kind) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let kind = kind.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if kind == "application/json" || kind.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "a request that changes something takes a JSON body (Content-Type: application/json), not `{kind}`"
            ),
        ))
    }
}

fn changes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn body_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

pub async fn guard(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let p = &s.protection;
    let headers = request.headers();
    if let Err(e) = host_allowed(p, headers) {
        return with_headers(e.into_response(), request.uri().path());
    }
    let path = request.uri().path().to_owned();
    let writes = changes(request.method());
    if writes {
        if let Err(e) = not_cross_site(headers) {
            return with_headers(e.into_response(), &path);
        }
    }
    // Reads would come from a file that is not the bus's any more, writes
    // would go to one no restart reads: the API answers neither.
    if writes || path.starts_with("/api/") {
        if let Some(fault) = p.storage.fault() {
            return with_headers(storage_refusal(&fault).into_response(), &path);
        }
    }
    // A large (or unsized, chunked) body waits for a slot: memory stays bounded.
    let large = body_length(headers).is_none_or(|n| n > LARGE_BODY) && writes;
    let _slot = if large { p.large_bodies.clone().acquire_owned().await.ok() } else { None };
    let mut response = next.run(request).await;
    if writes && response.status().is_success() {
        if let Some(fault) = p.storage.fault() {
            // The change may have gone to a file the daemon will not use again.
            response = storage_refusal(&fault).into_response();
        }
    }
    with_headers(response, &path)
}

fn storage_refusal(fault: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{fault}; nothing is accepted until the daemon is restarted on a sound database"),
    )
}

/// The security headers of every response.
fn with_headers(mut response: Response, path: &str) -> Response {
    let h = response.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    let csp = if path == "/" || path.starts_with("/ui/") {
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'"
    };
    h.insert("content-security-policy", HeaderValue::from_static(csp));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_with_and_without_ports() {
        for ok in [
            "localhost",
            "localhost:8700",
            "127.0.0.1",
            "127.0.0.1:1",
            "127.9.9.9:80",
            "[::1]:8700",
            "[::1]",
            "app.localhost",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:8700",
            "10.0.0.1:80",
            "localhost.attacker.example",
            "[::2]:1",
            "127.0.0.1.nip.io",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }
}
