//! The Xen block frontend: a [`device::Block`] over blkback's shared ring (the wire format is
//! [`xen_wire::blkif`](crate::xen_wire::blkif)).
//!
//! # Connecting
//! [`Block::open`]`(index)` drives the frontend `device/vbd/<devid>` of the `index`-th disk of the
//! xl config (`xvda` is 51712, `xvdb` 51728, …), with [`Frontend`]'s steps: wait for the backend's
//! InitWait, publish `ring-ref`, `event-channel` and `protocol = arm-abi`, go to Initialised,
//! wait for the backend's Connected, read its geometry (`sectors`, `sector-size`, `info`) and
//! features (`feature-flush-cache`, `feature-barrier`), then go to Connected.
//!
//! # Requests
//! One ring page of [`RING_SIZE`] = 32 slots, so 32 requests in flight, each of up to 11 pages.
//! The data goes through buffer pages granted to the backend once and reused ([`pool`]); at most
//! [`MAX_PAGES`] of them, allocated as the load needs them. A transfer is split into requests of
//! 11 pages, all submitted before the first is waited for, so a large read or write keeps the
//! ring full. Any number of tasks may transfer at once; a task waits for slots and pages when
//! they are all in use.
//!
//! # Completions
//! A task spawned at connect collects responses whenever the event channel fires (the
//! `rsp_event` rule: one event per batch), stores each one's status under its request id and
//! wakes the waiting transfer.
//!
//! # Bad input and failures
//! Error statuses fail the transfer with a [`BlockError::Io`] that names the operation and the
//! sectors, and are counted ([`BlockStats`]). Responses with unknown ids or the wrong operation
//! are counted and skipped. An impossible ring index, or the backend leaving Connected, stops the
//! device: every waiting and later transfer fails with an error that says why. Nothing here
//! panics on what the backend writes.
//!
//! # Durability
//! [`flush`](device::Block::flush) sends `BLKIF_OP_FLUSH_DISKCACHE` (or an empty
//! `BLKIF_OP_WRITE_BARRIER` when that is all the backend offers), which blkback turns into a
//! cache flush of the disk below it. A backend that offers neither writes through, and `flush`
//! has nothing to do.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;
use core::future::poll_fn;
use core::task::Poll;

use super::events::Port;
use super::granted::Granted;
use super::xenbus::{xs_err, Frontend, XenbusError};
use super::xenstore::Xenstore;
use crate::device::{self, BlockError, BlockInfo, Xenstore as _, XenstoreError};
use crate::xen_wire::blkif::{
    self, chunks, devid, flush_op, op, status, vdev, BlkRing, Geometry, Request, Segment,
    PAGE_SIZE, RING_SIZE, SECTOR,
};
use crate::xen_wire::netif::{init_shared, FrontRing, IdPool, XenbusState};

mod error;
mod pool;

pub use error::{BlkfrontError, BlockCounters, BlockStats};

/// Every block device opened since boot, with its counters: [`totals`].
static DEVICES: crate::metrics::Devices<BlockCounters> = crate::metrics::Devices::new();

/// The counters of every block device opened since boot, summed when read (for
/// [`crate::metrics`]); `None` if none was opened.
pub fn totals() -> Option<BlockStats> {
    let mut t = None::<BlockStats>;
    DEVICES.each(|c| *t.get_or_insert_default() += c.get());
    t
}
use pool::{Pages, MAX_PAGES};

/// A request's outcome, as the completion task stored it.
#[derive(Debug, Clone, Copy)]
enum Done {
    Waiting,
    Status(i16),
}

/// The ring and everything that changes with it.
struct Ring {
    page: Granted,
    ring: FrontRing,
    ids: IdPool,
    /// Per request id.
    done: Vec<Done>,
    /// Per request id: the operation sent, to check the response's.
    ops: Vec<u8>,
    pages: Pages,
    /// Why the device stopped, once it has.
    broken: Option<String>,
    /// Transfers waiting for a completion, a slot or pages.
    waiters: Vec<core::task::Waker>,
}

impl Ring {
    fn wake_all(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }

    fn stop(&mut self, why: String) {
        if self.broken.is_none() {
            super::diag(&format!("blkfront: {why}; device stopped"));
            self.broken = Some(why);
        }
        self.wake_all();
    }
}

