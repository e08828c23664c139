//! The Xen network frontend: a [`Netif`](crate::device::netif::Netif) over netback's TX and RX
//! rings (the wire formats are [`xen_wire::netif`](crate::xen_wire::netif)).
//!
//! # Memory
//! Each ring is one granted page. Every TX id and every RX id owns one buffer page, granted to
//! the backend once, at connect (read-only for TX, writable for RX), and reused: a TX id's page is
//! free again when its response arrives; an RX id's page is re-posted under the same id once the
//! stack has consumed the frame. The rings have 256 slots; the ids (and pages) per side are sized
//! to the heap ([`rings::buffers_for_heap`]): 256 from a 16 MiB heap up (2 + 256 + 256 pages,
//! about 2 MiB, and 514 grant references per interface), 32 to 256 below (44 for static-website
//! at 4 MiB).
//!
//! # Notification
//! One event channel serves both rings. Requests are published with the `req_event` rule (notify
//! only if the backend asked). Before the stack sleeps,
//! [`poll_ready`](netif::Netif::poll_ready) sets the RX `rsp_event` to the next response (and the
//! TX one too when the TX ring is full), checks the rings once more, and only then waits on the
//! event channel. TX completions are otherwise collected lazily, so a busy sender takes no TX
//! interrupts.
//!
//! # Files
//! This module is the interface (the smoltcp device, its tokens, the connect and the backend
//! watch); [`rings`] holds one connection's rings and buffers, [`error`] the error and the
//! counters. The xenbus handshake steps are [`xenbus::Frontend`](super::xenbus::Frontend)'s and the
//! granted pages [`granted`](super::granted)'s, for any split driver.
//!
//! # Back-pressure and bad input
//! A full TX ring makes `transmit` (and `receive`, which must hand out a TX token too) return
//! `None`; `poll_ready` wakes when a slot frees up. Responses with unknown or repeated ids, error
//! statuses, impossible lengths or fragment flags are counted ([`NetifStats`]) and skipped;
//! impossible ring indices stop the interface (reported once on the console), never the guest.
//!
//! # Backend restarts
//! A task watches the backend's `state`. When it goes to Closing or Closed the link goes down
//! (transmit and receive return `None`), the frontend goes to Closed and then Initialising, which
//! asks netback to prepare for a reconnect; when the backend is back in InitWait the handshake
//! runs again with fresh rings, and the link comes back up.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::events::{EventWait, Port};
use super::granted::PAGE_SIZE;
use super::time;
use super::xenbus::{xs_err, Frontend, XenbusError};
use super::xenstore::Xenstore;
use crate::device::{netif, Xenstore as _, XenstoreError};
use crate::xen_wire::netif::{parse_mac, TxRequest, XenbusState};
use crate::BootArgs;

mod error;
mod rings;

pub use error::{NetfrontError, NetifCounters, NetifStats};
use rings::{push_requests, Broken, Rings, RxSide, TxSide, TX_STALL_NS};

/// Every interface opened since boot, with its counters: [`totals`].
static INTERFACES: crate::metrics::Devices<NetifCounters> = crate::metrics::Devices::new();

/// The counters of every interface opened since boot, summed when read (for
/// [`crate::metrics`]): the hot path only adds to its own interface's counters.
pub fn totals() -> NetifStats {
    let mut t = NetifStats::default();
    INTERFACES.each(|c| t += c.get());
    t
}

/// Ethernet header + 1500-byte payload.
const MTU: usize = 1514;

// ---------------------------------------------------------------------------------------------
// The xenstore handshake (the generic steps are `xenbus::Frontend`'s)
// ---------------------------------------------------------------------------------------------

struct Vif {
    index: u32,
    dev: Frontend,
}

/// Link state shared between the interface and its backend-watching task.
struct Link {
    up: Cell<bool>,
    /// Rings of a reconnect, for the interface to adopt.
    fresh: RefCell<Option<Rings>>,
    waker: RefCell<Option<Waker>>,
    /// This interface's counters, also in [`INTERFACES`].
    stats: &'static NetifCounters,
}

