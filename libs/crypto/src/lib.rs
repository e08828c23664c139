//! Cryptography for uni: a rustls [`CryptoProvider`] assembled from RustCrypto crates, and the
//! Fortuna CSPRNG that is its only source of randomness.
//!
//! ```ignore
//! let rng = uni_crypto::Rng::from_device(platform::Random::new(), platform::Clock::new())?.leak();
//! let provider = uni_crypto::provider(rng);
//! ```
//!
//! * **Cipher suites:** TLS 1.3 `AES_128_GCM_SHA256`, `AES_256_GCM_SHA384`,
//!   `CHACHA20_POLY1305_SHA256`; TLS 1.2 ECDHE-ECDSA and ECDHE-RSA with the same three AEADs.
//! * **Key exchange:** X25519, P-256, P-384 ([`kx`]).
//! * **Verification:** ECDSA P-256/P-384, Ed25519, RSA PKCS#1 v1.5 and PSS ([`verify`]).
//! * **Signing:** ECDSA P-256/P-384 and Ed25519; RSA private keys are refused ([`sign`]).
//! * **Randomness:** [`Rng`], Fortuna ([`fortuna`]) fed by pluggable [`EntropySource`]s.
//!
//! Each algorithm is a `static` or a small leaked value, so an image links only what its
//! provider names: [`provider_with`] takes a [`Choice`] (the `tls` device's `cipher-suites`,
//! `kx-groups` and `signature-schemes`). Cargo features drop whole families at compile time:
//! `tls12` (the TLS 1.2 suites, and rustls's TLS 1.2 state machine), `rsa` (RSA verification,
//! and the bignum code under it), `p384` (P-384 keys, key exchange and verification) and
//! `ed25519` (Ed25519 keys and verification). All are on by default.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod aead;
pub mod fortuna;
pub mod hash;
pub mod hmac;
pub mod kx;
pub mod pem;
mod rng;
pub mod sign;
pub mod verify;

use alloc::vec::Vec;

pub use fortuna::NotSeeded;
pub use rng::{DeviceSource, EntropySource, Rng};
pub use rustls;

#[cfg(feature = "tls12")]
use rustls::crypto::tls12::PrfUsingHmac;
use rustls::crypto::tls13::HkdfUsingHmac;
#[cfg(feature = "tls12")]
use rustls::crypto::KeyExchangeAlgorithm;
use rustls::crypto::{CipherSuiteCommon, CryptoProvider, SupportedKxGroup};
#[cfg(feature = "tls12")]
use rustls::SignatureScheme;
#[cfg(feature = "tls12")]
use rustls::Tls12CipherSuite;
use rustls::{CipherSuite, SupportedCipherSuite, Tls13CipherSuite};

/// TLS 1.3 `TLS_AES_128_GCM_SHA256`.
pub static TLS13_AES_128_GCM_SHA256: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: CipherSuite::TLS13_AES_128_GCM_SHA256,
        hash_provider: &hash::SHA256,
        confidentiality_limit: 1 << 24,
    },
    hkdf_provider: &HkdfUsingHmac(&hmac::HMAC_SHA256),
    aead_alg: &aead::AES_128_GCM,
    quic: None,
};

/// TLS 1.3 `TLS_AES_256_GCM_SHA384`.
pub static TLS13_AES_256_GCM_SHA384: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: CipherSuite::TLS13_AES_256_GCM_SHA384,
        hash_provider: &hash::SHA384,
        confidentiality_limit: 1 << 24,
    },
    hkdf_provider: &HkdfUsingHmac(&hmac::HMAC_SHA384),
    aead_alg: &aead::AES_256_GCM,
    quic: None,
};

/// TLS 1.3 `TLS_CHACHA20_POLY1305_SHA256`.
pub static TLS13_CHACHA20_POLY1305_SHA256: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        hash_provider: &hash::SHA256,
        confidentiality_limit: u64::MAX,
    },
    hkdf_provider: &HkdfUsingHmac(&hmac::HMAC_SHA256),
    aead_alg: &aead::CHACHA20_POLY1305,
    quic: None,
};

#[cfg(feature = "tls12")]
static ECDSA_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP256_SHA256,
];
#[cfg(feature = "tls12")]
static RSA_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA256,
];

