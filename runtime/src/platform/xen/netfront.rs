//! The Xen network frontend: a [`Netif`](crate::device::netif::Netif) over netback's TX and RX
//! rings (the wire formats are [`xen_wire::netif`](crate::xen_wire::netif)).
//!
//! # Memory
//! Each ring is one granted page. Every TX slot id and every RX slot id owns one buffer page,
//! granted to the backend once, at connect (read-only for TX, writable for RX), and reused: a TX
//! id's page is free again when its response arrives; an RX id's page is re-posted under the same
//! id once the stack has consumed the frame. That is 2 + 256 + 256 pages (about 2 MiB) and 514
//! grant references per interface.
//!
//! # Notification
//! One event channel serves both rings. Requests are published with the `req_event` rule (notify
//! only if the backend asked). Before the stack sleeps, [`poll_ready`](Netif::poll_ready) sets
//! the RX `rsp_event` to the next response (and the TX one too when the TX ring is full), checks
//! the rings once more, and only then waits on the event channel. TX completions are otherwise
//! collected lazily, so a busy sender takes no TX interrupts.
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
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::future::{poll_fn, Future};
use core::mem::ManuallyDrop;
use core::pin::{pin, Pin};
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::events::{EventWait, Port};
use super::grant::{GrantError, GrantTable};
use super::hypercall::XenError;
use super::xenstore::Xenstore;
use super::{arch, time};
use crate::device::{netif, Xenstore as _, XenstoreError};
use crate::xen_wire::grant::GrantRef;
use crate::xen_wire::netif::{
    field, need_notify, parse_mac, slot_offset, status, FrontRing, IdPool, RxRequest, RxResponse,
    TxRequest, TxResponse, XenbusState, PAGE_SIZE, RX_RING_SIZE, RX_SLOT_LEN, TX_RING_SIZE,
    TX_SLOT_LEN,
};
use crate::BootArgs;

/// Ethernet header + 1500-byte payload.
const MTU: usize = 1514;
/// How long the backend gets to reach each handshake state.
const HANDSHAKE_TIMEOUT_NS: u64 = 30_000_000_000;

// ---------------------------------------------------------------------------------------------
// Errors and statistics
// ---------------------------------------------------------------------------------------------

/// Why [`Netif::open`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetfrontError {
    /// The domain has no `device/vif/<index>` (no `vif =` line for it in the xl config).
    NoSuchVif(u32),
    /// A xenstore operation failed.
    Xenstore {
        /// What was being done.
        what: String,
        /// The store's error.
        error: XenstoreError,
    },
    /// A xenstore node holds something unusable.
    BadValue {
        /// The node.
        path: String,
        /// Its value.
        value: String,
    },
    /// The backend does not offer `feature-rx-copy`, the only receive mode this driver speaks.
    NoRxCopy(String),
    /// The backend closed during the handshake.
    BackendClosed {
        /// The backend's xenstore directory.
        backend: String,
        /// The state it went to.
        state: XenbusState,
    },
    /// The backend did not reach the next handshake state in time.
    Timeout {
        /// The backend's xenstore directory.
        backend: String,
        /// The state it was waiting for.
        want: XenbusState,
        /// The state it stayed in.
        state: XenbusState,
    },
    /// Granting a ring or buffer page failed.
    Grant(GrantError),
    /// Allocating the event channel failed.
    EventChannel(XenError),
}

impl fmt::Display for NetfrontError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetfrontError::NoSuchVif(i) => write!(
                f,
                "netfront: no such vif: this domain has no device/vif/{i} (add a `vif = [ 'bridge=xenbr0' ]` line to the xl config)"
            ),
            NetfrontError::Xenstore { what, error } => write!(f, "netfront: {what}: {error}"),
            NetfrontError::BadValue { path, value } => {
                write!(f, "netfront: unusable value {value:?} in xenstore node {path}")
            }
            NetfrontError::NoRxCopy(b) => write!(
                f,
                "netfront: backend {b} does not offer feature-rx-copy (required)"
            ),
            NetfrontError::BackendClosed { backend, state } => write!(
                f,
                "netfront: backend {backend} went to state {state} during the handshake"
            ),
            NetfrontError::Timeout {
                backend,
                want,
                state,
            } => write!(
                f,
                "netfront: backend never connected: {backend} stayed in state {state} for {} s while waiting for {want}",
                HANDSHAKE_TIMEOUT_NS / 1_000_000_000
            ),
            NetfrontError::Grant(e) => write!(f, "netfront: {e}"),
            NetfrontError::EventChannel(e) => {
                write!(f, "netfront: allocating an event channel: {e}")
            }
        }
    }
}

