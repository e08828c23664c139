//! [`Server`]: listen on a port, plain or over TLS, and serve each connection in its own task.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use core::cell::{Cell, RefCell};
use core::convert::Infallible;
use core::future::{poll_fn, Future};
use core::net::{IpAddr, SocketAddr};
use core::pin::pin;
use core::task::{Poll, Waker};
use core::time::Duration;

use uni_runtime::device::net::{Flow, Listener, Stack};
use uni_runtime::device::{Clock, Instant};
use uni_tls::{Tls, TlsFlow, TlsListener};

use crate::conn::{after, serve, within};
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
    device: Option<alloc::string::String>,
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
            device: None,
        }
    }

    /// Names the server after its http device in unikernel.toml (the generated main does), so
    /// that a failure to listen names the device, the port and the `--<name>-port=N` boot
    /// argument that sets another: `http device "https": cannot listen on port 443: address in
    /// use (set another with --https-port=N)`.
    pub fn named(mut self, device: &str) -> Server<T, C> {
        self.device = Some(device.into());
        self
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
        let listener = self
            .transport
            .listen(self.port)
            .await
            .map_err(|e| Error::Listen {
                device: self.device.clone(),
                port: self.port,
                error: alloc::boxed::Box::new(e),
            })?;
        // `--uni-boot-info` on Xen: the boot's last milestone, sockets listening.
        uni_runtime::boot_milestone(&alloc::format!(
            "listening on port {}",
            T::local_addr(&listener).port()
        ));
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
    /// [`Limits::max_connections`] at once and [`Limits::max_per_peer`] from one address.
    /// When the server is full, the oldest connection without a complete request head past
    /// [`Limits::head_grace`] is closed to make room. A connection's failure ends only that
    /// connection; a failed accept is logged and retried after a short pause.
    pub async fn serve<H: Handler + 'static, L: Log + 'static>(
        self,
        handler: H,
        log: L,
    ) -> Result<Infallible, Error> {
        let handler = Rc::new(handler);
        let log = Rc::new(log);
        let table = Rc::new(Table::new(self.limits.max_connections.max(1)));
        loop {
            let flow = match T::accept(&self.listener).await {
                Ok(flow) => flow,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    log.error(None, &e).await;
                    self.clock.sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let peer = flow.peer_addr();
            if table.open_from(peer.ip()) >= self.limits.max_per_peer.max(1) {
                log::debug!("{peer}: over the per-peer connection cap; closed");
                // Over the peer's cap: dropping the flow closes it.
                drop(flow);
                continue;
            }
            table.make_room(&self.clock, self.limits.head_grace).await;
            let slot = Table::admit(&table, peer.ip(), self.clock.now());
            let (clock, limits, handler, log) = (
                self.clock.clone(),
                self.limits,
                handler.clone(),
                log.clone(),
            );
            uni_runtime::task::spawn(async move {
                let ticket = &slot.ticket;
                let headed = || slot.headed();
                let served =
                    connection::<T, _, _, _>(flow, &clock, &limits, &*handler, &*log, &headed);
                // An evicted connection's future is dropped where it stands, which closes its
                // flow; its place is free as soon as `slot` is dropped.
                if let Some(Err(e)) = unless_evicted(served, ticket).await {
                    uni_runtime::metrics::HTTP_ERRORS.inc();
                    log::debug!("{peer} error: {e}");
                    log.error(Some(peer), &e).await;
                }
                drop(slot);
            });
        }
    }
}

/// Where a connection stands, for eviction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No complete request head yet: it may be evicted while the server is full.
    Fresh,
    /// It sent a head: it ends by its own timeouts only.
    Headed,
    /// The accept loop closed it to make room.
    Evicted,
    /// Its task ended.
    Ended,
}

/// One connection's entry in the [`Table`].
struct Ticket {
    /// Its place in the order of admission.
    seq: u64,
    accepted: Instant,
    state: Cell<State>,
    /// The connection's task, to wake when it is evicted.
    waker: Cell<Option<Waker>>,
}

impl Ticket {
    /// Closes the connection to make room: its task ends the next time it runs.
    fn evict(&self) {
        self.state.set(State::Evicted);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// Runs `fut` until it completes (`Some`) or the connection of `ticket` is evicted (`None`).
async fn unless_evicted<F: Future>(fut: F, ticket: &Ticket) -> Option<F::Output> {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if ticket.state.get() == State::Evicted {
            return Poll::Ready(None);
        }
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        match ticket.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => ticket.waker.set(Some(w)),
            _ => ticket.waker.set(Some(cx.waker().clone())),
        }
        Poll::Pending
    })
    .await
}

/// The server's open connections: how many more it may open ([`Limits::max_connections`]),
/// how many each peer address has open ([`Limits::max_per_peer`]), and the ones without a
/// complete request head yet, in the order they were accepted (the eviction candidates).
struct Table {
    free: Cell<usize>,
    /// The accept loop, while it waits for a free place.
    waiter: Cell<Option<Waker>>,
    peers: RefCell<BTreeMap<IpAddr, usize>>,
    /// The connections in [`State::Fresh`] (and only those), by order of admission: O(log n)
    /// per connection, and no memory kept for connections past that state.
    fresh: RefCell<BTreeMap<u64, Rc<Ticket>>>,
    /// The next admission's number.
    next: Cell<u64>,
}

