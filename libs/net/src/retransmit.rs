//! With tracing: TCP retransmissions of the direct stack, seen on the wire.
//!
//! smoltcp has no callback or counter for a retransmission (its timer is private), so the
//! driver looks at every segment smoltcp's egress sends (`direct::Watch`) and keeps, per
//! connection, the highest sequence number sent so far. A segment that occupies sequence space
//! (data, SYN or FIN) and starts below it resends bytes already sent: a retransmission, whether
//! the retransmission timer or three duplicate ACKs caused it. Not counted: smoltcp's keep-alive
//! probe (one byte just below the highest, RFC 1122's, which resends nothing the peer lacks),
//! zero-window probes (they send new data), and pure ACKs and RSTs (no sequence space). The
//! table holds [`FLOWS`] connections; a connection pushed out of it (the oldest entry is reused)
//! starts again from its next segment, so at most one retransmission per such connection can go
//! unseen. The unix `socket` stack's retransmissions are the host kernel's, not seen here.

#[cfg(feature = "trace")]
use core::net::SocketAddr;
use core::net::{Ipv4Addr, SocketAddrV4};

/// Connections followed at once.
pub(crate) const FLOWS: usize = 64;

#[derive(Debug, Clone, Copy, Default)]
struct Flow {
    used: bool,
    peer: u32,
    /// Peer port | local port << 16.
    ports: u32,
    /// One past the highest sequence number sent.
    next: u32,
    /// Retransmissions seen.
    count: u32,
}

/// The highest sequence number sent on each connection.
#[derive(Debug)]
pub(crate) struct Sent {
    flows: [Flow; FLOWS],
    /// The entry a new connection takes when every one is used.
    replace: usize,
}

/// A retransmission: the peer, the segment's length in sequence numbers, and the connection's
/// retransmissions so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retransmit {
    pub peer: SocketAddrV4,
    pub len: u32,
    pub count: u32,
}

impl Sent {
    pub(crate) fn new() -> Sent {
        Sent {
            flows: [Flow::default(); FLOWS],
            replace: 0,
        }
    }

    /// Looks at one Ethernet frame the stack sent, and records a retransmission in the trace.
    #[cfg(feature = "trace")]
    pub(crate) fn watch(&mut self, frame: &[u8]) {
        if let Some(r) = self.frame(frame) {
            let peer = SocketAddr::V4(r.peer);
            uni_runtime::trace::event(
                uni_runtime::trace::conn_track(&peer),
                uni_runtime::trace::Kind::TcpRetransmit,
                uni_runtime::trace::Phase::Instant,
                r.len,
                r.count.into(),
            );
        }
    }

