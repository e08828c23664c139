//! Server and client configurations.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::ops::DerefMut;

use aes_gcm::aead::{Aead, KeyInit};
use pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::lock::{Lock, MakeMutex, MutexGuard, Poisoned};
use rustls::server::{
    ClientHello, ProducesTickets, ResolvesServerCert, ServerSessionMemoryCache,
    WebPkiClientVerifier,
};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::time_provider::TimeProvider;
use rustls::{
    ClientConfig, NamedGroup, RootCertStore, ServerConfig, SignatureAlgorithm, SignatureScheme,
};
use uni_crypto::Rng;
use uni_runtime::device;

use crate::error::TlsError;

/// A certificate chain (end entity first) and its private key.
#[derive(Debug)]
pub struct Identity {
    /// The chain, end entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key (ECDSA P-256/P-384 or Ed25519).
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// Reads a chain and a key from PEM (or DER) bytes.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Identity, TlsError> {
        let chain = uni_crypto::pem::certificates(cert)
            .map_err(|e| TlsError::Config(format!("certificate: {e}")))?;
        let key = uni_crypto::pem::private_key(key)
            .map_err(|e| TlsError::Config(format!("private key: {e}")))?;
        Ok(Identity { chain, key })
    }

    fn certified(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
        let key = provider
            .key_provider
            .load_private_key(self.key.clone_key())
            .map_err(|e| TlsError::Config(format!("private key: {e}")))?;
        Ok(Arc::new(CertifiedKey::new(self.chain.clone(), key)))
    }
}

/// Reads trust anchors (CA certificates) from PEM or DER.
pub fn roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    uni_crypto::pem::certificates(pem)
        .map_err(|e| TlsError::Config(format!("CA certificates: {e}")))
}

fn root_store(roots: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store
            .add(r.clone())
            .map_err(|e| TlsError::Config(format!("trust anchor: {e}")))?;
    }
    Ok(Arc::new(store))
}

/// rustls's memory caches take a mutex factory on `no_std`: a spinlock (the executors are
/// single-threaded, so it never spins).
#[derive(Debug)]
pub struct SpinMutex;

struct SpinLock<T>(spin::Mutex<T>);

impl<T> fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpinLock")
    }
}

impl<T: Send> Lock<T> for SpinLock<T> {
    fn lock(&self) -> Result<MutexGuard<'_, T>, Poisoned> {
        Ok(Box::new(self.0.lock()) as Box<dyn DerefMut<Target = T>>)
    }
}

impl MakeMutex for SpinMutex {
    fn make_mutex<T>(value: T) -> Arc<dyn Lock<T>>
    where
        T: Send + 'static,
    {
        Arc::new(SpinLock(spin::Mutex::new(value)))
    }
}

/// A [`device::Clock`]'s wall time as rustls's time provider (certificate validity, ticket
/// ages).
pub struct ClockTime<C>(pub C);

impl<C> fmt::Debug for ClockTime<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClockTime")
    }
}

impl<C: device::Clock + Send + Sync> TimeProvider for ClockTime<C> {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(core::time::Duration::from_secs(
            self.0.wall().secs,
        )))
    }
}

/// A fixed time, for tests and for checking certificates "as of" a date.
#[derive(Debug, Clone, Copy)]
pub struct FixedTime(pub u64);

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(core::time::Duration::from_secs(
            self.0,
        )))
    }
}

/// Chooses the certificate by the client's SNI name (exact names first, then `*.domain`
/// wildcards, then the default) and by what the client can use: its signature schemes and,
/// for an ECDSA certificate in TLS 1.2, its supported groups (RFC 8422 §5.1: a TLS 1.2
/// client offering only X25519 cannot take a P-256 certificate). Several certificates may
/// serve one name (an `sni` entry per key type): the first that suits the client in both
/// versions wins; failing that, one whose curve the client did not offer serves TLS 1.3
/// only. If none fits, the handshake is refused with a `handshake_failure` alert.
#[derive(Debug)]
pub struct SniResolver {
    default: Option<Arc<CertifiedKey>>,
    by_name: Vec<(String, Arc<CertifiedKey>)>,
}

