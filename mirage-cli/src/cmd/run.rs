//! `uni run`: build, then run on the local target.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::emu;

use super::{build, load, show};
use crate::cli::Run;
use crate::status::status;
use crate::target::Target;

pub fn run(args: Run, file: &Path) -> Result<ExitCode> {
    if args.dom0.dom0 {
        return run_dom0(&args, file);
    }
    let (mut cfg, target) = super::load_on(file, args.target, args.dom0.board.as_deref())?;
    refuse_flags(&args, target)?;
    if args.trace.is_some() {
        cfg.trace.get_or_insert_with(Default::default);
    }
    let name = cfg.name.clone();
    if let Some(p) = args
        .publish
        .iter()
        .find(|p| p.name.as_ref().is_some_and(|n| *n != cfg.name))
    {
        bail!(
            "`-p {}:{}:{}` names a unikernel other than this run's `{}`; only `uni run --dom0` forwards to deployed unikernels by name",
            p.host,
            p.name.as_deref().unwrap_or_default(),
            p.guest,
            cfg.name
        );
    }
    let artifact = if args.no_build {
        let dist = cfg.dir.join("dist");
        let artifact = match target {
            Target::Unix => dist.join(&cfg.name),
            Target::XenArm => dist.join(format!("{}.xen", cfg.name)),
        };
        if !artifact.is_file() {
            bail!(
                "--no-build, but there is no {}: build it first with `uni build --target {target}`",
                show(&artifact)
            );
        }
        artifact
    } else {
        build::build(cfg, target)?.artifact
    };
    match target {
        Target::Unix => {
            status(
                "Running",
                format!("{} {}", show(&artifact), args.args.join(" ")),
            );
            if let Some(out) = &args.trace {
                return run_traced(&name, &artifact, &args.args, out);
            }
            // Become the unikernel: signals reach it directly and its exit code is ours.
            let err = Command::new(&artifact).args(&args.args).exec();
            Err(err).with_context(|| format!("starting `{}`", artifact.display()))
        }
        Target::XenArm => run_xen(&args, file, artifact),
    }
}

