//! A local HTTP (or HTTPS) server standing in for an external system:
//! records what it is sent, answers with programmed statuses, and serves ID
//! lookups.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the server got.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// The body as it arrived.
    pub raw: Vec<u8>,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    statuses: VecDeque<u16>,
    ids: HashMap<String, i64>,
}

/// The server; it stops when dropped.
pub struct HookServer {
    pub addr: String,
    scheme: &'static str,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl HookServer {
    /// A plain HTTP server.
    pub fn start() -> HookServer {
        Self::spawn(None)
    }

    /// An HTTPS server with this PEM certificate chain and key.
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> HookServer {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(cert).unwrap().collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Self::spawn(Some(Arc::new(config)))
    }

    fn spawn(tls: Option<Arc<rustls::ServerConfig>>) -> HookServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let scheme = if tls.is_some() { "https" } else { "http" };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                match &tls {
                    None => serve(stream, &s),
                    Some(config) => {
                        // A client that refuses the certificate ends the handshake: no request.
                        let Ok(connection) = rustls::ServerConnection::new(config.clone()) else { continue };
                        serve(rustls::StreamOwned::new(connection, stream), &s);
                    }
                }
            }
        });
        HookServer { addr, scheme, state, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// The statuses the next POSTs get, in order (then 200).
    pub fn respond_with(&self, statuses: &[u16]) {
        self.state.lock().unwrap().statuses.extend(statuses);
    }

    /// What a lookup for `key` (a code name or node GUID) answers.
    pub fn map_id(&self, key: &str, id: i64) {
        self.state.lock().unwrap().ids.insert(key.to_owned(), id);
    }

    pub fn posts(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.iter().filter(|r| r.method == "POST").cloned().collect()
    }
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn query_value<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    path.split_once('?')?.1.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn serve<S: Read + Write>(stream: S, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim().split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let (status, answer) = {
        let mut st = state.lock().unwrap();
        let answer = if method == "GET" {
            let key = query_value(&path, "code_name").or_else(|| query_value(&path, "node_guid")).unwrap_or_default();
            match st.ids.get(key) {
                Some(id) => (200, format!("{{\"id\":{id}}}")),
                None => (404, "{}".to_owned()),
            }
        } else {
            (st.statuses.pop_front().unwrap_or(200), "{\"received\":true}".to_owned())
        };
        st.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            raw: body.clone(),
        });
        answer
    };
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Status\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.flush();
}
