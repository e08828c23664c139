//! Where uni's own sources are: the runtime and library crates the generated main depends on.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// The uni checkout: `$UNI_HOME`, else the workspace this binary was built from.
pub fn home() -> Result<PathBuf> {
    let home = match std::env::var_os("UNI_HOME") {
        Some(h) => PathBuf::from(h),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    };
    let home = std::path::absolute(&home)?;
    if !home.join("runtime/Cargo.toml").is_file() {
        bail!(
            "uni's sources are not at `{}` (no runtime/Cargo.toml there); set UNI_HOME to a uni checkout",
            home.display()
        );
    }
    Ok(normalize(&home))
}

/// `a/b/../c` → `a/c`, without touching the file system.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The directory of each package of the uni workspace, from `cargo metadata`.
pub fn package_dir(package: &str) -> Result<PathBuf> {
    static PACKAGES: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    if PACKAGES.get().is_none() {
        let home = home()?;
        let meta = cargo_metadata::MetadataCommand::new()
            .manifest_path(home.join("Cargo.toml"))
            .no_deps()
            .exec()
            .with_context(|| format!("reading the uni workspace at `{}`", home.display()))?;
        let pkgs = meta
            .packages
            .iter()
            .map(|p| {
                let dir = p
                    .manifest_path
                    .parent()
                    .map(|d| d.as_std_path().to_path_buf())
                    .unwrap_or_default();
                (p.name.to_string(), dir)
            })
            .collect();
        let _ = PACKAGES.set(pkgs);
    }
    let pkgs = PACKAGES.get().expect("set above");
    pkgs.iter()
        .find(|(n, _)| n == package)
        .map(|(_, d)| d.clone())
        .with_context(|| format!("package `{package}` is not in the uni workspace"))
}

/// The app crate at `dir`: its package name and library crate name, from `cargo metadata`.
pub fn app_crate(dir: &Path) -> Result<(String, String)> {
    let manifest = dir.join("Cargo.toml");
    let meta = cargo_metadata::MetadataCommand::new()
        .manifest_path(&manifest)
        .no_deps()
        .exec()
        .with_context(|| format!("reading the app crate `{}`", manifest.display()))?;
    let manifest = std::fs::canonicalize(&manifest)?;
    let pkg = meta
        .packages
        .iter()
        .find(|p| {
            std::fs::canonicalize(p.manifest_path.as_std_path())
                .ok()
                .as_deref()
                == Some(manifest.as_path())
        })
        .with_context(|| format!("no package at `{}`", manifest.display()))?;
    let Some(lib) = pkg.targets.iter().find(|t| t.is_lib()) else {
        bail!(
            "the app crate `{}` has no library target: an app is a library exposing an async entry point (add src/lib.rs)",
            pkg.name
        );
    };
    Ok((pkg.name.to_string(), lib.name.replace('-', "_")))
}