impl core::error::Error for NetfrontError {}

impl From<GrantError> for NetfrontError {
    fn from(e: GrantError) -> Self {
        NetfrontError::Grant(e)
    }
}

/// Counters of one interface since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetifStats {
    /// Frames handed to the stack.
    pub rx_frames: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// RX responses with an error status, no data, an impossible length or fragment flags.
    pub rx_errors: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// TX responses with an error status (`NETIF_RSP_ERROR`/`DROPPED`).
    pub tx_errors: u64,
    /// Frames the stack built longer than a page (not sent).
    pub tx_oversize: u64,
    /// Responses naming an id that had no request in flight.
    pub bad_ids: u64,
    /// Times `transmit` applied back-pressure (TX ring full).
    pub tx_full: u64,
    /// Event-channel notifications sent to the backend.
    pub notifies: u64,
    /// Extra notifications for TX requests left unanswered too long ([`TX_STALL_NS`]).
    pub tx_kicks: u64,
    /// Connections made (1 + reconnects).
    pub connects: u64,
}

// ---------------------------------------------------------------------------------------------
// Pages and rings
// ---------------------------------------------------------------------------------------------

/// One zeroed, page-aligned page of RAM (identity-mapped, so its address is its frame).
struct Page(NonNull<u8>);

const PAGE_LAYOUT: core::alloc::Layout =
    match core::alloc::Layout::from_size_align(PAGE_SIZE, PAGE_SIZE) {
        Ok(l) => l,
        Err(_) => panic!("page layout"),
    };

impl Page {
    fn new() -> Page {
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc::alloc::alloc_zeroed(PAGE_LAYOUT) };
        match NonNull::new(p) {
            Some(p) => Page(p),
            None => alloc::alloc::handle_alloc_error(PAGE_LAYOUT),
        }
    }

    fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }

    fn frame(&self) -> u32 {
        (self.addr() >> 12) as u32
    }

    fn read_u32(&self, offset: usize) -> u32 {
        debug_assert!(offset % 4 == 0 && offset + 4 <= PAGE_SIZE);
        // SAFETY: an aligned word inside this page, which lives as long as `self`; the backend
        // writes it concurrently, hence volatile.
        unsafe { ((self.addr() + offset) as *const u32).read_volatile() }
    }

    fn write_u32(&self, offset: usize, v: u32) {
        debug_assert!(offset % 4 == 0 && offset + 4 <= PAGE_SIZE);
        // SAFETY: as in `read_u32`.
        unsafe { ((self.addr() + offset) as *mut u32).write_volatile(v) }
    }

    fn read_bytes<const N: usize>(&self, offset: usize) -> [u8; N] {
        assert!(offset + N <= PAGE_SIZE);
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: inside this page (checked above); shared with the backend: volatile.
            *b = unsafe { ((self.addr() + offset + i) as *const u8).read_volatile() };
        }
        out
    }

    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= PAGE_SIZE);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: as in `read_bytes`.
            unsafe { ((self.addr() + offset + i) as *mut u8).write_volatile(*b) };
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout; only dropped once no grant to it is
        // live (see `Granted`).
        unsafe { alloc::alloc::dealloc(self.0.as_ptr(), PAGE_LAYOUT) }
    }
}

/// A page granted to the backend. Dropping it revokes the grant; if the backend still has the
/// page mapped, the page is leaked rather than reused.
struct Granted {
    page: ManuallyDrop<Page>,
    gref: GrantRef,
}

impl Granted {
    fn new(backend: u16, readonly: bool) -> Result<Granted, GrantError> {
        let page = Page::new();
        let gref = GrantTable::new().grant_access(backend, page.frame(), readonly)?;
        Ok(Granted {
            page: ManuallyDrop::new(page),
            gref,
        })
    }
}

impl Drop for Granted {
    fn drop(&mut self) {
        if GrantTable::new().end_access(self.gref).is_ok() {
            // SAFETY: the grant is revoked, so nothing else can access the page; dropped once.
            unsafe { ManuallyDrop::drop(&mut self.page) };
        }
    }
}

