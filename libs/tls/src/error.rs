use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use rustls::{AlertDescription, CertificateError};
use uni_runtime::device::net::NetError;

/// Why a peer's certificate was rejected: one cause per kind of failure. The certificate it
/// concerns is in [`Rejection::certificate`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The certificate is not valid for the host name we connected to.
    WrongHost,
    /// The chain does not lead to a trusted root (this includes self-signed certificates).
    UnknownIssuer,
    /// A signature in the chain (or the handshake signature) does not verify.
    BadSignature,
    /// A certificate that issued another is not a CA (no `basicConstraints` with `CA:TRUE`).
    NotCa,
    /// A CA certificate is presented as the end-entity certificate.
    CaAsLeaf,
    /// The chain is longer than a CA's `pathLenConstraint` (or the depth limit) allows.
    PathTooLong,
    /// A name is outside the name constraints of a CA.
    NameConstraints,
    /// The certificate has a critical extension that is not understood (its OID).
    UnsupportedCriticalExtension(String),
    /// The extended key usage does not allow this use (TLS server or client authentication).
    WrongPurpose,
    /// The key is too weak (for example "RSA 1024 bits").
    WeakKey(String),
    /// The certificate is signed with an algorithm that is refused (named: "SHA-1 with RSA").
    UnsupportedSignatureAlgorithm(String),
    /// The certificate's fingerprint is not one of the pinned fingerprints.
    PinMismatch,
    /// The certificate was revoked.
    Revoked,
    /// Something else, described.
    Other(String),
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::Expired => f.write_str("certificate expired"),
            CertError::NotYetValid => f.write_str("certificate not yet valid"),
            CertError::WrongHost => f.write_str("certificate is not valid for this host name"),
            CertError::UnknownIssuer => {
                f.write_str("certificate issuer is unknown (not signed by a trusted CA)")
            }
            CertError::BadSignature => f.write_str("bad signature on certificate"),
            CertError::NotCa => f.write_str(
                "certificate issues others but is not a CA (basicConstraints CA:TRUE missing)",
            ),
            CertError::CaAsLeaf => f.write_str("a CA certificate is used as the end-entity certificate"),
            CertError::PathTooLong => {
                f.write_str("certificate chain is longer than a CA's path length constraint allows")
            }
            CertError::NameConstraints => {
                f.write_str("certificate name is outside a CA's name constraints")
            }
            CertError::UnsupportedCriticalExtension(oid) => {
                write!(f, "certificate has an unsupported critical extension (OID {oid})")
            }
            CertError::WrongPurpose => f.write_str(
                "certificate's extended key usage does not allow this use (TLS server or client authentication)",
            ),
            CertError::WeakKey(k) => write!(
                f,
                "certificate key is too weak: {k} (RSA keys need at least {} bits)",
                crate::x509::MIN_RSA_BITS
            ),
            CertError::UnsupportedSignatureAlgorithm(a) => {
                write!(f, "certificate is signed with an unsupported algorithm: {a}")
            }
            CertError::PinMismatch => {
                f.write_str("certificate fingerprint does not match the pinned fingerprints")
            }
            CertError::Revoked => f.write_str("certificate revoked"),
            CertError::Other(s) => f.write_str(s),
        }
    }
}

