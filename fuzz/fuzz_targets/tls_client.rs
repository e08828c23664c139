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
use uni_tls::{Session, Status};

fuzz_target!(|data: &[u8]| {
    let mut s = Session::client(tls_common::client(), "localhost").expect("a client session");
    assert!(s.is_client());
    let hello = s.handle(&[]).expect("a ClientHello");
    tls_common::assert_records(&hello.to_send);
    assert!(!hello.to_send.is_empty());
    for w in tls_common::frames(data) {
        match s.handle(w) {
            Ok(out) => {
                assert_eq!(out.status, Some(Status::Handshaking));
                assert_eq!(s.status(), Status::Handshaking);
                assert!(
                    out.data.is_empty(),
                    "plaintext before the handshake finished"
                );
                assert!(out.to_send.len() <= 64 * 1024);
                tls_common::assert_records(&out.to_send);
            }
            Err(f) => {
                assert!(!f.error.to_string().is_empty());
                assert!(f.to_send.len() <= 64 * 1024);
                tls_common::assert_records(&f.to_send);
                let again = s.handle(&[]).expect_err("a failed session stays failed");
                assert_eq!(again.error, f.error);
                assert!(again.to_send.is_empty());
                break;
            }
        }
    }
    // Sending before the handshake finishes queues the data; what goes out is records.
    match s.send(b"hello") {
        Ok(b) => tls_common::assert_records(&b),
        Err(f) => tls_common::assert_records(&f.to_send),
    }
    assert_ne!(s.status(), Status::Established);
});
