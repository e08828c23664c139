//! Grant tables, version 1 (`xen/include/public/grant_table.h`).
//!
//! A grant entry is `{ u16 flags; u16 domid; u32 frame }`, 512 to a 4 KiB page. To grant a frame,
//! write `domid` and `frame`, issue a write barrier, then write `flags` (the entry goes live when
//! `flags` does). To revoke, compare-and-swap `flags` to 0, which fails while the peer has the
//! frame mapped (`READING`/`WRITING` set): see [`revoke`]. [`write_entry`], [`end_entry`] and
//! [`read_entry`] do this on the table itself.

use alloc::vec::Vec;
use core::fmt;

use super::mem::SharedMem;

/// Byte offsets within one entry.
pub mod field {
    use core::ops::Range;
    /// `uint16_t flags`.
    pub const FLAGS: Range<usize> = 0..2;
    /// `domid_t domid`.
    pub const DOMID: Range<usize> = 2..4;
    /// `uint32_t frame`.
    pub const FRAME: Range<usize> = 4..8;
}

/// Size of one v1 entry.
pub const ENTRY_LEN: usize = 8;
/// Entries in one 4 KiB grant-table frame.
pub const ENTRIES_PER_FRAME: u32 = 4096 / ENTRY_LEN as u32;
/// The toolstack reserves refs below this (0 = console, 1 = xenstore).
pub const FIRST_FREE_REF: u32 = 8;

