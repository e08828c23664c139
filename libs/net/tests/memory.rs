//! The direct stack over an in-memory Ethernet link (no TAP, no root), against a bare smoltcp
//! interface on the other end: TCP connect and accept with data both ways, refusal, resets,
//! back-pressure from a slow reader, and UDP.
//!
//! DHCP and DNS need real servers; tests/netns.rs runs them (dnsmasq) with the Linux kernel as
//! the TCP peer, over a TAP device in a namespace of its own.

mod support;

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use futures_lite::future;
use support::{first_difference, link, pattern, run, LinkStats, Peer};
use uni_net::direct::{DirectStack, TCP_BUFFER};
use uni_net::Ipv4Setting;
use uni_runtime::device::net::{Flow, Ipv4Config, Listener, NetError, Stack, UdpSocket};
use uni_runtime::device::Clock as _;
use uni_runtime::platform::Clock;

const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const LIMIT: Duration = Duration::from_secs(60);

type Stk = DirectStack<support::MemNetif, Clock>;

/// The stack at 10.0.0.2/24 and a peer at 10.0.0.1/24 on a link of `capacity` frames each way.
fn setup(capacity: usize) -> (Stk, Peer, LinkStats) {
    let (a, b, stats) = link(capacity, [0x02, 0, 0, 0, 0, 2], [0x02, 0, 0, 0, 0, 1]);
    let stack = DirectStack::new(
        a,
        Clock::new(),
        Ipv4Setting::Static(Ipv4Config {
            address: STACK_IP,
            prefix_len: 24,
            gateway: None,
        }),
    );
    (stack, Peer::start(b, PEER_IP, 24), stats)
}

async fn read_to_end(flow: &mut impl Flow) -> Vec<u8> {
    let mut all = vec![];
    let mut buf = vec![0; 10_000];
    loop {
        match flow.read(&mut buf).await {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read after {} bytes: {e}", all.len()),
        }
    }
}

#[test]
fn connect_carries_data_both_ways_to_a_peer_listener() {
    run("connect", LIMIT, async {
        let (stack, peer, _) = setup(64);
        let h = peer.tcp_listen(80, 64 * 1024);
        let mut flow = stack
            .connect(SocketAddr::new(IpAddr::V4(PEER_IP), 80))
            .await
            .expect("connect to the peer's listener");
        assert_eq!(flow.peer_addr(), SocketAddr::new(IpAddr::V4(PEER_IP), 80));
        let remote = peer.established(h).await.expect("the peer's side");
        assert_eq!(remote.ip(), IpAddr::V4(STACK_IP));
        assert!(remote.port() >= 49152, "ephemeral port {remote}");

        let up = pattern(300_000, 1);
        let down = pattern(200_000, 2);
        let (_, got_up) = future::zip(
            async {
                flow.write_all(&up).await.unwrap();
                flow.shutdown().await.unwrap();
            },
            peer.recv_to_end(h),
        )
        .await;
        assert!(
            got_up == up,
            "stack to peer: {}",
            first_difference(&got_up, &up)
        );
        // Half-closed: our FIN is out, and the peer can still send.
        let ((), got_down) = future::zip(
            async {
                peer.send_all(h, &down).await;
                peer.close(h);
            },
            read_to_end(&mut flow),
        )
        .await;
        assert!(
            got_down == down,
            "peer to stack: {}",
            first_difference(&got_down, &down)
        );
        flow.close().await.unwrap();
    });
}

#[test]
fn accept_takes_concurrent_connections_from_the_peer() {
    run("accept", LIMIT, async {
        let (stack, peer, _) = setup(64);
        let listener = stack.listen(7000).await.unwrap();
        assert_eq!(
            listener.local_addr(),
            SocketAddr::new(IpAddr::V4(STACK_IP), 7000)
        );
        let to = SocketAddrV4::new(STACK_IP, 7000);
        let peers: Vec<_> = (0..4u16)
            // Buffers larger than each echo: a full window stalls smoltcp for up to 2 s after a
            // zero-window probe (see a_fast_writer_is_held_back_by_a_slow_reader for that case).
            .map(|i| (40000 + i, peer.tcp_connect(to, 40000 + i, 64 * 1024)))
            .collect();
        // The stack echoes each accepted flow, reversed, so a mix-up between flows shows.
        let server = async {
            let mut seen = vec![];
            for _ in 0..peers.len() {
                let (mut flow, from) = listener.accept().await.unwrap();
                assert_eq!(flow.peer_addr(), from);
                seen.push(from);
                let mut got = read_to_end(&mut flow).await;
                got.reverse();
                flow.write_all(&got).await.unwrap();
                flow.close().await.unwrap();
            }
            seen
        };
        let clients = async {
            for &(port, h) in &peers {
                assert!(peer.established(h).await.is_ok(), "client {port}");
            }
            for &(port, h) in &peers {
                let msg = pattern(20_000 + port as usize, port as u8);
                peer.send_all(h, &msg).await;
                peer.close(h);
                let back = peer.recv_to_end(h).await;
                let mut want = msg.clone();
                want.reverse();
                assert!(
                    back == want,
                    "client {port}: {}",
                    first_difference(&back, &want)
                );
            }
        };
        let (mut seen, ()) = future::zip(server, clients).await;
        seen.sort();
        let want: Vec<_> = peers
            .iter()
            .map(|&(port, _)| SocketAddr::new(IpAddr::V4(PEER_IP), port))
            .collect();
        assert_eq!(seen, want, "the peers the listener reported");
    });
}