/// One open connection's place; dropping it (when the connection's task ends) frees it.
struct Slot {
    table: Rc<Table>,
    peer: IpAddr,
    ticket: Rc<Ticket>,
}

impl Table {
    fn new(max: usize) -> Table {
        Table {
            free: Cell::new(max),
            waiter: Cell::new(None),
            peers: RefCell::new(BTreeMap::new()),
            fresh: RefCell::new(BTreeMap::new()),
            next: Cell::new(0),
        }
    }

    /// How many connections `peer` has open.
    fn open_from(&self, peer: IpAddr) -> usize {
        self.peers.borrow().get(&peer).copied().unwrap_or(0)
    }

    /// Takes a place for a connection from `peer`, accepted at `now`. There MUST be a free
    /// place ([`make_room`](Table::make_room)).
    fn admit(table: &Rc<Table>, peer: IpAddr, now: Instant) -> Slot {
        table.free.set(table.free.get().saturating_sub(1));
        *table.peers.borrow_mut().entry(peer).or_insert(0) += 1;
        let seq = table.next.get();
        table.next.set(seq + 1);
        let ticket = Rc::new(Ticket {
            seq,
            accepted: now,
            state: Cell::new(State::Fresh),
            waker: Cell::new(None),
        });
        table.fresh.borrow_mut().insert(seq, ticket.clone());
        Slot {
            table: table.clone(),
            peer,
            ticket,
        }
    }

    /// The oldest connection without a complete request head, if any.
    fn oldest_fresh(&self) -> Option<Rc<Ticket>> {
        self.fresh
            .borrow()
            .first_key_value()
            .map(|(_, t)| t.clone())
    }

    /// Waits until there is a free place: evicts the oldest connection without a complete
    /// head once it is `grace` old (waiting for that if need be), or waits for one to end.
    async fn make_room(&self, clock: &impl Clock, grace: Duration) {
        while self.free.get() == 0 {
            let Some(oldest) = self.oldest_fresh() else {
                self.freed(None::<core::future::Pending<()>>).await;
                continue;
            };
            let age = clock.now().saturating_duration_since(oldest.accepted);
            if age >= grace {
                self.fresh.borrow_mut().remove(&oldest.seq);
                oldest.evict();
                self.freed(None::<core::future::Pending<()>>).await;
            } else {
                self.freed(Some(clock.sleep(grace - age))).await;
            }
        }
    }

    /// Waits until a place is free, or `timer` (if any) ends.
    async fn freed(&self, timer: Option<impl Future<Output = ()>>) {
        let mut timer = pin!(timer);
        poll_fn(|cx| {
            if self.free.get() > 0 {
                return Poll::Ready(());
            }
            if let Some(t) = timer.as_mut().as_pin_mut() {
                if t.poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            self.waiter.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await
    }
}

impl Slot {
    /// The connection's first request head is complete: it is no longer one to evict.
    fn headed(&self) {
        if self.ticket.state.get() == State::Fresh {
            self.ticket.state.set(State::Headed);
            self.table.fresh.borrow_mut().remove(&self.ticket.seq);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.ticket.state.get() == State::Fresh {
            self.table.fresh.borrow_mut().remove(&self.ticket.seq);
        }
        self.ticket.state.set(State::Ended);
        let table = &self.table;
        table.free.set(table.free.get() + 1);
        let mut peers = table.peers.borrow_mut();
        if let Some(n) = peers.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                peers.remove(&self.peer);
            }
        }
        if let Some(w) = table.waiter.take() {
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
    headed: &dyn Fn(),
) -> Result<(), Error> {
    let deadline = after(clock, limits.head_timeout);
    if let Err(e) = within(clock, deadline, Phase::Handshake, T::establish(&mut flow)).await {
        let deadline = after(clock, limits.write_timeout);
        let _ = within(clock, deadline, Phase::Write, flow.close()).await;
        return Err(e);
    }
    serve(flow, clock, limits, handler, log, headed).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn the_table_counts_peers_evicts_oldest_fresh_and_keeps_nothing_after() {
        let table = Rc::new(Table::new(4));
        let at = |ms| Instant(ms * 1_000_000);
        let a = Table::admit(&table, ip(1), at(0));
        let b = Table::admit(&table, ip(1), at(10));
        let c = Table::admit(&table, ip(2), at(20));
        assert_eq!((table.open_from(ip(1)), table.open_from(ip(2))), (2, 1));
        assert_eq!(table.free.get(), 1);
        // `a` sent its head: `b` is now the oldest without one.
        a.headed();
        assert_eq!(table.oldest_fresh().map(|t| t.seq), Some(b.ticket.seq));
        drop(b);
        assert_eq!(table.oldest_fresh().map(|t| t.seq), Some(c.ticket.seq));
        assert_eq!(table.open_from(ip(1)), 1);
        // Many connections later, nothing is kept for those that ended.
        for i in 0..1000u32 {
            let s = Table::admit(&table, ip((i % 7) as u8), at(100 + u64::from(i)));
            if i % 2 == 0 {
                s.headed();
            }
        }
        drop((a, c));
        assert!(table.fresh.borrow().is_empty());
        assert!(table.peers.borrow().is_empty());
        assert_eq!(table.free.get(), 4);
    }
}