/// `GTF_permit_access`: the domain may map or copy this frame.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_accept_transfer`.
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// `GTF_type_mask`.
pub const GTF_TYPE_MASK: u16 = 3;
/// `GTF_readonly`: the peer may only read.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`: set by Xen while the peer has the frame mapped or is copying from it.
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`: set by Xen while the peer has the frame mapped writable.
pub const GTF_WRITING: u16 = 1 << 4;

/// A grant reference: an index into the grant table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantRef(pub u32);

impl GrantRef {
    /// Which grant-table frame holds this entry, and the entry's byte offset in it.
    pub const fn location(self) -> (u32, usize) {
        (
            self.0 / ENTRIES_PER_FRAME,
            (self.0 % ENTRIES_PER_FRAME) as usize * ENTRY_LEN,
        )
    }
}

impl fmt::Display for GrantRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A checked view of one grant entry in a buffer.
#[derive(Debug, Clone)]
pub struct Entry<T: AsRef<[u8]>> {
    buffer: T,
}

/// A buffer was too short for the structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

impl<T: AsRef<[u8]>> Entry<T> {
    /// Wraps `buffer` (at least 8 bytes).
    pub fn new_checked(buffer: T) -> Result<Entry<T>, Truncated> {
        if buffer.as_ref().len() < ENTRY_LEN {
            return Err(Truncated);
        }
        Ok(Entry { buffer })
    }
    /// `flags`.
    pub fn flags(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_le_bytes([b[0], b[1]])
    }
    /// `domid`.
    pub fn domid(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_le_bytes([b[2], b[3]])
    }
    /// `frame`.
    pub fn frame(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_le_bytes([b[4], b[5], b[6], b[7]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Entry<T> {
    /// Sets `flags`.
    pub fn set_flags(&mut self, v: u16) {
        self.buffer.as_mut()[field::FLAGS].copy_from_slice(&v.to_le_bytes());
    }
    /// Sets `domid`.
    pub fn set_domid(&mut self, v: u16) {
        self.buffer.as_mut()[field::DOMID].copy_from_slice(&v.to_le_bytes());
    }
    /// Sets `frame`.
    pub fn set_frame(&mut self, v: u32) {
        self.buffer.as_mut()[field::FRAME].copy_from_slice(&v.to_le_bytes());
    }
}

/// A grant entry's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRepr {
    /// The domain allowed access.
    pub domid: u16,
    /// The guest frame number (guest physical address >> 12).
    pub frame: u32,
    /// Access is read-only.
    pub readonly: bool,
}

impl EntryRepr {
    /// Parses a live (`permit_access`) entry; `None` for any other kind.
    pub fn parse<T: AsRef<[u8]>>(e: &Entry<T>) -> Option<EntryRepr> {
        if e.flags() & GTF_TYPE_MASK != GTF_PERMIT_ACCESS {
            return None;
        }
        Some(EntryRepr {
            domid: e.domid(),
            frame: e.frame(),
            readonly: e.flags() & GTF_READONLY != 0,
        })
    }

    /// The `flags` value that makes this entry live; written last.
    pub fn flags(&self) -> u16 {
        GTF_PERMIT_ACCESS | if self.readonly { GTF_READONLY } else { 0 }
    }

    /// Writes everything in the order the protocol needs on a plain buffer: domid, frame, flags.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, e: &mut Entry<T>) {
        e.set_domid(self.domid);
        e.set_frame(self.frame);
        e.set_flags(self.flags());
    }
}

/// The peer still has the frame mapped or is copying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InUse;

impl fmt::Display for InUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("grant is still in use by the remote domain")
    }
}

impl core::error::Error for InUse {}

/// One step of revocation: given the current `flags`, the value to compare-and-swap in (always
/// 0), or [`InUse`] if the peer holds a mapping.
pub fn revoke(flags: u16) -> Result<u16, InUse> {
    if flags & (GTF_READING | GTF_WRITING) != 0 {
        Err(InUse)
    } else {
        Ok(0)
    }
}

/// Makes the entry at byte `at` of the grant table `table` live with `repr`, in the order the
/// protocol needs: `domid` and `frame`, a write barrier, then `flags`.
pub fn write_entry<M: SharedMem + ?Sized>(table: &M, at: usize, repr: &EntryRepr) {
    table.write_u16(at + field::DOMID.start, repr.domid);
    table.write_u32(at + field::FRAME.start, repr.frame);
    table.fence(); // domid and frame before the flags that make the entry live
    table.write_u16(at + field::FLAGS.start, repr.flags());
}

/// Revokes the entry at byte `at` of `table`: compare-and-swaps its `flags` to 0 unless the peer
/// holds a mapping ([`revoke`]); retries when Xen changed the flags meanwhile.
pub fn end_entry<M: SharedMem + ?Sized>(table: &M, at: usize) -> Result<(), InUse> {
    let flags = at + field::FLAGS.start;
    let mut cur = table.read_u16(flags);
    table.fence();
    loop {
        let new = revoke(cur)?;
        match table.compare_exchange_u16(flags, cur, new) {
            Ok(_) => return Ok(()),
            Err(now) => cur = now,
        }
    }
}

/// Reads the entry at byte `at` of `table` as it stands (`None` if it is not a live access grant).
pub fn read_entry<M: SharedMem + ?Sized>(table: &M, at: usize) -> Option<EntryRepr> {
    let mut raw = [0u8; ENTRY_LEN];
    table.read_bytes(at, &mut raw);
    EntryRepr::parse(&Entry::new_checked(&raw[..]).ok()?)
}

/// Hands out grant references `FIRST_FREE_REF..limit`, reusing freed ones first.
#[derive(Debug, Clone, Default)]
pub struct RefAllocator {
    free: Vec<u32>,
    next: u32,
    limit: u32,
}

impl RefAllocator {
    /// References up to (not including) `limit`, i.e. `limit / 512` mapped frames.
    pub fn new(limit: u32) -> RefAllocator {
        RefAllocator {
            free: Vec::new(),
            next: FIRST_FREE_REF,
            limit,
        }
    }

    /// Raises the limit after more grant frames were mapped.
    pub fn grow(&mut self, limit: u32) {
        self.limit = self.limit.max(limit);
    }

    /// The current limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// A free reference, if any is left below the limit.
    pub fn alloc(&mut self) -> Option<GrantRef> {
        if let Some(r) = self.free.pop() {
            return Some(GrantRef(r));
        }
        if self.next < self.limit {
            self.next += 1;
            return Some(GrantRef(self.next - 1));
        }
        None
    }

    /// Returns `r` to the pool. Reserved or never-allocated references are ignored.
    pub fn release(&mut self, r: GrantRef) {
        if r.0 >= FIRST_FREE_REF && r.0 < self.next && !self.free.contains(&r.0) {
            self.free.push(r.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_layout_and_repr() {
        let mut e = Entry::new_checked([0u8; 8]).unwrap();
        let r = EntryRepr {
            domid: 0,
            frame: 0x4_0123,
            readonly: true,
        };
        r.emit(&mut e);
        assert_eq!(e.buffer, [5, 0, 0, 0, 0x23, 0x01, 0x04, 0x00]);
        assert_eq!(EntryRepr::parse(&e), Some(r));
        e.set_flags(0);
        assert_eq!(EntryRepr::parse(&e), None);
        assert!(Entry::new_checked([0u8; 7]).is_err());
        assert_eq!(GrantRef(513).location(), (1, 8));
    }

    #[test]
    fn revoke_refuses_mapped_grants() {
        assert_eq!(revoke(GTF_PERMIT_ACCESS), Ok(0));
        assert_eq!(revoke(GTF_PERMIT_ACCESS | GTF_READONLY), Ok(0));
        assert_eq!(revoke(GTF_PERMIT_ACCESS | GTF_READING), Err(InUse));
        assert_eq!(revoke(GTF_PERMIT_ACCESS | GTF_WRITING), Err(InUse));
    }

    #[test]
    fn entries_in_a_table() {
        let mut t = [0u8; 4096];
        let m = crate::xen_wire::mem::cells(&mut t);
        let (_, at) = GrantRef(9).location();
        let r = EntryRepr {
            domid: 3,
            frame: 0x4_0123,
            readonly: false,
        };
        write_entry(m, at, &r);
        assert_eq!(read_entry(m, at), Some(r));
        assert_eq!(read_entry(m, at - ENTRY_LEN), None);
        m.write_u16(at, GTF_PERMIT_ACCESS | GTF_WRITING);
        assert_eq!(end_entry(m, at), Err(InUse));
        m.write_u16(at, GTF_PERMIT_ACCESS);
        assert_eq!(end_entry(m, at), Ok(()));
        assert_eq!(read_entry(m, at), None);
        assert_eq!(&t[72..80], [0, 0, 3, 0, 0x23, 0x01, 0x04, 0x00]);
    }

    #[test]
    fn refs_start_at_8_and_are_reused() {
        let mut a = RefAllocator::new(11);
        assert_eq!(a.alloc(), Some(GrantRef(8)));
        assert_eq!(a.alloc(), Some(GrantRef(9)));
        assert_eq!(a.alloc(), Some(GrantRef(10)));
        assert_eq!(a.alloc(), None);
        a.release(GrantRef(9));
        a.release(GrantRef(9));
        a.release(GrantRef(1));
        assert_eq!(a.alloc(), Some(GrantRef(9)));
        assert_eq!(a.alloc(), None);
        a.grow(ENTRIES_PER_FRAME);
        assert_eq!(a.alloc(), Some(GrantRef(11)));
    }
}
