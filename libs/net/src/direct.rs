//! `stack = "direct"`: smoltcp running inside the unikernel, over the platform's [`Netif`]
//! (Xen netfront, or a TAP device on unix).
//!
//! One background task drives the interface: it polls smoltcp whenever the device has frames,
//! a timer smoltcp asked for expires, or a flow queued data; then it sleeps. Flows and listeners
//! only touch their sockets and wake that task, so no flow can block the stack.
//!
//! # Cleaning up after peers that vanish
//!
//! Every socket is reclaimed, its slot and its buffers freed, after timeouts a Linux user
//! knows ([`TcpTimeouts`], each one a boot argument):
//!
//! * **Idle or half-open** (established, the peer gone without FIN or RST): an idle flow sends a
//!   keep-alive probe every `--tcp-keepalive` seconds (75, Linux's `tcp_keepalive_intvl`), which
//!   a live peer answers; a flow whose peer has sent nothing at all for `--tcp-timeout` seconds
//!   (675, nine unanswered probes: Linux's `tcp_keepalive_probes` × `tcp_keepalive_intvl`) is
//!   reset. The same limit ends a flow whose data or FIN goes unacknowledged. The app's next
//!   read or write then fails with [`NetError::Reset`].
//! * **Closed by the app** (orphans, as Linux calls them): once the app has closed or dropped a
//!   flow, its socket gets `--tcp-fin-timeout` seconds (60, Linux's `tcp_fin_timeout`) in
//!   FIN-WAIT-2, at most that long of silence from the peer in any state, and `--tcp-timeout`
//!   seconds in all. smoltcp has no FIN-WAIT-2 timer of its own, so the driver aborts such
//!   sockets itself (with a RST). TIME-WAIT sockets are freed at once (a TIME-WAIT is not worth
//!   a socket's buffers, 64 to 384 KiB).
//! * **Handshakes** (SYN-RECEIVED on a listener, SYN-SENT on connect): given up after
//!   `--tcp-syn-timeout` seconds (63, what Linux's `tcp_synack_retries` = 5 amounts to); the
//!   listener's socket then listens again, and `connect` fails with [`NetError::TimedOut`]. A
//!   `connect` the app drops before it ends hands its socket to the driver, as a dropped flow
//!   does.
//!
//! # SYN floods
//!
//! A listener holds no socket until a SYN arrives: the driver holds the SYN back from smoltcp,
//! makes a socket for it (its buffers allocated then), and hands the SYN to smoltcp again, so
//! the socket answers it. The socket is on the listener's backlog from then until the app
//! accepts it; a listened port has at most [`DirectStack::backlog`] of them, in SYN-RECEIVED or
//! established and not yet accepted, each until the handshake completes or `--tcp-syn-timeout`
//! passes. A SYN that finds its port's backlog full is dropped before smoltcp sees it (so the
//! client retries later, as with Linux's full SYN queue, rather than being refused), and the
//! driver takes at most [`INGRESS_BUDGET`] frames per round before it sends and lets the app's
//! tasks run, so a flood of frames cannot starve established flows. A handshake that fails
//! (reset, timed out) frees its socket at once.
//!
//! On Xen, where the heap is the guest's memory and running out of it is a crash, a SYN is
//! also dropped when the heap has too little free for one more connection
//! ([`ROOM_PER_CONNECTION`] beyond [`HEAP_RESERVE`]): many clients at once on a small guest
//! wait and retry, rather than crash it. This bounds the connections by memory, not by count.
//!
//! # Memory
//!
//! A TCP socket costs its receive and transmit buffers plus a slot in smoltcp's socket table.
//! The buffers are allocated when its SYN arrives (or at `connect`) and sized to the heap
//! ([`tcp_buffers_for_heap`]): 32 KiB each way ([`TCP_BUFFER`]) below a heap of 6 MiB and on
//! unix, up to a 256 KiB receive buffer (a window that needs TCP window scaling, which smoltcp
//! then offers in its SYN-ACK) and a 128 KiB transmit buffer from a heap of 24 MiB, so that a
//! flow is not held to 32 KiB per round trip where memory allows more. Large buffers are taken
//! only while half the heap stays free; a connection made beyond that gets 32 KiB each way
//! ([`tcp_buffers_with_free_heap`]), so that as many connections at once fit as with small
//! buffers only. A listener with no connection in progress costs nothing but its entry. Under a
//! SYN flood a listener holds its backlog's sockets, so the backlog is sized to the heap and
//! its largest buffers (see [`backlog_for_heap`]): 5 for static-website at 4 MiB, 10 for a
//! guest of 32 MiB, [`BACKLOG`] from a heap of 48 MiB, so that a flood on two ports holds at
//! most a quarter of the heap.
//!
//! The table (a `Vec` inside `SocketSet`) grows, doubling, to the most sockets ever open at
//! once and never shrinks, since a socket's handle is its index: so after a burst the heap
//! stays higher by the table's growth (360 bytes a slot on armv7, 464 on x86_64), not by any
//! socket's buffers. [`DirectStack::new`] reserves [`SOCKET_SLOTS`] slots up front so that ordinary
//! loads never grow it; [`DirectStack::sockets`] reports what is open.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::{poll_fn, Future};
use core::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use core::pin::pin;
use core::task::{Poll, Waker};
use core::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp, udp, AnySocket};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, IpEndpoint, Ipv4Cidr};
use uni_runtime::device::net::{self, Ipv4Config, NetError};
use uni_runtime::device::netif::Netif;
use uni_runtime::device::Clock;
use uni_runtime::BootArgs;

use crate::{Ipv4Setting, NetConfig, NetConfigError};

/// Bytes of receive and of transmit buffer per TCP socket on the smallest heaps, and always on
/// unix: a flow's writer is held back once this much is written and not yet acknowledged by the
/// peer, and the peer once this much is received and not yet read. Larger heaps get larger
/// buffers ([`tcp_buffers_for_heap`]).
pub const TCP_BUFFER: usize = 32 * 1024;
/// The largest receive buffer (from a heap of 24 MiB, a guest of `memory = 26` or so): a
/// window of 256 KiB, announced with window scaling, which smoltcp offers for receive buffers
/// beyond 64 KiB. The transmit buffer is half the receive buffer.
pub const MAX_TCP_BUFFER: usize = 256 * 1024;

/// The receive and transmit buffers of one TCP socket, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpBuffers {
    /// The receive buffer: the most the peer may send ahead of the app's reads (the window).
    pub rx: usize,
    /// The transmit buffer: the most the app may write ahead of the peer's acknowledgements.
    pub tx: usize,
}

impl TcpBuffers {
    /// Both together: what a socket costs.
    pub const fn total(&self) -> usize {
        self.rx + self.tx
    }
}
/// The most connections a listened port holds between SYN and accept (on a heap of 8 MiB or
/// more; see [`backlog_for_heap`]): SYNs arriving while all are taken are dropped.
pub const BACKLOG: usize = 16;
/// The fewest, on the smallest heap.
pub const MIN_BACKLOG: usize = 2;
/// Frames taken from the device per round of the driver before it transmits and yields.
pub const INGRESS_BUDGET: usize = 64;
/// Slots of smoltcp's socket table reserved at start (see "Memory" above).
pub const SOCKET_SLOTS: usize = 64;
const UDP_PACKETS: usize = 32;
const UDP_BUFFER: usize = 16 * 1024;
/// The longest the driver sleeps when smoltcp has no timer pending.
const IDLE: Duration = Duration::from_secs(10);

