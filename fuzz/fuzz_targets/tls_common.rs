//! What the two TLS targets share: the test PKI of libs/tls/tests, configs built once, the
//! input framing, and the property that everything a session sends is well-framed records.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use uni_crypto::Rng;
use uni_tls::config::FixedTime;
use uni_tls::{auth, ClientOptions, Identity, ServerOptions};

const CA: &[u8] = include_bytes!("../../libs/tls/tests/data/ca.pem");
const CERT: &[u8] = include_bytes!("../../libs/tls/tests/data/server.pem");
const KEY: &[u8] = include_bytes!("../../libs/tls/tests/data/server.key");
/// 2030-01-01: inside the test certificates' validity.
const NOW: u64 = 1_893_456_000;

fn rng() -> &'static Rng {
    static RNG: OnceLock<&'static Rng> = OnceLock::new();
    RNG.get_or_init(|| {
        Rng::from_device(
            uni_runtime::platform::Random::new(),
            uni_runtime::platform::Clock::new(),
        )
        .expect("the host's entropy")
        .leak()
    })
}

fn provider() -> Arc<uni_tls::rustls::crypto::CryptoProvider> {
    static P: OnceLock<Arc<uni_tls::rustls::crypto::CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(uni_crypto::provider(rng())))
        .clone()
}

/// The server the tests run: the test certificate, both versions.
pub fn server() -> Arc<uni_tls::rustls::ServerConfig> {
    static S: OnceLock<Arc<uni_tls::rustls::ServerConfig>> = OnceLock::new();
    S.get_or_init(|| {
        ServerOptions::new(Identity::from_pem(CERT, KEY).unwrap())
            .build(provider(), rng(), Arc::new(FixedTime(NOW)))
            .unwrap()
    })
    .clone()
}

/// A client that trusts the test CA, both versions.
pub fn client() -> Arc<uni_tls::rustls::ClientConfig> {
    static C: OnceLock<Arc<uni_tls::rustls::ClientConfig>> = OnceLock::new();
    C.get_or_init(|| client_for(None)).clone()
}

/// A client that trusts the test CA and offers `versions` (all when `None`).
pub fn client_for(
    versions: Option<Vec<&'static uni_tls::rustls::SupportedProtocolVersion>>,
) -> Arc<uni_tls::rustls::ClientConfig> {
    let trust = auth::chain_of_trust(
        &uni_tls::config::roots(CA).unwrap(),
        Arc::new(FixedTime(NOW)),
        provider(),
    )
    .unwrap();
    let mut o = ClientOptions::new(trust);
    o.versions = versions;
    o.build(provider(), Arc::new(FixedTime(NOW))).unwrap()
}

/// The input as the peer's writes: frames of `len: u16 BE` then `len` bytes (the last may be
/// short), so that record boundaries and split records are both explored.
pub fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let end = (2 + len).min(data.len());
        out.push(&data[2..end]);
        data = &data[end..];
    }
    out
}

/// Frames `writes` as [`frames`] reads them (the seed maker's side).
#[allow(dead_code)]
pub fn framed(writes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in writes {
        for part in w.chunks(u16::MAX as usize) {
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// Everything a session sends is whole TLS records: a known content type, version 3.x, and a
/// length within the limit (2^14 + 256 for a protected record).
pub fn assert_records(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        assert!(bytes.len() >= 5, "a partial record header");
        assert!((20..=23).contains(&bytes[0]), "content type {}", bytes[0]);
        assert_eq!(bytes[1], 3, "version {}.{}", bytes[1], bytes[2]);
        let len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        assert!(len <= (1 << 14) + 256, "a record of {len} bytes");
        assert!(bytes.len() >= 5 + len, "a partial record");
        bytes = &bytes[5 + len..];
    }
}

/// Feeds `data` to `s` as the peer's writes (see [`frames`]) and checks the properties both
/// targets share: without the keys the handshake never completes and no plaintext arrives;
/// everything sent is well-framed records of bounded size; a failure names an error and is
/// final; data sent before the handshake finishes is queued or refused, never sent in clear.
pub fn feed_peer(s: &mut uni_tls::Session, data: &[u8]) {
    use uni_tls::Status;
    for w in frames(data) {
        match s.handle(w) {
            Ok(out) => {
                assert_eq!(out.status, Some(Status::Handshaking));
                assert_eq!(s.status(), Status::Handshaking);
                assert!(
                    out.data.is_empty(),
                    "plaintext before the handshake finished"
                );
                assert!(out.to_send.len() <= 64 * 1024);
                assert_records(&out.to_send);
            }
            Err(f) => {
                assert!(!f.error.to_string().is_empty());
                assert!(f.to_send.len() <= 64 * 1024);
                assert_records(&f.to_send);
                let again = s.handle(&[]).expect_err("a failed session stays failed");
                assert_eq!(again.error, f.error);
                assert!(again.to_send.is_empty());
                break;
            }
        }
    }
    // Sending before the handshake finishes queues the data; what goes out is records.
    match s.send(b"hello") {
        Ok(b) => assert_records(&b),
        Err(f) => assert_records(&f.to_send),
    }
    assert_ne!(s.status(), Status::Established);
}
