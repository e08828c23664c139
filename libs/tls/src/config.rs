//! Server and client configurations.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::ops::DerefMut;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::lock::{Lock, MakeMutex, MutexGuard, Poisoned};
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, NamedGroup, ServerConfig, SignatureAlgorithm, SignatureScheme};
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
        Identity::decode(cert, key, &crate::Decode::PEM)
    }

    /// Reads a chain and a key as `decode` says.
    pub fn decode(cert: &[u8], key: &[u8], decode: &crate::Decode) -> Result<Identity, TlsError> {
        let chain = (decode.certificates)(cert)
            .map_err(|e| TlsError::Config(format!("certificate: {e}")))?;
        let key =
            (decode.private_key)(key).map_err(|e| TlsError::Config(format!("private key: {e}")))?;
        Ok(Identity { chain, key })
    }

    fn certified(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
        let key = provider
            .key_provider
            .load_private_key(self.key.clone_key())
            .map_err(|e| TlsError::Config(format!("private key: {e}")))?;
        let schemes: Vec<SignatureScheme> = provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .map(|(s, _)| *s)
            .collect();
        if key.choose_scheme(&schemes).is_none() {
            return Err(TlsError::Config(format!(
                "private key: it signs with none of the signature schemes configured ({})",
                schemes
                    .iter()
                    .filter_map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Arc::new(CertifiedKey::new(self.chain.clone(), key)))
    }
}

/// Reads trust anchors (CA certificates) from PEM or DER.
pub fn roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    uni_crypto::pem::certificates(pem)
        .map_err(|e| TlsError::Config(format!("CA certificates: {e}")))
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

/// How long one session-ticket key seals new tickets: 6 hours. A key then decrypts for one
/// more period, so a ticket resumes for at least one period (the lifetime announced to
/// clients) and at most two, and is refused after that.
pub const TICKET_KEY_PERIOD: u32 = 6 * 3600;

/// Session tickets sealed with AES-256-GCM under keys that rotate with the clock.
///
/// Time is cut into periods of `period` seconds, numbered from the Unix epoch. Each period
/// gets a fresh key from the RNG (drawn when first needed); a ticket carries its period's
/// number (authenticated as associated data), and is opened with the current key or the
/// previous period's, never an older one. A clock that jumps more than one period forward
/// drops both keys; one that goes back keeps the current key.
pub struct Ticketer {
    rng: &'static Rng,
    time: Arc<dyn TimeProvider>,
    period: u32,
    keys: spin::Mutex<Option<TicketKeys>>,
}

struct TicketKeys {
    epoch: u64,
    current: aes_gcm::Aes256Gcm,
    previous: Option<aes_gcm::Aes256Gcm>,
}

impl fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticketer")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

/// Period number (8 bytes) + nonce (12 bytes) before the sealed ticket and its tag.
const TICKET_HEADER: usize = 8 + 12;

impl Ticketer {
    /// A ticketer whose keys rotate every `period` seconds of `time`.
    pub fn new(
        rng: &'static Rng,
        time: Arc<dyn TimeProvider>,
        period: u32,
    ) -> Result<Ticketer, TlsError> {
        if period == 0 {
            return Err(TlsError::Config(
                "the session-ticket key period must be at least 1 second".into(),
            ));
        }
        Ok(Ticketer {
            rng,
            time,
            period,
            keys: spin::Mutex::new(None),
        })
    }

    fn fresh_key(&self) -> Option<aes_gcm::Aes256Gcm> {
        let mut k = [0u8; 32];
        self.rng.try_fill(&mut k).ok()?;
        Some(aes_gcm::Aes256Gcm::new(&k.into()))
    }

    /// The keys for now, rotated as the clock says; `f` runs with them.
    fn with_keys<T>(&self, f: impl FnOnce(&TicketKeys) -> Option<T>) -> Option<T> {
        let epoch = self.time.current_time()?.as_secs() / u64::from(self.period);
        let mut keys = self.keys.lock();
        let rotate = match &*keys {
            None => true,
            Some(k) => epoch > k.epoch,
        };
        if rotate {
            let current = self.fresh_key()?;
            let previous = match keys.take() {
                Some(k) if k.epoch + 1 == epoch => Some(k.current),
                _ => None,
            };
            *keys = Some(TicketKeys {
                epoch,
                current,
                previous,
            });
        }
        f(keys.as_ref()?)
    }
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.period
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; 12];
        self.rng.try_fill(&mut nonce).ok()?;
        self.with_keys(|k| {
            let id = k.epoch.to_be_bytes();
            let ct = k
                .current
                .encrypt(
                    &nonce.into(),
                    Payload {
                        msg: plain,
                        aad: &id,
                    },
                )
                .ok()?;
            let mut out = Vec::with_capacity(TICKET_HEADER + ct.len());
            out.extend_from_slice(&id);
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&ct);
            Some(out)
        })
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < TICKET_HEADER + 16 {
            return None;
        }
        let (id, rest) = cipher.split_at(8);
        let (nonce, ct) = rest.split_at(12);
        let epoch = u64::from_be_bytes(id.try_into().ok()?);
        self.with_keys(|k| {
            let key = if epoch == k.epoch {
                &k.current
            } else if epoch + 1 == k.epoch {
                k.previous.as_ref()?
            } else {
                return None;
            };
            key.decrypt(nonce.into(), Payload { msg: ct, aad: id }).ok()
        })
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
    /// Seconds each session-ticket key seals new tickets (see [`Ticketer`]).
    pub ticket_key_period: u32,
    /// Only these versions (`None`: every version compiled in).
    pub versions: Option<Vec<&'static rustls::SupportedProtocolVersion>>,
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
            ticket_key_period: TICKET_KEY_PERIOD,
            versions: None,
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
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = self
            .versions
            .clone()
            .unwrap_or_else(|| rustls::ALL_VERSIONS.to_vec());
        let builder = ServerConfig::builder_with_details(provider.clone(), time.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &self.client_ca {
            #[cfg(feature = "client-auth")]
            Some(cas) => builder
                .with_client_cert_verifier(crate::auth::client_verifier(cas, provider.clone())?),
            #[cfg(not(feature = "client-auth"))]
            Some(_) => {
                return Err(TlsError::Config(
                    "client certificates (`client-ca`) need uni-tls's `client-auth` feature, which this build leaves out".into(),
                ))
            }
            None => builder.with_no_client_auth(),
        };
        let mut cfg = builder.with_cert_resolver(Arc::new(resolver));
        cfg.alpn_protocols = self.alpn.clone();
        if self.resumption {
            cfg.session_storage = ServerSessionMemoryCache::new::<SpinMutex>(256);
            cfg.ticketer = Arc::new(Ticketer::new(rng, time, self.ticket_key_period)?);
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
    /// Only these versions (`None`: every version compiled in: TLS 1.3, and TLS 1.2 with the
    /// `tls12` feature).
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
