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
//! barrier, and look again ([`FrontRing::final_check`] tells what to write).

use core::fmt;

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

/// `NETTXF_*` flags of a TX request.
pub mod txf {
    /// The protocol checksum is blank (partial): the backend must fill it in.
    pub const CSUM_BLANK: u16 = 1;
    /// The protocol checksum is known good.
    pub const DATA_VALIDATED: u16 = 2;
    /// More fragments of this packet follow.
    pub const MORE_DATA: u16 = 4;
    /// An extra-info slot follows.
    pub const EXTRA_INFO: u16 = 8;
}

/// `NETRXF_*` flags of an RX response.
pub mod rxf {
    /// The protocol checksum is known good.
    pub const DATA_VALIDATED: u16 = 1;
    /// The protocol checksum is blank (partial).
    pub const CSUM_BLANK: u16 = 2;
    /// More fragments of this packet follow.
    pub const MORE_DATA: u16 = 4;
    /// An extra-info slot follows.
    pub const EXTRA_INFO: u16 = 8;
}

/// `NETIF_RSP_*` statuses.
pub mod status {
    /// `NETIF_RSP_OKAY`.
    pub const OKAY: i16 = 0;
    /// `NETIF_RSP_ERROR`.
    pub const ERROR: i16 = -1;
    /// `NETIF_RSP_DROPPED`.
    pub const DROPPED: i16 = -2;
    /// `NETIF_RSP_NULL`: the response to an extra-info slot.
    pub const NULL: i16 = 1;
}

/// A slot buffer was shorter than the structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `netif_tx_request`: `{ grant_ref_t gref; u16 offset; u16 flags; u16 id; u16 size }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRequest {
    /// Grant of the page holding the frame.
    pub gref: u32,
    /// Offset of the frame in the page.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// Frame length (for the first fragment: the whole packet's).
    pub size: u16,
}

impl TxRequest {
    /// Field offsets.
    pub const GREF: usize = 0;
    /// `offset`.
    pub const OFFSET: usize = 4;
    /// `flags`.
    pub const FLAGS: usize = 6;
    /// `id`.
    pub const ID: usize = 8;
    /// `size`.
    pub const SIZE: usize = 10;

    /// Reads a request from `b`.
    pub fn parse(b: &[u8]) -> Result<TxRequest, Truncated> {
        if b.len() < TX_SLOT_LEN {
            return Err(Truncated);
        }
        Ok(TxRequest {
            gref: u32_at(b, Self::GREF),
            offset: u16_at(b, Self::OFFSET),
            flags: u16_at(b, Self::FLAGS),
            id: u16_at(b, Self::ID),
            size: u16_at(b, Self::SIZE),
        })
    }

    /// Writes the request into `b` (at least 12 bytes).
    pub fn emit(&self, b: &mut [u8]) -> Result<(), Truncated> {
        if b.len() < TX_SLOT_LEN {
            return Err(Truncated);
        }
        b[0..4].copy_from_slice(&self.gref.to_le_bytes());
        b[4..6].copy_from_slice(&self.offset.to_le_bytes());
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..10].copy_from_slice(&self.id.to_le_bytes());
        b[10..12].copy_from_slice(&self.size.to_le_bytes());
        Ok(())
    }
}

/// `netif_tx_response`: `{ u16 id; i16 status }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxResponse {
    /// The request's id.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}

impl TxResponse {
    /// Reads a response from `b`.
    pub fn parse(b: &[u8]) -> Result<TxResponse, Truncated> {
        if b.len() < 4 {
            return Err(Truncated);
        }
        Ok(TxResponse {
            id: u16_at(b, 0),
            status: u16_at(b, 2) as i16,
        })
    }

    /// Writes the response into `b` (tests, and a backend).
    pub fn emit(&self, b: &mut [u8]) -> Result<(), Truncated> {
        if b.len() < 4 {
            return Err(Truncated);
        }
        b[0..2].copy_from_slice(&self.id.to_le_bytes());
        b[2..4].copy_from_slice(&self.status.to_le_bytes());
        Ok(())
    }
}

