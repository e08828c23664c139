//! Per-connection limits: sizes and timeouts.

use core::time::Duration;

/// What one connection may use and how long it may take. Every connection's memory is bounded
/// by these: about `max_head + 3 × chunk` bytes, plus the TLS session's buffers; and at most
/// `max_connections` are served at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest request head (request line and headers), in bytes; a longer one gets
    /// `431`. Default 8 KiB.
    pub max_head: usize,
    /// The most header fields in a request; more get `431`. Default 64.
    pub max_headers: usize,
    /// The largest request body, in bytes. A larger `Content-Length` gets `413` and the
    /// connection closes; smaller bodies are read and discarded. Default 1 MiB.
    pub max_body: u64,
    /// How long a client has to send a whole request head from its first byte (or, for the
    /// first request, from the connection's start), and to finish the TLS handshake; the
    /// slowloris defence. Default 10 s.
    pub head_timeout: Duration,
    /// How long a kept-alive connection may wait for the first byte of its next request,
    /// and the longest pause while a request body arrives. Default 30 s.
    pub idle_timeout: Duration,
    /// The longest a response write may wait for the client to take bytes. Default 30 s.
    pub write_timeout: Duration,
    /// How much of a response body is read from the handler (a file from the store) and
    /// written at a time. Default 16 KiB.
    pub chunk: usize,
    /// The most connections served at once, so that memory stays bounded however many
    /// clients come. When that many are open, the server makes room for the next client by
    /// closing the oldest connection that has not sent a complete request head (nor finished
    /// its TLS handshake) within [`head_grace`](Limits::head_grace) of being accepted, waiting
    /// for one to reach that age if need be. Connections that have sent a head (being
    /// answered, or idle between keep-alive requests) end only by their own timeouts; while
    /// all are such, the next client waits in the stack's backlog until one ends. Default 256.
    pub max_connections: usize,
    /// The most connections open at once from one peer address (its IP, whatever the port).
    /// A connection over the cap is closed as soon as it is accepted, with no response.
    /// Behind a proxy every client has the proxy's address (so does every client of
    /// `uni run -p`, which forwards from the board's LAN): raise it there. Default 64, a
    /// quarter of the default table.
    pub max_per_peer: usize,
    /// How long a connection may go without a complete request head (over TLS: without
    /// finishing its handshake and then sending a head) after it is accepted before, while
    /// the server is full, it may be closed to make room for a new one (see [`max_connections`](Limits::max_connections)): the slowloris defence
    /// under load, beside [`head_timeout`](Limits::head_timeout). Under a flood of such
    /// connections the server admits at most `max_connections` per `head_grace`, and a new
    /// client waits for up to about `head_grace` (and for the clients before it in the
    /// stack's backlog) before it is accepted. A client whose first head takes longer than
    /// this (a TLS handshake over a long round trip) may be evicted while the server is full.
    /// Default 50 ms.
    pub head_grace: Duration,
}

impl Limits {
    /// The defaults listed on each field.
    pub const DEFAULT: Limits = Limits {
        max_head: 8 * 1024,
        max_headers: 64,
        max_body: 1024 * 1024,
        head_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        write_timeout: Duration::from_secs(30),
        chunk: 16 * 1024,
        max_connections: 256,
        max_per_peer: 64,
        head_grace: Duration::from_millis(50),
    };

    /// Sets [`max_head`](Limits::max_head).
    pub fn max_head(mut self, bytes: usize) -> Limits {
        self.max_head = bytes.max(64);
        self
    }

    /// Sets [`max_headers`](Limits::max_headers).
    pub fn max_headers(mut self, n: usize) -> Limits {
        self.max_headers = n.max(1);
        self
    }

    /// Sets [`max_body`](Limits::max_body).
    pub fn max_body(mut self, bytes: u64) -> Limits {
        self.max_body = bytes;
        self
    }

    /// Sets [`head_timeout`](Limits::head_timeout).
    pub fn head_timeout(mut self, t: Duration) -> Limits {
        self.head_timeout = t;
        self
    }

    /// Sets [`idle_timeout`](Limits::idle_timeout).
    pub fn idle_timeout(mut self, t: Duration) -> Limits {
        self.idle_timeout = t;
        self
    }

    /// Sets [`write_timeout`](Limits::write_timeout).
    pub fn write_timeout(mut self, t: Duration) -> Limits {
        self.write_timeout = t;
        self
    }

    /// Sets [`chunk`](Limits::chunk) (at least 512 bytes).
    pub fn chunk(mut self, bytes: usize) -> Limits {
        self.chunk = bytes.max(512);
        self
    }

    /// Sets [`max_connections`](Limits::max_connections) (at least 1).
    pub fn max_connections(mut self, n: usize) -> Limits {
        self.max_connections = n.max(1);
        self
    }

    /// Sets [`max_per_peer`](Limits::max_per_peer) (at least 1).
    pub fn max_per_peer(mut self, n: usize) -> Limits {
        self.max_per_peer = n.max(1);
        self
    }

    /// Sets [`head_grace`](Limits::head_grace).
    pub fn head_grace(mut self, t: Duration) -> Limits {
        self.head_grace = t;
        self
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}