    /// Whether `frame` (sent) retransmits a TCP segment.
    pub(crate) fn frame(&mut self, frame: &[u8]) -> Option<Retransmit> {
        let (ip, tcp) = crate::direct::ipv4_tcp(frame)?;
        let data = tcp.payload().len() as u32;
        let len = data + u32::from(tcp.syn()) + u32::from(tcp.fin());
        if tcp.rst() || len == 0 {
            return None;
        }
        let seq = tcp.seq_number().0 as u32;
        let end = seq.wrapping_add(len);
        let peer = u32::from(ip.dst_addr());
        let ports = u32::from(tcp.dst_port()) | u32::from(tcp.src_port()) << 16;
        let found = self
            .flows
            .iter()
            .position(|f| f.used && f.peer == peer && f.ports == ports);
        let Some(i) = found else {
            let i = self.flows.iter().position(|f| !f.used).unwrap_or_else(|| {
                let i = self.replace;
                self.replace = (i + 1) % FLOWS;
                i
            });
            self.flows[i] = Flow {
                used: true,
                peer,
                ports,
                next: end,
                count: 0,
            };
            return None;
        };
        let f = &mut self.flows[i];
        if tcp.syn() && end != f.next {
            // A new connection between the same ports (another initial sequence number).
            *f = Flow {
                next: end,
                count: 0,
                ..*f
            };
            return None;
        }
        let keep_alive = data == 1 && len == 1 && end == f.next;
        let before = (seq.wrapping_sub(f.next) as i32) < 0;
        if (end.wrapping_sub(f.next) as i32) > 0 {
            f.next = end;
        }
        if !before || keep_alive {
            return None;
        }
        f.count += 1;
        Some(Retransmit {
            peer: SocketAddrV4::new(Ipv4Addr::from(peer), tcp.dst_port()),
            len,
            count: f.count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const SYN: u8 = 0x02;
    const FIN: u8 = 0x01;
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;

    /// An Ethernet frame with an IPv4 TCP segment from 10.0.0.2:443 to `peer`.
    fn segment(peer: ([u8; 4], u16), seq: u32, flags: u8, data: usize) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[0x02; 6]);
        f.extend_from_slice(&[0x04; 6]);
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 20 + data) as u16;
        f.extend_from_slice(&[0x45, 0, total.to_be_bytes()[0], total.to_be_bytes()[1]]);
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 2]);
        f.extend_from_slice(&peer.0);
        f.extend_from_slice(&443u16.to_be_bytes());
        f.extend_from_slice(&peer.1.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&1u32.to_be_bytes());
        f.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.resize(f.len() + data, 0xab);
        f
    }

    #[test]
    fn resent_data_syn_and_fin_are_retransmissions_and_nothing_else_is() {
        let a = ([10, 0, 0, 254], 40000);
        let b = ([10, 0, 0, 254], 40001);
        let mut s = Sent::new();
        let isn = u32::MAX - 100; // the sequence numbers wrap during the test
        assert_eq!(s.frame(&segment(a, isn, SYN | ACK, 0)), None);
        // The SYN-ACK again: a retransmission of 1 sequence number.
        let r = s.frame(&segment(a, isn, SYN | ACK, 0)).unwrap();
        assert_eq!(r.peer, "10.0.0.254:40000".parse().unwrap());
        assert_eq!((r.len, r.count), (1, 1));
        // New data, across the wrap, then a pure ACK and a RST: none is one.
        let mut seq = isn.wrapping_add(1);
        for _ in 0..3 {
            assert_eq!(s.frame(&segment(a, seq, ACK, 100)), None);
            seq = seq.wrapping_add(100);
        }
        assert_eq!(s.frame(&segment(a, seq, ACK, 0)), None);
        assert_eq!(s.frame(&segment(a, seq, RST, 0)), None);
        // The second segment resent (a fast retransmit), and the first resent with new data
        // after it (an RTO retransmission that fills a larger segment).
        let second = isn.wrapping_add(101);
        assert_eq!(s.frame(&segment(a, second, ACK, 100)).unwrap().count, 2);
        let r = s.frame(&segment(a, isn.wrapping_add(1), ACK, 400)).unwrap();
        assert_eq!((r.len, r.count), (400, 3));
        let next = isn.wrapping_add(401);
        // A keep-alive probe (one byte just below the highest) is not one.
        assert_eq!(s.frame(&segment(a, next.wrapping_sub(1), ACK, 1)), None);
        // The FIN, then the FIN again.
        assert_eq!(s.frame(&segment(a, next, FIN | ACK, 0)), None);
        assert_eq!(s.frame(&segment(a, next, FIN | ACK, 0)).unwrap().count, 4);
        // Another connection is followed on its own; a new SYN between the same ports starts
        // over.
        assert_eq!(s.frame(&segment(b, 7, SYN | ACK, 0)), None);
        assert_eq!(s.frame(&segment(b, 8, ACK, 10)), None);
        assert_eq!(s.frame(&segment(a, 5000, SYN | ACK, 0)), None);
        assert_eq!(s.frame(&segment(a, 5001, ACK, 10)), None);
        assert_eq!(s.frame(&segment(a, 5001, ACK, 10)).unwrap().count, 1);
    }

    #[test]
    fn a_full_table_reuses_its_oldest_entry() {
        let mut s = Sent::new();
        for p in 0..FLOWS as u16 + 1 {
            assert_eq!(s.frame(&segment(([10, 0, 0, 9], p), 1, ACK, 10)), None);
        }
        // Port 0's entry went to port FLOWS: its resend is not seen, port 1's is.
        assert_eq!(s.frame(&segment(([10, 0, 0, 9], 0), 1, ACK, 10)), None);
        assert!(s.frame(&segment(([10, 0, 0, 9], 2), 1, ACK, 10)).is_some());
        // Not TCP over IPv4: ignored.
        assert_eq!(s.frame(&[0u8; 60]), None);
        assert_eq!(s.frame(&[]), None);
    }
}
