//! A static website: the files of a `kv_ro` device over HTTPS, and a redirect from HTTP.
//!
//! * `https` (an `http` device over the tls device) serves the store with
//!   [`uni_http::StaticFiles`]: GET and HEAD, `index.html` for directories, Content-Type by
//!   extension, ETags from the store's digests.
//! * `http` (an `http` device in the clear) answers every request with a redirect to the
//!   HTTPS port.
//! * The console gets one line per request, and the heap's use every 1000 requests.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use core::cell::Cell;

use uni_http::{Log, Plain, Record, Redirect, Server, StaticFiles};
use uni_runtime::device::net::Stack;
use uni_runtime::device::{Clock, Console, KvRo};
use uni_runtime::AppResult;
use uni_tls::Tls;

/// How many requests between two reports of the heap's use.
const HEAP_EVERY: u64 = 1000;

/// Entry point; the devices come from `unikernel.toml` in declaration order.
pub async fn start<S, C>(
    console: impl Console + Clone + 'static,
    _net: impl Stack,
    htdocs: impl KvRo + 'static,
    _tls: Tls<S>,
    https: Server<Tls<S>, C>,
    http: Server<Plain<S>, C>,
) -> AppResult
where
    S: Stack + Clone + 'static,
    C: Clock + Clone + 'static,
{
    let https = https.listen().await?;
    let port = https.local_addr().port();
    console
        .log(&format!("https: listening on {}", https.local_addr()))
        .await?;
    let http = http.listen().await?;
    console
        .log(&format!(
            "http: listening on {} (redirecting to https port {port})",
            http.local_addr()
        ))
        .await?;

    let redirects = RequestLog::new("http", console.clone(), false);
    let c = console.clone();
    uni_runtime::task::spawn(async move {
        let Err(e) = http.serve(Redirect::https(port), redirects).await;
        let _ = c.log(&format!("http: stopped: {e}")).await;
    });
    let Err(e) = https
        .serve(
            StaticFiles::new(htdocs),
            RequestLog::new("https", console, true),
        )
        .await;
    Err(e.into())
}

/// One console line per request, after the server's name; with `heap`, every [`HEAP_EVERY`]
/// requests, the heap's use.
struct RequestLog<C> {
    server: &'static str,
    console: C,
    heap: bool,
    count: Cell<u64>,
}

impl<C: Console> RequestLog<C> {
    fn new(server: &'static str, console: C, heap: bool) -> RequestLog<C> {
        RequestLog {
            server,
            console,
            heap,
            count: Cell::new(0),
        }
    }
}

impl<C: Console> Log for RequestLog<C> {
    async fn request(&self, record: &Record<'_>) {
        let _ = self
            .console
            .log(&format!("{}: {record}", self.server))
            .await;
        let n = self.count.get() + 1;
        self.count.set(n);
        if self.heap && n.is_multiple_of(HEAP_EVERY) {
            let _ = self
                .console
                .log(&format!(
                    "static-website: {n} requests, {}",
                    uni_runtime::platform::heap()
                ))
                .await;
        }
    }

    async fn error(&self, peer: Option<core::net::SocketAddr>, error: &uni_http::Error) {
        let line = match peer {
            Some(p) => format!("{}: {p} error: {error}", self.server),
            None => format!("{}: accept failed: {error}", self.server),
        };
        let _ = self.console.log(&line).await;
    }
}
