//! The emulated Xen ARM boards (`boards/qemu-virt`, `qemu-virt-gicv2`, `qemu-virt32`): QEMU TCG
//! running Debian's Xen 4.17 (arm64, or armhf on qemu-virt32) with a dom0 of the same
//! architecture that starts the guest with `xl create`. A real board (cubieboard2) is run on the
//! emulated board it names ([`Board::emulator`]).
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
pub mod net;
mod serial;
pub mod ssh;
mod xl;

use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::board::{Board, Qemu};
use crate::status::{status, warn};

/// A guest to boot: a unikernel's `dist/<name>.xen` and the xl file `dist/<name>.xl` next to
/// it, or any other ARM32 kernel and xl file.
#[derive(Debug, Clone)]
pub struct Guest {
    /// For messages; the domain's name comes from the xl file.
    pub name: String,
    pub image: PathBuf,
    pub xl: PathBuf,
    /// A console line (a substring of it) whose arrival dom0 times, as
    /// [`GuestRun::marker`].
    pub marker: Option<String>,
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
    /// (host port, guest port) TCP forwards from 127.0.0.1 to the first guest's address (see
    /// [`net`]). They need a vif in the guest's xl file.
    pub forwards: Vec<(u16, u16)>,
    /// A shell command for dom0 to run once the first guest exists, with `$GUEST_IP` set (for
    /// example `ping -c 3 -w 60 $GUEST_IP`); its output and exit status are reported on stderr
    /// and in [`Report::check`]. It should wait for the guest itself.
    pub dom0_check: Option<String>,
}

impl RunOptions {
    pub fn new(timeout: Duration, log: PathBuf) -> RunOptions {
        RunOptions {
            timeout,
            verbose: false,
            log,
            forwards: Vec::new(),
            dom0_check: None,
        }
    }
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
    /// `uni` got this signal (SIGINT, SIGTERM, SIGHUP) and stopped the board.
    Interrupted(i32),
    /// The guest never ran: xl create failed, dom0 did not come up, or QEMU stopped.
    BootFailed(String),
}

impl Outcome {
    /// The exit code for `uni run`: poweroff 0, crash 1, reboot 2, boot failure 3,
    /// timeout 124 (as timeout(1)), a signal 128 + its number (as a shell has it).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Poweroff => 0,
            Outcome::Crash => 1,
            Outcome::Reboot => 2,
            Outcome::BootFailed(_) => 3,
            Outcome::Timeout => 124,
            Outcome::Interrupted(sig) => 128u8.saturating_add(*sig as u8),
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
            Outcome::Interrupted(sig) => write!(f, "was stopped by signal {sig}"),
            Outcome::BootFailed(why) => write!(f, "did not boot: {why}"),
        }
    }
}

/// What one guest of a run did.
#[derive(Debug, Clone, Default)]
pub struct GuestRun {
    pub name: String,
    pub domid: Option<u32>,
    /// How it ended; `None` when the run ended first (timeout, signal, dom0 failure).
    pub outcome: Option<Outcome>,
    /// Its address on the board's LAN (first vif): the `--ipv4=` boot argument's, else its
    /// DHCP lease. `None` without a vif.
    pub ip: Option<Ipv4Addr>,
    /// Seconds from the start of `xl create` to the first byte of console output (dom0's clock,
    /// which under QEMU TCG runs at host time; 20 ms resolution).
    pub first_output: Option<f64>,
    /// Seconds from the start of `xl create` to the console line [`Guest::marker`].
    pub marker: Option<f64>,
    /// Its console lines.
    pub console: Vec<String>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// How the run ended: the last guest's outcome, or why the run stopped first.
    pub outcome: Outcome,
    pub guests: Vec<GuestRun>,
    /// The dom0 check's exit status and output, when it finished.
    pub check: Option<(i32, Vec<String>)>,
}

/// A board ready to boot guests.
#[derive(Debug, Clone)]
pub struct Prepared {
    board: String,
    /// the board the run was asked for, when another board emulates it
    stands_for: Option<String>,
    /// `qemu-system-aarch64` or `qemu-system-arm`
    program: &'static str,
    /// Xen's and dom0's architecture
    arch: String,
    qemu: Qemu,
    dom0_memory: u32,
    base: dom0::Base,
}

