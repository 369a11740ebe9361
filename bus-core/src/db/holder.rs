//! Who has a SQLite bus file in use: a daemon serving it or a migration
//! copying it. Each holds an exclusive lock (`flock`) on `<file>-holder`
//! next to the database for as long as it runs, with a line saying who it
//! is; the kernel drops the lock when the process ends, however it ends.
//! A second daemon on the same file (two workers per queue) and a copy
//! that a running daemon keeps writing past (changes acknowledged after
//! the copy began would be missing from the target) are both refused with
//! the holder's words. Management commands (`connector …`, `task …`) take
//! no lock: they are meant to run beside the daemon.

use super::{DbError, Location};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock, held until dropped.
#[derive(Debug)]
pub struct Hold {
    _file: File,
}

/// The lock file of the database at `path`.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push("-holder");
    path.with_file_name(name)
}

/// Takes the lock of the SQLite database at `path` for `who` (e.g. "the
/// daemon with PID 42"), or says who has it.
pub fn take(path: &Path, who: &str) -> Result<Hold, DbError> {
    let lock = lock_path(path);
    let io = |source: std::io::Error| DbError::Hold { path: lock.clone(), source };
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = File::options().read(true).write(true).create(true).truncate(false).open(&lock).map_err(io)?;
    if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        return Err(DbError::Held {
            location: Location::File(path.to_owned()),
            holder: if holder.is_empty() { "another process".to_owned() } else { holder.to_owned() },
        });
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{who}").map_err(io)?;
    Ok(Hold { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_refused_one_learns_who() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bus.db");
        let first = take(&db, "the daemon with PID 1").unwrap();
        let refused = take(&db, "a migration").unwrap_err().to_string();
        assert!(refused.contains("the daemon with PID 1"), "{refused}");
        drop(first);
        let again = take(&db, "a migration").unwrap();
        drop(again);
    }
}