/// `netif_rx_request`: `{ u16 id; u16 pad; grant_ref_t gref }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxRequest {
    /// Echoed in the response.
    pub id: u16,
    /// Grant of the (writable) buffer page.
    pub gref: u32,
}

impl RxRequest {
    /// Reads a request from `b`.
    pub fn parse(b: &[u8]) -> Result<RxRequest, Truncated> {
        if b.len() < RX_SLOT_LEN {
            return Err(Truncated);
        }
        Ok(RxRequest {
            id: u16_at(b, 0),
            gref: u32_at(b, 4),
        })
    }

    /// Writes the request into `b` (at least 8 bytes).
    pub fn emit(&self, b: &mut [u8]) -> Result<(), Truncated> {
        if b.len() < RX_SLOT_LEN {
            return Err(Truncated);
        }
        b[0..2].copy_from_slice(&self.id.to_le_bytes());
        b[2..4].copy_from_slice(&0u16.to_le_bytes());
        b[4..8].copy_from_slice(&self.gref.to_le_bytes());
        Ok(())
    }
}

/// `netif_rx_response`: `{ u16 id; u16 offset; u16 flags; i16 status }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxResponse {
    /// The request's id.
    pub id: u16,
    /// Offset of the data in the buffer page.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// The data length if positive; `NETIF_RSP_*` otherwise.
    pub status: i16,
}

/// Why an RX response carries no usable frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxError {
    /// A negative status (`NETIF_RSP_ERROR`, `NETIF_RSP_DROPPED`, ...).
    Status(i16),
    /// A zero-length frame.
    Empty,
    /// `offset + status` runs past the end of the buffer page.
    Oversize {
        /// The response's offset.
        offset: u16,
        /// The response's length.
        len: i16,
    },
    /// A multi-slot packet (`NETRXF_more_data` or `NETRXF_extra_info`), which was not negotiated.
    Fragmented(u16),
}

impl fmt::Display for RxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RxError::Status(s) => write!(f, "error status {s}"),
            RxError::Empty => f.write_str("empty frame"),
            RxError::Oversize { offset, len } => {
                write!(
                    f,
                    "frame of {len} bytes at offset {offset} overruns the page"
                )
            }
            RxError::Fragmented(flags) => write!(f, "unexpected fragment flags {flags:#x}"),
        }
    }
}

impl RxResponse {
    /// Reads a response from `b`.
    pub fn parse(b: &[u8]) -> Result<RxResponse, Truncated> {
        if b.len() < RX_SLOT_LEN {
            return Err(Truncated);
        }
        Ok(RxResponse {
            id: u16_at(b, 0),
            offset: u16_at(b, 2),
            flags: u16_at(b, 4),
            status: u16_at(b, 6) as i16,
        })
    }

    /// Writes the response into `b` (tests, and a backend).
    pub fn emit(&self, b: &mut [u8]) -> Result<(), Truncated> {
        if b.len() < RX_SLOT_LEN {
            return Err(Truncated);
        }
        b[0..2].copy_from_slice(&self.id.to_le_bytes());
        b[2..4].copy_from_slice(&self.offset.to_le_bytes());
        b[4..6].copy_from_slice(&self.flags.to_le_bytes());
        b[6..8].copy_from_slice(&self.status.to_le_bytes());
        Ok(())
    }

