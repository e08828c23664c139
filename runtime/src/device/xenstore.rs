use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The Xen store: the hierarchical key-value database Xen domains use to share configuration.
/// Only the xen-arm target provides it (`kind = "xenstore"` in `unikernel.toml`).
///
/// Relative paths resolve under the domain's home, `/local/domain/<domid>`.
///
/// # Contract
/// * [`read`](Xenstore::read) returns the value at `path`, or [`XenstoreError::NoEntry`].
/// * [`write`](Xenstore::write) creates `path` (and missing parents) or replaces its value.
/// * [`directory`](Xenstore::directory) lists the children's names, not their full paths.
/// * Every error the store returns is reported by its errno name ([`XenstoreError::Xen`]);
///   none is dropped.
pub trait Xenstore {
    /// The value at `path`.
    async fn read(&self, path: &str) -> Result<String, XenstoreError>;
    /// Sets `path` to `value`.
    async fn write(&self, path: &str, value: &str) -> Result<(), XenstoreError>;
    /// The names of `path`'s children.
    async fn directory(&self, path: &str) -> Result<Vec<String>, XenstoreError>;
}

/// A xenstore request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XenstoreError {
    /// The path does not exist (`ENOENT`).
    NoEntry,
    /// Permission denied (`EACCES`).
    Denied,
    /// Any other error the store returned, by errno name (`EINVAL`, `EAGAIN`, …).
    Xen(String),
    /// The reply did not follow the wire protocol.
    Protocol(&'static str),
}

impl fmt::Display for XenstoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XenstoreError::NoEntry => f.write_str("xenstore: no such path (ENOENT)"),
            XenstoreError::Denied => f.write_str("xenstore: permission denied (EACCES)"),
            XenstoreError::Xen(e) => write!(f, "xenstore: {e}"),
            XenstoreError::Protocol(e) => write!(f, "xenstore protocol error: {e}"),
        }
    }
}

impl core::error::Error for XenstoreError {}
