//! Loading a connector library: copy it to a content-addressed path, then
//! open the copy and check its interface — in the daemon (`in-process`) or
//! in the connector's own process (`process` isolation), which opens the
//! copy the daemon checked.
//!
//! Why a copy: `dlopen` of a path that is already loaded returns the old code,
//! and overwriting a mapped library in place crashes the process. Loading a
//! private copy named after the file's content makes every new build a new
//! path and leaves the user free to overwrite their file. Libraries are never
//! unloaded (abi_stable leaks them by design).

use super::LoadError;
pub(crate) use crate::library::Library;
use abi_stable::library::{lib_header_from_path, LibraryError};
use connector_abi::abi::{ConnectorLibRef, ABI_VERSION};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The connector classes a library exports.
pub(crate) fn classes(root: ConnectorLibRef) -> Vec<String> {
    (root.classes())().into_iter().map(|s| s.into_string()).collect()
}

/// Libraries already loaded by this process, by the path of their copy: the
/// same content is opened once, whatever loader asks for it.
fn opened() -> &'static Mutex<HashMap<PathBuf, ConnectorLibRef>> {
    static OPENED: OnceLock<Mutex<HashMap<PathBuf, ConnectorLibRef>>> = OnceLock::new();
    OPENED.get_or_init(Default::default)
}

/// FNV-1a, 64 bits: stable across builds and platforms, enough to tell builds apart.
fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}-{:x}", bytes.len())
}

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Fingerprint {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let m = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Fingerprint { len: m.len(), modified: m.modified().ok(), inode })
}

/// A library file (and copies folder) in one version.
type LoadedKey = (PathBuf, PathBuf, Fingerprint);

/// Libraries loaded from an unchanged file are not read and hashed again
/// (a reinitialization of many connectors of one library stays cheap).
fn loaded() -> &'static Mutex<HashMap<LoadedKey, Arc<Library>>> {
    static LOADED: OnceLock<Mutex<HashMap<LoadedKey, Arc<Library>>>> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

/// Prepares the library at `source`: checks it and writes its private copy
/// in `copies_dir` (nothing is loaded: see [`open_library_copy`]).
pub(crate) fn prepare_library(source: &Path, copies_dir: &Path) -> Result<Arc<Library>, LoadError> {
    // Connectors load in parallel: one copy is written at a time (two loads
    // of one library would share its temporary file).
    static PREPARING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = PREPARING.lock().unwrap_or_else(|p| p.into_inner());
    let key = fingerprint(source).map(|f| (source.to_owned(), copies_dir.to_owned(), f));
    if let Some(key) = &key {
        if let Some(lib) = loaded().lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return Ok(lib.clone());
        }
    }
    let lib = read_and_copy(source, copies_dir)?;
    if let Some(key) = key {
        loaded().lock().unwrap_or_else(|p| p.into_inner()).insert(key, lib.clone());
    }
    Ok(lib)
}

fn read_and_copy(source: &Path, copies_dir: &Path) -> Result<Arc<Library>, LoadError> {
    let bytes = fs::read(source).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::Missing { path: source.to_owned() },
        _ => LoadError::Io { path: source.to_owned(), source: e },
    })?;
    super::preflight::check_library(&bytes)
        .map_err(|cause| LoadError::NotALibrary { path: source.to_owned(), cause })?;
    let hash = content_hash(&bytes);
    let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("connector");
    let ext = source.extension().and_then(|s| s.to_str()).unwrap_or("so");
    let copy = copies_dir.join(format!("{stem}-{hash}.{ext}"));
    write_copy(&copy, &bytes)?;
    Ok(Arc::new(Library { source: source.to_owned(), copy, hash }))
}

/// Opens a prepared copy in this process (once per copy) and checks its
/// interface; `source` names the user's file in errors.
pub(crate) fn open_library_copy(source: &Path, copy: &Path) -> Result<ConnectorLibRef, LoadError> {
    let mut opened = opened().lock().unwrap_or_else(|p| p.into_inner());
    let root = match opened.get(copy) {
        Some(root) => *root,
        None => {
            let root = open_root_module(source, copy)?;
            opened.insert(copy.to_owned(), root);
            root
        }
    };
    drop(opened);
    if root.abi_version() != ABI_VERSION {
        return Err(LoadError::Incompatible {
            path: source.to_owned(),
            cause: format!("the library speaks connector ABI {}, this host speaks {ABI_VERSION}", root.abi_version()),
        });
    }
    Ok(root)
}

/// Writes the copy once (atomically: a temporary file renamed into place).
fn write_copy(copy: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    if copy.exists() {
        return Ok(());
    }
    let io = |e| LoadError::Io { path: copy.to_owned(), source: e };
    let dir = copy.parent().expect("a copy path always has a folder");
    fs::create_dir_all(dir).map_err(io)?;
    let tmp =
        dir.join(format!(".{}.{}.tmp", copy.file_name().and_then(|n| n.to_str()).unwrap_or("lib"), std::process::id()));
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(io)?;
    drop(f);
    fs::rename(&tmp, copy).map_err(io)
}

fn open_root_module(source: &Path, copy: &Path) -> Result<ConnectorLibRef, LoadError> {
    let header = lib_header_from_path(copy).map_err(|e| classify(source, e))?;
    header.init_root_module::<ConnectorLibRef>().map_err(|e| classify(source, e))
}

/// Turns abi_stable's error (up to ~700 lines for a layout mismatch) into a
/// load error with a short cause.
fn classify(source: &Path, e: LibraryError) -> LoadError {
    let path = source.to_owned();
    match e {
        LibraryError::OpenError { err, .. } => LoadError::NotALibrary { path, cause: short_cause(&err.to_string()) },
        LibraryError::GetSymbolError { .. } => LoadError::NotAConnector { path },
        other => {
            let kind = match &other {
                LibraryError::AbiInstability(_) => "its interface layout differs from this host's",
                LibraryError::InvalidAbiHeader(_) => "it was built with an incompatible abi_stable",
                LibraryError::IncompatibleVersionNumber { .. } => "its interface version is incompatible",
                LibraryError::InvalidCAbi { .. } => "it was built with an incompatible compiler",
                LibraryError::RootModule { .. } => "its root module failed to initialize",
                _ => "it cannot be used",
            };
            LoadError::Incompatible { path, cause: format!("{kind}: {}", short_cause(&other.to_string())) }
        }
    }
}

/// The last few meaningful lines of a long message, each at most 300 characters.
pub(crate) fn short_cause(message: &str) -> String {
    const LINES: usize = 3;
    const WIDTH: usize = 300;
    let lines: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let start = lines.len().saturating_sub(LINES);
    let mut out = lines[start..]
        .iter()
        .map(|l| {
            if l.chars().count() > WIDTH {
                format!("{}…", l.chars().take(WIDTH).collect::<String>())
            } else {
                (*l).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" / ");
    if start > 0 {
        out = format!("… {out}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_keep_their_last_lines() {
        let long: String = (0..700).map(|i| format!("line {i}\n")).collect();
        let short = short_cause(&long);
        assert_eq!(short, "… line 697 / line 698 / line 699");
        assert_eq!(short_cause("one line"), "one line");
    }

    #[test]
    fn hash_depends_on_content() {
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
        assert_eq!(content_hash(b"abc"), content_hash(b"abc"));
    }
}