macro_rules! tls12_suite {
    ($(#[$m:meta])* $name:ident, $suite:ident, $hash:expr, $hmac:expr, $aead:expr, $sign:expr) => {
        $(#[$m])*
        #[cfg(feature = "tls12")]
        pub static $name: Tls12CipherSuite = Tls12CipherSuite {
            common: CipherSuiteCommon { suite: CipherSuite::$suite, hash_provider: $hash, confidentiality_limit: 1 << 24 },
            prf_provider: &PrfUsingHmac($hmac),
            kx: KeyExchangeAlgorithm::ECDHE,
            sign: $sign,
            aead_alg: $aead,
        };
    };
}

tls12_suite!(
    /// TLS 1.2 `ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    TLS12_ECDHE_ECDSA_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, &hash::SHA256, &hmac::HMAC_SHA256, &aead::AES_128_GCM, ECDSA_SCHEMES);
tls12_suite!(
    /// TLS 1.2 `ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`.
    TLS12_ECDHE_ECDSA_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, &hash::SHA384, &hmac::HMAC_SHA384, &aead::AES_256_GCM, ECDSA_SCHEMES);
tls12_suite!(
    /// TLS 1.2 `ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256`.
    TLS12_ECDHE_ECDSA_CHACHA20_POLY1305_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, &hash::SHA256, &hmac::HMAC_SHA256, &aead::CHACHA20_POLY1305, ECDSA_SCHEMES);
tls12_suite!(
    /// TLS 1.2 `ECDHE_RSA_WITH_AES_128_GCM_SHA256` (the peer signs with RSA; we only verify).
    TLS12_ECDHE_RSA_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, &hash::SHA256, &hmac::HMAC_SHA256, &aead::AES_128_GCM, RSA_SCHEMES);
tls12_suite!(
    /// TLS 1.2 `ECDHE_RSA_WITH_AES_256_GCM_SHA384`.
    TLS12_ECDHE_RSA_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, &hash::SHA384, &hmac::HMAC_SHA384, &aead::AES_256_GCM, RSA_SCHEMES);
tls12_suite!(
    /// TLS 1.2 `ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256`.
    TLS12_ECDHE_RSA_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, &hash::SHA256, &hmac::HMAC_SHA256, &aead::CHACHA20_POLY1305, RSA_SCHEMES);

/// Every cipher suite compiled in, in preference order (TLS 1.3 first; AES-GCM before
/// ChaCha20).
pub static ALL_CIPHER_SUITES: &[SupportedCipherSuite] = &[
    SupportedCipherSuite::Tls13(&TLS13_AES_128_GCM_SHA256),
    SupportedCipherSuite::Tls13(&TLS13_AES_256_GCM_SHA384),
    SupportedCipherSuite::Tls13(&TLS13_CHACHA20_POLY1305_SHA256),
    #[cfg(feature = "tls12")]
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_ECDSA_AES_128_GCM_SHA256),
    #[cfg(feature = "tls12")]
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_ECDSA_AES_256_GCM_SHA384),
    #[cfg(feature = "tls12")]
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_ECDSA_CHACHA20_POLY1305_SHA256),
    #[cfg(feature = "tls12")]
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_RSA_AES_128_GCM_SHA256),
    #[cfg(feature = "tls12")]
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_RSA_AES_256_GCM_SHA384),
    #[cfg(feature = "tls12")]
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_RSA_CHACHA20_POLY1305_SHA256),
];

/// Every key-exchange group compiled in, in preference order: X25519, P-256, P-384.
pub static ALL_KX_GROUPS: &[kx::KxGroupFn] = &[
    kx::x25519,
    kx::p256,
    #[cfg(feature = "p384")]
    kx::p384,
];

/// What a provider offers: the cipher suites, key-exchange groups and signature schemes, each
/// in preference order. The generated main of a unikernel names the ones its `tls` device's
/// keys chose, so the image links only those.
#[derive(Debug, Clone, Copy)]
pub struct Choice {
    /// Cipher suites (TLS 1.3 and, with the `tls12` feature, TLS 1.2).
    pub cipher_suites: &'static [SupportedCipherSuite],
    /// Key-exchange groups, by constructor ([`kx::x25519`], [`kx::p256`], [`kx::p384`]).
    pub kx_groups: &'static [kx::KxGroupFn],
    /// Signature schemes a peer may sign with (handshakes and certificates), each with its
    /// verification algorithms ([`schemes`]); the local certificates' keys must sign with one
    /// of them too.
    pub signature_schemes: &'static [verify::Scheme],
    /// How private keys are loaded: [`sign::KEYS`] (PKCS#8 or SEC1 DER) or [`sign::FIXED`]
    /// (the fixed forms `uni configure` writes, without an ASN.1 parser).
    pub keys: &'static dyn rustls::crypto::KeyProvider,
}

