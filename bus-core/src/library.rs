//! A connector library as the loader prepared it: the user's file and the
//! private, content-addressed copy that is opened (in the daemon or in the
//! connector's process), with its hash.
//! The loader makes it (`loader/library.rs`); a live connector keeps it (the
//! code stays mapped while an instance runs) and shows which build it is.

use std::path::PathBuf;

/// A connector library loaded from its content-addressed copy.
pub(crate) struct Library {
    /// The user's file.
    pub source: PathBuf,
    /// The private copy that is actually loaded.
    pub copy: PathBuf,
    /// The content hash (hex) that names the copy.
    pub hash: String,
}

impl Library {
    /// What stands for the library of a class compiled into the program
    /// that runs the bus (the connector test harness: nothing is loaded).
    pub(crate) fn linked() -> Self {
        let here = PathBuf::from("(compiled into this program)");
        Library { source: here.clone(), copy: here, hash: "linked".into() }
    }
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library").field("source", &self.source).field("copy", &self.copy).finish()
    }
}
