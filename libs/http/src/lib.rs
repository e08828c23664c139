//! uni's HTTP/1.1 server, for static websites (issue #6) and small apps.
//!
//! * [`Server`] listens on a port, plain ([`Server::plain`]) or over TLS ([`Server::tls`]),
//!   accepts forever and serves each connection in its own task, under [`Limits`]: bounded
//!   head, header count and body, and timeouts for the handshake, the request head (slowloris)
//!   and idle keep-alive connections; a cap on connections per peer address; and, when the
//!   server is full, eviction of the oldest connections that have sent no request head.
//! * A [`Handler`] answers requests. [`StaticFiles`] serves a `kv_ro` store (ETags,
//!   `If-None-Match`, `index.html`, content types, streamed bodies); [`Redirect`] sends
//!   `http://` to `https://`.
//! * A [`Log`] gets one [`Record`] per request; any console is one.
//!
//! Connections are HTTP/1.1 with keep-alive and pipelining (responses in request order);
//! HTTP/1.0 closes unless it asks for keep-alive. Request bodies are read and discarded;
//! `Transfer-Encoding` request bodies are refused with `411`. Heads are parsed by httparse.
//!
//! ```no_run
//! # async fn app(net: uni_net::socket::SocketStack, tls: uni_tls::Tls<uni_net::socket::SocketStack>, files: uni_runtime::kv::Embedded, console: uni_runtime::platform::Console) -> Result<(), uni_http::Error> {
//! use uni_runtime::platform::Clock;
//! // http:// redirects to https://, which serves the embedded directory.
//! let redirect = uni_http::Server::plain(net, Clock::new(), 80);
//! uni_runtime::task::spawn({
//!     let console = console.clone();
//!     async move { let _ = redirect.serve(uni_http::Redirect::https(443), console).await; }
//! });
//! uni_http::Server::tls(tls, Clock::new(), 443).serve(uni_http::StaticFiles::new(files), console).await?;
//! # Ok(()) }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(async_fn_in_trait)]

extern crate alloc;

mod conn;
mod date;
mod error;
pub mod etag;
mod handler;
mod limits;
mod log;
mod mime;
pub mod path;
mod request;
mod response;
mod server;

pub use conn::serve_flow;
pub use error::{Error, Phase};
pub use handler::{FileBody, Handler, Redirect, StaticFiles};
pub use limits::Limits;
pub use log::{Log, LogFn, NoLog, Record};
pub use mime::{content_type, DEFAULT as DEFAULT_CONTENT_TYPE};
pub use request::Request;
pub use response::{reason, Body, Bytes, Response};
pub use server::{Listening, Plain, Server, Transport};
