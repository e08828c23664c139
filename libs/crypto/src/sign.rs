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
    #[cfg(feature = "p384")]
    P384(p384::ecdsa::SigningKey),
    /// Ed25519.
    #[cfg(feature = "ed25519")]
    Ed25519(ed25519_dalek::SigningKey),
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Key::P256(_) => "Key::P256",
            #[cfg(feature = "p384")]
            Key::P384(_) => "Key::P384",
            #[cfg(feature = "ed25519")]
            Key::Ed25519(_) => "Key::Ed25519",
        })
    }
}

/// The key types this build loads (P-384 needs the `p384` feature, Ed25519 `ed25519`).
const SUPPORTED: &str = if cfg!(all(feature = "p384", feature = "ed25519")) {
    "ECDSA P-256, ECDSA P-384, Ed25519"
} else if cfg!(feature = "p384") {
    "ECDSA P-256, ECDSA P-384; Ed25519 is not in this build"
} else if cfg!(feature = "ed25519") {
    "ECDSA P-256, Ed25519; P-384 is not in this build"
} else {
    "ECDSA P-256; P-384 and Ed25519 are not in this build"
};

/// Loads a PKCS#8 or SEC1 private key.
pub fn load(key: &PrivateKeyDer<'_>) -> Result<Key, Error> {
    use pkcs8::DecodePrivateKey;
    match key {
        PrivateKeyDer::Pkcs8(k) => {
            let der = k.secret_pkcs8_der();
            if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
                return Ok(Key::P256(k));
            }
            #[cfg(feature = "p384")]
            if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
                return Ok(Key::P384(k));
            }
            #[cfg(feature = "ed25519")]
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
                "unsupported private key algorithm {} (supported: {SUPPORTED})",
                info.algorithm.oid
            )))
        }
        PrivateKeyDer::Sec1(k) => {
            let der = k.secret_sec1_der();
            if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
                return Ok(Key::P256(k.into()));
            }
            #[cfg(feature = "p384")]
            if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
                return Ok(Key::P384(k.into()));
            }
            Err(Error::General(format!(
                "unsupported SEC1 private key (supported: {SUPPORTED})"
            )))
        }
        PrivateKeyDer::Pkcs1(_) => Err(Error::General(RSA_REFUSED.into())),
        _ => Err(Error::General("unsupported private key format".into())),
    }
}

/// The fixed PKCS#8 form `uni configure` writes a P-256 key in (RFC 5208 around an RFC 5915
/// `ECPrivateKey` holding only the scalar): these bytes, then the 32-byte scalar.
pub const P256_PKCS8_PREFIX: [u8; 35] = [
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
    0x01, 0x04, 0x20,
];
/// The fixed PKCS#8 form of a P-384 key: these bytes, then the 48-byte scalar.
pub const P384_PKCS8_PREFIX: [u8; 32] = [
    0x30, 0x4e, 0x02, 0x01, 0x00, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x04, 0x37, 0x30, 0x35, 0x02, 0x01, 0x01, 0x04, 0x30,
];
/// The fixed PKCS#8 form of an Ed25519 key (RFC 8410): these bytes, then the 32-byte seed.
pub const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The key provider for keys `uni configure` decoded: only the fixed PKCS#8 forms above, read
/// by comparing bytes, so an image that uses it links no ASN.1, PKCS#8, SEC1 or PEM parser.
#[derive(Debug)]
pub struct Fixed;

/// The key provider for keys in the fixed forms.
pub static FIXED: Fixed = Fixed;

impl KeyProvider for Fixed {
    fn load_private_key(
        &self,
        key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, Error> {
        load_fixed(&key_der).map(|k| Arc::new(k) as Arc<dyn SigningKey>)
    }
}

/// Loads a key in one of the fixed PKCS#8 forms ([`P256_PKCS8_PREFIX`] and the others).
pub fn load_fixed(key: &PrivateKeyDer<'_>) -> Result<Key, Error> {
    let bad = || {
        Error::General(format!(
            "private key: not in the fixed PKCS#8 form `uni configure` writes (supported: {SUPPORTED})"
        ))
    };
    let PrivateKeyDer::Pkcs8(k) = key else {
        return Err(bad());
    };
    let der = k.secret_pkcs8_der();
    if let Some(s) = der.strip_prefix(&P256_PKCS8_PREFIX[..]) {
        return p256::ecdsa::SigningKey::from_slice(s)
            .ok()
            .filter(|_| s.len() == 32)
            .map(Key::P256)
            .ok_or_else(bad);
    }
    #[cfg(feature = "p384")]
    if let Some(s) = der.strip_prefix(&P384_PKCS8_PREFIX[..]) {
        return p384::ecdsa::SigningKey::from_slice(s)
            .ok()
            .filter(|_| s.len() == 48)
            .map(Key::P384)
            .ok_or_else(bad);
    }
    #[cfg(feature = "ed25519")]
    if let Some(s) = der.strip_prefix(&ED25519_PKCS8_PREFIX[..]) {
        let seed: &[u8; 32] = s.try_into().map_err(|_| bad())?;
        return Ok(Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed)));
    }
    Err(bad())
}

impl Key {
    fn scheme(&self) -> SignatureScheme {
        match self {
            Key::P256(_) => SignatureScheme::ECDSA_NISTP256_SHA256,
            #[cfg(feature = "p384")]
            Key::P384(_) => SignatureScheme::ECDSA_NISTP384_SHA384,
            #[cfg(feature = "ed25519")]
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
            #[cfg(feature = "p384")]
            Key::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
            #[cfg(feature = "ed25519")]
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
            Key::P256(_) => SignatureAlgorithm::ECDSA,
            #[cfg(feature = "p384")]
            Key::P384(_) => SignatureAlgorithm::ECDSA,
            #[cfg(feature = "ed25519")]
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
