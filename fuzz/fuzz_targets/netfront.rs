//! Fuzzes netfront's response handling (`xen_wire::netif::front`, the code
//! `platform::xen::netfront` runs) against a backend that writes anything: the guest posts
//! RX buffers and sends TX requests as netfront does; the input is the backend's side, a
//! script of responses and producer indices.
//!
//! Input: a sequence of 9-byte steps: `op` (what the guest or backend does next), then a
//! response's 8 bytes (for TX, the first 4 are `id` and `status`) or an index.
//! Properties: an id is handed back at most once per post (a buffer is never in two hands);
//! every id is either free or in flight, never both; a frame's range lies within its buffer;
//! consumed responses never outnumber published requests; an impossible `rsp_prod` stops the
//! ring with an error and consumes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uni_runtime::xen_wire::mem::{cells, SharedMem};
use uni_runtime::xen_wire::netif::{
    field, next_rx, post_rx, reap_tx, slot_offset, FrontRing, IdPool, RxEvent, RxRequest, TxReaped,
    TxRequest, RX_RING_SIZE, RX_SLOT_LEN, TX_RING_SIZE, TX_SLOT_LEN,
};

const BUF: usize = 4096;

struct Side {
    page: Vec<u8>,
    ring: FrontRing,
    ids: IdPool,
    /// The backend's producer index (what it has written).
    rsp_prod: u32,
    /// Ids the guest holds (a received frame not yet re-posted), per id.
    held: Vec<bool>,
}

impl Side {
    fn new(size: u32) -> Side {
        Side {
            page: vec![0u8; 4096],
            ring: FrontRing::new(size),
            ids: IdPool::new(size as u16),
            rsp_prod: 0,
            held: vec![false; size as usize],
        }
    }

