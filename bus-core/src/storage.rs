//! Noticing that the database file the daemon opened is no longer the one
//! at its path: deleted, replaced, or its write-ahead log removed. Commits
//! would then go to a file the next start does not read, so the daemon
//! must stop acknowledging writes (the HTTP layer answers 503) and say why.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A file's identity: device and inode.
type Identity = (u64, u64);

fn identity(path: &Path) -> std::io::Result<Identity> {
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

struct Inner {
    path: PathBuf,
    wal_path: PathBuf,
    file: Identity,
    wal: Mutex<Option<Identity>>,
    /// The first fault found; a fault never clears (only a restart does).
    fault: Mutex<Option<String>>,
}

/// Watches one database file; cheap to clone and to check (two `stat`s).
/// A database on a server has no file here to watch: its faults are the
/// errors its connections return.
#[derive(Clone)]
pub struct StorageWatch {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for StorageWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageWatch").field("path", &self.inner.as_ref().map(|i| &i.path)).finish()
    }
}

impl StorageWatch {
    /// Remembers the identity of the database file at `path` as it is now
    /// (right after the daemon opened it).
    pub fn new(path: &Path) -> std::io::Result<StorageWatch> {
        let file = identity(path)?;
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        let wal_path = PathBuf::from(wal_path);
        let wal = identity(&wal_path).ok();
        Ok(StorageWatch {
            inner: Some(Arc::new(Inner {
                path: path.to_owned(),
                wal_path,
                file,
                wal: Mutex::new(wal),
                fault: Mutex::new(None),
            })),
        })
    }

    /// Nothing to watch (a database on a server).
    pub fn none() -> StorageWatch {
        StorageWatch { inner: None }
    }

    /// The storage fault, if the file (or its log) is gone or replaced. The
    /// first time one is found it is logged as an error.
    pub fn fault(&self) -> Option<String> {
        let inner = self.inner.as_ref()?;
        let mut fault = inner.fault.lock().unwrap_or_else(|p| p.into_inner());
        if fault.is_none() {
            *fault = Self::check(inner);
            if let Some(why) = fault.as_deref() {
                tracing::error!(database = %inner.path.display(), fault = why, "the database file is not the one the daemon opened; writes are refused");
            }
        }
        fault.clone()
    }

    fn check(i: &Inner) -> Option<String> {
        match identity(&i.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(format!("the database file {} was deleted while the daemon ran", i.path.display()))
            }
            Err(e) => return Some(format!("the database file {} cannot be read: {e}", i.path.display())),
            Ok(now) if now != i.file => {
                return Some(format!("the database file {} was replaced while the daemon ran", i.path.display()))
            }
            Ok(_) => {}
        }
        let mut wal = i.wal.lock().unwrap_or_else(|p| p.into_inner());
        match (identity(&i.wal_path).ok(), *wal) {
            (Some(now), None) => *wal = Some(now),
            (Some(now), Some(then)) if now == then => {}
            (_, Some(_)) => {
                return Some(format!(
                "the write-ahead log {} was removed or replaced while the daemon ran (recent commits would be lost)",
                i.wal_path.display()
            ))
            }
            (None, None) => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_replaced_file_is_a_fault_that_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus.db");
        std::fs::write(&path, b"x").unwrap();
        let watch = StorageWatch::new(&path).unwrap();
        assert_eq!(watch.fault(), None);
        std::fs::remove_file(&path).unwrap();
        assert!(watch.fault().unwrap().contains("was deleted"));
        std::fs::write(&path, b"y").unwrap();
        assert!(watch.fault().unwrap().contains("was deleted"), "a fault stays until a restart");

        let other = dir.path().join("other.db");
        std::fs::write(&other, b"x").unwrap();
        let watch = StorageWatch::new(&other).unwrap();
        let replacement = dir.path().join("new.db");
        std::fs::write(&replacement, b"z").unwrap();
        std::fs::rename(&replacement, &other).unwrap();
        assert!(watch.fault().unwrap().contains("was replaced"));
    }
}
