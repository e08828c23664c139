//! Re-walking a rejected chain to say which certificate failed, and why.
//!
//! webpki says what went wrong (expired, not a CA, path too long…) but not which certificate
//! of the chain it was, and rustls (without `std`) collapses several of its errors into an
//! empty `Other`. Here the chain is parsed with `x509-cert`, the path from the leaf to a
//! trust anchor is rebuilt by names, and each link is checked in turn: validity, key size,
//! signature algorithm, signature (verified with webpki and the provider's algorithms: no
//! cryptography here), basic constraints, path length, extended key usage, critical
//! extensions.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use pki_types::{CertificateDer, SignatureVerificationAlgorithm};
use x509_cert::certificate::{CertificateInner, Raw};
use x509_cert::der::{self, Decode, Reader, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage};

use crate::error::{CertError, ChainCert, ChainPosition, Rejection};

const RSA: &str = "1.2.840.113549.1.1.1";
const BASIC_CONSTRAINTS: &str = "2.5.29.19";
const EXT_KEY_USAGE: &str = "2.5.29.37";
const NAME_CONSTRAINTS: &str = "2.5.29.30";
/// The critical extensions webpki understands; any other critical one is refused.
const UNDERSTOOD: &[&str] = &[
    BASIC_CONSTRAINTS,
    "2.5.29.15", // keyUsage
    EXT_KEY_USAGE,
    "2.5.29.17", // subjectAltName
    NAME_CONSTRAINTS,
    "2.5.29.31", // cRLDistributionPoints
    "2.5.29.14", // subjectKeyIdentifier
    "2.5.29.35", // authorityKeyIdentifier
];
/// The smallest RSA modulus accepted (webpki's RSA algorithms refuse smaller keys).
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// A human name for a signature algorithm OID.
fn algorithm_name(oid: &str) -> String {
    let known = match oid {
        "1.2.840.113549.1.1.2" => "MD2 with RSA",
        "1.2.840.113549.1.1.4" => "MD5 with RSA",
        "1.2.840.113549.1.1.5" => "SHA-1 with RSA",
        "1.2.840.10045.4.1" => "ECDSA with SHA-1",
        "1.2.840.10040.4.3" => "DSA with SHA-1",
        "2.16.840.1.101.3.4.3.2" => "DSA with SHA-256",
        "1.2.840.113549.1.1.11" => "SHA-256 with RSA",
        "1.2.840.113549.1.1.12" => "SHA-384 with RSA",
        "1.2.840.113549.1.1.13" => "SHA-512 with RSA",
        "1.2.840.113549.1.1.14" => "SHA-224 with RSA",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10045.4.3.1" => "ECDSA with SHA-224",
        "1.2.840.10045.4.3.2" => "ECDSA with SHA-256",
        "1.2.840.10045.4.3.3" => "ECDSA with SHA-384",
        "1.2.840.10045.4.3.4" => "ECDSA with SHA-512",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        _ => return format!("OID {oid}"),
    };
    known.to_string()
}

/// One parsed certificate, with the raw pieces signature checks need.
struct Parsed<'a> {
    der: &'a [u8],
    cert: CertificateInner<Raw>,
    /// The TBSCertificate, as signed (its whole TLV).
    tbs: &'a [u8],
    /// The contents of the outer signatureAlgorithm SEQUENCE (what webpki compares).
    sig_alg: &'a [u8],
    signature: &'a [u8],
    position: ChainPosition,
}

fn split(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut r = SliceReader::new(der).ok()?;
    r.sequence(|r| {
        let tbs = r.tlv_bytes()?;
        let alg = der::asn1::AnyRef::decode(r)?;
        let sig = der::asn1::BitStringRef::decode(r)?;
        Ok((tbs, alg.value(), sig.raw_bytes()))
    })
    .ok()
}

fn parse(der: &[u8], position: ChainPosition) -> Option<Parsed<'_>> {
    // The lenient profile: any serial number webpki accepts must not stop the walk.
    let cert = CertificateInner::<Raw>::from_der(der).ok()?;
    let (tbs, sig_alg, signature) = split(der)?;
    Some(Parsed {
        der,
        cert,
        tbs,
        sig_alg,
        signature,
        position,
    })
}

