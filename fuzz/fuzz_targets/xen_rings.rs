//! Fuzzes the shared-page formats a Xen backend writes and the guest reads
//! (`xen_wire`): the console page's output ring under indices xenconsoled controls, netif
//! and blkif ring slots and indices, and grant-table entries.
//!
//! Input: a 4 KiB page image (shorter inputs are zero-padded) whose ring indices and slots
//! are what the backend wrote, then any bytes past 4 KiB as console output to write.
//! Properties: an impossible index is refused and nothing is read or written past the ring;
//! written console bytes land at `out_prod` and are counted; every slot parses and
//! round-trips through emit; a blkif or netif ring never yields more responses than
//! requests were published; an RX frame's range always lies within the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uni_runtime::xen_wire::blkif::{self, BlkRing};
use uni_runtime::xen_wire::console::{self, field as con};
use uni_runtime::xen_wire::grant::{Entry, EntryRepr, GTF_PERMIT_ACCESS, GTF_TYPE_MASK};
use uni_runtime::xen_wire::mem::{cells, SharedMem};
use uni_runtime::xen_wire::netif::{
    self, field, parse_mac, FrontRing, RxRequest, RxResponse, TxRequest, TxResponse,
};
use uni_runtime::xen_wire::ring;

fn console(page: &[u8], out: &[u8]) {
    let mut buf = page.to_vec();
    let p = cells(&mut buf);
    let (cons, prod) = (p.read_u32(con::OUT_CONS), p.read_u32(con::OUT_PROD));
    let before = page.to_vec();
    match console::write_out(p, out) {
        Ok(n) => {
            let used = prod.wrapping_sub(cons);
            assert!(
                used <= console::OUT_RING.size(),
                "accepted impossible indices"
            );
            assert_eq!(n, out.len().min((console::OUT_RING.size() - used) as usize));
            if n > 0 {
                assert_eq!(p.read_u32(con::OUT_PROD), prod.wrapping_add(n as u32));
            }
            assert_eq!(console::out_pending(p), used + n as u32);
            // The bytes are where the backend reads them.
            let mut back = vec![0u8; n];
            let got = ring::read(
                console::OUT_RING,
                p,
                con::OUT.start,
                prod,
                prod.wrapping_add(n as u32),
                &mut back,
            )
            .unwrap();
            assert_eq!(got, n);
            assert_eq!(back, &out[..n]);
            // Nothing outside the output ring and its producer index changed.
            let mut after = vec![0u8; 4096];
            p.read_bytes(0, &mut after);
            for (i, (a, b)) in before.iter().zip(&after).enumerate() {
                if !con::OUT.contains(&i) && !(con::OUT_PROD..con::OUT_PROD + 4).contains(&i) {
                    assert_eq!(a, b, "byte {i} changed");
                }
            }
        }
        Err(e) => {
            assert!(prod.wrapping_sub(cons) > console::OUT_RING.size());
            assert!(!e.to_string().is_empty());
            assert_eq!(p.read_u32(con::OUT_PROD), prod, "published after an error");
        }
    }
}

/// A ring with `published` requests outstanding from `base`, then whatever `rsp_prod` the
/// page holds.
fn netif_rings(page: &[u8], seed: u32) {
    for (slot_len, size) in [
        (netif::TX_SLOT_LEN, netif::TX_RING_SIZE),
        (netif::RX_SLOT_LEN, netif::RX_RING_SIZE),
        (blkif::SLOT_LEN, blkif::RING_SIZE),
    ] {
        let mut buf = page.to_vec();
        let p = cells(&mut buf);
        let mut ring = FrontRing::new(size);
        let published = seed % (size + 1);
        let base = seed.rotate_left(7);
        ring.req_prod_pvt = base.wrapping_add(published);
        ring.req_published = ring.req_prod_pvt;
        ring.rsp_cons = base;
        let rsp_prod = p.read_u32(field::RSP_PROD);
        let mut taken = 0u32;
        loop {
            match ring.pending(p) {
                Ok(0) => break,
                Ok(n) => {
                    assert!(n <= published - taken);
                    for _ in 0..n {
                        match slot_len {
                            netif::TX_SLOT_LEN => {
                                let r = ring.take_tx_response(p);
                                let mut raw = [0u8; netif::TX_SLOT_LEN];
                                r.emit(&mut raw).unwrap();
                                assert_eq!(TxResponse::parse(&raw).unwrap(), r);
                            }
                            netif::RX_SLOT_LEN => {
                                let r = ring.take_rx_response(p);
                                if let Ok(range) = r.frame(4096) {
                                    assert!(range.start < range.end && range.end <= 4096);
                                }
                            }
                            _ => {
                                let r = ring.take_blk_response(p);
                                let mut raw = [0u8; blkif::RESPONSE_LEN];
                                r.emit(&mut raw).unwrap();
                                assert_eq!(blkif::Response::parse(&raw).unwrap(), r);
                            }
                        }
                    }
                    taken += n;
                }
                Err(e) => {
                    assert!(rsp_prod.wrapping_sub(base) > published);
                    assert!(!e.to_string().is_empty());
                    break;
                }
            }
        }
        assert!(taken <= published);
        assert!(ring.free_requests() <= size);
    }
}

