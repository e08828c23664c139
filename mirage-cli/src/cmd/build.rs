//! `uni build`: configure when stale, cargo build the generated crate, copy the artifact to
//! dist/.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cargo_metadata::Message;

mod buildinfo;

use super::show;
use crate::board::Board;
use crate::cli::Build;
use crate::config::Config;
use crate::generate::{self, Plan};
use crate::status::{self, status};
use crate::target::Target;
use crate::toolchain::{self, Route};
use crate::{image, xl};

/// What `uni build` produced.
pub struct Built {
    /// The program (unix) or image (xen-arm) in dist/.
    pub artifact: PathBuf,
}

pub fn run(args: Build, file: &Path) -> Result<Built> {
    let (mut cfg, target) = super::load_on(file, args.target, args.board.as_deref())?;
    if args.trace {
        cfg.trace.get_or_insert_with(Default::default);
    }
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
    if plan.target == Target::XenArm {
        a.push("--target".into());
        a.push(toolchain::XEN_TRIPLE.into());
        if toolchain::route().ok() != Some(Route::Prebuilt) {
            a.push("-Zbuild-std=core,alloc".into());
            a.push("-Zbuild-std-features=compiler-builtins-mem".into());
        }
    }
    a
}

/// The rustc flags for a xen-arm build: the linker script, the board's CPU, and path
/// remapping so that the image does not depend on where the sources live.
fn xen_rustflags(cfg: &Config, plan: &Plan, board: &Board) -> Result<Vec<String>> {
    // Every flag here is the same for every app on a board, so that builds of different apps
    // into one target directory share their dependencies (a RUSTFLAGS change rebuilds them
    // all). The linker script is found relative to the linker's working directory, which is
    // cargo's for the generated crate: its own workspace root, `_build/xen-arm/`.
    let mut f = vec![
        "-Clink-arg=-Tlink.ld".to_string(),
        format!("-Ctarget-cpu={}", board.cpu.target_cpu),
    ];
    if !board.cpu.target_features.is_empty() {
        f.push(format!(
            "-Ctarget-feature={}",
            board.cpu.target_features.join(",")
        ));
    }
    let mut remap = vec![
        (crate::home::home()?, "/uni".to_string()),
        (toolchain::sysroot()?, "/rustc".to_string()),
    ];
    if let Some(cargo_home) = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
    {
        remap.push((cargo_home, "/cargo".into()));
    }
    // Last so that it wins (rustc applies the last matching prefix): panics name
    // `crash/src/lib.rs`. The app's parent directory, not the app's, so that apps side by side
    // (the examples) build with the same flags.
    for (from, to) in remap {
        f.push(format!("--remap-path-prefix={}={to}", from.display()));
    }
    match &plan.uni_link {
        // rustc sees the checkout's files through the link, relative to the generated crate:
        // `uni/runtime/src/…` becomes `/uni/runtime/src/…`, `uni/examples/crash/src/lib.rs`
        // `crash/src/lib.rs`
        Some(link) => {
            f.push("--remap-path-prefix=uni=/uni".into());
            if let Some(parent) = link.app.parent() {
                f.push(format!("--remap-path-prefix={}/=", parent.display()));
            }
        }
        None => {
            if let Some(parent) = crate::home::normalize(&cfg.app_dir).parent() {
                f.push(format!("--remap-path-prefix={}/=", parent.display()));
            }
        }
    }
    Ok(f)
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
    if !generate::stale_paths(&plan).is_empty() {
        status(
            "Configuring",
            format!("{} (target {target}, board {})", cfg.name, plan.board),
        );
        generate::write(&plan)?;
    }
    let started = Instant::now();
    status(
        "Compiling",
        format!("{} (target {target}, release)", cfg.name),
    );
    seed_lockfile(&plan)?;
    let exe = cargo_build(&cfg, &plan)?;
    let dist = cfg.dir.join("dist");
    std::fs::create_dir_all(&dist)?;
    if target == Target::XenArm {
        return finish_xen(cfg, &plan, &exe, &dist, started);
    }
    let artifact = dist.join(&cfg.name);
    // Replace rather than overwrite in place, so a running copy keeps its inode.
    // a temporary name of this process's own: two `uni run`s of one app at once (the TLS tests
    // do that) each rename a whole file into place, and neither execs a file still being written
    let tmp = dist.join(format!(".{}.tmp{}", cfg.name, std::process::id()));
    std::fs::copy(&exe, &tmp).with_context(|| format!("copying `{}`", exe.display()))?;
    std::fs::rename(&tmp, &artifact)?;
    let record = buildinfo::write(&cfg, &plan, &artifact)?;
    status(
        "Finished",
        format!(
            "release build of {} in {:.1}s",
            cfg.name,
            started.elapsed().as_secs_f64()
        ),
    );
    let size = std::fs::metadata(&artifact)?.len();
    status("Built", format!("{} ({})", show(&artifact), human(size)));
    status("Wrote", show(&record));
    Ok(Built { artifact })
}

/// The load address of every xen-arm image: RAM base + 0x8000, where xl puts a zImage.
pub const XEN_LOAD: u32 = 0x4000_8000;

