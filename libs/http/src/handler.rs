//! Handlers: what answers requests. [`StaticFiles`] serves a [`KvRo`] store; [`Redirect`]
//! sends every request to HTTPS.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use uni_runtime::device::{EntryKind, KvError, KvRo};

use crate::response::{Body, Bytes, Response};
use crate::{etag, mime, path, Error, Request};

/// Answers requests. One handler serves every connection of a server (the executor is
/// single-threaded, so it is shared, not sent).
///
/// # Contract
/// * [`handle`](Handler::handle) is called once per request, in order, with the request's
///   head; the server has already checked its framing and read any body.
/// * The server owns `Content-Length` and `Connection` (a handler's own are dropped) and
///   sends no body for `HEAD` requests and `304` responses, so a handler may answer `HEAD`
///   exactly as `GET`.
///
/// ```
/// use uni_http::{Bytes, Handler, Request, Response};
///
/// struct Hello;
///
/// impl Handler for Hello {
///     type Body = Bytes;
///     async fn handle(&self, req: &Request<'_>) -> Response<Bytes> {
///         match req.path() {
///             "/" => Response::new(200, Bytes::from("hello\n")).header("Content-Type", "text/plain"),
///             _ => Response::status(404),
///         }
///     }
/// }
/// ```
pub trait Handler {
    /// The body type of this handler's responses.
    type Body: Body;
    /// Whether the handler gets request bodies ([`Request::body`]): the server then reads a
    /// body whole (up to [`Limits::max_body`](crate::Limits::max_body)) before calling
    /// [`handle`](Handler::handle). Otherwise (the default) it reads and drops bodies after.
    const TAKES_BODY: bool = false;
    /// The response to `request`.
    async fn handle(&self, request: &Request<'_>) -> Response<Self::Body>;
}

/// `405 Method Not Allowed` unless the method is `GET` or `HEAD`.
fn get_or_head(request: &Request<'_>) -> Result<(), Response<Bytes>> {
    match request.method() {
        "GET" | "HEAD" => Ok(()),
        _ => Err(Response::status(405).header("Allow", "GET, HEAD")),
    }
}

/// Serves the files of a [`KvRo`] store (a directory embedded into the image) over `GET`
/// and `HEAD`.
///
/// * The path is percent-decoded (UTF-8); `..`, `.` and empty segments, NUL and other control
///   characters, and encoded `/` are refused with `400` ([`path::decode`](crate::path::decode)).
///   The query is ignored.
/// * `/` and `/dir/` serve `index.html` and `dir/index.html`; `/dir` redirects (`301`) to
///   `/dir/`. There are no directory listings.
/// * `Content-Type` comes from the extension ([`content_type`](crate::content_type)); the
///   `ETag` is the store's digest, quoted, and a matching `If-None-Match` gets `304`.
/// * Bodies are streamed from the store with [`KvRo::get_partial`], one
///   [`Limits::chunk`](crate::Limits::chunk) at a time, never read whole.
#[derive(Debug)]
pub struct StaticFiles<K> {
    kv: Rc<K>,
}

impl<K> Clone for StaticFiles<K> {
    fn clone(&self) -> Self {
        StaticFiles {
            kv: self.kv.clone(),
        }
    }
}

impl<K: KvRo> StaticFiles<K> {
    /// Serves the files of `kv`.
    pub fn new(kv: K) -> StaticFiles<K> {
        StaticFiles { kv: Rc::new(kv) }
    }

    async fn respond(
        &self,
        request: &Request<'_>,
    ) -> Result<Response<FileBody<K>>, Response<Bytes>> {
        get_or_head(request)?;
        let decoded = path::decode(request.path()).map_err(|_| Response::status(400))?;
        let key = if decoded.directory {
            match decoded.key.as_str() {
                "" => String::from(INDEX),
                dir => format!("{dir}/{INDEX}"),
            }
        } else {
            decoded.key
        };
        match self.kv.exists(&key).await.map_err(|e| kv_status(&e))? {
            Some(EntryKind::Value) => {}
            Some(EntryKind::Dictionary) if !decoded.directory => {
                let mut location = String::from(request.path());
                location.push('/');
                if let Some(q) = request.query() {
                    location.push('?');
                    location.push_str(q);
                }
                return Err(Response::status(301).header("Location", location));
            }
            Some(EntryKind::Dictionary) | None => return Err(Response::status(404)),
        }
        let tag = etag::from_digest(&self.kv.digest(&key).await.map_err(|e| kv_status(&e))?);
        if request
            .header("if-none-match")
            .is_some_and(|v| etag::none_match(v, &tag))
        {
            return Ok(Response::new(304, FileBody::empty()).header("ETag", tag));
        }
        let len = self.kv.size(&key).await.map_err(|e| kv_status(&e))?;
        let content_type = mime::content_type(&key);
        let body = FileBody(Inner::File {
            kv: self.kv.clone(),
            key,
            len,
            offset: 0,
            buf: Vec::new(),
        });
        Ok(Response::new(200, body)
            .header("Content-Type", content_type)
            .header("ETag", tag))
    }
}

/// The file a directory path serves.
const INDEX: &str = "index.html";

fn kv_status(e: &KvError) -> Response<Bytes> {
    match e {
        KvError::NotFound(_)
        | KvError::ValueExpected(_)
        | KvError::DictionaryExpected(_)
        | KvError::InvalidKey { .. } => Response::status(404),
        // a store that cannot read what it holds (a damaged or failing disk)
        _ => Response::status(500),
    }
}

impl<K: KvRo> Handler for StaticFiles<K> {
    type Body = FileBody<K>;