/// A directory for one run's own files (its initramfs, a host key), in the temporary
/// directory rather than the cache, which may be another user's and read-only; removed when
/// dropped.
fn scratch() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("uni-run-")
        .tempdir()
        .context("making a directory for the run's files in the temporary directory")
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

/// Downloads (once) and assembles (once) what `board` needs, under `cache/<board>/`: for a real
/// board, its emulation's.
pub fn prepare(asked: &Board, cache: &Path) -> Result<Prepared> {
    let board = &asked.emulator()?;
    let (Some(qemu), Some(dom0)) = (&board.qemu, &board.dom0) else {
        unreachable!("Board::emulator gives a board with [qemu] and [dom0]");
    };
    need_tool(board.qemu_program(), "qemu-system-arm")?;
    let dir = cache.join(&board.name);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the cache {}", dir.display()))?;
    // a cache the user can only read (another user's, prepared earlier) is used as it is
    let _lock = match Lock::take(&dir.join("lock")) {
        Err(e) if read_only(&e) => None,
        r => Some(r?),
    };
    let debs = debs::fetch(dom0, &dir)?;
    let base = dom0::assemble(dom0, &debs, &dir)?;
    Ok(Prepared {
        board: board.name.clone(),
        stands_for: (asked.name != board.name).then(|| asked.name.clone()),
        program: board.qemu_program(),
        arch: dom0.arch.clone(),
        qemu: qemu.clone(),
        dom0_memory: dom0.memory,
        base,
    })
}

// ---------------------------------------------------------------------------------------------
// A run
// ---------------------------------------------------------------------------------------------

/// Xen's command line: dom0's memory, all log levels, console on the device tree's UART, then
/// the board's own options.
fn xen_cmdline(dom0_memory: u32, options: &[String]) -> String {
    let mut line = format!("dom0_mem={dom0_memory}M loglvl=all guest_loglvl=all console=dtuart console_timestamps=boot");
    for o in options {
        line.push(' ');
        line.push_str(o);
    }
    line
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
    Ok(run_guests(prepared, std::slice::from_ref(guest), opts)?.outcome)
}

/// A guest's files and place in the run.
struct Planned<'a> {
    guest: &'a Guest,
    cfg: xl::RunConfig,
    ip: Option<Ipv4Addr>,
}