/// The direct stack's TCP timeouts; see the module documentation for what each one ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTimeouts {
    /// `--tcp-keepalive`: an idle flow probes its peer this often (default 75 s).
    pub keepalive: Duration,
    /// `--tcp-timeout`: a flow whose peer has sent nothing for this long is reset (default
    /// 675 s). Longer than `keepalive`, so that a live idle peer always answers in time.
    pub timeout: Duration,
    /// `--tcp-fin-timeout`: a flow the app has closed is aborted after this long in FIN-WAIT-2,
    /// or this long without a packet from its peer (default 60 s).
    pub fin_timeout: Duration,
    /// `--tcp-syn-timeout`: a handshake not finished in this long is given up (default 63 s).
    pub syn_timeout: Duration,
}

impl Default for TcpTimeouts {
    fn default() -> TcpTimeouts {
        TcpTimeouts {
            keepalive: Duration::from_secs(75),
            timeout: Duration::from_secs(675),
            fin_timeout: Duration::from_secs(60),
            syn_timeout: Duration::from_secs(63),
        }
    }
}

impl TcpTimeouts {
    /// Boot arguments these timeouts read, in whole seconds.
    pub const BOOT_ARGS: &'static [&'static str] = &[
        "tcp-keepalive",
        "tcp-timeout",
        "tcp-fin-timeout",
        "tcp-syn-timeout",
    ];

    /// The defaults, with `--tcp-keepalive=S`, `--tcp-timeout=S`, `--tcp-fin-timeout=S` and
    /// `--tcp-syn-timeout=S` from the boot arguments applied.
    pub fn from_boot_args(args: &BootArgs) -> Result<TcpTimeouts, NetConfigError> {
        let mut t = TcpTimeouts::default();
        for (arg, field) in [
            ("tcp-keepalive", &mut t.keepalive),
            ("tcp-timeout", &mut t.timeout),
            ("tcp-fin-timeout", &mut t.fin_timeout),
            ("tcp-syn-timeout", &mut t.syn_timeout),
        ] {
            if let Some(v) = args.get(arg) {
                let secs: u32 =
                    v.parse()
                        .ok()
                        .filter(|&s| s > 0)
                        .ok_or_else(|| NetConfigError {
                            arg,
                            value: v.into(),
                            expected: "a whole number of seconds, 1 or more",
                        })?;
                *field = Duration::from_secs(secs.into());
            }
        }
        if t.keepalive >= t.timeout {
            return Err(NetConfigError {
                arg: "tcp-keepalive",
                value: alloc::format!("{}", t.keepalive.as_secs()),
                expected:
                    "fewer seconds than --tcp-timeout, so that a live peer answers a probe in time",
            });
        }
        Ok(t)
    }
}

/// The buffers of each TCP socket on a heap of `heap` bytes. The receive buffer is the largest
/// power of two that is at most a 96th of the heap, from [`TCP_BUFFER`] (32 KiB, below a heap
/// of 6 MiB: static-website at `memory = 4` has about 2.9 MiB) to [`MAX_TCP_BUFFER`] (256 KiB,
/// from 24 MiB); the transmit buffer is half of it, and at least [`TCP_BUFFER`]. A flow moves
/// at most one receive buffer per round trip towards the unikernel, and one transmit buffer
/// away from it.
pub const fn tcp_buffers_for_heap(heap: usize) -> TcpBuffers {
    let mut rx = TCP_BUFFER;
    while rx < MAX_TCP_BUFFER && 2 * rx <= heap / 96 {
        rx *= 2;
    }
    let tx = if rx / 2 > TCP_BUFFER {
        rx / 2
    } else {
        TCP_BUFFER
    };
    TcpBuffers { rx, tx }
}

/// [`TCP_BUFFER`] each way: the buffers on unix, on small heaps, and of a new connection when
/// the heap is more than half used.
pub const SMALL_TCP_BUFFERS: TcpBuffers = TcpBuffers {
    rx: TCP_BUFFER,
    tx: TCP_BUFFER,
};

/// The buffers of a new TCP socket on a heap of `heap` bytes of which `free` are free:
/// [`tcp_buffers_for_heap`]'s while at least half the heap stays free once they are taken,
/// [`SMALL_TCP_BUFFERS`] beyond that. So many connections at once take at most half the heap
/// in large buffers, and the rest get the small ones that a SYN finds room for (or is dropped:
/// [`ROOM_PER_CONNECTION`]), rather than fewer connections or a heap too fragmented for the
/// next large buffer.
pub const fn tcp_buffers_with_free_heap(heap: usize, free: usize) -> TcpBuffers {
    let big = tcp_buffers_for_heap(heap);
    if free >= big.total() + heap / 2 {
        big
    } else {
        SMALL_TCP_BUFFERS
    }
}

/// The buffers of a new TCP socket on this platform now: sized to the heap and what is free of
/// it on Xen ([`tcp_buffers_with_free_heap`]); [`SMALL_TCP_BUFFERS`] on unix.
fn new_tcp_buffers() -> TcpBuffers {
    if cfg!(target_os = "none") {
        let h = uni_runtime::platform::heap();
        tcp_buffers_with_free_heap(h.used + h.free, h.free)
    } else {
        SMALL_TCP_BUFFERS
    }
}

/// The backlog of each listened port on a heap of `heap` bytes: as many sockets (with
/// [`tcp_buffers_for_heap`]'s buffers) as fit in an eighth of it, from [`MIN_BACKLOG`] to
/// [`BACKLOG`]. So a SYN flood on two ports holds at most a quarter of the heap, and the app
/// keeps the rest.
pub const fn backlog_for_heap(heap: usize) -> usize {
    let n = heap / 8 / tcp_buffers_for_heap(heap).total();
    if n < MIN_BACKLOG {
        MIN_BACKLOG
    } else if n > BACKLOG {
        BACKLOG
    } else {
        n
    }
}

/// The backlog for this platform's heap: sized to it on Xen, where the heap is the guest's
/// memory; [`BACKLOG`] on unix, where malloc grows as needed.
fn default_backlog() -> usize {
    if cfg!(target_os = "none") {
        let h = uni_runtime::platform::heap();
        backlog_for_heap(h.used + h.free)
    } else {
        BACKLOG
    }
}

/// The heap a new connection needs free before its SYN is taken: its socket's buffers at their
/// smallest ([`SMALL_TCP_BUFFERS`], which it gets when the heap is short), and twice as much
/// again for what an app keeps per connection (an HTTPS server: the TLS session's 18 KiB record
/// buffer and rustls's own, an HTTP head buffer and body chunks).
pub const ROOM_PER_CONNECTION: usize = room_per_connection(2 * TCP_BUFFER);

/// The heap a new connection whose socket's buffers take `buffers` bytes needs free: see
/// [`ROOM_PER_CONNECTION`].
pub const fn room_per_connection(buffers: usize) -> usize {
    buffers + 128 * 1024
}
/// The heap kept free beyond the connections.
pub const HEAP_RESERVE: usize = 128 * 1024;

/// How many new connections whose socket's buffers take `buffers` bytes the heap has room for
/// ([`room_per_connection`] each, beyond [`HEAP_RESERVE`]) when `free` bytes of it are free.
pub const fn connections_with_free_heap(free: usize, buffers: usize) -> usize {
    free.saturating_sub(HEAP_RESERVE) / room_per_connection(buffers)
}

/// How many new connections this platform's heap has room for now: on Xen, where the heap is
/// the guest's memory and running out of it is a crash, from what is free; on unix, no limit.
fn connection_room(buffers: usize) -> usize {
    if cfg!(target_os = "none") {
        connections_with_free_heap(uni_runtime::platform::heap().free, buffers)
    } else {
        usize::MAX
    }
}

fn smol_duration(d: Duration) -> smoltcp::time::Duration {
    smoltcp::time::Duration::from_micros(d.as_micros().min(u64::MAX.into()) as u64)
}