impl Link {
    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// The handshake: fresh rings, their details in one transaction, then Connected on both sides.
async fn connect(vif: &Vif, stats: &NetifCounters) -> Result<Rings, NetfrontError> {
    let dev = &vif.dev;
    dev.wait_backend(XenbusState::InitWait).await?;
    let rx_copy = format!("{}/feature-rx-copy", dev.backend);
    match Xenstore::new().read(&rx_copy).await {
        Ok(v) if v.trim() == "1" => {}
        Ok(_) | Err(XenstoreError::NoEntry) => {
            return Err(NetfrontError::NoRxCopy(dev.backend.clone()))
        }
        Err(e) => return Err(xs_err(format!("reading {rx_copy}"))(e).into()),
    }
    let rings = Rings::new(dev.backend_id, stats)?;
    let values = [
        ("tx-ring-ref", format!("{}", rings.tx.ring_page.gref().0)),
        ("rx-ring-ref", format!("{}", rings.rx.ring_page.gref().0)),
        ("event-channel", format!("{}", rings.port.0)),
        ("request-rx-copy", String::from("1")),
        ("feature-rx-notify", String::from("1")),
        ("feature-no-csum-offload", String::from("1")),
        ("feature-sg", String::from("0")),
        ("feature-gso-tcpv4", String::from("0")),
    ];
    dev.publish("ring details", &values).await?;
    dev.set_state(XenbusState::Connected).await?;
    dev.wait_backend(XenbusState::Connected).await?;
    stats.connects.inc();
    Ok(rings)
}

/// Follows the backend's state for the interface's lifetime (see the module docs).
async fn monitor(vif: Rc<Vif>, link: Rc<Link>) {
    let xs = Xenstore::new();
    let path = vif.dev.backend_state_path();
    let fe_state = vif.dev.state_path();
    let name = format!("vif{}", vif.index);
    let Ok(watch) = xs.watch(&path).await else {
        super::diag(&format!(
            "netfront: {name}: cannot watch {path}; backend restarts will not be noticed"
        ));
        return;
    };
    loop {
        if Rc::strong_count(&link) == 1 {
            break; // the interface is gone
        }
        if watch.changed().await.is_err() {
            continue;
        }
        let state = match vif.dev.backend_state().await {
            Ok(s) => s,
            Err(XenstoreError::NoEntry) => {
                if link.up.replace(false) {
                    link.wake();
                }
                super::diag(&format!(
                    "netfront: {name}: backend {} was removed; link down for good",
                    vif.dev.backend
                ));
                break;
            }
            Err(_) => continue,
        };
        match state {
            XenbusState::Closing | XenbusState::Closed => {
                if link.up.replace(false) {
                    super::diag(&format!(
                        "netfront: {name}: backend went to {state}; link down, will reconnect"
                    ));
                    link.wake();
                }
                let _ = xs.write(&fe_state, XenbusState::Closed.value()).await;
                if state == XenbusState::Closed {
                    // Netback: "prepare for reconnect" when the frontend is Initialising.
                    let _ = xs.write(&fe_state, XenbusState::Initialising.value()).await;
                }
            }
            XenbusState::InitWait if !link.up.get() => match connect(&vif, link.stats).await {
                Ok(rings) => {
                    *link.fresh.borrow_mut() = Some(rings);
                    link.up.set(true);
                    super::diag(&format!("netfront: {name}: reconnected; link up"));
                    link.wake();
                }
                Err(e) => super::diag(&format!("netfront: {name}: reconnect failed: {e}")),
            },
            _ => {}
        }
    }
    let _ = watch.cancel().await;
}

// ---------------------------------------------------------------------------------------------
// The interface
// ---------------------------------------------------------------------------------------------

/// A Xen virtual network interface (netfront), as a smoltcp device.
pub struct Netif {
    mac: [u8; 6],
    rings: Option<Rings>,
    link: Rc<Link>,
    wait: Option<EventWait>,
    /// With tracing: the vif's index, and its counters when the stack last went idle, whose
    /// differences are the batches [`trace_batches`] records.
    #[cfg(feature = "trace")]
    traced: (u32, NetifStats),
}

/// Records what the stack did since it last went idle (`poll_ready`): one event per batch,
/// from the counters' differences, so nothing is added per frame.
#[cfg(feature = "trace")]
fn trace_batches(traced: &mut (u32, NetifStats), now: NetifStats) {
    use crate::trace::{device, Kind, DEV_NETFRONT};
    let (index, was) = *traced;
    // (kind, count now, count then, the event's second value)
    let batches = [
        (
            Kind::NetRxBatch,
            now.rx_frames,
            was.rx_frames,
            now.rx_bytes.wrapping_sub(was.rx_bytes),
        ),
        (
            Kind::NetTxBatch,
            now.tx_frames,
            was.tx_frames,
            now.notifies.wrapping_sub(was.notifies),
        ),
        (Kind::NetTxFull, now.tx_full, was.tx_full, 0),
    ];
    for (kind, n, then, value) in batches {
        if n != then {
            device(
                DEV_NETFRONT,
                index,
                kind,
                n.wrapping_sub(then) as u32,
                value,
            );
        }
    }
    traced.1 = now;
}

impl fmt::Debug for Netif {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netif")
            .field("mac", &self.mac)
            .field("up", &self.link.up.get())
            .field("stats", &self.link.stats.get())
            .finish()
    }
}

