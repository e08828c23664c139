//! The xenstore page (`struct xenstore_domain_interface`): a request ring and a response ring of
//! 1 KiB each, and their indices, shared with xenstored. [`pump`] moves bytes between a
//! [`Session`] and the page.

use super::Session;
use crate::device::XenstoreError;
use crate::xen_wire::mem::SharedMem;
use crate::xen_wire::ring::{self, ByteRing};

/// Byte offsets within the xenstore page (`struct xenstore_domain_interface`).
pub mod page {
    use core::ops::Range;
    /// `char req[1024]`: requests, guest to xenstored.
    pub const REQ: Range<usize> = 0..1024;
    /// `char rsp[1024]`: replies and watch events.
    pub const RSP: Range<usize> = 1024..2048;
    /// `XENSTORE_RING_IDX req_cons`.
    pub const REQ_CONS: usize = 2048;
    /// `XENSTORE_RING_IDX req_prod`.
    pub const REQ_PROD: usize = 2052;
    /// `XENSTORE_RING_IDX rsp_cons`.
    pub const RSP_CONS: usize = 2056;
    /// `XENSTORE_RING_IDX rsp_prod`.
    pub const RSP_PROD: usize = 2060;
}

/// Both rings are 1 KiB.
pub const RING: ByteRing = ByteRing::new(1024);

/// Moves the session's queued requests into the request ring and whatever the response ring holds
/// into the session, publishing both indices (each after a barrier). Calls `notify` (to kick the
/// event channel) when either index moved, before the session parses the replies.
pub fn pump<M: SharedMem + ?Sized>(
    page: &M,
    s: &mut Session,
    notify: impl FnOnce(),
) -> Result<(), XenstoreError> {
    let mut moved = false;
    // Requests.
    let cons = page.read_u32(page::REQ_CONS);
    let prod = page.read_u32(page::REQ_PROD);
    page.fence();
    let mut sent = 0;
    {
        let (a, b) = s.output();
        for chunk in [a, b] {
            let n = ring::write(
                RING,
                page,
                page::REQ.start,
                cons,
                prod.wrapping_add(sent as u32),
                chunk,
            )
            .map_err(|_| XenstoreError::Protocol("request ring indices out of range"))?;
            sent += n;
            if n < chunk.len() {
                break;
            }
        }
    }
    if sent > 0 {
        page.fence();
        page.write_u32(page::REQ_PROD, prod.wrapping_add(sent as u32));
        s.consume_output(sent);
        moved = true;
    }
    // Replies and watch events.
    let cons = page.read_u32(page::RSP_CONS);
    let prod = page.read_u32(page::RSP_PROD);
    page.fence();
    let mut buf = [0u8; 1024];
    let got = ring::read(RING, page, page::RSP.start, cons, prod, &mut buf)
        .map_err(|_| XenstoreError::Protocol("reply ring indices out of range"))?;
    if got > 0 {
        page.fence(); // finish reading before handing the space back
        page.write_u32(page::RSP_CONS, cons.wrapping_add(got as u32));
        moved = true;
    }
    if moved {
        notify();
    }
    s.receive(&buf[..got])
}

#[cfg(test)]
mod tests {
    use super::super::session::tests::msg;
    use super::super::MsgType;
    use super::*;
    use crate::xen_wire::mem::cells;
    use alloc::vec::Vec;

    /// xenstored's side: takes what the request ring holds.
    fn take_requests(p: &[core::cell::Cell<u8>]) -> Vec<u8> {
        let (cons, prod) = (p.read_u32(page::REQ_CONS), p.read_u32(page::REQ_PROD));
        let mut out = alloc::vec![0u8; 1024];
        let n = ring::read(RING, p, page::REQ.start, cons, prod, &mut out).unwrap();
        p.write_u32(page::REQ_CONS, cons.wrapping_add(n as u32));
        out.truncate(n);
        out
    }

    /// xenstored's side: appends to the response ring.
    fn put_replies(p: &[core::cell::Cell<u8>], bytes: &[u8]) -> usize {
        let (cons, prod) = (p.read_u32(page::RSP_CONS), p.read_u32(page::RSP_PROD));
        let n = ring::write(RING, p, page::RSP.start, cons, prod, bytes).unwrap();
        p.write_u32(page::RSP_PROD, prod.wrapping_add(n as u32));
        n
    }

    #[test]
    fn requests_and_replies_cross_the_page_and_wrap() {
        let mut buf = [0u8; 4096];
        let p = cells(&mut buf);
        // Both rings start near the end of their buffers, so everything wraps.
        for (c, pr) in [
            (page::REQ_CONS, page::REQ_PROD),
            (page::RSP_CONS, page::RSP_PROD),
        ] {
            p.write_u32(c, 1020);
            p.write_u32(pr, 1020);
        }
        let mut s = Session::new();
        let a = s.request(MsgType::Read, 0, b"domid\0").unwrap();
        let mut kicks = 0;
        pump(p, &mut s, || kicks += 1).unwrap();
        assert_eq!(kicks, 1);
        assert!(!s.has_output());
        assert_eq!(take_requests(p), msg(2, a, 0, b"domid\0"));
        // Nothing moved: no notification.
        pump(p, &mut s, || kicks += 1).unwrap();
        assert_eq!(kicks, 1);
        let reply = msg(2, a, 0, b"7");
        assert_eq!(put_replies(p, &reply), reply.len());
        pump(p, &mut s, || kicks += 1).unwrap();
        assert_eq!(kicks, 2);
        assert_eq!(
            s.take_reply(a).unwrap().into_result(MsgType::Read).unwrap(),
            b"7"
        );
        assert_eq!(p.read_u32(page::RSP_CONS), 1020 + reply.len() as u32);
    }

    #[test]
    fn a_full_request_ring_keeps_the_rest_queued() {
        let mut buf = [0u8; 4096];
        let p = cells(&mut buf);
        let mut s = Session::new();
        let big = alloc::vec![b'x'; 2000];
        s.request(MsgType::Write, 0, &big).unwrap();
        pump(p, &mut s, || {}).unwrap();
        assert_eq!(p.read_u32(page::REQ_PROD), 1024);
        assert!(s.has_output());
        assert_eq!(take_requests(p).len(), 1024);
        pump(p, &mut s, || {}).unwrap();
        assert_eq!(p.read_u32(page::REQ_PROD), 2016);
        assert!(!s.has_output());
    }

    #[test]
    fn impossible_indices_are_errors() {
        let mut buf = [0u8; 4096];
        let p = cells(&mut buf);
        p.write_u32(page::RSP_PROD, 5000);
        let mut s = Session::new();
        assert!(pump(p, &mut s, || {}).is_err());
    }
}
