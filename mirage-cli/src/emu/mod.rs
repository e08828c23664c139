//! The emulated Xen ARM board (`boards/qemu-virt`): QEMU TCG running Debian's Xen 4.17 arm64
//! with an arm64 dom0 that starts the guest with `xl create`.
//!
//! [`prepare`] downloads the board's Debian packages and assembles the hypervisor, the dom0
//! kernel and the dom0 initramfs, all cached (see [`cache_dir`]). [`run`] boots one guest: it
//! appends a small cpio with the guest's image and xl file to the cached initramfs, starts QEMU,
//! copies the guest's console to stdout and returns how the guest ended.
//!
//! The recipe is `xen-rig/rig.sh`'s (see its NOTES.md for the pitfalls); dom0's side of a run is
//! `templates/qemu-virt/dom0-init.sh`, and `serial.rs` reads what it prints.

mod cpio;
mod debs;
mod dom0;
mod serial;
mod xl;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::board::{Board, Qemu};
use crate::status::{status, warn};

/// A unikernel to boot: `dist/<name>.xen` and the xl file `dist/<name>.xl` next to it.
#[derive(Debug, Clone)]
pub struct Guest {
    /// For messages; the domain's name comes from the xl file.
    pub name: String,
    pub image: PathBuf,
    pub xl: PathBuf,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// For the whole run, from starting QEMU; then QEMU is killed and the run is a
    /// [`Outcome::Timeout`].
    pub timeout: Duration,
    /// Also print Xen's, dom0's and the toolstack's lines (on stderr).
    pub verbose: bool,
    /// Every line of the serial console goes here.
    pub log: PathBuf,
    /// (host port, guest port) TCP forwards. QEMU forwards them to dom0 (user networking,
    /// virtio-net); dom0 is told about them in `/guest/run.env` as `FORWARDS="h:g …"` but does
    /// not forward them to the guest yet.
    pub forwards: Vec<(u16, u16)>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// The guest shut down with reason "poweroff".
    Poweroff,
    /// The guest asked to reboot. It is not restarted.
    Reboot,
    /// The guest crashed (also: a watchdog, suspend or soft-reset shutdown, none of which a
    /// unikernel run expects).
    Crash,
    /// The timeout passed first.
    Timeout,
    /// The guest never ran: xl create failed, dom0 did not come up, or QEMU stopped.
    BootFailed(String),
}

impl Outcome {
    /// The exit code for `uni run`: poweroff 0, crash 1, reboot 2, boot failure 3,
    /// timeout 124 (as timeout(1)).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Poweroff => 0,
            Outcome::Crash => 1,
            Outcome::Reboot => 2,
            Outcome::BootFailed(_) => 3,
            Outcome::Timeout => 124,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Poweroff => f.write_str("powered off"),
            Outcome::Reboot => f.write_str("asked to reboot"),
            Outcome::Crash => f.write_str("crashed"),
            Outcome::Timeout => f.write_str("timed out"),
            Outcome::BootFailed(why) => write!(f, "did not boot: {why}"),
        }
    }
}

/// A board ready to boot guests.
#[derive(Debug, Clone)]
pub struct Prepared {
    board: String,
    qemu: Qemu,
    dom0_memory: u32,
    base: dom0::Base,
    /// per-run files
    runs: PathBuf,
}

/// Where downloads and assembled boards are kept: `$UNI_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/uni`, else `~/.cache/uni`. Delete `<cache>/<board>` to start afresh (new
/// Debian package versions, for instance).
pub fn cache_dir() -> PathBuf {
    let var = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    var("UNI_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|x| x.join("uni")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/uni")))
        .unwrap_or_else(|| std::env::temp_dir().join("uni-cache"))
}

/// Downloads (once) and assembles (once) what `board` needs, under `cache/<board>/`.
pub fn prepare(board: &Board, cache: &Path) -> Result<Prepared> {
    let (Some(qemu), Some(dom0)) = (&board.qemu, &board.dom0) else {
        bail!(
            "board `{}` cannot be emulated: it has no [qemu] and [dom0]",
            board.name
        );
    };
    need_tool("qemu-system-aarch64", "qemu-system-arm")?;
    let dir = cache.join(&board.name);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the cache {}", dir.display()))?;
    let _lock = Lock::take(&dir.join("lock"))?;
    let debs = debs::fetch(dom0, &dir)?;
    let base = dom0::assemble(dom0, &debs, &dir)?;
    Ok(Prepared {
        board: board.name.clone(),
        qemu: qemu.clone(),
        dom0_memory: dom0.memory,
        base,
        runs: dir.join("runs"),
    })
}

// ---------------------------------------------------------------------------------------------
// A run
// ---------------------------------------------------------------------------------------------

/// Xen's command line: dom0's memory, all log levels, console on the device tree's UART.
fn xen_cmdline(dom0_memory: u32) -> String {
    format!("dom0_mem={dom0_memory}M loglvl=all guest_loglvl=all console=dtuart console_timestamps=boot")
}

