//! [`Server`]: listen on a port, plain or over TLS, and serve each connection in its own task.

use alloc::rc::Rc;
use core::cell::Cell;
use core::convert::Infallible;
use core::future::poll_fn;
use core::net::SocketAddr;
use core::task::{Poll, Waker};
use core::time::Duration;

use uni_runtime::device::net::{Flow, Listener, Stack};
use uni_runtime::device::Clock;
use uni_tls::{Tls, TlsFlow, TlsListener};

use crate::conn::{after, serve_flow, within};
use crate::{Error, Handler, Limits, Log, Phase};

/// How connections reach the server: plain TCP ([`Plain`]) or TLS over it ([`Tls`]).
///
/// # Contract
/// * [`accept`](Transport::accept) MUST return as soon as a connection is accepted, without
///   waiting on the client (no handshake), so that one slow client never holds up the others.
/// * [`establish`](Transport::establish) does whatever must happen before the first request
///   (the TLS handshake); it runs in the connection's own task, under
///   [`Limits::head_timeout`].
pub trait Transport {
    /// A listening socket.
    type Listener;
    /// An accepted connection.
    type Flow: Flow + 'static;
    /// Listens on `port` (0 picks a free one).
    async fn listen(&self, port: u16) -> Result<Self::Listener, Error>;
    /// The next connection.
    async fn accept(listener: &Self::Listener) -> Result<Self::Flow, Error>;
    /// The address `listener` is bound to.
    fn local_addr(listener: &Self::Listener) -> SocketAddr;
    /// Makes an accepted connection ready for requests.
    async fn establish(flow: &mut Self::Flow) -> Result<(), Error>;
}

/// Plain TCP over a network stack: `http://`.
#[derive(Debug, Clone)]
pub struct Plain<S>(pub S);

impl<S: Stack> Transport for Plain<S> {
    type Listener = S::Listener;
    type Flow = S::Flow;

    async fn listen(&self, port: u16) -> Result<S::Listener, Error> {
        Ok(self.0.listen(port).await?)
    }

    async fn accept(listener: &S::Listener) -> Result<S::Flow, Error> {
        Ok(listener.accept().await?.0)
    }

    fn local_addr(listener: &S::Listener) -> SocketAddr {
        listener.local_addr()
    }

    async fn establish(_: &mut S::Flow) -> Result<(), Error> {
        Ok(())
    }
}

/// TLS over a network stack: `https://`, with the tls device's certificates.
impl<S: Stack> Transport for Tls<S> {
    type Listener = TlsListener<S::Listener>;
    type Flow = TlsFlow<S::Flow>;

    async fn listen(&self, port: u16) -> Result<Self::Listener, Error> {
        Ok(Tls::listen(self, port).await?)
    }

    async fn accept(listener: &Self::Listener) -> Result<Self::Flow, Error> {
        Ok(listener.accept().await?.0)
    }

    fn local_addr(listener: &Self::Listener) -> SocketAddr {
        listener.local_addr()
    }

    async fn establish(flow: &mut Self::Flow) -> Result<(), Error> {
        Ok(flow.handshake().await?)
    }
}

/// An HTTP/1.1 server: a transport, a clock for timeouts, a port, and [`Limits`].
///
/// ```no_run
/// # async fn app(net: uni_net::socket::SocketStack, files: uni_runtime::kv::Embedded, console: uni_runtime::platform::Console) -> Result<(), uni_http::Error> {
/// let clock = uni_runtime::platform::Clock::new();
/// let server = uni_http::Server::plain(net, clock, 80);
/// server.serve(uni_http::StaticFiles::new(files), console).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Server<T, C> {
    transport: T,
    clock: C,
    port: u16,
    limits: Limits,
}

impl<S: Stack, C: Clock + Clone + 'static> Server<Plain<S>, C> {
    /// A server for `http://` on `port` of `stack`, timing connections with `clock`, with the
    /// default [`Limits`].
    pub fn plain(stack: S, clock: C, port: u16) -> Server<Plain<S>, C> {
        Server::new(Plain(stack), clock, port)
    }
}

impl<S: Stack, C: Clock + Clone + 'static> Server<Tls<S>, C> {
    /// A server for `https://` on `port`, with the certificates of the tls device `tls`,
    /// timing connections with `clock`, with the default [`Limits`]. Each connection's
    /// handshake runs in its own task.
    pub fn tls(tls: Tls<S>, clock: C, port: u16) -> Server<Tls<S>, C> {
        Server::new(tls, clock, port)
    }
}

