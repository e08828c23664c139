use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// What a key names in a [`KvRo`] store: a value, or a dictionary (a directory) of further keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    /// A value: bytes, read with [`KvRo::get`].
    Value,
    /// A dictionary: further keys, listed with [`KvRo::list`].
    Dictionary,
}

/// A read-only key-value store, such as a directory embedded into the image at build time
/// (MirageOS's `Mirage_kv.RO`, as `crunch` provides it).
///
/// Keys are `/`-separated paths relative to the store's root, without a leading or trailing
/// `/`; the root dictionary is `""`.
///
/// # Contract
/// * [`get`](KvRo::get) MUST return exactly the bytes stored under `key`;
///   [`KvError::NotFound`] when nothing is, [`KvError::ValueExpected`] for a dictionary.
/// * [`get_partial`](KvRo::get_partial) MUST return the bytes `offset..offset+len` of the value,
///   shortened at its end (empty at or past the end), so that large values can be streamed
///   without holding them in memory whole.
/// * [`list`](KvRo::list) returns the names (not full keys) directly under a dictionary, sorted.
/// * [`digest`](KvRo::digest) MUST change whenever the value changes (suitable for an ETag).
pub trait KvRo {
    /// Whether `key` names a value, a dictionary, or nothing (`None`).
    async fn exists(&self, key: &str) -> Result<Option<EntryKind>, KvError>;
    /// The value stored under `key`.
    async fn get(&self, key: &str) -> Result<Vec<u8>, KvError>;
    /// Up to `len` bytes of the value under `key`, from byte `offset`.
    async fn get_partial(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>, KvError>;
    /// The size in bytes of the value stored under `key`.
    async fn size(&self, key: &str) -> Result<u64, KvError>;
    /// The entries directly under the dictionary `key` (`""` for the root), sorted by name.
    async fn list(&self, key: &str) -> Result<Vec<(String, EntryKind)>, KvError>;
    /// A digest of the value under `key`, as lowercase hex (SHA-256 for embedded stores).
    async fn digest(&self, key: &str) -> Result<String, KvError>;
}

/// Why a key-value lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// Nothing is stored under this key.
    NotFound(String),
    /// The key names a dictionary where a value was asked for.
    ValueExpected(String),
    /// The key names a value where a dictionary was asked for.
    DictionaryExpected(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::NotFound(k) => write!(f, "key not found: {k:?}"),
            KvError::ValueExpected(k) => write!(f, "{k:?} is a dictionary, not a value"),
            KvError::DictionaryExpected(k) => write!(f, "{k:?} is a value, not a dictionary"),
        }
    }
}

impl core::error::Error for KvError {}
