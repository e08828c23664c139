//! The netfront/netback shared rings (`xen/include/public/io/netif.h`, `io/ring.h`), as pure code.
//!
//! Each ring is one 4 KiB page: a 64-byte header (`req_prod`, `req_event`, `rsp_prod`,
//! `rsp_event`, padding) followed by slots, each the size of the larger of the request and the
//! response (a union in C). The slot count is the largest power of two that fits: 256 for both
//! the TX ring (12-byte slots) and the RX ring (8-byte slots).
//!
//! The frontend produces requests and consumes responses. Indices are free-running `u32`s; a
//! slot is `idx & (size - 1)`. The backend writes `rsp_prod` and `req_event`; it can write
//! anything, so [`FrontRing::unconsumed`] checks that it never claims more responses than
//! requests are outstanding, and [`IdPool`] checks every response id.
//!
//! Notification ([`need_notify`]): after publishing requests `old..new`, notify only if the
//! backend's `req_event` lies in that range. Before sleeping, set `rsp_event = rsp_cons + 1`,
//! barrier, and look again ([`FrontRing::request_event`], [`FrontRing::final_check_event`]).
//!
//! [`FrontRing`]'s page methods ([`push_requests`](FrontRing::push_requests),
//! [`pending`](FrontRing::pending), `put_*_request`, `take_*_response`) are the frontend's side of
//! the protocol on the shared page; [`msg`] has the slot formats, [`ids`] the request ids, and
//! [`front`] what the frontend does with each response.

use core::fmt;

use super::mem::SharedMem;

pub mod front;
pub mod ids;
pub mod msg;

pub use super::xenbus::XenbusState;
pub use front::{next_rx, post_rx, reap_tx, RxEvent, TxReaped};
pub use ids::{BadId, IdPool};
pub use msg::{rxf, status, txf, RxError, RxRequest, RxResponse, Truncated, TxRequest, TxResponse};

/// Byte offsets within a shared ring page.
pub mod field {
    /// `RING_IDX req_prod` (frontend writes).
    pub const REQ_PROD: usize = 0;
    /// `RING_IDX req_event` (backend writes: notify when `req_prod` passes it).
    pub const REQ_EVENT: usize = 4;
    /// `RING_IDX rsp_prod` (backend writes).
    pub const RSP_PROD: usize = 8;
    /// `RING_IDX rsp_event` (frontend writes: notify me when `rsp_prod` passes it).
    pub const RSP_EVENT: usize = 12;
    /// First slot.
    pub const RING: usize = 64;
}

/// Ring page size.
pub const PAGE_SIZE: usize = 4096;
/// A TX slot: `union { netif_tx_request (12 B); netif_tx_response (4 B) }`.
pub const TX_SLOT_LEN: usize = 12;
/// An RX slot: `union { netif_rx_request (8 B); netif_rx_response (8 B) }`.
pub const RX_SLOT_LEN: usize = 8;

/// `__RING_SIZE`: the largest power of two number of `slot_len` slots after the header.
pub const fn ring_size(slot_len: usize) -> u32 {
    let n = ((PAGE_SIZE - field::RING) / slot_len) as u32;
    1 << (31 - n.leading_zeros())
}

/// Slots in the TX ring.
pub const TX_RING_SIZE: u32 = ring_size(TX_SLOT_LEN);
/// Slots in the RX ring.
pub const RX_RING_SIZE: u32 = ring_size(RX_SLOT_LEN);

/// Byte offset in the ring page of the slot for free-running index `idx`.
pub const fn slot_offset(idx: u32, slot_len: usize, size: u32) -> usize {
    field::RING + (idx & (size - 1)) as usize * slot_len
}

/// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY` (and the response side's equivalent): having moved the
/// producer index from `old` to `new`, the peer asked to be notified at `event`; notify if
/// `event` is in `(old, new]`.
pub const fn need_notify(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// The backend's indices are impossible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadIndex {
    /// `rsp_prod` as read.
    pub rsp_prod: u32,
    /// Our `rsp_cons`.
    pub rsp_cons: u32,
    /// Our `req_prod`.
    pub req_prod: u32,
}

