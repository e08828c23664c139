//! One connection: read request heads, call the handler, write responses in order, until the
//! connection closes, times out or fails.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::future::{poll_fn, Future};
use core::net::SocketAddr;
use core::pin::pin;
use core::task::Poll;
use core::time::Duration;

use uni_runtime::device::net::{Flow, NetError};
use uni_runtime::device::{Clock, Instant};

use crate::date::imf_fixdate;
use crate::request::{framing, Framing};
use crate::response::{bodiless, write_head, Body, Response};
use crate::{Error, Handler, Limits, Log, Phase, Record, Request};

/// How long a closing connection keeps reading (and dropping) what the client still sends,
/// so that the client sees our last response rather than a reset.
const LINGER: Duration = Duration::from_secs(2);

/// `now + d`.
pub(crate) fn after(clock: &impl Clock, d: Duration) -> Instant {
    Instant(
        clock
            .now()
            .0
            .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    )
}

/// Runs `fut` until `deadline`; past it, [`Error::TimedOut`] with `phase`.
pub(crate) async fn within<T, E: Into<Error>>(
    clock: &impl Clock,
    deadline: Instant,
    phase: Phase,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, Error> {
    let mut fut = pin!(fut);
    let mut timer = pin!(clock.sleep(deadline.saturating_duration_since(clock.now())));
    poll_fn(|cx| {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(Into::into));
        }
        timer
            .as_mut()
            .poll(cx)
            .map(|()| Err(Error::TimedOut(phase)))
    })
    .await
}

/// What waiting for a request head gave.
enum Next {
    /// A complete head of this many bytes is at the start of the buffer.
    Head(usize),
    /// The client closed, or stayed idle too long, between requests: close quietly.
    Closed,
    /// The head is refused with this status; then the connection closes.
    Refuse(u16),
}

/// Serves HTTP/1.1 on one connected `flow` until it ends, then closes it: requests are read
/// (several per read when pipelined), answered by `handler` in order, and logged to `log`.
/// A malformed request is answered (`400`, `411`, `413`, `431`, or `408` when its head is too
/// slow) and ends the connection.
///
/// [`Server`](crate::Server) runs this in one task per connection; call it directly to serve
/// flows accepted some other way. The TLS handshake, if any, MUST be done already. Returns an
/// error only when the connection ended abnormally (the network failed, the client stopped
/// reading, a body failed); it is closed either way.
pub async fn serve_flow<F: Flow, C: Clock, H: Handler, L: Log>(
    flow: F,
    clock: &C,
    limits: &Limits,
    handler: &H,
    log: &L,
) -> Result<(), Error> {
    serve(flow, clock, limits, handler, log, &|| ()).await
}

/// [`serve_flow`], calling `headed` once the first request head is complete (the server's
/// connection table then stops counting the connection as one it may evict).
pub(crate) async fn serve<F: Flow, C: Clock, H: Handler, L: Log>(
    flow: F,
    clock: &C,
    limits: &Limits,
    handler: &H,
    log: &L,
    headed: &dyn Fn(),
) -> Result<(), Error> {
    let peer = flow.peer_addr();
    let mut conn = Conn {
        flow,
        clock,
        limits,
        buf: vec![0; limits.max_head.max(64)],
        filled: 0,
        out: Vec::new(),
        line: String::new(),
        peer,
    };
    let result = conn.run(handler, log, headed).await;
    match result {
        Ok(linger) => conn.close(linger).await,
        Err(e) => {
            if matches!(e, Error::BodyLength { .. } | Error::Kv(_)) {
                // The network is fine: send what there is of the response, so that the client
                // sees it cut short (fewer bytes than its Content-Length, then the end).
                let _ = conn.flush().await;
            }
            // Nothing more can be said on this connection: release it, within bounds.
            let deadline = after(clock, limits.write_timeout);
            let _ = within(clock, deadline, Phase::Write, conn.flow.close()).await;
            Err(e)
        }
    }
}

/// What the log and the response need to know of the request being answered.
#[derive(Clone, Copy)]
struct Exchange {
    /// The method's length: `Conn::line` is the method, then the target.
    method_len: usize,
    /// The request's HTTP minor version.
    minor: u8,
    /// Whether the request was `HEAD` (no body is sent).
    head_only: bool,
    /// When the head was complete.
    started: Instant,
}