fn slots(page: &[u8]) {
    for raw in page.chunks(netif::TX_SLOT_LEN) {
        if let Ok(r) = TxRequest::parse(raw) {
            let mut b = [0u8; netif::TX_SLOT_LEN];
            r.emit(&mut b).unwrap();
            assert_eq!(TxRequest::parse(&b).unwrap(), r);
            assert_eq!(&b[..], &raw[..netif::TX_SLOT_LEN]);
        }
    }
    for raw in page.chunks(netif::RX_SLOT_LEN) {
        if let Ok(r) = RxResponse::parse(raw) {
            let mut b = [0u8; netif::RX_SLOT_LEN];
            r.emit(&mut b).unwrap();
            assert_eq!(&b[..], raw);
            match r.frame(4096) {
                Ok(range) => {
                    assert!(r.status > 0 && range.len() == r.status as usize);
                    assert!(range.end <= 4096);
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
        if let Ok(r) = RxRequest::parse(raw) {
            let mut b = [0u8; netif::RX_SLOT_LEN];
            r.emit(&mut b).unwrap();
            assert_eq!(RxRequest::parse(&b).unwrap(), r);
        }
    }
    for raw in page.chunks(blkif::SLOT_LEN) {
        match blkif::Request::parse(raw) {
            Ok(r) => {
                assert!(r.segments().len() <= blkif::MAX_SEGMENTS);
                assert!(r.segments().iter().all(|s| s.is_valid()));
                let mut b = [0u8; blkif::SLOT_LEN];
                r.emit(&mut b).unwrap();
                assert_eq!(blkif::Request::parse(&b).unwrap(), r);
                assert!(r.len() <= blkif::MAX_SEGMENTS * blkif::PAGE_SIZE);
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    for raw in page.chunks(8) {
        if let Ok(e) = Entry::new_checked(raw) {
            match EntryRepr::parse(&e) {
                Some(r) => {
                    assert_eq!(e.flags() & GTF_TYPE_MASK, GTF_PERMIT_ACCESS);
                    let mut b = [0u8; 8];
                    r.emit(&mut Entry::new_checked(&mut b[..]).unwrap());
                    assert_eq!(
                        EntryRepr::parse(&Entry::new_checked(&b[..]).unwrap()),
                        Some(r)
                    );
                }
                None => assert_ne!(e.flags() & GTF_TYPE_MASK, GTF_PERMIT_ACCESS),
            }
        }
    }
}

/// The strings a backend puts in xenstore for these devices.
fn strings(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let mut parts = text.split('\n');
    let (a, b, c) = (parts.next().unwrap_or(""), parts.next(), parts.next());
    if let Some(mac) = parse_mac(a) {
        let shown = mac.map(|b| format!("{b:02x}")).join(":");
        assert_eq!(parse_mac(&shown), Some(mac));
    }
    match blkif::Geometry::parse(a, b.unwrap_or("512"), c) {
        Ok(g) => {
            assert!(g.sector_size.is_power_of_two());
            assert!((512..=4096).contains(&g.sector_size));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let _ = blkif::feature(Some(a));
}

fuzz_target!(|data: &[u8]| {
    let mut page = data[..data.len().min(4096)].to_vec();
    page.resize(4096, 0);
    let out = data.get(4096..).unwrap_or(&[]);
    console(
        &page,
        if out.is_empty() {
            &data[..data.len().min(300)]
        } else {
            out
        },
    );
    let seed = u32::from_le_bytes(page[16..20].try_into().unwrap());
    netif_rings(&page, seed);
    slots(&page);
    strings(&data[..data.len().min(200)]);
});
