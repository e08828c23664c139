//! Why opening a blkfront fails, and the counters of a running one.

use alloc::string::String;
use core::fmt;

use crate::device::XenstoreError;
use crate::platform::xen::grant::GrantError;
use crate::platform::xen::hypercall::XenError;
use crate::platform::xen::xenbus::{XenbusError, HANDSHAKE_TIMEOUT_NS};
use crate::xen_wire::blkif::BadGeometry;
use crate::xen_wire::xenbus::XenbusState;

/// Why [`Block::open`](super::Block::open) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BlkfrontError {
    /// The domain has no `device/vbd/<devid>` for this disk.
    NoSuchDisk {
        /// The disk's index in the xl config.
        index: u32,
        /// Its name (`xvda`).
        name: String,
    },
    /// A xenstore operation failed.
    Xenstore {
        /// What was being done.
        what: String,
        /// The store's error.
        error: XenstoreError,
    },
    /// A xenstore node holds something unusable.
    BadValue {
        /// The node.
        path: String,
        /// Its value.
        value: String,
    },
    /// The backend's `sectors`, `sector-size` or `info` is unusable.
    BadGeometry {
        /// The backend's xenstore directory.
        backend: String,
        /// What is wrong.
        why: BadGeometry,
        /// The three values.
        values: String,
    },
    /// The backend closed during the handshake.
    BackendClosed {
        /// The backend's xenstore directory.
        backend: String,
        /// The state it went to.
        state: XenbusState,
    },
    /// The backend did not reach the next handshake state in time.
    Timeout {
        /// The backend's xenstore directory.
        backend: String,
        /// The state it was waiting for.
        want: XenbusState,
        /// The state it stayed in.
        state: XenbusState,
    },
    /// Granting the ring page failed.
    Grant(GrantError),
    /// Allocating the event channel failed.
    EventChannel(XenError),
}

impl fmt::Display for BlkfrontError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlkfrontError::NoSuchDisk { index, name } => write!(
                f,
                "blkfront: no such disk: this domain has no {name} (device/vbd/{}; add a `disk = [ 'format=raw, vdev={name}, access=rw, target=…' ]` entry to the xl config)",
                crate::xen_wire::blkif::devid(*index)
            ),
            BlkfrontError::Xenstore { what, error } => write!(f, "blkfront: {what}: {error}"),
            BlkfrontError::BadValue { path, value } => {
                write!(f, "blkfront: unusable value {value:?} in xenstore node {path}")
            }
            BlkfrontError::BadGeometry {
                backend,
                why,
                values,
            } => write!(f, "blkfront: backend {backend}: {why} ({values})"),
            BlkfrontError::BackendClosed { backend, state } => write!(
                f,
                "blkfront: backend {backend} went to state {state} during the handshake"
            ),
            BlkfrontError::Timeout {
                backend,
                want,
                state,
            } => write!(
                f,
                "blkfront: backend {backend} stayed in state {state} for {} s instead of reaching {want} (is xen-blkback loaded in dom0, and did the block hotplug script succeed?)",
                HANDSHAKE_TIMEOUT_NS / 1_000_000_000
            ),
            BlkfrontError::Grant(e) => write!(f, "blkfront: granting the ring page: {e}"),
            BlkfrontError::EventChannel(e) => {
                write!(f, "blkfront: allocating an event channel: {e}")
            }
        }
    }
}

impl core::error::Error for BlkfrontError {}

impl From<XenbusError> for BlkfrontError {
    fn from(e: XenbusError) -> BlkfrontError {
        match e {
            XenbusError::NoDevice => BlkfrontError::BadValue {
                path: String::from("backend"),
                value: String::new(),
            },
            XenbusError::Xenstore { what, error } => BlkfrontError::Xenstore { what, error },
            XenbusError::BadValue { path, value } => BlkfrontError::BadValue { path, value },
            XenbusError::BackendClosed { backend, state } => {
                BlkfrontError::BackendClosed { backend, state }
            }
            XenbusError::Timeout {
                backend,
                want,
                state,
            } => BlkfrontError::Timeout {
                backend,
                want,
                state,
            },
        }
    }
}

impl From<GrantError> for BlkfrontError {
    fn from(e: GrantError) -> BlkfrontError {
        BlkfrontError::Grant(e)
    }
}

crate::metrics::device_counters! {
    /// What a blkfront has done since it was opened.
    pub struct BlockStats / BlockCounters {
        /// Requests put on the ring (reads, writes and flushes).
        pub requests,
        /// Cache flushes sent.
        pub flushes,
        /// Bytes read by transfers that succeeded.
        pub bytes_read,
        /// Bytes written by transfers that succeeded.
        pub bytes_written,
        /// Responses with an error status.
        pub errors,
        /// Responses with an id that was not in flight.
        pub bad_ids,
        /// Responses whose operation is not the request's.
        pub bad_responses,
    }
}