/// Sockets open in the stack, by what they are doing; from [`DirectStack::sockets`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketCounts {
    /// TCP sockets on a listener's backlog: mid-handshake, or established and not yet
    /// accepted.
    pub listening: usize,
    /// TCP sockets of flows the app holds.
    pub flows: usize,
    /// TCP sockets the app has closed that TCP has not finished with yet.
    pub closing: usize,
    /// UDP and DHCP sockets.
    pub other: usize,
    /// Slots in smoltcp's socket table, used or free.
    pub slots: usize,
}

/// A TCP/IP stack over `N`, with time from `C`.
pub struct DirectStack<N: Netif + 'static, C: Clock + 'static> {
    sh: Rc<Shared<N, C>>,
}

impl<N: Netif + 'static, C: Clock + 'static> Clone for DirectStack<N, C> {
    fn clone(&self) -> Self {
        DirectStack {
            sh: self.sh.clone(),
        }
    }
}

struct Shared<N: Netif, C: Clock> {
    st: RefCell<State<N>>,
    clock: C,
    timeouts: TcpTimeouts,
    /// Connections each listened port holds between SYN and accept.
    backlog: usize,
    /// Flows dropped while the state was borrowed, handed to the driver at its next round.
    dropped: RefCell<Vec<SocketHandle>>,
    kicked: Cell<bool>,
    driver: RefCell<Option<Waker>>,
    /// Tasks waiting for an address.
    configured: RefCell<Vec<Waker>>,
}

struct State<N> {
    iface: Interface,
    dev: N,
    sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    ipv4: Option<Ipv4Config>,
    /// The nameservers the DHCP server named (empty with a static address).
    dns_servers: Vec<Ipv4Addr>,
    /// Closed flows whose sockets are removed once TCP is done with them.
    orphans: Vec<Orphan>,
    /// The listened ports, each with its backlog.
    listens: Vec<Listen>,
    /// The net device this stack is (its name in unikernel.toml), for errors; set by
    /// [`DirectStack::configure`].
    device: Option<&'static str>,
    /// Per listened port, how many more SYNs its backlog can take this round.
    free_listeners: RefCell<Vec<(u16, usize)>>,
    /// How many more SYNs the heap has room for this round (all ports together).
    room: Cell<usize>,
    /// SYNs to listened ports held back from smoltcp until a socket is made for each.
    held: RefCell<Vec<Vec<u8>>>,
    /// Sockets in the table now, and the most there ever were (the table's length).
    open: usize,
    slots: usize,
    next_port: u16,
    /// With tracing: what egress sent, to see retransmissions (`retransmit`).
    #[cfg(feature = "trace")]
    sent: crate::retransmit::Sent,
}

/// A listened port.
struct Listen {
    port: u16,
    /// Its connections from SYN to accept, oldest first.
    queue: Vec<SocketHandle>,
    /// The task waiting in `accept`.
    waker: Option<Waker>,
}

/// A flow the app closed or dropped.
struct Orphan {
    h: SocketHandle,
    /// When it was orphaned.
    since: SmolInstant,
    /// When the driver first saw it in FIN-WAIT-2.
    fin_wait_2: Option<SmolInstant>,
}

fn smol_now<C: Clock>(c: &C) -> SmolInstant {
    SmolInstant::from_micros((c.now().as_nanos() / 1000) as i64)
}

impl<N: Netif + 'static, C: Clock + 'static> DirectStack<N, C> {
    /// Starts the stack over `dev` as `unikernel.toml` configures it (`ipv4` is `"dhcp"` or
    /// `"A.B.C.D/N"`), with `--ipv4`/`--ipv4-gateway` from the boot arguments applied. Waits for
    /// an address (DHCP), then reports it with `log`.
    pub async fn configure(
        device: &'static str,
        dev: N,
        clock: C,
        ipv4: &str,
        gateway: Option<&str>,
        boot_args: &BootArgs,
        log: fn(&str),
    ) -> Result<DirectStack<N, C>, NetConfigError> {
        let config = NetConfig::parse(ipv4, gateway)?.with_boot_args(boot_args)?;
        let timeouts = TcpTimeouts::from_boot_args(boot_args)?;
        let stack = DirectStack::with_timeouts(dev, clock, config.ipv4, timeouts);
        stack.sh.st.borrow_mut().device = Some(device);
        if config.ipv4 == Ipv4Setting::Dhcp {
            log("net: asking DHCP for an address");
        }
        let c = stack.wait_configured().await;
        let mac = stack.sh.st.borrow().dev.mac();
        log(&alloc::format!(
            "net: {} ({}) on {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            c,
            if config.ipv4 == Ipv4Setting::Dhcp {
                "DHCP"
            } else {
                "static"
            },
            mac[0],
            mac[1],
            mac[2],
            mac[3],
            mac[4],
            mac[5]
        ));
        Ok(stack)
    }

    /// Starts the stack and its driver task, with the default [`TcpTimeouts`]; returns at once.
    pub fn new(dev: N, clock: C, ipv4: Ipv4Setting) -> DirectStack<N, C> {
        DirectStack::with_timeouts(dev, clock, ipv4, TcpTimeouts::default())
    }

