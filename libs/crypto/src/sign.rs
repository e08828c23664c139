//! Signing keys: ECDSA (P-256 with SHA-256, P-384 with SHA-384; RFC 6979 deterministic nonces)
//! and Ed25519, loaded from PKCS#8 or SEC1 DER.
//!
//! RSA private keys are refused: the only pure-Rust RSA (the `rsa` crate) is not constant-time
//! (RUSTSEC-2023-0071), and a server's signing key is exactly what a timing attack targets.

use alloc::boxed::Box;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;

use pki_types::PrivateKeyDer;
use rustls::crypto::KeyProvider;
use rustls::sign::{Signer, SigningKey};
use rustls::{Error, SignatureAlgorithm, SignatureScheme};

/// The key provider: ECDSA and Ed25519 keys.
#[derive(Debug)]
pub struct Keys;

/// The key provider.
pub static KEYS: Keys = Keys;

/// Why a private key was refused.
pub const RSA_REFUSED: &str = "RSA private keys are not supported: uni-crypto signs only with ECDSA (P-256, P-384) or Ed25519 keys, \
because no constant-time pure-Rust RSA implementation exists; generate an EC key, e.g. `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`";

impl KeyProvider for Keys {
    fn load_private_key(
        &self,
        key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, Error> {
        load(&key_der).map(|k| Arc::new(k) as Arc<dyn SigningKey>)
    }
}

/// A loaded signing key.
#[derive(Clone)]
pub enum Key {
    /// ECDSA P-256 with SHA-256.
    P256(p256::ecdsa::SigningKey),
    /// ECDSA P-384 with SHA-384.
    P384(p384::ecdsa::SigningKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Key::P256(_) => "Key::P256",
            Key::P384(_) => "Key::P384",
            Key::Ed25519(_) => "Key::Ed25519",
        })
    }
}

/// Loads a PKCS#8 or SEC1 private key.
pub fn load(key: &PrivateKeyDer<'_>) -> Result<Key, Error> {
    use pkcs8::DecodePrivateKey;
    match key {
        PrivateKeyDer::Pkcs8(k) => {
            let der = k.secret_pkcs8_der();
            if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
                return Ok(Key::P256(k));
            }
            if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
                return Ok(Key::P384(k));
            }
            if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
                return Ok(Key::Ed25519(k));
            }
            let info = pkcs8::PrivateKeyInfo::try_from(der)
                .map_err(|e| Error::General(format!("malformed PKCS#8 private key: {e}")))?;
            if info.algorithm.oid == pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1")
                || info.algorithm.oid
                    == pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10")
            {
                return Err(Error::General(RSA_REFUSED.into()));
            }
            Err(Error::General(format!(
                "unsupported private key algorithm {} (supported: ECDSA P-256, ECDSA P-384, Ed25519)",
                info.algorithm.oid
            )))
        }
        PrivateKeyDer::Sec1(k) => {
            let der = k.secret_sec1_der();
            if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
                return Ok(Key::P256(k.into()));
            }
            if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
                return Ok(Key::P384(k.into()));
            }
            Err(Error::General(
                "unsupported SEC1 private key (supported curves: P-256, P-384)".into(),
            ))
        }
        PrivateKeyDer::Pkcs1(_) => Err(Error::General(RSA_REFUSED.into())),
        _ => Err(Error::General("unsupported private key format".into())),
    }
}

impl Key {
    fn scheme(&self) -> SignatureScheme {
        match self {
            Key::P256(_) => SignatureScheme::ECDSA_NISTP256_SHA256,
            Key::P384(_) => SignatureScheme::ECDSA_NISTP384_SHA384,
            Key::Ed25519(_) => SignatureScheme::ED25519,
        }
    }

    /// Signs `message` with the key's one scheme: DER-encoded ECDSA, or a raw Ed25519 signature.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use signature::Signer as _;
        match self {
            Key::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
            Key::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
            Key::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }
}

impl SigningKey for Key {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&self.scheme())
            .then(|| Box::new(self.clone()) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            Key::P256(_) | Key::P384(_) => SignatureAlgorithm::ECDSA,
            Key::Ed25519(_) => SignatureAlgorithm::ED25519,
        }
    }
}

impl Signer for Key {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(Key::sign(self, message))
    }

    fn scheme(&self) -> SignatureScheme {
        Key::scheme(self)
    }
}