struct Inner {
    name: String,
    /// The device number, the requests' `handle`.
    handle: u16,
    dev: Frontend,
    info: BlockInfo,
    /// How `flush` makes writes durable (`None`: the backend writes through).
    flush: Option<u8>,
    port: Port,
    ring: RefCell<Ring>,
    /// This device's counters, also in [`DEVICES`].
    stats: &'static BlockCounters,
}

/// A Xen virtual block device (blkfront).
pub struct Block {
    inner: Rc<Inner>,
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("name", &self.inner.name)
            .field("info", &self.inner.info)
            .field("stats", &self.inner.stats.get())
            .finish()
    }
}

/// One request in flight: its id, its pages, and where its bytes go in the caller's buffer.
struct InFlight {
    id: u16,
    pages: Vec<Granted>,
    off: usize,
    len: usize,
    sector: u64,
}

impl Block {
    /// Connects to the backend of this domain's disk `index` (0 is `xvda`, the first `disk =`
    /// entry of the xl config). Completes once the backend is Connected.
    pub async fn open(index: u32) -> Result<Block, BlkfrontError> {
        let name = vdev(index);
        let dev = match Frontend::find(format!("device/vbd/{}", devid(index))).await {
            Ok(d) => d,
            Err(XenbusError::NoDevice) => return Err(BlkfrontError::NoSuchDisk { index, name }),
            Err(e) => return Err(e.into()),
        };
        dev.wait_backend(XenbusState::InitWait).await?;
        let page = Granted::new(dev.backend_id, false)?;
        init_shared(page.mem());
        let port = Port::alloc_unbound(dev.backend_id).map_err(BlkfrontError::EventChannel)?;
        let values = [
            ("ring-ref", format!("{}", page.gref().0)),
            ("event-channel", format!("{}", port.0)),
            ("protocol", String::from("arm-abi")),
        ];
        dev.publish("ring details", &values).await?;
        dev.set_state(XenbusState::Initialised).await?;
        dev.wait_backend(XenbusState::Connected).await?;
        let xs = Xenstore::new();
        let node = |key: &str| format!("{}/{key}", dev.backend);
        let read = |key: &'static str| {
            let path = node(key);
            let xs = &xs;
            async move {
                match xs.read(&path).await {
                    Ok(v) => Ok(Some(v)),
                    Err(XenstoreError::NoEntry) => Ok(None),
                    Err(e) => Err(xs_err(format!("reading {path}"))(e)),
                }
            }
        };
        let sectors = read("sectors").await?;
        let sector_size = read("sector-size").await?;
        let info = read("info").await?;
        let geometry = Geometry::parse(
            sectors.as_deref().unwrap_or(""),
            sector_size.as_deref().unwrap_or("512"),
            info.as_deref(),
        )
        .map_err(|e| BlkfrontError::BadGeometry {
            backend: dev.backend.clone(),
            why: e,
            values: format!("sectors={sectors:?} sector-size={sector_size:?} info={info:?}"),
        })?;
        let flush = flush_op(
            blkif::feature(read("feature-flush-cache").await?.as_deref()),
            blkif::feature(read("feature-barrier").await?.as_deref()),
        );
        dev.set_state(XenbusState::Connected).await?;
        let inner = Rc::new(Inner {
            name,
            handle: devid(index) as u16,
            dev,
            info: BlockInfo {
                sector_size: geometry.sector_size,
                sectors: geometry.sectors,
                read_only: geometry.read_only,
            },
            flush,
            port,
            ring: RefCell::new(Ring {
                page,
                ring: FrontRing::new(RING_SIZE),
                ids: IdPool::new(RING_SIZE as u16),
                done: alloc::vec![Done::Waiting; RING_SIZE as usize],
                ops: alloc::vec![0; RING_SIZE as usize],
                pages: Pages::new(),
                broken: None,
                waiters: Vec::new(),
            }),
            stats: DEVICES.add(),
        });
        super::spawn(completions(inner.clone()));
        super::spawn(monitor(inner.clone()));
        Ok(Block { inner })
    }

    /// Counters since the device was opened.
    pub fn stats(&self) -> BlockStats {
        self.inner.stats.get()
    }

    /// The disk's name in the xl config (`xvda`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether `flush` sends anything (the backend has a cache to flush).
    pub fn flushes(&self) -> bool {
        self.inner.flush.is_some()
    }
}

