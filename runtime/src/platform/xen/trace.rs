//! The trace ring's memory on Xen (feature `trace`, see [`crate::trace::Session`]): whole pages
//! of its own, granted read-only to dom0 and published in the guest's xenstore directory, so
//! that a program in dom0 maps and copies them while the guest runs or after it crashed.

use alloc::format;
use alloc::string::{String, ToString};
use core::alloc::Layout;
use core::sync::atomic::AtomicU32;

use super::grant::GrantTable;
use super::granted::PAGE_SIZE;

/// Where the ring is published, under the guest's own xenstore directory.
pub const TRACE_DIR: &str = "data/uni-trace";
/// Grant references per `refs-K` key (each at most 5 digits and a space: under xenstore's
/// 4096-byte value limit).
pub const REFS_PER_KEY: usize = 512;

/// `len` zeroed words in whole pages of their own, page-aligned, never freed.
pub fn trace_ring_alloc(len: usize) -> &'static [AtomicU32] {
    let bytes = (len * 4).next_multiple_of(PAGE_SIZE).max(PAGE_SIZE);
    let Ok(layout) = Layout::from_size_align(bytes, PAGE_SIZE) else {
        panic!("trace ring of {len} words: no such layout");
    };
    // SAFETY: the layout's size is not zero (at least a page).
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        alloc::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `p` is a fresh allocation of at least `len * 4` zeroed bytes, aligned to a page
    // (so to `AtomicU32`'s 4 bytes); `AtomicU32` has `u32`'s representation, for which zero is
    // valid. It is never freed, so the slice may live for the program's whole run; only atomic
    // accesses (ours, and dom0's reads of the granted pages) ever touch it.
    unsafe { core::slice::from_raw_parts(p.cast::<AtomicU32>(), len) }
}

/// Grants the pages of `ring` (from [`trace_ring_alloc`]) read-only to dom0 and publishes
/// their references under [`TRACE_DIR`]: `refs-0`, `refs-1`, … (up to [`REFS_PER_KEY`] each,
/// decimal, space-separated, in page order), then `pages` (their number) last. The grants are
/// never revoked: the ring lives until the domain ends.
pub fn trace_ring_share(ring: &'static [AtomicU32]) -> Result<usize, String> {
    let addr = ring.as_ptr() as usize;
    let pages = (ring.len() * 4).div_ceil(PAGE_SIZE);
    let table = GrantTable::new();
    let mut refs = alloc::vec::Vec::with_capacity(pages);
    for i in 0..pages {
        // Identity-mapped RAM: the address is the guest-physical one.
        let frame = ((addr + i * PAGE_SIZE) >> 12) as u32;
        let r = table
            .grant_access(0, frame, true)
            .map_err(|e| format!("granting page {i} of {pages}: {e}"))?;
        refs.push(r.0.to_string());
    }
    for (k, chunk) in refs.chunks(REFS_PER_KEY).enumerate() {
        let path = format!("{TRACE_DIR}/refs-{k}");
        super::xenstore::write_now(&path, &chunk.join(" "))
            .map_err(|e| format!("writing {path}: {e}"))?;
    }
    let path = format!("{TRACE_DIR}/pages");
    super::xenstore::write_now(&path, &pages.to_string())
        .map_err(|e| format!("writing {path}: {e}"))?;
    Ok(pages)
}
