//! The invariants of ARCHITECTURE.md that a text check can enforce: the
//! engine does not depend on the HTTP stack or `anyhow`; `unsafe` appears
//! only in the loader, each block with a `// SAFETY:` line; every source
//! file opens with a module doc; the code map names every source file; the
//! workers reach the database only through the storage seam. Each
//! checker is shown failing on a fixture too, so a green run means something.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The workspace's Rust files (not `target/`), relative to the root.
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && name != ".git" && name != "node_modules" && name != "bench-results" {
                    walk(&path, root, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(root).unwrap().to_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &root(), &mut out);
    out.sort();
    out
}

/// Dependencies the engine must not have.
fn forbidden_dependencies(manifest: &str) -> Vec<&'static str> {
    let deps: String = manifest
        .split("\n[")
        .filter(|section| section.starts_with("dependencies") || section.starts_with("[dependencies"))
        .collect();
    ["axum", "tokio", "hyper", "anyhow", "tower"]
        .into_iter()
        .filter(|d| {
            deps.lines()
                .any(|l| l.trim_start().starts_with(&format!("{d} ")) || l.trim_start().starts_with(&format!("{d}=")))
        })
        .collect()
}

/// Lines that use `unsafe` as code (not in a comment), and whether each
/// `unsafe` block has a `// SAFETY:` line right above it.
fn unsafe_uses(source: &str) -> Vec<(usize, bool)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let words = code.split(|c: char| !(c.is_alphanumeric() || c == '_'));
        if words.into_iter().any(|w| w == "unsafe") {
            let justified = i > 0 && lines[..i].iter().rev().take(3).any(|l| l.trim_start().starts_with("// SAFETY:"));
            out.push((i + 1, justified));
        }
    }
    out
}

