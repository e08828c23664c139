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

/// Console output waiting for room in the ring: a fixed-capacity byte queue of `N` bytes whose
/// storage is part of the value (a `static` puts it in the image's BSS), so queueing a line never
/// allocates. Writes are kept or dropped whole ([`Backlog::push`], [`BacklogWrite`]). Once a
/// write has been dropped, every later write is dropped too until the queue has been emptied
/// into the ring; then [`Backlog::take_drops`] hands over how much was lost, for one report line
/// where the output has its gap ([`drop_report`]).
pub struct Backlog<const N: usize> {
    buf: [u8; N],
    /// Index of the first queued byte.
    head: usize,
    len: usize,
    dropped_writes: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
}

/// What [`Backlog::take_drops`] reports: the writes dropped since the last report, and the lines
/// (newlines) and bytes in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drops {
    /// Writes dropped whole.
    pub writes: u64,
    /// Newlines in them.
    pub lines: u64,
    /// Bytes in them.
    pub bytes: u64,
}

impl<const N: usize> Default for Backlog<N> {
    fn default() -> Self {
        Backlog::new()
    }
}

impl<const N: usize> Backlog<N> {
    /// An empty backlog (`const`, for a `static`).
    pub const fn new() -> Backlog<N> {
        Backlog {
            buf: [0; N],
            head: 0,
            len: 0,
            dropped_writes: 0,
            dropped_lines: 0,
            dropped_bytes: 0,
        }
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing is queued (drops may still wait to be reported).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes were dropped and not reported yet.
    pub fn dropping(&self) -> bool {
        self.dropped_writes > 0
    }

    /// Appends the concatenation of `parts` whole, or drops it whole (no room, or earlier writes
    /// dropped and not reported yet). Returns whether it was kept.
    pub fn push(&mut self, parts: &[&[u8]]) -> bool {
        let mut w = self.write();
        for p in parts {
            w.put(p);
        }
        w.commit()
    }

    /// Starts a write that is built piece by piece ([`BacklogWrite::put`]) and then kept or
    /// dropped whole ([`BacklogWrite::commit`]).
    pub fn write(&mut self) -> BacklogWrite<'_, N> {
        let start = self.len;
        BacklogWrite {
            backlog: self,
            start,
            lines: 0,
            bytes: 0,
            overflow: false,
        }
    }

    /// The oldest queued bytes: a contiguous run from the front (empty when nothing is queued).
    /// Take them off with [`consume`](Backlog::consume).
    pub fn front(&self) -> &[u8] {
        let end = (self.head + self.len).min(N);
        &self.buf[self.head..end]
    }

    /// Takes `n` bytes off the front (at most what is queued).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % N
        };
    }

    /// Once the queue is empty, the writes dropped since the last report (and clears the count,
    /// so that writes are kept again); `None` while bytes are queued or nothing was dropped.
    pub fn take_drops(&mut self) -> Option<Drops> {
        if self.len != 0 || self.dropped_writes == 0 {
            return None;
        }
        let d = Drops {
            writes: self.dropped_writes,
            lines: self.dropped_lines,
            bytes: self.dropped_bytes,
        };
        (self.dropped_writes, self.dropped_lines, self.dropped_bytes) = (0, 0, 0);
        Some(d)
    }
}

/// A write to a [`Backlog`] under way: bytes are placed as they are put, and taken back if the
/// whole write does not fit.
pub struct BacklogWrite<'a, const N: usize> {
    backlog: &'a mut Backlog<N>,
    /// The backlog's length before this write.
    start: usize,
    lines: u64,
    bytes: u64,
    overflow: bool,
}

impl<const N: usize> BacklogWrite<'_, N> {
    /// Appends `bytes` to the write.
    pub fn put(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        self.lines += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        let b = &mut *self.backlog;
        if self.overflow || b.dropped_writes > 0 || N - b.len < bytes.len() {
            self.overflow = true;
            return;
        }
        let mut at = (b.head + b.len) % N;
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = rest.len().min(N - at);
            b.buf[at..at + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            at = (at + n) % N;
        }
        b.len += bytes.len();
    }

    /// Keeps the write, or drops all of it (and counts it) if any of it did not fit or writes
    /// are being dropped. Returns whether it was kept.
    pub fn commit(self) -> bool {
        let b = self.backlog;
        if !self.overflow && b.dropped_writes == 0 {
            return true;
        }
        b.len = self.start;
        if b.len == 0 {
            b.head = 0;
        }
        b.dropped_writes += 1;
        b.dropped_lines += self.lines;
        b.dropped_bytes += self.bytes;
        false
    }
}

/// Longest [`drop_report`] line.
pub const DROP_REPORT_MAX: usize = 120;

