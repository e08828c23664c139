//! `uni deploy`, `uni ps`, `uni stop`, `uni logs`: a unikernel on a Xen dom0, over SSH (see
//! [`crate::remote`]; dom0's side is `templates/deploy/dom0.sh`).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::{build, load, show};
use crate::board::Board;
use crate::cli::{Deploy, Logs, Ps, RemoteArgs, Stop};
use crate::config::Config;
use crate::remote::{quote, HostSpec, Remote, ScriptError};
use crate::status::status;
use crate::target::Target;

/// Where a board without a `[deploy]` table keeps unikernels, and who logs in.
const DEFAULT_DIR: &str = "/var/lib/uni";
const DEFAULT_USER: &str = "root";

/// Seconds a new domain must run without crashing before the deploy counts as done.
const SETTLE_SECS: u32 = 2;
/// Seconds to wait for a networked guest to print its address.
const IP_WAIT_SECS: u32 = 30;

/// The dom0 and the directory there.
pub(super) struct Place {
    pub(super) remote: Remote,
    pub(super) dir: String,
}

pub(super) fn place(args: &RemoteArgs, cfg: Option<&Config>, board: &Board) -> Result<Place> {
    let mut spec: HostSpec = match (&args.host, cfg.and_then(|c| c.deploy.host.clone())) {
        (Some(h), _) => h.parse().map_err(|e: String| anyhow::anyhow!("--host {e}"))?,
        (None, Some(h)) => h,
        (None, None) => bail!(
            "no dom0 to go to: pass --host [USER@]HOST[:PORT], or set `host` in the [deploy] table of unikernel.toml"
        ),
    };
    let deploy = board.deploy.as_ref();
    if spec.user.is_none() {
        spec.user = Some(deploy.map_or(DEFAULT_USER, |d| &d.user).to_string());
    }
    let dir = match (&args.dir, cfg.and_then(|c| c.deploy.dir.clone())) {
        (Some(d), _) => {
            crate::config::check_deploy_dir(d)
                .map_err(|why| anyhow::anyhow!("--dir `{d}`: {why}"))?;
            d.clone()
        }
        (None, Some(d)) => d,
        (None, None) => deploy.map_or(DEFAULT_DIR, |d| &d.dir).to_string(),
    };
    Ok(Place {
        remote: Remote::new(spec)?,
        dir: dir.trim_end_matches('/').to_string(),
    })
}

/// unikernel.toml when there is one: ps, stop and logs work without it.
pub(super) fn optional_config(file: &Path) -> Result<Option<Config>> {
    if file.is_file() {
        Ok(Some(load(file, Some(Target::XenArm))?.0))
    } else {
        Ok(None)
    }
}

pub(super) fn board_of(cfg: Option<&Config>) -> Result<Board> {
    match cfg {
        Some(c) => crate::board::for_xen(c.board.as_deref()),
        None => Ok(crate::board::find(crate::board::DEFAULT).expect("the default board exists")),
    }
}

pub(super) fn name_of(name: Option<String>, cfg: Option<&Config>) -> Result<String> {
    let name = name.or_else(|| cfg.map(|c| c.name.clone())).context(
        "which unikernel? name it, or run uni where its unikernel.toml is (or pass -f PATH)",
    )?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!("`{name}` is not a unikernel name (letters, digits, `-`, `_`, `.`)");
    }
    Ok(name)
}