/// Lines of code (not comments) that name SQLite's crate or the write gate.
fn sqlite_uses(source: &str) -> Vec<usize> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            code.contains("rusqlite") || code.contains("WriteGate") || code.contains(".gate()")
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// Lines of code (not comments) that branch on the database engine.
fn engine_branches(source: &str) -> Vec<usize> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            code.contains("Dialect::") || code.contains(".dialect()")
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// String literals (by line of their start) whose `$n` parameters do not
/// first appear in order `$1`, `$2`, …: SQLite would bind them to the
/// wrong values (it numbers named parameters by first appearance).
fn misnumbered_parameters(source: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let bytes = source.as_bytes();
    let mut i = 0;
    let mut line = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\'' if bytes.get(i + 2) == Some(&b'\'') || bytes.get(i + 1) == Some(&b'\\') => {
                // A character literal ('"', '\\'): passed over.
                i += if bytes.get(i + 1) == Some(&b'\\') { 4 } else { 3 };
                continue;
            }
            b'"' => {
                let start = line;
                let mut text = String::new();
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    if bytes.get(i) == Some(&b'\n') {
                        line += 1;
                    }
                    text.push(*bytes.get(i).unwrap_or(&b' ') as char);
                    i += 1;
                }
                let mut seen: Vec<usize> = Vec::new();
                let mut rest = text.as_str();
                while let Some(at) = rest.find('$') {
                    rest = &rest[at + 1..];
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if let Ok(n) = digits.parse::<usize>() {
                        if !seen.contains(&n) {
                            seen.push(n);
                        }
                    }
                }
                if seen.iter().enumerate().any(|(k, n)| *n != k + 1) {
                    out.push(start);
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn has_module_doc(source: &str) -> bool {
    source.lines().next().is_some_and(|l| l.starts_with("//!"))
}

/// Whether the code map names a source file: by its path below `src/`
/// (`http/guard.rs`) or by its name in backticks (`` `lane.rs` ``).
fn named_in_code_map(map: &str, file: &Path) -> bool {
    let text = file.to_string_lossy();
    let below_src = text.split_once("/src/").map_or(text.as_ref(), |(_, rest)| rest);
    let name = file.file_name().unwrap().to_string_lossy();
    map.contains(below_src) || map.contains(&format!("`{name}`"))
}

#[test]
fn the_checkers_fail_on_fixtures() {
    assert_eq!(
        forbidden_dependencies("[package]\nname = \"x\"\n\n[dependencies]\ntokio = \"1\"\nserde = \"1\"\n"),
        ["tokio"]
    );
    assert!(forbidden_dependencies("[dependencies]\nserde = \"1\"\n\n[dev-dependencies]\ntokio = \"1\"\n").is_empty());
    assert_eq!(unsafe_uses("fn f() {\n    unsafe { g() }\n}\n"), [(2, false)]);
    assert_eq!(unsafe_uses("// SAFETY: g has no preconditions\nunsafe { g() }\n"), [(2, true)]);
    assert!(unsafe_uses("// no unsafe here\nlet unsafe_name = 1;\n").is_empty());
    assert!(!has_module_doc("use std::fs;\n"));
    assert_eq!(sqlite_uses("use rusqlite::Connection;\n// rusqlite in a comment\nlet g = db.gate();\n"), [1, 3]);
    assert_eq!(misnumbered_parameters("let a = \"SELECT $1, $2, $1\";\nlet b = \"x $2 $1\";\n"), [2]);
    assert!(misnumbered_parameters("format!(\"(${}, $1)\")").is_empty(), "a placeholder for a number is no parameter");
    assert_eq!(engine_branches("match conn.dialect() {\n// Dialect::Sqlite\nDialect::Postgres => x,\n"), [1, 3]);
    assert!(named_in_code_map("| `http/` | `guard.rs` (…) |", Path::new("bus-daemon/src/http/guard.rs")));
    assert!(!named_in_code_map("| `http/` | routes |", Path::new("bus-daemon/src/http/secret.rs")));
}

#[test]
fn the_engine_does_not_depend_on_the_http_stack_or_anyhow() {
    let manifest = std::fs::read_to_string(root().join("bus-core/Cargo.toml")).unwrap();
    assert_eq!(forbidden_dependencies(&manifest), Vec::<&str>::new(), "bus-core/Cargo.toml");
}

#[test]
fn unsafe_code_appears_only_in_the_loader_each_block_justified() {
    // This file names the word in its fixtures.
    for file in rust_files().into_iter().filter(|f| !f.ends_with("tests/cases/tidy.rs")) {
        let source = std::fs::read_to_string(root().join(&file)).unwrap();
        for (line, justified) in unsafe_uses(&source) {
            // The one other place: a test connector that segfaults on purpose.
            let allowed = file.starts_with("bus-core/src/loader") || file.ends_with("connectors/testkit/src/crash.rs");
            assert!(allowed, "{}:{line}: `unsafe` outside bus-core/src/loader/", file.display());
            assert!(justified, "{}:{line}: an `unsafe` block without a `// SAFETY:` line above it", file.display());
        }
    }
}

#[test]
fn only_the_storage_layer_branches_on_the_database_engine() {
    // The drivers, the connection type, the database handle (which opens
    // either engine) and the engine's assembly (which picks the queue
    // backend and the cluster) — nothing else asks which engine it is on.
    let storage = ["bus-core/src/driver/", "bus-core/src/sql/", "bus-core/src/db/", "bus-core/src/engine.rs"];
    let engine_files = rust_files().into_iter().filter(|f| f.starts_with("bus-core/src"));
    for file in engine_files.filter(|f| !storage.iter().any(|s| f.starts_with(s))) {
        let source = std::fs::read_to_string(root().join(&file)).unwrap();
        let lines = engine_branches(&source);
        assert!(lines.is_empty(), "{}: lines {lines:?} branch on the engine; add a driver method", file.display());
    }
}

#[test]
fn sql_parameters_are_numbered_in_order_of_first_appearance() {
    let engine = ["bus-core/src", "bus-daemon/src", "bench/src"];
    let misnumbered: Vec<String> = rust_files()
        .into_iter()
        .filter(|f| engine.iter().any(|e| f.starts_with(e)) && !f.ends_with("bus-core/src/sql/mod.rs"))
        .filter_map(|file| {
            let lines = misnumbered_parameters(&std::fs::read_to_string(root().join(&file)).unwrap());
            (!lines.is_empty()).then(|| format!("{}: lines {lines:?}", file.display()))
        })
        .collect();
    // (sql/mod.rs holds a misnumbered statement on purpose: its test shows
    // the refusal.)
    assert!(misnumbered.is_empty(), "string literals number their $n parameters out of order: {misnumbered:?}");
}

#[test]
fn the_workers_reach_the_database_only_through_the_storage_seam() {
    let drains = ["bus-core/src/worker/", "bus-core/src/outgoing/deliver.rs", "bus-core/src/incoming/drain.rs"];
    for file in rust_files().into_iter().filter(|f| drains.iter().any(|d| f.starts_with(d))) {
        let source = std::fs::read_to_string(root().join(&file)).unwrap();
        let lines = sqlite_uses(&source);
        assert!(
            lines.is_empty(),
            "{}: lines {lines:?} use SQLite directly; go through backend::QueueSession",
            file.display()
        );
    }
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let missing: Vec<String> = rust_files()
        .into_iter()
        .filter(|f| !has_module_doc(&std::fs::read_to_string(root().join(f)).unwrap()))
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` paragraph: {missing:?}");
}

#[test]
fn the_code_map_names_every_source_file_of_the_engine_the_daemon_the_sdk_and_the_harness() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let missing: Vec<String> = rust_files()
        .into_iter()
        .filter(|f| {
            ["bus-core/src/", "bus-daemon/src/", "connector-abi/src/", "connector-http/src/", "connector-harness/src/"]
                .iter()
                .any(|prefix| f.starts_with(prefix))
        })
        .filter(|f| !f.ends_with("lib.rs") && !f.ends_with("main.rs") && !f.ends_with("mod.rs"))
        .filter(|f| !named_in_code_map(&map, f))
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md's code map does not name: {missing:?}");
}