const DOM0_CMDLINE: &str = "console=hvc0 earlycon=xen rdinit=/init loglevel=5";
/// Where QEMU's guest-loader puts dom0's kernel and initramfs. Not 0x48000000: QEMU puts the
/// device tree there.
const DOM0_KERNEL_ADDR: &str = "0x49000000";
const DOM0_INITRD_ADDR: &str = "0x50000000";

/// Boots `guest` on the prepared board and returns how it ended. The guest's console goes to
/// stdout as it arrives; if the guest printed nothing, what the board said about it goes to
/// stderr.
pub fn run(prepared: &Prepared, guest: &Guest, opts: &RunOptions) -> Result<Outcome> {
    let xl_text = std::fs::read_to_string(&guest.xl)
        .with_context(|| format!("reading {}", guest.xl.display()))?;
    let xl_dir = guest.xl.parent().unwrap_or(Path::new("."));
    let cfg = xl::rewrite(&xl_text, &guest.image, xl_dir)
        .with_context(|| format!("in {}", guest.xl.display()))?;

    std::fs::create_dir_all(&prepared.runs)?;
    let initrd = prepared
        .runs
        .join(format!("initrd-{}.cpio", std::process::id()));
    let _cleanup = RemoveOnDrop(initrd.clone());
    write_initrd(&prepared.base.initrd, &cfg, &opts.forwards, &initrd)?;

    if let Some(dir) = opts.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut log = std::io::BufWriter::new(
        std::fs::File::create(&opts.log)
            .with_context(|| format!("creating {}", opts.log.display()))?,
    );

    let mut qemu = qemu_command(prepared, &initrd, &opts.forwards);
    status(
        "Booting",
        format!(
            "{} on {} (Xen arm64 under QEMU {}, log {})",
            guest.name,
            prepared.board,
            prepared.qemu.cpu,
            opts.log.display()
        ),
    );
    let t0 = Instant::now();
    let mut child = qemu.spawn().context("starting qemu-system-aarch64")?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });

    let mut monitor = serial::Monitor::default();
    let mut first_line = None;
    let deadline = t0 + opts.timeout;
    let out = std::io::stdout();
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let raw = match rx.recv_timeout(left) {
            Ok(raw) => raw,
            Err(mpsc::RecvTimeoutError::Timeout) => break Outcome::Timeout,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let st = child.wait()?;
                let err = errs.join().unwrap_or_default();
                let err = err.trim();
                break Outcome::BootFailed(if err.is_empty() {
                    format!("QEMU stopped ({st}) before the guest did")
                } else {
                    format!("QEMU stopped ({st}) before the guest did: {err}")
                });
            }
        };
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        writeln!(log, "{line}")?;
        match monitor.feed(line) {
            serial::Action::Guest(text) => {
                first_line.get_or_insert_with(|| t0.elapsed());
                let mut o = out.lock();
                writeln!(o, "{text}")?;
                o.flush()?;
            }
            serial::Action::Created { domid } => status(
                "Started",
                format!(
                    "{} as domain {domid} after {:.1}s",
                    guest.name,
                    t0.elapsed().as_secs_f64()
                ),
            ),
            serial::Action::Board(text) => {
                if opts.verbose {
                    eprintln!("{text}");
                }
            }
            serial::Action::End(o) => break o,
        }
    };
    // dom0 is powering off by now; nothing after the end line matters
    let _ = child.kill();
    let _ = child.wait();
    log.flush()?;

    // The guest's own words come first; what the board knows is shown when the guest printed
    // nothing, or did not boot. After a crash with output, only the PC: the dump is in the log.
    let silent = monitor.guest_lines == 0;
    if !opts.verbose {
        if silent || matches!(outcome, Outcome::BootFailed(_)) {
            if silent && !matches!(outcome, Outcome::BootFailed(_)) {
                warn(format!("{} printed nothing", guest.name));
            }
            for l in monitor.report() {
                eprintln!("{l}");
            }
        } else if outcome == Outcome::Crash {
            if let Some(pc) = monitor.crash_pc() {
                eprintln!(
                    "{} crashed at PC {pc} (xenctx; the register dump is in {})",
                    guest.name,
                    opts.log.display()
                );
            }
        }
    }
    let first = first_line
        .map(|t| format!("; the guest's first line came at {:.1}s", t.as_secs_f64()))
        .unwrap_or_default();
    status(
        "Halted",
        format!("the board after {:.1}s{first}", t0.elapsed().as_secs_f64()),
    );
    Ok(outcome)
}

