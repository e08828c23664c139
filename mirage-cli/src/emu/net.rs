//! The board's network, host side.
//!
//! The emulated board has one LAN, 10.0.0.0/24, on dom0's bridge `xenbr0`:
//! - dom0 is 10.0.0.1 and runs udhcpd there, with a static lease for every guest vif
//!   (10.0.0.2, .3, … in the order of the run's vifs; other MACs get .100–.199);
//! - the host joins it through a TAP device, [`HOST_IP`], that QEMU gives dom0 as a
//!   virtio-net NIC and dom0 enslaves to the bridge. So host tools reach a guest at its
//!   address directly, and `uni run -p HOST:GUEST` adds [`Forward`]s: a TCP proxy from
//!   127.0.0.1:HOST to the guest's port, in the `uni` process.
//!
//! The TAP device is created here (`/dev/net/tun`, which needs root or CAP_NET_ADMIN) and not
//! persistent: it exists while this process or QEMU holds its descriptor, so no run leaves it
//! behind, however it ends.

use std::io::Read;
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// dom0 on the board's bridge.
pub const DOM0_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The host's end of the TAP device.
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
pub const PREFIX_LEN: u8 = 24;
/// The MAC of dom0's virtio NIC (the host's tap is the other end of the wire).
pub const DOM0_NIC_MAC: &str = "52:54:00:75:6e:01";

/// The address the board's DHCP server gives the `index`th vif of a run (0-based).
pub fn lease_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 2 + index as u8)
}

/// The MAC the board gives the `index`th vif of a run when its xl file names none:
/// Xen's OUI 00:16:3e, then "un", then 2 + index.
pub fn default_mac(index: usize) -> String {
    format!("00:16:3e:75:6e:{:02x}", 2 + index)
}

/// A non-persistent TAP device: it goes away when the last descriptor (ours, QEMU's) closes.
#[derive(Debug)]
pub struct Tap {
    pub name: String,
    fd: OwnedFd,
}

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> IfReq {
        let mut r = IfReq {
            name: [0; 16],
            data: [0; 24],
        };
        r.name[..name.len()].copy_from_slice(name.as_bytes());
        r
    }
    fn set_flags(&mut self, flags: i16) {
        self.data[..2].copy_from_slice(&flags.to_ne_bytes());
    }
    fn flags(&self) -> i16 {
        i16::from_ne_bytes([self.data[0], self.data[1]])
    }
    fn set_ipv4(&mut self, ip: Ipv4Addr) {
        // struct sockaddr_in: family (host order), port (0), address (network order)
        self.data[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        self.data[2..4].fill(0);
        self.data[4..8].copy_from_slice(&ip.octets());
        self.data[8..16].fill(0);
    }
}

impl Tap {
    /// Creates the TAP device `name` (at most 15 bytes) with the host's address on the board's
    /// LAN, up.
    pub fn create(name: &str) -> Result<Tap> {
        assert!(name.len() < 16, "interface names are at most 15 bytes");
        // SAFETY: a plain open(2) of a NUL-terminated path; the result is checked.
        let raw = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(refused(
                std::io::Error::last_os_error(),
                "opening /dev/net/tun",
            ));
        }
        // SAFETY: `raw` is a descriptor we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = IfReq::new(name);
        req.set_flags((libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16);
        // SAFETY: TUNSETIFF reads and writes a struct ifreq, which `req` is (40 bytes).
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut req) } < 0 {
            return Err(refused(
                std::io::Error::last_os_error(),
                &format!("creating the TAP device {name}"),
            ));
        }
        let tap = Tap {
            name: name.to_string(),
            fd,
        };
        // fewer strangers on the board's LAN: no IPv6 router solicitations, MLD, …
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
        tap.configure()
            .with_context(|| format!("configuring the TAP device {name}"))?;
        Ok(tap)
    }

    fn configure(&self) -> std::io::Result<()> {
        // SAFETY: socket(2); the result is checked and owned below.
        let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if s < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `s` was just opened and is ours.
        let s = unsafe { OwnedFd::from_raw_fd(s) };
        let ioctl = |op: libc::c_ulong, req: &mut IfReq| {
            // SAFETY: the SIOC[GS]IF* requests read or write one struct ifreq, which `req` is.
            if unsafe { libc::ioctl(s.as_raw_fd(), op as _, req as *mut IfReq) } < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        let mut req = IfReq::new(&self.name);
        req.set_ipv4(HOST_IP);
        ioctl(libc::SIOCSIFADDR, &mut req)?;
        let mask = u32::MAX << (32 - PREFIX_LEN);
        req.set_ipv4(Ipv4Addr::from(mask));
        ioctl(libc::SIOCSIFNETMASK, &mut req)?;
        let mut req = IfReq::new(&self.name);
        ioctl(libc::SIOCGIFFLAGS, &mut req)?;
        req.set_flags(req.flags() | libc::IFF_UP as i16);
        ioctl(libc::SIOCSIFFLAGS, &mut req)
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn refused(e: std::io::Error, what: &str) -> anyhow::Error {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "; the board's network needs root or CAP_NET_ADMIN (run as root, or \
             `setcap cap_net_admin+ep` on uni)"
        }
        Some(libc::ENOENT) | Some(libc::ENODEV) => {
            "; this kernel has no TUN/TAP (modprobe tun, or in a container add /dev/net/tun)"
        }
        Some(libc::EBUSY) => "; another process has a device of that name",
        _ => "",
    };
    anyhow::anyhow!("{what}: {e}{hint}")
}

