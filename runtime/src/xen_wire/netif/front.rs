//! What the frontend does with the backend's responses, as pure code: reaping TX completions,
//! taking the next received frame, and re-posting an RX buffer. `platform::xen::netfront` runs
//! these on its granted pages; fuzz/ `netfront` runs them against a backend that writes
//! anything.

use core::ops::Range;

use super::{status, BadIndex, FrontRing, IdPool, RxError, RxRequest};
use crate::xen_wire::mem::SharedMem;

/// What [`reap_tx`] found, added to the caller's counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TxReaped {
    /// Responses consumed (`NETIF_RSP_NULL` slots included).
    pub responses: u32,
    /// Responses with an error status (`NETIF_RSP_ERROR`, `NETIF_RSP_DROPPED`, ...).
    pub errors: u32,
    /// Responses naming an id with no request in flight (ignored).
    pub bad_ids: u32,
}

/// Consumes every TX response on `page`, returning their ids to `ids`, and adds what it saw to
/// `counts`. An error if the backend's `rsp_prod` is impossible (the counts then hold what was
/// consumed before).
pub fn reap_tx<M: SharedMem + ?Sized>(
    ring: &mut FrontRing,
    ids: &mut IdPool,
    page: &M,
    counts: &mut TxReaped,
) -> Result<(), BadIndex> {
    loop {
        let n = ring.pending(page)?;
        if n == 0 {
            return Ok(());
        }
        counts.responses = counts.responses.saturating_add(n);
        for _ in 0..n {
            let rsp = ring.take_tx_response(page);
            if rsp.status == status::NULL {
                continue;
            }
            if ids.release(rsp.id).is_err() {
                counts.bad_ids = counts.bad_ids.saturating_add(1);
            } else if rsp.status != status::OKAY {
                counts.errors = counts.errors.saturating_add(1);
            }
        }
    }
}

/// One RX response, as [`next_rx`] classified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RxEvent {
    /// A frame: buffer `id` holds it at `range` (within the buffer); the buffer is the
    /// caller's until it posts it again.
    Frame {
        /// The buffer's id.
        id: u16,
        /// The frame's bytes in the buffer.
        range: Range<usize>,
    },
    /// Buffer `id` came back without a usable frame; it is the caller's to re-post.
    Bad {
        /// The buffer's id.
        id: u16,
        /// Why.
        error: RxError,
    },
    /// A response naming an id with no buffer posted (ignored).
    BadId(u16),
}

/// Consumes the next RX response on `page`, if any, returning its buffer id to `ids`. Frames
/// are checked against buffers of `buf_len` bytes.
pub fn next_rx<M: SharedMem + ?Sized>(
    ring: &mut FrontRing,
    ids: &mut IdPool,
    page: &M,
    buf_len: usize,
) -> Result<Option<RxEvent>, BadIndex> {
    if ring.pending(page)? == 0 {
        return Ok(None);
    }
    let rsp = ring.take_rx_response(page);
    if ids.release(rsp.id).is_err() {
        return Ok(Some(RxEvent::BadId(rsp.id)));
    }
    Ok(Some(match rsp.frame(buf_len) {
        Ok(range) => RxEvent::Frame { id: rsp.id, range },
        Err(error) => RxEvent::Bad { id: rsp.id, error },
    }))
}

/// Posts RX buffer `id` (granted as `gref(id)`) to the backend under its own id, privately
/// until the ring's requests are pushed. False, and nothing written, if the ring is full or
/// `id` is out of range or already posted.
pub fn post_rx<M: SharedMem + ?Sized>(
    ring: &mut FrontRing,
    ids: &mut IdPool,
    page: &M,
    id: u16,
    gref: impl FnOnce(u16) -> u32,
) -> bool {
    if ring.free_requests() == 0 || !ids.take(id) {
        return false;
    }
    let req = RxRequest { id, gref: gref(id) };
    ring.put_rx_request(page, &req);
    true
}

#[cfg(test)]
mod tests {
    use super::super::{field, slot_offset, RxResponse, TxResponse, RX_SLOT_LEN, TX_SLOT_LEN};
    use super::*;
    use crate::xen_wire::mem::cells;

