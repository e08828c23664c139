//! One connection's TX and RX rings, their buffer pages and their event channel. The ring
//! protocol on the shared pages is [`FrontRing`]'s (`xen_wire::netif`).

use alloc::format;
use alloc::vec::Vec;

use super::{NetfrontError, NetifCounters};
use crate::platform::xen::events::Port;
use crate::platform::xen::granted::{Granted, PAGE_SIZE};
use crate::xen_wire::netif::{
    init_shared, next_rx, post_rx, reap_tx, FrontRing, IdPool, RxEvent, TxReaped, RX_RING_SIZE,
    TX_RING_SIZE,
};

/// Buffer pages per side (TX, RX) on a heap of `heap` bytes: as many as fit in a sixteenth of
/// it, from 32 to the ring's 256 slots. So both sides take at most an eighth of the heap: 2 MiB
/// (256 + 256 pages) from a heap of 16 MiB up; 352 KiB (44 + 44) on the 2.9 MiB heap of
/// static-website at 4 MiB.
/// 32 pages still hold more than a 32 KiB TCP window of full-size frames. The ring keeps its
/// 256 slots; only that many ids are used.
pub(super) const fn buffers_for_heap(heap: usize) -> u16 {
    let most = if RX_RING_SIZE < TX_RING_SIZE {
        RX_RING_SIZE
    } else {
        TX_RING_SIZE
    } as usize;
    let n = heap / 16 / PAGE_SIZE;
    (if n < 32 {
        32
    } else if n > most {
        most
    } else {
        n
    }) as u16
}

/// Publishes `ring`'s private requests in `page` and notifies the backend if it asked.
pub(super) fn push_requests(
    page: &Granted,
    ring: &mut FrontRing,
    port: Port,
    stats: &NetifCounters,
) {
    if ring.push_requests(page.mem()) {
        port.notify();
        stats.notifies.inc();
    }
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
    /// Collects TX responses, freeing their ids (`xen_wire::netif::reap_tx`).
    pub fn reap(&mut self, stats: &NetifCounters) -> Result<(), Broken> {
        let mut counts = TxReaped::default();
        let result = reap_tx(
            &mut self.ring,
            &mut self.ids,
            self.ring_page.mem(),
            &mut counts,
        );
        if counts.responses > 0 {
            self.last_progress = crate::platform::xen::time::now_ns();
        }
        if counts.bad_ids > 0 {
            stats.bad_ids.add(u64::from(counts.bad_ids));
        }
        if counts.errors > 0 {
            stats.tx_errors.add(u64::from(counts.errors));
        }
        result.map_err(|e| {
            crate::platform::xen::diag(&format!("netfront: TX ring: {e}; interface stopped"));
            Broken
        })
    }
}

impl RxSide {
    /// Posts buffer `id` to the backend under its own id (`xen_wire::netif::post_rx`).
    pub fn post(&mut self, id: u16) {
        let bufs = &self.bufs;
        post_rx(
            &mut self.ring,
            &mut self.ids,
            self.ring_page.mem(),
            id,
            |id| bufs[usize::from(id)].gref().0,
        );
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
        stats: &NetifCounters,
    ) -> Result<Option<(u16, core::ops::Range<usize>)>, Broken> {
        loop {
            let event = next_rx(
                &mut self.ring,
                &mut self.ids,
                self.ring_page.mem(),
                PAGE_SIZE,
            )
            .map_err(|e| {
                crate::platform::xen::diag(&format!("netfront: RX ring: {e}; interface stopped"));
                Broken
            })?;
            match event {
                None => return Ok(None),
                Some(RxEvent::Frame { id, range }) => return Ok(Some((id, range))),
                Some(RxEvent::BadId(_)) => stats.bad_ids.inc(),
                Some(RxEvent::Bad { id, .. }) => {
                    stats.rx_errors.inc();
                    self.post(id);
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
    pub fn new(backend: u16, stats: &NetifCounters) -> Result<Rings, NetfrontError> {
        let tx_ring = Granted::new(backend, false)?;
        let rx_ring = Granted::new(backend, false)?;
        init_shared(tx_ring.mem());
        init_shared(rx_ring.mem());
        // The buffers are sized to the heap (the guest's memory), not to the rings.
        let heap = crate::platform::xen::heap();
        let n = buffers_for_heap(heap.used + heap.free);
        let tx_bufs = (0..n)
            .map(|_| Granted::new(backend, true))
            .collect::<Result<Vec<_>, _>>()?;
        let rx_bufs = (0..n)
            .map(|_| Granted::new(backend, false))
            .collect::<Result<Vec<_>, _>>()?;
        let port = Port::alloc_unbound(backend).map_err(NetfrontError::EventChannel)?;
        let mut rings = Rings {
            tx: TxSide {
                ring_page: tx_ring,
                ring: FrontRing::new(TX_RING_SIZE),
                ids: IdPool::new(n),
                bufs: tx_bufs,
                blocked: false,
                last_progress: 0,
            },
            rx: RxSide {
                ring_page: rx_ring,
                ring: FrontRing::new(RX_RING_SIZE),
                ids: IdPool::new(n),
                bufs: rx_bufs,
            },
            port,
            broken: false,
        };
        for id in 0..n {
            rings.rx.post(id);
        }
        push_requests(&rings.rx.ring_page, &mut rings.rx.ring, port, stats);
        Ok(rings)
    }
}