impl CertError {
    /// The cause rustls reports (without naming the certificate): used when no authenticator
    /// of ours explained the rejection (a client certificate checked by rustls's verifier).
    #[allow(deprecated)] // rustls still returns the context-free variants in places
    pub(crate) fn from_rustls(e: &CertificateError) -> CertError {
        match e {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                CertError::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CertError::NotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                CertError::WrongHost
            }
            CertificateError::UnknownIssuer => CertError::UnknownIssuer,
            CertificateError::BadSignature => CertError::BadSignature,
            CertificateError::ApplicationVerificationFailure => CertError::PinMismatch,
            CertificateError::Revoked => CertError::Revoked,
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                CertError::WrongPurpose
            }
            CertificateError::UnhandledCriticalExtension => {
                CertError::UnsupportedCriticalExtension("unknown".into())
            }
            CertificateError::UnsupportedSignatureAlgorithm
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                CertError::UnsupportedSignatureAlgorithm(
                    "an algorithm this build does not accept".into(),
                )
            }
            CertificateError::BadEncoding => CertError::Other("malformed certificate".into()),
            _ => CertError::Other("the certificate chain is invalid".into()),
        }
    }

    /// The rustls error (and so the TLS alert) for this cause.
    #[allow(deprecated)] // the context variants need details the alert does not carry
    pub(crate) fn to_rustls(&self) -> CertificateError {
        match self {
            CertError::Expired => CertificateError::Expired,
            CertError::NotYetValid => CertificateError::NotValidYet,
            CertError::WrongHost => CertificateError::NotValidForName,
            CertError::UnknownIssuer => CertificateError::UnknownIssuer,
            CertError::BadSignature => CertificateError::BadSignature,
            CertError::UnsupportedSignatureAlgorithm(_) => {
                CertificateError::UnsupportedSignatureAlgorithm
            }
            CertError::WrongPurpose => CertificateError::InvalidPurpose,
            CertError::UnsupportedCriticalExtension(_) => {
                CertificateError::UnhandledCriticalExtension
            }
            CertError::PinMismatch => CertificateError::ApplicationVerificationFailure,
            CertError::Revoked => CertificateError::Revoked,
            // bad_certificate: NotCa, CaAsLeaf, PathTooLong, NameConstraints, WeakKey, Other.
            _ => CertificateError::BadEncoding,
        }
    }
}

/// Where a certificate sits in the chain the peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainPosition {
    /// The end-entity certificate.
    Leaf,
    /// The n-th intermediate as sent, from 1.
    Intermediate(usize),
    /// The trust anchor the path ends at.
    Root,
}

impl fmt::Display for ChainPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainPosition::Leaf => f.write_str("leaf"),
            ChainPosition::Intermediate(n) => write!(f, "intermediate {n}"),
            ChainPosition::Root => f.write_str("root"),
        }
    }
}

/// A certificate of the chain, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCert {
    /// Its place in the chain.
    pub position: ChainPosition,
    /// Its subject, as RFC 4514 text (`CN=example.com,O=Example`).
    pub subject: String,
}

/// A rejected certificate: the cause and, when known, which certificate of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub cause: CertError,
    /// Which certificate.
    pub certificate: Option<ChainCert>,
}

impl From<CertError> for Rejection {
    fn from(cause: CertError) -> Rejection {
        Rejection {
            cause,
            certificate: None,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cause)?;
        if let Some(c) = &self.certificate {
            write!(f, ": {} \"{}\"", c.position, c.subject)?;
        }
        Ok(())
    }
}

/// A TLS failure.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TlsError {
    /// The peer's certificate was rejected: why, and which certificate.
    Certificate(Rejection),
    /// The peer sent a fatal alert (for example, it rejected our certificate).
    PeerAlert(AlertDescription),
    /// The peer does not follow the protocol, or nothing could be agreed.
    Protocol(rustls::Error),
    /// The flow underneath failed.
    Net(NetError),
    /// The peer closed the connection before the handshake finished.
    ClosedDuringHandshake,
    /// A configuration problem (bad certificate or key file, unusable options).
    Config(String),
}

impl TlsError {
    pub(crate) fn from_rustls(e: rustls::Error) -> TlsError {
        match e {
            rustls::Error::InvalidCertificate(c) => {
                TlsError::Certificate(CertError::from_rustls(&c).into())
            }
            rustls::Error::AlertReceived(a) => TlsError::PeerAlert(a),
            other => TlsError::Protocol(other),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Certificate(c) => write!(f, "TLS: {c}"),
            TlsError::PeerAlert(a) => write!(f, "TLS: the peer sent alert {}", alert_name(*a)),
            TlsError::Protocol(e) => write!(f, "TLS: {}", describe(e)),
            TlsError::Net(e) => write!(f, "TLS: {e}"),
            TlsError::ClosedDuringHandshake => {
                f.write_str("TLS: the peer closed the connection during the handshake")
            }
            TlsError::Config(s) => write!(f, "TLS configuration: {s}"),
        }
    }
}

