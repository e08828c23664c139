//! Authenticators: how a client decides to trust a server's certificate.
//!
//! * [`chain_of_trust`]: the chain must lead to one of `roots`, be valid at the authenticator's
//!   time, and name the host we connected to. The host check cannot be turned off, except with
//!   [`danger_chain_of_trust_without_hostname`].
//! * [`server_fingerprint`]: the server's certificate must hash to one of the pinned
//!   fingerprints and name the host (no CA involved); [`trust_on_first_use`] pins whatever
//!   the first connection to each host presents.
//!
//! A rejection is a [`TlsError::Certificate`](crate::TlsError::Certificate) holding a
//! [`Rejection`]: a distinct [`CertError`] (expired, not yet valid, wrong host, unknown
//! issuer, bad signature, not a CA, a CA as the leaf, path too long, name constraints,
//! unsupported critical extension, wrong purpose, weak key, unsupported signature algorithm,
//! pin mismatch) and the certificate it concerns: its subject and its place in the chain
//! (leaf, intermediate N, root). The chain is re-walked here (see `x509.rs`) because webpki
//! says what failed but not where.
//!
//! rustls (without `std`) cannot carry such details in its errors, so an authenticator hands
//! its [`Rejection`] to the [`Session`](crate::Session) that called it through a slot that
//! client sessions hold, behind a process-wide lock, while they process handshake records:
//! uncontended on the guests' single-threaded executors, and race-free where threads run
//! several clients at once.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::time_provider::TimeProvider;
use rustls::{DigitallySignedStruct, Error, SignatureScheme};
use sha2::Digest;

use crate::error::{CertError, Rejection, TlsError};
use crate::x509;

/// Held by a client session while rustls processes its handshake records (and so while our
/// authenticators run): the slot below then belongs to that session.
static GATE: spin::Mutex<()> = spin::Mutex::new(());
/// The last rejection an authenticator explained, for the session holding [`GATE`].
static SLOT: spin::Mutex<Option<Rejection>> = spin::Mutex::new(None);

/// Locks the gate for one `process` call of a client session, with the slot emptied.
pub(crate) fn gate() -> spin::MutexGuard<'static, ()> {
    let g = GATE.lock();
    SLOT.lock().take();
    g
}

/// The rejection recorded during the gated call, if any.
pub(crate) fn take_rejection() -> Option<Rejection> {
    SLOT.lock().take()
}

/// Records `r` for the calling session and returns the rustls error that sends the right
/// alert.
fn reject(r: Rejection) -> Error {
    let e = Error::InvalidCertificate(r.cause.to_rustls());
    *SLOT.lock() = Some(r);
    e
}

