//! The network stack an application uses: TCP flows and UDP sockets.
//!
//! Two implementations sit behind these traits, chosen in `unikernel.toml` with
//! `stack = "socket" | "direct"`: host sockets (unix only) and a TCP/IP stack running over the
//! platform's network device. An application's code does not change between them.

use core::fmt;
use core::net::{Ipv4Addr, SocketAddr};

/// A TCP/IP stack.
///
/// # Contract
/// * [`listen`](Stack::listen) binds `port` on every address of the stack; port 0 MUST pick a
///   free port, reported by [`Listener::local_addr`].
/// * [`connect`](Stack::connect) completes when the handshake has, or returns why not
///   ([`NetError::Refused`], [`NetError::Unreachable`], [`NetError::TimedOut`]).
/// * The stack MUST keep serving other flows while one flow's reader is slow: no flow blocks the
///   stack.
pub trait Stack {
    /// A connected TCP flow. Flows own their state, so a task can take one away.
    type Flow: Flow + 'static;
    /// A listening TCP socket.
    type Listener: Listener<Flow = Self::Flow> + 'static;
    /// A bound UDP socket.
    type Udp: UdpSocket + 'static;

    /// Listens for TCP connections on `port`.
    async fn listen(&self, port: u16) -> Result<Self::Listener, NetError>;
    /// Opens a TCP connection to `addr`.
    async fn connect(&self, addr: SocketAddr) -> Result<Self::Flow, NetError>;
    /// Binds a UDP socket to `port` (0 picks a free one).
    async fn bind_udp(&self, port: u16) -> Result<Self::Udp, NetError>;
    /// The IPv4 configuration in use, once it is known (after DHCP, for instance).
    fn ipv4(&self) -> Option<Ipv4Config>;
}

/// A listening TCP socket.
pub trait Listener {
    /// The flow type accepted connections have.
    type Flow: Flow;
    /// Waits for the next connection and returns it with the peer's address.
    async fn accept(&self) -> Result<(Self::Flow, SocketAddr), NetError>;
    /// The address this listener is bound to.
    fn local_addr(&self) -> SocketAddr;
}

/// A connected, bidirectional TCP byte stream.
///
/// # Contract
/// * [`read`](Flow::read) returns `Ok(0)` only at end of stream (the peer shut down its side),
///   and otherwise waits until at least one byte is available.
/// * [`write`](Flow::write) waits until at least one byte is accepted and returns how many were;
///   it MUST NOT drop bytes it reported as written.
/// * [`shutdown`](Flow::shutdown) ends our sending side (a FIN); reading still works.
/// * [`close`](Flow::close) ends the flow; pending written data is still delivered.
pub trait Flow {
    /// Reads into `buf`, returning how many bytes were read (0 = end of stream).
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError>;
    /// Writes from `buf`, returning how many bytes were accepted (at least 1 if `buf` is not
    /// empty).
    async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError>;
    /// Ends the sending side of the flow.
    async fn shutdown(&mut self) -> Result<(), NetError>;
    /// Closes the flow.
    async fn close(self) -> Result<(), NetError>;
    /// The remote end's address.
    fn peer_addr(&self) -> SocketAddr;

    /// Writes all of `buf`.
    async fn write_all(&mut self, mut buf: &[u8]) -> Result<(), NetError> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            buf = &buf[n..];
        }
        Ok(())
    }
}

/// A bound UDP socket.
pub trait UdpSocket {
    /// Sends one datagram to `addr`.
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> Result<(), NetError>;
    /// Waits for one datagram; returns its length and sender. A datagram longer than `buf` is
    /// truncated to fit.
    async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError>;
    /// The address this socket is bound to.
    fn local_addr(&self) -> SocketAddr;
}

/// An IPv4 interface configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Config {
    /// The interface address.
    pub address: Ipv4Addr,
    /// The prefix length of the attached network (0–32).
    pub prefix_len: u8,
    /// The default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
}

impl fmt::Display for Ipv4Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        Ok(())
    }
}

/// Why a network operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetError {
    /// The address or port is already in use.
    AddrInUse,
    /// The peer refused the connection.
    Refused,
    /// The peer reset the connection.
    Reset,
    /// No route to the destination.
    Unreachable,
    /// The operation timed out.
    TimedOut,
    /// The flow is closed for this operation (for example, writing after `shutdown`).
    Closed,
    /// The stack ran out of a resource (sockets, buffers).
    Exhausted,
    /// Anything else, with the platform's description.
    Other(alloc::string::String),
    /// Listening on `port` failed: what every stack's [`Stack::listen`] returns, so that the
    /// error names the port whoever prints it ([`NetError::listen`]).
    Listen {
        /// The net device (its name in unikernel.toml) whose stack was asked, when the stack
        /// was built for one ([`NetError::listen_on`]).
        device: Option<&'static str>,
        /// The port asked for.
        port: u16,
        /// Why (never itself a `Listen`).
        cause: alloc::boxed::Box<NetError>,
    },
}

impl NetError {
    /// `cause` as the error of a listen on `port`: "cannot listen on port 7000: address in use".
    pub fn listen(port: u16, cause: NetError) -> NetError {
        NetError::listen_on(None, port, cause)
    }

    /// The same, naming the net `device` whose stack failed: "net device \"net\": cannot
    /// listen on port 7000: address in use".
    pub fn listen_on(device: Option<&'static str>, port: u16, cause: NetError) -> NetError {
        match cause {
            l @ NetError::Listen { .. } => l,
            c => NetError::Listen {
                device,
                port,
                cause: alloc::boxed::Box::new(c),
            },
        }
    }

    /// What went wrong under the context a [`NetError::Listen`] adds (itself for the rest):
    /// the error to match on.
    pub fn cause(&self) -> &NetError {
        match self {
            NetError::Listen { cause, .. } => cause,
            e => e,
        }
    }
}

/// How a failed listen is said, by [`NetError::Listen`] and by the servers over it
/// (uni-http's): "cannot listen on port 7000: " and the cause.
pub fn write_listen_error(
    f: &mut fmt::Formatter<'_>,
    port: u16,
    cause: &dyn fmt::Display,
) -> fmt::Result {
    write!(f, "cannot listen on port {port}: {cause}")
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::AddrInUse => f.write_str("address in use"),
            NetError::Refused => f.write_str("connection refused"),
            NetError::Reset => f.write_str("connection reset by peer"),
            NetError::Unreachable => f.write_str("destination unreachable"),
            NetError::TimedOut => f.write_str("timed out"),
            NetError::Closed => f.write_str("flow closed"),
            NetError::Exhausted => f.write_str("out of sockets or buffers"),
            NetError::Other(s) => f.write_str(s),
            NetError::Listen {
                device,
                port,
                cause,
            } => {
                if let Some(d) = device {
                    write!(f, "net device \"{d}\": ")?;
                }
                write_listen_error(f, *port, cause)
            }
        }
    }
}

impl core::error::Error for NetError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn a_failed_listen_names_its_port() {
        let e = NetError::listen(7000, NetError::AddrInUse);
        assert_eq!(e.to_string(), "cannot listen on port 7000: address in use");
        assert_eq!(e.cause(), &NetError::AddrInUse);
        assert_eq!(NetError::listen(8000, e.clone()), e, "said once");
        assert_eq!(NetError::Refused.cause(), &NetError::Refused);
        let named = NetError::listen_on(Some("lan"), 7000, NetError::AddrInUse);
        assert_eq!(
            named.to_string(),
            "net device \"lan\": cannot listen on port 7000: address in use"
        );
        assert_eq!(named.cause(), &NetError::AddrInUse);
    }
}
