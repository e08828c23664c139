//! Test support for the direct stack: an in-memory Ethernet link implementing
//! [`Netif`](uni_runtime::device::netif::Netif), a smoltcp interface driven as the peer on its
//! other end, and a time limit for a test's async body.
#![allow(dead_code)] // each test file uses a different part

use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::future::{poll_fn, Future};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint};
use uni_runtime::device::netif::Netif;
use uni_runtime::device::Clock as _;
use uni_runtime::platform::Clock;

/// Ethernet header + 1500 bytes of payload.
const MTU: usize = 1514;

/// One direction of a link: frames in flight from one end to the other.
struct Queue {
    frames: VecDeque<Vec<u8>>,
    /// Frames `transmit` accepts before it refuses (returns `None`).
    capacity: usize,
    /// The receiving end's driver, waiting for a frame.
    reader: Option<Waker>,
    /// The sending end's driver, waiting for room.
    writer: Option<Waker>,
    /// The most frames this queue ever held.
    max_depth: usize,
    /// Frames carried.
    carried: usize,
    /// Times `transmit` refused for want of room.
    refused: usize,
    /// TCP ports (either end) whose frames this link silently drops: peers that vanished.
    dead: Rc<RefCell<HashSet<u16>>>,
    /// Frames dropped for a dead port, and of those, how many were SYN-ACKs and RSTs.
    dropped: Dropped,
}

/// What a link dropped for dead ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub frames: usize,
    pub syn_acks: usize,
    pub rsts: usize,
}

/// The TCP ports and flags of an Ethernet frame, if it carries TCP over IPv4.
pub fn tcp_ports(frame: &[u8]) -> Option<(u16, u16, bool, bool, bool)> {
    use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let t = TcpPacket::new_checked(ip.payload()).ok()?;
    Some((t.src_port(), t.dst_port(), t.syn(), t.ack(), t.rst()))
}

impl Queue {
    fn push(&mut self, frame: Vec<u8>) {
        if let Some((src, dst, syn, ack, rst)) = tcp_ports(&frame) {
            let dead = self.dead.borrow();
            if dead.contains(&src) || dead.contains(&dst) {
                self.dropped.frames += 1;
                self.dropped.syn_acks += usize::from(syn && ack);
                self.dropped.rsts += usize::from(rst);
                return;
            }
        }
        self.push_anyway(frame)
    }

    fn push_anyway(&mut self, frame: Vec<u8>) {
        if std::env::var_os("UNI_NET_TRACE").is_some() {
            eprintln!(
                "{:?} {}",
                std::time::Instant::now(),
                smoltcp::wire::PrettyPrinter::<smoltcp::wire::EthernetFrame<&[u8]>>::new(
                    "", &frame
                )
            );
        }
        self.frames.push_back(frame);
        self.carried += 1;
        self.max_depth = self.max_depth.max(self.frames.len());
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        let f = self.frames.pop_front()?;
        if let Some(w) = self.writer.take() {
            w.wake();
        }
        Some(f)
    }
}

/// Counters of one direction of a link.
#[derive(Debug, Clone, Copy)]
pub struct QueueStats {
    pub max_depth: usize,
    pub carried: usize,
    pub refused: usize,
}

/// One end of an in-memory Ethernet link.
pub struct MemNetif {
    mac: [u8; 6],
    rx: Rc<RefCell<Queue>>,
    tx: Rc<RefCell<Queue>>,
    /// `transmit` refused since `poll_ready` last reported room.
    tx_blocked: bool,
}

/// Both directions' counters, readable while the ends are in use.
#[derive(Clone)]
pub struct LinkStats {
    a_to_b: Rc<RefCell<Queue>>,
    b_to_a: Rc<RefCell<Queue>>,
}

impl LinkStats {
    pub fn a_to_b(&self) -> QueueStats {
        stats(&self.a_to_b.borrow())
    }
    pub fn b_to_a(&self) -> QueueStats {
        stats(&self.b_to_a.borrow())
    }
    /// Makes the peer's TCP port `port` vanish: from now on the link drops every frame to or
    /// from it, in both directions, as if the peer's host had gone (no FIN, no RST).
    pub fn kill_port(&self, port: u16) {
        self.a_to_b.borrow().dead.borrow_mut().insert(port);
    }

