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
//! The recipe's pitfalls are noted where they bite (`dom0.rs`, `qemu.rs`); dom0's side of a run
//! is `templates/qemu-virt/dom0-init.sh`, and `serial.rs` reads what it prints.

mod cpio;
mod debs;
mod dom0;
mod files;
pub mod net;
mod qemu;
mod serial;
mod session;
pub mod ssh;
mod xl;

use files::{fnv, need_tool, read_only, sh_quote, Lock};
use qemu::{boot, qemu_command, Running};
pub use session::{run, run_guests};

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
    /// `uni-trace-dump` for dom0's architecture (`uni run --trace`): put into dom0, which runs
    /// it on each guest once it has ended (before the domain is destroyed) and sends the
    /// guest's trace ring back ([`GuestRun::trace`]).
    pub trace_reader: Option<PathBuf>,
}

impl RunOptions {
    pub fn new(timeout: Duration, log: PathBuf) -> RunOptions {
        RunOptions {
            timeout,
            verbose: false,
            log,
            forwards: Vec::new(),
            dom0_check: None,
            trace_reader: None,
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
    /// Its trace ring's memory image, read in dom0 once it ended ([`RunOptions::trace_reader`]),
    /// or why it could not be read; `None` when not asked for, or the run ended first.
    pub trace: Option<std::result::Result<Vec<u8>, String>>,
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

impl Prepared {
    /// dom0's architecture, as Debian names it (`arm64`, `armhf`).
    pub fn dom0_arch(&self) -> &str {
        &self.arch
    }
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
}
