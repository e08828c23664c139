use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::WallTime;

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

/// One change of a [`KvRw::batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// Stores the value under the key, replacing the value there.
    Set(&'a str, &'a [u8]),
    /// Removes the value under the key, or every value under it when it is a dictionary.
    Remove(&'a str),
}

/// The identity of a commit: the SHA-256 of its header and change list, which names its
/// parent's hash and each value's SHA-256, so that a hash stands for the whole history up to
/// it (as in Irmin or git).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CommitHash(pub [u8; 32]);

impl fmt::Display for CommitHash {
    /// Lowercase hex, 64 digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// What one commit changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// A value was stored under `key`.
    Set {
        /// The key.
        key: String,
        /// The value's size in bytes.
        size: u64,
        /// The value's SHA-256.
        sha256: [u8; 32],
    },
    /// The value or dictionary under `key` was removed.
    Removed {
        /// The key.
        key: String,
    },
}

/// One entry of a [`KvRw`] store's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The commit's number: 1 for the first, then one more for each.
    pub seq: u64,
    /// Its identity.
    pub hash: CommitHash,
    /// The commit before it; `None` for the first commit of the store.
    pub parent: Option<CommitHash>,
    /// The wall-clock time it was made at.
    pub time: WallTime,
    /// Its changes, in the order they were applied.
    pub changes: Vec<Changed>,
}

/// A persistent read-write key-value store (MirageOS's `Mirage_kv.RW`), whose changes are
/// commits, as in Irmin: each names its parent, its time and its changes.
///
/// Keys are as in [`KvRo`]. A key is a value or a dictionary, never both: setting `a/b` makes
/// `a` a dictionary.
///
/// # Contract
/// * When [`set`](KvRw::set), [`remove`](KvRw::remove) or [`batch`](KvRw::batch) returns `Ok`,
///   the change is durable: it survives a crash or a power cut.
/// * A batch is atomic: after a crash either all of its changes are there or none is, and an
///   error leaves the store as it was. A single `set` or `remove` is a batch of one.
/// * Changes of a batch apply in order; each one is checked against the state the earlier
///   ones left. Setting a key that lies under a value is [`KvError::DictionaryExpected`];
///   setting a key that is a dictionary is [`KvError::ValueExpected`]; removing nothing is
///   [`KvError::NotFound`].
/// * A change that does not fit is [`KvError::NoSpace`], saying how much it needs and how much
///   is free; the store stays usable (reads, removals, smaller changes).
/// * [`log`](KvRw::log) returns the commits newest first, each one's parent being the next.
///   Stores MAY keep only the latest commits; the last one returned then has a parent that is
///   not returned.
/// * Mutating methods take `&mut self`: one writer at a time, which the borrow checker
///   enforces (the executors are single-threaded; share a store behind a lock of your own).
pub trait KvRw: KvRo {
    /// The time of the commit that last changed the value under `key`; for a dictionary, the
    /// latest of its values'.
    async fn last_modified(&self, key: &str) -> Result<WallTime, KvError>;
    /// Stores `value` under `key`, replacing what was there.
    async fn set(&mut self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Removes the value under `key`, or the whole dictionary.
    async fn remove(&mut self, key: &str) -> Result<(), KvError>;
    /// Applies `changes` as one atomic commit.
    async fn batch(&mut self, changes: &[Change<'_>]) -> Result<(), KvError>;
    /// The history, newest commit first.
    async fn log(&self) -> Result<Vec<Commit>, KvError>;
}

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KvError {
    /// Nothing is stored under this key.
    NotFound(String),
    /// The key names a dictionary where a value was asked for.
    ValueExpected(String),
    /// The key names a value where a dictionary was asked for.
    DictionaryExpected(String),
    /// The key is not a key: empty, a leading, trailing or doubled `/`, a `.` or `..`
    /// segment, or too long.
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The change does not fit on the device, even after reclaiming the space of old values.
    NoSpace {
        /// Bytes on the device the change needs.
        needed: u64,
        /// Bytes free for it.
        free: u64,
    },
    /// What the device holds is damaged: a checksum does not match.
    Damaged {
        /// The first damaged sector.
        sector: u64,
        /// What it held and what is wrong with it.
        what: String,
    },
    /// The device failed, or the store refuses writes after an earlier failure: what failed.
    Io(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::NotFound(k) => write!(f, "key not found: {k:?}"),
            KvError::ValueExpected(k) => write!(f, "{k:?} is a dictionary, not a value"),
            KvError::DictionaryExpected(k) => write!(f, "{k:?} is a value, not a dictionary"),
            KvError::InvalidKey { key, why } => write!(f, "{key:?} is not a valid key: {why}"),
            KvError::NoSpace { needed, free } => write!(
                f,
                "no space left on the store's device: the change needs {needed} bytes, {free} are \
                 free (remove values to make room)"
            ),
            KvError::Damaged { sector, what } => write!(f, "sector {sector} is damaged: {what}"),
            KvError::Io(what) => f.write_str(what),
        }
    }
}

impl core::error::Error for KvError {}