    /// Carries every port's frames again (the set keeps its capacity, so this allocates
    /// nothing).
    pub fn revive_all(&self) {
        self.a_to_b.borrow().dead.borrow_mut().clear();
    }

    /// What the link dropped for dead ports, from the stack (a) to the peer (b).
    pub fn dropped_a_to_b(&self) -> Dropped {
        self.a_to_b.borrow().dropped
    }

    /// Puts a frame on the link towards a, as if b had sent it.
    pub fn inject_to_a(&self, frame: Vec<u8>) {
        self.b_to_a.borrow_mut().push_anyway(frame);
    }

    /// Frames in flight in both directions now.
    pub fn in_flight(&self) -> usize {
        self.a_to_b.borrow().frames.len() + self.b_to_a.borrow().frames.len()
    }
}

fn stats(q: &Queue) -> QueueStats {
    QueueStats {
        max_depth: q.max_depth,
        carried: q.carried,
        refused: q.refused,
    }
}

/// A link between two MACs; each direction holds up to `capacity` frames sent with
/// `transmit`. (A reply sent through the token `receive` hands out is always taken, so two
/// full directions cannot deadlock; it is bounded by the frames received.)
pub fn link(capacity: usize, mac_a: [u8; 6], mac_b: [u8; 6]) -> (MemNetif, MemNetif, LinkStats) {
    let dead = Rc::new(RefCell::new(HashSet::new()));
    let q = || {
        Rc::new(RefCell::new(Queue {
            dead: dead.clone(),
            dropped: Dropped::default(),
            frames: VecDeque::new(),
            capacity,
            reader: None,
            writer: None,
            max_depth: 0,
            carried: 0,
            refused: 0,
        }))
    };
    let (ab, ba) = (q(), q());
    let a = MemNetif {
        mac: mac_a,
        rx: ba.clone(),
        tx: ab.clone(),
        tx_blocked: false,
    };
    let b = MemNetif {
        mac: mac_b,
        rx: ab.clone(),
        tx: ba.clone(),
        tx_blocked: false,
    };
    (
        a,
        b,
        LinkStats {
            a_to_b: ab,
            b_to_a: ba,
        },
    )
}

impl Netif for MemNetif {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut rx = self.rx.borrow_mut();
        if !rx.frames.is_empty() {
            return Poll::Ready(());
        }
        rx.reader = Some(cx.waker().clone());
        if self.tx_blocked {
            let mut tx = self.tx.borrow_mut();
            if tx.frames.len() < tx.capacity {
                self.tx_blocked = false;
                return Poll::Ready(());
            }
            tx.writer = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

pub struct RxToken(Vec<u8>);
pub struct TxToken<'a>(&'a RefCell<Queue>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        assert!(len <= MTU, "a {len}-byte frame on a {MTU}-byte link");
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.borrow_mut().push(frame);
        r
    }
}

