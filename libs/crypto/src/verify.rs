//! Signature verification for certificates and handshake signatures: ECDSA over P-256 and
//! P-384 (each with SHA-256 and SHA-384), Ed25519, RSA PKCS#1 v1.5 and RSA-PSS with SHA-256,
//! SHA-384 and SHA-512 (2048- to 8192-bit moduli, as webpki requires).
//!
//! P-384 needs the `p384` feature, Ed25519 `ed25519`, RSA `rsa`: without them, their code is
//! not compiled, and [`ALGORITHMS`] lists only the others. [`for_schemes`] narrows the list
//! further to a configuration's signature schemes.

use pki_types::{alg_id, AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::SignatureScheme;
#[cfg(any(feature = "ed25519", feature = "rsa"))]
use signature::Verifier;

use alloc::vec::Vec;

/// One verification algorithm.
#[derive(Debug)]
pub enum Alg {
    /// ECDSA on P-256 with the given hash.
    EcdsaP256(Hash),
    /// ECDSA on P-384 with the given hash.
    #[cfg(feature = "p384")]
    EcdsaP384(Hash),
    /// Ed25519.
    #[cfg(feature = "ed25519")]
    Ed25519,
    /// RSA PKCS#1 v1.5.
    #[cfg(feature = "rsa")]
    RsaPkcs1(Hash),
    /// RSA-PSS (MGF1 with the same hash, salt length = hash length).
    #[cfg(feature = "rsa")]
    RsaPss(Hash),
}

/// A hash for a signature algorithm.
#[derive(Debug, Clone, Copy)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// `ECDSA_P256_SHA256`.
pub static ECDSA_P256_SHA256: Alg = Alg::EcdsaP256(Hash::Sha256);
/// `ECDSA_P256_SHA384`.
pub static ECDSA_P256_SHA384: Alg = Alg::EcdsaP256(Hash::Sha384);
/// `ECDSA_P384_SHA256`.
#[cfg(feature = "p384")]
pub static ECDSA_P384_SHA256: Alg = Alg::EcdsaP384(Hash::Sha256);
/// `ECDSA_P384_SHA384`.
#[cfg(feature = "p384")]
pub static ECDSA_P384_SHA384: Alg = Alg::EcdsaP384(Hash::Sha384);
/// `ED25519`.
#[cfg(feature = "ed25519")]
pub static ED25519: Alg = Alg::Ed25519;
/// `RSA_PKCS1_SHA256`.
#[cfg(feature = "rsa")]
pub static RSA_PKCS1_SHA256: Alg = Alg::RsaPkcs1(Hash::Sha256);
/// `RSA_PKCS1_SHA384`.
#[cfg(feature = "rsa")]
pub static RSA_PKCS1_SHA384: Alg = Alg::RsaPkcs1(Hash::Sha384);
/// `RSA_PKCS1_SHA512`.
#[cfg(feature = "rsa")]
pub static RSA_PKCS1_SHA512: Alg = Alg::RsaPkcs1(Hash::Sha512);
/// `RSA_PSS_SHA256`.
#[cfg(feature = "rsa")]
pub static RSA_PSS_SHA256: Alg = Alg::RsaPss(Hash::Sha256);
/// `RSA_PSS_SHA384`.
#[cfg(feature = "rsa")]
pub static RSA_PSS_SHA384: Alg = Alg::RsaPss(Hash::Sha384);
/// `RSA_PSS_SHA512`.
#[cfg(feature = "rsa")]
pub static RSA_PSS_SHA512: Alg = Alg::RsaPss(Hash::Sha512);

/// Every algorithm compiled in, and the TLS signature schemes they serve.
pub static ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        &ECDSA_P256_SHA256,
        &ECDSA_P256_SHA384,
        #[cfg(feature = "p384")]
        &ECDSA_P384_SHA256,
        #[cfg(feature = "p384")]
        &ECDSA_P384_SHA384,
        #[cfg(feature = "ed25519")]
        &ED25519,
        #[cfg(feature = "rsa")]
        &RSA_PKCS1_SHA256,
        #[cfg(feature = "rsa")]
        &RSA_PKCS1_SHA384,
        #[cfg(feature = "rsa")]
        &RSA_PKCS1_SHA512,
        #[cfg(feature = "rsa")]
        &RSA_PSS_SHA256,
        #[cfg(feature = "rsa")]
        &RSA_PSS_SHA384,
        #[cfg(feature = "rsa")]
        &RSA_PSS_SHA512,
    ],
    mapping: &[
        #[cfg(feature = "p384")]
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[&ECDSA_P384_SHA384, &ECDSA_P256_SHA384],
        ),
        #[cfg(not(feature = "p384"))]
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[&ECDSA_P256_SHA384],
        ),
        #[cfg(feature = "p384")]
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[&ECDSA_P256_SHA256, &ECDSA_P384_SHA256],
        ),
        #[cfg(not(feature = "p384"))]
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[&ECDSA_P256_SHA256],
        ),
        #[cfg(feature = "ed25519")]
        (SignatureScheme::ED25519, &[&ED25519]),
        #[cfg(feature = "rsa")]
        (SignatureScheme::RSA_PSS_SHA512, &[&RSA_PSS_SHA512]),
        #[cfg(feature = "rsa")]
        (SignatureScheme::RSA_PSS_SHA384, &[&RSA_PSS_SHA384]),
        #[cfg(feature = "rsa")]
        (SignatureScheme::RSA_PSS_SHA256, &[&RSA_PSS_SHA256]),
        #[cfg(feature = "rsa")]
        (SignatureScheme::RSA_PKCS1_SHA512, &[&RSA_PKCS1_SHA512]),
        #[cfg(feature = "rsa")]
        (SignatureScheme::RSA_PKCS1_SHA384, &[&RSA_PKCS1_SHA384]),
        #[cfg(feature = "rsa")]
        (SignatureScheme::RSA_PKCS1_SHA256, &[&RSA_PKCS1_SHA256]),
    ],
};

