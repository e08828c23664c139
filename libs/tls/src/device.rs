//! The `tls` device: TLS over a network stack, configured from `unikernel.toml`.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use pki_types::{CertificateDer, PrivateKeyDer};
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, ServerConfig};
use uni_crypto::Rng;
use uni_runtime::device::net::{Listener, NetError, Stack};
use uni_runtime::device::{Clock, Random};

use crate::config::{self, ClientOptions, ClockTime, Identity, ServerOptions};
use crate::{auth, TlsError, TlsFlow};

/// One SNI entry: a host name (or `*.domain`) and its certificate chain and key, PEM.
#[derive(Debug, Clone, Copy)]
pub struct SniFiles<'a> {
    /// The name clients ask for.
    pub name: &'a str,
    /// The chain, PEM.
    pub cert: &'a [u8],
    /// The key, PEM.
    pub key: &'a [u8],
}

/// The files and options of a `[devices.<name>] kind = "tls"` table, embedded by the
/// generated main.
#[derive(Debug, Clone, Copy, Default)]
pub struct Files<'a> {
    /// The default certificate chain (PEM), end entity first.
    pub cert: Option<&'a [u8]>,
    /// Its private key (PEM or DER; PKCS#8 or SEC1).
    pub key: Option<&'a [u8]>,
    /// Certificates chosen by SNI name.
    pub sni: &'a [SniFiles<'a>],
    /// ALPN protocols, in preference order.
    pub alpn: &'a [&'a str],
    /// CA certificates (PEM) that client certificates must chain to; set = client auth
    /// required.
    pub client_ca: Option<&'a [u8]>,
    /// Trust anchors (PEM) for outgoing connections ([`Tls::chain_of_trust`]).
    pub ca: Option<&'a [u8]>,
    /// Session resumption (tickets, session cache) on both sides.
    pub resumption: bool,
    /// The protocol versions, on both sides (`versions`; empty: every version compiled in).
    pub versions: &'a [&'static rustls::SupportedProtocolVersion],
    /// The cipher suites, key-exchange groups and signature schemes, on both sides
    /// (`cipher-suites`, `kx-groups`, `signature-schemes`; default: all compiled in).
    pub choice: uni_crypto::Choice,
    /// How the certificates and keys above are read.
    pub decode: Decode,
}

/// How a [`Files`]'s certificates and keys are read at boot. Which one the generated main
/// names decides which reader the image links.
#[derive(Debug, Clone, Copy)]
pub struct Decode {
    /// Certificates: a chain, end entity first, or trust anchors.
    pub certificates: fn(&[u8]) -> Result<Vec<CertificateDer<'static>>, String>,
    /// A private key.
    pub private_key: fn(&[u8]) -> Result<PrivateKeyDer<'static>, String>,
}

impl Decode {
    /// PEM (or one DER certificate; a DER PKCS#8 or SEC1 key): [`uni_crypto::pem`].
    pub const PEM: Decode = Decode {
        certificates: uni_crypto::pem::certificates,
        private_key: uni_crypto::pem::private_key,
    };
    /// What `uni configure` writes: DER certificates, one after another, and keys in
    /// uni-crypto's fixed PKCS#8 forms (load them with [`uni_crypto::sign::FIXED`]). Reading
    /// them splits DER headers and parses nothing else.
    pub const DER: Decode = Decode {
        certificates: uni_crypto::pem::der_certificates,
        private_key: uni_crypto::pem::fixed_private_key,
    };
}

impl Default for Decode {
    fn default() -> Decode {
        Decode::PEM
    }
}

/// TLS over a stack: a server configuration (if a certificate was given), trust anchors for
/// clients, the provider and its generator. Cloning shares the configuration (it is behind
/// `Arc`s), so several servers (HTTP on two ports, say) can use one device.
#[derive(Clone)]
pub struct Tls<S> {
    stack: S,
    rng: &'static Rng,
    provider: Arc<CryptoProvider>,
    time: Arc<dyn TimeProvider>,
    server: Option<Arc<ServerConfig>>,
    identity: Option<Identity>,
    roots: Vec<CertificateDer<'static>>,
    alpn: Vec<Vec<u8>>,
    resumption: bool,
    pins: Vec<Vec<u8>>,
    versions: Option<Vec<&'static rustls::SupportedProtocolVersion>>,
}

