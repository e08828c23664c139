//! The board's network, host side.
//!
//! The emulated board has one LAN, 10.0.0.0/24, on dom0's bridge `xenbr0`:
//! - dom0 is 10.0.0.1 and runs udhcpd there, with a static lease for every guest vif
//!   (10.0.0.2, .3, … in the order of the run's vifs; other MACs get .100–.199);
//! - the host's end is a TAP device, [`TAP_NAME`] at [`HOST_IP`], that QEMU gives dom0 as a
//!   virtio-net NIC and dom0 enslaves to the bridge.
//!
//! That LAN is sealed: [`isolate`] moves the `uni` process into a network namespace of its own
//! (with an unprivileged user namespace when it lacks CAP_SYS_ADMIN) before the TAP device is
//! made, so the TAP, 10.0.0.254 and the route to 10.0.0.0/24 exist only there. QEMU, started
//! afterwards, shares it. The namespace has no name and no mount: it ends with the last process
//! in it, whatever way `uni` ends (even SIGKILL: QEMU dies with it). The caller's namespace
//! never sees any of it.
//!
//! The host reaches guests in two ways:
//! - `uni run -p HOST:GUEST`: a [`Forward`], a TCP proxy in the `uni` process. Its listener is
//!   bound on 127.0.0.1 in the caller's namespace *before* [`isolate`] (a socket keeps the
//!   namespace it was made in); its connections to the guest are made from inside.
//! - `uni lan`: a command run inside a running board's namespace (`setns`), for tools that need
//!   the LAN itself (frame injection, a client of 10.0.0.x, a server the guests call).

use std::io::Read;
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// dom0 on the board's bridge.
pub const DOM0_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The host's end of the TAP device, inside the board's namespace.
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
pub const PREFIX_LEN: u8 = 24;
/// The MAC of dom0's virtio NIC (the host's tap is the other end of the wire).
pub const DOM0_NIC_MAC: &str = "52:54:00:75:6e:01";

/// The address the board's DHCP server gives the `index`th vif of a run (0-based).
pub fn lease_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 2 + index as u8)
}

/// The TAP device's name (one per namespace, so it is always the same).
pub const TAP_NAME: &str = "uni0";

/// The MAC the board gives the `index`th vif of a run when its xl file names none:
/// Xen's OUI 00:16:3e, then "un", then 2 + index.
pub fn default_mac(index: usize) -> String {
    format!("00:16:3e:75:6e:{:02x}", 2 + index)
}

// ---------------------------------------------------------------------------------------------
// The board's own network namespace
// ---------------------------------------------------------------------------------------------

static ISOLATED: AtomicBool = AtomicBool::new(false);

/// Moves this process into a new network namespace, once: every later call returns at once.
/// With CAP_SYS_ADMIN (root) a plain network namespace; without, an unprivileged user namespace
/// too, in which this process is root (mapped to the caller's uid and gid), as `unshare -rn`.
/// The new namespace's loopback is up.
///
/// The process must have one thread: a user namespace cannot be entered otherwise, and a
/// network namespace would hold only the calling thread. Bind the sockets meant for the
/// caller's namespace (the `-p` listeners) first.
pub fn isolate() -> Result<()> {
    use nix::sched::{unshare, CloneFlags};
    if ISOLATED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1);
    if threads > 1 {
        bail!(
            "the board's network namespace must be made while uni has one thread, and it has \
             {threads} (a caller of mirage_cli::emu should call emu::net::isolate() first)"
        );
    }
    match unshare(CloneFlags::CLONE_NEWNET) {
        Ok(()) => {}
        Err(nix::errno::Errno::EPERM) => {
            let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
            unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)
                .map_err(|e| anyhow!("{}", userns_refused(e, &read_sysctl)))?;
            // setgroups must be denied before an unprivileged process may write its gid_map
            std::fs::write("/proc/self/setgroups", "deny")
                .and_then(|_| std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")))
                .and_then(|_| std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")))
                .context("mapping uid and gid into the board's user namespace")?;
        }
        Err(e) => bail!("making the board's network namespace (unshare): {e}"),
    }
    ip(&["link", "set", "lo", "up"]).context("bringing up lo in the board's network namespace")?;
    ISOLATED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Whether [`isolate`] has run in this process.
pub fn isolated() -> bool {
    ISOLATED.load(Ordering::Relaxed)
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Why an unprivileged user namespace was refused, naming the sysctl that decides it.
fn userns_refused(e: nix::errno::Errno, sysctl: &dyn Fn(&str) -> Option<String>) -> String {
    let what = format!(
        "the board's network needs a network namespace of its own, and without root that needs \
         an unprivileged user namespace, which this kernel refused ({e})"
    );
    let knobs = [
        (
            "/proc/sys/kernel/unprivileged_userns_clone",
            "0",
            "sudo sysctl -w kernel.unprivileged_userns_clone=1",
        ),
        (
            "/proc/sys/user/max_user_namespaces",
            "0",
            "sudo sysctl -w user.max_user_namespaces=15000",
        ),
        (
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "1",
            "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or give uni an \
             AppArmor profile that allows `userns,`)",
        ),
    ];
    for (path, off, fix) in knobs {
        if sysctl(path).as_deref() == Some(off) {
            let name = path.trim_start_matches("/proc/sys/").replace('/', ".");
            return format!("{what}: {name} is {off}; allow them with `{fix}`, or run as root");
        }
    }
    if e == nix::errno::Errno::ENOSPC {
        return format!(
            "{what}: user.max_user_namespaces is used up; raise it with \
             `sudo sysctl -w user.max_user_namespaces=15000`"
        );
    }
    format!(
        "{what}; the sysctls that decide it are kernel.unprivileged_userns_clone, \
         user.max_user_namespaces and kernel.apparmor_restrict_unprivileged_userns; or run as root"
    )
}

/// The TAP device of the board's LAN, made with iproute2 inside the board's network namespace:
/// it goes away on drop, and at the latest with the namespace, when `uni` and QEMU are gone.
/// QEMU attaches to it by name.
#[derive(Debug)]
pub struct Tap {
    pub name: String,
}

impl Tap {
    /// Creates the TAP device `name` (at most 15 bytes) with the host's address on the board's
    /// LAN, up.
    pub fn create(name: &str) -> Result<Tap> {
        assert!(name.len() < 16, "interface names are at most 15 bytes");
        if !isolated() {
            bail!("the TAP device {name} is only ever made inside the board's network namespace (emu::net::isolate)");
        }
        let tap = Tap {
            name: name.to_string(),
        };
        ip(&["tuntap", "add", "dev", name, "mode", "tap", "vnet_hdr"])
            .map_err(|e| refused(&e, &format!("creating the TAP device {name}")))?;
        // fewer strangers on the board's LAN: no IPv6 router solicitations, MLD, …
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
        let cidr = format!("{HOST_IP}/{PREFIX_LEN}");
        ip(&["addr", "add", &cidr, "dev", name])
            .and_then(|()| ip(&["link", "set", name, "up"]))
            .with_context(|| format!("configuring the TAP device {name}"))?;
        Ok(tap)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.name]);
    }
}