pub fn deploy(args: Deploy, file: &Path) -> Result<ExitCode> {
    let (cfg, _) = super::load_on(file, Some(Target::XenArm), args.board.as_deref())?;
    let board = crate::board::for_xen(cfg.board.as_deref())?;
    let Place { remote, dir } = place(&args.remote, Some(&cfg), &board)?;
    let name = cfg.name.clone();
    let host = remote.spec.to_string();

    // the dom0 first: an unreachable or unsuitable one fails before a long build
    status(
        "Checking",
        format!("{host}: xl, Xen's guest types, space in {dir}"),
    );
    let disks = disk_plan(&cfg, &args.replace_disk)?;
    let mut probe_call = format!("probe {} {}", quote(&dir), quote(&name));
    for d in &disks {
        probe_call += &format!(" {}", quote(&d.base));
    }
    let probe = remote
        .call("", &probe_call)
        .map_err(|e| explain(e, &host))?;
    let in_dom0: Vec<String> = probe
        .all("disk")
        .filter_map(|l| {
            let (base, size) = l.split_once(' ')?;
            (size != "-").then(|| base.to_string())
        })
        .collect();
    check_arch(&board, probe.get("caps").unwrap_or_default(), &host)?;

    let image = if args.no_build {
        let image = cfg.dir.join("dist").join(format!("{name}.xen"));
        if !image.is_file() {
            bail!(
                "--no-build, but there is no {}: run `uni build --target xen-arm` first",
                show(&image)
            );
        }
        image
    } else {
        build::build(cfg.clone(), Target::XenArm)?.artifact
    };
    let xl_file = image.with_extension("xl");
    let bytes = std::fs::read(&image).with_context(|| format!("reading {}", image.display()))?;
    let xl_text = std::fs::read_to_string(&xl_file)
        .with_context(|| format!("reading {}", xl_file.display()))?;
    let home = format!("{dir}/{name}");
    let xl_text = crate::xl::set_kernel(&xl_text, &format!("{home}/{name}.xen"))
        .with_context(|| format!("in {}", xl_file.display()))?;
    let targets: Vec<String> = disks.iter().map(|d| format!("{home}/{}", d.base)).collect();
    let xl_text = crate::xl::set_disk_targets(&xl_text, &targets)
        .with_context(|| format!("in {}", xl_file.display()))?;
    // the disks to upload: new in dom0, or replaced on request; the others stay as they are
    let mut uploads = Vec::new();
    for d in &disks {
        let kept = in_dom0.contains(&d.base);
        match (&d.replace, kept) {
            (Some(file), _) => uploads.push((d, file.clone())),
            (None, false) => uploads.push((d, d.file.clone())),
            (None, true) => status(
                "Keeping",
                format!(
                    "{}'s disk {home}/{} in {host} as the guest left it (--replace-disk to \
                     overwrite it)",
                    d.device, d.base
                ),
            ),
        }
    }
    let mut disk_bytes = 0u64;
    for (_, file) in &uploads {
        disk_bytes += crate::image::check_disk_image(file).context("nothing was uploaded")?;
    }

    let avail = probe
        .get("avail_kb")
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    let need = ((bytes.len() + xl_text.len()) as u64 + disk_bytes) * 2 / 1024 + 64;
    if avail < need {
        bail!("no space on {host}: {dir} has {avail} KiB free, and {name} needs about {need} KiB (the new image beside the old); nothing was uploaded, and what runs there is untouched");
    }

    status(
        "Uploading",
        format!(
            "{} ({}) to {host}:{home}/",
            show(&image),
            build::human(bytes.len() as u64)
        ),
    );
    remote.upload(&bytes, &format!("{home}/.new/{name}.xen"))?;
    let sha = sha256(&image)?;
    let mut disk_args = String::new();
    for (d, file) in &uploads {
        status(
            "Uploading",
            format!(
                "{}'s disk {} ({}) to {host}:{home}/{}",
                d.device,
                show(file),
                build::human(std::fs::metadata(file)?.len()),
                d.base
            ),
        );
        let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        remote.upload(&data, &format!("{home}/.new/{}", d.base))?;
        disk_args += &format!(" {}", quote(&format!("{}={}", d.base, sha256(file)?)));
    }

    status(
        "Starting",
        format!(
            "{name} with xl create (sha256 {} checked in dom0)",
            &sha[..12]
        ),
    );
    let wait_ip = if xl_text.lines().any(|l| l.starts_with("vif")) {
        IP_WAIT_SECS
    } else {
        0
    };
    let prelude = format!(
        "cat >{} <<'UNI_XL_EOF'\n{xl_text}UNI_XL_EOF\n",
        quote(&format!("{home}/.new/{name}.xl"))
    );
    let reply = match remote.call(
        &prelude,
        &format!(
            "activate {} {} {sha} {SETTLE_SECS} {wait_ip}{disk_args}",
            quote(&dir),
            quote(&name)
        ),
    ) {
        Ok(r) => r,
        Err(e) => {
            if let Some(s) = e.downcast_ref::<ScriptError>() {
                if s.kind == "start" {
                    let after = match (
                        s.reply.get("restored"),
                        s.reply.get("restore-failed"),
                        s.reply.get("stopped"),
                    ) {
                        (Some(id), _, _) => {
                            format!("the previous image was put back and runs again as domain {id}")
                        }
                        (_, Some(why), _) => format!(
                            "the previous image was put back but did not start again: {why}"
                        ),
                        (_, _, Some(_)) => "the previous image is gone".to_string(),
                        _ => format!(
                            "nothing of {name} runs there (the failed image is in {home}/.failed/)"
                        ),
                    };
                    bail!("{name} did not start on {host}: {}; {after}", s.text);
                }
            }
            return Err(explain(e, &host));
        }
    };
    let domid = reply.get("domid").unwrap_or("?");
    if let Some(old) = reply.get("stopped") {
        status("Replaced", format!("domain {old}"));
    }
    let mut msg = format!("{name} on {host} as domain {domid}");
    if let Some(ip) = reply.get("ip") {
        write!(msg, ", address {ip}")?;
    }
    match reply.get("state") {
        Some("") | None => write!(
            msg,
            " (it has already shut down; `uni logs` shows its console)"
        )?,
        Some(_) => {}
    }
    status("Deployed", msg);
    if args.console {
        status("Console", format!("{name} (leave with Ctrl-])"));
        let log = reply.get("log").unwrap_or_default();
        let offset = reply
            .get("offset")
            .and_then(|o| o.parse::<u64>().ok())
            .unwrap_or(0);
        remote.interactive(&console_command(&name, log, offset))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One block device's disk on the dom0.
#[derive(Debug)]
struct DiskPlan {
    device: String,
    /// The image on the host (unikernel.toml's `file`).
    file: std::path::PathBuf,
    /// Its name in dom0, in the unikernel's directory there.
    base: String,
    /// `--replace-disk`: the image to overwrite dom0's with.
    replace: Option<std::path::PathBuf>,
}

/// The unikernel's disks, in xl order, with `--replace-disk [DEVICE=]FILE` applied.
fn disk_plan(cfg: &Config, replace: &[String]) -> Result<Vec<DiskPlan>> {
    let mut disks: Vec<DiskPlan> = Vec::new();
    for d in &cfg.devices {
        let Some(disk) = d.device.disk() else {
            continue;
        };
        let base = disk
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if base.is_empty()
            || base.starts_with('.')
            || !base
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || base == format!("{}.xen", cfg.name)
            || base == format!("{}.xl", cfg.name)
        {
            bail!(
                "devices.{}: the disk image's file name `{base}` cannot be kept in dom0 (letters, \
                 digits, `-`, `_` and `.`, not starting with `.`, and not the image's own name)",
                d.name
            );
        }
        if let Some(other) = disks.iter().find(|o| o.base == base) {
            bail!(
                "devices.{} and devices.{} both use a disk image named `{base}`; dom0 keeps \
                 them side by side, so their file names must differ",
                other.device,
                d.name
            );
        }
        disks.push(DiskPlan {
            device: d.name.clone(),
            file: disk.file,
            base,
            replace: None,
        });
    }
    for r in replace {
        let (device, file) = match r.split_once('=') {
            Some((dev, file)) if !dev.contains('/') => (Some(dev), file),
            _ => (None, r.as_str()),
        };
        let names = disks
            .iter()
            .map(|d| format!("`{}`", d.device))
            .collect::<Vec<_>>()
            .join(", ");
        let target = match device {
            Some(dev) => disks.iter_mut().find(|d| d.device == dev).with_context(|| {
                format!(
                    "--replace-disk {r}: `{dev}` is not a block device of {} (its block devices: {})",
                    cfg.name,
                    names
                )
            })?,
            None if disks.len() == 1 => &mut disks[0],
            None if disks.is_empty() => {
                bail!("--replace-disk {r}: {} has no block device", cfg.name)
            }
            None => bail!(
                "--replace-disk {r}: {} has several block devices; say which with DEVICE=FILE \
                 (one of {})",
                cfg.name,
                names
            ),
        };
        let file = std::path::PathBuf::from(file);
        if !file.is_file() {
            bail!("--replace-disk {r}: there is no file {}", file.display());
        }
        target.replace = Some(file);
    }
    Ok(disks)
}

/// The shell line `uni deploy --console` runs in dom0 with a terminal. `xl console` alone
/// would lose what the guest printed before it attached (the 2 s of settling, the SSH login),
/// and everything of a guest that has already ended. So it first prints this boot's console log
/// (from byte `offset` of `log`), then attaches if the domain still exists. A watcher ends
/// `xl console` once the domain is gone, so the command ends when the guest does; it ends itself
/// when `xl console` has (left with Ctrl-]). Inline rather
/// than a function of dom0.sh: stdin is the terminal, so the script cannot go there, and sent
/// as the command line it would make a long one.
fn console_command(name: &str, log: &str, offset: u64) -> String {
    let n = quote(name);
    let mut c = String::new();
    if !log.is_empty() {
        write!(c, "tail -c +{} {} 2>/dev/null; ", offset + 1, quote(log)).unwrap();
    }
    write!(
        c,
        "xl domid {n} >/dev/null 2>&1 || exit 0; \
         (while xl domid {n} >/dev/null 2>&1; do sleep 1; kill -0 $$ 2>/dev/null || exit 0; done; sleep 1; kill $$) </dev/null >/dev/null 2>&1 & \
         exec xl console {n}"
    )
    .unwrap();
    c
}

/// The image must be able to run on the dom0's Xen, and be built for the board it is.
fn check_arch(board: &Board, caps: &str, host: &str) -> Result<()> {
    if !caps.split_whitespace().any(|c| c.ends_with("armv7l")) {
        bail!(
            "wrong architecture: the Xen on {host} cannot run 32-bit ARM guests (xen_caps: `{caps}`); \
             a xen-arm image needs xen-3.0-armv7l"
        );
    }
    let aarch64 = caps.contains("aarch64");
    let board_64 = board.xen.hypervisor_arch == "arm64";
    if aarch64 != board_64 {
        let theirs = if aarch64 {
            "arm64 (like qemu-virt)"
        } else {
            "armhf (like cubieboard2)"
        };
        let others: Vec<String> = crate::board::all()
            .into_iter()
            .filter(|b| (b.xen.hypervisor_arch == "arm64") == aarch64)
            .map(|b| format!("\"{}\"", b.name))
            .collect();
        bail!(
            "wrong architecture: the image is built for board `{}` (Xen {}), but {host} runs Xen {theirs} \
             (xen_caps: `{caps}`); build for its board: `board = {}` in unikernel.toml, or \
             `uni deploy --board …`",
            board.name,
            board.xen.hypervisor_arch,
            others.join(" or ")
        );
    }
    Ok(())
}

/// A clear message for what dom0's script reported.
pub(super) fn explain(e: anyhow::Error, host: &str) -> anyhow::Error {
    let Some(s) = e.downcast_ref::<ScriptError>() else {
        return e;
    };
    match s.kind.as_str() {
        "no-xl" => anyhow::anyhow!(
            "{host} is not a Xen dom0 with the xl toolstack: {} (Debian: apt-get install xen-utils)",
            s.text
        ),
        "space" => anyhow::anyhow!("no space on {host}: {}", s.text),
        "checksum" => anyhow::anyhow!("the upload to {host} arrived damaged: {}; nothing was replaced", s.text),
        _ => anyhow::anyhow!("on {host}: {}", s.text),
    }
}

/// The image's sha256, from the host's `sha256sum`.
fn sha256(path: &Path) -> Result<String> {
    let sh = xshell::Shell::new()?;
    let out = xshell::cmd!(sh, "sha256sum {path}")
        .quiet()
        .read()
        .context("running sha256sum (coreutils)")?;
    let sum = out
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    if sum.len() != 64 {
        bail!("sha256sum printed `{out}`");
    }
    Ok(sum)
}

pub fn ps(args: Ps, file: &Path) -> Result<ExitCode> {
    let cfg = optional_config(file)?;
    let Place { remote, dir } = place(&args.remote, cfg.as_ref(), &board_of(cfg.as_ref())?)?;
    let host = remote.spec.to_string();
    let reply = remote
        .call("", &format!("ps {}", quote(&dir)))
        .map_err(|e| explain(e, &host))?;
    let rows: Vec<PsRow> = reply.all("unikernel").map(PsRow::parse).collect();
    let o = if args.json {
        let mut j =
            serde_json::to_string_pretty(&rows.iter().map(PsRow::json).collect::<Vec<_>>())?;
        j.push('\n');
        j
    } else {
        let mut o = format!("{:<20} {:>6} {:>8} STATE\n", "NAME", "DOMID", "MEM(MiB)");
        for r in &rows {
            match r.domain {
                Some((id, mem, _)) => writeln!(o, "{:<20} {id:>6} {mem:>8} {}", r.name, r.state())?,
                None => writeln!(o, "{:<20} {:>6} {:>8} stopped", r.name, "-", "-")?,
            }
        }
        o
    };
    super::out(&o)?;
    Ok(ExitCode::SUCCESS)
}

/// A line of dom0's `ps`: `NAME DOMID MEM STATE`, or `NAME -` when no domain runs it.
struct PsRow<'a> {
    name: &'a str,
    /// Domain id, MiB, xl's state letters.
    domain: Option<(u32, u64, &'a str)>,
}

impl<'a> PsRow<'a> {
    fn parse(line: &'a str) -> PsRow<'a> {
        let mut w = line.split_whitespace();
        let name = w.next().unwrap_or_default();
        let domain = match (w.next(), w.next(), w.next()) {
            (Some(id), Some(mem), state) => id
                .parse()
                .ok()
                .zip(mem.parse().ok())
                .map(|(id, mem)| (id, mem, state.unwrap_or(""))),
            _ => None,
        };
        PsRow { name, domain }
    }

    fn state(&self) -> String {
        self.domain
            .map_or("stopped".into(), |(_, _, letters)| state_words(letters))
    }

    /// `--json`: the same facts, numbers as numbers, and xl's own letters beside the words.
    fn json(&self) -> serde_json::Value {
        let (domid, mem, letters) = match self.domain {
            Some((id, mem, l)) => (Some(id), Some(mem), Some(l)),
            None => (None, None, None),
        };
        serde_json::json!({
            "name": self.name,
            "domid": domid,
            "memory_mib": mem,
            "state": self.state(),
            "xl_state": letters,
        })
    }
}

/// xl's state letters in words.
fn state_words(letters: &str) -> String {
    let mut words: Vec<&str> = letters
        .chars()
        .filter_map(|c| match c {
            // blocked: waiting for an event (a packet, a timer), which is how a unikernel idles
            'r' | 'b' => Some("running"),
            'p' => Some("paused"),
            's' => Some("shutdown"),
            'c' => Some("crashed"),
            'd' => Some("dying"),
            _ => None,
        })
        .collect();
    words.dedup();
    if words.is_empty() {
        "running".into()
    } else {
        words.join(", ")
    }
}

pub fn stop(args: Stop, file: &Path) -> Result<ExitCode> {
    let cfg = optional_config(file)?;
    let name = name_of(args.name, cfg.as_ref())?;
    let Place { remote, dir } = place(&args.remote, cfg.as_ref(), &board_of(cfg.as_ref())?)?;
    let host = remote.spec.to_string();
    let reply = remote
        .call("", &format!("stop {} {}", quote(&dir), quote(&name)))
        .map_err(|e| explain(e, &host))?;
    match reply.get("stopped") {
        Some(id) if id != "-" => status(
            "Stopped",
            format!("{name} on {host} (domain {id} destroyed)"),
        ),
        _ => status("Stopped", format!("{name} on {host} was not running")),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn logs(args: Logs, file: &Path) -> Result<ExitCode> {
    let cfg = optional_config(file)?;
    let name = name_of(args.name, cfg.as_ref())?;
    let Place { remote, dir } = place(&args.remote, cfg.as_ref(), &board_of(cfg.as_ref())?)?;
    let host = remote.spec.to_string();
    let call = format!(
        "logs {} {} {}",
        quote(&dir),
        quote(&name),
        args.follow as u8
    );
    if args.follow {
        let st = remote.stream(&call)?;
        return Ok(if st.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let text = remote.raw_call("", &call).map_err(|e| explain(e, &host))?;
    super::out(&text)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_must_suit_the_dom0s_xen() {
        let qemu = crate::board::find("qemu-virt").unwrap();
        let cubie = crate::board::find("cubieboard2").unwrap();
        let arm64 = "xen-3.0-aarch64 xen-3.0-armv7l";
        let armhf = "xen-3.0-armv7l";
        assert!(check_arch(&qemu, arm64, "h").is_ok());
        assert!(check_arch(&cubie, armhf, "h").is_ok());
        let e = check_arch(&cubie, arm64, "h").unwrap_err().to_string();
        assert!(
            e.contains("built for board `cubieboard2`") && e.contains("\"qemu-virt\""),
            "{e}"
        );
        assert!(check_arch(&qemu, armhf, "h").is_err());
        assert!(check_arch(&qemu, "xen-3.0-x86_64 hvm-3.0-x86_32", "h")
            .unwrap_err()
            .to_string()
            .contains("cannot run 32-bit ARM"));
    }

    #[test]
    fn the_console_shows_the_log_first() {
        let c = console_command("hello", "/var/log/xen/console/guest-hello.log", 120);
        assert!(
            c.starts_with("tail -c +121 '/var/log/xen/console/guest-hello.log' 2>/dev/null; xl domid 'hello' >/dev/null 2>&1 || exit 0; "),
            "{c}"
        );
        assert!(c.ends_with("& exec xl console 'hello'"), "{c}");
        assert!(!console_command("a", "", 0).contains("tail"));
    }

    #[test]
    fn ps_lines() {
        let r = PsRow::parse("echo 3 32 b");
        assert_eq!(r.state(), "running");
        assert_eq!(
            r.json().to_string(),
            r#"{"domid":3,"memory_mib":32,"name":"echo","state":"running","xl_state":"b"}"#
        );
        let r = PsRow::parse("hello -");
        assert_eq!(r.state(), "stopped");
        assert_eq!(
            r.json().to_string(),
            r#"{"domid":null,"memory_mib":null,"name":"hello","state":"stopped","xl_state":null}"#
        );
    }

    #[test]
    fn states_in_words() {
        assert_eq!(state_words("b"), "running");
        assert_eq!(state_words("rb"), "running");
        assert_eq!(state_words("bc"), "running, crashed");
        assert_eq!(state_words("c"), "crashed");
        assert_eq!(state_words(""), "running");
    }
}