/// The line that reports `d`, newline included, into `out`; returns its length. The same words
/// as the unix console's: `console: 12 lines (960 bytes) dropped: the output was not read fast
/// enough`.
pub fn drop_report(d: Drops, out: &mut [u8; DROP_REPORT_MAX]) -> usize {
    struct Buf<'a> {
        out: &'a mut [u8; DROP_REPORT_MAX],
        at: usize,
    }
    impl core::fmt::Write for Buf<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.at + s.len();
            if end > self.out.len() {
                return Err(core::fmt::Error);
            }
            self.out[self.at..end].copy_from_slice(s.as_bytes());
            self.at = end;
            Ok(())
        }
    }
    let mut b = Buf { out, at: 0 };
    // Two u64s in decimal (at most 40 digits) and 69 bytes of words: it always fits.
    let _ = core::fmt::Write::write_fmt(
        &mut b,
        format_args!(
            "console: {} lines ({} bytes) dropped: the output was not read fast enough\n",
            d.lines, d.bytes
        ),
    );
    b.at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen_wire::mem::cells;
    use alloc::borrow::ToOwned;
    use alloc::vec::Vec;

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

    /// Everything queued, front to back, taken off.
    fn take_all<const N: usize>(b: &mut Backlog<N>) -> Vec<u8> {
        let mut v = Vec::new();
        while !b.is_empty() {
            let f = b.front().to_vec();
            assert!(!f.is_empty());
            b.consume(f.len());
            v.extend(f);
        }
        v
    }

    #[test]
    fn backlog_keeps_order_across_the_wrap() {
        let mut b = Backlog::<16>::new();
        assert!(b.push(&[b"0123456789"]));
        b.consume(8); // "89" left, at 8..10
        assert!(b.push(&[b"abcdef", b"ghij"])); // 10..16 then 0..4
        assert_eq!(b.len(), 12);
        assert_eq!(b.front(), b"89abcdef");
        b.consume(8);
        assert_eq!(b.front(), b"ghij");
        assert!(b.push(&[b"klmnopqrstuv"])); // exactly full
        assert_eq!(b.len(), 16);
        assert_eq!(take_all(&mut b), b"ghijklmnopqrstuv");
        assert!(b.take_drops().is_none());
    }

    #[test]
    fn backlog_drops_whole_writes_and_reports_them_once_empty() {
        let mut b = Backlog::<32>::new();
        assert!(b.push(&[b"line one", b"\n"]));
        assert!(b.push(&[b"line two\n"]));
        // 18 queued, 18 + 16 > 32: dropped whole, nothing of it stays
        assert!(!b.push(&[b"line three", b"!!!!!\n"]));
        assert_eq!(b.len(), 18);
        // room for this one, but it would land after the gap: dropped too
        b.consume(9);
        assert!(!b.push(&[b"4\n"]));
        assert!(!b.push(&[b"five\nsix\n"]));
        assert_eq!(
            b.take_drops(),
            None,
            "reported only once the queue is empty"
        );
        assert_eq!(take_all(&mut b), b"line two\n");
        assert_eq!(
            b.take_drops(),
            Some(Drops {
                writes: 3,
                lines: 4,
                bytes: 16 + 2 + 9
            })
        );
        assert_eq!(b.take_drops(), None);
        assert!(b.push(&[b"seven\n"]), "kept again after the report");
        assert_eq!(take_all(&mut b), b"seven\n");
    }

    #[test]
    fn backlog_write_in_pieces_is_kept_or_dropped_whole() {
        let mut b = Backlog::<8>::new();
        let mut w = b.write();
        w.put(b"[1] ");
        w.put(b"ab\n");
        assert!(w.commit());
        let mut w = b.write();
        w.put(b"[2] "); // 7 + 4 > 8: the first piece already does not fit
        w.put(b"x\n");
        assert!(!w.commit());
        assert_eq!(b.len(), 7);
        assert_eq!(take_all(&mut b), b"[1] ab\n");
        // a write bigger than the whole backlog is dropped, not split
        assert!(!b.push(&[b"0123456789\n"]));
        assert!(b.is_empty());
        let d = b.take_drops().unwrap();
        assert_eq!((d.writes, d.lines, d.bytes), (2, 2, 6 + 11));
    }

    #[test]
    fn drop_report_reads_as_on_unix() {
        let mut out = [0u8; DROP_REPORT_MAX];
        let n = drop_report(
            Drops {
                writes: 3,
                lines: 12,
                bytes: 960,
            },
            &mut out,
        );
        assert_eq!(
            &out[..n],
            b"console: 12 lines (960 bytes) dropped: the output was not read fast enough\n"
        );
        let max = Drops {
            writes: u64::MAX,
            lines: u64::MAX,
            bytes: u64::MAX,
        };
        let n = drop_report(max, &mut out);
        assert!(out[..n].ends_with(b"fast enough\n"), "the longest one fits");
    }
}
