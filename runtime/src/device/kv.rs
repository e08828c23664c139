use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A read-only key-value store, such as a directory embedded into the image at build time.
///
/// Keys are `/`-separated paths relative to the store's root, without a leading `/`.
///
/// # Contract
/// * [`get`](KvRo::get) MUST return exactly the bytes stored under `key`, or
///   [`KvError::NotFound`].
/// * [`digest`](KvRo::digest) MUST change whenever the value changes (suitable for an ETag).
pub trait KvRo {
    /// The value stored under `key`.
    async fn get(&self, key: &str) -> Result<Vec<u8>, KvError>;
    /// The size in bytes of the value stored under `key`.
    async fn size(&self, key: &str) -> Result<u64, KvError>;
    /// The keys directly under `prefix` (`""` for the root).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, KvError>;
    /// A digest of the value under `key`, as lowercase hex.
    async fn digest(&self, key: &str) -> Result<String, KvError>;
}

/// Why a key-value lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// No value is stored under this key.
    NotFound(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::NotFound(k) => write!(f, "key not found: {k}"),
        }
    }
}

impl core::error::Error for KvError {}
