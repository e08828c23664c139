//! Finding a Rust toolchain route for armv7a-none-eabihf: the prebuilt `core` from rustup, or
//! `core`/`alloc` built from rust-src with `-Zbuild-std`. Says exactly what to install when
//! neither is there.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

pub const XEN_TRIPLE: &str = "armv7a-none-eabihf";

/// How cargo gets `core` and `alloc` for the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `rustup target add armv7a-none-eabihf` was done: plain `--target`.
    Prebuilt,
    /// Build them from the rust-src component (`-Zbuild-std`, with `RUSTC_BOOTSTRAP=1` on
    /// stable).
    BuildStd,
}

/// The sysroot of the `rustc` cargo will use.
pub fn sysroot() -> Result<PathBuf> {
    let sh = xshell::Shell::new()?;
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = xshell::cmd!(sh, "{rustc} --print sysroot")
        .quiet()
        .read()
        .context("running `rustc --print sysroot` (is Rust installed?)")?;
    Ok(PathBuf::from(out.trim()))
}

/// Picks the route: prebuilt `core` if present, else rust-src.
pub fn route() -> Result<Route> {
    let sysroot = sysroot()?;
    if sysroot
        .join("lib/rustlib")
        .join(XEN_TRIPLE)
        .join("lib")
        .is_dir()
    {
        return Ok(Route::Prebuilt);
    }
    if sysroot
        .join("lib/rustlib/src/rust/library/core/Cargo.toml")
        .is_file()
    {
        return Ok(Route::BuildStd);
    }
    bail!(
        "no way to build `core` for {XEN_TRIPLE} with the toolchain at `{}`.\n\
         Install one of:\n  \
         rustup target add {XEN_TRIPLE}      # the prebuilt core and alloc\n  \
         rustup component add rust-src              # build them from source (uni passes -Zbuild-std)\n\
         or, without rustup, Debian's `rustc-web cargo-web rust-web-src` and put them first on PATH.",
        sysroot.display()
    )
}