fn qemu_command(p: &Prepared, initrd: &Path, forwards: &[(u16, u16)]) -> Command {
    // QEMU's option syntax: a comma inside a value is written twice
    let opt = |p: &Path| p.display().to_string().replace(',', ",,");
    let mut c = Command::new("qemu-system-aarch64");
    c.args(["-machine", &p.qemu.machine, "-cpu", &p.qemu.cpu])
        .args([
            "-smp",
            &p.qemu.smp.to_string(),
            "-m",
            &p.qemu.memory.to_string(),
        ])
        .args(["-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(&p.base.xen)
        .args(["-append", &xen_cmdline(p.dom0_memory)])
        .arg("-device")
        .arg(format!(
            "guest-loader,addr={DOM0_KERNEL_ADDR},kernel={},bootargs={DOM0_CMDLINE}",
            opt(&p.base.kernel)
        ))
        .arg("-device")
        .arg(format!(
            "guest-loader,addr={DOM0_INITRD_ADDR},initrd={}",
            opt(initrd)
        ));
    if !forwards.is_empty() {
        let fwd: String = forwards
            .iter()
            .map(|(h, g)| format!(",hostfwd=tcp:127.0.0.1:{h}-:{g}"))
            .collect();
        c.args([
            "-netdev",
            &format!("user,id=net0{fwd}"),
            "-device",
            "virtio-net-device,netdev=net0",
        ]);
    } else {
        // no default NIC: dom0 would only probe it
        c.args(["-nic", "none"]);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The cached dom0 initramfs, then a cpio (uncompressed) with the guest's files and
/// `/guest/run.env`. Linux unpacks both, one after the other.
fn write_initrd(
    base: &Path,
    cfg: &xl::RunConfig,
    forwards: &[(u16, u16)],
    to: &Path,
) -> Result<()> {
    let mut bytes = std::fs::read(base).with_context(|| format!("reading {}", base.display()))?;
    // the next archive starts on a 4-byte boundary; Linux skips the zeros in between
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    let mut w = cpio::Writer::new(Vec::new());
    for (host, name) in &cfg.files {
        let data = std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
        w.file(&format!("guest/{name}"), 0o644, &data)?;
    }
    let xl_name = format!("{}.xl", cfg.name);
    w.file(&format!("guest/{xl_name}"), 0o644, cfg.text.as_bytes())?;
    let fwd: Vec<String> = forwards.iter().map(|(h, g)| format!("{h}:{g}")).collect();
    let env = format!(
        "NAME='{}'\nCFG='{}/{xl_name}'\nFORWARDS='{}'\n",
        cfg.name,
        xl::GUEST_DIR,
        fwd.join(" ")
    );
    w.file("guest/run.env", 0o644, env.as_bytes())?;
    let (guest, _) = w.finish()?;
    bytes.extend_from_slice(&guest);
    std::fs::write(to, bytes).with_context(|| format!("writing {}", to.display()))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Fails with what to install when `tool` is not on PATH.
fn need_tool(tool: &str, debian_package: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        bail!("{tool} not found: install Debian's {debian_package} (apt-get install {debian_package})");
    }
    Ok(())
}

/// 64-bit FNV-1a: a cache key that stays the same across Rust versions and hosts.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One `prepare` at a time per board cache: a lock file holding the owner's pid, taken over
/// when that process is gone.
struct Lock(PathBuf);

impl Lock {
    fn take(path: &Path) -> Result<Lock> {
        let mut waited = false;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id())?;
                    return Ok(Lock(path.to_path_buf()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(path).unwrap_or_default();
                    let alive = owner
                        .trim()
                        .parse::<u32>()
                        .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    if !alive && !owner.is_empty() {
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    if !waited {
                        status(
                            "Waiting",
                            format!("for another uni using {}", path.display()),
                        );
                        waited = true;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Outcome::Poweroff.exit_code(), 0);
        assert_eq!(Outcome::Crash.exit_code(), 1);
        assert_eq!(Outcome::Reboot.exit_code(), 2);
        assert_eq!(Outcome::BootFailed("x".into()).exit_code(), 3);
        assert_eq!(Outcome::Timeout.exit_code(), 124);
    }

    #[test]
    fn fnv_is_the_published_function() {
        assert_eq!(fnv(b""), 0xcbf29ce484222325);
        assert_eq!(fnv(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn guest_cpio_follows_the_base_on_a_4_byte_boundary() {
        let dir = std::env::temp_dir().join(format!("uni-emu-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("base"), b"12345").unwrap();
        std::fs::write(dir.join("hello.xen"), b"image").unwrap();
        let cfg = xl::rewrite("name = \"hello\"\n", &dir.join("hello.xen"), &dir).unwrap();
        write_initrd(&dir.join("base"), &cfg, &[(8080, 80)], &dir.join("out")).unwrap();
        let out = std::fs::read(dir.join("out")).unwrap();
        assert_eq!(&out[..8], b"12345\0\0\0");
        assert_eq!(&out[8..14], b"070701");
        let s = String::from_utf8_lossy(&out);
        assert!(s.contains("guest/hello.xen\0"));
        assert!(s.contains("guest/hello.xl\0"));
        assert!(s.contains("NAME='hello'\nCFG='/guest/hello.xl'\nFORWARDS='8080:80'\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
