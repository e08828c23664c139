//! Why opening a netfront fails, and the counters of a running one.

use alloc::string::String;
use core::fmt;

use crate::device::XenstoreError;
use crate::platform::xen::grant::GrantError;
use crate::platform::xen::hypercall::XenError;
use crate::platform::xen::xenbus::{XenbusError, HANDSHAKE_TIMEOUT_NS};
use crate::xen_wire::xenbus::XenbusState;

/// Why [`Netif::open`](super::Netif::open) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetfrontError {
    /// The domain has no `device/vif/<index>` (no `vif =` line for it in the xl config).
    NoSuchVif(u32),
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
    /// The backend does not offer `feature-rx-copy`, the only receive mode this driver speaks.
    NoRxCopy(String),
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
    /// Granting a ring or buffer page failed.
    Grant(GrantError),
    /// Allocating the event channel failed.
    EventChannel(XenError),
}

impl fmt::Display for NetfrontError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetfrontError::NoSuchVif(i) => write!(
                f,
                "netfront: no such vif: this domain has no device/vif/{i} (add a `vif = [ 'bridge=xenbr0' ]` line to the xl config)"
            ),
            NetfrontError::Xenstore { what, error } => write!(f, "netfront: {what}: {error}"),
            NetfrontError::BadValue { path, value } => {
                write!(f, "netfront: unusable value {value:?} in xenstore node {path}")
            }
            NetfrontError::NoRxCopy(b) => write!(
                f,
                "netfront: backend {b} does not offer feature-rx-copy (required)"
            ),
            NetfrontError::BackendClosed { backend, state } => write!(
                f,
                "netfront: backend {backend} went to state {state} during the handshake"
            ),
            NetfrontError::Timeout {
                backend,
                want,
                state,
            } => write!(
                f,
                "netfront: backend never connected: {backend} stayed in state {state} for {} s while waiting for {want}",
                HANDSHAKE_TIMEOUT_NS / 1_000_000_000
            ),
            NetfrontError::Grant(e) => write!(f, "netfront: {e}"),
            NetfrontError::EventChannel(e) => {
                write!(f, "netfront: allocating an event channel: {e}")
            }
        }
    }
}

impl core::error::Error for NetfrontError {}

impl From<XenbusError> for NetfrontError {
    fn from(e: XenbusError) -> Self {
        match e {
            // Only `Frontend::find` says so, and `open` reports the vif's index instead.
            XenbusError::NoDevice => NetfrontError::Xenstore {
                what: String::from("finding the backend"),
                error: XenstoreError::NoEntry,
            },
            XenbusError::Xenstore { what, error } => NetfrontError::Xenstore { what, error },
            XenbusError::BadValue { path, value } => NetfrontError::BadValue { path, value },
            XenbusError::BackendClosed { backend, state } => {
                NetfrontError::BackendClosed { backend, state }
            }
            XenbusError::Timeout {
                backend,
                want,
                state,
            } => NetfrontError::Timeout {
                backend,
                want,
                state,
            },
        }
    }
}

impl From<GrantError> for NetfrontError {
    fn from(e: GrantError) -> Self {
        NetfrontError::Grant(e)
    }
}

crate::metrics::device_counters! {
    /// Counters of one interface since it was opened.
    pub struct NetifStats / NetifCounters {
        /// Frames handed to the stack.
        pub rx_frames,
        /// Their bytes.
        pub rx_bytes,
        /// RX responses with an error status, no data, an impossible length or fragment flags.
        pub rx_errors,
        /// Frames sent.
        pub tx_frames,
        /// Their bytes.
        pub tx_bytes,
        /// TX responses with an error status (`NETIF_RSP_ERROR`/`DROPPED`).
        pub tx_errors,
        /// Frames the stack built longer than a page (not sent).
        pub tx_oversize,
        /// Responses naming an id that had no request in flight.
        pub bad_ids,
        /// Times `transmit` applied back-pressure (TX ring full).
        pub tx_full,
        /// Event-channel notifications sent to the backend.
        pub notifies,
        /// Extra notifications for TX requests left unanswered too long
        /// (`TX_STALL_NS`, 200 ms).
        pub tx_kicks,
        /// Connections made (1 + reconnects).
        pub connects,
    }
}
