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
//! provider names.
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

use alloc::boxed::Box;
use alloc::vec::Vec;

pub use fortuna::NotSeeded;
pub use rng::{DeviceSource, EntropySource, Rng};
pub use rustls;

use rustls::crypto::tls12::PrfUsingHmac;
use rustls::crypto::tls13::HkdfUsingHmac;
use rustls::crypto::{CipherSuiteCommon, CryptoProvider, KeyExchangeAlgorithm, SupportedKxGroup};
use rustls::{
    CipherSuite, SignatureScheme, SupportedCipherSuite, Tls12CipherSuite, Tls13CipherSuite,
};

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

static ECDSA_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP256_SHA256,
];
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

/// Every cipher suite, in preference order (TLS 1.3 first; AES-GCM before ChaCha20).
pub static ALL_CIPHER_SUITES: &[SupportedCipherSuite] = &[
    SupportedCipherSuite::Tls13(&TLS13_AES_128_GCM_SHA256),
    SupportedCipherSuite::Tls13(&TLS13_AES_256_GCM_SHA384),
    SupportedCipherSuite::Tls13(&TLS13_CHACHA20_POLY1305_SHA256),
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_ECDSA_AES_128_GCM_SHA256),
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_ECDSA_AES_256_GCM_SHA384),
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_ECDSA_CHACHA20_POLY1305_SHA256),
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_RSA_AES_128_GCM_SHA256),
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_RSA_AES_256_GCM_SHA384),
    SupportedCipherSuite::Tls12(&TLS12_ECDHE_RSA_CHACHA20_POLY1305_SHA256),
];

/// The key-exchange groups X25519, P-256 and P-384 (in that preference order), drawing their
/// ephemeral secrets from `rng`.
pub fn kx_groups(rng: &'static Rng) -> Vec<&'static dyn SupportedKxGroup> {
    [kx::Curve::X25519, kx::Curve::P256, kx::Curve::P384]
        .into_iter()
        .map(|c| Box::leak(Box::new(kx::KxGroup::new(c, rng))) as &'static dyn SupportedKxGroup)
        .collect()
}

/// The provider: every suite, group and algorithm above, with `rng` as its only randomness.
///
/// Build it once per generator (it leaks three small key-exchange values to make them
/// `'static`).
pub fn provider(rng: &'static Rng) -> CryptoProvider {
    CryptoProvider {
        cipher_suites: ALL_CIPHER_SUITES.to_vec(),
        kx_groups: kx_groups(rng),
        signature_verification_algorithms: verify::ALGORITHMS,
        secure_random: rng,
        key_provider: &sign::KEYS,
    }
}
