//! One connection's TX and RX rings, their buffer pages and their event channel. The ring
//! protocol on the shared pages is [`FrontRing`]'s (`xen_wire::netif`).

use alloc::format;
use alloc::vec::Vec;
use core::cell::Cell;

use super::{NetfrontError, NetifStats};
use crate::platform::xen::events::Port;
use crate::platform::xen::granted::{Granted, PAGE_SIZE};
use crate::xen_wire::netif::{
    init_shared, status, FrontRing, IdPool, RxRequest, RX_RING_SIZE, TX_RING_SIZE,
};

/// Publishes `ring`'s private requests in `page` and notifies the backend if it asked.
pub(super) fn push_requests(
    page: &Granted,
    ring: &mut FrontRing,
    port: Port,
    stats: &Cell<NetifStats>,
) {
    if ring.push_requests(page.mem()) {
        port.notify();
        bump(stats, |s| s.notifies += 1);
    }
}

pub(super) fn bump(stats: &Cell<NetifStats>, f: impl FnOnce(&mut NetifStats)) {
    let mut s = stats.get();
    f(&mut s);
    stats.set(s);
}

pub(super) struct TxSide {
    pub ring_page: Granted,
    pub ring: FrontRing,
    pub ids: IdPool,
    pub bufs: Vec<Granted>,
    /// `transmit` said no: `poll_ready` watches for completions.
    pub blocked: bool,
    /// When the backend last answered a TX request, or the ring last went from idle to busy
    /// (guest clock, ns): see [`TX_STALL_NS`].
    pub last_progress: u64,
}

/// TX requests unanswered for this long get an unconditional notification with the next
/// request. The ring protocol only notifies when `req_prod` crosses the backend's `req_event`;
/// if one notification is ever lost, the backend never moves `req_event` again and every later
/// request would wait forever (seen once in CI: a guest whose frames never left, so neither
/// DHCP nor ARP replies reached dom0). A spare notification only makes the backend look at
/// the ring.
pub(super) const TX_STALL_NS: u64 = 200_000_000;

pub(super) struct RxSide {
    pub ring_page: Granted,
    pub ring: FrontRing,
    /// In flight = posted to the backend.
    pub ids: IdPool,
    pub bufs: Vec<Granted>,
}

/// Why a ring stopped.
#[derive(Debug, Clone, Copy)]
pub(super) struct Broken;

impl TxSide {
    /// Collects TX responses, freeing their ids.
    pub fn reap(&mut self, stats: &Cell<NetifStats>) -> Result<(), Broken> {
        loop {
            let n = self.ring.pending(self.ring_page.mem()).map_err(|e| {
                crate::platform::xen::diag(&format!("netfront: TX ring: {e}; interface stopped"));
                Broken
            })?;
            if n == 0 {
                return Ok(());
            }
            self.last_progress = crate::platform::xen::time::now_ns();
            for _ in 0..n {
                let rsp = self.ring.take_tx_response(self.ring_page.mem());
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
    pub fn post(&mut self, id: u16) {
        if self.ring.free_requests() == 0 || !self.ids.take(id) {
            return;
        }
        let req = RxRequest {
            id,
            gref: self.bufs[usize::from(id)].gref().0,
        };
        self.ring.put_rx_request(self.ring_page.mem(), &req);
    }

    /// Responses waiting.
    pub fn pending(&self) -> Result<u32, Broken> {
        self.ring.pending(self.ring_page.mem()).map_err(|e| {
            crate::platform::xen::diag(&format!("netfront: RX ring: {e}; interface stopped"));
            Broken
        })
    }

    /// The next good frame: (buffer id, byte range). Bad responses are counted, and their
    /// buffers re-posted.
    pub fn next(
        &mut self,
        port: Port,
        stats: &Cell<NetifStats>,
    ) -> Result<Option<(u16, core::ops::Range<usize>)>, Broken> {
        loop {
            if self.pending()? == 0 {
                return Ok(None);
            }
            let rsp = self.ring.take_rx_response(self.ring_page.mem());
            if self.ids.release(rsp.id).is_err() {
                bump(stats, |s| s.bad_ids += 1);
                continue;
            }
            match rsp.frame(PAGE_SIZE) {
                Ok(range) => return Ok(Some((rsp.id, range))),
                Err(_) => {
                    bump(stats, |s| s.rx_errors += 1);
                    self.post(rsp.id);
                    push_requests(&self.ring_page, &mut self.ring, port, stats);
                }
            }
        }
    }
}

/// One connection's rings, buffers and event channel.
pub(super) struct Rings {
    pub tx: TxSide,
    pub rx: RxSide,
    pub port: Port,
    pub broken: bool,
}

impl Drop for Rings {
    fn drop(&mut self) {
        let _ = self.port.close();
    }
}

impl Rings {
    pub fn new(backend: u16, stats: &Cell<NetifStats>) -> Result<Rings, NetfrontError> {
        let tx_ring = Granted::new(backend, false)?;
        let rx_ring = Granted::new(backend, false)?;
        init_shared(tx_ring.mem());
        init_shared(rx_ring.mem());
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
        push_requests(&rings.rx.ring_page, &mut rings.rx.ring, port, stats);
        Ok(rings)
    }
}