/// Collects responses for the device's lifetime (see the module docs).
async fn completions(inner: Rc<Inner>) {
    loop {
        {
            let mut r = inner.ring.borrow_mut();
            if r.broken.is_some() {
                return;
            }
            #[cfg(feature = "trace")]
            if let Ok(n @ 1..) = r.ring.pending(r.page.mem()) {
                crate::trace::device(
                    crate::trace::DEV_BLKFRONT,
                    inner.handle.into(),
                    crate::trace::Kind::BlkResponses,
                    n,
                    0,
                );
            }
            if let Err(why) = reap(&mut r, inner.stats) {
                r.stop(why);
                return;
            }
            // RING_FINAL_CHECK_FOR_RESPONSES, then sleep in the same poll: no event is lost.
            r.ring.request_event(r.page.mem());
            match r.ring.pending(r.page.mem()) {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => {
                    r.stop(format!(
                        "{}: the backend's ring index is impossible: {e}",
                        inner.name
                    ));
                    return;
                }
            }
        }
        inner.port.wait().await;
    }
}

/// Takes every response on the ring and stores its status under its id.
fn reap(r: &mut Ring, stats: &BlockCounters) -> Result<(), String> {
    let mut any = false;
    loop {
        let n = r
            .ring
            .pending(r.page.mem())
            .map_err(|e| format!("the backend's ring index is impossible: {e}"))?;
        if n == 0 {
            break;
        }
        for _ in 0..n {
            let rsp = r.ring.take_blk_response(r.page.mem());
            let id = match u16::try_from(rsp.id) {
                Ok(id) if r.ids.is_in_flight(id) => id,
                _ => {
                    stats.bad_ids.inc();
                    continue;
                }
            };
            let slot = usize::from(id);
            if !matches!(r.done[slot], Done::Waiting) {
                stats.bad_ids.inc();
                continue;
            }
            if rsp.operation != r.ops[slot] {
                stats.bad_responses.inc();
                r.done[slot] = Done::Status(status::ERROR);
            } else {
                r.done[slot] = Done::Status(rsp.status);
            }
            any = true;
        }
    }
    if any {
        r.wake_all();
    }
    Ok(())
}

/// Stops the device when the backend leaves Connected.
async fn monitor(inner: Rc<Inner>) {
    let xs = Xenstore::new();
    let path = inner.dev.backend_state_path();
    let Ok(watch) = xs.watch(&path).await else {
        super::diag(&format!(
            "blkfront: {}: cannot watch {path}; a backend that goes away will not be noticed",
            inner.name
        ));
        return;
    };
    loop {
        if Rc::strong_count(&inner) <= 2 || inner.ring.borrow().broken.is_some() {
            break; // the device is gone, or stopped
        }
        if watch.changed().await.is_err() {
            continue;
        }
        let state = match inner.dev.backend_state().await {
            Ok(s) => s,
            Err(XenstoreError::NoEntry) => XenbusState::Closed,
            Err(_) => continue,
        };
        if state != XenbusState::Connected {
            inner.ring.borrow_mut().stop(format!(
                "{}: the backend {} went to state {state}",
                inner.name, inner.dev.backend
            ));
            let _ = xs
                .write(&inner.dev.state_path(), XenbusState::Closed.value())
                .await;
            break;
        }
    }
    let _ = watch.cancel().await;
}