    /// The frame's byte range in a buffer of `buf_len` bytes, or why there is none.
    pub fn frame(&self, buf_len: usize) -> Result<core::ops::Range<usize>, RxError> {
        if self.flags & (rxf::MORE_DATA | rxf::EXTRA_INFO) != 0 {
            return Err(RxError::Fragmented(self.flags));
        }
        if self.status < 0 {
            return Err(RxError::Status(self.status));
        }
        if self.status == 0 {
            return Err(RxError::Empty);
        }
        let start = usize::from(self.offset);
        let end = start + self.status as usize;
        if end > buf_len {
            return Err(RxError::Oversize {
                offset: self.offset,
                len: self.status,
            });
        }
        Ok(start..end)
    }
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

/// A response named an id that has no request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadId(pub u16);

/// Request ids `0..n` and which are in flight (owned by the backend).
#[derive(Debug, Clone)]
pub struct IdPool {
    free: alloc::vec::Vec<u16>,
    in_flight: alloc::vec::Vec<bool>,
}

impl IdPool {
    /// `n` ids, all free.
    pub fn new(n: u16) -> IdPool {
        IdPool {
            free: (0..n).rev().collect(),
            in_flight: alloc::vec![false; usize::from(n)],
        }
    }

    /// Takes a free id and marks it in flight.
    pub fn alloc(&mut self) -> Option<u16> {
        let id = self.free.pop()?;
        self.in_flight[usize::from(id)] = true;
        Some(id)
    }

    /// Takes the specific free id `id` (a buffer re-posted under its own id); false if it is
    /// out of range or already in flight.
    pub fn take(&mut self, id: u16) -> bool {
        match self.free.iter().rposition(|&f| f == id) {
            Some(i) => {
                self.free.swap_remove(i);
                self.in_flight[usize::from(id)] = true;
                true
            }
            None => false,
        }
    }

    /// Whether `id` is in flight.
    pub fn is_in_flight(&self, id: u16) -> bool {
        self.in_flight
            .get(usize::from(id))
            .copied()
            .unwrap_or(false)
    }

    /// Returns `id` (from a response): an error if it is out of range or not in flight, so a
    /// confused backend cannot make us reuse a buffer it still owns.
    pub fn release(&mut self, id: u16) -> Result<(), BadId> {
        match self.in_flight.get_mut(usize::from(id)) {
            Some(f) if *f => {
                *f = false;
                self.free.push(id);
                Ok(())
            }
            _ => Err(BadId(id)),
        }
    }

    /// Free ids.
    pub fn available(&self) -> usize {
        self.free.len()
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

/// `enum xenbus_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XenbusState {
    /// 0.
    Unknown,
    /// 1.
    Initialising,
    /// 2: the backend waits for the frontend's ring details.
    InitWait,
    /// 3.
    Initialised,
    /// 4.
    Connected,
    /// 5: the device is being torn down.
    Closing,
    /// 6.
    Closed,
    /// 7.
    Reconfiguring,
    /// 8.
    Reconfigured,
}

impl XenbusState {
    /// Parses a `state` node's value; anything unknown is `Unknown`.
    pub fn parse(s: &str) -> XenbusState {
        match s.trim().parse::<u32>() {
            Ok(1) => XenbusState::Initialising,
            Ok(2) => XenbusState::InitWait,
            Ok(3) => XenbusState::Initialised,
            Ok(4) => XenbusState::Connected,
            Ok(5) => XenbusState::Closing,
            Ok(6) => XenbusState::Closed,
            Ok(7) => XenbusState::Reconfiguring,
            Ok(8) => XenbusState::Reconfigured,
            _ => XenbusState::Unknown,
        }
    }