#[test]
fn connect_to_a_port_nobody_listens_on_is_refused() {
    run("refused", LIMIT, async {
        let (stack, _peer, _) = setup(64);
        let r = stack
            .connect(SocketAddr::new(IpAddr::V4(PEER_IP), 81))
            .await;
        assert_eq!(r.err(), Some(NetError::Refused));
    });
}

#[test]
fn a_reset_from_the_peer_fails_the_read() {
    run("reset", LIMIT, async {
        let (stack, peer, _) = setup(64);
        let h = peer.tcp_listen(80, 8192);
        let mut flow = stack
            .connect(SocketAddr::new(IpAddr::V4(PEER_IP), 80))
            .await
            .unwrap();
        peer.established(h).await.unwrap();
        peer.tcp_wait(h, |s| {
            s.abort();
            Some(())
        })
        .await;
        let mut buf = [0; 16];
        assert_eq!(flow.read(&mut buf).await, Err(NetError::Reset));
    });
}

#[test]
fn a_fast_writer_is_held_back_by_a_slow_reader() {
    // The peer's receive window, and how much the stack may hold unacknowledged.
    const PEER_BUF: usize = 16 * 1024;
    const TOTAL: usize = 2 << 20;
    run("back-pressure", LIMIT, async {
        let (stack, peer, stats) = setup(8);
        let h = peer.tcp_listen(80, PEER_BUF);
        let mut flow = stack
            .connect(SocketAddr::new(IpAddr::V4(PEER_IP), 80))
            .await
            .unwrap();
        peer.established(h).await.unwrap();
        let data = pattern(TOTAL, 9);
        let accepted = Cell::new(0usize);
        let writer = async {
            while accepted.get() < TOTAL {
                let n = flow.write(&data[accepted.get()..]).await.unwrap();
                assert!(n > 0);
                accepted.set(accepted.get() + n);
            }
            flow.close().await.unwrap();
        };
        let clock = Clock::new();
        let reader = async {
            // First the peer reads nothing: the writer must stall once the peer's window and the
            // stack's send buffer are full, instead of buffering or dropping the rest.
            let mut last = usize::MAX;
            let mut stable = 0;
            for _ in 0..200 {
                clock.sleep(Duration::from_millis(50)).await;
                stable = if accepted.get() == last {
                    stable + 1
                } else {
                    0
                };
                last = accepted.get();
                if stable == 5 {
                    break;
                }
            }
            let held = accepted.get();
            assert_eq!(stable, 5, "the writer never stalled: {held} bytes accepted");
            assert_eq!(
                held,
                TCP_BUFFER + PEER_BUF,
                "with the reader stopped, write() accepts the send buffer plus the peer's window"
            );
            assert_eq!(peer.recv_queue(h), PEER_BUF, "the peer's window is full");

            // Then it reads slowly, and never more than those two buffers are in between.
            let mut got = Vec::with_capacity(TOTAL);
            let mut reads = 0;
            loop {
                let chunk = peer.recv(h, 4000).await;
                if chunk.is_empty() {
                    break;
                }
                got.extend_from_slice(&chunk);
                let between = accepted.get() - got.len();
                assert!(
                    between <= TCP_BUFFER + PEER_BUF,
                    "{between} bytes written and not yet read, more than the buffers hold"
                );
                reads += 1;
                if reads % 4 == 0 {
                    clock.sleep(Duration::from_millis(1)).await;
                }
            }
            got
        };
        let ((), got) = future::zip(writer, reader).await;
        assert!(got == data, "{}", first_difference(&got, &data));
        let (up, down) = (stats.a_to_b(), stats.b_to_a());
        eprintln!("link: stack->peer {up:?}, peer->stack {down:?}");
        assert!(up.carried >= TOTAL / 1460, "{up:?}");
    });
}

#[test]
fn udp_datagrams_both_ways_and_truncation() {
    run("udp", LIMIT, async {
        let (stack, peer, _) = setup(64);
        let sock = stack.bind_udp(5000).await.unwrap();
        assert_eq!(
            sock.local_addr(),
            SocketAddr::new(IpAddr::V4(STACK_IP), 5000)
        );
        let ph = peer.udp_bind(6000);
        let from_peer = SocketAddr::new(IpAddr::V4(PEER_IP), 6000);

        peer.udp_send(ph, b"hello, stack", SocketAddrV4::new(STACK_IP, 5000));
        let mut buf = [0; 100];
        let (n, from) = sock.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"hello, stack"[..], from_peer));

        sock.send_to(b"hello, peer", from_peer).await.unwrap();
        let (data, from) = peer.udp_recv(ph).await;
        assert_eq!(data, b"hello, peer");
        assert_eq!(from, SocketAddr::new(IpAddr::V4(STACK_IP), 5000));

        // A datagram longer than the buffer is cut to fit, with its real sender.
        let long = pattern(1000, 3);
        peer.udp_send(ph, &long, SocketAddrV4::new(STACK_IP, 5000));
        let mut small = [0; 10];
        let (n, from) = sock.recv_from(&mut small).await.unwrap();
        assert_eq!((&small[..n], from), (&long[..10], from_peer));
        // ...and the next one is whole.
        peer.udp_send(ph, b"next", SocketAddrV4::new(STACK_IP, 5000));
        let (n, _) = sock.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"next");
    });
}
