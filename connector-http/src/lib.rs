//! A blocking HTTP and HTTPS client for connectors and for the bus's
//! command line, on `ureq` with rustls: a deadline on every request, any
//! status read as an answer (not an error), and an optional CA certificate
//! to trust instead of the public roots (a self-signed endpoint).
//!
//! It lives outside `connector-abi` so the frozen binary interface crate
//! carries no networking: a connector that needs HTTP depends on this crate.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code (any: 4xx and 5xx are answers too).
    pub status: u16,
    /// The body as text (at most [`MAX_BODY`] bytes are read).
    pub body: String,
}

/// The most of a response body that is read.
pub const MAX_BODY: u64 = 1 << 20;

/// Why no answer came back (connection refused, timeout, TLS failure, a
/// URL that cannot be used), in words for a log or a task error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// How a [`Client`] connects.
#[derive(Debug, Clone)]
pub struct Options {
    /// The deadline of one whole request (connect, send, answer).
    pub timeout: Duration,
    /// A PEM file of CA certificates to trust for `https://` instead of the
    /// public (Mozilla) roots, e.g. the certificate of a self-signed endpoint.
    pub ca_cert: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options { timeout: Duration::from_secs(10), ca_cert: None }
    }
}

/// Checks that `url` is an absolute `http://` or `https://` URL with a host;
/// the error says what is wrong.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("`{url}` has no host"));
    }
    url.parse::<ureq::http::Uri>().map(|_| ()).map_err(|e| format!("`{url}` is not a valid URL: {e}"))
}

/// A client with its connections and TLS settings; cheap to clone.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

fn read_ca(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read the CA certificate {}: {e}", path.display()))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the CA certificate {} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

impl Client {
    /// A client with these options; fails when the CA file cannot be used.
    pub fn new(options: &Options) -> Result<Client, String> {
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
        if let Some(path) = &options.ca_cert {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&read_ca(path)?));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(options.timeout))
            .http_status_as_error(false)
            .tls_config(tls.build())
            .build()
            .new_agent();
        Ok(Client { agent })
    }

    /// Sends one request (a JSON body when `body` is not empty) and reads
    /// the answer, whatever its status.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Response, Unreachable> {
        check_url(url).map_err(Unreachable)?;
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request =
            request.body(body.to_vec()).map_err(|e| Unreachable(format!("cannot build the request to {url}: {e}")))?;
        let mut response = self.agent.run(request).map_err(|e| describe(url, e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| Unreachable(format!("no complete answer from {url}: {e}")))?;
        Ok(Response { status, body })
    }
}

/// Says why a request got no answer: cannot connect (refused, no such host),
/// timed out, or anything else (TLS, protocol).
fn describe(url: &str, e: ureq::Error) -> Unreachable {
    Unreachable(match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("cannot connect to {url}: connection refused")
        }
        ureq::Error::HostNotFound => format!("cannot connect to {url}: the host name does not resolve"),
        ureq::Error::ConnectionFailed => format!("cannot connect to {url}"),
        ureq::Error::Io(io) => format!("cannot connect to {url}: {io}"),
        ureq::Error::Timeout(t) => format!("no answer from {url} in time ({t})"),
        other => format!("no answer from {url}: {other}"),
    })
}

/// Asks an integration bus at `server_url` (e.g. `http://127.0.0.1:8700`) to
/// process logged incoming tasks now: of one connector, or of all when
/// `connector` is `None` (the specification's `RequestTasksProcessing`). For
/// code that runs outside the daemon; inside it, use
/// `connector_abi::Host::request_processing`. Returns the HTTP status (202
/// when processing started).
pub fn request_tasks_processing(server_url: &str, connector: Option<&str>) -> Result<u16, Unreachable> {
    let mut url = format!("{}/api/integration/notify", server_url.trim_end_matches('/'));
    if let Some(c) = connector {
        url.push_str("?connector=");
        url.push_str(&query_escape(c));
    }
    let client = Client::new(&Options::default()).map_err(Unreachable)?;
    client.send("POST", &url, &[], b"").map(|r| r.status)
}

/// Percent-encodes a query value (unreserved characters stay).
pub fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_with_a_reason() {
        assert!(check_url("http://127.0.0.1:9000/hook/x").is_ok());
        assert!(check_url("https://example.com").is_ok());
        assert!(check_url("ftp://x").unwrap_err().contains("not an http:// or https:// URL"));
        assert!(check_url("http:///path").unwrap_err().contains("no host"));
        assert_eq!(query_escape("a b&c"), "a%20b%26c");
    }

    #[test]
    fn a_refused_connection_is_unreachable_with_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = Client::new(&Options { timeout: Duration::from_secs(2), ca_cert: None }).unwrap();
        let e = client.send("GET", &format!("http://127.0.0.1:{port}/"), &[], b"").unwrap_err();
        assert!(e.0.contains(&format!("127.0.0.1:{port}")), "{e}");
    }
}