struct Conn<'a, F, C> {
    flow: F,
    clock: &'a C,
    limits: &'a Limits,
    /// Received bytes not yet consumed: `buf[..filled]`. Its length is `max_head`.
    buf: Vec<u8>,
    filled: usize,
    /// Response bytes not yet written.
    out: Vec<u8>,
    /// The current request's method and target, for the log.
    line: String,
    peer: SocketAddr,
}

impl<F: Flow, C: Clock> Conn<'_, F, C> {
    /// Answers requests until the connection should close. Returns whether to linger (the
    /// client may still be sending) before closing.
    async fn run<H: Handler, L: Log>(
        &mut self,
        handler: &H,
        log: &L,
        headed: &dyn Fn(),
    ) -> Result<bool, Error> {
        let mut first = true;
        loop {
            let head_len = match self.next_head(first).await? {
                Next::Head(n) => {
                    if first {
                        headed();
                    }
                    n
                }
                Next::Closed => return Ok(false),
                Next::Refuse(status) => {
                    #[cfg(feature = "trace")]
                    self.trace(uni_runtime::trace::Phase::Begin, 0, 0);
                    self.line.clear();
                    let exchange = Exchange {
                        method_len: 0,
                        minor: 1,
                        head_only: false,
                        started: self.clock.now(),
                    };
                    self.refuse(status, log, exchange).await?;
                    // A client too slow to send a head is not waited for any longer.
                    return Ok(status != 408);
                }
            };
            first = false;
            let started = self.clock.now();
            #[cfg(feature = "trace")]
            self.trace(uni_runtime::trace::Phase::Begin, 0, 0);
            let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
            let mut parsed = httparse::Request::new(&mut headers);
            // `next_head` parsed these bytes already; a second parse cannot fail.
            let Ok(httparse::Status::Complete(_)) = parsed.parse(&self.buf[..head_len]) else {
                self.line.clear();
                let exchange = Exchange {
                    method_len: 0,
                    minor: 1,
                    head_only: false,
                    started,
                };
                self.refuse(400, log, exchange).await?;
                return Ok(true);
            };
            let request = Request {
                method: parsed.method.unwrap_or(""),
                target: parsed.path.unwrap_or(""),
                minor_version: parsed.version.unwrap_or(0),
                headers: parsed.headers,
                peer: self.peer,
                body: &[],
            };
            self.line.clear();
            self.line.push_str(request.method);
            self.line.push_str(request.target);
            let exchange = Exchange {
                method_len: request.method.len(),
                minor: request.minor_version,
                head_only: request.is_head(),
                started,
            };
            let keep_alive = request.wants_keep_alive();
            let expect_continue = request.has_token("expect", "100-continue");
            let (response, body_len) = match framing(&request, self.limits.max_body) {
                Framing::Refuse(status) => (Err(status), 0),
                // a handler that takes bodies is called once the body is in (below)
                Framing::Length(n) if H::TAKES_BODY && n > 0 => (Ok(None), n),
                Framing::Length(n) => (Ok(Some(handler.handle(&request).await)), n),
            };
            // the head again, for a handler called after the body (the buffer is reused)
            let head = match response {
                Ok(None) => self.buf[..head_len].to_vec(),
                _ => Vec::new(),
            };
            drop(headers);
            let response = match response {
                Ok(r) => r,
                Err(status) => {
                    self.refuse(status, log, exchange).await?;
                    return Ok(true);
                }
            };
            self.consume(head_len);
            if body_len > 0 && expect_continue && exchange.minor >= 1 {
                self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            let response = match response {
                Some(r) => {
                    if body_len > 0 {
                        self.discard(body_len).await?;
                    }
                    r
                }
                None => {
                    let body = self.read_body(body_len).await?;
                    let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
                    let mut parsed = httparse::Request::new(&mut headers);
                    // the same bytes parsed above
                    let _ = parsed.parse(&head);
                    let request = Request {
                        method: parsed.method.unwrap_or(""),
                        target: parsed.path.unwrap_or(""),
                        minor_version: parsed.version.unwrap_or(0),
                        headers: parsed.headers,
                        peer: self.peer,
                        body: &body,
                    };
                    handler.handle(&request).await
                }
            };
            let keep_alive = keep_alive && !closes(&response);
            self.respond(response, keep_alive, log, exchange).await?;
            if !keep_alive {
                return Ok(self.filled > 0);
            }
            // The next request waits for the other connections' turn, whether it is here
            // already (pipelined) or not yet read: a client that sends its next request as
            // soon as it has read a response would otherwise be served again and again, its
            // read never having to wait, while the others' requests sat unread.
            uni_runtime::task::yield_now().await;
        }
    }

    /// Answers with the bare status page `status` and `Connection: close`.
    async fn refuse<L: Log>(
        &mut self,
        status: u16,
        log: &L,
        exchange: Exchange,
    ) -> Result<(), Error> {
        self.respond(Response::status(status), false, log, exchange)
            .await
    }

    /// Sends `response` and logs it, sent or failed.
    async fn respond<B: Body, L: Log>(
        &mut self,
        response: Response<B>,
        keep_alive: bool,
        log: &L,
        exchange: Exchange,
    ) -> Result<(), Error> {
        let sent = self
            .send(response, exchange.head_only, keep_alive, exchange.minor)
            .await;
        let (status, bytes) = match &sent {
            Ok(s) => *s,
            Err((status, bytes, _)) => (*status, *bytes),
        };
        let (method, target) = self.line.split_at(exchange.method_len.min(self.line.len()));
        let record = Record {
            peer: self.peer,
            method,
            target,
            minor_version: exchange.minor,
            status,
            bytes,
            duration: self.clock.now().saturating_duration_since(exchange.started),
        };
        #[cfg(feature = "trace")]
        self.trace(uni_runtime::trace::Phase::End, status.into(), bytes);
        uni_runtime::metrics::http_response(status);
        log::debug!("{record}");
        log.request(&record).await;
        sent.map(|_| ()).map_err(|(_, _, e)| e)
    }

    /// Records an HTTP request event on the connection's track.
    #[cfg(feature = "trace")]
    fn trace(&self, phase: uni_runtime::trace::Phase, arg0: u32, arg1: u64) {
        let track = uni_runtime::trace::conn_track(&self.peer);
        uni_runtime::trace::event(
            track,
            uni_runtime::trace::Kind::HttpRequest,
            phase,
            arg0,
            arg1,
        );
    }

    /// Waits until the buffer starts with a complete request head.
    ///
    /// The first request must arrive whole within `head_timeout` of the connection's start.
    /// Between requests the connection may idle for `idle_timeout`; from the next request's
    /// first byte, its head must arrive within `head_timeout`.
    async fn next_head(&mut self, first: bool) -> Result<Next, Error> {
        let mut deadline =
            (first || self.filled > 0).then(|| after(self.clock, self.limits.head_timeout));
        loop {
            if self.filled > 0 {
                let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
                match httparse::Request::new(&mut headers).parse(&self.buf[..self.filled]) {
                    Ok(httparse::Status::Complete(n)) => return Ok(Next::Head(n)),
                    Ok(httparse::Status::Partial) if self.filled < self.buf.len() => {}
                    Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                        return Ok(Next::Refuse(431))
                    }
                    Err(_) => return Ok(Next::Refuse(400)),
                }
            }
            self.flush().await?;
            let (until, phase) = match deadline {
                Some(d) => (d, Phase::Head),
                None => (after(self.clock, self.limits.idle_timeout), Phase::Idle),
            };
            let read = within(
                self.clock,
                until,
                phase,
                self.flow.read(&mut self.buf[self.filled..]),
            )
            .await;
            match read {
                Ok(0) => return Ok(Next::Closed),
                Ok(n) => self.filled += n,
                Err(Error::TimedOut(Phase::Idle)) => return Ok(Next::Closed),
                Err(Error::TimedOut(_)) => return Ok(Next::Refuse(408)),
                Err(Error::Net(NetError::Reset)) if self.filled == 0 => return Ok(Next::Closed),
                Err(e) => return Err(e),
            }
            deadline.get_or_insert_with(|| after(self.clock, self.limits.head_timeout));
        }
    }

    /// Drops the first `n` bytes of the buffer.
    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
    }

    /// Reads a request body of `len` bytes (at most `max_body`, checked by the framing), leaving
    /// what follows it in the buffer.
    async fn read_body(&mut self, len: u64) -> Result<Vec<u8>, Error> {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let mut body = Vec::with_capacity(len);
        loop {
            let take = (len - body.len()).min(self.filled);
            body.extend_from_slice(&self.buf[..take]);
            self.consume(take);
            if body.len() == len {
                return Ok(body);
            }
            self.flush().await?;
            let deadline = after(self.clock, self.limits.idle_timeout);
            match within(
                self.clock,
                deadline,
                Phase::Body,
                self.flow.read(&mut self.buf),
            )
            .await?
            {
                0 => return Err(Error::Net(NetError::Closed)),
                n => self.filled = n,
            }
            // The client may send as fast as we read: the other connections' turn.
            uni_runtime::task::yield_now().await;
        }
    }

    /// Reads and drops a request body of `len` bytes, leaving what follows it in the buffer.
    async fn discard(&mut self, mut len: u64) -> Result<(), Error> {
        loop {
            let take = usize::try_from(len).unwrap_or(usize::MAX).min(self.filled);
            self.consume(take);
            len -= take as u64;
            if len == 0 {
                return Ok(());
            }
            self.flush().await?;
            let deadline = after(self.clock, self.limits.idle_timeout);
            match within(
                self.clock,
                deadline,
                Phase::Body,
                self.flow.read(&mut self.buf),
            )
            .await?
            {
                0 => return Err(Error::Net(NetError::Closed)),
                n => self.filled = n,
            }
            // The client may send as fast as we read: the other connections' turn.
            uni_runtime::task::yield_now().await;
        }
    }

    /// Queues the head of `response` and writes its body (none for `HEAD`). Returns the status
    /// and body bytes sent, or those with the error that ended the response. Output stays
    /// queued while a pipelined request waits, so that responses share writes.
    async fn send<B: Body>(
        &mut self,
        mut response: Response<B>,
        head_only: bool,
        keep_alive: bool,
        minor: u8,
    ) -> Result<(u16, u64), (u16, u64, Error)> {
        let status = response.status;
        let date = imf_fixdate(self.clock.wall());
        write_head(&mut self.out, &response, date, keep_alive, minor);
        let len = if head_only || bodiless(status) {
            0
        } else {
            response.body.len()
        };
        let chunk = self.limits.chunk;
        let mut sent = 0u64;
        while sent < len {
            let want = usize::try_from(len - sent).unwrap_or(usize::MAX).min(chunk);
            let bytes = match response.body.chunk(want).await {
                Ok(b) if !b.is_empty() && b.len() <= want => b,
                Ok(b) => {
                    return Err((
                        status,
                        sent,
                        Error::BodyLength {
                            expected: len,
                            got: sent + b.len() as u64,
                        },
                    ))
                }
                Err(e) => return Err((status, sent, e)),
            };
            if self.out.len() + bytes.len() > 2 * chunk {
                self.flush().await.map_err(|e| (status, sent, e))?;
            }
            self.out.extend_from_slice(bytes);
            sent += bytes.len() as u64;
            if self.out.len() >= chunk {
                self.flush().await.map_err(|e| (status, sent, e))?;
                // The client may read as fast as we write: the other connections' turn.
                uni_runtime::task::yield_now().await;
            }
        }
        if self.filled == 0 || !keep_alive {
            self.flush().await.map_err(|e| (status, sent, e))?;
        }
        Ok((status, sent))
    }

    /// Writes the queued output.
    async fn flush(&mut self) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        let deadline = after(self.clock, self.limits.write_timeout);
        within(
            self.clock,
            deadline,
            Phase::Write,
            self.flow.write_all(&self.out),
        )
        .await?;
        self.out.clear();
        Ok(())
    }

    /// Ends the connection: our side first, then (if the client may still be sending, and
    /// `linger`) read and drop its bytes for a while, so that a reset does not destroy the
    /// response before the client read it.
    async fn close(mut self, linger: bool) -> Result<(), Error> {
        self.flush().await?;
        let deadline = after(self.clock, self.limits.write_timeout);
        within(self.clock, deadline, Phase::Write, self.flow.shutdown()).await?;
        if linger {
            let until = after(self.clock, LINGER);
            let mut left = self.limits.max_body.saturating_add(self.buf.len() as u64);
            while left > 0 {
                match within(
                    self.clock,
                    until,
                    Phase::Idle,
                    self.flow.read(&mut self.buf),
                )
                .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n as u64),
                }
            }
        }
        within(self.clock, deadline, Phase::Write, self.flow.close()).await
    }
}

/// Whether a handler's response asks to close the connection.
fn closes<B>(response: &Response<B>) -> bool {
    response.headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("connection")
            && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
    })
}
