//! A parsed request head, as handlers see it, and the checks the server makes on it.

use core::net::SocketAddr;

/// A request: its head, and its body for a handler that takes bodies
/// ([`Handler::TAKES_BODY`](crate::Handler::TAKES_BODY)). For other handlers the server reads
/// and drops the body, and [`body`](Request::body) is empty.
#[derive(Debug)]
pub struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) minor_version: u8,
    pub(crate) headers: &'a [httparse::Header<'a>],
    pub(crate) peer: SocketAddr,
    pub(crate) body: &'a [u8],
}

impl<'a> Request<'a> {
    /// The body (`Content-Length` bytes, at most [`Limits::max_body`](crate::Limits::max_body)),
    /// read whole before the handler was called; empty when the handler does not take bodies.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The method, as sent (`GET`, `HEAD`, …; methods are case-sensitive).
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// Whether the method is `HEAD` (the server then sends no body, whatever the handler
    /// returns).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// The request target as sent: for example `/docs/a%20b.html?x=1`.
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The path part of the target, still percent-encoded, without the query: `/docs/a%20b.html`.
    /// For an absolute-form target (`http://host/x`) it is the path after the authority
    /// (`/x`); for `*` it is `*`.
    pub fn path(&self) -> &'a str {
        let t = self.target;
        let t = match t.split_once("://") {
            Some((scheme, rest)) if !scheme.contains('/') => {
                rest.find('/').map_or("/", |i| &rest[i..])
            }
            _ => t,
        };
        t.split(['?', '#']).next().unwrap_or(t)
    }

    /// The query, without the `?`, if the target has one.
    pub fn query(&self) -> Option<&'a str> {
        self.target
            .split_once('?')
            .map(|(_, q)| q.split('#').next().unwrap_or(q))
    }

    /// The HTTP version's minor number: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Every header, in order, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.headers.iter().map(|h| (h.name, h.value))
    }

    /// The `Host` header, if it is valid UTF-8 (the server has checked there is exactly one
    /// for HTTP/1.1).
    pub fn host(&self) -> Option<&'a str> {
        self.header("host")
            .and_then(|h| core::str::from_utf8(h).ok())
            .map(str::trim)
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether a header named `name` lists `token` (comma-separated, case-insensitive), as
    /// `Connection: keep-alive, Upgrade` lists `upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| core::str::from_utf8(h.value).ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the connection stays open after this request, by the request's version and
    /// `Connection` header alone.
    pub(crate) fn wants_keep_alive(&self) -> bool {
        if self.has_token("connection", "close") {
            return false;
        }
        self.minor_version >= 1 || self.has_token("connection", "keep-alive")
    }
}

/// How the body of a request is framed, or why the request is refused before the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` bytes follow the head (0 without the header).
    Length(u64),
    /// The head is refused with this status; the connection then closes, since the body (if
    /// any) cannot be skipped safely.
    Refuse(u16),
}

/// Checks what the server needs from a head before calling the handler: the body's framing
/// (`Content-Length` only; `Transfer-Encoding` gets 411, a body over `max_body` 413) and the
/// `Host` header (exactly one for HTTP/1.1, RFC 9112 §3.2).
pub(crate) fn framing(req: &Request<'_>, max_body: u64) -> Framing {
    if req.header("transfer-encoding").is_some() {
        // Chunked bodies are not decoded; without knowing where the body ends, the connection
        // cannot continue (RFC 9112 §6.1).
        return Framing::Refuse(411);
    }
    let hosts = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"))
        .count();
    if hosts > 1 || (hosts == 0 && req.minor_version >= 1) {
        return Framing::Refuse(400);
    }
    let mut length = None;
    for h in req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        let Some(n) = parse_length(h.value) else {
            return Framing::Refuse(400);
        };
        if length.is_some_and(|l| l != n) {
            return Framing::Refuse(400);
        }
        length = Some(n);
    }
    match length.unwrap_or(0) {
        n if n > max_body => Framing::Refuse(413),
        n => Framing::Length(n),
    }
}