impl<T: Transport, C: Clock + Clone + 'static> Server<T, C> {
    /// A server over any transport.
    pub fn new(transport: T, clock: C, port: u16) -> Server<T, C> {
        Server {
            transport,
            clock,
            port,
            limits: Limits::DEFAULT,
        }
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Server<T, C> {
        self.limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Listens on the port, without accepting yet (so that the bound address is known, as
    /// with port 0).
    pub async fn listen(self) -> Result<Listening<T, C>, Error> {
        let listener = self.transport.listen(self.port).await?;
        Ok(Listening {
            listener,
            clock: self.clock,
            limits: self.limits,
        })
    }

    /// Listens, then serves forever: [`Listening::serve`]. Returns only if listening fails.
    pub async fn serve<H: Handler + 'static, L: Log + 'static>(
        self,
        handler: H,
        log: L,
    ) -> Result<Infallible, Error> {
        self.listen().await?.serve(handler, log).await
    }
}

/// A server whose port is bound.
pub struct Listening<T: Transport, C> {
    listener: T::Listener,
    clock: C,
    limits: Limits,
}

impl<T: Transport, C> core::fmt::Debug for Listening<T, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Listening")
            .field("local_addr", &T::local_addr(&self.listener))
            .finish_non_exhaustive()
    }
}

/// How long to wait after a failed accept (out of sockets, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl<T: Transport, C: Clock + Clone + 'static> Listening<T, C> {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        T::local_addr(&self.listener)
    }

    /// Accepts connections forever, each served by `handler` in a task of its own
    /// ([`uni_runtime::task::spawn`]) and logged to `log`, at most
    /// [`Limits::max_connections`] at once. A connection's failure ends only that connection;
    /// a failed accept is logged and retried after a short pause.
    pub async fn serve<H: Handler + 'static, L: Log + 'static>(
        self,
        handler: H,
        log: L,
    ) -> Result<Infallible, Error> {
        let handler = Rc::new(handler);
        let log = Rc::new(log);
        let slots = Rc::new(Slots {
            free: Cell::new(self.limits.max_connections.max(1)),
            waiter: Cell::new(None),
        });
        loop {
            let slot = Slots::take(&slots).await;
            match T::accept(&self.listener).await {
                Ok(flow) => {
                    let (clock, limits, handler, log) = (
                        self.clock.clone(),
                        self.limits,
                        handler.clone(),
                        log.clone(),
                    );
                    uni_runtime::task::spawn(async move {
                        let _slot = slot;
                        let peer = flow.peer_addr();
                        if let Err(e) =
                            connection::<T, _, _, _>(flow, &clock, &limits, &*handler, &*log).await
                        {
                            log.error(Some(peer), &e).await;
                        }
                    });
                }
                Err(e) => {
                    log.error(None, &e).await;
                    self.clock.sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// The connections a server may still open ([`Limits::max_connections`]), and the accept
/// loop's waker while there are none.
struct Slots {
    free: Cell<usize>,
    waiter: Cell<Option<Waker>>,
}

/// One open connection's place; dropping it (when the connection's task ends) frees it.
struct Slot(Rc<Slots>);

impl Slots {
    /// Waits for a free place.
    async fn take(slots: &Rc<Slots>) -> Slot {
        poll_fn(|cx| match slots.free.get() {
            0 => {
                slots.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }
            n => {
                slots.free.set(n - 1);
                Poll::Ready(())
            }
        })
        .await;
        Slot(slots.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.free.set(self.0.free.get() + 1);
        if let Some(w) = self.0.waiter.take() {
            w.wake();
        }
    }
}

/// One connection's task: establish it (the TLS handshake), then serve it.
async fn connection<T: Transport, C: Clock, H: Handler, L: Log>(
    mut flow: T::Flow,
    clock: &C,
    limits: &Limits,
    handler: &H,
    log: &L,
) -> Result<(), Error> {
    let deadline = after(clock, limits.head_timeout);
    if let Err(e) = within(clock, deadline, Phase::Handshake, T::establish(&mut flow)).await {
        let deadline = after(clock, limits.write_timeout);
        let _ = within(clock, deadline, Phase::Write, flow.close()).await;
        return Err(e);
    }
    serve_flow(flow, clock, limits, handler, log).await
}
