//! Finding a Rust toolchain route for armv7a-none-eabihf: the prebuilt `core` from rustup, or
//! `core`/`alloc` built from rust-src with `-Zbuild-std`. Says exactly what to install when
//! neither is there.
//!
//! Which toolchain: the one the uni checkout pins in its `rust-toolchain.toml`, wherever the
//! app is. rustup finds that file itself for the examples (they live under the checkout); for an
//! app elsewhere, uni passes the pinned channel to cargo and rustc as `RUSTUP_TOOLCHAIN`, unless
//! that is set already (by rustup for a `cargo run`, or by the user to override it).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

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

impl Route {
    pub fn name(&self) -> &'static str {
        match self {
            Route::Prebuilt => "prebuilt",
            Route::BuildStd => "build-std",
        }
    }
}

/// The channel the uni checkout's `rust-toolchain.toml` pins (`1.95.0`), if it has one.
pub fn pinned() -> Option<String> {
    let home = crate::home::home().ok()?;
    let text = std::fs::read_to_string(home.join("rust-toolchain.toml")).ok()?;
    let doc: toml::Table = toml::from_str(&text).ok()?;
    doc.get("toolchain")?
        .get("channel")?
        .as_str()
        .map(str::to_owned)
}

/// The toolchain the build uses, for rustup: `RUSTUP_TOOLCHAIN` if set, else the pinned one.
pub fn toolchain() -> Option<OsString> {
    std::env::var_os("RUSTUP_TOOLCHAIN").or_else(|| pinned().map(OsString::from))
}

/// A command for a toolchain program (`cargo`, `rustc`) that runs the pinned toolchain.
pub fn command(program: impl Into<OsString>) -> Command {
    let mut cmd = Command::new(program.into());
    if let Some(t) = toolchain() {
        cmd.env("RUSTUP_TOOLCHAIN", t);
    }
    cmd
}

fn rustc() -> Command {
    command(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
}

/// Runs a `rustc` query and returns its output.
fn rustc_output(args: &[&str]) -> Result<String> {
    let out = rustc()
        .args(args)
        .output()
        .with_context(|| format!("running `rustc {}` (is Rust installed?)", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`rustc {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The sysroot of the `rustc` cargo will use.
pub fn sysroot() -> Result<PathBuf> {
    Ok(PathBuf::from(rustc_output(&["--print", "sysroot"])?.trim()))
}

/// `rustc -vV` of the `rustc` cargo will use: version, commit, host, LLVM.
pub fn rustc_version_verbose() -> Result<String> {
    rustc_output(&["-vV"])
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