impl Choice {
    /// Everything compiled in.
    pub const ALL: Choice = Choice {
        cipher_suites: ALL_CIPHER_SUITES,
        kx_groups: ALL_KX_GROUPS,
        signature_schemes: schemes::ALL,
        keys: &sign::KEYS,
    };
}

impl Default for Choice {
    fn default() -> Choice {
        Choice::ALL
    }
}

/// The key-exchange groups X25519, P-256 and P-384 (those compiled in, in that preference
/// order), drawing their ephemeral secrets from `rng`.
pub fn kx_groups(rng: &'static Rng) -> Vec<&'static dyn SupportedKxGroup> {
    ALL_KX_GROUPS.iter().map(|g| g(rng)).collect()
}

/// The provider: every suite, group and algorithm compiled in, with `rng` as its only
/// randomness.
///
/// Build it once per generator (it leaks three small key-exchange values to make them
/// `'static`).
pub fn provider(rng: &'static Rng) -> CryptoProvider {
    provider_with(rng, &Choice::ALL)
}

/// The provider offering only `choice`, with `rng` as its only randomness. Build it once per
/// generator (it leaks its key-exchange values and verification lists).
pub fn provider_with(rng: &'static Rng, choice: &Choice) -> CryptoProvider {
    CryptoProvider {
        cipher_suites: choice.cipher_suites.to_vec(),
        kx_groups: choice.kx_groups.iter().map(|g| g(rng)).collect(),
        signature_verification_algorithms: verify::for_schemes(choice.signature_schemes),
        secure_random: rng,
        key_provider: choice.keys,
    }
}

/// The cipher suites as [`SupportedCipherSuite`]s, by the names rustls gives them (and the
/// `tls` device's `cipher-suites` key takes).
pub mod suites {
    use rustls::SupportedCipherSuite;

    /// TLS 1.3 `TLS_AES_128_GCM_SHA256`.
    pub const TLS13_AES_128_GCM_SHA256: SupportedCipherSuite =
        SupportedCipherSuite::Tls13(&super::TLS13_AES_128_GCM_SHA256);
    /// TLS 1.3 `TLS_AES_256_GCM_SHA384`.
    pub const TLS13_AES_256_GCM_SHA384: SupportedCipherSuite =
        SupportedCipherSuite::Tls13(&super::TLS13_AES_256_GCM_SHA384);
    /// TLS 1.3 `TLS_CHACHA20_POLY1305_SHA256`.
    pub const TLS13_CHACHA20_POLY1305_SHA256: SupportedCipherSuite =
        SupportedCipherSuite::Tls13(&super::TLS13_CHACHA20_POLY1305_SHA256);
    /// TLS 1.2 `ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    #[cfg(feature = "tls12")]
    pub const TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: SupportedCipherSuite =
        SupportedCipherSuite::Tls12(&super::TLS12_ECDHE_ECDSA_AES_128_GCM_SHA256);
    /// TLS 1.2 `ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`.
    #[cfg(feature = "tls12")]
    pub const TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: SupportedCipherSuite =
        SupportedCipherSuite::Tls12(&super::TLS12_ECDHE_ECDSA_AES_256_GCM_SHA384);
    /// TLS 1.2 `ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256`.
    #[cfg(feature = "tls12")]
    pub const TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: SupportedCipherSuite =
        SupportedCipherSuite::Tls12(&super::TLS12_ECDHE_ECDSA_CHACHA20_POLY1305_SHA256);
    /// TLS 1.2 `ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
    #[cfg(feature = "tls12")]
    pub const TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: SupportedCipherSuite =
        SupportedCipherSuite::Tls12(&super::TLS12_ECDHE_RSA_AES_128_GCM_SHA256);
    /// TLS 1.2 `ECDHE_RSA_WITH_AES_256_GCM_SHA384`.
    #[cfg(feature = "tls12")]
    pub const TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: SupportedCipherSuite =
        SupportedCipherSuite::Tls12(&super::TLS12_ECDHE_RSA_AES_256_GCM_SHA384);
    /// TLS 1.2 `ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256`.
    #[cfg(feature = "tls12")]
    pub const TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: SupportedCipherSuite =
        SupportedCipherSuite::Tls12(&super::TLS12_ECDHE_RSA_CHACHA20_POLY1305_SHA256);
}

/// The signature schemes as [`verify::Scheme`]s, by the names rustls gives them (and the `tls`
/// device's `signature-schemes` key takes), each with the verification algorithms compiled in
/// for it. A provider references only the algorithms of the schemes it is given.
pub mod schemes {
    use crate::verify::{self, Scheme};
    use rustls::SignatureScheme;

    /// ECDSA P-384 with SHA-384 (and certificates signed so by a P-256 key).
    pub const ECDSA_NISTP384_SHA384: Scheme = Scheme {
        scheme: SignatureScheme::ECDSA_NISTP384_SHA384,
        algorithms: &[
            #[cfg(feature = "p384")]
            &verify::ECDSA_P384_SHA384,
            &verify::ECDSA_P256_SHA384,
        ],
    };
    /// ECDSA P-256 with SHA-256 (and certificates signed so by a P-384 key).
    pub const ECDSA_NISTP256_SHA256: Scheme = Scheme {
        scheme: SignatureScheme::ECDSA_NISTP256_SHA256,
        algorithms: &[
            &verify::ECDSA_P256_SHA256,
            #[cfg(feature = "p384")]
            &verify::ECDSA_P384_SHA256,
        ],
    };
    /// Ed25519.
    #[cfg(feature = "ed25519")]
    pub const ED25519: Scheme = Scheme {
        scheme: SignatureScheme::ED25519,
        algorithms: &[&verify::ED25519],
    };
    /// RSA-PSS with SHA-512.
    #[cfg(feature = "rsa")]
    pub const RSA_PSS_SHA512: Scheme = Scheme {
        scheme: SignatureScheme::RSA_PSS_SHA512,
        algorithms: &[&verify::RSA_PSS_SHA512],
    };
    /// RSA-PSS with SHA-384.
    #[cfg(feature = "rsa")]
    pub const RSA_PSS_SHA384: Scheme = Scheme {
        scheme: SignatureScheme::RSA_PSS_SHA384,
        algorithms: &[&verify::RSA_PSS_SHA384],
    };
    /// RSA-PSS with SHA-256.
    #[cfg(feature = "rsa")]
    pub const RSA_PSS_SHA256: Scheme = Scheme {
        scheme: SignatureScheme::RSA_PSS_SHA256,
        algorithms: &[&verify::RSA_PSS_SHA256],
    };
    /// RSA PKCS#1 v1.5 with SHA-512.
    #[cfg(feature = "rsa")]
    pub const RSA_PKCS1_SHA512: Scheme = Scheme {
        scheme: SignatureScheme::RSA_PKCS1_SHA512,
        algorithms: &[&verify::RSA_PKCS1_SHA512],
    };
    /// RSA PKCS#1 v1.5 with SHA-384.
    #[cfg(feature = "rsa")]
    pub const RSA_PKCS1_SHA384: Scheme = Scheme {
        scheme: SignatureScheme::RSA_PKCS1_SHA384,
        algorithms: &[&verify::RSA_PKCS1_SHA384],
    };
    /// RSA PKCS#1 v1.5 with SHA-256.
    #[cfg(feature = "rsa")]
    pub const RSA_PKCS1_SHA256: Scheme = Scheme {
        scheme: SignatureScheme::RSA_PKCS1_SHA256,
        algorithms: &[&verify::RSA_PKCS1_SHA256],
    };

    /// Every scheme compiled in, in [`verify::ALGORITHMS`]'s order.
    pub const ALL: &[Scheme] = &[
        ECDSA_NISTP384_SHA384,
        ECDSA_NISTP256_SHA256,
        #[cfg(feature = "ed25519")]
        ED25519,
        #[cfg(feature = "rsa")]
        RSA_PSS_SHA512,
        #[cfg(feature = "rsa")]
        RSA_PSS_SHA384,
        #[cfg(feature = "rsa")]
        RSA_PSS_SHA256,
        #[cfg(feature = "rsa")]
        RSA_PKCS1_SHA512,
        #[cfg(feature = "rsa")]
        RSA_PKCS1_SHA384,
        #[cfg(feature = "rsa")]
        RSA_PKCS1_SHA256,
    ];
}
