//! `uni clean`: removes what uni wrote next to unikernel.toml, `_build/` (the generated crates)
//! and `dist/` (the images and programs), and nothing else.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::show;
use crate::cli::Clean;
use crate::status::status;

pub fn run(_args: Clean, file: &Path) -> Result<ExitCode> {
    // The config file is where uni's outputs are; it need not be valid to clean them up.
    if !file.is_file() {
        bail!(
            "no `{}` here: run uni clean in a directory with a unikernel.toml, or pass -f PATH",
            file.display()
        );
    }
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::env::current_dir().context("reading the current directory")?,
    };
    let mut removed = 0;
    for name in ["_build", "dist"] {
        let path = dir.join(name);
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        let (files, bytes) = size(&path);
        // A symbolic link is removed itself, never followed (nor are links inside: `_build`
        // holds one to the uni checkout).
        if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("removing {}", show(&path)))?;
        status(
            "Removed",
            format!("{} ({files} files, {})", show(&path), human(bytes)),
        );
        removed += 1;
    }
    if removed == 0 {
        status(
            "Clean",
            format!(
                "nothing to remove: no _build or dist next to {}",
                show(file)
            ),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The files under `path` (not following links) and their bytes.
fn size(path: &Path) -> (u64, u64) {
    walkdir::WalkDir::new(path)
        .follow_links(false)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_type().is_dir())
        .fold((0, 0), |(n, b), e| {
            (n + 1, b + e.metadata().map(|m| m.len()).unwrap_or(0))
        })
}

/// Bytes as cargo clean shows them: `1.5MiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}