/// `ip ARGS…` (iproute2), in this process's network namespace; its complaint in the error.
fn ip(args: &[&str]) -> Result<()> {
    let sh = xshell::Shell::new()?;
    let out = xshell::cmd!(sh, "ip {args...}")
        .quiet()
        .ignore_status()
        .output()
        .context("running `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn refused(e: &anyhow::Error, what: &str) -> anyhow::Error {
    let text = e.to_string();
    let hint = if text.contains("Permission denied") {
        "; /dev/net/tun must be readable and writable by everyone, as udev makes it on most \
         distributions (crw-rw-rw-): `sudo chmod 0666 /dev/net/tun`"
    } else if text.contains("Operation not permitted") {
        "; the board's network namespace lacks CAP_NET_ADMIN"
    } else if text.contains("No such file") || text.contains("No such device") {
        "; this kernel has no TUN/TAP (modprobe tun, or in a container add /dev/net/tun)"
    } else {
        ""
    };
    anyhow!("{what}: {text}{hint}")
}

// ---------------------------------------------------------------------------------------------
// Port forwards
// ---------------------------------------------------------------------------------------------

/// How long a proxied connection keeps trying to reach a guest that is not listening yet.
const CONNECT_PATIENCE: Duration = Duration::from_secs(15);

/// A `-p` listener on 127.0.0.1:`host`, bound in the namespace the caller is in now (so a busy
/// port fails the run before the board boots, and the port stays reachable from the caller's
/// namespace after [`isolate`]).
pub struct Listener {
    pub host: u16,
    listener: TcpListener,
}

impl Listener {
    /// `what` says what the port is for, in the error.
    pub fn bind(host: u16, what: &str) -> Result<Listener> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, host))
            .with_context(|| format!("listening on 127.0.0.1:{host} for {what}"))?;
        Ok(Listener { host, listener })
    }
}

/// 127.0.0.1:`host` → `guest`, for as long as this value lives.
pub struct Forward {
    pub host: u16,
    pub guest: SocketAddrV4,
    stop: Arc<AtomicBool>,
    /// the listening socket, shut down on drop to wake the accept loop
    socket: TcpListener,
    thread: Option<JoinHandle<()>>,
}