impl fmt::Display for BadIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backend's rsp_prod {} is not between rsp_cons {} and req_prod {}",
            self.rsp_prod, self.rsp_cons, self.req_prod
        )
    }
}

/// The frontend's private view of one ring (`struct front_ring`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontRing {
    /// Requests produced (published or not).
    pub req_prod_pvt: u32,
    /// `req_prod` as last published.
    pub req_published: u32,
    /// Responses consumed.
    pub rsp_cons: u32,
    size: u32,
}

impl FrontRing {
    /// A fresh ring of `size` slots (all indices 0).
    pub const fn new(size: u32) -> FrontRing {
        FrontRing {
            req_prod_pvt: 0,
            req_published: 0,
            rsp_cons: 0,
            size,
        }
    }

    /// Slots.
    pub const fn size(&self) -> u32 {
        self.size
    }

    /// Requests that may still be produced (`RING_FREE_REQUESTS`).
    pub fn free_requests(&self) -> u32 {
        self.size - self.req_prod_pvt.wrapping_sub(self.rsp_cons).min(self.size)
    }

    /// Requests outstanding (produced, not yet answered).
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// The free-running index of the next request, and advances the private producer.
    pub fn next_request(&mut self) -> u32 {
        let i = self.req_prod_pvt;
        self.req_prod_pvt = i.wrapping_add(1);
        i
    }

    /// Publishes private requests: returns `(old, new)` for [`need_notify`] and marks them
    /// published. The caller writes `new` to `req_prod` between barriers.
    pub fn publish(&mut self) -> (u32, u32) {
        let old = self.req_published;
        self.req_published = self.req_prod_pvt;
        (old, self.req_prod_pvt)
    }

    /// How many responses are waiting, given the backend's `rsp_prod`: an error if it claims
    /// more responses than requests were published.
    pub fn unconsumed(&self, rsp_prod: u32) -> Result<u32, BadIndex> {
        let n = rsp_prod.wrapping_sub(self.rsp_cons);
        if n > self.req_published.wrapping_sub(self.rsp_cons) {
            return Err(BadIndex {
                rsp_prod,
                rsp_cons: self.rsp_cons,
                req_prod: self.req_published,
            });
        }
        Ok(n)
    }

    /// The `rsp_event` to write before sleeping (`RING_FINAL_CHECK_FOR_RESPONSES`): the next
    /// response. Write it, barrier, then call [`unconsumed`](FrontRing::unconsumed) again.
    pub fn final_check_event(&self) -> u32 {
        self.rsp_cons.wrapping_add(1)
    }
}

/// `SHARED_RING_INIT` on a fresh ring page: the first response and the first request raise an
/// event.
pub fn init_shared<M: SharedMem + ?Sized>(page: &M) {
    page.write_u32(field::REQ_EVENT, 1);
    page.write_u32(field::RSP_EVENT, 1);
}

/// The ring protocol on the shared page `page` (the frontend's side).
impl FrontRing {
    /// Publishes the private requests (barrier, `req_prod`, barrier) and returns whether the
    /// backend asked to be notified (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`).
    pub fn push_requests<M: SharedMem + ?Sized>(&mut self, page: &M) -> bool {
        let (old, new) = self.publish();
        if old == new {
            return false;
        }
        page.fence(); // the requests (and the data they describe) before the index
        page.write_u32(field::REQ_PROD, new);
        page.fence(); // the index before reading req_event
        need_notify(old, new, page.read_u32(field::REQ_EVENT))
    }

    /// Responses waiting on the page: reads `rsp_prod`, then a barrier before the responses it
    /// covers are read; an error if the backend's index is impossible.
    pub fn pending<M: SharedMem + ?Sized>(&self, page: &M) -> Result<u32, BadIndex> {
        let prod = page.read_u32(field::RSP_PROD);
        page.fence();
        self.unconsumed(prod)
    }

    /// Asks for an event at the next response (`RING_FINAL_CHECK_FOR_RESPONSES`: writes
    /// `rsp_event`, barrier); call [`pending`](FrontRing::pending) again after it.
    pub fn request_event<M: SharedMem + ?Sized>(&self, page: &M) {
        page.write_u32(field::RSP_EVENT, self.final_check_event());
        page.fence();
    }