    /// Starts the stack and its driver task with these TCP timeouts; returns at once.
    pub fn with_timeouts(
        mut dev: N,
        clock: C,
        ipv4: Ipv4Setting,
        timeouts: TcpTimeouts,
    ) -> DirectStack<N, C> {
        let mac = dev.mac();
        let now = smol_now(&clock);
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        // Seeds smoltcp's initial sequence numbers and ports; the MAC and clock differ per guest.
        config.random_seed =
            u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0])
                ^ (now.total_micros() as u64).rotate_left(17);
        let iface = Interface::new(config, &mut dev, now);
        let mut sockets = SocketSet::new(Vec::with_capacity(SOCKET_SLOTS));
        let mut st_ipv4 = None;
        let dhcp = match ipv4 {
            Ipv4Setting::Dhcp => Some(sockets.add(dhcpv4::Socket::new())),
            Ipv4Setting::Static(c) => {
                st_ipv4 = Some(c);
                None
            }
        };
        let mut st = State {
            iface,
            dev,
            sockets,
            dhcp,
            ipv4: None,
            dns_servers: vec![],
            orphans: vec![],
            listens: vec![],
            device: None,
            free_listeners: RefCell::new(vec![]),
            room: Cell::new(0),
            held: RefCell::new(vec![]),
            open: usize::from(dhcp.is_some()),
            slots: usize::from(dhcp.is_some()),
            next_port: 49152,
            #[cfg(feature = "trace")]
            sent: crate::retransmit::Sent::new(),
        };
        if let Some(c) = st_ipv4 {
            st.set_ipv4(Some(c));
        }
        let sh = Rc::new(Shared {
            st: RefCell::new(st),
            clock,
            timeouts,
            backlog: default_backlog(),
            dropped: RefCell::new(vec![]),
            kicked: Cell::new(false),
            driver: RefCell::new(None),
            configured: RefCell::new(vec![]),
        });
        uni_runtime::task::spawn(drive(sh.clone()));
        DirectStack { sh }
    }

    /// The nameservers the DHCP server offered with the address (empty with a static address,
    /// or before DHCP has configured the interface).
    pub fn dns_servers(&self) -> Vec<Ipv4Addr> {
        self.sh.st.borrow().dns_servers.clone()
    }

    /// The sockets open now, by what they are doing.
    pub fn sockets(&self) -> SocketCounts {
        let st = self.sh.st.borrow();
        let mut c = SocketCounts {
            slots: st.slots,
            ..SocketCounts::default()
        };
        for (h, s) in st.sockets.iter() {
            match tcp::Socket::downcast(s) {
                Some(_) if st.listens.iter().any(|l| l.queue.contains(&h)) => c.listening += 1,
                Some(_) if st.orphans.iter().any(|o| o.h == h) => c.closing += 1,
                Some(_) => c.flows += 1,
                None => c.other += 1,
            }
        }
        c
    }

    /// The timeouts the stack runs with.
    pub fn timeouts(&self) -> TcpTimeouts {
        self.sh.timeouts
    }

    /// How many connections each listened port holds between SYN and accept: sized to the
    /// heap on Xen ([`backlog_for_heap`]), [`BACKLOG`] on unix.
    pub fn backlog(&self) -> usize {
        self.sh.backlog
    }

    /// Waits until the interface has an IPv4 address.
    pub async fn wait_configured(&self) -> Ipv4Config {
        poll_fn(|cx| match self.sh.st.borrow().ipv4 {
            Some(c) => Poll::Ready(c),
            None => {
                self.sh.configured.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl<N> State<N> {
    fn set_ipv4(&mut self, c: Option<Ipv4Config>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            if let Some(c) = c {
                let _ = addrs.push(IpCidr::Ipv4(Ipv4Cidr::new(c.address, c.prefix_len)));
            }
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gw) = c.and_then(|c| c.gateway) {
            let _ = self.iface.routes_mut().add_default_ipv4_route(gw);
        }
        self.ipv4 = c;
    }

    /// Adds a socket to the table, counting it.
    fn add<S: AnySocket<'static>>(&mut self, s: S) -> SocketHandle {
        self.open += 1;
        self.slots = self.slots.max(self.open);
        self.sockets.add(s)
    }

    /// Removes a socket from the table, freeing its buffers.
    fn remove(&mut self, h: SocketHandle) {
        self.open -= 1;
        self.sockets.remove(h);
    }

    fn ephemeral_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p == u16::MAX { 49152 } else { p + 1 };
        p
    }
}

impl<N: Netif, C: Clock> Shared<N, C> {
    /// Asks the driver to poll soon: a flow queued data or changed state.
    fn kick(&self) {
        self.kicked.set(true);
        if let Some(w) = self.driver.borrow_mut().take() {
            w.wake();
        }
    }

    /// One round of smoltcp; returns how long it may sleep.
    fn poll(&self) -> Duration {
        let now = smol_now(&self.clock);
        let mut st = self.st.borrow_mut();
        let mut more = st.pump(now, self.backlog, &self.timeouts);
        if let Some(h) = st.dhcp {
            let event = match st.sockets.get_mut::<dhcpv4::Socket>(h).poll() {
                None => None,
                Some(dhcpv4::Event::Deconfigured) => Some((None, vec![])),
                Some(dhcpv4::Event::Configured(c)) => Some((
                    Some(Ipv4Config {
                        address: c.address.address(),
                        prefix_len: c.address.prefix_len(),
                        gateway: c.router,
                    }),
                    c.dns_servers.iter().copied().collect(),
                )),
            };
            if let Some((c, dns)) = event {
                st.set_ipv4(c);
                st.dns_servers = dns;
                // The new address may let queued packets out now.
                more |= st.pump(now, self.backlog, &self.timeouts);
            }
        }
        if st.ipv4.is_some() {
            for w in self.configured.borrow_mut().drain(..) {
                w.wake();
            }
        }
        let t = &self.timeouts;
        for h in self.dropped.borrow_mut().drain(..) {
            st.orphan(h, now, t);
        }
        // Reap flows the app closed once TCP has finished with them, or the fin timeout
        // has passed; note when the next such deadline falls.
        let mut next = None::<SmolInstant>;
        let fin = smol_duration(t.fin_timeout);
        let life = smol_duration(t.timeout);
        let State {
            sockets,
            orphans,
            open,
            ..
        } = &mut *st;
        orphans.retain_mut(|o| {
            let s = sockets.get_mut::<tcp::Socket>(o.h);
            let deadline = match s.state() {
                tcp::State::Closed | tcp::State::TimeWait => {
                    sockets.remove(o.h);
                    *open -= 1;
                    return false;
                }
                tcp::State::FinWait2 => {
                    (*o.fin_wait_2.get_or_insert(now) + fin).min(o.since + life)
                }
                _ => o.since + life,
            };
            if now >= deadline {
                // Sends a RST; the socket is then Closed, and freed in the next round.
                s.abort();
                more = true;
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
            true
        });
        if orphans.is_empty() && orphans.capacity() > 0 {
            // Sized to the most closing at once: give it back when quiet, so the heap's quiet
            // baseline does not depend on the biggest burst so far.
            *orphans = Vec::new();
        }
        if more {
            return Duration::ZERO;
        }
        let State { iface, sockets, .. } = &mut *st;
        let mut delay = iface
            .poll_delay(now, sockets)
            .map(|d| Duration::from_micros(d.total_micros()))
            .unwrap_or(IDLE)
            .min(IDLE);
        if let Some(n) = next {
            delay = delay.min(Duration::from_micros((n - now).total_micros()));
        }
        delay
    }
}

impl<N: Netif> State<N> {
    /// Runs smoltcp once: up to [`INGRESS_BUDGET`] frames in, through the SYN gate (which
    /// holds back the SYNs that listened ports have room for), a socket made for each held SYN
    /// and the SYNs handed to smoltcp, then everything queued out. True when frames may be left
    /// to read.
    fn pump(&mut self, now: SmolInstant, backlog: usize, t: &TcpTimeouts) -> bool {
        // How many SYNs each listened port can take this round.
        {
            let mut free = self.free_listeners.borrow_mut();
            free.clear();
            free.extend(
                self.listens
                    .iter()
                    .map(|l| (l.port, backlog.saturating_sub(l.queue.len()))),
            );
        }
        if !self.listens.is_empty() {
            self.room.set(connection_room(SMALL_TCP_BUFFERS.total()));
        }
        let mut more = false;
        {
            let State {
                iface,
                dev,
                sockets,
                free_listeners,
                room,
                held,
                ..
            } = self;
            iface.poll_maintenance(now);
            let mut gate = Gate {
                dev,
                free: free_listeners,
                room,
                held,
            };
            for taken in 0.. {
                if taken == INGRESS_BUDGET {
                    more = true;
                    break;
                }
                if iface.poll_ingress_single(now, &mut gate, sockets)
                    == smoltcp::iface::PollIngressSingleResult::None
                {
                    break;
                }
            }
        }
        if !self.held.get_mut().is_empty() {
            self.admit(now, t);
        }
        let State {
            iface,
            dev,
            sockets,
            #[cfg(feature = "trace")]
            sent,
            ..
        } = self;
        #[cfg(feature = "trace")]
        let dev = &mut Watch { dev, sent };
        while iface.poll_egress(now, dev, sockets) != smoltcp::iface::PollResult::None {}
        // Handshakes end in ingress and egress (a RST, a timeout): free their sockets now, not
        // at the next round, which may be long.
        self.prune_backlogs();
        more
    }

    /// Makes a socket, on its port's backlog, for each SYN the gate held (but for a SYN whose
    /// peer already has one: a retransmission), then hands the SYNs to smoltcp, which answers
    /// each from its socket.
    fn admit(&mut self, now: SmolInstant, t: &TcpTimeouts) {
        let held = core::mem::take(self.held.get_mut());
        let mut fresh = Vec::with_capacity(held.len());
        let mut again = vec![];
        for frame in held {
            let Some((port, peer)) = syn_peer(&frame) else {
                continue;
            };
            let known = |(_, s): (SocketHandle, &smoltcp::socket::Socket<'static>)| {
                tcp::Socket::downcast(s).is_some_and(|s| {
                    s.listen_endpoint().port == port && s.remote_endpoint() == Some(peer)
                })
            };
            let seen = fresh
                .iter()
                .any(|(q, p, _): &(u16, IpEndpoint, _)| *q == port && *p == peer);
            if seen || self.sockets.iter().any(known) {
                again.push(frame);
                continue;
            }
            let Some(l) = self.listens.iter().position(|l| l.port == port) else {
                continue;
            };
            let mut s = tcp_socket(t, new_tcp_buffers());
            // A fresh socket and a port that is not 0: this cannot fail.
            let _ = s.listen(port);
            if let Some(w) = &self.listens[l].waker {
                s.register_recv_waker(w);
            }
            let h = self.add(s);
            self.listens[l].queue.push(h);
            fresh.push((port, peer, frame));
        }
        // The new connections' SYNs first, so that each meets its fresh listening socket; then
        // the retransmitted ones, which meet the sockets already there.
        let State {
            iface,
            dev,
            sockets,
            ..
        } = self;
        let mut replay = Replay {
            dev,
            frames: fresh
                .into_iter()
                .map(|(_, _, f)| f)
                .chain(again)
                .collect::<Vec<_>>()
                .into_iter(),
        };
        while iface.poll_ingress_single(now, &mut replay, sockets)
            != smoltcp::iface::PollIngressSingleResult::None
        {}
    }

    /// Frees the backlog's sockets whose handshake ended without a connection: reset (smoltcp
    /// puts such a socket back to listening), timed out (closed), or whose SYN smoltcp did not
    /// take (still listening), and connections reset before the app accepted them.
    fn prune_backlogs(&mut self) {
        let State {
            listens,
            sockets,
            open,
            ..
        } = self;
        for l in listens.iter_mut() {
            l.queue.retain(|&h| {
                let gone = matches!(
                    sockets.get::<tcp::Socket>(h).state(),
                    tcp::State::Listen | tcp::State::Closed
                );
                if gone {
                    sockets.remove(h);
                    *open -= 1;
                }
                !gone
            });
        }
    }
}

impl<N> State<N> {
    /// Takes a flow the app has let go of: it is closed (FIN after its queued data), its
    /// silence limit becomes the fin timeout, and the driver frees it once TCP is done.
    fn orphan(&mut self, h: SocketHandle, now: SmolInstant, t: &TcpTimeouts) {
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        s.close();
        s.set_keep_alive(None);
        s.set_timeout(Some(smol_duration(t.fin_timeout.min(t.timeout))));
        self.orphans.push(Orphan {
            h,
            since: now,
            fin_wait_2: None,
        });
    }
}

/// The device as smoltcp sees it: a SYN to a listened port arrives as an empty frame, which
/// smoltcp ignores (rather than answering with a RST, as it would with no socket listening);
/// the gate keeps a copy when the port's backlog has room, for [`State::admit`], and drops it
/// when not.
struct Gate<'d, N> {
    dev: &'d mut N,
    free: &'d RefCell<Vec<(u16, usize)>>,
    room: &'d Cell<usize>,
    held: &'d RefCell<Vec<Vec<u8>>>,
}

struct GateRx<'a, R> {
    inner: R,
    free: &'a RefCell<Vec<(u16, usize)>>,
    room: &'a Cell<usize>,
    held: &'a RefCell<Vec<Vec<u8>>>,
}

