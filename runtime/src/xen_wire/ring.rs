//! Byte rings shared with another domain: free-running `u32` indices, a power-of-two size.
//!
//! Both ends increment their index without wrapping it to the ring size; the index into the
//! buffer is `idx & (size - 1)`, and `prod - cons` (wrapping) is the number of bytes queued. A peer
//! can write anything into its index, so every computation here checks that the distance is at most
//! the ring size and reports [`RingError::Corrupt`] otherwise.

use core::fmt;

use super::mem::SharedMem;

/// The peer's indices are impossible: more bytes queued than the ring holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// `prod - cons` exceeds the ring size.
    Corrupt {
        /// The consumer index read.
        cons: u32,
        /// The producer index read.
        prod: u32,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::Corrupt { cons, prod } => {
                write!(f, "ring indices out of range (cons {cons}, prod {prod})")
            }
        }
    }
}

impl core::error::Error for RingError {}

/// A contiguous run of the ring buffer: `len` bytes starting at byte `offset` of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset into the ring's buffer (already masked).
    pub offset: usize,
    /// Number of bytes.
    pub len: usize,
}

/// Index arithmetic for one byte ring of `size` bytes (a power of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRing {
    size: u32,
}

impl ByteRing {
    /// A ring of `size` bytes.
    ///
    /// # Panics
    /// If `size` is not a power of two (a compile-time error when used in a `const`).
    pub const fn new(size: u32) -> ByteRing {
        assert!(size.is_power_of_two());
        ByteRing { size }
    }

    /// The ring's size in bytes.
    pub const fn size(&self) -> u32 {
        self.size
    }

    /// The buffer offset of free-running index `idx`.
    pub const fn mask(&self, idx: u32) -> usize {
        (idx & (self.size - 1)) as usize
    }

    /// Bytes queued between `cons` and `prod`.
    pub fn used(&self, cons: u32, prod: u32) -> Result<u32, RingError> {
        let used = prod.wrapping_sub(cons);
        if used > self.size {
            Err(RingError::Corrupt { cons, prod })
        } else {
            Ok(used)
        }
    }

    /// Bytes the producer may still write.
    pub fn free(&self, cons: u32, prod: u32) -> Result<u32, RingError> {
        Ok(self.size - self.used(cons, prod)?)
    }

    /// Where the producer writes next: at most `want` bytes, no more than are free, and not
    /// across the end of the buffer (call again after advancing `prod` for the rest).
    pub fn write_span(&self, cons: u32, prod: u32, want: usize) -> Result<Span, RingError> {
        let free = self.free(cons, prod)? as usize;
        let offset = self.mask(prod);
        let len = want.min(free).min(self.size as usize - offset);
        Ok(Span { offset, len })
    }

    /// Where the consumer reads next: at most `want` bytes, no more than are queued, and not
    /// across the end of the buffer.
    pub fn read_span(&self, cons: u32, prod: u32, want: usize) -> Result<Span, RingError> {
        let used = self.used(cons, prod)? as usize;
        let offset = self.mask(cons);
        let len = want.min(used).min(self.size as usize - offset);
        Ok(Span { offset, len })
    }
}

/// Copies `data` into the ring whose buffer starts at byte `base` of `mem` (and is `ring.size()`
/// bytes long) at `prod`, as far as it fits, and returns how many bytes were copied. The caller
/// publishes `prod + n` after a write barrier.
pub fn write<M: SharedMem + ?Sized>(
    ring: ByteRing,
    mem: &M,
    base: usize,
    cons: u32,
    prod: u32,
    data: &[u8],
) -> Result<usize, RingError> {
    let mut done = 0;
    while done < data.len() {
        let span = ring.write_span(cons, prod.wrapping_add(done as u32), data.len() - done)?;
        if span.len == 0 {
            break;
        }
        mem.write_bytes(base + span.offset, &data[done..done + span.len]);
        done += span.len;
    }
    Ok(done)
}

/// Copies up to `out.len()` queued bytes from the ring whose buffer starts at byte `base` of `mem`
/// at `cons` into `out`, and returns how many. The caller publishes `cons + n` after a barrier.
pub fn read<M: SharedMem + ?Sized>(
    ring: ByteRing,
    mem: &M,
    base: usize,
    cons: u32,
    prod: u32,
    out: &mut [u8],
) -> Result<usize, RingError> {
    let mut done = 0;
    while done < out.len() {
        let span = ring.read_span(cons.wrapping_add(done as u32), prod, out.len() - done)?;
        if span.len == 0 {
            break;
        }
        mem.read_bytes(base + span.offset, &mut out[done..done + span.len]);
        done += span.len;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: ByteRing = ByteRing::new(8);

    #[test]
    fn spans_stop_at_the_end_of_the_buffer() {
        assert_eq!(R.write_span(0, 0, 100), Ok(Span { offset: 0, len: 8 }));
        assert_eq!(R.write_span(3, 6, 100), Ok(Span { offset: 6, len: 2 }));
        assert_eq!(R.write_span(3, 8, 100), Ok(Span { offset: 0, len: 3 }));
        assert_eq!(R.read_span(6, 11, 100), Ok(Span { offset: 6, len: 2 }));
        assert_eq!(R.read_span(8, 11, 2), Ok(Span { offset: 0, len: 2 }));
        assert_eq!(R.write_span(0, 8, 1), Ok(Span { offset: 0, len: 0 }));
    }

    #[test]
    fn indices_wrap_around_u32() {
        let cons = u32::MAX - 2;
        let prod = cons.wrapping_add(5);
        assert_eq!(R.used(cons, prod), Ok(5));
        assert_eq!(R.free(cons, prod), Ok(3));
        let mut buf = [0u8; 10];
        let mem = crate::xen_wire::mem::cells(&mut buf);
        let n = write(R, mem, 2, cons, cons, b"abcdefghij").unwrap();
        assert_eq!(n, 8);
        let mut out = [0u8; 10];
        let m = read(R, mem, 2, cons, cons.wrapping_add(8), &mut out).unwrap();
        assert_eq!(&out[..m], b"abcdefgh");
    }

    #[test]
    fn corrupt_indices_are_rejected() {
        assert_eq!(R.used(0, 9), Err(RingError::Corrupt { cons: 0, prod: 9 }));
        assert!(R.write_span(10, 0, 1).is_err());
        assert!(R.read_span(0, 100, 1).is_err());
    }
}
