//! The 1:1 translation table: short-descriptor format, 1 MiB sections, one small-page table to
//! leave the stack's guard page unmapped.
//!
//! `boot.rs` maps the image and the device tree before turning the MMU on; [`map`] adds the
//! rest once the device tree has been read.

use super::arch;

/// Section attributes: Normal memory, inner and outer write-back write-allocate (TEX=001 C=1
/// B=1), shareable, read-write at PL1. Everything shared with Xen or dom0 must be mapped so.
pub const NORMAL: u32 = 0x2 | 0xc | (3 << 10) | (1 << 12) | (1 << 16);
/// Section attributes: shareable Device memory (TEX=000 C=0 B=1), execute-never, read-write.
pub const DEVICE: u32 = 0x2 | 0x4 | (1 << 4) | (3 << 10);

const SECTION: u32 = 1 << 20;

// Small-page attributes matching NORMAL: TEX=001 C B, AP=11, S.
const PAGE_NORMAL: u32 = 0x2 | 0xc | (3 << 4) | (1 << 6) | (1 << 10);

unsafe extern "C" {
    /// The first-level table (`boot.rs`), 4096 section entries, 16 KiB aligned.
    static mut uni_l1_table: [u32; 4096];
    /// One second-level table (`boot.rs`), 256 small-page entries, 1 KiB aligned.
    static mut uni_l2_guard: [u32; 256];
}

fn write_entry(entry: *mut u32, value: u32) {
    // SAFETY: `entry` points into one of the translation tables above, which only this module
    // writes. The table is in Normal cacheable memory: clean the line so the table walker sees it.
    unsafe { entry.write_volatile(value) };
    arch::dcache_clean_line(entry as usize);
}

/// Maps `[base, base + size)` 1:1 with section attributes `attrs`, rounding out to whole MiB.
/// Addresses at or above 4 GiB are ignored (the guest has no LPAE tables). Only for unmapped
/// ranges, or ranges mapped with the same attributes: no TLB maintenance is done.
pub fn map(base: u64, size: u64, attrs: u32) {
    if size == 0 || base >= 1 << 32 {
        return;
    }
    let end = (base + size).min(1 << 32);
    let first = (base >> 20) as usize;
    let last = ((end - 1) >> 20) as usize;
    for i in first..=last {
        // SAFETY: `i < 4096` since `end <= 4 GiB`; the pointer stays inside the table.
        let entry = unsafe { (&raw mut uni_l1_table).cast::<u32>().add(i) };
        write_entry(entry, ((i as u32) * SECTION) | attrs);
    }
    arch::tables_updated();
}

/// Whether `addr` is mapped by a section or page table entry.
pub fn is_mapped(addr: u32) -> bool {
    // SAFETY: reads one entry of the first-level table (index < 4096).
    let e = unsafe {
        (&raw const uni_l1_table)
            .cast::<u32>()
            .add((addr >> 20) as usize)
            .read_volatile()
    };
    e & 3 != 0
}

/// Unmaps the 4 KiB page at `guard` (the stack's guard page), by splitting its section into small
/// pages. The section must already be mapped as [`NORMAL`].
pub fn unmap_guard_page(guard: u32) {
    let section = guard & !(SECTION - 1);
    for i in 0..256u32 {
        let page = section + i * 4096;
        let value = if page == guard { 0 } else { page | PAGE_NORMAL };
        // SAFETY: `i < 256`: the pointer stays inside the second-level table.
        let entry = unsafe { (&raw mut uni_l2_guard).cast::<u32>().add(i as usize) };
        write_entry(entry, value);
    }
    let l2 = (&raw const uni_l2_guard) as u32;
    // SAFETY: `guard >> 20 < 4096`: the pointer stays inside the first-level table.
    let entry = unsafe {
        (&raw mut uni_l1_table)
            .cast::<u32>()
            .add((guard >> 20) as usize)
    };
    write_entry(entry, l2 | 0x1); // page-table descriptor, domain 0
    arch::tlb_invalidate_addr(guard as usize);
}