impl Netif {
    /// Connects to the backend of this domain's vif `index` (`device/vif/<index>`), with MAC
    /// `mac`, or the toolstack's (`device/vif/<index>/mac`) when `None`. Completes once the
    /// backend is Connected, with every RX buffer posted.
    pub async fn open(
        index: u32,
        mac: Option<[u8; 6]>,
        boot_args: &BootArgs,
    ) -> Result<Netif, NetfrontError> {
        let _ = boot_args;
        let dev = match Frontend::find(format!("device/vif/{index}")).await {
            Ok(d) => d,
            Err(XenbusError::NoDevice) => return Err(NetfrontError::NoSuchVif(index)),
            Err(e) => return Err(e.into()),
        };
        let mac = match mac {
            Some(m) => m,
            None => {
                let path = format!("{}/mac", dev.frontend);
                let v = Xenstore::new()
                    .read(&path)
                    .await
                    .map_err(xs_err(format!("reading {path}")))?;
                parse_mac(&v).ok_or(NetfrontError::BadValue { path, value: v })?
            }
        };
        let vif = Rc::new(Vif { index, dev });
        let link = Rc::new(Link {
            up: Cell::new(true),
            fresh: RefCell::new(None),
            waker: RefCell::new(None),
            stats: INTERFACES.add(),
        });
        let rings = connect(&vif, link.stats).await?;
        super::boot_milestone(&format!("vif {index} connected"));
        super::spawn(monitor(vif, link.clone()));
        Ok(Netif {
            mac,
            rings: Some(rings),
            link,
            wait: None,
            #[cfg(feature = "trace")]
            traced: (index, NetifStats::default()),
        })
    }

    /// Counters since the interface was opened.
    pub fn stats(&self) -> NetifStats {
        self.link.stats.get()
    }

    /// Whether the backend is connected.
    pub fn is_up(&self) -> bool {
        self.link.up.get() && self.rings.as_ref().is_some_and(|r| !r.broken)
    }
}

/// The rings, if the link is up: adopts the rings of a reconnect first. (A function over the
/// fields, so that callers can borrow the stats in `link` alongside.)
fn active<'a>(
    rings: &'a mut Option<Rings>,
    link: &Link,
    wait: &mut Option<EventWait>,
) -> Option<&'a mut Rings> {
    if let Some(fresh) = link.fresh.borrow_mut().take() {
        *wait = None;
        *rings = Some(fresh); // the old rings' grants are revoked (or leaked) here
    }
    if !link.up.get() {
        return None;
    }
    rings.as_mut().filter(|r| !r.broken)
}

impl Drop for Netif {
    fn drop(&mut self) {
        self.link.waker.borrow_mut().take();
    }
}

impl netif::Netif for Netif {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        #[cfg(feature = "trace")]
        trace_batches(&mut self.traced, self.link.stats.get());
        let Netif {
            rings, link, wait, ..
        } = self;
        *wait = None;
        *link.waker.borrow_mut() = Some(cx.waker().clone());
        let stats = &link.stats;
        let Some(r) = active(rings, link, wait) else {
            return Poll::Pending; // the monitor wakes us when the link comes back
        };
        if r.tx.reap(stats).is_err() {
            r.broken = true;
            return Poll::Pending;
        }
        if r.tx.ids.available() > 0 {
            if r.tx.blocked {
                r.tx.blocked = false;
                return Poll::Ready(());
            }
            // RING_FINAL_CHECK_FOR_RESPONSES on RX.
            r.rx.ring.request_event(r.rx.ring_page.mem());
            match r.rx.pending() {
                Ok(0) => {}
                Ok(_) => return Poll::Ready(()),
                Err(Broken) => {
                    r.broken = true;
                    return Poll::Pending;
                }
            }
        } else {
            // Full: ask for an event at the next TX completion, then look again.
            r.tx.blocked = true;
            r.tx.ring.request_event(r.tx.ring_page.mem());
            if r.tx.reap(stats).is_err() {
                r.broken = true;
                return Poll::Pending;
            }
            if r.tx.ids.available() > 0 {
                r.tx.blocked = false;
                return Poll::Ready(());
            }
        }
        let mut w = r.port.wait();
        // Registers the waker; an EventWait is always Pending on its first poll.
        let _ = Pin::new(&mut w).poll(cx);
        *wait = Some(w);
        Poll::Pending
    }
}

