//! Authenticators: how a client decides to trust a server's certificate.
//!
//! * [`chain_of_trust`]: the chain must lead to one of `roots`, be valid at the authenticator's
//!   time, and name the host we connected to. The host check cannot be turned off, except with
//!   [`danger_chain_of_trust_without_hostname`].
//! * [`server_fingerprint`]: the server's certificate must hash to one of the pinned
//!   fingerprints and name the host (no CA involved); [`trust_on_first_use`] pins whatever
//!   the first connection to each host presents.
//!
//! A rejection is a [`TlsError::Certificate`](crate::TlsError::Certificate) with a distinct
//! [`CertError`](crate::CertError): expired, not yet valid, wrong host, unknown issuer, bad
//! signature or pin mismatch.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::time_provider::TimeProvider;
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};
use sha2::Digest;

use crate::error::TlsError;

/// Trust a chain that leads to one of `roots`, is valid at `time`'s current time, and names
/// the host we connect to.
pub fn chain_of_trust(
    roots: &[CertificateDer<'static>],
    time: Arc<dyn TimeProvider>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    Ok(Arc::new(ChainOfTrust {
        inner: webpki_verifier(roots, provider)?,
        time,
        check_host: true,
    }))
}

/// Like [`chain_of_trust`] but accepts a certificate for any host name. Anyone with a
/// certificate from one of `roots` can impersonate any server: use only where the name is
/// meaningless (a fixed peer addressed by IP inside a test network).
pub fn danger_chain_of_trust_without_hostname(
    roots: &[CertificateDer<'static>],
    time: Arc<dyn TimeProvider>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    Ok(Arc::new(ChainOfTrust {
        inner: webpki_verifier(roots, provider)?,
        time,
        check_host: false,
    }))
}

fn webpki_verifier(
    roots: &[CertificateDer<'static>],
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    if roots.is_empty() {
        return Err(TlsError::Config(
            "chain_of_trust needs at least one trust anchor".into(),
        ));
    }
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store
            .add(r.clone())
            .map_err(|e| TlsError::Config(alloc::format!("trust anchor: {e}")))?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| TlsError::Config(alloc::format!("{e}")))
}

struct ChainOfTrust {
    inner: Arc<WebPkiServerVerifier>,
    time: Arc<dyn TimeProvider>,
    check_host: bool,
}

impl fmt::Debug for ChainOfTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainOfTrust")
            .field("check_host", &self.check_host)
            .finish_non_exhaustive()
    }
}

fn is_name_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

impl ServerCertVerifier for ChainOfTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let now = self.time.current_time().unwrap_or(now);
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(e) if !self.check_host && is_name_error(&e) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
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

/// The hash of a certificate fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintHash {
    /// SHA-256 of the DER certificate (what `openssl x509 -fingerprint -sha256` prints).
    Sha256,
    /// SHA-384 of the DER certificate.
    Sha384,
}

impl FingerprintHash {
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
/// No CA and no validity period are involved: the pin is the trust.
pub fn server_fingerprint(
    hash: FingerprintHash,
    pins: Vec<Vec<u8>>,
    provider: Arc<CryptoProvider>,
) -> Arc<dyn ServerCertVerifier> {
    Arc::new(Fingerprint {
        hash,
        pins: Pins::Fixed(pins),
        algs: provider.signature_verification_algorithms,
    })
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
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        cert.verify_is_valid_for_subject_name(server_name)
            .map_err(|_| Error::InvalidCertificate(CertificateError::NotValidForName))?;
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
            Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
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
