//! Responses: a status, headers, and a [`Body`] the server streams.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use crate::Error;

/// A response body: its exact length up front (for `Content-Length`), then its bytes in chunks.
///
/// # Contract
/// * [`chunk`](Body::chunk) MUST return the next bytes of the body, at most `max` of them, and
///   an empty slice once all [`len`](Body::len) bytes were returned (and only then).
/// * A body that ends early, or errs, ends the connection (the client's framing is lost).
/// * The server calls neither for `HEAD` requests and `304` responses.
pub trait Body {
    /// The body's length in bytes.
    fn len(&self) -> u64;
    /// Whether the body is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The next chunk, at most `max` bytes long; empty at the end.
    async fn chunk(&mut self, max: usize) -> Result<&[u8], Error>;
}

/// A body held in memory: an error page, a redirect, a generated page.
#[derive(Debug, Clone, Default)]
pub struct Bytes {
    data: Cow<'static, [u8]>,
    pos: usize,
}

impl Bytes {
    /// A body of `data`.
    pub fn new(data: impl Into<Cow<'static, [u8]>>) -> Bytes {
        Bytes {
            data: data.into(),
            pos: 0,
        }
    }
}

impl From<String> for Bytes {
    fn from(s: String) -> Bytes {
        Bytes::new(s.into_bytes())
    }
}

impl From<&'static str> for Bytes {
    fn from(s: &'static str) -> Bytes {
        Bytes::new(s.as_bytes())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes::new(v)
    }
}

impl Body for Bytes {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    async fn chunk(&mut self, max: usize) -> Result<&[u8], Error> {
        let start = self.pos;
        self.pos = start.saturating_add(max).min(self.data.len());
        Ok(&self.data[start..self.pos])
    }
}

/// A response: status, headers, body. The server adds `Content-Length` (from
/// [`Body::len`]) and `Connection`; handlers add the rest.
#[derive(Debug, Clone)]
pub struct Response<B> {
    /// The status code (100–999; the reason phrase comes from [`reason`]).
    pub status: u16,
    /// Header fields, in order. Names and values MUST NOT hold CR, LF or NUL (nor names a
    /// `:`); the server drops fields that do, and its own (`Connection`, `Content-Length`,
    /// `Transfer-Encoding`, `Date`).
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// The body.
    pub body: B,
}

impl<B: Body> Response<B> {
    /// A response with `status`, no headers and `body`.
    pub fn new(status: u16, body: B) -> Response<B> {
        Response {
            status,
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header field.
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Response<B> {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl Response<Bytes> {
    /// A short `text/plain` response whose body is the status's reason phrase: for errors.
    pub fn status(status: u16) -> Response<Bytes> {
        let mut body = String::from(reason(status));
        body.push('\n');
        Response::new(status, Bytes::from(body)).header("Content-Type", "text/plain; charset=utf-8")
    }
}

/// The reason phrase for `status` (RFC 9110), or `""` for a code without one here.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "",
    }
}

/// Whether a response with `status` has no body by definition (RFC 9110 §6.4.1).
pub(crate) fn bodiless(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Writes the status line and headers of `resp` into `out`, with `Date` (if known),
/// `Content-Length` (unless the status has no body) and a `Connection` header for
/// `keep_alive` on a request of `minor_version`.
pub(crate) fn write_head<B: Body>(
    out: &mut Vec<u8>,
    resp: &Response<B>,
    date: Option<impl core::fmt::Display>,
    keep_alive: bool,
    minor_version: u8,
) {
    use core::fmt::Write;
    let mut w = VecWriter(out);
    let _ = write!(w, "HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    if let Some(date) = date {
        let _ = write!(w, "Date: {date}\r\n");
    }
    for (name, value) in &resp.headers {
        let clean = |s: &str| !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
        let ours = ["connection", "content-length", "transfer-encoding", "date"]
            .iter()
            .any(|o| name.eq_ignore_ascii_case(o));
        if clean(name) && clean(value) && !name.is_empty() && !name.contains(':') && !ours {
            let _ = write!(w, "{name}: {value}\r\n");
        }
    }
    if !bodiless(resp.status) {
        let _ = write!(w, "Content-Length: {}\r\n", resp.body.len());
    }
    match (keep_alive, minor_version) {
        (false, _) => w.0.extend_from_slice(b"Connection: close\r\n"),
        (true, 0) => w.0.extend_from_slice(b"Connection: keep-alive\r\n"),
        (true, _) => {}
    }
    w.0.extend_from_slice(b"\r\n");
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl core::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(resp: &Response<Bytes>, keep_alive: bool, minor: u8) -> String {
        let mut out = Vec::new();
        write_head(&mut out, resp, None::<&str>, keep_alive, minor);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn heads() {
        let r = Response::new(200, Bytes::from("hello")).header("Content-Type", "text/plain");
        assert_eq!(
            head(&r, true, 1),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
        );
        assert_eq!(head(&r, true, 0), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(head(&r, false, 1), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\n");
        let r = Response::new(304, Bytes::default()).header("ETag", "\"x\"");
        assert_eq!(
            head(&r, true, 1),
            "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
        );
    }

    #[test]
    fn date_comes_first_when_known() {
        let r = Response::new(304, Bytes::default())
            .header("ETag", "\"x\"")
            .header("Date", "handler's");
        let mut out = Vec::new();
        write_head(&mut out, &r, Some("Wed, 01 Jan 2020 00:00:00 GMT"), true, 1);
        assert_eq!(out, b"HTTP/1.1 304 Not Modified\r\nDate: Wed, 01 Jan 2020 00:00:00 GMT\r\nETag: \"x\"\r\n\r\n");
    }

    #[test]
    fn header_injection_is_dropped() {
        let r = Response::new(200, Bytes::default())
            .header("X-Bad", "a\r\nSet-Cookie: x")
            .header("X\nY", "1")
            .header("Content-Length", "99")
            .header("Connection", "close")
            .header("X-Ok", "1");
        assert_eq!(
            head(&r, true, 1),
            "HTTP/1.1 200 OK\r\nX-Ok: 1\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn bytes_body_chunks() {
        futures_lite::future::block_on(async {
            let mut b = Bytes::from("abcdefg");
            assert_eq!(b.len(), 7);
            assert_eq!(b.chunk(3).await.unwrap(), b"abc");
            assert_eq!(b.chunk(3).await.unwrap(), b"def");
            assert_eq!(b.chunk(3).await.unwrap(), b"g");
            assert_eq!(b.chunk(3).await.unwrap(), b"");
            assert_eq!(
                Response::status(404).body.chunk(100).await.unwrap(),
                b"Not Found\n"
            );
        });
    }
}
