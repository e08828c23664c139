//! Fuzzes the TLS `Session` wrapper (libs/tls core_session over rustls) as a client: the input
//! is what a server sends (the ClientHello is ours), as a sequence of writes (see `tls_common::frames`).
//!
//! Seeds: `seeds-tls_client/`, real server flights (TLS 1.2 and 1.3: ServerHello, certificate,
//! key exchange, Finished, tickets, data and close_notify) captured from an in-memory handshake with
//! the real server, made by `cargo run --example make_seeds`; the fuzzer mutates them.
//! Properties: a peer without the keys never completes the handshake, so no plaintext is ever
//! delivered; everything the client sends, its flights and its alerts, is well-framed TLS
//! records of bounded size; a failure names an error, and is final.
#![no_main]

#[path = "tls_common.rs"]
mod tls_common;

use libfuzzer_sys::fuzz_target;
use uni_tls::Session;

fuzz_target!(|data: &[u8]| {
    let mut s = Session::client(tls_common::client(), "localhost").expect("a client session");
    assert!(s.is_client());
    let hello = s.handle(&[]).expect("a ClientHello");
    tls_common::assert_records(&hello.to_send);
    assert!(!hello.to_send.is_empty());
    tls_common::feed_peer(&mut s, data);
});
