//! A Linux TAP device as a [`Netif`], so the direct stack can be tested without Xen.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::string::String;
use std::task::{Context, Poll};
use std::vec;
use std::vec::Vec;

use async_io::Async;
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::device::netif;
use crate::BootArgs;

/// Ethernet header + 1500-byte payload.
const MTU: usize = 1514;
/// `_IOW('T', 202, int)` from <linux/if_tun.h>.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// A TAP interface opened through `/dev/net/tun`.
#[derive(Debug)]
pub struct Tap {
    file: Async<File>,
    mac: [u8; 6],
    name: String,
}

impl Tap {
    /// Opens the TAP interface named by the boot argument `--tap` (default `tap<index>`),
    /// creating it if it does not exist (that needs CAP_NET_ADMIN). The host side must be up and
    /// addressed for traffic to flow. The MAC is `mac`, else a locally administered one.
    pub fn open(index: u32, mac: Option<[u8; 6]>, boot_args: &BootArgs) -> io::Result<Tap> {
        let name = boot_args
            .get("tap")
            .map(String::from)
            .unwrap_or_else(|| std::format!("tap{index}"));
        if name.is_empty() || name.len() > 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                std::format!("bad TAP interface name `{name}`"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    std::format!("opening /dev/net/tun for TAP `{name}`: {e}"),
                )
            })?;
        // struct ifreq: char ifr_name[16]; then a union whose first member is short ifr_flags.
        let mut ifr = [0u8; 40];
        ifr[..name.len()].copy_from_slice(name.as_bytes());
        ifr[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq` (40 bytes on Linux) through the
        // pointer; `ifr` is a live, writable 40-byte buffer for the duration of the call, and
        // the fd is open for as long as `file` lives.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, ifr.as_mut_ptr()) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                std::format!("attaching to TAP `{name}` (TUNSETIFF): {e}"),
            ));
        }
        let mac = mac.unwrap_or([0x02, 0x75, 0x6e, 0x69, 0x00, index as u8]);
        Ok(Tap {
            file: Async::new(file)?,
            mac,
            name,
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl netif::Netif for Tap {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Writes to a TAP never block for long; only reception needs a wake-up.
        self.file.poll_readable(cx).map(|_| ())
    }
}

/// A received frame.
pub struct RxToken(Vec<u8>);

/// Permission to send one frame.
pub struct TxToken<'a>(&'a File);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        // A TAP write takes the whole frame or fails; a failure is a dropped packet, which TCP
        // recovers from, so it is not an error the stack can act on.
        let _ = (&*self.0).write(&buf);
        r
    }
}

impl Device for Tap {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let mut buf = vec![0u8; MTU];
        match self.file.get_ref().read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Some((RxToken(buf), TxToken(self.file.get_ref())))
            }
            Err(_) => None,
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(self.file.get_ref()))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}