/// [`ALGORITHMS`] narrowed to `schemes` (the order of [`ALGORITHMS`] is kept): what a peer may
/// sign handshakes with, and the algorithms certificates may be signed with. Schemes this build
/// has no algorithm for are left out. Leaks two small lists (once per provider).
pub fn for_schemes(schemes: &[SignatureScheme]) -> WebPkiSupportedAlgorithms {
    if ALGORITHMS.mapping.iter().all(|(s, _)| schemes.contains(s)) {
        return ALGORITHMS;
    }
    let mapping: Vec<_> = ALGORITHMS
        .mapping
        .iter()
        .filter(|(s, _)| schemes.contains(s))
        .copied()
        .collect();
    let all: Vec<&'static dyn SignatureVerificationAlgorithm> = ALGORITHMS
        .all
        .iter()
        .filter(|a| {
            mapping
                .iter()
                .any(|(_, algs)| algs.iter().any(|b| same(**a, *b)))
        })
        .copied()
        .collect();
    WebPkiSupportedAlgorithms {
        all: Vec::leak(all),
        mapping: Vec::leak(mapping),
    }
}

/// Whether two algorithm references are the same static.
fn same(a: &dyn SignatureVerificationAlgorithm, b: &dyn SignatureVerificationAlgorithm) -> bool {
    core::ptr::addr_eq(a, b)
}

fn prehash(h: Hash, message: &[u8]) -> ([u8; 64], usize) {
    use sha2::Digest;
    let mut out = [0u8; 64];
    let n = match h {
        Hash::Sha256 => {
            out[..32].copy_from_slice(&sha2::Sha256::digest(message));
            32
        }
        Hash::Sha384 => {
            out[..48].copy_from_slice(&sha2::Sha384::digest(message));
            48
        }
        Hash::Sha512 => {
            out.copy_from_slice(&sha2::Sha512::digest(message));
            64
        }
    };
    (out, n)
}

#[cfg(feature = "rsa")]
fn rsa_key(public_key: &[u8]) -> Result<rsa::RsaPublicKey, InvalidSignature> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPublicKey::from_pkcs1_der(public_key).map_err(|_| InvalidSignature)?;
    let bits = key.n().bits();
    if !(2048..=8192).contains(&bits) {
        return Err(InvalidSignature);
    }
    Ok(key)
}