type Ipv4Segment<'a> = smoltcp::wire::Ipv4Packet<&'a [u8]>;
type TcpSegment<'a> = smoltcp::wire::TcpPacket<&'a [u8]>;

/// The IPv4 header and TCP segment of an Ethernet frame, if it carries an unfragmented (or
/// first-fragment) TCP segment whose headers are whole.
pub(crate) fn ipv4_tcp(frame: &[u8]) -> Option<(Ipv4Segment<'_>, TcpSegment<'_>)> {
    use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp || ip.frag_offset() != 0 {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some((ip, tcp))
}

/// The source of a TCP SYN (without ACK) in an Ethernet frame, and the port it is for.
fn syn_peer(frame: &[u8]) -> Option<(u16, IpEndpoint)> {
    let (ip, tcp) = ipv4_tcp(frame)?;
    let port = syn_port(frame)?;
    Some((port, IpEndpoint::new(ip.src_addr().into(), tcp.src_port())))
}

/// The destination port of a TCP SYN (without ACK) in an Ethernet frame.
fn syn_port(frame: &[u8]) -> Option<u16> {
    let (_, tcp) = ipv4_tcp(frame)?;
    (tcp.syn() && !tcp.ack() && !tcp.rst()).then(|| tcp.dst_port())
}

impl<R: smoltcp::phy::RxToken> smoltcp::phy::RxToken for GateRx<'_, R> {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        let (free, room, held) = (self.free, self.room, self.held);
        self.inner.consume(|frame| {
            if let Some(port) = syn_port(frame) {
                let mut free = free.borrow_mut();
                if let Some((_, n)) = free.iter_mut().find(|(p, _)| *p == port) {
                    if *n > 0 && room.get() > 0 {
                        *n -= 1;
                        room.set(room.get() - 1);
                        held.borrow_mut().push(frame.to_vec());
                    }
                    return f(&[]);
                }
            }
            f(frame)
        })
    }
}

impl<N: Netif> smoltcp::phy::Device for Gate<'_, N> {
    type RxToken<'a>
        = GateRx<'a, N::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = N::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, now: SmolInstant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (free, room, held) = (self.free, self.room, self.held);
        self.dev.receive(now).map(|(inner, tx)| {
            (
                GateRx {
                    inner,
                    free,
                    room,
                    held,
                },
                tx,
            )
        })
    }

    fn transmit(&mut self, now: SmolInstant) -> Option<Self::TxToken<'_>> {
        self.dev.transmit(now)
    }

    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        self.dev.capabilities()
    }
}

/// The device as smoltcp sees it while the held SYNs are handed over: those frames in, and
/// the real device out.
struct Replay<'d, N> {
    dev: &'d mut N,
    frames: alloc::vec::IntoIter<Vec<u8>>,
}

struct HeldRx(Vec<u8>);

impl smoltcp::phy::RxToken for HeldRx {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        f(&self.0)
    }
}

/// The device's transmit token, or, when its ring is full, one that drops the frame: smoltcp
/// answers a SYN on a listening socket later, from its egress, so only a reply to a
/// retransmitted SYN can be lost this way, and the peer retransmits again.
enum ReplayTx<T> {
    Device(T),
    Full,
}

impl<T: smoltcp::phy::TxToken> smoltcp::phy::TxToken for ReplayTx<T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        match self {
            ReplayTx::Device(t) => t.consume(len, f),
            ReplayTx::Full => f(&mut vec![0; len]),
        }
    }
}

impl<N: Netif> smoltcp::phy::Device for Replay<'_, N> {
    type RxToken<'a>
        = HeldRx
    where
        Self: 'a;
    type TxToken<'a>
        = ReplayTx<N::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, now: SmolInstant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.frames.next()?;
        let tx = match self.dev.transmit(now) {
            Some(t) => ReplayTx::Device(t),
            None => ReplayTx::Full,
        };
        Some((HeldRx(frame), tx))
    }

    fn transmit(&mut self, now: SmolInstant) -> Option<Self::TxToken<'_>> {
        self.dev.transmit(now).map(ReplayTx::Device)
    }

    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        self.dev.capabilities()
    }
}

/// With tracing: the device as smoltcp's egress sees it, every frame it sends looked at for a
/// TCP retransmission (`retransmit`).
#[cfg(feature = "trace")]
struct Watch<'d, N> {
    dev: &'d mut N,
    sent: &'d mut crate::retransmit::Sent,
}

#[cfg(feature = "trace")]
struct WatchTx<'a, T> {
    inner: T,
    sent: &'a mut crate::retransmit::Sent,
}

#[cfg(feature = "trace")]
impl<T: smoltcp::phy::TxToken> smoltcp::phy::TxToken for WatchTx<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let sent = self.sent;
        self.inner.consume(len, |buf| {
            let r = f(buf);
            sent.watch(buf);
            r
        })
    }
}