    fn check(&self, size: u32) {
        let in_flight = (0..size as u16)
            .filter(|&i| self.ids.is_in_flight(i))
            .count();
        assert_eq!(in_flight + self.ids.available(), size as usize);
        for (i, &h) in self.held.iter().enumerate() {
            assert!(
                !(h && self.ids.is_in_flight(i as u16)),
                "id {i} in two hands"
            );
        }
        assert!(self.ring.outstanding() <= self.ring.size());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut rx = Side::new(RX_RING_SIZE);
    let mut tx = Side::new(TX_RING_SIZE);
    // netfront posts every RX buffer first.
    {
        let p = cells(&mut rx.page);
        for id in 0..RX_RING_SIZE as u16 {
            assert!(post_rx(&mut rx.ring, &mut rx.ids, p, id, |i| 1000 + u32::from(i)));
        }
        rx.ring.push_requests(p);
        for id in 0..RX_RING_SIZE as u16 {
            let mut raw = [0u8; RX_SLOT_LEN];
            p.read_bytes(
                slot_offset(u32::from(id), RX_SLOT_LEN, RX_RING_SIZE),
                &mut raw,
            );
            assert_eq!(
                RxRequest::parse(&raw).unwrap(),
                RxRequest {
                    id,
                    gref: 1000 + u32::from(id)
                }
            );
        }
    }
    let mut rx_broken = false;
    let mut tx_broken = false;
    let mut tx_counts = TxReaped::default();
    for step in data.chunks_exact(9) {
        let (op, arg) = (step[0], &step[1..9]);
        match op % 8 {
            // The backend writes an RX response in its next slot.
            0 => {
                let p = cells(&mut rx.page);
                p.write_bytes(slot_offset(rx.rsp_prod, RX_SLOT_LEN, RX_RING_SIZE), arg);
                rx.rsp_prod = rx.rsp_prod.wrapping_add(1);
                p.write_u32(field::RSP_PROD, rx.rsp_prod);
            }
            // The backend writes any RX producer index.
            1 => {
                rx.rsp_prod = u32::from_le_bytes(arg[..4].try_into().unwrap());
                cells(&mut rx.page).write_u32(field::RSP_PROD, rx.rsp_prod);
            }
            // The guest takes received frames, as RxSide::next does.
            2 if !rx_broken => {
                let p = cells(&mut rx.page);
                loop {
                    let cons = rx.ring.rsp_cons;
                    match next_rx(&mut rx.ring, &mut rx.ids, p, BUF) {
                        Ok(None) => break,
                        Ok(Some(RxEvent::Frame { id, range })) => {
                            assert!(range.start < range.end && range.end <= BUF);
                            assert!(!rx.held[usize::from(id)]);
                            rx.held[usize::from(id)] = true;
                        }
                        Ok(Some(RxEvent::Bad { id, error })) => {
                            assert!(!error.to_string().is_empty());
                            assert!(
                                post_rx(&mut rx.ring, &mut rx.ids, p, id, |i| 1000 + u32::from(i))
                            );
                            rx.ring.push_requests(p);
                        }
                        Ok(Some(RxEvent::BadId(id))) => {
                            assert!(!rx.ids.is_in_flight(id));
                        }
                        Err(e) => {
                            assert_eq!(rx.ring.rsp_cons, cons, "consumed after an error");
                            assert!(!e.to_string().is_empty());
                            rx_broken = true;
                            break;
                        }
                    }
                }
            }
            // The guest is done with a frame and re-posts its buffer.
            3 => {
                let id = u16::from_le_bytes([arg[0], arg[1]]) % RX_RING_SIZE as u16;
                let p = cells(&mut rx.page);
                if rx.held[usize::from(id)] && rx.ring.free_requests() > 0 {
                    rx.held[usize::from(id)] = false;
                    assert!(post_rx(&mut rx.ring, &mut rx.ids, p, id, |i| 1000 + u32::from(i)));
                    rx.ring.push_requests(p);
                } else {
                    let was = rx.ids.is_in_flight(id);
                    let posted = post_rx(&mut rx.ring, &mut rx.ids, p, id, |_| 0);
                    if posted {
                        assert!(!was && !rx.held[usize::from(id)]);
                    }
                }
            }
            // The guest sends a frame.
            4 if !tx_broken => {
                let p = cells(&mut tx.page);
                if tx.ring.free_requests() > 0 {
                    if let Some(id) = tx.ids.alloc() {
                        let req = TxRequest {
                            gref: 2000 + u32::from(id),
                            offset: 0,
                            flags: 0,
                            id,
                            size: 60 + u16::from(arg[0]),
                        };
                        tx.ring.put_tx_request(p, &req);
                        tx.ring.push_requests(p);
                    }
                }
            }
            // The backend writes a TX response (id, status) in its next slot.
            5 => {
                let p = cells(&mut tx.page);
                let mut raw = [0u8; TX_SLOT_LEN];
                raw[..4].copy_from_slice(&arg[..4]);
                p.write_bytes(slot_offset(tx.rsp_prod, TX_SLOT_LEN, TX_RING_SIZE), &raw);
                tx.rsp_prod = tx.rsp_prod.wrapping_add(1);
                p.write_u32(field::RSP_PROD, tx.rsp_prod);
            }
            // The backend writes any TX producer index.
            6 => {
                tx.rsp_prod = u32::from_le_bytes(arg[4..8].try_into().unwrap());
                cells(&mut tx.page).write_u32(field::RSP_PROD, tx.rsp_prod);
            }
            // The guest reaps TX completions.
            7 if !tx_broken => {
                let p = cells(&mut tx.page);
                let before = tx_counts;
                let cons = tx.ring.rsp_cons;
                let free = tx.ids.available();
                match reap_tx(&mut tx.ring, &mut tx.ids, p, &mut tx_counts) {
                    Ok(()) => {
                        let n = tx.ring.rsp_cons.wrapping_sub(cons);
                        assert_eq!(tx_counts.responses - before.responses, n);
                        assert!(tx.ids.available() - free <= n as usize);
                        assert_eq!(tx.ring.pending(p).unwrap(), 0);
                    }
                    Err(e) => {
                        assert_eq!(tx.ring.rsp_cons, cons, "consumed after an error");
                        assert!(!e.to_string().is_empty());
                        tx_broken = true;
                    }
                }
            }
            _ => {}
        }
        rx.check(RX_RING_SIZE);
        tx.check(TX_RING_SIZE);
    }
});
