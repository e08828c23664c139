use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use rustls::{AlertDescription, CertificateError};
use uni_runtime::device::net::NetError;

/// Why a peer's certificate was rejected by an authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// The certificate (or one in its chain) has expired.
    Expired,
    /// The certificate (or one in its chain) is not valid yet.
    NotYetValid,
    /// The certificate is not valid for the host name we connected to.
    WrongHost,
    /// The chain does not lead to a trusted root (this includes self-signed certificates).
    UnknownIssuer,
    /// A signature in the chain (or the handshake signature) does not verify.
    BadSignature,
    /// The certificate's fingerprint is not one of the pinned fingerprints.
    PinMismatch,
    /// The certificate was revoked.
    Revoked,
    /// Something else, with rustls's description.
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
            CertError::PinMismatch => {
                f.write_str("certificate fingerprint does not match the pinned fingerprints")
            }
            CertError::Revoked => f.write_str("certificate revoked"),
            CertError::Other(s) => f.write_str(s),
        }
    }
}

impl CertError {
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
            other => CertError::Other(alloc::format!("{other:?}")),
        }
    }
}

/// A TLS failure.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TlsError {
    /// Our authenticator rejected the peer's certificate.
    Certificate(CertError),
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
                TlsError::Certificate(CertError::from_rustls(&c))
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
            TlsError::PeerAlert(a) => write!(f, "TLS: the peer sent alert {a:?}"),
            TlsError::Protocol(e) => write!(f, "TLS: {e}"),
            TlsError::Net(e) => write!(f, "TLS: {e}"),
            TlsError::ClosedDuringHandshake => {
                f.write_str("TLS: the peer closed the connection during the handshake")
            }
            TlsError::Config(s) => write!(f, "TLS configuration: {s}"),
        }
    }
}

impl core::error::Error for TlsError {}

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
