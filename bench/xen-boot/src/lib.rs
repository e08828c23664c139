//! What the board benches share: naming a guest on the command line.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use mirage_cli::emu;

/// A guest from `XL[=MARKER]`: the xl file, whose `kernel` (relative to the xl file) is the
/// image, and optionally a console line (a substring of it) for dom0 to time. The guest's name
/// is the xl file's stem.
pub fn guest(spec: &str) -> Result<emu::Guest> {
    let (xl, marker) = match spec.split_once('=') {
        Some((x, m)) => (x, Some(m.to_string())),
        None => (spec, None),
    };
    let xl = PathBuf::from(xl);
    let text = std::fs::read_to_string(&xl).with_context(|| format!("reading {}", xl.display()))?;
    let kernel =
        xl_value(&text, "kernel").with_context(|| format!("{} has no kernel", xl.display()))?;
    let image = xl.parent().unwrap_or(Path::new(".")).join(kernel);
    let name = xl
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    Ok(emu::Guest {
        name,
        image,
        xl,
        marker,
    })
}

/// The value of `key` in an xl file's text (`key = "value"`), without its quotes.
pub fn xl_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
}
