//! TLS to the server as libpq reads it from the URL: `sslmode` (`disable`,
//! `prefer` — the default —, `require`, `verify-ca`, `verify-full`) and
//! `sslrootcert=<path>` (else `~/.postgresql/root.crt`, as libpq looks).
//! tokio-postgres knows neither the `verify-*` modes nor `sslrootcert`, so
//! both are taken out of the URL here and turned into a rustls client
//! configuration:
//!
//! | mode | encrypted | server certificate checked against the CA | name checked |
//! |---|---|---|---|
//! | `disable` | no | – | – |
//! | `prefer` | if the server offers it | only if a root certificate is given | no |
//! | `require` | yes | only if a root certificate is given (as libpq) | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres::config::SslMode;

/// What the URL asks of TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(value: &str) -> Result<Mode, String> {
        Ok(match value {
            "disable" => Mode::Disable,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            // libpq's `allow` tries plain first; the bus never downgrades
            // silently, so it is refused rather than read as something else.
            other => {
                return Err(format!("sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"))
            }
        })
    }

    /// What tokio-postgres is told (it checks nothing itself).
    pub(crate) fn ssl_mode(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// The TLS part of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsParams {
    pub mode: Mode,
    pub root_cert: Option<PathBuf>,
}

/// Splits `sslmode` and `sslrootcert` off a `postgres://` URL's query (the
/// key-value form is passed through unchanged: its TLS words are read by
/// tokio-postgres, which knows `disable`, `prefer` and `require`).
pub(crate) fn split(url: &str) -> Result<(String, TlsParams), String> {
    let mut params = TlsParams { mode: Mode::Prefer, root_cert: None };
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok((url.to_owned(), params));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => params.mode = Mode::parse(&decode(value))?,
            "sslrootcert" => params.root_cert = Some(PathBuf::from(decode(value))),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((url, params))
}

/// Percent-decoding of a query value (paths may be written encoded).
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex()) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rustls client configuration for `params` (`None` for `disable`).
pub(crate) fn client_config(params: &TlsParams) -> Result<Option<rustls::ClientConfig>, String> {
    if params.mode == Mode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let root = match (&params.root_cert, params.mode) {
        (Some(path), _) => Some(path.clone()),
        (None, Mode::VerifyCa | Mode::VerifyFull) => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            let default = home.join(".postgresql/root.crt");
            if !default.is_file() {
                return Err(format!(
                    "sslmode=verify-ca and verify-full need the CA certificate to check the server against: \
                     add sslrootcert=<path> to the URL (or put it in {})",
                    default.display()
                ));
            }
            Some(default)
        }
        (None, _) => None,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match root {
        None => builder.dangerous().with_custom_certificate_verifier(Arc::new(Unchecked(provider))),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(&path)
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("sslrootcert {}: no certificate in it", path.display()));
            }
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            if params.mode == Mode::VerifyFull {
                builder.with_webpki_verifier(verifier)
            } else {
                builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
            }
        }
    };
    Ok(Some(config.with_no_client_auth()))
}

/// `verify-ca`: the chain must lead to the CA; the name is not checked.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a root certificate: encrypted, the
/// certificate not checked (libpq's meaning; the handshake's signatures
/// still are, so the session is with whoever holds the certificate's key).
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl Unchecked {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.0.signature_verification_algorithms
    }
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_words_are_taken_out_of_the_url_and_the_rest_is_kept() {
        let (url, p) =
            split("postgres://u@db:5432/bus?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem")
                .unwrap();
        assert_eq!(url, "postgres://u@db:5432/bus?application_name=x");
        assert_eq!(p, TlsParams { mode: Mode::VerifyFull, root_cert: Some("/etc/ca.pem".into()) });
        let (url, p) = split("postgres://u@db/bus").unwrap();
        assert_eq!((url.as_str(), p.mode), ("postgres://u@db/bus", Mode::Prefer), "libpq's default is prefer");
        let (url, _) = split("postgresql://u@db/bus?sslmode=disable").unwrap();
        assert_eq!(url, "postgresql://u@db/bus");
        let err = split("postgres://u@db/bus?sslmode=verify_full").unwrap_err();
        assert!(err.contains("`verify_full` is not one of"), "{err}");
    }

    #[test]
    fn verifying_needs_a_ca_and_a_ca_file_must_hold_one() {
        let dir = std::env::temp_dir().join(format!("pg-client-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(&TlsParams { mode: Mode::VerifyFull, root_cert: Some(empty.clone()) }).unwrap_err();
        assert!(err.contains("no certificate in it"), "{err}");
        let missing = dir.join("missing.pem");
        let err = client_config(&TlsParams { mode: Mode::VerifyCa, root_cert: Some(missing) }).unwrap_err();
        assert!(err.starts_with("sslrootcert "), "{err}");
        assert!(client_config(&TlsParams { mode: Mode::Require, root_cert: None }).unwrap().is_some());
        assert!(client_config(&TlsParams { mode: Mode::Disable, root_cert: None }).unwrap().is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
