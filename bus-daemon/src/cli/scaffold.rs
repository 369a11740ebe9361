//! `bus-daemon connector new <Name>`: a connector crate that builds as it
//! is, with a README (build, register, test) and a passing test, made from
//! the templates in `scaffold/`. It needs no configuration and no database;
//! the crate appears whole or not at all (written in a temporary folder
//! beside it, then renamed).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The connector's code name, also its class name's stem: `Erp` makes
    /// the class `ErpConnector` in the library `erp_connector`.
    name: String,
    /// The folder the crate is created in (as `<dir>/<name>`).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The SDK crate (`connector-abi`) the new crate builds against
    /// (default: the one in the source tree this daemon was built from).
    #[arg(long)]
    abi: Option<PathBuf>,
}

/// The longest name taken (a code name's limit, less the class suffix).
const MAX_NAME: usize = 90;

/// Where this daemon's own SDK crate was when it was built.
const BUILT_WITH_ABI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../connector-abi");

pub fn run(args: NewArgs) -> Result<()> {
    let name = args.name.trim();
    check_name(name)?;
    let stem = snake_case(name);
    let abi = sdk(args.abi.as_deref())?;
    let harness = harness_beside(&abi)?;
    let target = args.dir.join(&stem);
    if target.exists() {
        bail!("{} exists already; choose another name or folder (nothing was written)", target.display());
    }
    let dir = if args.dir.as_os_str().is_empty() { Path::new(".") } else { args.dir.as_path() };
    let staging = tempfile::Builder::new()
        .prefix(".connector-new-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let lib = format!("{stem}_connector");
    let file = format!("{}{lib}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let abi_display = abi.display().to_string();
    // A JSON string is a TOML basic string (the same escapes).
    let abi_toml = serde_json::to_string(&abi_display).expect("a string serializes");
    let harness_toml = serde_json::to_string(&harness.display().to_string()).expect("a string serializes");
    let fill = |template: &str| {
        template
            .replace("{{Name}}", name)
            .replace("{{crate}}", &format!("{}-connector", stem.replace('_', "-")))
            .replace("{{lib}}", &lib)
            .replace("{{file}}", &file)
            .replace("{{abi_toml}}", &abi_toml)
            .replace("{{harness_toml}}", &harness_toml)
            .replace("{{abi}}", &abi_display)
    };
    let files: [(&str, &str); 4] = [
        ("Cargo.toml", include_str!("scaffold/Cargo.toml.in")),
        ("src/lib.rs", include_str!("scaffold/lib.rs.in")),
        ("README.md", include_str!("scaffold/README.md.in")),
        (".gitignore", include_str!("scaffold/gitignore.in")),
    ];
    for (path, template) in files {
        let path = staging.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, fill(template)).with_context(|| format!("cannot write {}", path.display()))?;
    }
    std::fs::rename(staging.path(), &target).with_context(|| format!("cannot create {}", target.display()))?;
    println!("created the connector crate {name} in {}", target.display());
    println!("  build and test:  cd {} && cargo build --release && cargo test", target.display());
    println!("  then copy target/release/{file} into the connectors folder and register it:");
    println!("  bus-daemon connector add --name {name} --assembly {lib} --class {name}Connector --enabled");
    Ok(())
}

/// A name that is a code name, a Rust type name's stem and a file name.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    match chars.next() {
        None => bail!("give the connector a name, e.g. `connector new Erp`"),
        Some(first) if !first.is_ascii_uppercase() => {
            bail!("`{name}`: a connector name starts with a capital letter (A-Z): it names the class `{name}Connector`")
        }
        Some(_) => {}
    }
    if let Some(bad) = chars.find(|c| !c.is_ascii_alphanumeric()) {
        bail!("`{name}`: a connector name has letters and digits only (A-Z, a-z, 0-9), not {bad:?}");
    }
    if name.len() > MAX_NAME {
        bail!("`{name}`: a connector name has at most {MAX_NAME} characters");
    }
    Ok(())
}

/// `AcmeCrm` → `acme_crm`, `ERPSync` → `erp_sync`, `Erp` → `erp`.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The SDK crate's folder, checked to be connector-abi.
fn sdk(given: Option<&Path>) -> Result<PathBuf> {
    let (path, whence) = match given {
        Some(p) => (p.to_owned(), "--abi"),
        None => (PathBuf::from(BUILT_WITH_ABI), "the source tree this daemon was built from"),
    };
    let manifest = std::fs::read_to_string(path.join("Cargo.toml")).ok();
    let is_sdk = manifest.as_deref().is_some_and(|m| m.lines().any(|l| l.trim() == "name = \"connector-abi\""));
    if !is_sdk {
        bail!(
            "the SDK (connector-abi) is not at {} ({whence}); pass --abi with the connector-abi folder of a checkout of the bus",
            path.display()
        );
    }
    path.canonicalize().with_context(|| format!("cannot resolve {}", path.display()))
}

/// The test harness (connector-harness) of the source tree the SDK is in.
fn harness_beside(abi: &Path) -> Result<PathBuf> {
    let path = abi.parent().map(|tree| tree.join("connector-harness")).unwrap_or_default();
    let manifest = std::fs::read_to_string(path.join("Cargo.toml")).ok();
    if !manifest.as_deref().is_some_and(|m| m.lines().any(|l| l.trim() == "name = \"connector-harness\"")) {
        bail!(
            "the test harness (connector-harness) is not beside the SDK at {}; give --abi the connector-abi folder of a whole checkout of the bus",
            abi.display()
        );
    }
    path.canonicalize().with_context(|| format!("cannot resolve {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_crate_names_and_bad_names_say_why() {
        assert_eq!(snake_case("Erp"), "erp");
        assert_eq!(snake_case("AcmeCrm"), "acme_crm");
        assert_eq!(snake_case("ERPSync"), "erp_sync");
        assert_eq!(snake_case("Shop2Go"), "shop2_go");
        for (bad, says) in [("", "give"), ("erp", "capital"), ("Erp-2", "letters and digits"), ("Ёrp", "capital")] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(check_name(&"A".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn the_template_asks_for_the_sdks_own_abi_stable() {
        // The workspace manifest says which abi_stable the SDK builds with.
        let workspace = include_str!("../../../Cargo.toml");
        let wanted = workspace.lines().find(|l| l.starts_with("abi_stable =")).expect("the workspace names abi_stable");
        let template = include_str!("scaffold/Cargo.toml.in");
        assert!(template.lines().any(|l| l == wanted), "the template's abi_stable line is `{wanted}`");
    }
}