impl Parsed<'_> {
    fn subject(&self) -> String {
        let s = self.cert.tbs_certificate.subject.to_string();
        if s.is_empty() {
            "(empty subject)".into()
        } else {
            s
        }
    }

    fn named(&self) -> ChainCert {
        ChainCert {
            position: self.position,
            subject: self.subject(),
        }
    }

    fn reject(&self, cause: CertError) -> Rejection {
        Rejection {
            cause,
            certificate: Some(self.named()),
        }
    }

    fn extension(&self, oid: &str) -> Option<&x509_cert::ext::Extension> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
    }

    fn basic_constraints(&self) -> Option<BasicConstraints> {
        BasicConstraints::from_der(self.extension(BASIC_CONSTRAINTS)?.extn_value.as_bytes()).ok()
    }

    fn is_ca(&self) -> bool {
        self.basic_constraints().is_some_and(|b| b.ca)
    }

    fn issued_by(&self, issuer: &Parsed<'_>) -> bool {
        self.cert.tbs_certificate.issuer == issuer.cert.tbs_certificate.subject
    }

    fn self_issued(&self) -> bool {
        self.issued_by(self)
    }

    fn validity(&self) -> (u64, u64) {
        let v = &self.cert.tbs_certificate.validity;
        (
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        )
    }

    /// The RSA modulus size in bits, for RSA keys.
    fn rsa_bits(&self) -> Option<usize> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        if spki.algorithm.oid.to_string() != RSA {
            return None;
        }
        let key = spki.subject_public_key.raw_bytes();
        let mut r = SliceReader::new(key).ok()?;
        let n = r
            .sequence(|r| {
                let n = der::asn1::UintRef::decode(r)?;
                let _e = der::asn1::UintRef::decode(r)?;
                Ok(n)
            })
            .ok()?;
        let bytes = n.as_bytes();
        let first = *bytes.first()?;
        Some(bytes.len() * 8 - first.leading_zeros() as usize)
    }

    fn signature_algorithm(&self) -> String {
        algorithm_name(&self.cert.signature_algorithm.oid.to_string())
    }

    /// Whether `issuer`'s key verifies this certificate's signature with one of `algs`:
    /// `None` when no algorithm of `algs` matches the certificate's signature algorithm and
    /// the issuer's key type.
    fn signature_ok(
        &self,
        issuer: &Parsed<'_>,
        algs: &[&dyn SignatureVerificationAlgorithm],
    ) -> Option<bool> {
        let issuer_der = CertificateDer::from(issuer.der);
        let ee = webpki::EndEntityCert::try_from(&issuer_der).ok()?;
        let mut matched = false;
        for alg in algs
            .iter()
            .filter(|a| a.signature_alg_id().as_ref() == self.sig_alg)
        {
            matched = true;
            if ee.verify_signature(*alg, self.tbs, self.signature).is_ok() {
                return Some(true);
            }
        }
        matched.then_some(false)
    }

    fn supported(&self, algs: &[&dyn SignatureVerificationAlgorithm]) -> bool {
        algs.iter()
            .any(|a| a.signature_alg_id().as_ref() == self.sig_alg)
    }

    fn unknown_critical_extension(&self) -> Option<String> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .filter(|e| e.critical)
            .map(|e| e.extn_id.to_string())
            .find(|oid| !UNDERSTOOD.contains(&oid.as_str()))
    }

    /// Whether the extended key usage (if present) allows `purpose`.
    fn allows(&self, purpose: &str) -> bool {
        match self.extension(EXT_KEY_USAGE) {
            None => true,
            Some(e) => ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                .map(|eku| eku.0.iter().any(|o| o.to_string() == purpose))
                .unwrap_or(false),
        }
    }
}

/// The extended key usage OIDs of TLS server and client authentication.
pub(crate) const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
#[cfg(feature = "client-auth")]
pub(crate) const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

/// Why webpki refused, without naming a certificate: for chains `walk` cannot parse.
#[allow(deprecated)] // webpki still returns the context-free variants in places
fn cause_only(error: &webpki::Error) -> CertError {
    use webpki::Error as E;
    match error {
        E::CertExpired { .. } => CertError::Expired,
        E::CertNotValidYet { .. } => CertError::NotYetValid,
        E::CertNotValidForName(_) => CertError::WrongHost,
        E::CaUsedAsEndEntity => CertError::CaAsLeaf,
        E::EndEntityUsedAsCa => CertError::NotCa,
        E::PathLenConstraintViolated | E::MaximumPathDepthExceeded => CertError::PathTooLong,
        E::NameConstraintViolation => CertError::NameConstraints,
        E::UnsupportedCriticalExtension => {
            CertError::UnsupportedCriticalExtension("unknown".into())
        }
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => CertError::WrongPurpose,
        E::UnknownIssuer => CertError::UnknownIssuer,
        E::InvalidSignatureForPublicKey => CertError::BadSignature,
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            CertError::UnsupportedSignatureAlgorithm(
                "an algorithm this build does not accept".into(),
            )
        }
        E::CertRevoked => CertError::Revoked,
        _ => CertError::Other("malformed certificate".into()),
    }
}