/// Publishes `ring`'s private requests in `page` and notifies the backend if it asked.
fn push_requests(page: &Page, ring: &mut FrontRing, port: Port, stats: &Cell<NetifStats>) {
    let (old, new) = ring.publish();
    if old == new {
        return;
    }
    arch::dmb(); // the requests (and the data they describe) before the index
    page.write_u32(field::REQ_PROD, new);
    arch::dmb(); // the index before reading req_event
    if need_notify(old, new, page.read_u32(field::REQ_EVENT)) {
        port.notify();
        bump(stats, |s| s.notifies += 1);
    }
}

fn bump(stats: &Cell<NetifStats>, f: impl FnOnce(&mut NetifStats)) {
    let mut s = stats.get();
    f(&mut s);
    stats.set(s);
}

struct TxSide {
    ring_page: Granted,
    ring: FrontRing,
    ids: IdPool,
    bufs: Vec<Granted>,
    /// `transmit` said no: `poll_ready` watches for completions.
    blocked: bool,
    /// When the backend last answered a TX request, or the ring last went from idle to busy
    /// (guest clock, ns): see [`TX_STALL_NS`].
    last_progress: u64,
}

/// TX requests unanswered for this long get an unconditional notification with the next
/// request. The ring protocol only notifies when `req_prod` crosses the backend's `req_event`;
/// if one notification is ever lost, the backend never moves `req_event` again and every later
/// request would wait forever (seen once in CI: a guest whose frames never left, so neither
/// DHCP nor ARP replies reached dom0). A spare notification only makes the backend look at
/// the ring.
const TX_STALL_NS: u64 = 200_000_000;

struct RxSide {
    ring_page: Granted,
    ring: FrontRing,
    /// In flight = posted to the backend.
    ids: IdPool,
    bufs: Vec<Granted>,
}

/// Why a ring stopped.
#[derive(Debug, Clone, Copy)]
struct Broken;

impl TxSide {
    /// Collects TX responses, freeing their ids.
    fn reap(&mut self, stats: &Cell<NetifStats>) -> Result<(), Broken> {
        loop {
            let prod = self.ring_page.page.read_u32(field::RSP_PROD);
            arch::dmb(); // the index before the responses it covers
            let n = self.ring.unconsumed(prod).map_err(|e| {
                super::diag(&format!("netfront: TX ring: {e}; interface stopped"));
                Broken
            })?;
            if n == 0 {
                return Ok(());
            }
            self.last_progress = time::now_ns();
            for _ in 0..n {
                let at = slot_offset(self.ring.rsp_cons, TX_SLOT_LEN, TX_RING_SIZE);
                let raw: [u8; 4] = self.ring_page.page.read_bytes(at);
                self.ring.rsp_cons = self.ring.rsp_cons.wrapping_add(1);
                let Ok(rsp) = TxResponse::parse(&raw) else {
                    continue;
                };
                if rsp.status == status::NULL {
                    continue;
                }
                if self.ids.release(rsp.id).is_err() {
                    bump(stats, |s| s.bad_ids += 1);
                } else if rsp.status != status::OKAY {
                    bump(stats, |s| s.tx_errors += 1);
                }
            }
        }
    }
}

impl RxSide {
    /// Posts buffer `id` to the backend under its own id.
    fn post(&mut self, id: u16) {
        if self.ring.free_requests() == 0 || !self.ids.take(id) {
            return;
        }
        let i = self.ring.next_request();
        let mut raw = [0u8; RX_SLOT_LEN];
        let req = RxRequest {
            id,
            gref: self.bufs[usize::from(id)].gref.0,
        };
        // 8 bytes always fit.
        let _ = req.emit(&mut raw);
        self.ring_page
            .page
            .write_bytes(slot_offset(i, RX_SLOT_LEN, RX_RING_SIZE), &raw);
    }

    /// Responses waiting.
    fn pending(&self) -> Result<u32, Broken> {
        let prod = self.ring_page.page.read_u32(field::RSP_PROD);
        arch::dmb();
        self.ring.unconsumed(prod).map_err(|e| {
            super::diag(&format!("netfront: RX ring: {e}; interface stopped"));
            Broken
        })
    }