/// Trust a chain that leads to one of `roots`, is valid at `time`'s current time, and names
/// the host we connect to.
pub fn chain_of_trust(
    roots: &[CertificateDer<'static>],
    time: Arc<dyn TimeProvider>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    ChainOfTrust::build(roots, time, provider, true)
}

/// Like [`chain_of_trust`] but accepts a certificate for any host name. Anyone with a
/// certificate from one of `roots` can impersonate any server: use only where the name is
/// meaningless (a fixed peer addressed by IP inside a test network).
pub fn danger_chain_of_trust_without_hostname(
    roots: &[CertificateDer<'static>],
    time: Arc<dyn TimeProvider>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    ChainOfTrust::build(roots, time, provider, false)
}

struct ChainOfTrust {
    roots: Vec<CertificateDer<'static>>,
    anchors: Vec<pki_types::TrustAnchor<'static>>,
    algs: WebPkiSupportedAlgorithms,
    time: Arc<dyn TimeProvider>,
    check_host: bool,
}

impl ChainOfTrust {
    fn build(
        roots: &[CertificateDer<'static>],
        time: Arc<dyn TimeProvider>,
        provider: Arc<CryptoProvider>,
        check_host: bool,
    ) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
        if roots.is_empty() {
            return Err(TlsError::Config(
                "chain_of_trust needs at least one trust anchor".into(),
            ));
        }
        let mut anchors = Vec::new();
        for r in roots {
            anchors.push(
                webpki::anchor_from_trusted_cert(r)
                    .map_err(|_| {
                        TlsError::Config("trust anchor: not a parsable X.509 certificate".into())
                    })?
                    .to_owned(),
            );
        }
        Ok(Arc::new(ChainOfTrust {
            roots: roots.to_vec(),
            anchors,
            algs: provider.signature_verification_algorithms,
            time,
            check_host,
        }))
    }
}

impl fmt::Debug for ChainOfTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainOfTrust")
            .field("check_host", &self.check_host)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for ChainOfTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let now = self.time.current_time().unwrap_or(now);
        let leaf = end_entity.as_ref();
        let explain = |e: &webpki::Error| {
            reject(x509::explain(
                e,
                leaf,
                intermediates,
                &self.roots,
                now.as_secs(),
                self.algs.all,
                x509::SERVER_AUTH,
            ))
        };
        // webpki refuses some certificates while parsing (an unknown critical extension).
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|e| explain(&e))?;
        cert.verify_for_usage(
            self.algs.all,
            &self.anchors,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| explain(&e))?;
        if self.check_host && cert.verify_is_valid_for_subject_name(server_name).is_err() {
            return Err(reject(x509::leaf_rejection(leaf, CertError::WrongHost)));
        }
        // webpki accepts RSA keys of any size in certificates, but refuses handshake
        // signatures from keys under 2048 bits: say so now, not "bad signature" later.
        if let Some(weak) = x509::weak_key(leaf, intermediates, &self.roots) {
            return Err(reject(weak));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// The hash of a certificate fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintHash {
    /// SHA-256 of the DER certificate (what `openssl x509 -fingerprint -sha256` prints).
    Sha256,
    /// SHA-384 of the DER certificate.
    Sha384,
}

impl FingerprintHash {
    /// The length of a fingerprint, in bytes.
    pub fn size(self) -> usize {
        match self {
            FingerprintHash::Sha256 => 32,
            FingerprintHash::Sha384 => 48,
        }
    }

    /// "SHA-256" or "SHA-384".
    pub fn name(self) -> &'static str {
        match self {
            FingerprintHash::Sha256 => "SHA-256",
            FingerprintHash::Sha384 => "SHA-384",
        }
    }

    /// The fingerprint of `cert`.
    pub fn of(self, cert: &[u8]) -> Vec<u8> {
        match self {
            FingerprintHash::Sha256 => sha2::Sha256::digest(cert).to_vec(),
            FingerprintHash::Sha384 => sha2::Sha384::digest(cert).to_vec(),
        }
    }
}

/// Parses a fingerprint written as hex, with or without `:` separators.
pub fn parse_fingerprint(s: &str) -> Option<Vec<u8>> {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b':').collect();
    if !hex.len().is_multiple_of(2) || hex.is_empty() {
        return None;
    }
    hex.chunks(2)
        .map(|p| {
            let d = |c: u8| (c as char).to_digit(16);
            Some((d(p[0])? * 16 + d(p[1])?) as u8)
        })
        .collect()
}

/// Trust a server whose certificate hashes (with `hash`) to one of `pins`, and names the host.
/// No CA and no validity period are involved: the pin is the trust. A pin whose length is not
/// the hash's (32 bytes for SHA-256, 48 for SHA-384) could never match, and is refused.
pub fn server_fingerprint(
    hash: FingerprintHash,
    pins: Vec<Vec<u8>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    if pins.is_empty() {
        return Err(TlsError::Config(
            "server_fingerprint needs at least one pin".into(),
        ));
    }
    for (i, p) in pins.iter().enumerate() {
        if p.len() != hash.size() {
            return Err(TlsError::Config(alloc::format!(
                "pin {}: {} bytes, but a {} fingerprint is {} bytes ({} hex digits, `:` separators allowed)",
                i + 1,
                p.len(),
                hash.name(),
                hash.size(),
                hash.size() * 2
            )));
        }
    }
    Ok(Arc::new(Fingerprint {
        hash,
        pins: Pins::Fixed(pins),
        algs: provider.signature_verification_algorithms,
    }))
}

/// Pins learnt by [`trust_on_first_use`]: host name → fingerprint.
#[derive(Debug, Default)]
pub struct TofuStore(spin::Mutex<BTreeMap<String, Vec<u8>>>);

impl TofuStore {
    /// An empty store.
    pub fn new() -> Arc<TofuStore> {
        Arc::new(TofuStore::default())
    }

    /// The pin for `host`, if learnt.
    pub fn get(&self, host: &str) -> Option<Vec<u8>> {
        self.0.lock().get(host).cloned()
    }
}