    fn put_rx(p: &[core::cell::Cell<u8>], idx: u32, rsp: RxResponse) {
        let mut raw = [0u8; RX_SLOT_LEN];
        rsp.emit(&mut raw).unwrap();
        p.write_bytes(slot_offset(idx, RX_SLOT_LEN, 4), &raw);
    }

    #[test]
    fn rx_frames_bad_responses_and_stray_ids() {
        let mut buf = [0u8; 4096];
        let p = cells(&mut buf);
        let mut ring = FrontRing::new(4);
        let mut ids = IdPool::new(4);
        for id in 0..3 {
            assert!(post_rx(&mut ring, &mut ids, p, id, |i| 100 + u32::from(i)));
        }
        assert!(!post_rx(&mut ring, &mut ids, p, 1, |_| 0), "already posted");
        assert!(!post_rx(&mut ring, &mut ids, p, 9, |_| 0), "out of range");
        ring.push_requests(p);
        assert_eq!(
            RxRequest::parse(&{
                let mut r = [0u8; RX_SLOT_LEN];
                p.read_bytes(slot_offset(1, RX_SLOT_LEN, 4), &mut r);
                r
            })
            .unwrap(),
            RxRequest { id: 1, gref: 101 }
        );
        let ok = |id, offset, len| RxResponse {
            id,
            offset,
            flags: 0,
            status: len,
        };
        put_rx(p, 0, ok(2, 10, 60));
        put_rx(p, 1, ok(2, 0, 60)); // id 2 again: no longer posted
        put_rx(p, 2, ok(0, 4000, 200)); // overruns the page
        p.write_u32(field::RSP_PROD, 3);
        let mut got = alloc::vec::Vec::new();
        while let Some(e) = next_rx(&mut ring, &mut ids, p, 4096).unwrap() {
            got.push(e);
        }
        assert_eq!(
            got,
            [
                RxEvent::Frame {
                    id: 2,
                    range: 10..70
                },
                RxEvent::BadId(2),
                RxEvent::Bad {
                    id: 0,
                    error: RxError::Oversize {
                        offset: 4000,
                        len: 200
                    }
                },
            ]
        );
        assert!(ids.is_in_flight(1) && !ids.is_in_flight(0));
        // More responses than requests were published: refused, nothing consumed.
        p.write_u32(field::RSP_PROD, 5);
        assert!(next_rx(&mut ring, &mut ids, p, 4096).is_err());
        assert_eq!(ring.rsp_cons, 3);
    }

    #[test]
    fn tx_reaping_counts_errors_nulls_and_stray_ids() {
        let mut buf = [0u8; 4096];
        let p = cells(&mut buf);
        let mut ring = FrontRing::new(4);
        let mut ids = IdPool::new(4);
        for _ in 0..3 {
            let id = ids.alloc().unwrap();
            ring.put_tx_request(
                p,
                &super::super::TxRequest {
                    gref: 1,
                    offset: 0,
                    flags: 0,
                    id,
                    size: 60,
                },
            );
        }
        ring.push_requests(p);
        for (i, (id, st)) in [(0, status::OKAY), (1, status::NULL), (3, status::OKAY)]
            .into_iter()
            .enumerate()
        {
            let mut raw = [0u8; TX_SLOT_LEN];
            TxResponse { id, status: st }.emit(&mut raw).unwrap();
            p.write_bytes(slot_offset(i as u32, TX_SLOT_LEN, 4), &raw);
        }
        p.write_u32(field::RSP_PROD, 3);
        let mut counts = TxReaped::default();
        reap_tx(&mut ring, &mut ids, p, &mut counts).unwrap();
        assert_eq!(
            counts,
            TxReaped {
                responses: 3,
                errors: 0,
                bad_ids: 1
            }
        );
        assert_eq!(
            ids.available(),
            2,
            "ids 0 and 3 free, 1 (NULL) and 2 still out"
        );
        p.write_u32(field::RSP_PROD, 9);
        assert!(reap_tx(&mut ring, &mut ids, p, &mut counts).is_err());
    }
}
