//! A small blocking HTTP/1.1 client (plain `http://` only), for connectors
//! that talk to HTTP endpoints and for [`request_tasks_processing`]: enough to
//! send JSON and read the status, with timeouts on every step.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A parsed `http://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("`{url}` is not an http:// URL (https is not supported: put a TLS-terminating proxy in front)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("`{p}` is not a port number in `{url}`"))?),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        Ok(Url { host: host.to_owned(), port, path: path.to_owned() })
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub body: String,
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// Sends one request and reads the whole response.
pub fn send(
    method: &str,
    url: &Url,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, Unreachable> {
    let fail = |what: &str, e: std::io::Error| Unreachable(format!("{what} {}:{}: {e}", url.host, url.port));
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| fail("cannot resolve", e))?
        .next()
        .ok_or_else(|| Unreachable(format!("{} has no address", url.host)))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail("cannot connect to", e))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| fail("cannot configure", e))?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| fail("cannot configure", e))?;
    let mut head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
        url.host,
        url.port,
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body)).map_err(|e| fail("cannot send to", e))?;
    let mut raw = Vec::new();
    stream.take(1 << 20).read_to_end(&mut raw).map_err(|e| fail("no complete answer from", e))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Unreachable(format!("{}:{} answered something that is not HTTP", url.host, url.port)))?;
    Ok(Response { status, reason: parts.next().unwrap_or_default().to_owned(), body: body.to_owned() })
}

/// Asks an integration bus at `server_url` (e.g. `http://127.0.0.1:8700`) to
/// process logged incoming tasks now: of one connector, or of all when
/// `connector` is `None` (the spec's `RequestTasksProcessing`). For code that
/// runs outside the daemon; inside it, use `Host::request_processing`.
/// Returns the HTTP status (202 when processing started).
pub fn request_tasks_processing(server_url: &str, connector: Option<&str>) -> Result<u16, Unreachable> {
    let base = Url::parse(server_url).map_err(Unreachable)?;
    let mut path = format!("{}/api/integration/notify", base.path.trim_end_matches('/'));
    if let Some(c) = connector {
        let escaped: String = c
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        path.push_str(&format!("?connector={escaped}"));
    }
    send("POST", &base, &path, &[], b"", Duration::from_secs(10)).map(|r| r.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_or_say_why_not() {
        assert_eq!(
            Url::parse("http://127.0.0.1:9000/hook/x").unwrap(),
            Url { host: "127.0.0.1".into(), port: 9000, path: "/hook/x".into() }
        );
        assert_eq!(Url::parse("http://example.com").unwrap().port, 80);
        assert!(Url::parse("https://x").unwrap_err().contains("https is not supported"));
        assert!(Url::parse("http://x:port/").unwrap_err().contains("not a port"));
    }
}