impl SniResolver {
    /// The certificates for `name`, best match first: exact names, then wildcards.
    fn candidates(&self, name: Option<&str>) -> Vec<Arc<CertifiedKey>> {
        let mut out = Vec::new();
        if let Some(name) = name {
            let name = name.to_ascii_lowercase();
            out.extend(
                self.by_name
                    .iter()
                    .filter(|(n, _)| *n == name)
                    .map(|(_, k)| k.clone()),
            );
            if let Some((_, parent)) = name.split_once('.') {
                out.extend(
                    self.by_name
                        .iter()
                        .filter(|(n, _)| n.strip_prefix("*.") == Some(parent))
                        .map(|(_, k)| k.clone()),
                );
            }
        }
        out.extend(self.default.clone());
        out
    }
}

/// The named group an ECDSA key's curve is, or `None` for other keys (Ed25519 certificates
/// are bound by the signature schemes alone).
fn ecdsa_curve(key: &dyn SigningKey) -> Option<NamedGroup> {
    if key.algorithm() != SignatureAlgorithm::ECDSA {
        return None;
    }
    [
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            NamedGroup::secp256r1,
        ),
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            NamedGroup::secp384r1,
        ),
        (
            SignatureScheme::ECDSA_NISTP521_SHA512,
            NamedGroup::secp521r1,
        ),
    ]
    .into_iter()
    .find(|(scheme, _)| key.choose_scheme(&[*scheme]).is_some())
    .map(|(_, group)| group)
}

/// Whether `key` signs with one of the client's signature schemes.
fn signs_for(key: &CertifiedKey, hello: &ClientHello<'_>) -> bool {
    key.key.choose_scheme(hello.signature_schemes()).is_some()
}

/// Whether `key`'s curve is among the client's groups (RFC 8422 §5.1, for TLS 1.2 ECDSA; a
/// client without the extension takes any curve).
fn curve_offered(key: &CertifiedKey, hello: &ClientHello<'_>) -> bool {
    match (ecdsa_curve(key.key.as_ref()), hello.named_groups()) {
        (Some(curve), Some(groups)) => groups.contains(&curve),
        _ => true,
    }
}

/// A key rustls cannot choose a TLS 1.2 suite for, or sign with at all.
///
/// The resolver does not learn the version: a TLS 1.2 suite is chosen by the key's
/// algorithm, after the certificate, and TLS 1.3 suites take any. So a key that reports
/// `Anonymous` (no TLS 1.2 suite signs with it) but still signs (`inner`) is usable in TLS
/// 1.3 only, and one that signs with nothing (`inner: None`) in neither: rustls then refuses
/// with `handshake_failure` (TLS 1.2: no suite in common; TLS 1.3: no signature scheme for
/// CertificateVerify), where returning no certificate would send `access_denied` and a
/// certificate the client cannot use would only make it abort.
#[derive(Debug)]
struct Tls13Only {
    inner: Option<Arc<dyn SigningKey>>,
}

impl SigningKey for Tls13Only {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        self.inner.as_ref()?.choose_scheme(offered)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Anonymous
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let candidates = self.candidates(hello.server_name());
        // One that suits the client in either version.
        if let Some(k) = candidates
            .iter()
            .find(|k| signs_for(k, &hello) && curve_offered(k, &hello))
        {
            return Some(k.clone());
        }
        // One whose curve the client did not offer: fine in TLS 1.3, refused in TLS 1.2.
        let (best, inner) = match candidates.iter().find(|k| signs_for(k, &hello)) {
            Some(k) => (k, Some(k.key.clone())),
            None => (candidates.first()?, None),
        };
        Some(Arc::new(CertifiedKey::new(
            best.cert.clone(),
            Arc::new(Tls13Only { inner }),
        )))
    }
}

/// Session tickets sealed with AES-256-GCM under a key drawn from the RNG at start-up.
pub struct Ticketer {
    key: aes_gcm::Aes256Gcm,
    rng: &'static Rng,
    lifetime: u32,
}

impl fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticketer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Ticketer {
    /// A ticketer whose tickets live `lifetime` seconds.
    pub fn new(rng: &'static Rng, lifetime: u32) -> Result<Ticketer, TlsError> {
        let mut k = [0u8; 32];
        rng.try_fill(&mut k)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Ticketer {
            key: aes_gcm::Aes256Gcm::new(&k.into()),
            rng,
            lifetime,
        })
    }
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; 12];
        self.rng.try_fill(&mut nonce).ok()?;
        let ct = self.key.encrypt(&nonce.into(), plain).ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < 12 + 16 {
            return None;
        }
        let (nonce, ct) = cipher.split_at(12);
        self.key.decrypt(nonce.into(), ct).ok()
    }
}

