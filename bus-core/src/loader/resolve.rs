//! Resolving a registry assembly name to a library file inside the
//! connectors folder.

use super::LoadError;
use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::{Path, PathBuf};

/// `sample_connector` → `<dir>/libsample_connector.so` (the platform's prefix
/// and suffix); a name that already ends with the platform suffix is taken as
/// a file name. Anything that could leave the folder is refused.
pub(crate) fn resolve_assembly(connectors_dir: &Path, assembly: &str) -> Result<PathBuf, LoadError> {
    let refuse =
        |reason: &'static str| LoadError::InvalidAssemblyName { name: assembly.to_owned(), reason: reason.to_owned() };
    crate::registry::check_assembly_name(assembly).map_err(refuse)?;
    let name = assembly.trim();
    let file = if name.ends_with(DLL_SUFFIX) { name.to_owned() } else { format!("{DLL_PREFIX}{name}{DLL_SUFFIX}") };
    Ok(connectors_dir.join(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_inside_the_folder() {
        let dir = Path::new("/c");
        let p = resolve_assembly(dir, "sample_connector").unwrap();
        assert_eq!(p, dir.join(format!("{DLL_PREFIX}sample_connector{DLL_SUFFIX}")));
        let file = format!("custom{DLL_SUFFIX}");
        assert_eq!(resolve_assembly(dir, &file).unwrap(), dir.join(&file));
    }

    #[test]
    fn escapes_are_refused() {
        for bad in ["../x", "a/b", "a\\b", "..", "", "  ", "/etc/passwd", "x\0y"] {
            let err = resolve_assembly(Path::new("/c"), bad).unwrap_err();
            assert!(matches!(err, LoadError::InvalidAssemblyName { .. }), "{bad}: {err}");
        }
    }
}