impl Device for MemNetif {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: SmolInstant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.rx.borrow_mut().pop()?;
        Some((RxToken(frame), TxToken(&self.tx)))
    }

    fn transmit(&mut self, _now: SmolInstant) -> Option<TxToken<'_>> {
        {
            let mut tx = self.tx.borrow_mut();
            if tx.frames.len() >= tx.capacity {
                tx.refused += 1;
                self.tx_blocked = true;
                return None;
            }
        }
        Some(TxToken(&self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}

/// Runs `body` on this thread's uni executor (so the stack's driver task runs too), failing the
/// test if it has not finished within `limit`.
pub fn run<T>(what: &str, limit: Duration, body: impl Future<Output = T>) -> T {
    let what = what.to_string();
    uni_runtime::platform::block_on(futures_lite::future::or(body, async move {
        Clock::new().sleep(limit).await;
        panic!("{what}: not finished after {limit:?}")
    }))
}

fn smol_now(c: &Clock) -> SmolInstant {
    SmolInstant::from_micros((c.now().as_nanos() / 1000) as i64)
}

/// A bare smoltcp interface on the far end of a link, driven by a task of its own: an
/// independent TCP/UDP peer (it shares smoltcp with the stack under test, but none of
/// direct.rs's flow, listener and driver code).
#[derive(Clone)]
pub struct Peer(Rc<PeerShared>);

struct PeerShared {
    st: RefCell<PeerState>,
    clock: Clock,
    kicked: Cell<bool>,
    driver: RefCell<Option<Waker>>,
}

struct PeerState {
    iface: Interface,
    dev: MemNetif,
    sockets: SocketSet<'static>,
}

impl Peer {
    /// A peer at `addr/prefix` on `dev`.
    pub fn start(mut dev: MemNetif, addr: Ipv4Addr, prefix: u8) -> Peer {
        let clock = Clock::new();
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(dev.mac)));
        config.random_seed = 0x5eed;
        let mut iface = Interface::new(config, &mut dev, smol_now(&clock));
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::Ipv4(addr), prefix)).unwrap();
        });
        let sh = Rc::new(PeerShared {
            st: RefCell::new(PeerState {
                iface,
                dev,
                sockets: SocketSet::new(vec![]),
            }),
            clock,
            kicked: Cell::new(false),
            driver: RefCell::new(None),
        });
        uni_runtime::task::spawn(drive(sh.clone()));
        Peer(sh)
    }

    fn kick(&self) {
        self.0.kicked.set(true);
        if let Some(w) = self.0.driver.borrow_mut().take() {
            w.wake();
        }
    }

    /// A TCP socket with `buffer` bytes each way, added to the peer.
    fn tcp(
        &self,
        buffer: usize,
        f: impl FnOnce(&mut tcp::Socket<'static>, &mut Interface),
    ) -> SocketHandle {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; buffer]),
            tcp::SocketBuffer::new(vec![0; buffer]),
        );
        let mut st = self.0.st.borrow_mut();
        f(&mut s, &mut st.iface);
        let h = st.sockets.add(s);
        drop(st);
        self.kick();
        h
    }

    /// Listens on `port` (one connection).
    pub fn tcp_listen(&self, port: u16, buffer: usize) -> SocketHandle {
        self.tcp(buffer, |s, _| s.listen(port).unwrap())
    }

    /// Starts connecting from `local_port` to `to`.
    pub fn tcp_connect(&self, to: SocketAddrV4, local_port: u16, buffer: usize) -> SocketHandle {
        self.tcp(buffer, |s, iface| {
            s.connect(iface.context(), (*to.ip(), to.port()), local_port)
                .unwrap()
        })
    }

    /// Waits until `f` on the socket returns `Some`.
    pub async fn tcp_wait<R>(
        &self,
        h: SocketHandle,
        mut f: impl FnMut(&mut tcp::Socket<'static>) -> Option<R>,
    ) -> R {
        let r = poll_fn(|cx| {
            let mut st = self.0.st.borrow_mut();
            let s = st.sockets.get_mut::<tcp::Socket>(h);
            match f(s) {
                Some(r) => Poll::Ready(r),
                None => {
                    s.register_recv_waker(cx.waker());
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await;
        self.kick();
        r
    }

    /// Waits for the handshake; returns the remote end, or the state it ended in.
    pub async fn established(&self, h: SocketHandle) -> Result<SocketAddr, tcp::State> {
        self.tcp_wait(h, |s| match s.state() {
            tcp::State::Listen | tcp::State::SynSent | tcp::State::SynReceived => None,
            tcp::State::Established => Some(Ok(to_std(s.remote_endpoint().unwrap()))),
            other => Some(Err(other)),
        })
        .await
    }

    /// Sends all of `data`.
    pub async fn send_all(&self, h: SocketHandle, mut data: &[u8]) {
        while !data.is_empty() {
            let n = self
                .tcp_wait(h, |s| {
                    assert!(s.may_send(), "peer: sending on a socket in {}", s.state());
                    if s.can_send() {
                        Some(s.send_slice(data).unwrap())
                    } else {
                        None
                    }
                })
                .await;
            data = &data[n..];
        }
    }

    /// Receives up to `max` bytes; empty at the end of the stream.
    pub async fn recv(&self, h: SocketHandle, max: usize) -> Vec<u8> {
        self.tcp_wait(h, |s| {
            if s.can_recv() {
                let mut buf = vec![0; max];
                let n = s.recv_slice(&mut buf).unwrap();
                buf.truncate(n);
                Some(buf)
            } else if !s.may_recv() {
                Some(vec![])
            } else {
                None
            }
        })
        .await
    }

    /// Receives until the end of the stream.
    pub async fn recv_to_end(&self, h: SocketHandle) -> Vec<u8> {
        let mut all = vec![];
        loop {
            let chunk = self.recv(h, 64 * 1024).await;
            if chunk.is_empty() {
                return all;
            }
            all.extend_from_slice(&chunk);
        }
    }

    /// Sends a FIN after the data queued.
    pub fn close(&self, h: SocketHandle) {
        self.0
            .st
            .borrow_mut()
            .sockets
            .get_mut::<tcp::Socket>(h)
            .close();
        self.kick();
    }

    /// Forgets a socket without a word to the other end (pair with `LinkStats::kill_port`).
    pub fn forget(&self, h: SocketHandle) {
        self.0.st.borrow_mut().sockets.remove(h);
    }

    /// The socket's TCP state.
    pub fn state(&self, h: SocketHandle) -> tcp::State {
        self.0.st.borrow().sockets.get::<tcp::Socket>(h).state()
    }

    /// Bytes waiting in the socket's receive buffer.
    pub fn recv_queue(&self, h: SocketHandle) -> usize {
        self.0
            .st
            .borrow_mut()
            .sockets
            .get_mut::<tcp::Socket>(h)
            .recv_queue()
    }

    /// A UDP socket bound to `port`.
    pub fn udp_bind(&self, port: u16) -> SocketHandle {
        let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8192]);
        let mut s = udp::Socket::new(buf(), buf());
        s.bind(port).unwrap();
        self.0.st.borrow_mut().sockets.add(s)
    }

    /// Sends one datagram.
    pub fn udp_send(&self, h: SocketHandle, data: &[u8], to: SocketAddrV4) {
        self.0
            .st
            .borrow_mut()
            .sockets
            .get_mut::<udp::Socket>(h)
            .send_slice(data, (*to.ip(), to.port()))
            .unwrap();
        self.kick();
    }

    /// Waits for one datagram.
    pub async fn udp_recv(&self, h: SocketHandle) -> (Vec<u8>, SocketAddr) {
        poll_fn(|cx| {
            let mut st = self.0.st.borrow_mut();
            let s = st.sockets.get_mut::<udp::Socket>(h);
            match s.recv() {
                Ok((data, meta)) => Poll::Ready((data.to_vec(), to_std(meta.endpoint))),
                Err(_) => {
                    s.register_recv_waker(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

fn to_std(ep: IpEndpoint) -> SocketAddr {
    let IpAddress::Ipv4(a) = ep.addr;
    SocketAddr::V4(SocketAddrV4::new(a, ep.port))
}

async fn drive(sh: Rc<PeerShared>) {
    loop {
        let delay = {
            let now = smol_now(&sh.clock);
            let mut st = sh.st.borrow_mut();
            let PeerState {
                iface,
                dev,
                sockets,
            } = &mut *st;
            iface.poll(now, dev, sockets);
            iface
                .poll_delay(now, sockets)
                .map(|d| Duration::from_micros(d.total_micros()))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1))
        };
        let mut sleep = pin!(sh.clock.sleep(delay));
        poll_fn(|cx| {
            if sh.kicked.replace(false) || delay.is_zero() {
                return Poll::Ready(());
            }
            *sh.driver.borrow_mut() = Some(cx.waker().clone());
            if sh.st.borrow_mut().dev.poll_ready(cx).is_ready() {
                return Poll::Ready(());
            }
            sleep.as_mut().poll(cx)
        })
        .await;
        if delay.is_zero() {
            futures_lite::future::yield_now().await;
        }
    }
}

/// `len` bytes of a pattern that does not repeat with any period up to 251 (so a lost, doubled
/// or reordered segment shows), starting from `seed`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) as u8).wrapping_mul(7).wrapping_add(seed) ^ (i >> 16) as u8)
        .collect()
}

/// Where two byte strings first differ, for failure messages.
pub fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!(
            "first difference at byte {i} (of {} and {})",
            a.len(),
            b.len()
        ),
        None => format!(
            "lengths {} and {}, equal as far as the shorter goes",
            a.len(),
            b.len()
        ),
    }
}
