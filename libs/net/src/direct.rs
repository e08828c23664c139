//! `stack = "direct"`: smoltcp running inside the unikernel, over the platform's [`Netif`]
//! (Xen netfront, or a TAP device on unix).
//!
//! One background task drives the interface: it polls smoltcp whenever the device has frames,
//! a timer smoltcp asked for expires, or a flow queued data; then it sleeps. Flows and listeners
//! only touch their sockets and wake that task, so no flow can block the stack.

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
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpCidr, IpEndpoint, IpListenEndpoint, Ipv4Cidr,
};
use uni_runtime::device::net::{self, Ipv4Config, NetError};
use uni_runtime::device::netif::Netif;
use uni_runtime::device::Clock;
use uni_runtime::BootArgs;

use crate::{Ipv4Setting, NetConfig, NetConfigError};

/// Bytes of receive and of transmit buffer per TCP socket: a flow's writer is held back once
/// this much is written and not yet acknowledged by the peer.
pub const TCP_BUFFER: usize = 32 * 1024;
/// Listening sockets kept ready per listener: connections arriving while all are mid-handshake
/// are refused.
const BACKLOG: usize = 16;
/// A flow idle this long with data unacknowledged is reset.
const TCP_TIMEOUT: Duration = Duration::from_secs(60);
const UDP_PACKETS: usize = 32;
const UDP_BUFFER: usize = 16 * 1024;
/// The longest the driver sleeps when smoltcp has no timer pending.
const IDLE: Duration = Duration::from_secs(10);

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
    orphans: Vec<SocketHandle>,
    next_port: u16,
}

fn smol_now<C: Clock>(c: &C) -> SmolInstant {
    SmolInstant::from_micros((c.now().as_nanos() / 1000) as i64)
}

impl<N: Netif + 'static, C: Clock + 'static> DirectStack<N, C> {
    /// Starts the stack over `dev` as `unikernel.toml` configures it (`ipv4` is `"dhcp"` or
    /// `"A.B.C.D/N"`), with `--ipv4`/`--ipv4-gateway` from the boot arguments applied. Waits for
    /// an address (DHCP), then reports it with `log`.
    pub async fn configure(
        dev: N,
        clock: C,
        ipv4: &str,
        gateway: Option<&str>,
        boot_args: &BootArgs,
        log: fn(&str),
    ) -> Result<DirectStack<N, C>, NetConfigError> {
        let config = NetConfig::parse(ipv4, gateway)?.with_boot_args(boot_args)?;
        let stack = DirectStack::new(dev, clock, config.ipv4);
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

    /// Starts the stack and its driver task; returns at once.
    pub fn new(mut dev: N, clock: C, ipv4: Ipv4Setting) -> DirectStack<N, C> {
        let mac = dev.mac();
        let now = smol_now(&clock);
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        // Seeds smoltcp's initial sequence numbers and ports; the MAC and clock differ per guest.
        config.random_seed =
            u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0])
                ^ (now.total_micros() as u64).rotate_left(17);
        let iface = Interface::new(config, &mut dev, now);
        let mut sockets = SocketSet::new(vec![]);
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
            next_port: 49152,
        };
        if let Some(c) = st_ipv4 {
            st.set_ipv4(Some(c));
        }
        let sh = Rc::new(Shared {
            st: RefCell::new(st),
            clock,
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
        let State {
            iface,
            dev,
            sockets,
            ..
        } = &mut *st;
        iface.poll(now, dev, sockets);
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
                let State {
                    iface,
                    dev,
                    sockets,
                    ..
                } = &mut *st;
                iface.poll(now, dev, sockets);
            }
        }
        if st.ipv4.is_some() {
            for w in self.configured.borrow_mut().drain(..) {
                w.wake();
            }
        }
        // Reap flows the app closed once TCP has finished with them.
        let State {
            sockets, orphans, ..
        } = &mut *st;
        orphans.retain(|&h| {
            let done = matches!(
                sockets.get::<tcp::Socket>(h).state(),
                tcp::State::Closed | tcp::State::TimeWait
            );
            if done {
                sockets.remove(h);
            }
            !done
        });
        let State { iface, sockets, .. } = &mut *st;
        iface
            .poll_delay(now, sockets)
            .map(|d| Duration::from_micros(d.total_micros()))
            .unwrap_or(IDLE)
            .min(IDLE)
    }
}

