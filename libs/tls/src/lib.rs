//! TLS for uni: rustls 0.23 (unbuffered API, `no_std`) over any [`Flow`](uni_runtime::device::net::Flow),
//! with [`uni_crypto`]'s provider.
//!
//! In layers, as OCaml-TLS had them:
//! * [`Session`]: the sans-IO core. [`Session::handle`] takes received bytes and returns
//!   the bytes to send, the plaintext received and the [`Status`]. It never does IO.
//! * [`TlsFlow`]: the effectful layer. It wraps a flow, drives a [`Session`] over it, and is
//!   itself a [`Flow`](uni_runtime::device::net::Flow), so an application's echo loop runs
//!   unchanged over TLS.
//! * [`config`]: server and client configurations (certificate chains, SNI, ALPN,
//!   resumption, client certificates) and the [`Tls`] device `unikernel.toml` declares.
//! * [`auth`]: authenticators for the client side: [`auth::chain_of_trust`] (always checks
//!   the host name) and [`auth::server_fingerprint`] (pinning), with distinct
//!   [`CertError`]s.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod auth;
pub mod config;
mod core_session;
mod device;
mod error;
mod flow;
mod x509;

pub use config::{ClientOptions, Identity, ServerOptions};
pub use core_session::{Output, Session, SessionInfo, Status};
pub use device::{Decode, Files, SniFiles, Tls, TlsListener};
pub use error::{CertError, ChainCert, ChainPosition, Failure, Rejection, TlsError};
pub use flow::TlsFlow;
pub use rustls;
pub use uni_crypto;
