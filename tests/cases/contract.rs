//! The API document against the server, read as outside tools read it:
//! Schemathesis fuzzes a live daemon from `/api/openapi.json` (every check:
//! no 5xx, answers that match their schemas, nothing invalid accepted,
//! nothing valid refused), and openapi-python-client generates a client
//! whose calls and models a Python script then uses. Both tools are pinned
//! and installed by `scripts/test` (`BUS_TEST_API_TOOLS` names their folder).

use bus_tests::{artifacts, TestEnv};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The folder with `st`, `openapi-python-client`, `ruff` and `python`.
fn tools() -> PathBuf {
    let dir = std::env::var_os("BUS_TEST_API_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| artifacts().dir.parent().unwrap().join("api-tools/bin"));
    assert!(
        dir.join("st").exists() && dir.join("openapi-python-client").exists(),
        "Schemathesis and openapi-python-client are missing from {}: run scripts/test, which installs the pinned versions",
        dir.display()
    );
    dir
}

/// This crate's `contract/` folder (the tools' configuration and scripts).
fn contract(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contract").join(file)
}

fn run(what: &str, command: &mut Command) -> Output {
    let tools = tools();
    let path = std::env::join_paths(
        std::iter::once(tools.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let out = command.env("PATH", path).output().unwrap_or_else(|e| panic!("{what} cannot be started: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A daemon with the sample connector loaded (its subscriptions make
/// tasks to list, synchronize and delete).
fn daemon(env: &TestEnv) -> bus_tests::Daemon {
    env.install("sample_connector", "sample_connector");
    env.sql()
        .execute(
            "UPDATE Integration_Connector SET ConnectorEnabled = 1 WHERE ConnectorName = 'SampleIntegrationConnector'",
            [],
        )
        .unwrap();
    env.start()
}

#[test]
fn schemathesis_finds_no_difference_between_the_document_and_the_server() {
    let env = TestEnv::new();
    let d = daemon(&env);
    let work = tempfile::tempdir().unwrap();
    let out = run(
        "Schemathesis",
        Command::new(tools().join("st"))
            .current_dir(work.path())
            .arg("--config-file")
            .arg(contract("schemathesis.toml"))
            .args(["run", &format!("http://{}/api/openapi.json", d.addr), "--wait-for-schema", "30"]),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    // Not a run that tested nothing.
    let tested =
        report.lines().find_map(|l| l.trim().strip_prefix("Tested: ")).and_then(|n| n.trim().parse::<u32>().ok());
    assert!(tested.is_some_and(|n| n >= 40), "too few operations tested:\n{report}");
    assert!(report.contains(" generated,"), "{report}");
}

#[test]
fn a_generated_python_client_reads_and_changes_the_bus() {
    let env = TestEnv::new();
    let d = daemon(&env);
    let work = tempfile::tempdir().unwrap();
    let document = d.get("/api/openapi.json");
    assert_eq!(document.status, 200);
    std::fs::write(work.path().join("openapi.json"), &document.text).unwrap();
    // Every warning is a failure: a schema the generator cannot read is one.
    run(
        "openapi-python-client",
        Command::new(tools().join("openapi-python-client")).current_dir(work.path()).args([
            "generate",
            "--path",
            "openapi.json",
            "--output-path",
            "client",
            "--meta",
            "none",
            "--fail-on-warning",
        ]),
    );
    let out = run(
        "the script using the generated client",
        Command::new(tools().join("python"))
            .arg(contract("use_client.py"))
            .arg(work.path())
            .arg(format!("http://{}", d.addr)),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("ok: listed tasks deleted") && said.contains("ok: event log"), "{said}");
}
