//! Slow clients (issue #15): the real server on host sockets, with its default [`Limits`], under
//! slowloris connections that send a partial request head, a header line at a time, and
//! reconnect at once when cut; and the per-peer connection cap.
//!
//! The attackers come from 127.0.0.2 to 127.0.0.21 (the whole of 127/8 is loopback on Linux),
//! 15 from each: under the per-peer cap, so that it is the full table's eviction of head-less
//! connections, not the cap, that keeps the server serving.
#![cfg(unix)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::{file, site};
use socket2::{Domain, Socket, Type};
use uni_http::{Limits, NoLog, Server, StaticFiles};
use uni_net::socket::SocketStack;
use uni_runtime::platform::{block_on, Clock};
use uni_runtime::BootArgs;

/// The tests of this file each load the machine; they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A plain server of the test site on 127.0.0.1, with `limits`, on a thread of its own.
fn server(limits: Limits) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        block_on(async move {
            let stack =
                SocketStack::configure("net", "127.0.0.1/8", None, &BootArgs::default()).unwrap();
            let server = Server::plain(stack, Clock::new(), 0)
                .with_limits(limits)
                .listen()
                .await
                .unwrap();
            tx.send(server.local_addr()).unwrap();
            let _ = server.serve(StaticFiles::new(site()), NoLog).await;
        })
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the server listens")
}

/// A TCP connection to `to` from the address `from` (any port).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SocketAddr::new(IpAddr::V4(from), 0).into())?;
    s.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(s.into())
}

/// The start of a request head that never ends.
const PARTIAL_HEAD: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: t\r\n";

/// One slowloris attacker until `stop` or `until`: connects from `from`, sends a partial head,
/// then a header line every 200 ms, and reconnects as soon as the server cuts it (it reads
/// meanwhile, so it sees the cut at once). Returns how many times it connected.
fn attacker(from: Ipv4Addr, to: SocketAddr, stop: &AtomicBool, until: Instant) -> u64 {
    let mut connects = 0;
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        let Ok(mut s) = connect_from(from, to) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        connects += 1;
        if s.write_all(PARTIAL_HEAD).is_err() {
            continue;
        }
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            match s.read(&mut buf) {
                // cut (a 408 would come before the end; read on to it)
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if s.write_all(b"X-Slow: 1\r\n").is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    connects
}

/// One request on a new connection from 127.0.0.1: (how long it took to connect, send and get
/// the whole response, the response or the error).
fn probe(to: SocketAddr) -> (Duration, Result<Vec<u8>, std::io::Error>) {
    let start = Instant::now();
    let result = (|| {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(10))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")?;
        let mut response = Vec::new();
        s.read_to_end(&mut response)?;
        Ok(response)
    })();
    (start.elapsed(), result)
}

/// Whether `response` is a whole `200` with the test site's index page.
fn is_index(response: &[u8]) -> bool {
    response.starts_with(b"HTTP/1.1 200 ") && response.ends_with(file("index.html"))
}

const ATTACKERS: usize = 300;
const ADDRESSES: u8 = 20;
const PROBES: usize = 200;