/// What a server needs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The certificate for clients that send no SNI name, or a name no other entry matches.
    pub identity: Option<Identity>,
    /// Certificates by SNI name (`"a.example"` or `"*.example"`).
    pub sni: Vec<(String, Identity)>,
    /// ALPN protocols, in preference order (for example `b"h2"`, `b"http/1.1"`).
    pub alpn: Vec<Vec<u8>>,
    /// When set, clients must present a certificate issued by one of these CAs.
    pub client_ca: Option<Vec<CertificateDer<'static>>>,
    /// Session resumption: tickets (TLS 1.2 and 1.3) and a session-ID cache (TLS 1.2).
    pub resumption: bool,
}

impl ServerOptions {
    /// One certificate for every name, resumption on.
    pub fn new(identity: Identity) -> ServerOptions {
        ServerOptions {
            identity: Some(identity),
            sni: Vec::new(),
            alpn: Vec::new(),
            client_ca: None,
            resumption: true,
        }
    }

    /// The rustls server configuration.
    pub fn build(
        &self,
        provider: Arc<CryptoProvider>,
        rng: &'static Rng,
        time: Arc<dyn TimeProvider>,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let mut resolver = SniResolver {
            default: None,
            by_name: Vec::new(),
        };
        if let Some(id) = &self.identity {
            resolver.default = Some(id.certified(&provider)?);
        }
        for (name, id) in &self.sni {
            resolver
                .by_name
                .push((name.to_ascii_lowercase(), id.certified(&provider)?));
        }
        if resolver.default.is_none() && resolver.by_name.is_empty() {
            return Err(TlsError::Config(
                "a TLS server needs at least one certificate".into(),
            ));
        }
        let builder = ServerConfig::builder_with_details(provider.clone(), time)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &self.client_ca {
            Some(cas) => {
                let v =
                    WebPkiClientVerifier::builder_with_provider(root_store(cas)?, provider.clone())
                        .build()
                        .map_err(|e| TlsError::Config(format!("client CA: {e}")))?;
                builder.with_client_cert_verifier(v)
            }
            None => builder.with_no_client_auth(),
        };
        let mut cfg = builder.with_cert_resolver(Arc::new(resolver));
        cfg.alpn_protocols = self.alpn.clone();
        if self.resumption {
            cfg.session_storage = ServerSessionMemoryCache::new::<SpinMutex>(256);
            cfg.ticketer = Arc::new(Ticketer::new(rng, 6 * 3600)?);
        } else {
            cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            cfg.send_tls13_tickets = 0;
        }
        Ok(Arc::new(cfg))
    }
}

/// What a client needs.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Decides whether to trust the server's certificate (see [`crate::auth`]).
    pub authenticator: Arc<dyn ServerCertVerifier>,
    /// ALPN protocols to offer.
    pub alpn: Vec<Vec<u8>>,
    /// A client certificate, for servers that ask for one.
    pub identity: Option<Identity>,
    /// Remember sessions (tickets) in memory to resume later connections.
    pub resumption: bool,
    /// Only these versions (`None`: TLS 1.2 and 1.3).
    pub versions: Option<Vec<&'static rustls::SupportedProtocolVersion>>,
}

impl ClientOptions {
    /// Trust what `authenticator` trusts; resumption on.
    pub fn new(authenticator: Arc<dyn ServerCertVerifier>) -> ClientOptions {
        ClientOptions {
            authenticator,
            alpn: Vec::new(),
            identity: None,
            resumption: true,
            versions: None,
        }
    }

    /// The rustls client configuration. Reuse it for every connection, so that sessions can
    /// be resumed.
    pub fn build(
        &self,
        provider: Arc<CryptoProvider>,
        time: Arc<dyn TimeProvider>,
    ) -> Result<Arc<ClientConfig>, TlsError> {
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = self
            .versions
            .clone()
            .unwrap_or_else(|| rustls::ALL_VERSIONS.to_vec());
        let builder = ClientConfig::builder_with_details(provider.clone(), time)
            .with_protocol_versions(&versions)
            .map_err(|e| TlsError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(self.authenticator.clone());
        let mut cfg = match &self.identity {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| TlsError::Config(format!("client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = self.alpn.clone();
        cfg.resumption = if self.resumption {
            Resumption::store(Arc::new(ClientSessionMemoryCache::new::<SpinMutex>(64)))
        } else {
            Resumption::disabled()
        };
        Ok(Arc::new(cfg))
    }
}