impl Inner {
    /// Waits until a request id and `n` buffer pages are free, and takes them.
    async fn acquire(&self, n: usize) -> Result<(u16, Vec<Granted>), BlockError> {
        poll_fn(|cx| {
            let mut r = self.ring.borrow_mut();
            if let Some(why) = &r.broken {
                return Poll::Ready(Err(BlockError::Io(why.clone())));
            }
            if r.ids.available() > 0 && r.ring.free_requests() > 0 && r.pages.can_take(n) {
                let backend = self.dev.backend_id;
                let pages = match r.pages.take(n, backend) {
                    Ok(p) => p,
                    Err(e) => {
                        return Poll::Ready(Err(BlockError::Io(format!(
                            "{}: granting a buffer page: {e}",
                            self.name
                        ))))
                    }
                };
                let id = r.ids.alloc().expect("an id is available");
                r.done[usize::from(id)] = Done::Waiting;
                return Poll::Ready(Ok((id, pages)));
            }
            r.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Whether [`acquire`](Inner::acquire)`(n)` would not wait.
    fn can_acquire(&self, n: usize) -> bool {
        let r = self.ring.borrow();
        r.broken.is_some()
            || (r.ids.available() > 0 && r.ring.free_requests() > 0 && r.pages.can_take(n))
    }

    /// Puts `req` on the ring and notifies the backend if it asked.
    fn submit(&self, req: &Request) {
        let mut r = self.ring.borrow_mut();
        let slot = req.id as usize;
        r.ops[slot] = req.operation;
        let Ring { page, ring, .. } = &mut *r;
        ring.put_blk_request(page.mem(), req);
        if ring.push_requests(page.mem()) {
            self.port.notify();
        }
        self.stats.requests.inc();
        #[cfg(feature = "trace")]
        crate::trace::device(
            crate::trace::DEV_BLKFRONT,
            self.handle.into(),
            crate::trace::Kind::BlkRequest,
            u32::from(req.operation) | u32::from(req.nr_segments) << 8,
            req.sector_number,
        );
    }

    /// Waits for request `id`'s response; returns its status, and frees the id. The pages are
    /// the caller's again when this returns (the backend has answered, or the device stopped
    /// and its pages are never reused).
    async fn complete(&self, id: u16) -> Result<i16, BlockError> {
        poll_fn(|cx| {
            let mut r = self.ring.borrow_mut();
            if let Done::Status(s) = r.done[usize::from(id)] {
                r.done[usize::from(id)] = Done::Waiting;
                let _ = r.ids.release(id);
                r.wake_all(); // a slot is free
                return Poll::Ready(Ok(s));
            }
            if let Some(why) = &r.broken {
                return Poll::Ready(Err(BlockError::Io(why.clone())));
            }
            r.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Gives pages back to the pool (not after the device stopped: the backend may still hold
    /// them, so they are leaked).
    fn release(&self, pages: Vec<Granted>) {
        let mut r = self.ring.borrow_mut();
        if r.broken.is_none() {
            r.pages.give(pages);
            r.wake_all();
        } else {
            core::mem::forget(pages);
        }
    }

    /// One read or write of `len` bytes at byte `off` of the caller's buffer, from 512-byte
    /// sector `sector`: the request of `id` over `pages`.
    fn request(
        &self,
        operation: u8,
        id: u16,
        pages: &[Granted],
        sector: u64,
        len: usize,
    ) -> Request {
        let mut req = Request::new(operation, self.handle, u64::from(id), sector);
        let mut left = len;
        for p in pages {
            let n = left.min(PAGE_SIZE);
            // a chunk is at most 11 pages of whole 512-byte sectors: always a valid segment
            let _ = req.push(Segment::page_prefix(p.gref().0, n).expect("whole sectors"));
            left -= n;
        }
        req
    }

    fn status_error(&self, what: &str, sector: u64, len: usize, st: i16) -> BlockError {
        self.stats.errors.inc();
        let why = match st {
            status::EOPNOTSUPP => "the backend does not support it",
            status::ERROR => "the backend reported an error",
            _ => "the backend answered with an unknown status",
        };
        let sectors = if len == 0 {
            String::new()
        } else {
            format!(
                " of 512-byte sectors {sector}..{}",
                sector + (len / SECTOR) as u64
            )
        };
        BlockError::Io(format!(
            "{}: {what}{sectors}: {why} (status {st})",
            self.name
        ))
    }

    /// Reads (`dst` is `Some`) or writes (`src` is `Some`) starting at device sector `sector`.
    async fn transfer(
        &self,
        sector: u64,
        mut dst: Option<&mut [u8]>,
        src: Option<&[u8]>,
    ) -> Result<(), BlockError> {
        let len = dst.as_ref().map_or(0, |d| d.len()) + src.map_or(0, |s| s.len());
        BlockError::check(&self.info, sector, len)?;
        if src.is_some() && self.info.read_only {
            return Err(BlockError::ReadOnly);
        }
        let (operation, what) = if src.is_some() {
            (op::WRITE, "write")
        } else {
            (op::READ, "read")
        };
        let first = sector * u64::from(self.info.sector_size / SECTOR as u32);
        let mut inflight: VecDeque<InFlight> = VecDeque::new();
        let mut result = Ok(());
        for (s512, off, n) in chunks(first, len) {
            let pages_needed = n.div_ceil(PAGE_SIZE);
            // Never wait for pages while holding some in flight: finish our own first.
            while !self.can_acquire(pages_needed) && !inflight.is_empty() {
                let f = inflight.pop_front().expect("not empty");
                self.finish(f, &mut dst, what, &mut result).await;
            }
            if result.is_err() {
                break;
            }
            let (id, pages) = match self.acquire(pages_needed).await {
                Ok(x) => x,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            if let Some(src) = src {
                for (i, p) in pages.iter().enumerate() {
                    let from = off + i * PAGE_SIZE;
                    let k = (n - i * PAGE_SIZE).min(PAGE_SIZE);
                    // SAFETY: a page from the pool is the caller's alone: no request that names
                    // it is in flight, and no other slice of it exists.
                    unsafe { p.mem().bytes_mut(0, k) }.copy_from_slice(&src[from..from + k]);
                }
            }
            let req = self.request(operation, id, &pages, s512, n);
            self.submit(&req);
            inflight.push_back(InFlight {
                id,
                pages,
                off,
                len: n,
                sector: s512,
            });
        }
        while let Some(f) = inflight.pop_front() {
            self.finish(f, &mut dst, what, &mut result).await;
        }
        if result.is_ok() {
            if src.is_some() {
                self.stats.bytes_written.add(len as u64);
            } else {
                self.stats.bytes_read.add(len as u64);
            }
        }
        result
    }

    /// Waits for one request, copies a read's bytes out, and gives its pages back; the first
    /// failure is kept in `result`.
    async fn finish(
        &self,
        f: InFlight,
        dst: &mut Option<&mut [u8]>,
        what: &str,
        result: &mut Result<(), BlockError>,
    ) {
        match self.complete(f.id).await {
            Ok(status::OKAY) => {
                if let Some(dst) = dst {
                    for (i, p) in f.pages.iter().enumerate() {
                        let to = f.off + i * PAGE_SIZE;
                        let k = (f.len - i * PAGE_SIZE).min(PAGE_SIZE);
                        // SAFETY: the backend answered this request, so it is done writing the
                        // page, and no request names it until `release` gives it back.
                        dst[to..to + k].copy_from_slice(unsafe { p.mem().bytes(0, k) });
                    }
                }
                self.release(f.pages);
            }
            Ok(st) => {
                self.release(f.pages);
                if result.is_ok() {
                    *result = Err(self.status_error(what, f.sector, f.len, st));
                }
            }
            Err(e) => {
                self.release(f.pages);
                if result.is_ok() {
                    *result = Err(e);
                }
            }
        }
    }
}

impl device::Block for Block {
    fn info(&self) -> BlockInfo {
        self.inner.info
    }

    async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        #[cfg(feature = "trace")]
        let op = crate::trace::op(crate::trace::Kind::BlockRead, buf.len() as u32, sector);
        let r = self.inner.transfer(sector, Some(buf), None).await;
        #[cfg(feature = "trace")]
        op.end(r.is_ok().into(), 0);
        r
    }

    async fn write(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        #[cfg(feature = "trace")]
        let op = crate::trace::op(crate::trace::Kind::BlockWrite, buf.len() as u32, sector);
        let r = self.inner.transfer(sector, None, Some(buf)).await;
        #[cfg(feature = "trace")]
        op.end(r.is_ok().into(), 0);
        r
    }

    async fn flush(&self) -> Result<(), BlockError> {
        let inner = &self.inner;
        let Some(operation) = inner.flush else {
            return Ok(()); // the backend writes through
        };
        if inner.info.read_only {
            return Ok(());
        }
        let (id, pages) = inner.acquire(0).await?;
        let req = Request::new(operation, inner.handle, u64::from(id), 0);
        inner.submit(&req);
        let st = inner.complete(id).await;
        inner.release(pages);
        inner.stats.flushes.inc();
        match st? {
            status::OKAY => Ok(()),
            st => Err(inner.status_error("a cache flush", 0, 0, st)),
        }
    }
}

// every slot can be in flight with a page of its own
const _: () = assert!(MAX_PAGES >= RING_SIZE as usize);
