use alloc::string::String;
use core::fmt;

use uni_runtime::device::{BlockError, KvError};

/// Why [`Store::mount`](crate::Store::mount) or [`Store::format`](crate::Store::format) refused
/// a device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MountError {
    /// The device does not hold a kv_rw store (it is never formatted unless asked): what its
    /// first sector looks like.
    NotAStore(String),
    /// The device holds a store, damaged: the first damaged sector and what it held.
    Damaged {
        /// The sector.
        sector: u64,
        /// What it held and what is wrong with it.
        what: String,
    },
    /// A store this build cannot use (another version, another sector size, a device smaller
    /// than the store), or a device too small to format: why.
    Unsupported(String),
    /// The device failed: what was being done, and why.
    Io(String),
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::NotAStore(what) => write!(
                f,
                "not a uni kv_rw store: {what}; a store is formatted only when asked"
            ),
            MountError::Damaged { sector, what } => {
                write!(f, "the kv_rw store is damaged at sector {sector}: {what}")
            }
            MountError::Unsupported(what) => f.write_str(what),
            MountError::Io(what) => f.write_str(what),
        }
    }
}

impl core::error::Error for MountError {}

impl From<KvError> for MountError {
    fn from(e: KvError) -> MountError {
        match e {
            KvError::Damaged { sector, what } => MountError::Damaged { sector, what },
            other => MountError::Io(alloc::format!("{other}")),
        }
    }
}

/// A device error, saying what the store was doing.
pub(crate) fn io(doing: &str, e: BlockError) -> KvError {
    KvError::Io(alloc::format!("{doing}: {e}"))
}