/// Names the cause and the certificate behind webpki's `error` for the chain `leaf` +
/// `intermediates` checked against `roots`; only the cause if the chain does not parse.
pub(crate) fn explain(
    error: &webpki::Error,
    leaf: &[u8],
    intermediates: &[CertificateDer<'_>],
    roots: &[CertificateDer<'static>],
    now: u64,
    algs: &[&dyn SignatureVerificationAlgorithm],
    purpose: &str,
) -> Rejection {
    match walk(leaf, intermediates, roots) {
        Some(chain) => chain.explain(error, now, algs, purpose),
        None => cause_only(error).into(),
    }
}

/// A weak key on the path of `leaf` + `intermediates` (RSA under 2048 bits), if any.
pub(crate) fn weak_key(
    leaf: &[u8],
    intermediates: &[CertificateDer<'_>],
    roots: &[CertificateDer<'static>],
) -> Option<Rejection> {
    walk(leaf, intermediates, roots)?.weak_key()
}

/// The leaf, named if it parses, with `cause`.
pub(crate) fn leaf_rejection(leaf: &[u8], cause: CertError) -> Rejection {
    match parse(leaf, ChainPosition::Leaf) {
        Some(p) => p.reject(cause),
        None => cause.into(),
    }
}

/// What a chain was rejected for: the path walk behind [`explain`].
pub(crate) struct Chain<'a> {
    /// Leaf, then the certificates on the path towards a root (intermediates, then the
    /// trust anchor when one was found).
    path: Vec<Parsed<'a>>,
    /// The path ends at a trust anchor.
    anchored: bool,
}

/// Rebuilds the path from `leaf` through `intermediates` to one of `roots`, matching issuer
/// and subject names. `None` if the leaf does not parse.
pub(crate) fn walk<'a>(
    leaf: &'a [u8],
    intermediates: &'a [CertificateDer<'a>],
    roots: &'a [CertificateDer<'static>],
) -> Option<Chain<'a>> {
    let mut path = alloc::vec![parse(leaf, ChainPosition::Leaf)?];
    let inter: Vec<Parsed<'a>> = intermediates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| parse(c.as_ref(), ChainPosition::Intermediate(i + 1)))
        .collect();
    let roots: Vec<Parsed<'a>> = roots
        .iter()
        .filter_map(|c| parse(c.as_ref(), ChainPosition::Root))
        .collect();
    let mut used = alloc::vec![false; inter.len()];
    let mut anchored = false;
    // A certificate that is itself a trust anchor (a pinned root sent as the leaf) ends there.
    for _ in 0..8 {
        let top = path.last()?;
        if let Some(r) = roots.iter().find(|r| top.issued_by(r)) {
            if r.der != top.der {
                path.push(parse(r.der, ChainPosition::Root)?);
            }
            anchored = true;
            break;
        }
        let next = inter
            .iter()
            .enumerate()
            .find(|(i, c)| !used[*i] && top.issued_by(c) && c.der != top.der);
        match next {
            Some((i, c)) => {
                used[i] = true;
                path.push(parse(c.der, c.position)?);
            }
            None => break,
        }
    }
    Some(Chain { path, anchored })
}

