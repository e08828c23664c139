//! Memory shared with Xen or another domain, as the `xen_wire` ring and table code sees it.
//!
//! [`SharedMem`] is a byte region at fixed offsets: little-endian scalar loads and stores, byte
//! copies, a barrier, and the few atomic read-modify-writes the protocols need. Every method takes
//! `&self`, because the peer may change the memory at any time anyway; no method hands out a
//! reference into the region. Offsets out of range panic (a bug in this crate, never the peer's
//! doing: all offsets come from the layouts in `xen_wire`, and the peer's values are checked before
//! they are used as offsets).
//!
//! The Xen platform implements it with volatile and atomic accesses to a mapped page
//! (`platform::xen::SharedPage`). Host tests use a plain byte buffer through `[Cell<u8>]`
//! (`Cell::from_mut(&mut buf[..]).as_slice_of_cells()`), so the code the tests check is the code
//! that runs.

use core::cell::Cell;

/// A region of memory shared with a peer. Scalars are little-endian (the ARM ABI); `u16`, `u32`
/// and `u64` offsets must be naturally aligned for the accesses to be single-copy atomic on the
/// real page (implementations may panic otherwise).
pub trait SharedMem {
    /// Size of the region in bytes.
    fn size(&self) -> usize;

    /// Reads one byte.
    fn read_u8(&self, off: usize) -> u8;
    /// Reads a `u16`.
    fn read_u16(&self, off: usize) -> u16;
    /// Reads a `u32`.
    fn read_u32(&self, off: usize) -> u32;
    /// Reads a `u64`.
    fn read_u64(&self, off: usize) -> u64;
    /// Writes one byte.
    fn write_u8(&self, off: usize, v: u8);
    /// Writes a `u16`.
    fn write_u16(&self, off: usize, v: u16);
    /// Writes a `u32`.
    fn write_u32(&self, off: usize, v: u32);
    /// Writes a `u64`.
    fn write_u64(&self, off: usize, v: u64);

    /// Copies `out.len()` bytes at `off` into `out`.
    fn read_bytes(&self, off: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.read_u8(off + i);
        }
    }
    /// Copies `data` to `off`.
    fn write_bytes(&self, off: usize, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            self.write_u8(off + i, *b);
        }
    }

    /// A full memory barrier (`dmb ish` on ARM): every access before it is observed by the peer
    /// before any access after it.
    fn fence(&self);

    /// Atomically replaces the `u64` at `off` with `v` and returns the old value.
    fn swap_u64(&self, off: usize, v: u64) -> u64;
    /// Atomically clears the bits of the `u64` at `off` that are clear in `mask`; returns the old
    /// value.
    fn fetch_and_u64(&self, off: usize, mask: u64) -> u64;
    /// Atomically replaces the `u16` at `off` with `new` if it is `current`: `Ok(current)` then,
    /// `Err(actual)` otherwise.
    fn compare_exchange_u16(&self, off: usize, current: u16, new: u16) -> Result<u16, u16>;
}

/// A plain buffer (host tests, or a private copy). The "atomic" operations are ordinary
/// read-modify-writes: a `Cell` is never shared between threads.
impl SharedMem for [Cell<u8>] {
    fn size(&self) -> usize {
        self.len()
    }
    fn read_u8(&self, off: usize) -> u8 {
        self[off].get()
    }
    fn read_u16(&self, off: usize) -> u16 {
        let mut b = [0u8; 2];
        self.read_bytes(off, &mut b);
        u16::from_le_bytes(b)
    }
    fn read_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read_bytes(off, &mut b);
        u32::from_le_bytes(b)
    }
    fn read_u64(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        self.read_bytes(off, &mut b);
        u64::from_le_bytes(b)
    }
    fn write_u8(&self, off: usize, v: u8) {
        self[off].set(v)
    }
    fn write_u16(&self, off: usize, v: u16) {
        self.write_bytes(off, &v.to_le_bytes())
    }
    fn write_u32(&self, off: usize, v: u32) {
        self.write_bytes(off, &v.to_le_bytes())
    }
    fn write_u64(&self, off: usize, v: u64) {
        self.write_bytes(off, &v.to_le_bytes())
    }
    fn read_bytes(&self, off: usize, out: &mut [u8]) {
        let len = out.len();
        for (o, c) in out.iter_mut().zip(&self[off..off + len]) {
            *o = c.get();
        }
    }
    fn write_bytes(&self, off: usize, data: &[u8]) {
        for (c, b) in self[off..off + data.len()].iter().zip(data) {
            c.set(*b);
        }
    }
    fn fence(&self) {}
    fn swap_u64(&self, off: usize, v: u64) -> u64 {
        let old = self.read_u64(off);
        self.write_u64(off, v);
        old
    }
    fn fetch_and_u64(&self, off: usize, mask: u64) -> u64 {
        let old = self.read_u64(off);
        self.write_u64(off, old & mask);
        old
    }
    fn compare_exchange_u16(&self, off: usize, current: u16, new: u16) -> Result<u16, u16> {
        let old = self.read_u16(off);
        if old == current {
            self.write_u16(off, new);
            Ok(old)
        } else {
            Err(old)
        }
    }
}

/// A `SharedMem` view of `buf`, for tests and private buffers.
pub fn cells(buf: &mut [u8]) -> &[Cell<u8>] {
    Cell::from_mut(buf).as_slice_of_cells()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn little_endian_scalars_and_atomics() {
        let mut buf = [0u8; 16];
        let m = cells(&mut buf);
        m.write_u32(4, 0x0403_0201);
        m.write_u16(8, 0xbbaa);
        m.write_u64(8, m.read_u64(8) | 1 << 63);
        assert_eq!(m.read_u8(4), 1);
        assert_eq!(m.swap_u64(8, 7), 0x8000_0000_0000_bbaa);
        assert_eq!(m.fetch_and_u64(8, !2), 7);
        assert_eq!(m.read_u64(8), 5);
        assert_eq!(m.compare_exchange_u16(8, 4, 0), Err(5));
        assert_eq!(m.compare_exchange_u16(8, 5, 0), Ok(5));
        assert_eq!(buf[4..8], [1, 2, 3, 4]);
        assert_eq!(buf[8], 0);
    }
}