    async fn handle(&self, request: &Request<'_>) -> Response<FileBody<K>> {
        self.respond(request).await.unwrap_or_else(|r| Response {
            status: r.status,
            headers: r.headers,
            body: r.body.into(),
        })
    }
}

/// The body of a [`StaticFiles`] response: a file streamed from the store, or a short page.
#[derive(Debug)]
pub struct FileBody<K>(Inner<K>);

#[derive(Debug)]
enum Inner<K> {
    Bytes(Bytes),
    File {
        kv: Rc<K>,
        key: String,
        len: u64,
        offset: u64,
        buf: Vec<u8>,
    },
}

impl<K> FileBody<K> {
    fn empty() -> FileBody<K> {
        FileBody(Inner::Bytes(Bytes::default()))
    }
}

/// A page of the app's own in a [`StaticFiles`] body, for handlers that add routes to a site:
///
/// ```
/// use uni_http::{Bytes, FileBody, Handler, Request, Response, StaticFiles};
/// use uni_runtime::device::KvRo;
///
/// struct Site<K> {
///     files: StaticFiles<K>,
/// }
///
/// impl<K: KvRo> Handler for Site<K> {
///     type Body = FileBody<K>;
///     async fn handle(&self, req: &Request<'_>) -> Response<FileBody<K>> {
///         match req.path() {
///             "/health" => Response::new(200, Bytes::from("ok\n").into()),
///             _ => self.files.handle(req).await,
///         }
///     }
/// }
/// ```
impl<K> From<Bytes> for FileBody<K> {
    fn from(b: Bytes) -> FileBody<K> {
        FileBody(Inner::Bytes(b))
    }
}

impl<K: KvRo> Body for FileBody<K> {
    fn len(&self) -> u64 {
        match &self.0 {
            Inner::Bytes(b) => b.len(),
            Inner::File { len, .. } => *len,
        }
    }

    async fn chunk(&mut self, max: usize) -> Result<&[u8], Error> {
        match &mut self.0 {
            Inner::Bytes(b) => b.chunk(max).await,
            Inner::File {
                kv,
                key,
                len,
                offset,
                buf,
            } => {
                let want = usize::try_from(*len - *offset)
                    .unwrap_or(usize::MAX)
                    .min(max);
                if want == 0 {
                    return Ok(&[]);
                }
                *buf = kv.get_partial(key, *offset, want).await?;
                if buf.is_empty() || buf.len() > want {
                    return Err(Error::BodyLength {
                        expected: *len,
                        got: *offset + buf.len() as u64,
                    });
                }
                *offset += buf.len() as u64;
                Ok(buf)
            }
        }
    }
}

/// Redirects every request to the same path over HTTPS: `301` to
/// `https://<Host without its port>[:port]<path>[?query]`, or `400` without a valid `Host`.
#[derive(Debug, Clone, Copy)]
pub struct Redirect {
    port: u16,
}

impl Redirect {
    /// Redirects to HTTPS on port `port`; 443 is left out of the URL.
    pub fn https(port: u16) -> Redirect {
        Redirect { port }
    }

    /// The `Location` for `request`, if it has a usable `Host`.
    fn location(&self, request: &Request<'_>) -> Option<String> {
        let host = host_without_port(request.host()?)?;
        let path = request.path();
        if !path.starts_with('/') {
            return None;
        }
        let mut url = format!("https://{host}");
        if self.port != 443 {
            url.push_str(&format!(":{}", self.port));
        }
        url.push_str(path);
        if let Some(q) = request.query() {
            url.push('?');
            url.push_str(q);
        }
        Some(url)
    }
}

impl Default for Redirect {
    /// Redirects to port 443.
    fn default() -> Redirect {
        Redirect::https(443)
    }
}

/// The host of a `Host` header value, without its port: `example.com:8080` → `example.com`,
/// `[::1]:80` → `[::1]`. `None` if it is empty or holds anything a host name cannot.
fn host_without_port(host: &str) -> Option<&str> {
    let name = if host.starts_with('[') {
        let end = host.find(']')?;
        let (v6, rest) = host.split_at(end + 1);
        if !(rest.is_empty()
            || rest
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())))
        {
            return None;
        }
        if !v6[1..end]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        v6
    } else {
        let name = match host.rsplit_once(':') {
            Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) => n,
            Some(_) => return None,
            None => host,
        };
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return None;
        }
        name
    };
    (!name.is_empty() && name != "[]").then_some(name)
}

impl Handler for Redirect {
    type Body = Bytes;

    async fn handle(&self, request: &Request<'_>) -> Response<Bytes> {
        match self.location(request) {
            Some(url) => Response::status(301).header("Location", url),
            None => Response::status(400),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_without_port("example.com"), Some("example.com"));
        assert_eq!(host_without_port("example.com:8080"), Some("example.com"));
        assert_eq!(host_without_port("10.0.0.2:80"), Some("10.0.0.2"));
        assert_eq!(host_without_port("[::1]:80"), Some("[::1]"));
        assert_eq!(host_without_port("[::1]"), Some("[::1]"));
        for bad in [
            "",
            ":80",
            "a b",
            "evil.com/x",
            "a@b",
            "[::1",
            "[::1]x",
            "[]",
            "a:b",
            "[x:y]",
        ] {
            assert_eq!(host_without_port(bad), None, "{bad:?}");
        }
    }
}
