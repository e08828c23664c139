//! Signature verification for certificates and handshake signatures: ECDSA over P-256 and
//! P-384 (each with SHA-256 and SHA-384), Ed25519, RSA PKCS#1 v1.5 and RSA-PSS with SHA-256,
//! SHA-384 and SHA-512 (2048- to 8192-bit moduli, as webpki requires).
//!
//! P-384 needs the `p384` feature, Ed25519 `ed25519`, RSA `rsa`: without them, their code is
//! not compiled, and [`ALGORITHMS`] lists only the others. Each algorithm is a type of its
//! own, and [`for_schemes`] builds a provider's list from the [`Scheme`]s a configuration
//! names (`crate::schemes`), so an image links only the verification code of those.

use pki_types::{alg_id, AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::SignatureScheme;
#[cfg(any(feature = "ed25519", feature = "rsa"))]
use signature::Verifier;

use alloc::vec::Vec;
use core::marker::PhantomData;

/// A hash a signature algorithm uses, with the algorithm identifiers webpki matches
/// certificates' signatures against.
pub trait SigHash: sha2::Digest + Send + Sync + 'static {
    /// Its name, for `Debug`.
    const NAME: &'static str;
    /// `ecdsa-with-SHA*`.
    const ECDSA: AlgorithmIdentifier;
    /// `sha*WithRSAEncryption`.
    #[cfg(feature = "rsa")]
    const RSA_PKCS1: AlgorithmIdentifier;
    /// RSASSA-PSS with this hash.
    #[cfg(feature = "rsa")]
    const RSA_PSS: AlgorithmIdentifier;
}

impl SigHash for sha2::Sha256 {
    const NAME: &'static str = "SHA-256";
    const ECDSA: AlgorithmIdentifier = alg_id::ECDSA_SHA256;
    #[cfg(feature = "rsa")]
    const RSA_PKCS1: AlgorithmIdentifier = alg_id::RSA_PKCS1_SHA256;
    #[cfg(feature = "rsa")]
    const RSA_PSS: AlgorithmIdentifier = alg_id::RSA_PSS_SHA256;
}

impl SigHash for sha2::Sha384 {
    const NAME: &'static str = "SHA-384";
    const ECDSA: AlgorithmIdentifier = alg_id::ECDSA_SHA384;
    #[cfg(feature = "rsa")]
    const RSA_PKCS1: AlgorithmIdentifier = alg_id::RSA_PKCS1_SHA384;
    #[cfg(feature = "rsa")]
    const RSA_PSS: AlgorithmIdentifier = alg_id::RSA_PSS_SHA384;
}

impl SigHash for sha2::Sha512 {
    const NAME: &'static str = "SHA-512";
    const ECDSA: AlgorithmIdentifier = alg_id::ECDSA_SHA512;
    #[cfg(feature = "rsa")]
    const RSA_PKCS1: AlgorithmIdentifier = alg_id::RSA_PKCS1_SHA512;
    #[cfg(feature = "rsa")]
    const RSA_PSS: AlgorithmIdentifier = alg_id::RSA_PSS_SHA512;
}

// One type per algorithm (as rustls's own providers have), so that an image links the code of
// the algorithms its provider names and no other: one `verify_signature` matching every hash
// would link SHA-512 into an image that verifies only ECDSA P-256 with SHA-256.
macro_rules! hashed_alg {
    ($(#[$m:meta])* $name:ident, $label:literal $(, $cfg:meta)?) => {
        $(#[$m])*
        $(#[cfg($cfg)])?
        pub struct $name<H>(PhantomData<fn() -> H>);

        $(#[cfg($cfg)])?
        impl<H: SigHash> core::fmt::Debug for $name<H> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!($label, " with {}"), H::NAME)
            }
        }
    };
}

hashed_alg!(
    /// ECDSA on P-256 with the hash `H`.
    EcdsaP256,
    "ECDSA P-256"
);
hashed_alg!(
    /// ECDSA on P-384 with the hash `H`.
    EcdsaP384,
    "ECDSA P-384",
    feature = "p384"
);
hashed_alg!(
    /// RSA PKCS#1 v1.5 with the hash `H`.
    RsaPkcs1,
    "RSA PKCS#1 v1.5",
    feature = "rsa"
);
hashed_alg!(
    /// RSA-PSS (MGF1 with the same hash, salt length = hash length) with the hash `H`.
    RsaPss,
    "RSA-PSS",
    feature = "rsa"
);

/// Ed25519.
#[cfg(feature = "ed25519")]
#[derive(Debug)]
pub struct Ed25519;

/// `ECDSA_P256_SHA256`.
pub static ECDSA_P256_SHA256: EcdsaP256<sha2::Sha256> = EcdsaP256(PhantomData);
/// `ECDSA_P256_SHA384`.
pub static ECDSA_P256_SHA384: EcdsaP256<sha2::Sha384> = EcdsaP256(PhantomData);
/// `ECDSA_P384_SHA256`.
#[cfg(feature = "p384")]
pub static ECDSA_P384_SHA256: EcdsaP384<sha2::Sha256> = EcdsaP384(PhantomData);
/// `ECDSA_P384_SHA384`.
#[cfg(feature = "p384")]
pub static ECDSA_P384_SHA384: EcdsaP384<sha2::Sha384> = EcdsaP384(PhantomData);
/// `ED25519`.
#[cfg(feature = "ed25519")]
pub static ED25519: Ed25519 = Ed25519;
/// `RSA_PKCS1_SHA256`.
#[cfg(feature = "rsa")]
pub static RSA_PKCS1_SHA256: RsaPkcs1<sha2::Sha256> = RsaPkcs1(PhantomData);
/// `RSA_PKCS1_SHA384`.
#[cfg(feature = "rsa")]
pub static RSA_PKCS1_SHA384: RsaPkcs1<sha2::Sha384> = RsaPkcs1(PhantomData);
/// `RSA_PKCS1_SHA512`.
#[cfg(feature = "rsa")]
pub static RSA_PKCS1_SHA512: RsaPkcs1<sha2::Sha512> = RsaPkcs1(PhantomData);
/// `RSA_PSS_SHA256`.
#[cfg(feature = "rsa")]
pub static RSA_PSS_SHA256: RsaPss<sha2::Sha256> = RsaPss(PhantomData);
/// `RSA_PSS_SHA384`.
#[cfg(feature = "rsa")]
pub static RSA_PSS_SHA384: RsaPss<sha2::Sha384> = RsaPss(PhantomData);
/// `RSA_PSS_SHA512`.
#[cfg(feature = "rsa")]
pub static RSA_PSS_SHA512: RsaPss<sha2::Sha512> = RsaPss(PhantomData);

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

/// A TLS signature scheme and the algorithms that verify it: the signature a peer makes with
/// the scheme in a handshake, and certificate signatures of the same kind.
#[derive(Debug, Clone, Copy)]
pub struct Scheme {
    /// The scheme, as rustls names it.
    pub scheme: SignatureScheme,
    /// Its verification algorithms, preferred first.
    pub algorithms: &'static [&'static dyn SignatureVerificationAlgorithm],
}