impl core::error::Error for TlsError {}

/// A rustls protocol error in words. rustls's own `Display` prints several of its enums with
/// `{:?}` (`peer is incompatible: NoSignatureSchemesInCommon`): those variant names are
/// spelt out as words here instead.
fn describe(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::PeerIncompatible(p) => {
            alloc::format!(
                "the peer is incompatible: {}",
                words(&alloc::format!("{p:?}"))
            )
        }
        E::PeerMisbehaved(p) => alloc::format!(
            "the peer broke the protocol: {}",
            words(&alloc::format!("{p:?}"))
        ),
        E::InvalidMessage(m) => alloc::format!(
            "the peer sent a malformed message: {}",
            words(&alloc::format!("{m:?}"))
        ),
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            String::from("the peer sent a message that does not belong at this point")
        }
        E::NoApplicationProtocol => String::from("no ALPN protocol in common with the peer"),
        E::DecryptError => String::from("a record from the peer failed to decrypt"),
        E::InvalidCertificate(c) => CertError::from_rustls(c).to_string(),
        E::AlertReceived(a) => alloc::format!("the peer sent alert {}", alert_name(*a)),
        E::General(s) => s.clone(),
        other => alloc::format!("{other}"),
    }
}

/// `NoSignatureSchemesInCommon` → "no signature schemes in common"; anything after the
/// variant's name (its fields) is dropped.
fn words(debug: &str) -> String {
    let name = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push(' ');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// An alert's name as RFC 8446 writes it (`handshake_failure`), or its number.
pub(crate) fn alert_name(a: AlertDescription) -> String {
    use AlertDescription as A;
    let n = match a {
        A::CloseNotify => "close_notify",
        A::UnexpectedMessage => "unexpected_message",
        A::BadRecordMac => "bad_record_mac",
        A::RecordOverflow => "record_overflow",
        A::HandshakeFailure => "handshake_failure",
        A::BadCertificate => "bad_certificate",
        A::UnsupportedCertificate => "unsupported_certificate",
        A::CertificateRevoked => "certificate_revoked",
        A::CertificateExpired => "certificate_expired",
        A::CertificateUnknown => "certificate_unknown",
        A::IllegalParameter => "illegal_parameter",
        A::UnknownCA => "unknown_ca",
        A::AccessDenied => "access_denied",
        A::DecodeError => "decode_error",
        A::DecryptError => "decrypt_error",
        A::ProtocolVersion => "protocol_version",
        A::InsufficientSecurity => "insufficient_security",
        A::InternalError => "internal_error",
        A::InappropriateFallback => "inappropriate_fallback",
        A::UserCanceled => "user_canceled",
        A::MissingExtension => "missing_extension",
        A::UnsupportedExtension => "unsupported_extension",
        A::UnrecognisedName => "unrecognized_name",
        A::BadCertificateStatusResponse => "bad_certificate_status_response",
        A::UnknownPSKIdentity => "unknown_psk_identity",
        A::CertificateRequired => "certificate_required",
        A::NoApplicationProtocol => "no_application_protocol",
        other => return alloc::format!("number {}", u8::from(other)),
    };
    String::from(n)
}

impl From<NetError> for TlsError {
    fn from(e: NetError) -> Self {
        TlsError::Net(e)
    }
}

/// [`Session::handle`](crate::Session::handle) failed: the error, and the alert to send to the
/// peer before closing the flow.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub error: TlsError,
    /// Bytes to send (a fatal alert), possibly empty.
    pub to_send: Vec<u8>,
}