/// Runs the traced unix unikernel as a child, and converts the ring it writes (`UNI_TRACE_FILE`,
/// `dist/<name>.trace`) to Chrome JSON at `out` when it ends and after each SIGUSR1. SIGINT,
/// SIGTERM and SIGUSR1 sent to uni are passed on to it (it writes its ring on each).
fn run_traced(name: &str, artifact: &Path, boot_args: &[String], out: &Path) -> Result<ExitCode> {
    use nix::sys::signal::{kill, Signal};
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let raw = artifact.with_file_name(format!("{name}.trace"));
    let _ = std::fs::remove_file(&raw);
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR1])
        .context("handling signals")?;
    let mut child = Command::new(artifact)
        .args(boot_args)
        .env("UNI_TRACE_FILE", &raw)
        .spawn()
        .with_context(|| format!("starting `{}`", artifact.display()))?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let handle = signals.handle();
    let forward = {
        let (raw, out, name) = (raw.clone(), out.to_path_buf(), name.to_string());
        std::thread::spawn(move || {
            for sig in signals.forever() {
                let before = std::fs::metadata(&raw).and_then(|m| m.modified()).ok();
                if let Ok(s) = Signal::try_from(sig) {
                    let _ = kill(pid, s);
                }
                if sig != SIGUSR1 {
                    continue;
                }
                // A snapshot: wait (up to 5 s) for the new dump, then convert it.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while std::time::Instant::now() < deadline {
                    let now = std::fs::metadata(&raw).and_then(|m| m.modified()).ok();
                    if now.is_some() && now != before {
                        match crate::trace::convert(&raw, &out, &name) {
                            Ok(r) => status("Traced", format!("{} to {}", r.summary(), show(&out))),
                            Err(e) => eprintln!("error: {e:#}"),
                        }
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        })
    };
    let exit = child.wait().context("waiting for the unikernel")?;
    handle.close();
    let _ = forward.join();
    if raw.is_file() {
        let ring = crate::trace::convert(&raw, out, name)?;
        status("Traced", format!("{} to {}", ring.summary(), show(out)));
    } else {
        bail!(
            "the unikernel ended ({exit}) without writing its trace to {}: was {} built with tracing? (with --no-build it runs as it was built; `uni build --trace` builds it so)",
            show(&raw),
            show(artifact)
        );
    }
    use std::os::unix::process::ExitStatusExt;
    let code = exit
        .code()
        .or_else(|| exit.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Refuses, before anything is built, the flags that only the emulated board takes when the
/// target is unix (they would be ignored there).
fn refuse_flags(args: &Run, target: Target) -> Result<()> {
    if target != Target::Unix {
        return Ok(());
    }
    let why = "only the emulated board (--target xen-arm) takes it";
    if let Some(p) = args.publish.first() {
        bail!(
            "`-p {}:{}` does not apply to target unix: {why}; on unix the app listens on the host's own ports, with no forward (its port is set in unikernel.toml or by a boot argument after `--`)",
            p.host,
            p.guest
        );
    }
    if let Some(t) = args.timeout {
        bail!(
            "`--timeout {t}` does not apply to target unix: {why}; on unix stop the program yourself (Ctrl-C, or `timeout {t} uni run`)"
        );
    }
    if let Some(b) = &args.dom0.board {
        bail!(
            "`--board {b}` does not apply to target unix: {why}; on unix the program runs on this machine"
        );
    }
    Ok(())
}

/// Boots the image on the emulated board and mirrors how the guest ended in the exit code:
/// poweroff 0, crash 1, reboot 2, boot failure 3, timeout 124.
fn run_xen(args: &Run, file: &Path, image: std::path::PathBuf) -> Result<ExitCode> {
    let (cfg, _) = super::load_on(file, Some(Target::XenArm), args.dom0.board.as_deref())?;
    let board = crate::board::for_xen(cfg.board.as_deref())?;
    let prepared = emu::prepare(&board, &emu::cache_dir())?;
    let mut xl = image.with_extension("xl");
    if !args.args.is_empty() {
        // Boot arguments after `--` go after the xl file's own `extra=`, for this run only.
        let text =
            std::fs::read_to_string(&xl).with_context(|| format!("reading {}", xl.display()))?;
        let run_xl = cfg
            .dir
            .join("_build/xen-arm")
            .join(format!("{}.run.xl", cfg.name));
        std::fs::create_dir_all(run_xl.parent().unwrap())?;
        std::fs::write(
            &run_xl,
            crate::xl::append_extra(&text, &args.args.join(" "))?,
        )?;
        xl = run_xl;
    }
    let guest = emu::Guest {
        name: cfg.name.clone(),
        image,
        xl,
        marker: None,
    };
    let trace_reader = match &args.trace {
        Some(_) => Some(crate::trace::dom0_reader(prepared.dom0_arch())?),
        None => None,
    };
    let opts = emu::RunOptions {
        timeout: std::time::Duration::from_secs(args.timeout.unwrap_or(300)),
        verbose: crate::status::verbose(),
        log: cfg.dir.join("_build/xen-arm/serial.log"),
        forwards: args.publish.iter().map(|p| (p.host, p.guest)).collect(),
        // a board-side check for tests, e.g. `ping -c 3 -w 60 $GUEST_IP` (see emu::RunOptions)
        dom0_check: std::env::var("UNI_DOM0_CHECK")
            .ok()
            .filter(|c| !c.trim().is_empty()),
        trace_reader,
    };
    let report = emu::run_guests(&prepared, std::slice::from_ref(&guest), &opts)?;
    let outcome = report.outcome;
    status(
        "Finished",
        format!("{} {outcome} (exit code {})", cfg.name, outcome.exit_code()),
    );
    if let Some(out) = &args.trace {
        let raw = guest.image.with_extension("trace");
        let _ = std::fs::remove_file(&raw);
        match report.guests.first().and_then(|g| g.trace.clone()) {
            Some(Ok(bytes)) => {
                std::fs::write(&raw, bytes)
                    .with_context(|| format!("writing {}", show(&raw)))?;
                let ring = crate::trace::convert(&raw, out, &cfg.name)?;
                status("Traced", format!("{} to {}", ring.summary(), show(out)));
            }
            Some(Err(why)) => bail!("{} {outcome}, but its trace was not read: {why}", cfg.name),
            None => bail!(
                "{} {outcome} before dom0 could read its trace (dom0 reads it once the guest has ended; a run stopped by a signal or --timeout ends first)",
                cfg.name
            ),
        }
    }
    Ok(ExitCode::from(outcome.exit_code()))
}

/// `uni run --dom0`: the emulated board with dom0 alone and its SSH server, until a signal or
/// the timeout; exit code 0 then, 3 when dom0 did not come up.
fn run_dom0(args: &Run, file: &Path) -> Result<ExitCode> {
    let d = &args.dom0;
    let name = match &d.board {
        Some(b) => b.clone(),
        None if file.is_file() => load(file, Some(Target::XenArm))?
            .0
            .board
            .unwrap_or_else(|| crate::board::DEFAULT.into()),
        None => crate::board::DEFAULT.into(),
    };
    let board = crate::board::find(&name).with_context(|| {
        format!(
            "unknown board `{name}`; accepted: {}",
            crate::board::names()
        )
    })?;
    let cache = emu::cache_dir();
    let authorized_keys = emu::ssh::authorized_keys(&d.ssh_key)?;
    let prepared = emu::prepare(&board, &cache)?;
    let host_key = emu::ssh::HostKey::generate()?;
    let port = d.ssh_port;
    if let Some(p) = args.publish.iter().find(|p| p.name.is_none()) {
        bail!(
            "with --dom0, -p names the deployed unikernel it reaches: `-p {}:NAME:{}` (NAME as in its unikernel.toml)",
            p.host, p.guest
        );
    }
    let forwards = args
        .publish
        .iter()
        .map(|p| emu::ssh::NamedForward {
            host: p.host,
            name: p.name.clone().unwrap_or_default(),
            guest: p.guest,
        })
        .collect();
    let opts = emu::ssh::ServeOptions {
        port,
        forwards,
        authorized_keys,
        host_key: host_key.clone(),
        timeout: args.timeout.map(std::time::Duration::from_secs),
        verbose: crate::status::verbose(),
        log: cache.join(&board.name).join("dom0-serial.log"),
    };
    let line = host_key.known_hosts_line(port);
    let outcome = emu::ssh::serve(&prepared, &opts, || {
        status(
            "Ready",
            format!("dom0 answers SSH: ssh -p {port} root@localhost"),
        );
        status(
            "Deploy",
            format!("with: uni deploy --host root@localhost:{port}"),
        );
        if d.trust_host_key {
            let file = trust(&line, port)?;
            status(
                "Trusted",
                format!(
                    "its host key {} in {}",
                    host_key.fingerprint,
                    file.display()
                ),
            );
        } else {
            status(
                "Host key",
                format!(
                    "{} (new this session); add this line to ~/.ssh/known_hosts to trust it:",
                    host_key.fingerprint
                ),
            );
            super::out(&format!("{line}\n"))?;
        }
        status("Running", "until Ctrl-C");
        Ok(())
    })?;
    Ok(match outcome {
        emu::Outcome::BootFailed(why) => {
            crate::status::warn(format!("dom0 did not come up: {why}"));
            ExitCode::from(3)
        }
        _ => ExitCode::SUCCESS,
    })
}

/// Puts `line` into ~/.ssh/known_hosts in place of earlier keys for [localhost]:`port`.
fn trust(line: &str, port: u16) -> Result<std::path::PathBuf> {
    let ssh = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .context("HOME is not set")?
        .join(".ssh");
    std::fs::create_dir_all(&ssh).with_context(|| format!("creating {}", ssh.display()))?;
    let file = ssh.join("known_hosts");
    let sh = xshell::Shell::new()?;
    for name in [format!("[localhost]:{port}"), format!("[127.0.0.1]:{port}")] {
        if file.is_file() {
            xshell::cmd!(sh, "ssh-keygen -q -R {name} -f {file}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run()?;
        }
    }
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text += line;
    text.push('\n');
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}
