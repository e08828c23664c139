//! The board alone, as a deploy target (`uni run --dom0`): dom0 boots with no guest of its own
//! and runs an SSH server (Debian's dropbear) on a QEMU user-network NIC. QEMU's port forward
//! to it listens in the board's network namespace (see [`super::net`]); a [`net::Forward`] from
//! 127.0.0.1 in the caller's namespace leads there. dom0's other NIC is the board's TAP device,
//! so `-p HOST:NAME:GUEST` forwards and `uni lan` reach deployed guests on the bridge: each name
//! in a forward gets a static DHCP lease in dom0 for the MAC that `uni build` gives that name
//! ([`crate::xl::stable_mac`]), so a redeployed guest keeps its address and its forward. Root logs in with the user's public keys; the host key is generated on the
//! host for each session (`ssh-keygen`), so uni can tell the user exactly which key to trust.
//! Guests then come and go with `uni deploy`, which runs `xl` in dom0 over SSH.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{boot, cpio, net, qemu_command, serial, sh_quote, Outcome, Prepared, Running};
use crate::status::{status, warn};

/// The MAC of dom0's NIC on QEMU's user network; dom0's /init finds the NIC by it.
pub const DOM0_SSH_MAC: &str = "52:54:00:75:6e:22";

/// A session's SSH host key.
#[derive(Debug, Clone)]
pub struct HostKey {
    /// OpenSSH private key format; dom0 converts it for dropbear.
    pub private: String,
    /// `ssh-ed25519 AAAA… comment`
    pub public: String,
    /// `SHA256:…`
    pub fingerprint: String,
}