/// The verification algorithms of `schemes` (what a peer may sign handshakes with, and the
/// algorithms certificates may be signed with), in [`ALGORITHMS`]'s form. Only the algorithms
/// `schemes` name are referenced, so an image links no other. Leaks two small lists (once per
/// provider).
pub fn for_schemes(schemes: &[Scheme]) -> WebPkiSupportedAlgorithms {
    let mapping: Vec<(
        SignatureScheme,
        &'static [&'static dyn SignatureVerificationAlgorithm],
    )> = schemes.iter().map(|s| (s.scheme, s.algorithms)).collect();
    let mut all: Vec<&'static dyn SignatureVerificationAlgorithm> = Vec::new();
    for a in schemes.iter().flat_map(|s| s.algorithms) {
        if !all.iter().any(|b| same(*a, *b)) {
            all.push(*a);
        }
    }
    WebPkiSupportedAlgorithms {
        all: Vec::leak(all),
        mapping: Vec::leak(mapping),
    }
}

/// Whether two algorithms are the same one: the same key and signature algorithm identifiers.
/// (Not by address: the algorithms are zero-sized statics, which may share one.)
fn same(a: &dyn SignatureVerificationAlgorithm, b: &dyn SignatureVerificationAlgorithm) -> bool {
    a.public_key_alg_id() == b.public_key_alg_id() && a.signature_alg_id() == b.signature_alg_id()
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

impl<H: SigHash> SignatureVerificationAlgorithm for EcdsaP256<H> {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use signature::hazmat::PrehashVerifier;
        let key =
            p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
        let sig = p256::ecdsa::DerSignature::try_from(signature).map_err(|_| InvalidSignature)?;
        key.verify_prehash(&H::digest(message), &sig)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_P256
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        H::ECDSA
    }
}

#[cfg(feature = "p384")]
impl<H: SigHash> SignatureVerificationAlgorithm for EcdsaP384<H> {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use signature::hazmat::PrehashVerifier;
        let key =
            p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
        let sig = p384::ecdsa::DerSignature::try_from(signature).map_err(|_| InvalidSignature)?;
        key.verify_prehash(&H::digest(message), &sig)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_P384
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        H::ECDSA
    }
}

#[cfg(feature = "ed25519")]
impl SignatureVerificationAlgorithm for Ed25519 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let key: [u8; 32] = public_key.try_into().map_err(|_| InvalidSignature)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| InvalidSignature)?;
        let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| InvalidSignature)?;
        key.verify(message, &sig).map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ED25519
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ED25519
    }
}

#[cfg(feature = "rsa")]
impl<H: SigHash + rsa::pkcs8::AssociatedOid> SignatureVerificationAlgorithm for RsaPkcs1<H> {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let key = rsa_key(public_key)?;
        let sig = rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| InvalidSignature)?;
        rsa::pkcs1v15::VerifyingKey::<H>::new(key)
            .verify(message, &sig)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        H::RSA_PKCS1
    }
}

#[cfg(feature = "rsa")]
impl<H: SigHash + sha2::digest::FixedOutputReset> SignatureVerificationAlgorithm for RsaPss<H> {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let key = rsa_key(public_key)?;
        let sig = rsa::pss::Signature::try_from(signature).map_err(|_| InvalidSignature)?;
        rsa::pss::VerifyingKey::<H>::new(key)
            .verify(message, &sig)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        H::RSA_PSS
    }
}