    /// The value written to a `state` node.
    pub fn value(self) -> &'static str {
        match self {
            XenbusState::Unknown => "0",
            XenbusState::Initialising => "1",
            XenbusState::InitWait => "2",
            XenbusState::Initialised => "3",
            XenbusState::Connected => "4",
            XenbusState::Closing => "5",
            XenbusState::Closed => "6",
            XenbusState::Reconfiguring => "7",
            XenbusState::Reconfigured => "8",
        }
    }
}

impl fmt::Display for XenbusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            XenbusState::Unknown => "Unknown",
            XenbusState::Initialising => "Initialising",
            XenbusState::InitWait => "InitWait",
            XenbusState::Initialised => "Initialised",
            XenbusState::Connected => "Connected",
            XenbusState::Closing => "Closing",
            XenbusState::Closed => "Closed",
            XenbusState::Reconfiguring => "Reconfiguring",
            XenbusState::Reconfigured => "Reconfigured",
        };
        write!(f, "{name} ({})", self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

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
    fn requests_and_responses_round_trip() {
        let mut b = [0u8; 12];
        let r = TxRequest {
            gref: 0x1234_5678,
            offset: 2048,
            flags: txf::DATA_VALIDATED,
            id: 255,
            size: 1514,
        };
        r.emit(&mut b).unwrap();
        assert_eq!(&b[..4], &[0x78, 0x56, 0x34, 0x12]);
        assert_eq!(TxRequest::parse(&b), Ok(r));
        let rs = TxResponse {
            id: 7,
            status: status::DROPPED,
        };
        rs.emit(&mut b).unwrap();
        assert_eq!(TxResponse::parse(&b), Ok(rs));
        let rq = RxRequest { id: 3, gref: 99 };
        rq.emit(&mut b).unwrap();
        assert_eq!(RxRequest::parse(&b), Ok(rq));
        assert_eq!(&b[..8], &[3, 0, 0, 0, 99, 0, 0, 0]);
        let rr = RxResponse {
            id: 3,
            offset: 0,
            flags: rxf::DATA_VALIDATED,
            status: 60,
        };
        rr.emit(&mut b).unwrap();
        assert_eq!(RxResponse::parse(&b), Ok(rr));
        assert!(TxRequest::parse(&b[..11]).is_err());
        assert!(RxResponse::parse(&b[..7]).is_err());
    }

    #[test]
    fn rx_responses_are_checked() {
        let ok = RxResponse {
            id: 0,
            offset: 16,
            flags: 0,
            status: 60,
        };
        assert_eq!(ok.frame(4096), Ok(16..76));
        let rr = |offset, flags, status| RxResponse {
            id: 0,
            offset,
            flags,
            status,
        };
        assert_eq!(rr(0, 0, -1).frame(4096), Err(RxError::Status(-1)));
        assert_eq!(rr(0, 0, 0).frame(4096), Err(RxError::Empty));
        assert_eq!(
            rr(4000, 0, 100).frame(4096),
            Err(RxError::Oversize {
                offset: 4000,
                len: 100
            })
        );
        assert_eq!(rr(0xffff, 0, 0x7fff).frame(4096).is_err(), true);
        assert_eq!(
            rr(0, rxf::MORE_DATA, 100).frame(4096),
            Err(RxError::Fragmented(4))
        );
        assert_eq!(
            rr(0, rxf::EXTRA_INFO, 100).frame(4096),
            Err(RxError::Fragmented(8))
        );
        // Checksum flags alone are fine.
        assert!(rr(0, rxf::DATA_VALIDATED | rxf::CSUM_BLANK, 100)
            .frame(4096)
            .is_ok());
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

    #[test]
    fn id_pool_rejects_bad_and_duplicate_ids() {
        let mut p = IdPool::new(3);
        let a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        assert_eq!((a, b), (0, 1));
        assert!(p.is_in_flight(0));
        assert_eq!(p.release(2), Err(BadId(2))); // never issued
        assert_eq!(p.release(9), Err(BadId(9))); // out of range
        assert_eq!(p.release(a), Ok(()));
        assert_eq!(p.release(a), Err(BadId(a))); // twice
        assert_eq!(p.available(), 2);
        assert!(p.take(2));
        assert!(!p.take(2));
        assert!(!p.take(7));
        assert!(p.take(0));
        assert_eq!(p.alloc(), None);
        assert_eq!(p.release(2), Ok(()));
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
        assert_eq!(XenbusState::parse("4"), XenbusState::Connected);
        assert_eq!(XenbusState::parse(" 6\n"), XenbusState::Closed);
        assert_eq!(XenbusState::parse("x"), XenbusState::Unknown);
        assert_eq!(XenbusState::Closing.to_string(), "Closing (5)");
        assert_eq!(XenbusState::InitWait.value(), "2");
    }
}
