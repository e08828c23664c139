//! `uni build`: configure when stale, cargo build the generated crate, copy the artifact to
//! dist/.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cargo_metadata::Message;

mod buildinfo;
mod diagnostics;
mod progress;

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
    refuse_board(target, args.board.as_deref(), "build")?;
    if args.trace {
        cfg.trace.get_or_insert_with(Default::default);
    }
    build(cfg, target)
}

/// Refuses `--board` on the unix target, naming the target, as `uni run` does: only xen-arm
/// builds for a board, and unix would ignore it.
pub(super) fn refuse_board(target: Target, board: Option<&str>, command: &str) -> Result<()> {
    if let (Target::Unix, Some(b)) = (target, board) {
        bail!(
            "`--board {b}` does not apply to target unix: only the xen-arm target is built for \
             a board; on unix `uni {command}` makes a program for this machine (drop --board, \
             or add --target xen-arm)"
        );
    }
    Ok(())
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
        "--message-format=json".into(),
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
fn xen_rustflags(board: &Board) -> Result<Vec<String>> {
    // Every flag here is the same for every app on a board, so that builds of different apps
    // into one target directory share their dependencies (a RUSTFLAGS change rebuilds them
    // all). The linker script is found relative to the linker's working directory, which is
    // cargo's for the generated crate: its own workspace root, `_build/xen-arm/`.
    let mut f = vec![
        "-Clink-arg=-Tlink.ld".to_string(),
        format!("-Ctarget-cpu={}", board.cpu.target_cpu),
    ];
    // Every crate, core and alloc included, is compiled to Thumb-2 (T32): about a quarter
    // smaller than A32 and as fast on the Cortex-A7/A15 (bench/README.md, "Image size per `tls`
    // choice"). Xen enters the image in ARM state: the entry and the exception vectors are A32
    // (`.arm` in runtime/src/platform/xen/boot.rs), and interwork with Rust through `bl`/`blx`.
    let mut features = vec!["+thumb-mode".to_string()];
    features.extend(board.cpu.target_features.iter().cloned());
    f.push(format!("-Ctarget-feature={}", features.join(",")));
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
    for (from, to) in remap {
        f.push(format!("--remap-path-prefix={}={to}", from.display()));
    }
    // For an app in the checkout, rustc sees the checkout's files through the link, relative to
    // the generated crate: `uni/runtime/src/…` becomes `/uni/runtime/src/…`, and (last, so
    // that it wins: rustc applies the last matching prefix) an example's
    // `uni/examples/crash/src/lib.rs` becomes `crash/src/lib.rs`. An app elsewhere has no link
    // (nothing it builds has a path starting `uni/`) and gets its remapping from the generated
    // Cargo.toml, for its crate alone (`generate::app_rustflags`); these two flags are there
    // all the same, so that it builds with the examples' flags.
    f.push("--remap-path-prefix=uni=/uni".into());
    f.push("--remap-path-prefix=uni/examples/=".into());
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

/// What the threads reading cargo tell the build loop.
enum Event {
    Message(Box<Message>),
    /// A line of cargo's stderr.
    Line(String),
    /// The unit graph's size, or `None` when it could not be had.
    Total(Option<usize>),
    /// One of cargo's two output streams ended.
    Closed,
}

/// The cargo command for `args`, with the environment of a build of `plan`.
fn cargo_command(cfg: &Config, plan: &Plan, args: Vec<String>) -> Result<std::process::Command> {
    let mut cmd = toolchain::command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args);
    if plan.target == Target::XenArm {
        let board = crate::board::for_xen(cfg.board.as_deref())?;
        // -Zbuild-std (unless the route is a prebuilt core), and the per-package rustflags of
        // an app outside the checkout (cargo-features = ["profile-rustflags"]), on the stable
        // toolchain
        cmd.env("RUSTC_BOOTSTRAP", "1");
        cmd.env(
            "CARGO_ENCODED_RUSTFLAGS",
            xen_rustflags(&board)?.join("\x1f"),
        );
        cmd.env_remove("RUSTFLAGS");
    }
    Ok(cmd)
}

/// The number of units `cargo build` would run for `plan` (see [`progress`]), from a
/// `--unit-graph` dry run; `None` when cargo cannot say.
fn unit_count(cfg: &Config, plan: &Plan) -> Option<usize> {
    let mut args = cargo_args(cfg, plan);
    args.retain(|a| !a.starts_with("--message-format"));
    args.extend(["-Zunstable-options", "--unit-graph", "--locked"].map(String::from));
    let mut cmd = cargo_command(cfg, plan, args).ok()?;
    // --unit-graph is unstable: on the stable toolchain as -Zbuild-std is
    cmd.env("RUSTC_BOOTSTRAP", "1").stderr(Stdio::null());
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let graph: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    graph.get("units")?.as_array().map(Vec::len)
}

/// cargo's status lines on stderr (`   Compiling x v1`), which uni replaces with its own.
fn cargo_status(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    if t.len() == line.len() {
        return None; // status verbs are right-aligned; `error: …` is not
    }
    let (verb, rest) = t.split_once(' ')?;
    verb.chars()
        .all(|c| c.is_ascii_alphabetic())
        .then_some((verb, rest))
}

/// cargo's `error: could not compile `x` (lib) due to 3 previous errors; 2 warnings emitted`,
/// without the warnings' count unless -v: it counts the warnings uni hides.
fn without_warning_count(line: &str, verbose: bool) -> String {
    match line.split_once("; ") {
        Some((head, tail))
            if !verbose
                && diagnostics::strip_ansi(line).starts_with("error: could not compile")
                && tail.contains("warning") =>
        {
            // a coloured line's reset was at its end
            let reset = if line.contains('\x1b') { "\x1b[0m" } else { "" };
            format!("{head}{reset}")
        }
        _ => line.to_string(),
    }
}

/// Runs cargo; returns the path of the binary it built, from its JSON messages. Prints
/// `Compiling` once something compiles, a progress line while it does, and rustc's diagnostics
/// as [`diagnostics`] maps them.
fn cargo_build(cfg: &Config, plan: &Plan) -> Result<PathBuf> {
    use std::io::{BufRead, IsTerminal, Write};
    let verbose = status::verbose();
    let color = diagnostics::color();
    let mut args = cargo_args(cfg, plan);
    if color {
        for a in &mut args {
            if a == "--message-format=json" {
                *a = "--message-format=json-diagnostic-rendered-ansi".into();
            }
        }
    }
    let mut cmd = cargo_command(cfg, plan, args)?;
    if color {
        cmd.env("CARGO_TERM_COLOR", "always");
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .context("running cargo (is it installed and on PATH?)")?;
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    let stdout = child.stdout.take().expect("piped");
    let out_tx = tx.clone();
    std::thread::spawn(move || {
        for m in Message::parse_stream(BufReader::new(stdout)) {
            match m {
                Ok(m) => {
                    if out_tx.send(Event::Message(Box::new(m))).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = out_tx.send(Event::Closed);
    });
    let stderr = child.stderr.take().expect("piped");
    let err_tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if err_tx.send(Event::Line(line)).is_err() {
                break;
            }
        }
        let _ = err_tx.send(Event::Closed);
    });

    let mode = if status::quiet() || verbose {
        progress::Mode::Off
    } else if std::io::stderr().is_terminal() {
        progress::Mode::Bar
    } else {
        progress::Mode::Lines
    };
    let mut progress = progress::Progress::new(mode, Instant::now());
    let mut diags = diagnostics::Diagnostics::new(cfg, plan, verbose);
    let mut compiling = false;
    let mut cargo_text = String::new();
    let mut exe = None;
    let bin_name = cfg.name.clone();
    let mut open = 2;
    let mut err = std::io::stderr();
    // Prints `text` (whole lines) above the progress line, then redraws it.
    let mut print = |progress: &mut progress::Progress, text: &str| {
        if text.is_empty() {
            return;
        }
        let _ = write!(err, "{}{text}", progress.clear());
        let _ = err.flush();
    };
    while open > 0 {
        let Ok(ev) = rx.recv() else { break };
        match ev {
            Event::Closed => open -= 1,
            Event::Total(t) => {
                if let Some(t) = t {
                    progress.set_total(t);
                }
            }
            Event::Line(line) => match cargo_status(&diagnostics::strip_ansi(&line)) {
                Some(("Compiling", rest)) => {
                    let rest = rest.to_string();
                    if !compiling {
                        compiling = true;
                        status(
                            "Compiling",
                            format!("{} (target {}, release)", cfg.name, plan.target),
                        );
                        if mode != progress::Mode::Off {
                            let (cfg, plan, tx) = (cfg.clone(), plan.clone(), tx.clone());
                            std::thread::spawn(move || {
                                let _ = tx.send(Event::Total(unit_count(&cfg, &plan)));
                            });
                        }
                    }
                    if verbose {
                        eprintln!("{line}");
                    }
                    progress.started(rest.split(' ').next().unwrap_or(&rest));
                }
                // waiting for another build: worth knowing
                Some(("Blocking", _)) => print(&mut progress, &format!("{line}\n")),
                Some(_) if !verbose => {}
                // `warning: `x` (lib) generated 2 warnings` counts the hidden ones too
                _ if !verbose && line.starts_with("warning: `") && line.contains(" generated ") => {
                }
                _ if verbose => print(&mut progress, &format!("{line}\n")),
                _ => {
                    cargo_text.push_str(&without_warning_count(&line, verbose));
                    cargo_text.push('\n');
                }
            },
            Event::Message(m) => match *m {
                Message::CompilerArtifact(a) => {
                    let text = diags.finish_unit(&a.package_id.repr, &a.target.name);
                    print(&mut progress, &text);
                    progress.unit_done(&a.target.name);
                    if a.target.is_bin() && a.target.name == bin_name {
                        exe = a.executable.map(|p| p.into_std_path_buf());
                    }
                }
                Message::BuildScriptExecuted(_) => progress.unit_done("build-script"),
                Message::CompilerMessage(m) => {
                    let (id, target) = (m.package_id.repr.clone(), m.target.name.clone());
                    diags.push(m);
                    // -v: as rustc says it, in cargo's order (nothing is folded)
                    if verbose {
                        let text = diags.finish_unit(&id, &target);
                        print(&mut progress, &text);
                    }
                }
                Message::BuildFinished(_) => {}
                Message::TextLine(l) => {
                    cargo_text.push_str(&l);
                    cargo_text.push('\n');
                }
                _ => {}
            },
        }
        if compiling {
            if let Some(s) = progress.update(Instant::now()) {
                let _ = write!(std::io::stderr(), "{s}");
            }
        }
    }
    let exit = child.wait()?;
    let rest = diags.finish_all();
    let _ = write!(std::io::stderr(), "{}", progress.clear());
    print(&mut progress, &rest);
    if !exit.success() {
        if diags.generated_failed {
            eprint!("{}", diagnostics::signature_note(cfg));
        }
        eprint!("{cargo_text}");
        bail!(
            "cargo failed to build `{}` ({exit}); run with -v for cargo's full output",
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