#[cfg(feature = "trace")]
impl<N: Netif> smoltcp::phy::Device for Watch<'_, N> {
    type RxToken<'a>
        = N::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = WatchTx<'a, N::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, now: SmolInstant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let Watch { dev, sent } = self;
        dev.receive(now)
            .map(|(rx, inner)| (rx, WatchTx { inner, sent }))
    }

    fn transmit(&mut self, now: SmolInstant) -> Option<Self::TxToken<'_>> {
        let Watch { dev, sent } = self;
        dev.transmit(now).map(|inner| WatchTx { inner, sent })
    }

    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        self.dev.capabilities()
    }
}

/// The driver task.
async fn drive<N: Netif, C: Clock>(sh: Rc<Shared<N, C>>) {
    loop {
        let delay = sh.poll();
        if delay.is_zero() {
            // More work right away, but let other tasks run first.
            uni_runtime::task::yield_now().await;
            continue;
        }
        let mut sleep = pin!(sh.clock.sleep(delay));
        poll_fn(|cx| {
            if sh.kicked.replace(false) {
                return Poll::Ready(());
            }
            *sh.driver.borrow_mut() = Some(cx.waker().clone());
            if sh.st.borrow_mut().dev.poll_ready(cx).is_ready() {
                return Poll::Ready(());
            }
            sleep.as_mut().poll(cx)
        })
        .await;
    }
}

/// A TCP socket for a handshake, with these buffers: it gives up after the SYN timeout.
fn tcp_socket(t: &TcpTimeouts, b: TcpBuffers) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; b.rx]),
        tcp::SocketBuffer::new(vec![0; b.tx]),
    );
    s.set_timeout(Some(smol_duration(t.syn_timeout)));
    s.set_nagle_enabled(false);
    s
}

/// Gives an established socket the timeouts of a flow: keep-alive probes, and a reset after the
/// timeout of silence.
fn as_flow(s: &mut tcp::Socket<'static>, t: &TcpTimeouts) {
    s.set_timeout(Some(smol_duration(t.timeout)));
    s.set_keep_alive(Some(smol_duration(t.keepalive)));
}

fn to_std(ep: IpEndpoint) -> SocketAddr {
    match ep.addr {
        smoltcp::wire::IpAddress::Ipv4(a) => SocketAddr::V4(SocketAddrV4::new(a, ep.port)),
    }
}

impl<N: Netif + 'static, C: Clock + 'static> net::Stack for DirectStack<N, C> {
    type Flow = TcpFlow<N, C>;
    type Listener = TcpListener<N, C>;
    type Udp = UdpSocket<N, C>;

    async fn listen(&self, port: u16) -> Result<TcpListener<N, C>, NetError> {
        let mut st = self.sh.st.borrow_mut();
        let port = if port == 0 { st.ephemeral_port() } else { port };
        if st.listens.iter().any(|l| l.port == port) {
            return Err(NetError::listen_on(st.device, port, NetError::AddrInUse));
        }
        // No socket yet: the driver makes one when a SYN comes.
        st.listens.push(Listen {
            port,
            queue: Vec::with_capacity(self.sh.backlog),
            waker: None,
        });
        Ok(TcpListener {
            sh: self.sh.clone(),
            port,
        })
    }

    async fn connect(&self, addr: SocketAddr) -> Result<TcpFlow<N, C>, NetError> {
        let SocketAddr::V4(v4) = addr else {
            return Err(NetError::Unreachable);
        };
        self.wait_configured().await;
        let h = {
            let mut st = self.sh.st.borrow_mut();
            let local = st.ephemeral_port();
            let mut s = tcp_socket(&self.sh.timeouts, new_tcp_buffers());
            let State { iface, .. } = &mut *st;
            s.connect(iface.context(), (*v4.ip(), v4.port()), local)
                .map_err(|e| NetError::Other(alloc::format!("connect: {e}")))?;
            st.add(s)
        };
        self.sh.kick();
        let started = smol_now(&self.sh.clock);
        // Until the handshake ends, a dropped connect (the app's own timeout) hands the socket
        // to the driver like a dropped flow.
        let mut pending = Handshake {
            sh: &self.sh,
            h: Some(h),
        };
        let sh = self.sh.clone();
        poll_fn(|cx| {
            let mut st = sh.st.borrow_mut();
            let s = st.sockets.get_mut::<tcp::Socket>(h);
            match s.state() {
                tcp::State::SynSent | tcp::State::SynReceived => {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
                tcp::State::Closed => {
                    st.remove(h);
                    pending.h = None;
                    let waited = smol_now(&sh.clock) - started;
                    Poll::Ready(Err(if waited >= smol_duration(sh.timeouts.syn_timeout) {
                        NetError::TimedOut
                    } else {
                        NetError::Refused
                    }))
                }
                _ => {
                    as_flow(s, &sh.timeouts);
                    pending.h = None;
                    Poll::Ready(Ok(()))
                }
            }
        })
        .await?;
        #[cfg(feature = "trace")]
        uni_runtime::trace::tcp(uni_runtime::trace::Kind::TcpConnect, &addr, 0);
        uni_runtime::metrics::TCP_CONNECTED.inc();
        log::debug!("connected to {addr}");
        Ok(TcpFlow {
            sh: self.sh.clone(),
            h,
            peer: addr,
        })
    }

    async fn bind_udp(&self, port: u16) -> Result<UdpSocket<N, C>, NetError> {
        let mut st = self.sh.st.borrow_mut();
        let port = if port == 0 { st.ephemeral_port() } else { port };
        let buf = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0; UDP_BUFFER],
            )
        };
        let mut s = udp::Socket::new(buf(), buf());
        s.bind(port).map_err(|_| NetError::AddrInUse)?;
        let h = st.add(s);
        let ip = st.ipv4.map_or(Ipv4Addr::UNSPECIFIED, |c| c.address);
        Ok(UdpSocket {
            sh: self.sh.clone(),
            h,
            local: SocketAddr::new(IpAddr::V4(ip), port),
        })
    }

    fn ipv4(&self) -> Option<Ipv4Config> {
        self.sh.st.borrow().ipv4
    }
}

/// A connect in progress: its socket, handed to the driver if the connect is dropped.
struct Handshake<'a, N: Netif, C: Clock> {
    sh: &'a Shared<N, C>,
    h: Option<SocketHandle>,
}

impl<N: Netif, C: Clock> Drop for Handshake<'_, N, C> {
    fn drop(&mut self) {
        if let Some(h) = self.h.take() {
            match self.sh.st.try_borrow_mut() {
                Ok(mut st) => {
                    let now = smol_now(&self.sh.clock);
                    st.orphan(h, now, &self.sh.timeouts);
                }
                Err(_) => self.sh.dropped.borrow_mut().push(h),
            }
            self.sh.kick();
        }
    }
}

/// A listening TCP port. Its connections, from SYN to accept, are on its entry in the stack's
/// state (see "SYN floods" above).
pub struct TcpListener<N: Netif + 'static, C: Clock + 'static> {
    sh: Rc<Shared<N, C>>,
    port: u16,
}

impl<N: Netif + 'static, C: Clock + 'static> net::Listener for TcpListener<N, C> {
    type Flow = TcpFlow<N, C>;

