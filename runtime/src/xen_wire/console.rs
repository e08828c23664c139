//! The PV console page (`xen/include/public/io/console.h`): an input ring, an output ring, and
//! their indices, in one 4 KiB page shared with the console backend (xenconsoled in dom0).
//!
//! To write ([`write_out`]): copy the bytes into `out` at `out_prod`, issue a write barrier,
//! publish the new `out_prod`, then notify the console event channel.

use super::mem::SharedMem;
use super::ring::{self, ByteRing, RingError};

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

/// Bytes the backend has not read yet from the output ring (`out_prod - out_cons`, as read).
pub fn out_pending<M: SharedMem + ?Sized>(page: &M) -> u32 {
    page.read_u32(field::OUT_PROD)
        .wrapping_sub(page.read_u32(field::OUT_CONS))
}

/// Appends as much of `data` to the output ring of the console page `page` as fits and
/// publishes it: reads the indices, barrier, copies the bytes, barrier, writes `out_prod`.
/// Returns the number of bytes taken (the caller notifies the backend when it is not 0).
pub fn write_out<M: SharedMem + ?Sized>(page: &M, data: &[u8]) -> Result<usize, RingError> {
    if data.is_empty() {
        return Ok(0);
    }
    let cons = page.read_u32(field::OUT_CONS);
    let prod = page.read_u32(field::OUT_PROD);
    page.fence(); // read the indices before writing the data
    let n = ring::write(OUT_RING, page, field::OUT.start, cons, prod, data)?;
    if n > 0 {
        page.fence(); // the data before the index that publishes it
        page.write_u32(field::OUT_PROD, prod.wrapping_add(n as u32));
    }
    Ok(n)
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
    use crate::xen_wire::mem::cells;
    use alloc::borrow::ToOwned;

    #[test]
    fn layout_matches_console_h() {
        assert_eq!(IN_RING.size(), 1024);
        assert_eq!(OUT_RING.size(), 2048);
        assert_eq!(field::OUT_PROD + 4, 3088);
    }

    #[test]
    fn writes_wrap_and_stop_when_full() {
        let mut b = [0u8; 4096];
        let p = cells(&mut b);
        p.write_u32(field::OUT_CONS, 2040);
        p.write_u32(field::OUT_PROD, 2040);
        assert_eq!(write_out(p, b"0123456789abcdef").unwrap(), 16);
        assert_eq!(p.read_u32(field::OUT_PROD), 2056);
        assert_eq!(out_pending(p), 16);
        let big = [b'x'; 4096];
        assert_eq!(write_out(p, &big).unwrap(), 2048 - 16);
        assert_eq!(write_out(p, b"y").unwrap(), 0);
        assert_eq!(out_pending(p), 2048);
        assert_eq!(&b[1024 + 2040..1024 + 2048], b"01234567");
        assert_eq!(&b[1024..1024 + 8], b"89abcdef");
    }

    #[test]
    fn corrupt_indices_write_nothing() {
        let mut b = [0u8; 4096];
        let p = cells(&mut b);
        p.write_u32(field::OUT_PROD, 5000);
        assert!(write_out(p, b"abc").is_err());
        assert_eq!(p.read_u32(field::OUT_PROD), 5000);
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
