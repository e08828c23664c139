//! The PV console page (`xen/include/public/io/console.h`): an input ring, an output ring, and
//! their indices, in one 4 KiB page shared with the console backend (xenconsoled in dom0).
//!
//! To write: copy the bytes into `out` at `out_prod`, issue a write barrier, publish the new
//! `out_prod`, then notify the console event channel.

use super::ring::ByteRing;

/// Byte offsets within the console page.
pub mod field {
    use core::ops::Range;
    /// `char in[1024]`: guest input, written by the backend.
    pub const IN: Range<usize> = 0..1024;
    /// `char out[2048]`: guest output, read by the backend.
    pub const OUT: Range<usize> = 1024..3072;
    /// `XENCONS_RING_IDX in_cons`.
    pub const IN_CONS: usize = 3072;
    /// `XENCONS_RING_IDX in_prod`.
    pub const IN_PROD: usize = 3076;
    /// `XENCONS_RING_IDX out_cons`.
    pub const OUT_CONS: usize = 3080;
    /// `XENCONS_RING_IDX out_prod`.
    pub const OUT_PROD: usize = 3084;
}

/// The input ring (backend to guest).
pub const IN_RING: ByteRing = ByteRing::new(field::IN.end as u32 - field::IN.start as u32);
/// The output ring (guest to backend).
pub const OUT_RING: ByteRing = ByteRing::new(field::OUT.end as u32 - field::OUT.start as u32);

/// A checked view of a console page held in a byte buffer (tests, or a copy of the page).
#[derive(Debug, Clone)]
pub struct Page<T: AsRef<[u8]>> {
    buffer: T,
}

/// The buffer is shorter than a console page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

impl<T: AsRef<[u8]>> Page<T> {
    /// Wraps `buffer`, checking that it holds the whole layout.
    pub fn new_checked(buffer: T) -> Result<Page<T>, Truncated> {
        if buffer.as_ref().len() < field::OUT_PROD + 4 {
            return Err(Truncated);
        }
        Ok(Page { buffer })
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// `out_cons`.
    pub fn out_cons(&self) -> u32 {
        self.u32_at(field::OUT_CONS)
    }
    /// `out_prod`.
    pub fn out_prod(&self) -> u32 {
        self.u32_at(field::OUT_PROD)
    }
    /// `in_cons`.
    pub fn in_cons(&self) -> u32 {
        self.u32_at(field::IN_CONS)
    }
    /// `in_prod`.
    pub fn in_prod(&self) -> u32 {
        self.u32_at(field::IN_PROD)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Page<T> {
    fn set_u32(&mut self, at: usize, v: u32) {
        self.buffer.as_mut()[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Sets `out_prod`.
    pub fn set_out_prod(&mut self, v: u32) {
        self.set_u32(field::OUT_PROD, v)
    }
    /// Sets `out_cons` (the backend's index; for tests).
    pub fn set_out_cons(&mut self, v: u32) {
        self.set_u32(field::OUT_CONS, v)
    }

    /// Appends as much of `data` to the output ring as fits and publishes `out_prod`. Returns the
    /// number of bytes taken.
    pub fn write_out(&mut self, data: &[u8]) -> Result<usize, super::ring::RingError> {
        let (cons, prod) = (self.out_cons(), self.out_prod());
        let n = super::ring::write(
            OUT_RING,
            &mut self.buffer.as_mut()[field::OUT],
            cons,
            prod,
            data,
        )?;
        self.set_out_prod(prod.wrapping_add(n as u32));
        Ok(n)
    }
}

/// Length of the longest [`timestamp`] prefix: `[` + up to 11 digits of seconds (`u64`
/// nanoseconds) + `.` + 6 digits + `] `.
pub const TIMESTAMP_MAX: usize = 1 + 11 + 1 + 6 + 2;

/// Formats `ns` nanoseconds as a Linux printk-style line prefix, `[%5u.%06u] ` (seconds padded
/// to at least 5 columns, microseconds truncated), into `out`; returns the bytes written.
pub fn timestamp(ns: u64, out: &mut [u8; TIMESTAMP_MAX]) -> usize {
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1000;
    let mut digits = [0u8; 20];
    let mut n = 0;
    let mut s = secs;
    loop {
        digits[n] = b'0' + (s % 10) as u8;
        n += 1;
        s /= 10;
        if s == 0 {
            break;
        }
    }
    let mut at = 0;
    out[at] = b'[';
    at += 1;
    for _ in n..5 {
        out[at] = b' ';
        at += 1;
    }
    for i in (0..n).rev() {
        out[at] = digits[i];
        at += 1;
    }
    out[at] = b'.';
    at += 1;
    let mut div = 100_000;
    for _ in 0..6 {
        out[at] = b'0' + ((micros / div) % 10) as u8;
        at += 1;
        div /= 10;
    }
    out[at] = b']';
    out[at + 1] = b' ';
    at + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::borrow::ToOwned;

    #[test]
    fn layout_matches_console_h() {
        assert_eq!(IN_RING.size(), 1024);
        assert_eq!(OUT_RING.size(), 2048);
        assert!(Page::new_checked([0u8; 3087]).is_err());
        assert!(Page::new_checked([0u8; 3088]).is_ok());
    }

    #[test]
    fn writes_wrap_and_stop_when_full() {
        let mut p = Page::new_checked([0u8; 4096]).unwrap();
        p.set_out_cons(2040);
        p.set_out_prod(2040);
        assert_eq!(p.write_out(b"0123456789abcdef").unwrap(), 16);
        assert_eq!(p.out_prod(), 2056);
        let b = p.buffer;
        assert_eq!(&b[1024 + 2040..1024 + 2048], b"01234567");
        assert_eq!(&b[1024..1024 + 8], b"89abcdef");
        let mut p = Page::new_checked(b).unwrap();
        let big = [b'x'; 4096];
        assert_eq!(p.write_out(&big).unwrap(), 2048 - 16);
        assert_eq!(p.write_out(b"y").unwrap(), 0);
    }

    #[test]
    fn timestamps_look_like_printk() {
        let mut b = [0u8; TIMESTAMP_MAX];
        let mut f = |ns| {
            let n = timestamp(ns, &mut b);
            core::str::from_utf8(&b[..n]).unwrap().to_owned()
        };
        assert_eq!(f(1_002_003_999), "[    1.002003] ");
        assert_eq!(f(0), "[    0.000000] ");
        assert_eq!(f(123_456_000_000_000), "[123456.000000] ");
        assert_eq!(f(59_999_999), "[    0.059999] ");
        assert_eq!(f(u64::MAX).len(), TIMESTAMP_MAX);
    }
}
