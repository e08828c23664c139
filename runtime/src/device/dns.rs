use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;

/// A DNS resolver (`kind = "dns"` in unikernel.toml, running over a `net` device).
///
/// # Contract
/// * [`lookup_ipv4`](Resolver::lookup_ipv4) returns the name's IPv4 addresses (at least one),
///   or why there are none: the name does not exist ([`DnsError::NotFound`]), no server
///   answered ([`DnsError::TimedOut`]), or the answer was unusable.
/// * A resolver MUST ignore replies that do not match its query (wrong id, wrong sender).
pub trait Resolver {
    /// The IPv4 addresses of `name`.
    async fn lookup_ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError>;
}

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN), or has no IPv4 address.
    NotFound(String),
    /// No answer from the nameserver after the retries.
    TimedOut,
    /// The server answered with an error code (SERVFAIL, REFUSED, …).
    Server(String),
    /// The name cannot be put in a query, or the answer could not be parsed.
    Malformed(String),
    /// The network failed, or no nameserver is configured.
    Net(String),
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::NotFound(n) => write!(f, "dns: {n}: no such name (or no IPv4 address)"),
            DnsError::TimedOut => f.write_str("dns: the nameserver did not answer"),
            DnsError::Server(e) => write!(f, "dns: the nameserver answered {e}"),
            DnsError::Malformed(e) => write!(f, "dns: {e}"),
            DnsError::Net(e) => write!(f, "dns: {e}"),
        }
    }
}

impl core::error::Error for DnsError {}
