//! Building the daemon binary and the connector cdylibs the tests load.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Where the built daemon and libraries are.
#[derive(Debug)]
pub struct Artifacts {
    /// The cargo profile folder (`target/debug`).
    pub dir: PathBuf,
    pub daemon: PathBuf,
}

impl Artifacts {
    /// The built library of a crate, by its library name (`sample_connector`).
    pub fn library(&self, lib_name: &str) -> PathBuf {
        let file = format!("{}{lib_name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
        self.dir.join(file)
    }
}

const PACKAGES: &[&str] = &[
    "bus-daemon",
    "sample-connector",
    "crm-connector",
    "webhook-connector",
    "acme-crm-connector",
    "erp-example-connector",
    "testkit-connector",
    "testkit-v2-connector",
    "legacy-connector",
    "incompatible-connector",
];

/// Builds (once per test process) everything the black-box tests run.
pub fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(|| {
        // The test binary lives in <target>/<profile>/deps.
        let exe = std::env::current_exe().expect("the test binary has a path");
        let dir = exe.parent().and_then(|d| d.parent()).expect("the test binary is in <profile>/deps").to_owned();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build").arg("--quiet");
        for p in PACKAGES {
            cmd.args(["-p", p]);
        }
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo can be started");
        assert!(status.success(), "building the daemon and the connectors failed");
        let daemon = dir.join(format!("bus-daemon{}", std::env::consts::EXE_SUFFIX));
        assert!(daemon.exists(), "{} was not built", daemon.display());
        Artifacts { dir, daemon }
    })
}
