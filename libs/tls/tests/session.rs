//! The sans-IO core, client against server in memory: both versions, data both ways,
//! resumption, close statuses, and each authenticator's errors.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use uni_crypto::Rng;
use uni_tls::auth::{self, FingerprintHash};
use uni_tls::config::FixedTime;
use uni_tls::{CertError, ClientOptions, Identity, ServerOptions, Session, Status, TlsError};

/// The cause of a certificate rejection (which certificate it names is tests/x509.rs's business).
fn cause(e: TlsError) -> CertError {
    match e {
        TlsError::Certificate(r) => r.cause,
        other => panic!("not a certificate error: {other}"),
    }
}

const CA: &[u8] = include_bytes!("data/ca.pem");
const CERT: &[u8] = include_bytes!("data/server.pem");
const KEY: &[u8] = include_bytes!("data/server.key");
/// 2030-01-01: inside the test certificates' validity.
const NOW: u64 = 1_893_456_000;

fn rng() -> &'static Rng {
    static RNG: std::sync::OnceLock<&'static Rng> = std::sync::OnceLock::new();
    RNG.get_or_init(|| {
        let rng = Rng::from_device(
            uni_runtime::platform::Random::new(),
            uni_runtime::platform::Clock::new(),
        )
        .unwrap();
        rng.leak()
    })
}

fn provider() -> Arc<CryptoProvider> {
    static P: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    P.get_or_init(|| Arc::new(uni_crypto::provider(rng())))
        .clone()
}

fn server() -> Arc<rustls::ServerConfig> {
    let opts = ServerOptions::new(Identity::from_pem(CERT, KEY).unwrap());
    opts.build(provider(), rng(), Arc::new(FixedTime(NOW)))
        .unwrap()
}

fn client_with(
    auth: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    versions: Option<Vec<&'static rustls::SupportedProtocolVersion>>,
) -> Arc<rustls::ClientConfig> {
    let mut o = ClientOptions::new(auth);
    o.versions = versions;
    o.build(provider(), Arc::new(FixedTime(NOW))).unwrap()
}

fn trust(at: u64) -> Arc<dyn rustls::client::danger::ServerCertVerifier> {
    auth::chain_of_trust(
        &uni_tls::config::roots(CA).unwrap(),
        Arc::new(FixedTime(at)),
        provider(),
    )
    .unwrap()
}