#[test]
fn reconnecting_slowloris_over_the_table_does_not_delay_other_clients() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let limits = Limits::default();
    assert!(
        ATTACKERS > limits.max_connections,
        "the attack fills the table"
    );
    assert!(
        ATTACKERS.div_ceil(ADDRESSES as usize) <= limits.max_per_peer,
        "the per-peer cap lets every attacker in"
    );
    let addr = server(limits);
    let stop = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicU64::new(0));
    // Bounded in time even if this test fails before it stops them.
    let until = Instant::now() + Duration::from_secs(30);
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|i| {
            let from = Ipv4Addr::new(127, 0, 0, 2 + (i % ADDRESSES as usize) as u8);
            let (stop, connects) = (stop.clone(), connects.clone());
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let n = attacker(from, addr, &stop, until);
                    connects.fetch_add(n, Ordering::Relaxed);
                })
                .unwrap()
        })
        .collect();
    // Let every attacker connect once and the table fill.
    std::thread::sleep(Duration::from_secs(1));

    let mut latencies = Vec::with_capacity(PROBES);
    let mut failures = Vec::new();
    for i in 0..PROBES {
        let (took, result) = probe(addr);
        latencies.push(took);
        match result {
            Ok(r) if is_index(&r) => {}
            Ok(r) => failures.push(format!(
                "probe {i}: {}",
                String::from_utf8_lossy(&r[..r.len().min(80)])
            )),
            Err(e) => failures.push(format!("probe {i}: {e}")),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.join().unwrap();
    }
    let connects = connects.load(Ordering::Relaxed);

    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).max(1) - 1];
    let (p50, p95, max) = (at(0.50), at(0.95), latencies[latencies.len() - 1]);
    eprintln!(
        "{PROBES} probes under {ATTACKERS} reconnecting slowloris connections ({connects} \
         connects): p50 {p50:?}, p95 {p95:?}, max {max:?}"
    );
    assert!(failures.is_empty(), "probes not answered 200: {failures:?}");
    // The test is far shorter than `head_timeout` (10 s): every reconnect past the first
    // connects is an eviction from the full table.
    assert!(
        connects > 2 * ATTACKERS as u64,
        "the attackers were cut {} times: the table never filled, so eviction was not tested",
        connects.saturating_sub(ATTACKERS as u64)
    );
    assert!(
        p95 < Duration::from_millis(100),
        "95% of requests must be answered within 100 ms under the attack: p95 {p95:?}"
    );
}

#[test]
fn connections_over_the_per_peer_cap_are_closed_at_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let limits = Limits::default();
    let cap = limits.max_per_peer;
    let addr = server(limits);
    let from = Ipv4Addr::new(127, 0, 0, 50);
    let mut conns: Vec<TcpStream> = (0..cap + 8)
        .map(|_| {
            let mut s = connect_from(from, addr).unwrap();
            s.write_all(PARTIAL_HEAD).unwrap();
            s
        })
        .collect();
    // The server accepts them in order: the last 8 are over the cap and see the end of the
    // stream at once; the others stay open (their head has 10 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    let closed = |conns: &mut [TcpStream]| -> Vec<usize> {
        conns
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| {
                s.set_nonblocking(true).unwrap();
                let mut b = [0u8; 64];
                match s.read(&mut b) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => None,
                    _ => Some(i),
                }
            })
            .collect()
    };
    let mut cut = closed(&mut conns);
    while cut.len() < 8 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        cut = closed(&mut conns);
    }
    // once the 8 are cut, give the server time to (wrongly) cut more
    std::thread::sleep(Duration::from_millis(200));
    cut = closed(&mut conns);
    assert_eq!(
        cut,
        (cap..cap + 8).collect::<Vec<_>>(),
        "connections closed"
    );
    // Other peers are served meanwhile.
    let (_, r) = probe(addr);
    assert!(is_index(&r.unwrap()), "127.0.0.1 is served");
    // A place given back is a place for the same peer again.
    drop(conns.remove(0));
    let mut back = None;
    while Instant::now() < deadline + Duration::from_secs(5) {
        let mut s = connect_from(from, addr).unwrap();
        s.write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut r = Vec::new();
        let _ = s.read_to_end(&mut r);
        if !r.is_empty() {
            back = Some(r);
            break;
        }
        // the server had not seen the first connection's end yet: refused, try again
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        back.as_deref().is_some_and(is_index),
        "{from} is served again once one of its connections ended"
    );
}

#[test]
fn a_connection_without_a_head_gives_its_place_after_the_grace_time() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let grace = Duration::from_millis(300);
    let limits = Limits::default().max_connections(1).head_grace(grace);
    assert!(limits.head_timeout >= Duration::from_secs(10));
    let addr = server(limits);
    // It takes the only place and sends half a head.
    let before = Instant::now();
    let mut slow = connect_from(Ipv4Addr::new(127, 0, 0, 60), addr).unwrap();
    slow.write_all(PARTIAL_HEAD).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let (took, r) = probe(addr);
    let since = before.elapsed();
    assert!(is_index(&r.unwrap()), "the next client is served");
    // The next client waited for the slow connection (accepted after `before`) to be `grace`
    // old, not for its head timeout.
    assert!(
        since >= grace && took < Duration::from_secs(5),
        "served {took:?} after it asked, {since:?} after the slow client connected"
    );
    // The slow connection was closed without an answer (a head timeout would send 408).
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert_eq!(
        String::from_utf8_lossy(&rest),
        "",
        "closed without an answer"
    );
}