/// A `Content-Length` value: ASCII digits only (no sign, no list), at most 18 of them.
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Parses `head` with httparse, the way the server does, and runs `f` on it.
    fn with<R>(head: &[u8], f: impl FnOnce(&Request<'_>) -> R) -> R {
        let mut headers = vec![httparse::EMPTY_HEADER; 16];
        let mut p = httparse::Request::new(&mut headers);
        assert!(p.parse(head).unwrap().is_complete());
        let req = Request {
            method: p.method.unwrap(),
            target: p.path.unwrap(),
            minor_version: p.version.unwrap(),
            headers: p.headers,
            peer: "127.0.0.1:1".parse().unwrap(),
            body: &[],
        };
        f(&req)
    }

    #[test]
    fn accessors() {
        with(
            b"GET /a%20b/c.html?x=1&y#frag HTTP/1.1\r\nHost: example.com:8080\r\nX-A: 1\r\n\r\n",
            |r| {
                assert_eq!(r.method(), "GET");
                assert!(!r.is_head());
                assert_eq!(r.path(), "/a%20b/c.html");
                assert_eq!(r.query(), Some("x=1&y"));
                assert_eq!(r.host(), Some("example.com:8080"));
                assert_eq!(r.header("x-a"), Some(&b"1"[..]));
                assert_eq!(r.headers().count(), 2);
                assert_eq!(r.minor_version(), 1);
            },
        );
        with(
            b"GET http://example.com/x/y?q HTTP/1.1\r\nHost: e\r\n\r\n",
            |r| assert_eq!(r.path(), "/x/y"),
        );
        with(b"GET http://example.com HTTP/1.1\r\nHost: e\r\n\r\n", |r| {
            assert_eq!(r.path(), "/")
        });
        with(b"OPTIONS * HTTP/1.1\r\nHost: e\r\n\r\n", |r| {
            assert_eq!(r.path(), "*")
        });
        with(b"GET /a?b=http://x/y HTTP/1.1\r\nHost: e\r\n\r\n", |r| {
            assert_eq!(r.path(), "/a")
        });
    }

    #[test]
    fn keep_alive_rules() {
        with(b"GET / HTTP/1.1\r\nHost: e\r\n\r\n", |r| {
            assert!(r.wants_keep_alive())
        });
        with(
            b"GET / HTTP/1.1\r\nHost: e\r\nConnection: Close\r\n\r\n",
            |r| assert!(!r.wants_keep_alive()),
        );
        with(
            b"GET / HTTP/1.1\r\nHost: e\r\nConnection: te, close\r\n\r\n",
            |r| assert!(!r.wants_keep_alive()),
        );
        with(
            b"GET / HTTP/1.0\r\n\r\n",
            |r| assert!(!r.wants_keep_alive()),
        );
        with(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", |r| {
            assert!(r.wants_keep_alive())
        });
    }

    #[test]
    fn framing_checks() {
        let f = |head: &[u8]| with(head, |r| framing(r, 100));
        assert_eq!(f(b"GET / HTTP/1.1\r\nHost: e\r\n\r\n"), Framing::Length(0));
        assert_eq!(
            f(b"GET / HTTP/1.0\r\n\r\n"),
            Framing::Length(0),
            "HTTP/1.0 needs no Host"
        );
        assert_eq!(
            f(b"GET / HTTP/1.1\r\n\r\n"),
            Framing::Refuse(400),
            "HTTP/1.1 needs a Host"
        );
        assert_eq!(
            f(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Framing::Refuse(400)
        );
        assert_eq!(
            f(b"GET / HTTP/1.1\r\nHost: e\r\nContent-Length: 100\r\n\r\n"),
            Framing::Length(100)
        );
        assert_eq!(
            f(b"GET / HTTP/1.1\r\nHost: e\r\nContent-Length: 101\r\n\r\n"),
            Framing::Refuse(413)
        );
        assert_eq!(
            f(b"GET / HTTP/1.1\r\nHost: e\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            Framing::Refuse(400)
        );
        assert_eq!(
            f(b"GET / HTTP/1.1\r\nHost: e\r\nContent-Length: -1\r\n\r\n"),
            Framing::Refuse(400)
        );
        assert_eq!(
            f(b"GET / HTTP/1.1\r\nHost: e\r\nContent-Length: 5, 5\r\n\r\n"),
            Framing::Refuse(400)
        );
        assert_eq!(
            f(b"GET / HTTP/1.1\r\nHost: e\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            Framing::Length(5)
        );
        assert_eq!(
            f(b"GET / HTTP/1.1\r\nHost: e\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            Framing::Refuse(400)
        );
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Framing::Refuse(411)
        );
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nHost: e\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Framing::Refuse(411),
            "both: refused, never guessed"
        );
        assert_eq!(parse_length(b" 42 "), Some(42));
        assert_eq!(parse_length(b"+4"), None);
        assert_eq!(parse_length(b""), None);
    }
}