impl<S> core::fmt::Debug for Tls<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tls")
            .field("server", &self.server.is_some())
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl<S: Stack> Tls<S> {
    /// Builds the device: seeds a Fortuna generator from `random` (the platform's entropy),
    /// reads wall time from `clock`, and loads `files`.
    pub fn new(
        stack: S,
        random: impl Random + Send + 'static,
        clock: impl Clock + Clone + Send + Sync + 'static,
        files: &Files<'_>,
    ) -> Result<Tls<S>, TlsError> {
        let rng = Rng::from_device(random, clock.clone())
            .map_err(|e| TlsError::Config(e.to_string()))?
            .leak();
        let provider = Arc::new(uni_crypto::provider_with(rng, &files.choice));
        let versions = (!files.versions.is_empty()).then(|| files.versions.to_vec());
        let time: Arc<dyn TimeProvider> = Arc::new(ClockTime(clock));
        let identity = match (files.cert, files.key) {
            (Some(c), Some(k)) => Some(Identity::decode(c, k, &files.decode)?),
            (None, None) => None,
            _ => return Err(TlsError::Config("`cert` and `key` go together".into())),
        };
        uni_runtime::boot_milestone("tls: certificate and key loaded");
        let mut sni = Vec::new();
        for s in files.sni {
            sni.push((
                String::from(s.name),
                Identity::decode(s.cert, s.key, &files.decode)
                    .map_err(|e| TlsError::Config(alloc::format!("SNI name {}: {e}", s.name)))?,
            ));
        }
        let alpn: Vec<Vec<u8>> = files.alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
        let roots = |pem: &[u8]| {
            (files.decode.certificates)(pem)
                .map_err(|e| TlsError::Config(alloc::format!("CA certificates: {e}")))
        };
        let client_ca = files.client_ca.map(roots).transpose()?;
        let server = if identity.is_some() || !sni.is_empty() {
            let opts = ServerOptions {
                identity: identity.clone(),
                sni,
                alpn: alpn.clone(),
                client_ca,
                resumption: files.resumption,
                ticket_key_period: config::TICKET_KEY_PERIOD,
                versions: versions.clone(),
            };
            let built = opts.build(provider.clone(), rng, time.clone())?;
            uni_runtime::boot_milestone("tls: server config built");
            Some(built)
        } else {
            None
        };
        let roots = files.ca.map(roots).transpose()?.unwrap_or_default();
        Ok(Tls {
            stack,
            rng,
            provider,
            time,
            server,
            identity,
            roots,
            alpn,
            resumption: files.resumption,
            pins: Vec::new(),
            versions,
        })
    }

    /// Adds pinned server certificates: SHA-256 fingerprints as hex, `:` separators
    /// allowed (the `pins` key). A pin that is not 32 bytes of hex is refused, naming it.
    pub fn with_pins(mut self, pins: &[&str]) -> Result<Tls<S>, TlsError> {
        let hash = auth::FingerprintHash::Sha256;
        for (i, p) in pins.iter().enumerate() {
            let fp = auth::parse_fingerprint(p)
                .filter(|fp| fp.len() == hash.size())
                .ok_or_else(|| {
                    TlsError::Config(alloc::format!(
                        "pin {} (\"{p}\"): expected a SHA-256 fingerprint, 64 hex digits, `:` separators allowed",
                        i + 1
                    ))
                })?;
            self.pins.push(fp);
        }
        Ok(self)
    }

    /// The pins of the `pins` key.
    pub fn pins(&self) -> &[Vec<u8>] {
        &self.pins
    }

    /// [`auth::server_fingerprint`] with the device's `pins`: trust a server whose certificate
    /// has one of these SHA-256 fingerprints (and names the host).
    pub fn pinned(&self) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
        auth::server_fingerprint(
            auth::FingerprintHash::Sha256,
            self.pins.clone(),
            self.provider.clone(),
        )
    }

    /// The stack underneath.
    pub fn stack(&self) -> &S {
        &self.stack
    }

    /// The crypto provider (shared by every connection).
    pub fn provider(&self) -> Arc<CryptoProvider> {
        self.provider.clone()
    }

    /// The time source for certificate checks.
    pub fn time(&self) -> Arc<dyn TimeProvider> {
        self.time.clone()
    }

    /// The generator.
    pub fn rng(&self) -> &'static Rng {
        self.rng
    }

    /// The server configuration, if the device has a certificate.
    pub fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.server.clone()
    }

    /// Listens on `port`; accepted flows are TLS servers.
    pub async fn listen(&self, port: u16) -> Result<TlsListener<S::Listener>, TlsError> {
        let config = self.server.clone().ok_or_else(|| {
            TlsError::Config("this tls device has no `cert`/`key`, so it cannot serve".into())
        })?;
        Ok(TlsListener {
            inner: self.stack.listen(port).await?,
            config,
        })
    }

    /// [`auth::chain_of_trust`] with the device's `ca` and clock.
    pub fn chain_of_trust(&self) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
        auth::chain_of_trust(&self.roots, self.time.clone(), self.provider.clone())
    }

    /// A client configuration trusting what `authenticator` trusts, offering the device's
    /// ALPN, its certificate (for servers that ask), and resumption as configured. Reuse it
    /// across connections to resume sessions.
    pub fn client_config(
        &self,
        authenticator: Arc<dyn ServerCertVerifier>,
    ) -> Result<Arc<ClientConfig>, TlsError> {
        let mut o = ClientOptions::new(authenticator);
        o.alpn = self.alpn.clone();
        o.identity = self.identity.clone();
        o.resumption = self.resumption;
        o.versions = self.versions.clone();
        o.build(self.provider.clone(), self.time.clone())
    }

    /// Connects to `addr`, authenticating the server as `server_name`; returns after the
    /// handshake.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> Result<TlsFlow<S::Flow>, TlsError> {
        let flow = self.stack.connect(addr).await?;
        let mut tls = TlsFlow::client(flow, config, server_name)?;
        tls.handshake().await?;
        Ok(tls)
    }
}

/// A listener whose flows are TLS servers. [`accept`](TlsListener::accept) returns before
/// the handshake, so one slow client does not hold up the others: run
/// [`TlsFlow::handshake`] in the connection's task.
pub struct TlsListener<L> {
    inner: L,
    config: Arc<ServerConfig>,
}

impl<L: Listener> TlsListener<L> {
    /// The next connection, handshake not yet done.
    pub async fn accept(&self) -> Result<(TlsFlow<L::Flow>, SocketAddr), NetError> {
        let (flow, peer) = self.inner.accept().await?;
        let tls = TlsFlow::server(flow, self.config.clone())
            .map_err(|e| NetError::Other(e.to_string()))?;
        Ok((tls, peer))
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }
}