    async fn accept(&self) -> Result<(TcpFlow<N, C>, SocketAddr), NetError> {
        let (h, peer) = poll_fn(|cx| {
            let mut st = self.sh.st.borrow_mut();
            let State {
                listens, sockets, ..
            } = &mut *st;
            let Some(l) = listens.iter_mut().find(|l| l.port == self.port) else {
                return Poll::Pending;
            };
            l.waker = Some(cx.waker().clone());
            for i in 0..l.queue.len() {
                let s = sockets.get_mut::<tcp::Socket>(l.queue[i]);
                match s.state() {
                    // Mid-handshake; or ended without a connection, and freed by the driver.
                    tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed => {
                        s.register_recv_waker(cx.waker())
                    }
                    _ => {
                        let Some(peer) = s.remote_endpoint().map(to_std) else {
                            continue;
                        };
                        as_flow(s, &self.sh.timeouts);
                        return Poll::Ready((l.queue.remove(i), peer));
                    }
                }
            }
            Poll::Pending
        })
        .await;
        self.sh.kick();
        #[cfg(feature = "trace")]
        uni_runtime::trace::tcp(uni_runtime::trace::Kind::TcpAccept, &peer, self.port);
        uni_runtime::metrics::TCP_ACCEPTED.inc();
        log::debug!("accepted {peer} on port {}", self.port);
        Ok((
            TcpFlow {
                sh: self.sh.clone(),
                h,
                peer,
            },
            peer,
        ))
    }

    fn local_addr(&self) -> SocketAddr {
        let ip = self
            .sh
            .st
            .borrow()
            .ipv4
            .map_or(Ipv4Addr::UNSPECIFIED, |c| c.address);
        SocketAddr::new(IpAddr::V4(ip), self.port)
    }
}

impl<N: Netif + 'static, C: Clock + 'static> Drop for TcpListener<N, C> {
    fn drop(&mut self) {
        let mut st = self.sh.st.borrow_mut();
        if let Some(i) = st.listens.iter().position(|l| l.port == self.port) {
            let l = st.listens.swap_remove(i);
            for h in l.queue {
                st.remove(h);
            }
        }
    }
}

/// A TCP connection.
pub struct TcpFlow<N: Netif + 'static, C: Clock + 'static> {
    sh: Rc<Shared<N, C>>,
    h: SocketHandle,
    peer: SocketAddr,
}

impl<N: Netif + 'static, C: Clock + 'static> net::Flow for TcpFlow<N, C> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let r = poll_fn(|cx| {
            let mut st = self.sh.st.borrow_mut();
            let s = st.sockets.get_mut::<tcp::Socket>(self.h);
            if s.can_recv() {
                return Poll::Ready(s.recv_slice(buf).map_err(|_| NetError::Closed));
            }
            if !s.may_recv() {
                return Poll::Ready(match s.state() {
                    // Closed without our close and without a FIN: the peer reset us.
                    tcp::State::Closed if s.remote_endpoint().is_none() => Err(NetError::Reset),
                    _ => Ok(0),
                });
            }
            s.register_recv_waker(cx.waker());
            Poll::Pending
        })
        .await;
        // Reading opened the window; let the driver tell the peer.
        self.sh.kick();
        if let Ok(n) = r {
            uni_runtime::metrics::TCP_RX_BYTES.add(n as u64);
        }
        r
    }

    async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let r = poll_fn(|cx| {
            let mut st = self.sh.st.borrow_mut();
            let s = st.sockets.get_mut::<tcp::Socket>(self.h);
            if !s.may_send() {
                return Poll::Ready(Err(if s.state() == tcp::State::Closed {
                    NetError::Reset
                } else {
                    NetError::Closed
                }));
            }
            if s.can_send() {
                return Poll::Ready(s.send_slice(buf).map_err(|_| NetError::Closed));
            }
            s.register_send_waker(cx.waker());
            Poll::Pending
        })
        .await;
        self.sh.kick();
        if let Ok(n) = r {
            uni_runtime::metrics::TCP_TX_BYTES.add(n as u64);
        }
        r
    }

    async fn shutdown(&mut self) -> Result<(), NetError> {
        self.sh
            .st
            .borrow_mut()
            .sockets
            .get_mut::<tcp::Socket>(self.h)
            .close();
        self.sh.kick();
        Ok(())
    }

    async fn close(mut self) -> Result<(), NetError> {
        #[cfg(feature = "trace")]
        uni_runtime::trace::tcp(uni_runtime::trace::Kind::TcpClose, &self.peer, 0);
        log::debug!("closing the connection with {}", self.peer);
        self.shutdown().await
        // Drop hands the socket to the driver, which removes it once TCP is done, and counts
        // the flow in tcp.closed.
    }

    fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

impl<N: Netif + 'static, C: Clock + 'static> Drop for TcpFlow<N, C> {
    /// Hands the socket to the driver; every flow that ends counts in `tcp.closed`, closed by the
    /// app or dropped.
    fn drop(&mut self) {
        uni_runtime::metrics::TCP_CLOSED.inc();
        match self.sh.st.try_borrow_mut() {
            Ok(mut st) => {
                let now = smol_now(&self.sh.clock);
                st.orphan(self.h, now, &self.sh.timeouts);
            }
            // Dropped inside a borrow of the stack: the driver takes it at its next round.
            Err(_) => self.sh.dropped.borrow_mut().push(self.h),
        }
        self.sh.kick();
    }
}

/// A bound UDP port.
pub struct UdpSocket<N: Netif + 'static, C: Clock + 'static> {
    sh: Rc<Shared<N, C>>,
    h: SocketHandle,
    local: SocketAddr,
}

impl<N: Netif + 'static, C: Clock + 'static> net::UdpSocket for UdpSocket<N, C> {
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> Result<(), NetError> {
        let SocketAddr::V4(v4) = addr else {
            return Err(NetError::Unreachable);
        };
        let r = poll_fn(|cx| {
            let mut st = self.sh.st.borrow_mut();
            let s = st.sockets.get_mut::<udp::Socket>(self.h);
            if s.can_send() {
                return Poll::Ready(
                    s.send_slice(buf, (*v4.ip(), v4.port()))
                        .map_err(|e| NetError::Other(alloc::format!("udp send: {e}"))),
                );
            }
            s.register_send_waker(cx.waker());
            Poll::Pending
        })
        .await;
        self.sh.kick();
        r
    }

