//! [`SharedPage`]: memory shared with Xen or another domain (the console and xenstore pages,
//! `shared_info`, grant-table frames, ring and buffer pages granted to a backend).
//!
//! The one `unsafe` step is [`SharedPage::new`], whose caller vouches for the region. After that
//! every access is safe: bounds-checked, naturally aligned, and volatile or atomic, because the
//! peer reads and writes the region concurrently and the compiler must neither elide, merge nor
//! reorder the accesses (ordering against the peer is the explicit [`fence`](SharedMem::fence)).
//! No access ever creates a Rust reference into the region; the ring and table protocols on top
//! are [`xen_wire`](crate::xen_wire)'s, through the [`SharedMem`] trait.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use super::arch;
use crate::xen_wire::mem::SharedMem;

/// A region of `len` bytes shared with a peer: a pointer and a length. Not `Clone`: whoever made
/// it (the owner of the memory) lends it out by reference, so no handle outlives the memory.
#[derive(Debug)]
pub struct SharedPage {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the handle is only an address; every access through it is volatile or atomic, which is
// what the peer (another CPU, in effect) does too. The platform has one vCPU, and the region's
// validity does not depend on the thread that uses it (`new`'s contract).
unsafe impl Send for SharedPage {}
// SAFETY: as for `Send`: `&SharedPage` allows only volatile and atomic accesses.
unsafe impl Sync for SharedPage {}

impl SharedPage {
    /// A handle on the `len` bytes at `base`.
    ///
    /// # Safety
    /// For as long as the handle lives:
    /// * `base..base + len` is mapped, readable and writable memory;
    /// * it is accessed only through `SharedPage` handles (volatile and atomic accesses), by the
    ///   peer, and by Xen: no Rust reference to it exists, except as [`bytes`](Self::bytes) and
    ///   [`bytes_mut`](Self::bytes_mut) allow;
    /// * `base` is 8-byte aligned (pages are 4 KiB aligned), so that aligned offsets give aligned
    ///   addresses.
    pub unsafe fn new(base: NonNull<u8>, len: usize) -> SharedPage {
        debug_assert!((base.as_ptr() as usize).is_multiple_of(8));
        SharedPage { base, len }
    }

    /// The first byte's address (the region is identity-mapped: this is also its guest-physical
    /// address).
    pub fn addr(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// The guest frame number of the first byte.
    pub fn frame(&self) -> u32 {
        (self.addr() >> 12) as u32
    }

    /// A pointer to the `size` bytes at `off`, checked to lie inside the region and to be aligned
    /// to `size` (for the scalars, `size` is their width).
    fn at(&self, off: usize, size: usize, align: usize) -> *mut u8 {
        assert!(
            off <= self.len && size <= self.len - off && off.is_multiple_of(align),
            "shared page access out of range: {size} bytes at {off} of {}",
            self.len
        );
        // `off < len`, so the result stays inside the region (or one past it, when `size` is 0).
        self.base.as_ptr().wrapping_add(off)
    }

    /// The bytes `off..off + len` as a slice.
    ///
    /// # Safety
    /// While the slice lives, nobody writes those bytes: the peer has been given no write access
    /// to them, or has finished with them by the protocol (e.g. an RX buffer whose response was
    /// read and which is not posted again until the slice is gone).
    pub unsafe fn bytes(&self, off: usize, len: usize) -> &[u8] {
        let p = self.at(off, len, 1);
        // SAFETY: in range (checked by `at`) and mapped (`new`); not written meanwhile (the
        // caller's contract).
        unsafe { core::slice::from_raw_parts(p, len) }
    }

    /// The bytes `off..off + len` as a mutable slice.
    ///
    /// # Safety
    /// While the slice lives, nobody else reads or writes those bytes: the peer has no access to
    /// them (e.g. a TX buffer whose response was read, before it is handed out again) and no other
    /// slice of them exists.
    #[allow(clippy::mut_from_ref)] // the exclusivity is the caller's contract, as in `bytes`
    pub unsafe fn bytes_mut(&self, off: usize, len: usize) -> &mut [u8] {
        let p = self.at(off, len, 1);
        // SAFETY: in range (checked by `at`) and mapped (`new`); exclusive (the caller's
        // contract).
        unsafe { core::slice::from_raw_parts_mut(p, len) }
    }
}

macro_rules! volatile {
    ($read:ident, $write:ident, $t:ty) => {
        fn $read(&self, off: usize) -> $t {
            let p = self
                .at(off, core::mem::size_of::<$t>(), core::mem::align_of::<$t>())
                .cast::<$t>();
            // SAFETY: in range and aligned (checked by `at`), mapped and only accessed volatilely
            // or atomically (`new`'s contract). The target is little-endian, as the ABI.
            unsafe { p.read_volatile() }
        }
        fn $write(&self, off: usize, v: $t) {
            let p = self
                .at(off, core::mem::size_of::<$t>(), core::mem::align_of::<$t>())
                .cast::<$t>();
            // SAFETY: as in the read.
            unsafe { p.write_volatile(v) }
        }
    };
}

impl SharedMem for SharedPage {
    fn size(&self) -> usize {
        self.len
    }

