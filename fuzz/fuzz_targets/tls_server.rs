//! Fuzzes the TLS `Session` wrapper (libs/tls core_session over rustls) as a server: the input
//! is what a client sends, as a sequence of writes (see `tls_common::frames`).
//!
//! Seeds: `seeds-tls_server/`, real client flights (TLS 1.2 and 1.3 ClientHellos, the flights
//! that follow, application data and close_notify) captured from an in-memory handshake with
//! the real client, made by `cargo run --example make_seeds`; the fuzzer mutates them.
//! Properties: a peer without the keys never completes the handshake, so no plaintext is ever
//! delivered; everything the server sends, its answers and its alerts, is well-framed TLS
//! records of bounded size; a failure names an error, and is final.
#![no_main]

#[path = "tls_common.rs"]
mod tls_common;

use libfuzzer_sys::fuzz_target;
use uni_tls::Session;

fuzz_target!(|data: &[u8]| {
    let mut s = Session::server(tls_common::server()).expect("a server session");
    assert!(!s.is_client());
    tls_common::feed_peer(&mut s, data);
});