    async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        poll_fn(|cx| {
            let mut st = self.sh.st.borrow_mut();
            let s = st.sockets.get_mut::<udp::Socket>(self.h);
            // Not recv_slice: it drops a datagram longer than `buf` without copying any of it.
            match s.recv() {
                Ok((data, meta)) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    Poll::Ready(Ok((n, to_std(meta.endpoint))))
                }
                Err(udp::RecvError::Truncated | udp::RecvError::Exhausted) => {
                    s.register_recv_waker(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }

    fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl<N: Netif + 'static, C: Clock + 'static> Drop for UdpSocket<N, C> {
    fn drop(&mut self) {
        if let Ok(mut st) = self.sh.st.try_borrow_mut() {
            st.remove(self.h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn args(a: &[&str]) -> BootArgs {
        BootArgs::parse(a).unwrap()
    }

    #[test]
    fn timeouts_default_to_linux_values_and_take_boot_arguments() {
        let d = TcpTimeouts::from_boot_args(&args(&[])).unwrap();
        assert_eq!(d, TcpTimeouts::default());
        assert_eq!(
            (
                d.keepalive.as_secs(),
                d.timeout.as_secs(),
                d.fin_timeout.as_secs(),
                d.syn_timeout.as_secs()
            ),
            (75, 675, 60, 63)
        );
        let t = TcpTimeouts::from_boot_args(&args(&[
            "--tcp-keepalive=1",
            "--tcp-timeout=4",
            "--tcp-fin-timeout=2",
            "--tcp-syn-timeout",
            "3",
        ]))
        .unwrap();
        assert_eq!(
            t,
            TcpTimeouts {
                keepalive: Duration::from_secs(1),
                timeout: Duration::from_secs(4),
                fin_timeout: Duration::from_secs(2),
                syn_timeout: Duration::from_secs(3),
            }
        );
    }

    #[test]
    fn bad_timeouts_say_which_argument_and_why() {
        let err = |a: &[&str]| {
            TcpTimeouts::from_boot_args(&args(a))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&["--tcp-timeout=soon"]),
            "boot argument --tcp-timeout=soon: expected a whole number of seconds, 1 or more"
        );
        assert_eq!(
            err(&["--tcp-fin-timeout=0"]),
            "boot argument --tcp-fin-timeout=0: expected a whole number of seconds, 1 or more"
        );
        assert_eq!(
            err(&["--tcp-syn-timeout"]),
            "boot argument --tcp-syn-timeout=: expected a whole number of seconds, 1 or more"
        );
        assert_eq!(
            err(&["--tcp-keepalive=700"]),
            "boot argument --tcp-keepalive=700: expected fewer seconds than --tcp-timeout, so \
             that a live peer answers a probe in time"
        );
    }

    #[test]
    fn new_connections_need_room_in_the_heap() {
        let c = |free| connections_with_free_heap(free, 2 * TCP_BUFFER);
        assert_eq!(c(0), 0);
        assert_eq!(c(HEAP_RESERVE), 0);
        assert_eq!(c(HEAP_RESERVE + ROOM_PER_CONNECTION - 1), 0);
        assert_eq!(c(HEAP_RESERVE + ROOM_PER_CONNECTION), 1);
        assert_eq!(c(1 << 20), 4);
        // unix has no such limit
        assert_eq!(connection_room(2 * TCP_BUFFER), usize::MAX);
    }

    #[test]
    fn the_buffers_are_sized_to_the_heap() {
        const MIB: usize = 1 << 20;
        const KIB: usize = 1 << 10;
        let b = |heap| {
            let b = tcp_buffers_for_heap(heap);
            (b.rx / KIB, b.tx / KIB)
        };
        // static-website at memory = 4 (about 2.9 MiB of heap) keeps 32 KiB each way; a guest
        // of memory = 32 (about 31 MiB of heap) gets a 256 KiB window, which smoltcp announces
        // with window scaling.
        assert_eq!(b(0), (32, 32));
        assert_eq!(b(2 * MIB + 900 * KIB), (32, 32));
        assert_eq!(b(6 * MIB - 1), (32, 32));
        assert_eq!(b(6 * MIB), (64, 32));
        assert_eq!(b(12 * MIB), (128, 64));
        assert_eq!(b(24 * MIB), (256, 128));
        assert_eq!(b(31 * MIB), (256, 128));
        assert_eq!(b(1 << 30), (MAX_TCP_BUFFER / KIB, 128));
        for heap in (0..80).map(|m| m * MIB / 2) {
            let TcpBuffers { rx, tx } = tcp_buffers_for_heap(heap);
            assert!(rx.is_power_of_two() && (TCP_BUFFER..=MAX_TCP_BUFFER).contains(&rx));
            assert!(rx == TCP_BUFFER || rx <= heap / 96, "{heap}: {rx}");
            assert_eq!(tx, (rx / 2).max(TCP_BUFFER));
        }
        // unix keeps the smallest (its memory tests count them)
        assert_eq!(new_tcp_buffers(), SMALL_TCP_BUFFERS);
    }

    #[test]
    fn large_buffers_only_while_half_the_heap_is_free() {
        const MIB: usize = 1 << 20;
        let heap = 31 * MIB;
        let big = tcp_buffers_for_heap(heap);
        assert_eq!(big.total(), 384 * 1024);
        assert_eq!(tcp_buffers_with_free_heap(heap, 28 * MIB), big);
        let edge = heap / 2 + big.total();
        assert_eq!(tcp_buffers_with_free_heap(heap, edge), big);
        assert_eq!(
            tcp_buffers_with_free_heap(heap, edge - 1),
            SMALL_TCP_BUFFERS
        );
        assert_eq!(tcp_buffers_with_free_heap(heap, MIB), SMALL_TCP_BUFFERS);
        // Connections one after another from a nearly empty heap: the large ones stop once
        // half of it is taken, and the small ones go on until the room runs out.
        let (mut free, mut large, mut small) = (heap - MIB, 0, 0);
        while connections_with_free_heap(free, SMALL_TCP_BUFFERS.total()) > 0 {
            let b = tcp_buffers_with_free_heap(heap, free);
            if b == big {
                large += 1
            } else {
                small += 1
            }
            free -= b.total();
        }
        assert!(large * big.total() <= heap / 2, "{large}");
        assert_eq!((large, small), (38, 248));
        // On a small heap both are the small ones.
        let heap = 2 * MIB + 900 * 1024;
        assert_eq!(tcp_buffers_with_free_heap(heap, heap), SMALL_TCP_BUFFERS);
    }

    #[test]
    fn the_backlog_is_sized_to_the_heap() {
        const MIB: usize = 1 << 20;
        // A 4 MiB guest has about 2.9 MiB of heap (static-website's image, .bss and stack take
        // 1.2 MiB); the backlog grows with the heap, and shrinks where the buffers double.
        assert_eq!(backlog_for_heap(2 * MIB + 900 * 1024), 5);
        assert_eq!(backlog_for_heap(6 * MIB - 1), 11);
        assert_eq!(backlog_for_heap(6 * MIB), 8);
        assert_eq!(backlog_for_heap(31 * MIB), 10);
        assert_eq!(backlog_for_heap(48 * MIB), BACKLOG);
        assert_eq!(backlog_for_heap(1 << 30), BACKLOG);
        assert_eq!(backlog_for_heap(MIB), MIN_BACKLOG);
        assert_eq!(backlog_for_heap(0), MIN_BACKLOG);
        // Two ports' full backlogs are at most a quarter of the heap, above the minimum.
        for heap in (2..160).map(|m| m * MIB / 2) {
            assert!(
                2 * backlog_for_heap(heap) * tcp_buffers_for_heap(heap).total() <= heap / 4,
                "{heap}"
            );
        }
    }

    #[test]
    fn syn_port_finds_only_a_bare_syn() {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{
            EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr,
            TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
        };
        let frame = |control, ack: Option<i32>| {
            let tcp = TcpRepr {
                src_port: 40000,
                dst_port: 7000,
                control,
                seq_number: TcpSeqNumber(1),
                ack_number: ack.map(TcpSeqNumber),
                window_len: 1000,
                window_scale: None,
                max_seg_size: None,
                sack_permitted: false,
                sack_ranges: [None; 3],
                timestamp: None,
                payload: &[],
            };
            let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
            let ip = Ipv4Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: IpProtocol::Tcp,
                payload_len: tcp.header_len(),
                hop_limit: 64,
            };
            let eth = EthernetRepr {
                src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
                dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
                ethertype: EthernetProtocol::Ipv4,
            };
            let mut buf = vec![0; eth.buffer_len() + ip.buffer_len() + tcp.header_len()];
            let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
            eth.emit(&mut f);
            let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
            let caps = ChecksumCapabilities::default();
            ip.emit(&mut p, &caps);
            let mut t = TcpPacket::new_unchecked(p.payload_mut());
            tcp.emit(&mut t, &src.into(), &dst.into(), &caps);
            buf
        };
        assert_eq!(syn_port(&frame(TcpControl::Syn, None)), Some(7000));
        assert_eq!(syn_port(&frame(TcpControl::Syn, Some(5))), None, "SYN-ACK");
        assert_eq!(syn_port(&frame(TcpControl::None, Some(5))), None, "ACK");
        assert_eq!(syn_port(&frame(TcpControl::Rst, None)), None, "RST");
        let f = frame(TcpControl::Syn, None);
        assert_eq!(syn_port(&f[..40]), None, "truncated");
        assert_eq!(syn_port(&[]), None);
    }
}