/// A received frame, in its RX buffer; the buffer is re-posted when the token is dropped.
pub struct RxToken<'a> {
    rx: &'a mut RxSide,
    port: Port,
    stats: &'a NetifCounters,
    id: u16,
    range: core::ops::Range<usize>,
}

/// Permission to send one frame: a free TX id.
pub struct TxToken<'a> {
    tx: &'a mut TxSide,
    port: Port,
    stats: &'a NetifCounters,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let buf = self.rx.bufs[usize::from(self.id)].mem();
        // SAFETY: the backend wrote the frame before publishing the response (read after a
        // barrier) and cannot write the page again until it is re-posted, in `drop`, after the
        // slice is gone. (`bytes` checks the range, which `RxResponse::frame` bounded by the page.)
        let data = unsafe { buf.bytes(self.range.start, self.range.len()) };
        self.stats.rx_frames.inc();
        self.stats.rx_bytes.add(data.len() as u64);
        f(data)
    }
}

impl Drop for RxToken<'_> {
    fn drop(&mut self) {
        self.rx.post(self.id);
        push_requests(&self.rx.ring_page, &mut self.rx.ring, self.port, self.stats);
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let id = if len <= PAGE_SIZE && len <= usize::from(u16::MAX) {
            self.tx.ids.alloc()
        } else {
            None
        };
        let Some(id) = id else {
            // Longer than a page (the stack exceeded the MTU), or no id (cannot happen: the
            // token was only handed out with one free). Let the stack build it, and count it.
            self.stats.tx_oversize.inc();
            return f(&mut vec![0u8; len]);
        };
        let buf = &self.tx.bufs[usize::from(id)];
        // SAFETY: the id was free, so the backend is done with the page (its response was read)
        // and nothing else refers to it until the request below hands it over, after the slice
        // is gone. (`bytes_mut` checks that `len` fits in the page.)
        let data = unsafe { buf.mem().bytes_mut(0, len) };
        data.fill(0);
        let r = f(data);
        let req = TxRequest {
            gref: buf.gref().0,
            offset: 0,
            flags: 0,
            id,
            size: len as u16,
        };
        self.tx.ring.put_tx_request(self.tx.ring_page.mem(), &req);
        // Requests the backend had not answered before this one.
        let waiting = self
            .tx
            .ring
            .req_published
            .wrapping_sub(self.tx.ring.rsp_cons);
        let now = time::now_ns();
        if waiting == 0 {
            self.tx.last_progress = now;
        }
        push_requests(&self.tx.ring_page, &mut self.tx.ring, self.port, self.stats);
        if waiting > 0 && now.saturating_sub(self.tx.last_progress) > TX_STALL_NS {
            self.port.notify();
            self.stats.tx_kicks.inc();
        }
        self.stats.tx_frames.inc();
        self.stats.tx_bytes.add(len as u64);
        r
    }
}

impl Device for Netif {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let Netif {
            rings, link, wait, ..
        } = self;
        let r = active(rings, link, wait)?;
        let stats: &NetifCounters = link.stats;
        if r.tx.reap(stats).is_err() {
            r.broken = true;
            return None;
        }
        if r.tx.ids.available() == 0 {
            // The reply could not be sent: leave the frame in the ring until TX frees up.
            r.tx.blocked = true;
            return None;
        }
        let port = r.port;
        match r.rx.next(port, stats) {
            Ok(Some((id, range))) => Some((
                RxToken {
                    rx: &mut r.rx,
                    port,
                    stats,
                    id,
                    range,
                },
                TxToken {
                    tx: &mut r.tx,
                    port,
                    stats,
                },
            )),
            Ok(None) => None,
            Err(Broken) => {
                r.broken = true;
                None
            }
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        let Netif {
            rings, link, wait, ..
        } = self;
        let r = active(rings, link, wait)?;
        let stats: &NetifCounters = link.stats;
        if r.tx.reap(stats).is_err() {
            r.broken = true;
            return None;
        }
        if r.tx.ids.available() == 0 {
            r.tx.blocked = true;
            stats.tx_full.inc();
            return None;
        }
        let port = r.port;
        Some(TxToken {
            tx: &mut r.tx,
            port,
            stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}
