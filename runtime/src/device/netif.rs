//! The network interface contract: an Ethernet device that a TCP/IP stack running inside the
//! unikernel (`stack = "direct"` in unikernel.toml) drives. The Xen platform implements it with
//! netfront; the unix platform with a TAP device.

use core::task::{Context, Poll};

/// An Ethernet interface: a smoltcp [`phy::Device`](smoltcp::phy::Device) plus readiness.
///
/// # Contract
/// * `receive` returns `None` when no frame is waiting, and never blocks.
/// * `transmit` returns `None` when the device cannot take a frame now (a full ring); it MUST
///   NOT drop a frame it accepted a token for.
/// * [`poll_ready`](Netif::poll_ready) returns `Ready` when a frame may be waiting or transmit
///   space may have freed up. Otherwise it registers `cx`'s waker and MUST wake it when either
///   happens later. A frame that was already waiting when `poll_ready` was called MUST make it
///   return `Ready` (no lost wake-ups).
pub trait Netif: smoltcp::phy::Device {
    /// The interface's MAC address.
    fn mac(&self) -> [u8; 6];
    /// Readiness, as described above.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}
