//! Certificates for the TLS tests, made with the `openssl` command: a test
//! CA and a server certificate it signs for 127.0.0.1 and localhost (valid
//! two days). A client trusts the CA; the server presents its certificate
//! (webpki, which rustls uses, does not take a self-signed server
//! certificate as its own trust anchor).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files `issue` writes.
pub struct TestCerts {
    /// The CA certificate (what a client trusts).
    pub ca: PathBuf,
    /// The server's certificate chain (its certificate, then the CA's).
    pub chain: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let out =
        Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs (scripts/test installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Writes a CA and a server certificate into `dir`.
pub fn issue(dir: &Path) -> TestCerts {
    issue_for(dir, "IP:127.0.0.1,DNS:localhost")
}

/// Writes a CA and a server certificate for the names `subject_alt_names`
/// (openssl's `subjectAltName` syntax) into `dir`.
pub fn issue_for(dir: &Path, subject_alt_names: &str) -> TestCerts {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=bus test CA", "-keyout", "ca.key", "-out", "ca.pem"];
    ca.extend(ec);
    openssl(&ca, dir);
    let mut csr = vec!["req", "-new", "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "server.csr"];
    csr.extend(ec);
    openssl(&csr, dir);
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName={subject_alt_names}\n"
        ),
    )
    .unwrap();
    openssl(
        &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"]
            .into_iter()
            .chain(["-extfile", "server.ext", "-out", "server.pem"])
            .collect::<Vec<_>>(),
        dir,
    );
    let chain = [
        std::fs::read_to_string(dir.join("server.pem")).unwrap(),
        std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    TestCerts { ca: dir.join("ca.pem"), chain: dir.join("chain.pem"), key: dir.join("key.pem") }
}