// ---------------------------------------------------------------------------------------------
// Port forwards
// ---------------------------------------------------------------------------------------------

/// How long a proxied connection keeps trying to reach a guest that is not listening yet.
const CONNECT_PATIENCE: Duration = Duration::from_secs(15);

/// 127.0.0.1:`host` → `guest`:`port`, for as long as this value lives.
pub struct Forward {
    pub host: u16,
    pub guest: SocketAddrV4,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Forward {
    /// Listens on 127.0.0.1:`host` now (so a busy port fails the run before the board boots);
    /// connections wait until `ready` is set, then go to `guest` through the device `device`.
    pub fn start(
        host: u16,
        guest: SocketAddrV4,
        device: Option<String>,
        ready: Arc<AtomicBool>,
    ) -> Result<Forward> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, host)).with_context(|| {
            format!(
                "listening on 127.0.0.1:{host} for `-p {host}:{}`",
                guest.port()
            )
        })?;
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
                    let (ready, device, stop) = (ready.clone(), device.clone(), st.clone());
                    std::thread::spawn(move || {
                        proxy(client, guest, device.as_deref(), &ready, &stop)
                    });
                }
            })?;
        Ok(Forward {
            host,
            guest,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // wake the accept loop
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.host));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy(
    client: TcpStream,
    guest: SocketAddrV4,
    device: Option<&str>,
    ready: &AtomicBool,
    stop: &AtomicBool,
) {
    let t = Instant::now();
    while !ready.load(Ordering::Relaxed) {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let upstream = loop {
        match connect(guest, device, Duration::from_secs(3)) {
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

/// A TCP connection to `to` that leaves through `device` (when given), so that it reaches this
/// run's board even while another run's tap serves the same 10.0.0.0/24.
fn connect(
    to: SocketAddrV4,
    device: Option<&str>,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    // SAFETY: socket(2); the result is checked and owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if let Some(dev) = device {
        // SAFETY: SO_BINDTODEVICE takes the interface name and its length. Without privileges
        // it may fail; the connection then follows the routing table.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                dev.as_ptr().cast(),
                dev.len() as libc::socklen_t,
            );
        }
    }
    // a blocking connect(2) gives up after SO_SNDTIMEO
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as _,
        tv_usec: timeout.subsec_micros() as _,
    };
    // SAFETY: SO_SNDTIMEO takes a struct timeval.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: to.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(to.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sa` is a sockaddr_in of the size passed.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let stream = TcpStream::from(fd);
    stream.set_write_timeout(None)?;
    Ok(stream)
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
    fn ifreq_is_the_kernels_size() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
        let mut r = IfReq::new("uni1");
        r.set_ipv4(Ipv4Addr::new(10, 0, 0, 254));
        assert_eq!(&r.data[4..8], &[10, 0, 0, 254]);
        assert_eq!(&r.name[..5], b"uni1\0");
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
        let fwd = Forward::start(
            host,
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
            None,
            ready,
        )
        .unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", host)).unwrap();
        std::io::Write::write_all(&mut c, b"hello").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hellobye");
        drop(fwd);
    }
}
