//! The device tree Xen passes in r2: finds the blob's bounds and hands its bytes to the pure
//! parser, [`crate::dtb`] (compiled on every target, and fuzzed).

pub use crate::dtb::{DtError, Gic};

/// What the platform needs from the device tree, borrowed from the blob (which is never
/// written: the strings are copied before the heap grows over it).
pub type Facts = crate::dtb::Facts<'static>;

/// The FDT header's magic, big-endian.
const FDT_MAGIC: u32 = 0xd00d_feed;

/// Reads the facts from the blob at `addr`.
///
/// # Safety
/// `addr` must be the device tree Xen passed in r2, mapped, and never written afterwards.
pub unsafe fn parse(addr: usize) -> Result<Facts, DtError> {
    let ptr = addr as *const u8;
    // SAFETY: the caller guarantees a mapped blob, which starts with the 40-byte FDT header:
    // its first 8 bytes (magic, totalsize) are readable; `read_unaligned` needs no alignment.
    let head: [u8; 8] = unsafe { core::ptr::read_unaligned(ptr.cast::<[u8; 8]>()) };
    if u32::from_be_bytes([head[0], head[1], head[2], head[3]]) != FDT_MAGIC {
        return Err(DtError::Header("wrong magic"));
    }
    let size = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    // SAFETY: the blob is `totalsize` bytes long, mapped, and never written afterwards (the
    // caller's guarantee), so it may be borrowed for 'static as an immutable slice.
    let blob: &'static [u8] = unsafe { core::slice::from_raw_parts(ptr, size) };
    crate::dtb::parse(blob)
}
