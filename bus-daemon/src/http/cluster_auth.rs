//! How daemons of one cluster prove a routed call comes from one of them,
//! without sending the access token anywhere: the caller signs the call
//! with a key derived from the token (HMAC-SHA256 of a fixed label), over
//! the route, the caller's own address, a timestamp and the body's digest.
//! The receiver checks the signature, that the timestamp is within
//! [`WINDOW`] of its clock, and that the signature was not seen before
//! (a replay within the window). A daemon that writes a forged address into
//! `Integration_Daemon` receives signatures, never the token, and cannot
//! sign a call of its own. Without a token the API is loopback-only and
//! unauthenticated anyway; calls then go unsigned.

use ring::{digest, hmac};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Who signed: the caller's address, as it advertises it.
pub const FROM_HEADER: &str = "x-bus-cluster-from";
/// When, in seconds since 1970.
pub const TIME_HEADER: &str = "x-bus-cluster-time";
/// The signature, lower-case hex.
pub const SIGNATURE_HEADER: &str = "x-bus-cluster-signature";

/// How far a call's timestamp may be from the receiver's clock.
pub const WINDOW: Duration = Duration::from_secs(30);

/// The label the key is derived under (a new label makes new keys).
const LABEL: &[u8] = b"integration-bus cluster call v1";

/// The cluster's call key, and the signatures seen within the window.
pub struct CallAuth {
    key: Option<hmac::Key>,
    seen: Mutex<HashMap<String, u64>>,
}

/// The headers of a signed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub from: String,
    pub time: u64,
    pub signature: String,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl CallAuth {
    /// The key of the daemons sharing `token` (none without a token).
    pub fn new(token: Option<&str>) -> CallAuth {
        let key = token.map(|t| {
            let root = hmac::Key::new(hmac::HMAC_SHA256, t.as_bytes());
            hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&root, LABEL).as_ref())
        });
        CallAuth { key, seen: Mutex::new(HashMap::new()) }
    }

    fn message(path: &str, from: &str, time: u64, body: &[u8]) -> Vec<u8> {
        let body_digest = hex(digest::digest(&digest::SHA256, body).as_ref());
        format!("POST\n{path}\n{from}\n{time}\n{body_digest}").into_bytes()
    }

    /// The headers for a call from `from` to `path` with `body` (`None`:
    /// no token, calls go unsigned).
    pub fn sign(&self, path: &str, from: &str, body: &[u8]) -> Option<Signed> {
        let key = self.key.as_ref()?;
        let time = now();
        let tag = hmac::sign(key, &Self::message(path, from, time, body));
        Some(Signed { from: from.to_owned(), time, signature: hex(tag.as_ref()) })
    }

    /// Checks a received call; `Err` says why it is refused.
    pub fn verify(&self, path: &str, body: &[u8], signed: Option<&Signed>) -> Result<(), String> {
        let Some(key) = &self.key else { return Ok(()) };
        let Some(signed) = signed else {
            return Err("this route takes calls from the daemons of the cluster only (signed with the cluster key); an access token is not accepted here".into());
        };
        let now = now();
        if now.abs_diff(signed.time) > WINDOW.as_secs() {
            return Err(format!(
                "the call's timestamp is {} s away from this daemon's clock (at most {} s): too old, or the clocks differ",
                now.abs_diff(signed.time),
                WINDOW.as_secs()
            ));
        }
        let tag: Option<Vec<u8>> = (0..signed.signature.len() / 2)
            .map(|i| u8::from_str_radix(signed.signature.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let valid = tag.is_some_and(|tag| {
            signed.signature.len() == 64
                && hmac::verify(key, &Self::message(path, &signed.from, signed.time, body), &tag).is_ok()
        });
        if !valid {
            return Err("the call's signature is not the cluster's (another access token, or a changed request)".into());
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, at| now.abs_diff(*at) <= WINDOW.as_secs());
        if seen.insert(signed.signature.clone(), signed.time).is_some() {
            return Err("the call was received before (a replay)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/api/cluster/connectors/A/call";

    #[test]
    fn a_signed_call_is_accepted_once_and_anything_else_is_refused() {
        let auth = CallAuth::new(Some("secret"));
        let signed = auth.sign(PATH, "https://b:8080", b"{}").unwrap();
        assert!(!signed.signature.contains("secret"));
        assert_eq!(auth.verify(PATH, b"{}", Some(&signed)), Ok(()));
        assert!(auth.verify(PATH, b"{}", Some(&signed)).unwrap_err().contains("replay"));
        let fresh = auth.sign(PATH, "https://b:8080", b"{}").unwrap();
        assert!(auth.verify(PATH, b"{\"x\":1}", Some(&fresh)).unwrap_err().contains("signature"), "another body");
        assert!(auth.verify("/api/cluster/connectors/B/call", b"{}", Some(&fresh)).is_err(), "another route");
        let other = CallAuth::new(Some("other token")).sign(PATH, "https://b:8080", b"{}").unwrap();
        assert!(auth.verify(PATH, b"{}", Some(&other)).is_err(), "another cluster's key");
        let old = Signed { time: fresh.time - 120, ..fresh.clone() };
        assert!(auth.verify(PATH, b"{}", Some(&old)).unwrap_err().contains("timestamp"));
        assert!(auth.verify(PATH, b"{}", None).unwrap_err().contains("daemons of the cluster only"));
        let garbled = Signed { signature: "zz".repeat(32), ..fresh };
        assert!(auth.verify(PATH, b"{}", Some(&garbled)).is_err());
        // Without a token: unsigned, and nothing to check.
        let open = CallAuth::new(None);
        assert_eq!(open.sign(PATH, "x", b"{}"), None);
        assert_eq!(open.verify(PATH, b"{}", None), Ok(()));
    }
}
