//! Where the bus database is: a SQLite file (the embedded default) or a
//! PostgreSQL server, told apart by the `database` setting's scheme (or a
//! SQLite database in memory, for the connector test harness).

use std::path::{Path, PathBuf};

/// The `database` setting, parsed.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    File(PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`).
    Postgres(String),
    /// A SQLite database in this process's memory, by name, gone when the
    /// last handle on it closes (the connector test harness). No setting
    /// names one.
    Memory(String),
}

impl Location {
    /// `postgres://…` and `postgresql://…` select PostgreSQL; anything else
    /// is a SQLite file path.
    pub fn parse(setting: &str) -> Location {
        let lower = setting.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Location::Postgres(setting.trim().to_owned())
        } else {
            Location::File(PathBuf::from(setting))
        }
    }

    /// The SQLite file, if this is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::File(p) => Some(p),
            Location::Postgres(_) | Location::Memory(_) => None,
        }
    }

    /// Where SQLite opens this database: the file, or for a database in
    /// memory the URI of SQLite's `memdb` file system (one database that
    /// every connection of the process shares, with the usual locking).
    pub(crate) fn sqlite_path(&self) -> Option<PathBuf> {
        match self {
            Location::File(p) => Some(p.clone()),
            Location::Memory(name) => Some(PathBuf::from(format!("file:/{name}?vfs=memdb"))),
            Location::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::parse(&p.to_string_lossy())
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Location::from(p.to_owned())
    }
}

/// Shown without the password of a URL (logs, errors, the API).
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&redacted(url)),
            Location::Memory(name) => write!(f, "(in memory: {name})"),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_selects_the_engine_and_passwords_are_not_shown() {
        assert_eq!(Location::parse("data/bus.db"), Location::File("data/bus.db".into()));
        assert!(Location::parse("postgres://bus@127.0.0.1:5432/bus").is_postgres());
        assert!(Location::parse("PostgreSQL://bus@db/bus").is_postgres());
        assert!(!Location::parse("postgres.db").is_postgres());
        let l = Location::parse("postgres://bus:s3cret@db:5432/bus?sslmode=disable");
        assert_eq!(l.to_string(), "postgres://bus:***@db:5432/bus?sslmode=disable");
        assert_eq!(Location::parse("postgres://bus@db/bus").to_string(), "postgres://bus@db/bus");
    }
}