/// Runs the handshake in memory; returns both sessions or the client's error.
fn handshake(c: &mut Session, s: &mut Session) -> Result<(), TlsError> {
    let mut to_server = c.handle(&[]).map_err(|f| f.error)?.to_send;
    for _ in 0..10 {
        let out = s.handle(&to_server).map_err(|f| f.error)?;
        let back = c.handle(&out.to_send).map_err(|f| f.error)?;
        to_server = back.to_send;
        if c.status() == Status::Established
            && s.status() == Status::Established
            && to_server.is_empty()
        {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn both_versions_carry_data_both_ways() {
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let cfg = client_with(trust(NOW), Some(vec![v]));
        let mut c = Session::client(cfg, "localhost").unwrap();
        let mut s = Session::server(server()).unwrap();
        // Data queued before the handshake goes out once it completes.
        let early = c.send(b"queued").unwrap();
        let mut to_server = c.handle(&[]).unwrap().to_send;
        to_server.extend(early);
        let mut got = vec![];
        for _ in 0..10 {
            let out = s.handle(&to_server).unwrap();
            got.extend(out.data);
            to_server = c.handle(&out.to_send).unwrap().to_send;
            if to_server.is_empty() && c.status() == Status::Established {
                break;
            }
        }
        let out = s.handle(&to_server).unwrap();
        got.extend(out.data);
        assert_eq!(got, b"queued", "{v:?}");
        let rec = s.send(&vec![7u8; 100_000]).unwrap();
        let out = c.handle(&rec).unwrap();
        assert_eq!(out.data.len(), 100_000);
        assert_eq!(c.info().version, Some(v.version));
        assert_eq!(c.info().kx_group, Some(rustls::NamedGroup::X25519));
        // close_notify: the server sees PeerClosed, then Closed after answering.
        let bye = c.close().unwrap();
        let out = s.handle(&bye).unwrap();
        assert_eq!(out.status, Some(Status::PeerClosed));
        let bye2 = s.close().unwrap();
        assert_eq!(c.handle(&bye2).unwrap().status, Some(Status::Closed));
    }
}

#[test]
fn second_connection_resumes() {
    let srv = server();
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let cfg = client_with(trust(NOW), Some(vec![v]));
        for round in 0..2 {
            let mut c = Session::client(cfg.clone(), "localhost").unwrap();
            let mut s = Session::server(srv.clone()).unwrap();
            handshake(&mut c, &mut s).unwrap();
            // TLS 1.3 tickets arrive after the handshake: deliver them.
            let rec = s.send(b"x").unwrap();
            let _ = c.handle(&rec).unwrap();
            assert_eq!(c.info().resumed, round == 1, "{v:?} round {round}");
        }
    }
}

fn client_error(auth: Arc<dyn rustls::client::danger::ServerCertVerifier>, host: &str) -> TlsError {
    let mut c = Session::client(client_with(auth, None), host).unwrap();
    let mut s = Session::server(server()).unwrap();
    handshake(&mut c, &mut s).unwrap_err()
}

#[test]
fn chain_of_trust_errors_are_distinct() {
    assert!(handshake(
        &mut Session::client(client_with(trust(NOW), None), "127.0.0.1").unwrap(),
        &mut Session::server(server()).unwrap()
    )
    .is_ok());
    assert_eq!(
        cause(client_error(trust(NOW), "example.com")),
        CertError::WrongHost
    );
    assert_eq!(
        cause(client_error(trust(5_000_000_000), "localhost")),
        CertError::Expired
    );
    assert_eq!(
        cause(client_error(trust(1_000_000_000), "localhost")),
        CertError::NotYetValid
    );
    // Trusting only the server's own certificate as a root is not the CA: unknown issuer.
    let other = auth::chain_of_trust(
        &uni_tls::config::roots(CERT).unwrap(),
        Arc::new(FixedTime(NOW)),
        provider(),
    )
    .unwrap();
    assert_eq!(
        cause(client_error(other, "localhost")),
        CertError::UnknownIssuer
    );
    // Only the danger API skips the host name.
    let lax = auth::danger_chain_of_trust_without_hostname(
        &uni_tls::config::roots(CA).unwrap(),
        Arc::new(FixedTime(NOW)),
        provider(),
    )
    .unwrap();
    let mut c = Session::client(client_with(lax, None), "example.com").unwrap();
    handshake(&mut c, &mut Session::server(server()).unwrap()).unwrap();
}

#[test]
fn fingerprints_pin_and_tofu() {
    let der = uni_crypto::pem::certificates(CERT).unwrap().remove(0);
    let fp = FingerprintHash::Sha256.of(der.as_ref());
    let good =
        auth::server_fingerprint(FingerprintHash::Sha256, vec![fp.clone()], provider()).unwrap();
    let mut c = Session::client(client_with(good.clone(), None), "localhost").unwrap();
    handshake(&mut c, &mut Session::server(server()).unwrap()).unwrap();
    assert_eq!(
        cause(client_error(good, "example.com")),
        CertError::WrongHost
    );
    let bad =
        auth::server_fingerprint(FingerprintHash::Sha256, vec![vec![0; 32]], provider()).unwrap();
    assert_eq!(
        cause(client_error(bad, "localhost")),
        CertError::PinMismatch
    );
    let store = auth::TofuStore::new();
    let tofu = auth::trust_on_first_use(FingerprintHash::Sha256, store.clone(), provider());
    let mut c = Session::client(client_with(tofu, None), "localhost").unwrap();
    handshake(&mut c, &mut Session::server(server()).unwrap()).unwrap();
    assert_eq!(store.get("localhost"), Some(fp.clone()));
    assert_eq!(
        auth::parse_fingerprint(
            &fp.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        ),
        Some(fp)
    );
}

#[test]
fn garbage_gets_an_alert_and_a_clear_error() {
    let mut s = Session::server(server()).unwrap();
    let f = s.handle(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap_err();
    assert!(matches!(f.error, TlsError::Protocol(_)), "{:?}", f.error);
    assert_eq!(
        f.error.to_string(),
        "TLS: the peer sent a malformed message: invalid content type"
    );
    assert!(!f.to_send.is_empty(), "an alert record goes back");
    assert_eq!(f.to_send[0], 0x15, "alert content type");
}

#[test]
fn pins_of_the_wrong_length_are_refused() {
    let e = auth::server_fingerprint(FingerprintHash::Sha256, vec![vec![0; 20]], provider())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "TLS configuration: pin 1: 20 bytes, but a SHA-256 fingerprint is 32 bytes \
         (64 hex digits, `:` separators allowed)"
    );
    let e = auth::server_fingerprint(
        FingerprintHash::Sha384,
        vec![vec![0; 48], vec![0; 32]],
        provider(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "TLS configuration: pin 2: 32 bytes, but a SHA-384 fingerprint is 48 bytes \
         (96 hex digits, `:` separators allowed)"
    );
    assert!(auth::server_fingerprint(FingerprintHash::Sha256, vec![], provider()).is_err());
}

/// Runs a handshake that the server refuses; returns the error the client sees once it has
/// read what the server sent before closing (ServerHello and the alert, in TLS 1.3).
fn refused_by_server(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> TlsError {
    let mut c = Session::client(client, "localhost").unwrap();
    let mut s = Session::server(server).unwrap();
    let mut to_server = c.handle(&[]).unwrap().to_send;
    for _ in 0..10 {
        match s.handle(&to_server) {
            Ok(out) => match c.handle(&out.to_send) {
                Ok(back) => to_server = back.to_send,
                Err(f) => return f.error,
            },
            Err(f) => {
                assert!(
                    !f.to_send.is_empty(),
                    "the server sent nothing before closing"
                );
                return c.handle(&f.to_send).unwrap_err().error;
            }
        }
    }
    panic!("the handshake was not refused");
}

#[test]
fn refusals_after_server_hello_carry_an_alert() {
    let mut opts = ServerOptions::new(Identity::from_pem(CERT, KEY).unwrap());
    opts.alpn = vec![b"http/1.1".to_vec()];
    let srv = opts
        .build(provider(), rng(), Arc::new(FixedTime(NOW)))
        .unwrap();
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut o = ClientOptions::new(trust(NOW));
        o.versions = Some(vec![v]);
        o.alpn = vec![b"h2".to_vec()];
        let cfg = o.build(provider(), Arc::new(FixedTime(NOW))).unwrap();
        let e = refused_by_server(srv.clone(), cfg);
        assert_eq!(
            e,
            TlsError::PeerAlert(rustls::AlertDescription::NoApplicationProtocol),
            "{v:?}"
        );
        assert_eq!(
            e.to_string(),
            "TLS: the peer sent alert no_application_protocol"
        );
    }
}

#[test]
fn a_client_that_rejects_the_certificate_says_why() {
    // TLS 1.3: the alert goes out encrypted with the handshake keys; the server decrypts it.
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut c = Session::client(client_with(trust(NOW), Some(vec![v])), "example.com").unwrap();
        let mut s = Session::server(server()).unwrap();
        let mut to_server = c.handle(&[]).unwrap().to_send;
        let alert = loop {
            let out = s.handle(&to_server).unwrap();
            match c.handle(&out.to_send) {
                Ok(back) => to_server = back.to_send,
                Err(f) => break f.to_send,
            }
        };
        let e = s.handle(&alert).unwrap_err().error;
        assert_eq!(
            e,
            TlsError::PeerAlert(rustls::AlertDescription::BadCertificate),
            "{v:?}"
        );
    }
}

/// An Ed25519 certificate for localhost, made by openssl for this test run.
fn ed25519_identity() -> Identity {
    let dir = std::env::temp_dir().join(format!("uni-tls-ed25519-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ed25519",
            "-nodes",
            "-subj",
            "/CN=ed25519 localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost", "-days", "30"])
        .args(["-keyout", "ed.key", "-out", "ed.pem"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Identity::from_pem(
        &std::fs::read(dir.join("ed.pem")).unwrap(),
        &std::fs::read(dir.join("ed.key")).unwrap(),
    )
    .unwrap()
}

/// A client offering only X25519, pinning the certificates it may get.
fn x25519_client(
    v: &'static rustls::SupportedProtocolVersion,
    pins: Vec<Vec<u8>>,
) -> Arc<rustls::ClientConfig> {
    let mut p = (*provider()).clone();
    p.kx_groups
        .retain(|g| g.name() == rustls::NamedGroup::X25519);
    let auth = auth::server_fingerprint(FingerprintHash::Sha256, pins, provider()).unwrap();
    let mut o = ClientOptions::new(auth);
    o.versions = Some(vec![v]);
    o.build(Arc::new(p), Arc::new(FixedTime(NOW))).unwrap()
}

#[test]
fn tls12_certificate_selection_follows_the_client_groups() {
    let p256 = Identity::from_pem(CERT, KEY).unwrap();
    let ed = ed25519_identity();
    let fp = |id: &Identity| FingerprintHash::Sha256.of(id.chain[0].as_ref());
    let pins = vec![fp(&p256), fp(&ed)];
    // Both for localhost, P-256 first.
    let mut both = ServerOptions::new(p256.clone());
    both.sni = vec![
        ("localhost".into(), p256.clone()),
        ("localhost".into(), ed.clone()),
    ];
    let both = both
        .build(provider(), rng(), Arc::new(FixedTime(NOW)))
        .unwrap();
    let got = |v, srv: &Arc<rustls::ServerConfig>| {
        let mut c = Session::client(x25519_client(v, pins.clone()), "localhost").unwrap();
        let mut s = Session::server(srv.clone()).unwrap();
        handshake(&mut c, &mut s).map(|()| c.info().peer_certificates[0].clone())
    };
    // Only X25519: the P-256 certificate does not fit TLS 1.2, the Ed25519 one fits both.
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        assert_eq!(
            got(v, &both).unwrap().as_ref(),
            ed.chain[0].as_ref(),
            "{v:?}"
        );
    }
    // Only P-256 configured: TLS 1.2 with X25519 alone is refused with handshake_failure;
    // TLS 1.3 is served (the signature scheme, not the groups, binds the curve).
    let only = server();
    assert_eq!(
        refused_by_server(
            only.clone(),
            x25519_client(&rustls::version::TLS12, pins.clone())
        ),
        TlsError::PeerAlert(rustls::AlertDescription::HandshakeFailure)
    );
    assert_eq!(
        got(&rustls::version::TLS13, &only).unwrap().as_ref(),
        p256.chain[0].as_ref()
    );
}

/// A clock the test moves.
#[derive(Debug)]
struct TestClock(std::sync::atomic::AtomicU64);

impl rustls::time_provider::TimeProvider for TestClock {
    fn current_time(&self) -> Option<pki_types::UnixTime> {
        Some(pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(self.0.load(std::sync::atomic::Ordering::SeqCst)),
        ))
    }
}

impl TestClock {
    fn set(&self, t: u64) {
        self.0.store(t, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn ticket_keys_rotate_with_the_clock() {
    let period = u64::from(uni_tls::config::TICKET_KEY_PERIOD);
    // Early in a period.
    let t0 = (NOW / period) * period + 10;
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        // Whether a connection made `later` seconds after the ticket was issued resumes.
        let resumes_after = |later: u64| {
            let clock = Arc::new(TestClock(t0.into()));
            let srv = ServerOptions::new(Identity::from_pem(CERT, KEY).unwrap())
                .build(provider(), rng(), clock.clone())
                .unwrap();
            // The client's own clock stays put: it keeps offering the ticket, and the
            // server's keys decide.
            let cfg = client_with(trust(NOW), Some(vec![v]));
            let connect = || {
                let mut c = Session::client(cfg.clone(), "localhost").unwrap();
                let mut s = Session::server(srv.clone()).unwrap();
                handshake(&mut c, &mut s).unwrap();
                // TLS 1.3 tickets arrive after the handshake: deliver them.
                let rec = s.send(b"x").unwrap();
                let _ = c.handle(&rec).unwrap();
                c.info().resumed
            };
            assert!(
                !connect(),
                "{v:?}: the first connection is a full handshake"
            );
            clock.set(t0 + later);
            connect()
        };
        assert!(resumes_after(period / 2), "{v:?}: within the period");
        assert!(
            resumes_after(period),
            "{v:?}: one rotation later, the previous key still opens the ticket"
        );
        assert!(
            !resumes_after(2 * period),
            "{v:?}: two rotations later, the ticket is refused (full handshake)"
        );
    }
}

/// A failed session stays failed: later calls return the same error and send nothing, and
/// never drive rustls past its fatal alert (which asserted in debug builds: fuzz/
/// `tls_server`, seed regress-2d0aeb23ea0f).
#[test]
fn a_failure_is_final() {
    let mut s = Session::server(server()).unwrap();
    let f = s
        .handle(b"\x16\x03\x01\x00\x05garbage-that-is-no-client-hello")
        .unwrap_err();
    for again in [
        s.handle(&[]).map(|_| ()),
        s.send(b"hello").map(|_| ()),
        s.close().map(|_| ()),
    ] {
        let again = again.unwrap_err();
        assert_eq!(again.error, f.error);
        assert!(again.to_send.is_empty());
    }
}