/// The driver task.
async fn drive<N: Netif, C: Clock>(sh: Rc<Shared<N, C>>) {
    loop {
        let delay = sh.poll();
        if delay.is_zero() {
            // More work right away, but let other tasks run first.
            yield_now().await;
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

async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

fn tcp_socket() -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
        tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
    );
    s.set_timeout(Some(smoltcp::time::Duration::from_secs(
        TCP_TIMEOUT.as_secs(),
    )));
    s.set_nagle_enabled(false);
    s
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
        let mut backlog = Vec::with_capacity(BACKLOG);
        for _ in 0..BACKLOG {
            let mut s = tcp_socket();
            s.listen(port).map_err(|_| NetError::AddrInUse)?;
            backlog.push(st.sockets.add(s));
        }
        drop(st);
        self.sh.kick();
        Ok(TcpListener {
            sh: self.sh.clone(),
            port,
            backlog: RefCell::new(backlog),
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
            let mut s = tcp_socket();
            let State { iface, .. } = &mut *st;
            s.connect(iface.context(), (*v4.ip(), v4.port()), local)
                .map_err(|e| NetError::Other(alloc::format!("connect: {e}")))?;
            st.sockets.add(s)
        };
        self.sh.kick();
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
                    st.sockets.remove(h);
                    Poll::Ready(Err(NetError::Refused))
                }
                _ => Poll::Ready(Ok(())),
            }
        })
        .await?;
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
        let h = st.sockets.add(s);
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

/// A listening TCP port: a backlog of listening sockets, replenished as connections arrive.
pub struct TcpListener<N: Netif + 'static, C: Clock + 'static> {
    sh: Rc<Shared<N, C>>,
    port: u16,
    backlog: RefCell<Vec<SocketHandle>>,
}

impl<N: Netif + 'static, C: Clock + 'static> net::Listener for TcpListener<N, C> {
    type Flow = TcpFlow<N, C>;

    async fn accept(&self) -> Result<(TcpFlow<N, C>, SocketAddr), NetError> {
        let (h, peer) = poll_fn(|cx| {
            let mut st = self.sh.st.borrow_mut();
            let mut backlog = self.backlog.borrow_mut();
            for i in 0..backlog.len() {
                let s = st.sockets.get_mut::<tcp::Socket>(backlog[i]);
                match s.state() {
                    tcp::State::Listen | tcp::State::SynReceived => {
                        s.register_recv_waker(cx.waker())
                    }
                    _ => {
                        let peer = s.remote_endpoint().map(to_std);
                        let h = backlog[i];
                        let mut fresh = tcp_socket();
                        // The port is already listened on by this listener; this cannot fail.
                        let _ = fresh.listen(IpListenEndpoint {
                            addr: None,
                            port: self.port,
                        });
                        backlog[i] = st.sockets.add(fresh);
                        match peer {
                            Some(peer) => return Poll::Ready((h, peer)),
                            // Reset before we saw it: drop it and keep waiting.
                            None => {
                                st.sockets.remove(h);
                                cx.waker().wake_by_ref();
                                return Poll::Pending;
                            }
                        }
                    }
                }
            }
            Poll::Pending
        })
        .await;
        self.sh.kick();
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
        for h in self.backlog.borrow_mut().drain(..) {
            st.sockets.remove(h);
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
        self.shutdown().await
        // Drop hands the socket to the driver, which removes it once TCP is done.
    }

    fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

impl<N: Netif + 'static, C: Clock + 'static> Drop for TcpFlow<N, C> {
    fn drop(&mut self) {
        if let Ok(mut st) = self.sh.st.try_borrow_mut() {
            st.sockets.get_mut::<tcp::Socket>(self.h).close();
            st.orphans.push(self.h);
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
            st.sockets.remove(self.h);
        }
    }
}
