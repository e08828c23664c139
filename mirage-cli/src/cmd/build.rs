//! `uni build`: configure when stale, cargo build the generated crate, copy the artifact to
//! dist/.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cargo_metadata::Message;

use super::{load, show};
use crate::cli::Build;
use crate::config::Config;
use crate::generate::{self, Plan};
use crate::status::{self, status};
use crate::target::Target;

/// What `uni build` produced.
pub struct Built {
    /// The program (unix) or image (xen-arm) in dist/.
    pub artifact: PathBuf,
}

pub fn run(args: Build, file: &Path) -> Result<Built> {
    let (cfg, target) = load(file, args.target)?;
    build(cfg, target)
}

/// Where cargo puts its output: `$CARGO_TARGET_DIR`, else `_build/target` next to the config.
fn target_dir(cfg: &Config) -> Option<PathBuf> {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(_) => None,
        None => Some(cfg.dir.join("_build/target")),
    }
}

fn cargo_args(cfg: &Config, plan: &Plan) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "build".into(),
        "--release".into(),
        "--manifest-path".into(),
        plan.dir.join("Cargo.toml").display().to_string(),
        "--message-format=json-render-diagnostics".into(),
    ];
    if let Some(t) = target_dir(cfg) {
        a.push("--target-dir".into());
        a.push(t.display().to_string());
    }
    a
}

/// The cargo invocation `uni build` runs, for `--dry-run`.
pub fn cargo_command_line(cfg: &Config, plan: &Plan) -> String {
    let mut s = String::from("cargo");
    for a in cargo_args(cfg, plan) {
        s.push(' ');
        s.push_str(&a);
    }
    s
}

pub fn build(cfg: Config, target: Target) -> Result<Built> {
    let plan = generate::plan(&cfg, target)?;
    if !generate::stale_files(&plan).is_empty() {
        status("Configuring", format!("{} (target {target}, board {})", cfg.name, plan.board));
        generate::write(&plan)?;
    }
    let started = Instant::now();
    status("Compiling", format!("{} (target {target}, release)", cfg.name));
    let exe = cargo_build(&cfg, &plan)?;
    let dist = cfg.dir.join("dist");
    std::fs::create_dir_all(&dist)?;
    let artifact = dist.join(&cfg.name);
    // Replace rather than overwrite in place, so a running copy keeps its inode.
    let tmp = dist.join(format!(".{}.tmp", cfg.name));
    std::fs::copy(&exe, &tmp).with_context(|| format!("copying `{}`", exe.display()))?;
    std::fs::rename(&tmp, &artifact)?;
    status("Finished", format!("release build of {} in {:.1}s", cfg.name, started.elapsed().as_secs_f64()));
    let size = std::fs::metadata(&artifact)?.len();
    status("Built", format!("{} ({})", show(&artifact), human(size)));
    Ok(Built { artifact })
}

/// Runs cargo; returns the path of the binary it built, from its JSON messages.
fn cargo_build(cfg: &Config, plan: &Plan) -> Result<PathBuf> {
    let verbose = status::verbose();
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(cargo_args(cfg, plan)).stdout(Stdio::piped());
    if !verbose {
        cmd.arg("--quiet");
        cmd.stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().context("running cargo (is it installed and on PATH?)")?;
    // Drain stderr on a thread so cargo never blocks on a full pipe.
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = e.read_to_string(&mut s);
            s
        })
    });
    let mut exe = None;
    let bin_name = cfg.name.clone();
    for msg in Message::parse_stream(BufReader::new(child.stdout.take().expect("piped"))) {
        if let Message::CompilerArtifact(a) = msg? {
            if a.target.is_bin() && a.target.name == bin_name {
                exe = a.executable.map(|p| p.into_std_path_buf());
            }
        }
    }
    let status = child.wait()?;
    let err_text = stderr.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
    if !status.success() {
        eprint!("{err_text}");
        bail!("cargo failed to build `{}` ({status}); run with -v for cargo's full output", show(&plan.dir));
    }
    exe.with_context(|| format!("cargo reported no executable named `{bin_name}`"))
}

pub fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
