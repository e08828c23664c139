//! `stack = "socket"`: the host's TCP/IP stack through non-blocking sockets (unix only).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::string::ToString;

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use uni_runtime::device::net::{self, Ipv4Config, NetError};

use uni_runtime::BootArgs;

use crate::{Ipv4Setting, NetConfig, NetConfigError};

/// Host sockets. Listeners bind the configured address (all addresses when none is set).
#[derive(Debug, Clone)]
pub struct SocketStack {
    bind: IpAddr,
    ipv4: Option<Ipv4Config>,
    /// The net device this stack is (its name in unikernel.toml), for errors.
    device: &'static str,
}

impl SocketStack {
    /// The stack as `unikernel.toml` describes it (`ipv4`, `gateway`), with the boot arguments
    /// `--ipv4` and `--ipv4-gateway` applied. `0.0.0.0/0` means every host address. `device`
    /// is the net device's name in unikernel.toml, which a failed listen names.
    pub fn configure(
        device: &'static str,
        ipv4: &str,
        gateway: Option<&str>,
        boot_args: &BootArgs,
    ) -> Result<SocketStack, NetConfigError> {
        let config = NetConfig::parse(ipv4, gateway)?.with_boot_args(boot_args)?;
        match config.ipv4 {
            Ipv4Setting::Static(c) if c.address.is_unspecified() => {
                Ok(SocketStack { bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED), ipv4: None, device })
            }
            Ipv4Setting::Static(c) => Ok(SocketStack { bind: IpAddr::V4(c.address), ipv4: Some(c), device }),
            Ipv4Setting::Dhcp => Err(NetConfigError {
                arg: "ipv4",
                value: "dhcp".into(),
                expected: "a static address: the socket stack uses the host's interfaces (DHCP needs stack = \"direct\")",
            }),
        }
    }
}

fn map_err(e: io::Error) -> NetError {
    match e.kind() {
        io::ErrorKind::AddrInUse => NetError::AddrInUse,
        io::ErrorKind::ConnectionRefused => NetError::Refused,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => NetError::Reset,
        io::ErrorKind::TimedOut => NetError::TimedOut,
        io::ErrorKind::BrokenPipe | io::ErrorKind::NotConnected => NetError::Closed,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => NetError::Unreachable,
        _ => NetError::Other(e.to_string()),
    }
}

impl net::Stack for SocketStack {
    type Flow = Flow;
    type Listener = Listener;
    type Udp = Udp;

    async fn listen(&self, port: u16) -> Result<Listener, NetError> {
        let failed = |e| NetError::listen_on(Some(self.device), port, map_err(e));
        let l = Async::<TcpListener>::bind((self.bind, port)).map_err(failed)?;
        let local = l.get_ref().local_addr().map_err(failed)?;
        Ok(Listener { inner: l, local })
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Flow, NetError> {
        let s = Async::<TcpStream>::connect(addr).await.map_err(map_err)?;
        no_delay(&s);
        uni_runtime::metrics::TCP_CONNECTED.inc();
        log::debug!("connected to {addr}");
        #[cfg(feature = "trace")]
        uni_runtime::trace::tcp(
            uni_runtime::trace::Kind::TcpConnect,
            &addr,
            s.get_ref().local_addr().map_or(0, |a| a.port()),
        );
        Ok(Flow {
            inner: s,
            peer: addr,
        })
    }

    async fn bind_udp(&self, port: u16) -> Result<Udp, NetError> {
        let s = Async::<UdpSocket>::bind((self.bind, port)).map_err(map_err)?;
        let local = s.get_ref().local_addr().map_err(map_err)?;
        Ok(Udp { inner: s, local })
    }

    fn ipv4(&self) -> Option<Ipv4Config> {
        self.ipv4
    }
}

/// A listening host TCP socket.
#[derive(Debug)]
pub struct Listener {
    inner: Async<TcpListener>,
    local: SocketAddr,
}

impl net::Listener for Listener {
    type Flow = Flow;

    async fn accept(&self) -> Result<(Flow, SocketAddr), NetError> {
        let (s, peer) = self.inner.accept().await.map_err(map_err)?;
        no_delay(&s);
        uni_runtime::metrics::TCP_ACCEPTED.inc();
        log::debug!("accepted {peer} on port {}", self.local.port());
        #[cfg(feature = "trace")]
        uni_runtime::trace::tcp(
            uni_runtime::trace::Kind::TcpAccept,
            &peer,
            self.local.port(),
        );
        Ok((Flow { inner: s, peer }, peer))
    }

    fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// Turns Nagle's algorithm off (`TCP_NODELAY`), as nginx does on its connections. With it on, a
/// small write waits for the peer's ACK of the previous one, and a peer that delays its ACK
/// (Linux: 40 ms) stalls the response: TLS 1.3 writes its session tickets after the handshake
/// and the first response right after them, so the first request of a connection took 40 ms
/// more. A flow writes each response (or each chunk of it) in one write, so nothing is lost. A
/// socket that refuses it still works, with Nagle.
fn no_delay(s: &Async<TcpStream>) {
    let _ = s.get_ref().set_nodelay(true);
}

/// A connected host TCP socket.
#[derive(Debug)]
pub struct Flow {
    inner: Async<TcpStream>,
    peer: SocketAddr,
}

impl net::Flow for Flow {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        let n = self.inner.read(buf).await.map_err(map_err)?;
        uni_runtime::metrics::TCP_RX_BYTES.add(n as u64);
        Ok(n)
    }

