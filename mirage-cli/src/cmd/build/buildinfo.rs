//! The build record, `dist/<name>.buildinfo`: what an image was built from and with, in the
//! spirit of robur's build info for MirageOS. A small TOML file; every field is the same for the
//! same sources built anywhere, so two records compare with `cmp` as the images do.
//!
//! ```toml
//! format = 1
//! name = "hello"
//! target = "xen-arm"
//! triple = "armv7a-none-eabihf"
//! board = "qemu-virt"
//! uni = "0.1.0"
//! uni-commit = "320f577a…"             # when the checkout is a git clone; `-dirty` if changed
//! rust-toolchain = "1.95.0"            # the checkout's rust-toolchain.toml
//! core = "build-std"                   # or "prebuilt": where core and alloc came from
//! image = "hello.xen"
//! image-sha256 = "…"
//! config = "unikernel.toml"
//! config-sha256 = "…"
//! lockfile-sha256 = "…"                # _build/<target>/Cargo.lock, as cargo left it
//!
//! [rustc]                              # `rustc -vV`
//! version = "rustc 1.95.0 (59807616e 2026-04-14)"
//! commit-hash = "…"
//! …
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::generate::Plan;
use crate::target::Target;
use crate::toolchain;

/// The format version, first in every record.
pub const FORMAT: i64 = 1;

/// Lowercase hex sha256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))?;
    Ok(sha256(&bytes))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The commit of the uni checkout, `-dirty` when its tracked files differ from it; None when
/// it is not a git clone (or git is missing).
fn uni_commit(home: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(home)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    // only a repository whose top is the checkout itself (not one the checkout lies in)
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(home).ok()? {
        return None;
    }
    let commit = git(&["rev-parse", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])?;
    Some(if dirty.is_empty() {
        commit
    } else {
        commit + "-dirty"
    })
}

/// `rustc -vV` as a table: `version` for its first line, then its `key: value` lines, the keys
/// lowercased with dashes (`LLVM version` → `llvm-version`).
fn rustc_table(vv: &str) -> toml::Table {
    let mut t = toml::Table::new();
    let mut lines = vv.lines();
    if let Some(first) = lines.next() {
        t.insert("version".into(), first.trim().into());
    }
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let key = k.trim().to_lowercase().replace(' ', "-");
            t.insert(key, v.trim().into());
        }
    }
    t
}

/// The record's text for `artifact`, built by `plan` from `cfg`.
pub fn render(cfg: &Config, plan: &Plan, artifact: &Path) -> Result<String> {
    let home = crate::home::home()?;
    let mut t = toml::Table::new();
    t.insert("format".into(), FORMAT.into());
    t.insert("name".into(), cfg.name.clone().into());
    t.insert("target".into(), plan.target.name().into());
    let triple = match plan.target {
        Target::XenArm => toolchain::XEN_TRIPLE.to_string(),
        Target::Unix => rustc_host()?,
    };
    t.insert("triple".into(), triple.into());
    t.insert("board".into(), plan.board.clone().into());
    t.insert("uni".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(c) = uni_commit(&home) {
        t.insert("uni-commit".into(), c.into());
    }
    if let Some(p) = toolchain::pinned() {
        t.insert("rust-toolchain".into(), p.into());
    }
    if plan.target == Target::XenArm {
        t.insert("core".into(), toolchain::route()?.name().into());
    }
    t.insert("image".into(), file_name(artifact).into());
    t.insert("image-sha256".into(), file_sha256(artifact)?.into());
    t.insert("config".into(), file_name(&cfg.file).into());
    t.insert("config-sha256".into(), file_sha256(&cfg.file)?.into());
    let lock = plan.dir.join("Cargo.lock");
    t.insert("lockfile-sha256".into(), file_sha256(&lock)?.into());
    t.insert(
        "rustc".into(),
        rustc_table(&toolchain::rustc_version_verbose()?).into(),
    );
    Ok(format!(
        "# uni build record of {}: what it was built from and with (README: \"Build records\").\n\
         # `uni build` rewrites it.\n{}",
        file_name(artifact),
        toml::to_string(&t)?
    ))
}

fn rustc_host() -> Result<String> {
    let vv = toolchain::rustc_version_verbose()?;
    rustc_table(&vv)
        .get("host")
        .and_then(|h| h.as_str())
        .map(str::to_owned)
        .context("`rustc -vV` names no host")
}

/// Writes `dist/<artifact>.buildinfo` next to `artifact`; returns its path.
pub fn write(cfg: &Config, plan: &Plan, artifact: &Path) -> Result<PathBuf> {
    let text = render(cfg, plan, artifact)?;
    let path = artifact.with_file_name(format!("{}.buildinfo", cfg.name));
    let tmp = artifact.with_file_name(format!(".{}.buildinfo.tmp{}", cfg.name, std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing `{}`", tmp.display()))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustc_vv_becomes_a_table() {
        let t = rustc_table(
            "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nLLVM version: 22.1.2\n",
        );
        assert_eq!(
            t["version"].as_str(),
            Some("rustc 1.95.0 (59807616e 2026-04-14)")
        );
        assert_eq!(t["host"].as_str(), Some("x86_64-unknown-linux-gnu"));
        assert_eq!(t["llvm-version"].as_str(), Some("22.1.2"));
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            sha256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