    fn put_request<M: SharedMem + ?Sized>(&mut self, page: &M, slot_len: usize, raw: &[u8]) {
        let i = self.next_request();
        page.write_bytes(slot_offset(i, slot_len, self.size), raw);
    }

    fn take_response<M: SharedMem + ?Sized, const N: usize>(&mut self, page: &M) -> [u8; N] {
        let mut raw = [0u8; N];
        page.read_bytes(slot_offset(self.rsp_cons, N, self.size), &mut raw);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        raw
    }

    /// Writes `req` into the next TX slot (private until [`push_requests`](Self::push_requests)).
    pub fn put_tx_request<M: SharedMem + ?Sized>(&mut self, page: &M, req: &TxRequest) {
        let mut raw = [0u8; TX_SLOT_LEN];
        let _ = req.emit(&mut raw); // 12 bytes always fit
        self.put_request(page, TX_SLOT_LEN, &raw);
    }

    /// Writes `req` into the next RX slot (private until [`push_requests`](Self::push_requests)).
    pub fn put_rx_request<M: SharedMem + ?Sized>(&mut self, page: &M, req: &RxRequest) {
        let mut raw = [0u8; RX_SLOT_LEN];
        let _ = req.emit(&mut raw); // 8 bytes always fit
        self.put_request(page, RX_SLOT_LEN, &raw);
    }

    /// Reads the TX response at `rsp_cons` and consumes it (only after [`pending`](Self::pending)
    /// said it is there).
    pub fn take_tx_response<M: SharedMem + ?Sized>(&mut self, page: &M) -> TxResponse {
        let raw: [u8; TX_SLOT_LEN] = self.take_response(page);
        TxResponse::parse(&raw).expect("a TX slot holds a response")
    }

    /// Reads the RX response at `rsp_cons` and consumes it (only after [`pending`](Self::pending)
    /// said it is there).
    pub fn take_rx_response<M: SharedMem + ?Sized>(&mut self, page: &M) -> RxResponse {
        let raw: [u8; RX_SLOT_LEN] = self.take_response(page);
        RxResponse::parse(&raw).expect("an RX slot holds a response")
    }
}