impl HostKey {
    /// A new ed25519 key from the host's `ssh-keygen`, made in a scratch directory and removed
    /// from it.
    pub fn generate() -> Result<HostKey> {
        let dir = super::scratch()?;
        let file = dir.path().join("hostkey");
        let pub_file = file.with_extension("pub");
        let sh = xshell::Shell::new()?;
        xshell::cmd!(sh, "ssh-keygen -q -t ed25519 -N '' -C uni-dom0 -f {file}")
            .quiet()
            .ignore_stdout()
            .run()
            .context("generating dom0's host key with ssh-keygen (Debian: apt-get install openssh-client)")?;
        let fingerprint = xshell::cmd!(sh, "ssh-keygen -l -f {pub_file}")
            .quiet()
            .read()?;
        Ok(HostKey {
            private: std::fs::read_to_string(&file)?,
            public: std::fs::read_to_string(&pub_file)?.trim().to_string(),
            fingerprint: fingerprint
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// The known_hosts line for this key at 127.0.0.1:`port` as ssh names it (`[localhost]:port`).
    pub fn known_hosts_line(&self, port: u16) -> String {
        let mut key = self.public.split_whitespace();
        let (kind, blob) = (
            key.next().unwrap_or_default(),
            key.next().unwrap_or_default(),
        );
        format!("[localhost]:{port},[127.0.0.1]:{port} {kind} {blob}")
    }
}

/// `-p HOST:NAME:GUEST`: 127.0.0.1:`host` to port `guest` of the unikernel deployed as `name`.
#[derive(Debug, Clone)]
pub struct NamedForward {
    pub host: u16,
    pub name: String,
    pub guest: u16,
}

/// The static leases of a serving dom0: the `i`th distinct name of `forwards` gets
/// [`net::lease_ip`]`(i)` for the MAC of its first net device.
pub fn leases(forwards: &[NamedForward]) -> Vec<(String, String, Ipv4Addr)> {
    let mut out: Vec<(String, String, Ipv4Addr)> = Vec::new();
    for f in forwards {
        if !out.iter().any(|(n, _, _)| *n == f.name) {
            let mac = crate::xl::mac_text(crate::xl::stable_mac(&f.name, 0));
            out.push((f.name.clone(), mac, net::lease_ip(out.len())));
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The host port (on 127.0.0.1) forwarded to dom0's port 22.
    pub port: u16,
    /// Forwards to deployed unikernels.
    pub forwards: Vec<NamedForward>,
    /// root's `authorized_keys` in dom0.
    pub authorized_keys: String,
    pub host_key: HostKey,
    /// Stop the board after this long; `None`: run until a signal.
    pub timeout: Option<Duration>,
    /// Also print Xen's and dom0's lines (on stderr).
    pub verbose: bool,
    /// Every line of the serial console goes here.
    pub log: PathBuf,
}

/// Boots the board with dom0 alone and its SSH server; calls `ready` once dom0 accepts SSH
/// connections, then runs until a signal or the timeout (both ordinary ends), or until dom0 or
/// QEMU fails ([`Outcome::BootFailed`]).
pub fn serve(
    prepared: &Prepared,
    opts: &ServeOptions,
    ready: impl FnOnce() -> Result<()>,
) -> Result<Outcome> {
    // Listening now, in the caller's namespace: a busy port fails before the boot.
    let ssh_listener = net::Listener::bind(opts.port, "dom0's SSH server (--ssh-port)")?;
    let listeners = opts
        .forwards
        .iter()
        .map(|f| net::Listener::bind(f.host, &format!("`-p {}:{}:{}`", f.host, f.name, f.guest)))
        .collect::<Result<Vec<_>>>()?;
    net::isolate()?;
    let tap = match net::Tap::create(net::TAP_NAME) {
        Ok(tap) => Some(tap),
        Err(e) if opts.forwards.is_empty() => {
            warn(format!(
                "deployed guests will not be reachable from the host: {e:#}"
            ));
            None
        }
        Err(e) => return Err(e.context("`-p` needs the host on the board's network")),
    };
    let leases = leases(&opts.forwards);
    // SSH: QEMU's forward listens on the same port number, inside the board's namespace
    let ssh_ready = Arc::new(AtomicBool::new(false));
    let mut forwards = vec![net::Forward::start(
        ssh_listener,
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, opts.port),
        ssh_ready.clone(),
    )?];
    let now = Arc::new(AtomicBool::new(true));
    for (l, f) in listeners.into_iter().zip(&opts.forwards) {
        let (_, mac, ip) = leases
            .iter()
            .find(|(n, _, _)| *n == f.name)
            .expect("a lease per name");
        status(
            "Forward",
            format!(
                "127.0.0.1:{} -> {}:{} (10.0.0.x {ip}, its MAC {mac})",
                f.host, f.name, f.guest
            ),
        );
        forwards.push(net::Forward::start(
            l,
            SocketAddrV4::new(*ip, f.guest),
            now.clone(),
        )?);
    }
    if let Some(t) = &tap {
        status(
            "Network",
            format!(
                "dom0 10.0.0.1, host {} on {} (10.0.0.0/24) in this run's own network namespace, entered with `uni lan --pid {}`",
                net::HOST_IP,
                t.name,
                std::process::id()
            ),
        );
    }
    let scratch = super::scratch()?;
    let initrd = scratch.path().join("initrd.cpio");
    write_initrd(&prepared.base.initrd, opts, tap.is_some(), &leases, &initrd)?;
    if let Some(dir) = opts.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut log = std::io::BufWriter::new(
        std::fs::File::create(&opts.log)
            .with_context(|| format!("creating {}", opts.log.display()))?,
    );
    let qemu = qemu_command(prepared, &initrd, tap.as_ref(), Some(opts.port), &[]);
    let what = format!("dom0 of {} alone, with an SSH server", prepared.board);
    let (signals, t0, running) = boot(prepared, qemu, &what, &opts.log)?;
    let Running {
        mut child,
        rx,
        errs,
    } = running;
    let mut monitor = serial::Monitor::default();
    let mut ready = Some(ready);
    let outcome = loop {
        if let Some(sig) = signals.caught() {
            break Outcome::Interrupted(sig);
        }
        let left = opts.timeout.map(|t| t.saturating_sub(t0.elapsed()));
        let raw = match rx.recv_timeout(
            left.unwrap_or(Duration::MAX)
                .min(Duration::from_millis(100)),
        ) {
            Ok(raw) => raw,
            Err(mpsc::RecvTimeoutError::Timeout) if left.is_some_and(|l| l.is_zero()) => {
                break Outcome::Timeout
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let st = child.wait()?;
                let err = errs.join().unwrap_or_default();
                break Outcome::BootFailed(format!("QEMU stopped ({st}): {}", err.trim()));
            }
        };
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        writeln!(log, "{line}")?;
        log.flush()?;
        match monitor.feed(line) {
            serial::Action::End(o) => break o,
            serial::Action::Board(text) => {
                if opts.verbose {
                    eprintln!("{text}");
                }
                if text.starts_with("ssh ready") {
                    status(
                        "Booted",
                        format!("dom0 in {:.1}s", t0.elapsed().as_secs_f64()),
                    );
                    ssh_ready.store(true, Ordering::Relaxed);
                    if let Some(ready) = ready.take() {
                        ready()?;
                    }
                }
            }
            _ => {}
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    drop(forwards);
    drop(tap);
    drop(signals);
    if let Outcome::BootFailed(_) = outcome {
        for l in monitor.report() {
            eprintln!("{l}");
        }
    }
    status(
        "Halted",
        format!("the board after {:.1}s", t0.elapsed().as_secs_f64()),
    );
    Ok(outcome)
}

/// The cached dom0 initramfs, then a cpio with `/guest/run.env` (serve mode), root's
/// authorized_keys and the host key.
fn write_initrd(
    base: &Path,
    opts: &ServeOptions,
    nic: bool,
    leases: &[(String, String, Ipv4Addr)],
    to: &Path,
) -> Result<()> {
    let mut bytes = std::fs::read(base).with_context(|| format!("reading {}", base.display()))?;
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    let mut w = cpio::Writer::new(Vec::new());
    let statics: Vec<String> = leases
        .iter()
        .map(|(_, mac, ip)| format!("{mac} {ip}"))
        .collect();
    let env = format!(
        "GUESTS=0\nNET=1\nNIC={}\nNIC_MAC={}\nSSH=1\nSSH_MAC={}\nDHCP_STATIC={}\n",
        nic as u8,
        sh_quote(net::DOM0_NIC_MAC),
        sh_quote(DOM0_SSH_MAC),
        sh_quote(&statics.join(";"))
    );
    w.file("guest/run.env", 0o644, env.as_bytes())?;
    w.dir("root/.ssh", 0o700)?;
    w.file(
        "root/.ssh/authorized_keys",
        0o600,
        opts.authorized_keys.as_bytes(),
    )?;
    w.dir("etc/dropbear", 0o700)?;
    w.file(
        "etc/dropbear/host_key.openssh",
        0o600,
        opts.host_key.private.as_bytes(),
    )?;
    let (extra, _) = w.finish()?;
    bytes.extend_from_slice(&extra);
    std::fs::write(to, bytes).with_context(|| format!("writing {}", to.display()))?;
    Ok(())
}

/// root's authorized_keys for dom0: the given public key files, else every `~/.ssh/id_*.pub`.
pub fn authorized_keys(files: &[PathBuf]) -> Result<String> {
    let files = if files.is_empty() {
        let ssh = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh"))
            .context("HOME is not set")?;
        let mut found: Vec<PathBuf> = std::fs::read_dir(&ssh)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        found.retain(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with("id_") && n.ends_with(".pub")
        });
        found.sort();
        if found.is_empty() {
            bail!(
                "no public key in {} to let you log in to dom0: make one with `ssh-keygen -t ed25519`, \
                 or name one with --ssh-key FILE.pub",
                ssh.display()
            );
        }
        found
    } else {
        files.to_vec()
    };
    let mut keys = String::new();
    for f in &files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading the public key {}", f.display()))?;
        if !text.trim_start().starts_with("ssh-") && !text.trim_start().starts_with("ecdsa-") {
            bail!(
                "{} is not an OpenSSH public key (`ssh-ed25519 AAAA…`)",
                f.display()
            );
        }
        keys += text.trim();
        keys.push('\n');
    }
    Ok(keys)
}
