//! The crate's error type.

use core::fmt;

use uni_runtime::device::net::{self, NetError};
use uni_runtime::device::KvError;
use uni_tls::TlsError;

/// What a connection was doing when it timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// The TLS handshake ([`Limits::head_timeout`](crate::Limits::head_timeout)).
    Handshake,
    /// Receiving a request head ([`Limits::head_timeout`](crate::Limits::head_timeout)).
    Head,
    /// Waiting for the next request on a kept-alive connection
    /// ([`Limits::idle_timeout`](crate::Limits::idle_timeout)).
    Idle,
    /// Receiving a request body ([`Limits::idle_timeout`](crate::Limits::idle_timeout) per read).
    Body,
    /// Sending a response ([`Limits::write_timeout`](crate::Limits::write_timeout) per write).
    Write,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Handshake => "the TLS handshake",
            Phase::Head => "the request head",
            Phase::Idle => "the next request",
            Phase::Body => "the request body",
            Phase::Write => "the client to accept the response",
        })
    }
}

/// Why listening failed, or why one connection ended abnormally. A connection's error ends
/// only that connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The network failed (listening, accepting, reading, writing).
    Net(NetError),
    /// TLS failed: the device cannot serve, or a handshake failed.
    Tls(TlsError),
    /// The peer took longer than the limit for this phase.
    TimedOut(Phase),
    /// Reading a file from the store failed.
    Kv(KvError),
    /// Listening on the server's port failed.
    Listen {
        /// The http device's name in unikernel.toml ([`Server::named`](crate::Server::named)),
        /// if the server has one: the message then names the device and its `--<name>-port`
        /// override.
        device: Option<alloc::string::String>,
        /// The port.
        port: u16,
        /// Why.
        error: alloc::boxed::Box<Error>,
    },
    /// A response body produced a different number of bytes than its declared length.
    BodyLength {
        /// The declared length ([`Body::len`](crate::Body::len)).
        expected: u64,
        /// How many bytes it produced before the mismatch was seen.
        got: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Net(e) => write!(f, "network: {e}"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::TimedOut(p) => write!(f, "timed out waiting for {p}"),
            Error::Kv(e) => write!(f, "reading a file: {e}"),
            Error::Listen {
                device,
                port,
                error,
            } => {
                if let Some(d) = device {
                    write!(f, "http device \"{d}\": ")?;
                }
                // The bare network cause (the stack's own "cannot listen on port N" context
                // taken off): "network: " would only repeat what "listen" says.
                let bare = match &**error {
                    Error::Net(e) | Error::Tls(TlsError::Net(e)) => Some(e.cause()),
                    _ => None,
                };
                match bare {
                    Some(e) => net::write_listen_error(f, *port, e)?,
                    None => net::write_listen_error(f, *port, error)?,
                }
                match (device, bare) {
                    (Some(d), Some(NetError::AddrInUse)) => {
                        write!(f, " (set another with --{d}-port=N)")
                    }
                    (Some(d), Some(NetError::Other(m)))
                        if m.to_ascii_lowercase().contains("permission denied") =>
                    {
                        write!(
                            f,
                            " (ports below 1024 need privileges on unix; set another with --{d}-port=N)"
                        )
                    }
                    _ => Ok(()),
                }
            }
            Error::BodyLength { expected, got } => {
                write!(
                    f,
                    "response body gave {got} bytes where it declared {expected}"
                )
            }
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Net(e) => Some(e),
            Error::Tls(e) => Some(e),
            Error::Kv(e) => Some(e),
            Error::Listen { error, .. } => Some(&**error),
            Error::TimedOut(_) | Error::BodyLength { .. } => None,
        }
    }
}

impl From<NetError> for Error {
    fn from(e: NetError) -> Error {
        Error::Net(e)
    }
}

impl From<TlsError> for Error {
    fn from(e: TlsError) -> Error {
        Error::Tls(e)
    }
}

impl From<KvError> for Error {
    fn from(e: KvError) -> Error {
        Error::Kv(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::string::ToString;

    fn listen(device: Option<&str>, error: Error) -> alloc::string::String {
        Error::Listen {
            device: device.map(Into::into),
            port: 443,
            error: Box::new(error),
        }
        .to_string()
    }

    #[test]
    fn a_failed_listen_names_the_device_the_port_and_the_override() {
        assert_eq!(
            listen(Some("https"), Error::Net(NetError::AddrInUse)),
            "http device \"https\": cannot listen on port 443: address in use (set another with --https-port=N)"
        );
        assert_eq!(
            listen(Some("web"), Error::Tls(TlsError::Net(NetError::AddrInUse))),
            "http device \"web\": cannot listen on port 443: address in use (set another with --web-port=N)"
        );
        assert_eq!(
            listen(
                Some("http"),
                Error::Net(NetError::Other("Permission denied (os error 13)".into()))
            ),
            "http device \"http\": cannot listen on port 443: Permission denied (os error 13) (ports below 1024 need privileges on unix; set another with --http-port=N)"
        );
        // The stack's own listen error (it names the port too) is said once.
        assert_eq!(
            listen(
                Some("https"),
                Error::Net(NetError::listen(443, NetError::AddrInUse))
            ),
            "http device \"https\": cannot listen on port 443: address in use (set another with --https-port=N)"
        );
        // A server made without a device name still says what failed.
        assert_eq!(
            listen(None, Error::Net(NetError::AddrInUse)),
            "cannot listen on port 443: address in use"
        );
    }
}