/// Trust on first use: the first certificate a host presents is pinned in `store`; later
/// connections must present the same one.
pub fn trust_on_first_use(
    hash: FingerprintHash,
    store: Arc<TofuStore>,
    provider: Arc<CryptoProvider>,
) -> Arc<dyn ServerCertVerifier> {
    Arc::new(Fingerprint {
        hash,
        pins: Pins::Tofu(store),
        algs: provider.signature_verification_algorithms,
    })
}

#[derive(Debug)]
enum Pins {
    Fixed(Vec<Vec<u8>>),
    Tofu(Arc<TofuStore>),
}

#[derive(Debug)]
struct Fingerprint {
    hash: FingerprintHash,
    pins: Pins,
    algs: WebPkiSupportedAlgorithms,
}

fn name_of(server_name: &ServerName<'_>) -> String {
    match server_name {
        ServerName::DnsName(d) => String::from(d.as_ref()),
        ServerName::IpAddress(ip) => alloc::format!("{ip:?}"),
        _ => String::new(),
    }
}

impl ServerCertVerifier for Fingerprint {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let leaf = end_entity.as_ref();
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|e| {
            reject(x509::explain(
                &e,
                leaf,
                &[],
                &[],
                0,
                self.algs.all,
                x509::SERVER_AUTH,
            ))
        })?;
        if cert.verify_is_valid_for_subject_name(server_name).is_err() {
            return Err(reject(x509::leaf_rejection(leaf, CertError::WrongHost)));
        }
        if let Some(weak) = x509::weak_key(leaf, &[], &[]) {
            return Err(reject(weak));
        }
        let fp = self.hash.of(end_entity.as_ref());
        let ok = match &self.pins {
            Pins::Fixed(pins) => pins.contains(&fp),
            Pins::Tofu(store) => {
                let mut m = store.0.lock();
                m.entry(name_of(server_name)).or_insert_with(|| fp.clone()) == &fp
            }
        };
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(reject(x509::leaf_rejection(leaf, CertError::PinMismatch)))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A server's check of client certificates: rustls's [`WebPkiClientVerifier`] decides; when
/// it refuses, the chain is re-walked to name the cause and the certificate, as for servers.
/// With the `client-auth` feature only.
#[cfg(feature = "client-auth")]
pub(crate) struct ExplainedClientVerifier {
    inner: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    roots: Vec<CertificateDer<'static>>,
    anchors: Vec<pki_types::TrustAnchor<'static>>,
    algs: WebPkiSupportedAlgorithms,
}

#[cfg(feature = "client-auth")]
impl fmt::Debug for ExplainedClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExplainedClientVerifier")
            .finish_non_exhaustive()
    }
}

/// Client certificates must chain to one of `roots` (client authentication required).
#[cfg(feature = "client-auth")]
pub(crate) fn client_verifier(
    roots: &[CertificateDer<'static>],
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    let mut anchors = Vec::new();
    for r in roots {
        store
            .add(r.clone())
            .map_err(|e| TlsError::Config(alloc::format!("client CA: {e}")))?;
        anchors.push(
            webpki::anchor_from_trusted_cert(r)
                .map_err(|_| {
                    TlsError::Config("client CA: not a parsable X.509 certificate".into())
                })?
                .to_owned(),
        );
    }
    let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(store),
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsError::Config(alloc::format!("client CA: {e}")))?;
    Ok(Arc::new(ExplainedClientVerifier {
        inner,
        roots: roots.to_vec(),
        anchors,
        algs: provider.signature_verification_algorithms,
    }))
}

#[cfg(feature = "client-auth")]
impl rustls::server::danger::ClientCertVerifier for ExplainedClientVerifier {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, Error> {
        let refused = match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let verdict = webpki::EndEntityCert::try_from(end_entity).and_then(|cert| {
            cert.verify_for_usage(
                self.algs.all,
                &self.anchors,
                intermediates,
                now,
                webpki::KeyUsage::client_auth(),
                None,
                None,
            )
            .map(|_| ())
        });
        if let Err(e) = verdict {
            // Keep rustls's error (and so its alert); the explanation goes to the session.
            *SLOT.lock() = Some(x509::explain(
                &e,
                end_entity.as_ref(),
                intermediates,
                &self.roots,
                now.as_secs(),
                self.algs.all,
                x509::CLIENT_AUTH,
            ));
        }
        Err(refused)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