/// Turns the linked ELF into `dist/<name>.xen` and writes `dist/<name>.xl`.
fn finish_xen(
    cfg: Config,
    plan: &Plan,
    elf: &Path,
    dist: &Path,
    started: Instant,
) -> Result<Built> {
    let board = crate::board::for_xen(cfg.board.as_deref())?;
    let image = dist.join(format!("{}.xen", cfg.name));
    let size = image::make_image(elf, &image, XEN_LOAD)?;
    let x = &cfg.xen;
    let xl_text = xl::render(&xl::XlConfig {
        uni_version: env!("CARGO_PKG_VERSION"),
        config: cfg
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        board: board.name.clone(),
        name: cfg.name.clone(),
        kernel: image.display().to_string(),
        memory: x.memory.unwrap_or(board.defaults.memory),
        vcpus: x.vcpus.unwrap_or(board.defaults.vcpus),
        on_crash: x.on_crash.clone().unwrap_or_else(|| "preserve".into()),
        extra: x.extra.clone(),
        vifs: cfg
            .devices
            .iter()
            .filter_map(|d| d.device.vif())
            .enumerate()
            .map(|(i, mac)| {
                let mac = mac.unwrap_or_else(|| xl::stable_mac(&cfg.name, i));
                xl::vif(
                    x.bridge.as_deref().unwrap_or(&board.defaults.bridge),
                    Some(mac),
                )
            })
            .collect(),
        disks: cfg
            .devices
            .iter()
            .filter_map(|d| d.device.disk())
            .enumerate()
            .map(|(i, d)| xl::disk(i, &d.file.display().to_string(), d.read_only))
            .collect(),
    })?;
    let xl_path = dist.join(format!("{}.xl", cfg.name));
    // Replace rather than overwrite in place: a concurrent reader (another build's test, a
    // deploy) never sees it half written.
    let tmp = dist.join(format!(".{}.xl.tmp{}", cfg.name, std::process::id()));
    std::fs::write(&tmp, xl_text)?;
    std::fs::rename(&tmp, &xl_path)?;
    let record = buildinfo::write(&cfg, plan, &image)?;
    status(
        "Finished",
        format!(
            "release build of {} in {:.1}s",
            cfg.name,
            started.elapsed().as_secs_f64()
        ),
    );
    status(
        "Built",
        format!(
            "{} ({}, zImage at {XEN_LOAD:#x}, board {})",
            show(&image),
            human(size),
            plan.board
        ),
    );
    status("Wrote", show(&xl_path));
    status("Wrote", show(&record));
    Ok(Built { artifact: image })
}

/// Seeds the generated crate's `Cargo.lock` from the uni workspace's, so that it builds with the
/// versions the checkout locks and needs no registry (cargo keeps the locked versions, drops the
/// unused ones and adds the generated package). For an app in the checkout the seed follows the
/// workspace's lockfile: it is planted again whenever that changes (`.uni-lock-seed` holds the
/// sha256 it was planted from). An app elsewhere may lock dependencies of its own: its lockfile is
/// seeded once, when missing, and then left to cargo.
fn seed_lockfile(plan: &Plan) -> Result<()> {
    let lock = plan.dir.join("Cargo.lock");
    if plan.uni_link.is_none() && lock.exists() {
        return Ok(());
    }
    let Ok(seed) = std::fs::read(crate::home::home()?.join("Cargo.lock")) else {
        return Ok(()); // a checkout without a lockfile: cargo resolves
    };
    let mark = plan.dir.join(".uni-lock-seed");
    let digest = buildinfo::sha256(&seed);
    if lock.exists() && std::fs::read_to_string(&mark).ok().as_deref() == Some(digest.as_str()) {
        return Ok(());
    }
    std::fs::create_dir_all(&plan.dir)?;
    for (path, bytes) in [(&lock, seed.as_slice()), (&mark, digest.as_bytes())] {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes).with_context(|| format!("writing `{}`", tmp.display()))?;
        std::fs::rename(&tmp, path)?;
    }
    Ok(())
}

/// Runs cargo; returns the path of the binary it built, from its JSON messages.
fn cargo_build(cfg: &Config, plan: &Plan) -> Result<PathBuf> {
    let verbose = status::verbose();
    let mut cmd = toolchain::command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(cargo_args(cfg, plan)).stdout(Stdio::piped());
    if plan.target == Target::XenArm {
        let board = crate::board::for_xen(cfg.board.as_deref())?;
        if toolchain::route()? == Route::BuildStd {
            // -Zbuild-std on the stable toolchain.
            cmd.env("RUSTC_BOOTSTRAP", "1");
        }
        cmd.env(
            "CARGO_ENCODED_RUSTFLAGS",
            xen_rustflags(cfg, plan, &board)?.join("\x1f"),
        );
        cmd.env_remove("RUSTFLAGS");
    }
    if !verbose {
        cmd.arg("--quiet");
        cmd.stderr(Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .context("running cargo (is it installed and on PATH?)")?;
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
    let err_text = stderr
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    if !status.success() {
        eprint!("{err_text}");
        bail!(
            "cargo failed to build `{}` ({status}); run with -v for cargo's full output",
            show(&plan.dir)
        );
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