/// Boots `guests` one after another in one session of the board: each runs until it shuts
/// down, then the next is created. Every guest's console goes to stdout.
pub fn run_guests(prepared: &Prepared, guests: &[Guest], opts: &RunOptions) -> Result<Report> {
    if guests.is_empty() {
        bail!("no guest to run");
    }
    let mut plan = Vec::new();
    let mut vifs = 0;
    // dom0's static leases: each distinct MAC of the run the next address, so a guest that
    // comes again (the same MAC) gets its address again
    let mut leases: Vec<(String, Ipv4Addr)> = Vec::new();
    for guest in guests {
        let xl_text = std::fs::read_to_string(&guest.xl)
            .with_context(|| format!("reading {}", guest.xl.display()))?;
        let xl_dir = guest.xl.parent().unwrap_or(Path::new("."));
        let cfg = xl::rewrite(&xl_text, &guest.image, xl_dir, vifs)
            .with_context(|| format!("in {}", guest.xl.display()))?;
        for mac in &cfg.macs {
            if !leases.iter().any(|(m, _)| m == mac) {
                leases.push((mac.clone(), net::lease_ip(leases.len())));
            }
        }
        let ip = cfg.macs.first().map(|mac| {
            let leased = leases
                .iter()
                .find(|(m, _)| m == mac)
                .expect("leased above")
                .1;
            net::static_ipv4(&cfg.extra).unwrap_or(leased)
        });
        vifs += cfg.macs.len();
        plan.push(Planned { guest, cfg, ip });
    }
    if !opts.forwards.is_empty() && plan[0].ip.is_none() {
        bail!(
            "`-p` forwards to the guest's network, but {} has no vif (no network device in \
             unikernel.toml)",
            plan[0].guest.xl.display()
        );
    }

    // The network: only when a guest has a vif, so that other runs boot as fast as before.
    // The `-p` listeners are bound here, in the caller's namespace; then the process moves to
    // the board's own, where the TAP device and every connection to a guest are made.
    let net_on = vifs > 0;
    let listeners = opts
        .forwards
        .iter()
        .map(|&(h, g)| net::Listener::bind(h, &format!("`-p {h}:{g}`")))
        .collect::<Result<Vec<_>>>()?;
    let tap = if net_on {
        net::isolate()?;
        match net::Tap::create(net::TAP_NAME) {
            Ok(tap) => Some(tap),
            Err(e) if opts.forwards.is_empty() => {
                warn(format!(
                    "the host cannot reach the guest: {e:#}. The guest still gets its address \
                     from dom0's DHCP server."
                ));
                None
            }
            Err(e) => return Err(e.context("`-p` needs the host on the board's network")),
        }
    } else {
        None
    };
    let ready = Arc::new(AtomicBool::new(false));
    let mut forwards = Vec::new();
    if let Some(ip) = plan[0].ip {
        for (l, &(_, g)) in listeners.into_iter().zip(&opts.forwards) {
            forwards.push(net::Forward::start(
                l,
                SocketAddrV4::new(ip, g),
                ready.clone(),
            )?);
        }
    }
    if net_on {
        // the first guest with a vif (a run may start with guests without one)
        let first = plan
            .iter()
            .find(|p| !p.cfg.macs.is_empty())
            .unwrap_or(&plan[0]);
        let ip = first.ip.map(|ip| ip.to_string()).unwrap_or_default();
        let how = if net::static_ipv4(&first.cfg.extra).is_some() {
            "static, from --ipv4"
        } else {
            "DHCP"
        };
        let host = match &tap {
            Some(t) => format!(
                "; host {} on {} (10.0.0.0/24) in this run's own network namespace, entered with \
                 `uni lan --pid {}`",
                net::HOST_IP,
                t.name,
                std::process::id()
            ),
            None => String::new(),
        };
        let fwd: String = forwards
            .iter()
            .map(|f| format!("; 127.0.0.1:{} -> {}", f.host, f.guest))
            .collect();
        status(
            "Network",
            format!(
                "{} at {ip} ({how}, MAC {}){host}{fwd}",
                first.guest.name,
                first.cfg.macs.first().map(String::as_str).unwrap_or("-")
            ),
        );
    }

    let scratch = scratch()?;
    let initrd = scratch.path().join("initrd.cpio");
    let net = NetPlan {
        on: net_on,
        nic: tap.is_some(),
        leases,
        check: opts.dom0_check.clone(),
    };
    write_initrd(&prepared.base.initrd, &plan, &net, &initrd)?;

    if let Some(dir) = opts.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut log = std::io::BufWriter::new(
        std::fs::File::create(&opts.log)
            .with_context(|| format!("creating {}", opts.log.display()))?,
    );

    let qemu = qemu_command(prepared, &initrd, tap.as_ref(), None);
    let names: Vec<&str> = guests.iter().map(|g| g.name.as_str()).collect();
    let (signals, t0, running) = boot(
        prepared,
        qemu,
        &format!("{} on {}", names.join(", then "), prepared.board),
        &opts.log,
    )?;
    let Running {
        mut child,
        rx,
        errs,
    } = running;

    let mut monitor = serial::Monitor::default();
    let mut runs: Vec<GuestRun> = Vec::new();
    let mut check = None;
    let mut check_lines = Vec::new();
    let mut first_line = None;
    let deadline = t0 + opts.timeout;
    let out = std::io::stdout();
    let outcome = loop {
        if let Some(sig) = signals.caught() {
            break Outcome::Interrupted(sig);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let raw = match rx.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(raw) => raw,
            Err(mpsc::RecvTimeoutError::Timeout) if left.is_zero() => break Outcome::Timeout,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let st = child.wait()?;
                if let Some(sig) = signals.caught() {
                    break Outcome::Interrupted(sig);
                }
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
        let current = runs.len().checked_sub(1);
        match monitor.feed(line) {
            serial::Action::Guest(text) => {
                first_line.get_or_insert_with(|| t0.elapsed());
                if let Some(i) = current {
                    runs[i].console.push(text.to_string());
                }
                let mut o = out.lock();
                writeln!(o, "{text}")?;
                o.flush()?;
            }
            serial::Action::Created { domid } => {
                let p = &plan[current.unwrap_or(0).min(plan.len() - 1)];
                status(
                    "Started",
                    format!(
                        "{} as domain {domid} after {:.1}s",
                        p.guest.name,
                        t0.elapsed().as_secs_f64()
                    ),
                );
                if let Some(r) = current.and_then(|i| runs.get_mut(i)) {
                    r.domid = Some(domid);
                }
                ready.store(true, Ordering::Relaxed);
            }
            serial::Action::Timing { what, secs } => {
                if let Some(r) = current.and_then(|i| runs.get_mut(i)) {
                    match what {
                        "first-output" => r.first_output = Some(secs),
                        "marker" => r.marker = Some(secs),
                        _ => {}
                    }
                }
            }
            serial::Action::Leased(ip) => status("Leased", format!("{ip} by dom0's DHCP server")),
            serial::Action::Check(text) => {
                eprintln!("  dom0 check | {text}");
                check_lines.push(text.to_string());
            }
            serial::Action::CheckEnd(st) => {
                status(
                    "Checked",
                    format!(
                        "`{}` in dom0: {}",
                        opts.dom0_check.as_deref().unwrap_or(""),
                        if st == 0 {
                            "ok".to_string()
                        } else {
                            format!("failed (exit status {st})")
                        }
                    ),
                );
                check = Some((st, std::mem::take(&mut check_lines)));
            }
            serial::Action::GuestEnd(o) => {
                if let Some(r) = current.and_then(|i| runs.get_mut(i)) {
                    r.outcome = Some(o);
                }
            }
            serial::Action::Board(text) => {
                if text.starts_with("xl create ") && runs.len() < plan.len() {
                    let p = &plan[runs.len()];
                    runs.push(GuestRun {
                        name: p.guest.name.clone(),
                        ip: p.ip,
                        ..GuestRun::default()
                    });
                }
                if opts.verbose {
                    eprintln!("{text}");
                }
            }
            serial::Action::End(o) => {
                if let Some(r) = runs.last_mut() {
                    r.outcome.get_or_insert(o.clone());
                }
                break o;
            }
        }
    };
    // dom0 is powering off by now; nothing after the end line matters
    let _ = child.kill();
    let _ = child.wait();
    drop(forwards);
    drop(tap);
    drop(signals);
    log.flush()?;

    // The guest's own words come first; what the board knows is shown when the guest printed
    // nothing, or did not boot. After a crash with output, only the PC: the dump is in the log.
    let name = &guests.last().unwrap().name;
    let silent = monitor.guest_lines == 0;
    let quiet = matches!(outcome, Outcome::Interrupted(_));
    if !opts.verbose && !quiet {
        if silent || matches!(outcome, Outcome::BootFailed(_)) {
            if silent && !matches!(outcome, Outcome::BootFailed(_)) {
                warn(format!("{name} printed nothing"));
            }
            for l in monitor.report() {
                eprintln!("{l}");
            }
        } else if outcome == Outcome::Crash {
            if let Some(pc) = monitor.crash_pc() {
                eprintln!(
                    "{name} crashed at PC {pc} (xenctx; the register dump is in {})",
                    opts.log.display()
                );
            }
        }
    }
    let first = first_line
        .map(|t| format!("; the guest's first line came at {:.1}s", t.as_secs_f64()))
        .unwrap_or_default();
    let after = runs
        .iter()
        .filter_map(|r| Some((r, r.first_output?)))
        .map(|(r, t)| format!(", {}s after xl create for {}", t, r.name))
        .collect::<String>();
    status(
        "Halted",
        format!(
            "the board after {:.1}s{first}{after}",
            t0.elapsed().as_secs_f64()
        ),
    );
    Ok(Report {
        outcome,
        guests: runs,
        check,
    })
}

/// Says what boots, catches the signals that stop the board, and starts QEMU.
fn boot(
    prepared: &Prepared,
    qemu: Command,
    what: &str,
    log: &Path,
) -> Result<(Signals, Instant, Running)> {
    let stands_for = match &prepared.stands_for {
        Some(b) => format!(", standing for {b}"),
        None => String::new(),
    };
    status(
        "Booting",
        format!(
            "{what} (Xen {} under QEMU {}{stands_for}, log {})",
            prepared.arch,
            prepared.qemu.cpu,
            log.display()
        ),
    );
    let signals = Signals::catch();
    Ok((signals, Instant::now(), Running::spawn(qemu)?))
}

/// QEMU started: its serial lines arrive on `rx`; `errs` ends with its stderr.
struct Running {
    child: std::process::Child,
    rx: mpsc::Receiver<Vec<u8>>,
    errs: std::thread::JoinHandle<String>,
}

impl Running {
    fn spawn(mut qemu: Command) -> Result<Running> {
        let program = qemu.get_program().to_string_lossy().into_owned();
        let mut child = qemu
            .spawn()
            .with_context(|| format!("starting {program}"))?;
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
        Ok(Running { child, rx, errs })
    }
}

/// What dom0 sets up for the network.
struct NetPlan {
    /// bridge + udhcpd (a guest has a vif)
    on: bool,
    /// dom0 has a NIC to the host's tap
    nic: bool,
    /// udhcpd's static leases, MAC and address
    leases: Vec<(String, Ipv4Addr)>,
    check: Option<String>,
}

/// QEMU for the board. `ssh`: a host port on 127.0.0.1 forwarded to port 22 of dom0's NIC
/// [`ssh::DOM0_SSH_MAC`] on QEMU's user network (no privileges needed).
fn qemu_command(p: &Prepared, initrd: &Path, tap: Option<&net::Tap>, ssh: Option<u16>) -> Command {
    // QEMU's option syntax: a comma inside a value is written twice
    let opt = |p: &Path| p.display().to_string().replace(',', ",,");
    // if `uni` dies, even by SIGKILL, QEMU goes too (and with it the board's namespace):
    // util-linux's setpriv sets the parent-death signal, then runs QEMU in its place
    let mut c = Command::new("setpriv");
    c.args(["--pdeathsig", "KILL", "--", p.program]);
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
        .args(["-append", &xen_cmdline(p.dom0_memory, &p.qemu.xen_options)])
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
    if let Some(tap) = tap {
        // dom0's virtio NIC is the other end of the host's tap
        c.args([
            "-netdev",
            &format!("tap,id=net0,ifname={},script=no,downscript=no", tap.name),
            "-device",
            &format!("virtio-net-device,netdev=net0,mac={}", net::DOM0_NIC_MAC),
        ]);
    } else if ssh.is_none() {
        // no default NIC: dom0 would only probe it
        c.args(["-nic", "none"]);
    }
    if let Some(port) = ssh {
        c.args([
            "-netdev",
            &format!("user,id=ssh,hostfwd=tcp:127.0.0.1:{port}-:22"),
            "-device",
            &format!("virtio-net-device,netdev=ssh,mac={}", ssh::DOM0_SSH_MAC),
        ]);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // QEMU gets its own process group, so a ^C reaches `uni` only, which stops QEMU itself.
    c.process_group(0);
    c
}

/// The cached dom0 initramfs, then a cpio (uncompressed) with the guests' files and
/// `/guest/run.env`. Linux unpacks both, one after the other.
fn write_initrd(base: &Path, plan: &[Planned], net: &NetPlan, to: &Path) -> Result<()> {
    let mut bytes = std::fs::read(base).with_context(|| format!("reading {}", base.display()))?;
    // the next archive starts on a 4-byte boundary; Linux skips the zeros in between
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    let mut w = cpio::Writer::new(Vec::new());
    let mut env = format!(
        "GUESTS={}\nNET={}\nNIC={}\nNIC_MAC={}\n",
        plan.len(),
        net.on as u8,
        net.nic as u8,
        sh_quote(net::DOM0_NIC_MAC)
    );
    let mut written: Vec<String> = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        let cfg = &p.cfg;
        for (host, name) in &cfg.files {
            if written.contains(name) {
                continue;
            }
            let data =
                std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
            w.file(&format!("guest/{name}"), 0o644, &data)?;
            written.push(name.clone());
        }
        let xl_name = format!("{}-{}.xl", i + 1, cfg.name);
        w.file(&format!("guest/{xl_name}"), 0o644, cfg.text.as_bytes())?;
        env += &format!(
            "G{n}_NAME={}\nG{n}_CFG={}\nG{n}_MARK={}\n",
            sh_quote(&cfg.name),
            sh_quote(&format!("{}/{xl_name}", xl::GUEST_DIR)),
            sh_quote(p.guest.marker.as_deref().unwrap_or("")),
            n = i + 1
        );
    }
    let leases: Vec<String> = net
        .leases
        .iter()
        .map(|(mac, ip)| format!("{mac} {ip}"))
        .collect();
    env += &format!(
        "DHCP_STATIC={}\nGUEST_IP={}\nDOM0_CHECK={}\n",
        sh_quote(&leases.join(";")),
        plan[0].ip.map(|ip| ip.to_string()).unwrap_or_default(),
        sh_quote(net.check.as_deref().unwrap_or(""))
    );
    w.file("guest/run.env", 0o644, env.as_bytes())?;
    let (guest, _) = w.finish()?;
    bytes.extend_from_slice(&guest);
    std::fs::write(to, bytes).with_context(|| format!("writing {}", to.display()))?;
    Ok(())
}

/// `s` as one shell word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// SIGINT, SIGTERM and SIGHUP, caught while the board runs: the run stops QEMU, removes what
/// it made, and reports [`Outcome::Interrupted`]. The handlers are removed on drop (a signal
/// after that is ignored until `uni` exits, which it then does at once).
struct Signals {
    caught: Arc<AtomicUsize>,
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    fn catch() -> Signals {
        let caught = Arc::new(AtomicUsize::new(0));
        let ids = [SIGINT, SIGTERM, SIGHUP]
            .into_iter()
            .filter_map(|sig| {
                signal_hook::flag::register_usize(sig, caught.clone(), sig as usize).ok()
            })
            .collect();
        Signals { caught, ids }
    }

    fn caught(&self) -> Option<i32> {
        match self.caught.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s as i32),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
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

/// Whether `e` says a file could not be made because the directory is not ours to write.
fn read_only(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            io.kind() == std::io::ErrorKind::PermissionDenied
                || io.raw_os_error() == Some(libc::EROFS)
        })
    })
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
        assert_eq!(Outcome::Interrupted(libc::SIGTERM).exit_code(), 143);
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
        let cfg = xl::rewrite(
            "name = \"hello\"\nvif = [ 'bridge=xenbr0' ]\n",
            &dir.join("hello.xen"),
            &dir,
            0,
        )
        .unwrap();
        let guest = Guest {
            name: "hello".into(),
            image: dir.join("hello.xen"),
            xl: dir.join("hello.xl"),
            marker: Some("it's up".into()),
        };
        let plan = [Planned {
            guest: &guest,
            cfg,
            ip: Some(net::lease_ip(0)),
        }];
        let net = NetPlan {
            on: true,
            nic: false,
            leases: vec![("00:16:3e:75:6e:02".into(), net::lease_ip(0))],
            check: Some("ping -c 3 $GUEST_IP".into()),
        };
        write_initrd(&dir.join("base"), &plan, &net, &dir.join("out")).unwrap();
        let out = std::fs::read(dir.join("out")).unwrap();
        assert_eq!(&out[..8], b"12345\0\0\0");
        assert_eq!(&out[8..14], b"070701");
        let s = String::from_utf8_lossy(&out);
        assert!(s.contains("guest/hello.xen\0"));
        assert!(s.contains("guest/1-hello.xl\0"));
        assert!(s.contains("vif = [ 'bridge=xenbr0,mac=00:16:3e:75:6e:02' ]\n"));
        assert!(
            s.contains(
                "GUESTS=1\nNET=1\nNIC=0\nNIC_MAC='52:54:00:75:6e:01'\nG1_NAME='hello'\nG1_CFG='/guest/1-hello.xl'\n\
                 G1_MARK='it'\\''s up'\nDHCP_STATIC='00:16:3e:75:6e:02 10.0.0.2'\n\
                 GUEST_IP=10.0.0.2\nDOM0_CHECK='ping -c 3 $GUEST_IP'\n"
            ),
            "{s}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