impl SignatureVerificationAlgorithm for Alg {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use signature::hazmat::PrehashVerifier;
        match *self {
            Alg::EcdsaP256(h) => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| InvalidSignature)?;
                let sig =
                    p256::ecdsa::DerSignature::try_from(signature).map_err(|_| InvalidSignature)?;
                let (d, n) = prehash(h, message);
                key.verify_prehash(&d[..n], &sig)
                    .map_err(|_| InvalidSignature)
            }
            #[cfg(feature = "p384")]
            Alg::EcdsaP384(h) => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| InvalidSignature)?;
                let sig =
                    p384::ecdsa::DerSignature::try_from(signature).map_err(|_| InvalidSignature)?;
                let (d, n) = prehash(h, message);
                key.verify_prehash(&d[..n], &sig)
                    .map_err(|_| InvalidSignature)
            }
            #[cfg(feature = "ed25519")]
            Alg::Ed25519 => {
                let key: [u8; 32] = public_key.try_into().map_err(|_| InvalidSignature)?;
                let key =
                    ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| InvalidSignature)?;
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| InvalidSignature)?;
                key.verify(message, &sig).map_err(|_| InvalidSignature)
            }
            #[cfg(feature = "rsa")]
            Alg::RsaPkcs1(h) => {
                let key = rsa_key(public_key)?;
                let sig =
                    rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| InvalidSignature)?;
                match h {
                    Hash::Sha256 => {
                        rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key).verify(message, &sig)
                    }
                    Hash::Sha384 => {
                        rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(key).verify(message, &sig)
                    }
                    Hash::Sha512 => {
                        rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(key).verify(message, &sig)
                    }
                }
                .map_err(|_| InvalidSignature)
            }
            #[cfg(feature = "rsa")]
            Alg::RsaPss(h) => {
                let key = rsa_key(public_key)?;
                let sig = rsa::pss::Signature::try_from(signature).map_err(|_| InvalidSignature)?;
                match h {
                    Hash::Sha256 => {
                        rsa::pss::VerifyingKey::<sha2::Sha256>::new(key).verify(message, &sig)
                    }
                    Hash::Sha384 => {
                        rsa::pss::VerifyingKey::<sha2::Sha384>::new(key).verify(message, &sig)
                    }
                    Hash::Sha512 => {
                        rsa::pss::VerifyingKey::<sha2::Sha512>::new(key).verify(message, &sig)
                    }
                }
                .map_err(|_| InvalidSignature)
            }
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        match self {
            Alg::EcdsaP256(_) => alg_id::ECDSA_P256,
            #[cfg(feature = "p384")]
            Alg::EcdsaP384(_) => alg_id::ECDSA_P384,
            #[cfg(feature = "ed25519")]
            Alg::Ed25519 => alg_id::ED25519,
            #[cfg(feature = "rsa")]
            Alg::RsaPkcs1(_) | Alg::RsaPss(_) => alg_id::RSA_ENCRYPTION,
        }
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        match self {
            Alg::EcdsaP256(Hash::Sha256) => alg_id::ECDSA_SHA256,
            Alg::EcdsaP256(_) => alg_id::ECDSA_SHA384,
            #[cfg(feature = "p384")]
            Alg::EcdsaP384(Hash::Sha256) => alg_id::ECDSA_SHA256,
            #[cfg(feature = "p384")]
            Alg::EcdsaP384(_) => alg_id::ECDSA_SHA384,
            #[cfg(feature = "ed25519")]
            Alg::Ed25519 => alg_id::ED25519,
            #[cfg(feature = "rsa")]
            Alg::RsaPkcs1(Hash::Sha256) => alg_id::RSA_PKCS1_SHA256,
            #[cfg(feature = "rsa")]
            Alg::RsaPkcs1(Hash::Sha384) => alg_id::RSA_PKCS1_SHA384,
            #[cfg(feature = "rsa")]
            Alg::RsaPkcs1(Hash::Sha512) => alg_id::RSA_PKCS1_SHA512,
            #[cfg(feature = "rsa")]
            Alg::RsaPss(Hash::Sha256) => alg_id::RSA_PSS_SHA256,
            #[cfg(feature = "rsa")]
            Alg::RsaPss(Hash::Sha384) => alg_id::RSA_PSS_SHA384,
            #[cfg(feature = "rsa")]
            Alg::RsaPss(Hash::Sha512) => alg_id::RSA_PSS_SHA512,
        }
    }
}