/// The MAC address in xenstore's `aa:bb:cc:dd:ee:ff` form.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_match_the_c_macros() {
        assert_eq!(TX_RING_SIZE, 256);
        assert_eq!(RX_RING_SIZE, 256);
        assert_eq!(ring_size(112), 32); // blkif
        assert_eq!(slot_offset(257, TX_SLOT_LEN, 256), 64 + 12);
        assert_eq!(slot_offset(255, RX_SLOT_LEN, 256), 64 + 255 * 8);
        assert!(slot_offset(255, TX_SLOT_LEN, 256) + TX_SLOT_LEN <= PAGE_SIZE);
    }

    #[test]
    fn notify_only_when_the_event_was_crossed() {
        // Backend asked for an event at 1; we publish 0 -> 1: notify.
        assert!(need_notify(0, 1, 1));
        // It asked at 5; we publish 1 -> 3: no.
        assert!(!need_notify(1, 3, 5));
        assert!(need_notify(3, 5, 5));
        assert!(need_notify(3, 9, 5));
        // Stale event behind old: no.
        assert!(!need_notify(10, 12, 5));
        // Across u32 wrap.
        assert!(need_notify(u32::MAX - 1, 2, 0));
        assert!(!need_notify(u32::MAX - 1, 2, 3));
        // Nothing published: never.
        assert!(!need_notify(7, 7, 7));
    }

    #[test]
    fn front_ring_counts_and_rejects_impossible_producers() {
        let mut r = FrontRing::new(4);
        assert_eq!(r.free_requests(), 4);
        for _ in 0..3 {
            r.next_request();
        }
        assert_eq!(r.free_requests(), 1);
        // Unpublished requests cannot have responses.
        assert!(r.unconsumed(1).is_err());
        assert_eq!(r.publish(), (0, 3));
        assert_eq!(r.unconsumed(0), Ok(0));
        assert_eq!(r.unconsumed(3), Ok(3));
        assert!(r.unconsumed(4).is_err());
        assert!(r.unconsumed(u32::MAX).is_err());
        r.rsp_cons = 2;
        assert_eq!(r.free_requests(), 3);
        assert_eq!(r.outstanding(), 1);
        assert_eq!(r.final_check_event(), 3);
        // Wrap-around.
        let mut w = FrontRing::new(256);
        w.req_prod_pvt = u32::MAX - 1;
        w.req_published = u32::MAX - 1;
        w.rsp_cons = u32::MAX - 1;
        w.next_request();
        w.next_request();
        w.next_request();
        assert_eq!(w.publish(), (u32::MAX - 1, 1));
        assert_eq!(w.unconsumed(1), Ok(3));
        assert_eq!(w.free_requests(), 253);
    }

    /// The backend's side, for the tests: answers every published TX request with `status`.
    fn answer_tx(page: &[core::cell::Cell<u8>], from: u32, status: i16) -> u32 {
        let prod = page.read_u32(field::REQ_PROD);
        let mut i = from;
        while i != prod {
            let at = slot_offset(i, TX_SLOT_LEN, TX_RING_SIZE);
            let mut raw = [0u8; TX_SLOT_LEN];
            page.read_bytes(at, &mut raw);
            let req = TxRequest::parse(&raw).unwrap();
            TxResponse { id: req.id, status }.emit(&mut raw).unwrap();
            page.write_bytes(at, &raw[..4]);
            i = i.wrapping_add(1);
        }
        page.write_u32(field::RSP_PROD, prod);
        prod
    }

    #[test]
    fn requests_and_responses_on_the_page() {
        let mut buf = [0u8; PAGE_SIZE];
        let page = crate::xen_wire::mem::cells(&mut buf);
        init_shared(page);
        let mut r = FrontRing::new(TX_RING_SIZE);
        for id in 0..3 {
            let req = TxRequest {
                gref: 100 + u32::from(id),
                offset: 0,
                flags: 0,
                id,
                size: 60,
            };
            r.put_tx_request(page, &req);
        }
        assert_eq!(r.pending(page), Ok(0));
        // req_event is 1: the first push notifies, a second one does not.
        assert!(r.push_requests(page));
        assert_eq!(page.read_u32(field::REQ_PROD), 3);
        assert!(!r.push_requests(page));
        let mut raw = [0u8; TX_SLOT_LEN];
        page.read_bytes(slot_offset(1, TX_SLOT_LEN, TX_RING_SIZE), &mut raw);
        assert_eq!(TxRequest::parse(&raw).unwrap().gref, 101);
        answer_tx(page, 0, status::OKAY);
        assert_eq!(r.pending(page), Ok(3));
        for id in 0..3 {
            assert_eq!(r.take_tx_response(page).id, id);
        }
        assert_eq!(r.pending(page), Ok(0));
        r.request_event(page);
        assert_eq!(page.read_u32(field::RSP_EVENT), 4);
        // A backend claiming responses to requests never made stops the ring.
        page.write_u32(field::RSP_PROD, 9);
        assert!(r.pending(page).is_err());
        // RX: 8-byte slots.
        let mut rx = FrontRing::new(RX_RING_SIZE);
        rx.put_rx_request(page, &RxRequest { id: 5, gref: 77 });
        assert_eq!(&buf[64..72], &[5, 0, 0, 0, 77, 0, 0, 0]);
    }

    #[test]
    fn macs_and_states_parse() {
        assert_eq!(
            parse_mac("00:16:3e:75:6e:02"),
            Some([0, 0x16, 0x3e, 0x75, 0x6e, 2])
        );
        assert_eq!(
            parse_mac("0:16:3E:75:6e:2\n"),
            Some([0, 0x16, 0x3e, 0x75, 0x6e, 2])
        );
        assert_eq!(parse_mac("00:16:3e:75:6e"), None);
        assert_eq!(parse_mac("00:16:3e:75:6e:02:01"), None);
        assert_eq!(parse_mac("00:16:3e:75:6e:xx"), None);
        assert_eq!(parse_mac("000:16:3e:75:6e:02"), None);
    }
}