impl Forward {
    /// Accepts on `listener`; connections wait until `ready` is set, then go to `guest`,
    /// reached from the namespace this process is in now.
    pub fn start(
        listener: Listener,
        guest: SocketAddrV4,
        ready: Arc<AtomicBool>,
    ) -> Result<Forward> {
        let Listener { host, listener } = listener;
        let socket = listener.try_clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("forward-{host}"))
            .spawn(move || {
                for client in listener.incoming() {
                    if st.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let (ready, stop) = (ready.clone(), st.clone());
                    std::thread::spawn(move || proxy(client, guest, &ready, &stop));
                }
            })?;
        Ok(Forward {
            host,
            guest,
            stop,
            socket,
            thread: Some(thread),
        })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // wakes the accept loop (a connection to 127.0.0.1 would land in this namespace's own
        // loopback, not the listener's)
        let _ =
            nix::sys::socket::shutdown(self.socket.as_raw_fd(), nix::sys::socket::Shutdown::Read);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy(client: TcpStream, guest: SocketAddrV4, ready: &AtomicBool, stop: &AtomicBool) {
    let t = Instant::now();
    while !ready.load(Ordering::Relaxed) {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let upstream = loop {
        match TcpStream::connect_timeout(&guest.into(), Duration::from_secs(3)) {
            Ok(s) => break s,
            Err(_) if t.elapsed() < CONNECT_PATIENCE && !stop.load(Ordering::Relaxed) => {
                std::thread::sleep(Duration::from_millis(250))
            }
            Err(_) => return, // dropping `client` closes it: the client sees EOF
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || pump(c2, u2));
    pump(upstream, client);
    let _ = up.join();
}

/// Copies `from` to `to` until EOF, then half-closes `to`, so either side can shut down its
/// writing and still read the answer (as `nc -N` and echo tests do).
fn pump(mut from: TcpStream, to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut to_w = &to;
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if std::io::Write::write_all(&mut to_w, &buf[..n]).is_err() {
                    let _ = from.shutdown(Shutdown::Both);
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The address in an `--ipv4=A.B.C.D/N` (or `--ipv4 A.B.C.D/N`) boot argument.
pub fn static_ipv4(extra: &str) -> Option<Ipv4Addr> {
    let mut words = extra.split_whitespace();
    while let Some(w) = words.next() {
        let v = if let Some(v) = w.strip_prefix("--ipv4=") {
            v
        } else if w == "--ipv4" {
            words.next()?
        } else {
            continue;
        };
        return v.split('/').next()?.parse().ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_macs_follow_the_vif_order() {
        assert_eq!(lease_ip(0), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(lease_ip(3), Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(default_mac(0), "00:16:3e:75:6e:02");
        assert_eq!(default_mac(14), "00:16:3e:75:6e:10");
    }

    #[test]
    fn finds_a_static_address_in_boot_arguments() {
        assert_eq!(
            static_ipv4("--ipv4=10.0.0.9/24 --ipv4-gateway=10.0.0.1"),
            Some(Ipv4Addr::new(10, 0, 0, 9))
        );
        assert_eq!(
            static_ipv4("--port=7 --ipv4 10.0.0.7/24"),
            Some(Ipv4Addr::new(10, 0, 0, 7))
        );
        assert_eq!(static_ipv4("--ipv4-gateway=10.0.0.1"), None);
        assert_eq!(static_ipv4(""), None);
    }

    #[test]
    fn forward_proxies_both_ways_and_half_closes() {
        // a tiny upstream that echoes until EOF, then says "bye"
        let up = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = up.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = up.accept().unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            std::io::Write::write_all(&mut s, &all).unwrap();
            std::io::Write::write_all(&mut s, b"bye").unwrap();
        });
        let free = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = free.local_addr().unwrap().port();
        drop(free);
        let ready = Arc::new(AtomicBool::new(true));
        let l = Listener::bind(host, "the test").unwrap();
        let fwd = Forward::start(l, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port), ready).unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", host)).unwrap();
        std::io::Write::write_all(&mut c, b"hello").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hellobye");
        drop(fwd);
        // dropped means closed
        assert!(TcpStream::connect(("127.0.0.1", host)).is_err());
    }

    #[test]
    fn a_refused_user_namespace_names_its_sysctl() {
        let off =
            |path: &'static str, v: &'static str| move |p: &str| (p == path).then(|| v.to_string());
        let e = nix::errno::Errno::EPERM;
        let m = userns_refused(e, &off("/proc/sys/kernel/unprivileged_userns_clone", "0"));
        assert!(
            m.contains("kernel.unprivileged_userns_clone is 0")
                && m.contains("sysctl -w kernel.unprivileged_userns_clone=1"),
            "{m}"
        );
        let m = userns_refused(e, &off("/proc/sys/user/max_user_namespaces", "0"));
        assert!(m.contains("user.max_user_namespaces is 0"), "{m}");
        let m = userns_refused(
            e,
            &off(
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
                "1",
            ),
        );
        assert!(
            m.contains("kernel.apparmor_restrict_unprivileged_userns=0"),
            "{m}"
        );
        let m = userns_refused(nix::errno::Errno::ENOSPC, &|_| None);
        assert!(m.contains("used up"), "{m}");
        let m = userns_refused(e, &|_| None);
        assert!(
            m.contains("kernel.unprivileged_userns_clone, user.max_user_namespaces"),
            "{m}"
        );
    }
}