    volatile!(read_u8, write_u8, u8);
    volatile!(read_u16, write_u16, u16);
    volatile!(read_u32, write_u32, u32);

    /// A single-copy-atomic 64-bit load (`ldrexd` on armv7; a volatile `u64` access may be split
    /// in two).
    fn read_u64(&self, off: usize) -> u64 {
        self.atomic_u64(off).load(Ordering::Relaxed)
    }

    fn write_u64(&self, off: usize, v: u64) {
        self.atomic_u64(off).store(v, Ordering::Relaxed)
    }

    fn read_bytes(&self, off: usize, out: &mut [u8]) {
        let p = self.at(off, out.len(), 1);
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: byte `i` of the checked range; mapped and volatile-only (`new`).
            *b = unsafe { p.add(i).read_volatile() };
        }
    }

    fn write_bytes(&self, off: usize, data: &[u8]) {
        let p = self.at(off, data.len(), 1);
        for (i, b) in data.iter().enumerate() {
            // SAFETY: as in `read_bytes`.
            unsafe { p.add(i).write_volatile(*b) };
        }
    }

    fn fence(&self) {
        arch::dmb();
    }

    fn swap_u64(&self, off: usize, v: u64) -> u64 {
        self.atomic_u64(off).swap(v, Ordering::AcqRel)
    }

    fn fetch_and_u64(&self, off: usize, mask: u64) -> u64 {
        self.atomic_u64(off).fetch_and(mask, Ordering::AcqRel)
    }

    fn compare_exchange_u16(&self, off: usize, current: u16, new: u16) -> Result<u16, u16> {
        let p = self.at(off, 2, 2).cast::<u16>();
        // SAFETY: in range and aligned (checked by `at`); mapped, and otherwise accessed only
        // volatilely or atomically, by Xen too (`new`'s contract), so an atomic view is sound.
        let a = unsafe { AtomicU16::from_ptr(p) };
        a.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
    }
}

impl SharedPage {
    fn atomic_u64(&self, off: usize) -> &AtomicU64 {
        let p = self.at(off, 8, 8).cast::<u64>();
        // SAFETY: in range and 8-byte aligned (checked by `at`, with `base` aligned by `new`'s
        // contract); mapped, and accessed only volatilely or atomically, so an atomic view for the
        // handle's lifetime is sound.
        unsafe { AtomicU64::from_ptr(p) }
    }
}

/// The address of the page `pfn` that an HVM parameter names (the console and xenstore pages, in
/// the magic region at GUEST_MAGIC_BASE), if it is a plausible 32-bit frame and mapped.
pub fn magic_page(pfn: u64) -> Option<NonNull<u8>> {
    if pfn == 0 || pfn >= 1 << 20 || !super::mmu::is_mapped((pfn << 12) as u32) {
        return None;
    }
    NonNull::new((pfn << 12) as usize as *mut u8)
}