impl Chain<'_> {
    fn leaf(&self) -> &Parsed<'_> {
        &self.path[0]
    }

    /// The certificates of the path the peer sent (not the trust anchor).
    fn sent(&self) -> impl Iterator<Item = &Parsed<'_>> {
        self.path
            .iter()
            .filter(|p| p.position != ChainPosition::Root)
    }

    /// The leaf, named, for causes that are always about it.
    pub(crate) fn leaf_rejection(&self, cause: CertError) -> Rejection {
        self.leaf().reject(cause)
    }

    /// A weak key anywhere on the path (RSA keys under 2048 bits).
    pub(crate) fn weak_key(&self) -> Option<Rejection> {
        self.path.iter().find_map(|p| {
            let bits = p.rsa_bits()?;
            (bits < MIN_RSA_BITS).then(|| p.reject(CertError::WeakKey(format!("RSA {bits} bits"))))
        })
    }

    /// Names the certificate behind webpki's `error`, re-checking the path link by link.
    #[allow(deprecated)] // webpki still returns the context-free variants in places
    pub(crate) fn explain(
        &self,
        error: &webpki::Error,
        now: u64,
        algs: &[&dyn SignatureVerificationAlgorithm],
        purpose: &str,
    ) -> Rejection {
        use webpki::Error as E;
        let first = |f: &dyn Fn(&Parsed<'_>) -> bool, cause: CertError| {
            self.sent()
                .find(|p| f(p))
                .map(|p| p.reject(cause.clone()))
                .unwrap_or(Rejection {
                    cause,
                    certificate: None,
                })
        };
        match error {
            E::CertExpired { .. } => first(&|p| p.validity().1 < now, CertError::Expired),
            E::CertNotValidYet { .. } => first(&|p| p.validity().0 > now, CertError::NotYetValid),
            E::CertNotValidForName(_) => self.leaf_rejection(CertError::WrongHost),
            E::CaUsedAsEndEntity => self.leaf_rejection(CertError::CaAsLeaf),
            E::EndEntityUsedAsCa => self
                .path
                .iter()
                .skip(1)
                .find(|p| !p.is_ca())
                .map(|p| p.reject(CertError::NotCa))
                .unwrap_or_else(|| self.unknown_issuer()),
            E::PathLenConstraintViolated | E::MaximumPathDepthExceeded => self.path_too_long(),
            E::NameConstraintViolation => first(
                &|p| p.extension(NAME_CONSTRAINTS).is_some(),
                CertError::NameConstraints,
            ),
            E::UnsupportedCriticalExtension => self
                .path
                .iter()
                .find_map(|p| {
                    p.unknown_critical_extension()
                        .map(|oid| p.reject(CertError::UnsupportedCriticalExtension(oid)))
                })
                .unwrap_or(Rejection {
                    cause: CertError::UnsupportedCriticalExtension("unknown".into()),
                    certificate: None,
                }),
            E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => {
                first(&|p| !p.allows(purpose), CertError::WrongPurpose)
            }
            E::UnknownIssuer => self.links(algs).unwrap_or_else(|| self.unknown_issuer()),
            E::InvalidSignatureForPublicKey
            | E::UnsupportedSignatureAlgorithm
            | E::UnsupportedSignatureAlgorithmContext(_)
            | E::UnsupportedSignatureAlgorithmForPublicKey
            | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
            | E::SignatureAlgorithmMismatch => self.links(algs).unwrap_or(Rejection {
                cause: CertError::BadSignature,
                certificate: None,
            }),
            E::CertRevoked => self.leaf_rejection(CertError::Revoked),
            E::BadDer | E::BadDerTime | E::TrailingData(_) | E::InvalidCertValidity => {
                self.leaf_rejection(CertError::Other("malformed certificate".into()))
            }
            _ => self.links(algs).unwrap_or_else(|| {
                self.leaf_rejection(CertError::Other("invalid certificate chain".into()))
            }),
        }
    }

    /// Checks each link of the path: a weak issuer key, an unsupported algorithm, a bad
    /// signature. `None` if every link holds.
    fn links(&self, algs: &[&dyn SignatureVerificationAlgorithm]) -> Option<Rejection> {
        if let Some(w) = self.weak_key() {
            return Some(w);
        }
        for pair in self.path.windows(2) {
            let (child, issuer) = (&pair[0], &pair[1]);
            if !child.supported(algs) {
                return Some(child.reject(CertError::UnsupportedSignatureAlgorithm(
                    child.signature_algorithm(),
                )));
            }
            match child.signature_ok(issuer, algs) {
                Some(true) => {}
                Some(false) => return Some(child.reject(CertError::BadSignature)),
                None => {
                    return Some(child.reject(CertError::UnsupportedSignatureAlgorithm(
                        child.signature_algorithm(),
                    )))
                }
            }
        }
        let top = self.path.last()?;
        if !self.anchored && !top.supported(algs) && !top.self_issued() {
            return Some(top.reject(CertError::UnsupportedSignatureAlgorithm(
                top.signature_algorithm(),
            )));
        }
        None
    }

    fn unknown_issuer(&self) -> Rejection {
        // The path stops at the certificate whose issuer is neither sent nor trusted.
        let top = self
            .path
            .iter()
            .rev()
            .find(|p| p.position != ChainPosition::Root)
            .unwrap_or(self.leaf());
        top.reject(CertError::UnknownIssuer)
    }

    fn path_too_long(&self) -> Rejection {
        // The CA at path index i has i - 1 non-self-issued intermediates below it.
        for (i, p) in self.path.iter().enumerate().skip(1) {
            if let Some(limit) = p.basic_constraints().and_then(|b| b.path_len_constraint) {
                let below = self.path[1..i].iter().filter(|c| !c.self_issued()).count();
                if below > usize::from(limit) {
                    return p.reject(CertError::PathTooLong);
                }
            }
        }
        Rejection {
            cause: CertError::PathTooLong,
            certificate: None,
        }
    }
}