    /// The next good frame: (buffer id, byte range). Bad responses are counted, and their
    /// buffers re-posted.
    fn next(
        &mut self,
        port: Port,
        stats: &Cell<NetifStats>,
    ) -> Result<Option<(u16, core::ops::Range<usize>)>, Broken> {
        loop {
            if self.pending()? == 0 {
                return Ok(None);
            }
            let at = slot_offset(self.ring.rsp_cons, RX_SLOT_LEN, RX_RING_SIZE);
            let raw: [u8; RX_SLOT_LEN] = self.ring_page.page.read_bytes(at);
            self.ring.rsp_cons = self.ring.rsp_cons.wrapping_add(1);
            let Ok(rsp) = RxResponse::parse(&raw) else {
                continue;
            };
            if self.ids.release(rsp.id).is_err() {
                bump(stats, |s| s.bad_ids += 1);
                continue;
            }
            match rsp.frame(PAGE_SIZE) {
                Ok(range) => return Ok(Some((rsp.id, range))),
                Err(_) => {
                    bump(stats, |s| s.rx_errors += 1);
                    self.post(rsp.id);
                    push_requests(&self.ring_page.page, &mut self.ring, port, stats);
                }
            }
        }
    }
}

/// One connection's rings, buffers and event channel.
struct Rings {
    tx: TxSide,
    rx: RxSide,
    port: Port,
    broken: bool,
}

impl Drop for Rings {
    fn drop(&mut self) {
        let _ = self.port.close();
    }
}

impl Rings {
    fn new(backend: u16, stats: &Cell<NetifStats>) -> Result<Rings, NetfrontError> {
        let tx_ring = Granted::new(backend, false)?;
        let rx_ring = Granted::new(backend, false)?;
        for page in [&tx_ring.page, &rx_ring.page] {
            // `SHARED_RING_INIT`: events at the first index.
            page.write_u32(field::REQ_EVENT, 1);
            page.write_u32(field::RSP_EVENT, 1);
        }
        let tx_bufs = (0..TX_RING_SIZE)
            .map(|_| Granted::new(backend, true))
            .collect::<Result<Vec<_>, _>>()?;
        let rx_bufs = (0..RX_RING_SIZE)
            .map(|_| Granted::new(backend, false))
            .collect::<Result<Vec<_>, _>>()?;
        let port = Port::alloc_unbound(backend).map_err(NetfrontError::EventChannel)?;
        let mut rings = Rings {
            tx: TxSide {
                ring_page: tx_ring,
                ring: FrontRing::new(TX_RING_SIZE),
                ids: IdPool::new(TX_RING_SIZE as u16),
                bufs: tx_bufs,
                blocked: false,
                last_progress: 0,
            },
            rx: RxSide {
                ring_page: rx_ring,
                ring: FrontRing::new(RX_RING_SIZE),
                ids: IdPool::new(RX_RING_SIZE as u16),
                bufs: rx_bufs,
            },
            port,
            broken: false,
        };
        for id in 0..RX_RING_SIZE as u16 {
            rings.rx.post(id);
        }
        push_requests(&rings.rx.ring_page.page, &mut rings.rx.ring, port, stats);
        Ok(rings)
    }
}

// ---------------------------------------------------------------------------------------------
// The xenstore handshake
// ---------------------------------------------------------------------------------------------

struct Vif {
    index: u32,
    frontend: String,
    backend: String,
    backend_id: u16,
}

/// Link state shared between the interface and its backend-watching task.
struct Link {
    up: Cell<bool>,
    /// Rings of a reconnect, for the interface to adopt.
    fresh: RefCell<Option<Rings>>,
    waker: RefCell<Option<Waker>>,
    stats: Cell<NetifStats>,
}