    async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.write(buf).await.map_err(map_err)?;
        uni_runtime::metrics::TCP_TX_BYTES.add(n as u64);
        Ok(n)
    }

    async fn shutdown(&mut self) -> Result<(), NetError> {
        self.inner
            .get_ref()
            .shutdown(Shutdown::Write)
            .map_err(map_err)
    }

    async fn close(mut self) -> Result<(), NetError> {
        #[cfg(feature = "trace")]
        uni_runtime::trace::tcp(uni_runtime::trace::Kind::TcpClose, &self.peer, 0);
        log::debug!("closing the connection with {}", self.peer);
        self.inner.flush().await.map_err(map_err)?;
        // Dropping the socket closes it (and counts it: `Drop`); the kernel still delivers what
        // was written.
        Ok(())
    }

    fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

impl Drop for Flow {
    /// Every flow that ends counts in `tcp.closed`, closed by the app or dropped.
    fn drop(&mut self) {
        uni_runtime::metrics::TCP_CLOSED.inc();
    }
}

/// A bound host UDP socket.
#[derive(Debug)]
pub struct Udp {
    inner: Async<UdpSocket>,
    local: SocketAddr,
}

impl net::UdpSocket for Udp {
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> Result<(), NetError> {
        let n = self.inner.send_to(buf, addr).await.map_err(map_err)?;
        if n == buf.len() {
            Ok(())
        } else {
            Err(NetError::Other(std::format!(
                "datagram truncated to {n} of {} bytes",
                buf.len()
            )))
        }
    }

    async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        self.inner.recv_from(buf).await.map_err(map_err)
    }

    fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::{Flow as _, Listener as _, Stack as _, UdpSocket as _};
    use std::vec;

    #[test]
    fn tcp_roundtrip_and_udp() {
        use uni_runtime::metrics::{TCP_ACCEPTED, TCP_CLOSED, TCP_CONNECTED};
        // The only test of this crate's unit tests that opens flows: the counters' changes are
        // this test's alone.
        let counts = || (TCP_ACCEPTED.get(), TCP_CONNECTED.get(), TCP_CLOSED.get());
        let before = counts();
        futures_lite::future::block_on(async {
            let stack =
                SocketStack::configure("net", "127.0.0.1/8", None, &BootArgs::default()).unwrap();
            assert_eq!(stack.ipv4().unwrap().to_string(), "127.0.0.1/8");
            let overridden = BootArgs::parse(["--ipv4=127.0.0.2/8"]).unwrap();
            let s2 = SocketStack::configure("net", "0.0.0.0/0", None, &overridden).unwrap();
            assert_eq!(s2.ipv4().unwrap().address, Ipv4Addr::new(127, 0, 0, 2));
            assert!(SocketStack::configure("net", "dhcp", None, &BootArgs::default()).is_err());
            let l = stack.listen(0).await.unwrap();
            let addr = l.local_addr();
            let client = async {
                let mut c = stack.connect(addr).await.unwrap();
                // Nagle off on both ends (`no_delay`): a response never waits for an ACK.
                assert!(c.inner.get_ref().nodelay().unwrap());
                c.write_all(b"ping").await.unwrap();
                c.shutdown().await.unwrap();
                let mut got = vec![];
                let mut buf = [0u8; 16];
                loop {
                    let n = c.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                got
            };
            let server = async {
                let (mut f, _) = l.accept().await.unwrap();
                assert!(f.inner.get_ref().nodelay().unwrap());
                let mut buf = [0u8; 16];
                let n = f.read(&mut buf).await.unwrap();
                f.write_all(&buf[..n]).await.unwrap();
                assert_eq!(
                    f.read(&mut buf).await.unwrap(),
                    0,
                    "client shut down its side"
                );
                f.close().await.unwrap();
            };
            let (got, ()) = futures_lite::future::zip(client, server).await;
            assert_eq!(got, b"ping");
            // One accepted, one connected; both ended: the server's closed, the client's only
            // dropped, and each counts once in tcp.closed.
            let (accepted, connected, closed) = counts();
            assert_eq!(
                (accepted - before.0, connected - before.1, closed - before.2),
                (1, 1, 2),
                "tcp.accepted, tcp.connected, tcp.closed"
            );

            let taken = stack.listen(addr.port()).await.unwrap_err();
            assert_eq!(taken.cause(), &NetError::AddrInUse);
            assert_eq!(
                taken.to_string(),
                alloc::format!(
                    "net device \"net\": cannot listen on port {}: address in use",
                    addr.port()
                )
            );
            let refused = stack
                .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1))
                .await;
            assert_eq!(refused.unwrap_err(), NetError::Refused);

            let a = stack.bind_udp(0).await.unwrap();
            let b = stack.bind_udp(0).await.unwrap();
            a.send_to(b"datagram", b.local_addr()).await.unwrap();
            let mut buf = [0u8; 32];
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"datagram");
            assert_eq!(from, a.local_addr());
        });
    }
}