impl Link {
    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

fn xs_err(what: impl Into<String>) -> impl FnOnce(XenstoreError) -> NetfrontError {
    let what = what.into();
    move |error| NetfrontError::Xenstore { what, error }
}

/// Runs `f` for at most `ns` nanoseconds.
async fn timeout<F: Future>(ns: u64, f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    let mut sleep = pin!(time::sleep_ns(ns));
    poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

async fn backend_state(vif: &Vif) -> Result<XenbusState, XenstoreError> {
    Ok(XenbusState::parse(
        &Xenstore::new()
            .read(&format!("{}/state", vif.backend))
            .await?,
    ))
}

/// Waits until the backend's state is `want`; fails if it closes or takes too long.
async fn wait_backend(vif: &Vif, want: XenbusState) -> Result<(), NetfrontError> {
    let xs = Xenstore::new();
    let path = format!("{}/state", vif.backend);
    let watch = xs
        .watch(&path)
        .await
        .map_err(xs_err(format!("watching {path}")))?;
    let deadline = time::now_ns() + HANDSHAKE_TIMEOUT_NS;
    let result = loop {
        let state = match backend_state(vif).await {
            Ok(s) => s,
            Err(XenstoreError::NoEntry) => XenbusState::Unknown,
            Err(e) => break Err(xs_err(format!("reading {path}"))(e)),
        };
        if state == want {
            break Ok(());
        }
        if matches!(state, XenbusState::Closing | XenbusState::Closed) {
            break Err(NetfrontError::BackendClosed {
                backend: vif.backend.clone(),
                state,
            });
        }
        let left = deadline.saturating_sub(time::now_ns());
        match timeout(left, watch.changed()).await {
            Some(Ok(_)) => {}
            Some(Err(e)) => break Err(xs_err(format!("watching {path}"))(e)),
            None => {
                break Err(NetfrontError::Timeout {
                    backend: vif.backend.clone(),
                    want,
                    state,
                })
            }
        }
    };
    let _ = watch.cancel().await;
    result
}

/// The handshake: fresh rings, their details in one transaction, then Connected on both sides.
async fn connect(vif: &Vif, stats: &Cell<NetifStats>) -> Result<Rings, NetfrontError> {
    let xs = Xenstore::new();
    wait_backend(vif, XenbusState::InitWait).await?;
    let rx_copy = format!("{}/feature-rx-copy", vif.backend);
    match xs.read(&rx_copy).await {
        Ok(v) if v.trim() == "1" => {}
        Ok(_) | Err(XenstoreError::NoEntry) => {
            return Err(NetfrontError::NoRxCopy(vif.backend.clone()))
        }
        Err(e) => return Err(xs_err(format!("reading {rx_copy}"))(e)),
    }
    let rings = Rings::new(vif.backend_id, stats)?;
    let fe = &vif.frontend;
    let values = [
        ("tx-ring-ref", format!("{}", rings.tx.ring_page.gref.0)),
        ("rx-ring-ref", format!("{}", rings.rx.ring_page.gref.0)),
        ("event-channel", format!("{}", rings.port.0)),
        ("request-rx-copy", String::from("1")),
        ("feature-rx-notify", String::from("1")),
        ("feature-no-csum-offload", String::from("1")),
        ("feature-sg", String::from("0")),
        ("feature-gso-tcpv4", String::from("0")),
    ];
    let mut attempts = 0;
    loop {
        attempts += 1;
        let tx = xs
            .transaction()
            .await
            .map_err(xs_err("starting a transaction"))?;
        for (key, value) in &values {
            if let Err(e) = tx.write(&format!("{fe}/{key}"), value).await {
                let _ = tx.abort().await;
                return Err(xs_err(format!("writing {fe}/{key}"))(e));
            }
        }
        match tx.commit().await {
            Ok(true) => break,
            Ok(false) if attempts < 10 => continue,
            Ok(false) => {
                return Err(NetfrontError::Xenstore {
                    what: format!("writing {fe}'s ring details"),
                    error: XenstoreError::Xen(String::from("EAGAIN (10 conflicts)")),
                })
            }
            Err(e) => return Err(xs_err(format!("committing {fe}'s ring details"))(e)),
        }
    }
    xs.write(&format!("{fe}/state"), XenbusState::Connected.value())
        .await
        .map_err(xs_err(format!("writing {fe}/state")))?;
    wait_backend(vif, XenbusState::Connected).await?;
    bump(stats, |s| s.connects += 1);
    Ok(rings)
}

/// Follows the backend's state for the interface's lifetime (see the module docs).
async fn monitor(vif: Rc<Vif>, link: Rc<Link>) {
    let xs = Xenstore::new();
    let path = format!("{}/state", vif.backend);
    let fe_state = format!("{}/state", vif.frontend);
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
        let state = match backend_state(&vif).await {
            Ok(s) => s,
            Err(XenstoreError::NoEntry) => {
                if link.up.replace(false) {
                    link.wake();
                }
                super::diag(&format!(
                    "netfront: {name}: backend {} was removed; link down for good",
                    vif.backend
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
            XenbusState::InitWait if !link.up.get() => match connect(&vif, &link.stats).await {
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
        let xs = Xenstore::new();
        let frontend = format!("device/vif/{index}");
        let backend = match xs.read(&format!("{frontend}/backend")).await {
            Ok(b) => String::from(b.trim()),
            Err(XenstoreError::NoEntry) => return Err(NetfrontError::NoSuchVif(index)),
            Err(e) => return Err(xs_err(format!("reading {frontend}/backend"))(e)),
        };
        let id_path = format!("{frontend}/backend-id");
        let id = xs
            .read(&id_path)
            .await
            .map_err(xs_err(format!("reading {id_path}")))?;
        let backend_id = id.trim().parse().map_err(|_| NetfrontError::BadValue {
            path: id_path,
            value: id.clone(),
        })?;
        let mac = match mac {
            Some(m) => m,
            None => {
                let path = format!("{frontend}/mac");
                let v = xs
                    .read(&path)
                    .await
                    .map_err(xs_err(format!("reading {path}")))?;
                parse_mac(&v).ok_or(NetfrontError::BadValue { path, value: v })?
            }
        };
        let vif = Rc::new(Vif {
            index,
            frontend,
            backend,
            backend_id,
        });
        let link = Rc::new(Link {
            up: Cell::new(true),
            fresh: RefCell::new(None),
            waker: RefCell::new(None),
            stats: Cell::new(NetifStats::default()),
        });
        let rings = connect(&vif, &link.stats).await?;
        super::spawn(monitor(vif, link.clone()));
        Ok(Netif {
            mac,
            rings: Some(rings),
            link,
            wait: None,
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
            let ev = r.rx.ring.final_check_event();
            r.rx.ring_page.page.write_u32(field::RSP_EVENT, ev);
            arch::dmb();
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
            let ev = r.tx.ring.final_check_event();
            r.tx.ring_page.page.write_u32(field::RSP_EVENT, ev);
            arch::dmb();
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
    stats: &'a Cell<NetifStats>,
    id: u16,
    range: core::ops::Range<usize>,
}

/// Permission to send one frame: a free TX id.
pub struct TxToken<'a> {
    tx: &'a mut TxSide,
    port: Port,
    stats: &'a Cell<NetifStats>,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let buf = &self.rx.bufs[usize::from(self.id)].page;
        // SAFETY: the range lies inside the page (`RxResponse::frame` checked it against the
        // page size). The backend wrote it before publishing the response (read after a
        // barrier) and cannot write the page again until it is re-posted, in `drop`.
        let data = unsafe {
            core::slice::from_raw_parts(
                (buf.addr() + self.range.start) as *const u8,
                self.range.len(),
            )
        };
        bump(self.stats, |s| {
            s.rx_frames += 1;
            s.rx_bytes += data.len() as u64
        });
        f(data)
    }
}

impl Drop for RxToken<'_> {
    fn drop(&mut self) {
        self.rx.post(self.id);
        push_requests(
            &self.rx.ring_page.page,
            &mut self.rx.ring,
            self.port,
            self.stats,
        );
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
            bump(self.stats, |s| s.tx_oversize += 1);
            return f(&mut vec![0u8; len]);
        };
        let buf = &self.tx.bufs[usize::from(id)];
        // SAFETY: `len` fits in the page; the id was free, so the backend is done with the page
        // (its response was read) and nothing else refers to it.
        let data = unsafe { core::slice::from_raw_parts_mut(buf.page.addr() as *mut u8, len) };
        data.fill(0);
        let r = f(data);
        let req = TxRequest {
            gref: buf.gref.0,
            offset: 0,
            flags: 0,
            id,
            size: len as u16,
        };
        let mut raw = [0u8; TX_SLOT_LEN];
        let _ = req.emit(&mut raw);
        let i = self.tx.ring.next_request();
        self.tx
            .ring_page
            .page
            .write_bytes(slot_offset(i, TX_SLOT_LEN, TX_RING_SIZE), &raw);
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
        push_requests(
            &self.tx.ring_page.page,
            &mut self.tx.ring,
            self.port,
            self.stats,
        );
        if waiting > 0 && now.saturating_sub(self.tx.last_progress) > TX_STALL_NS {
            self.port.notify();
            bump(self.stats, |s| s.tx_kicks += 1);
        }
        bump(self.stats, |s| {
            s.tx_frames += 1;
            s.tx_bytes += len as u64
        });
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
        let stats: &Cell<NetifStats> = &link.stats;
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
        let stats: &Cell<NetifStats> = &link.stats;
        if r.tx.reap(stats).is_err() {
            r.broken = true;
            return None;
        }
        if r.tx.ids.available() == 0 {
            r.tx.blocked = true;
            bump(stats, |s| s.tx_full += 1);
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
