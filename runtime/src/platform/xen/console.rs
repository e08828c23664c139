//! The PV console: an output ring in the console page (HVM_PARAM_CONSOLE_PFN), read by
//! xenconsoled in dom0, which is notified through HVM_PARAM_CONSOLE_EVTCHN.
//!
//! Writers append to a software queue in one step (so concurrent writes never interleave and
//! keep call order), then move queued bytes into the ring as space allows. A write completes once
//! its last byte is in the ring and the backend has been notified.

use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::events::Port;
use super::{arch, hypercall, time};
use crate::xen_wire::console::{field, timestamp, OUT_RING, TIMESTAMP_MAX};

static PAGE: AtomicU32 = AtomicU32::new(0);
static PORT: AtomicU32 = AtomicU32::new(0);

/// `--uni-timestamps`: prefix each line with the time since boot.
static TIMESTAMPS: AtomicBool = AtomicBool::new(false);
/// The next byte written starts a line.
static LINE_START: AtomicBool = AtomicBool::new(true);

/// Turns on the `[    1.002003] ` line prefix (`--uni-timestamps`).
pub fn enable_timestamps() {
    TIMESTAMPS.store(true, Ordering::Relaxed);
}

/// Hands `parts` to `out` in order, with the timestamp prefix before each line's first byte
/// when timestamps are on.
fn stamped(parts: &[&[u8]], mut out: impl FnMut(&[u8])) {
    let on = TIMESTAMPS.load(Ordering::Relaxed);
    for part in parts {
        let mut rest: &[u8] = part;
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            let (line, tail) = rest.split_at(end);
            if on && LINE_START.load(Ordering::Relaxed) {
                let mut buf = [0u8; TIMESTAMP_MAX];
                let n = timestamp(time::now_ns(), &mut buf);
                out(&buf[..n]);
            }
            out(line);
            LINE_START.store(line.last() == Some(&b'\n'), Ordering::Relaxed);
            rest = tail;
        }
    }
}

struct Queue {
    bytes: VecDeque<u8>,
    /// Total bytes ever moved into the ring.
    flushed: u64,
}

static QUEUE: spin::Mutex<Queue> = spin::Mutex::new(Queue {
    bytes: VecDeque::new(),
    flushed: 0,
});

/// Finds the console page and event channel. The page lies at 0x39000000 (GUEST_MAGIC_BASE),
/// which must be mapped first.
pub fn init() -> Result<(), hypercall::XenError> {
    let pfn = hypercall::hvm_get_param(hypercall::HVM_PARAM_CONSOLE_PFN)?;
    let port = hypercall::hvm_get_param(hypercall::HVM_PARAM_CONSOLE_EVTCHN)? as u32;
    if pfn == 0 || pfn >= 1 << 20 || !super::mmu::is_mapped((pfn << 12) as u32) {
        return Err(hypercall::XenError(-22));
    }
    PORT.store(port, Ordering::Relaxed);
    PAGE.store((pfn << 12) as u32, Ordering::Release);
    Port(port).unmask();
    Ok(())
}

/// Whether the console ring is usable.
pub fn is_up() -> bool {
    PAGE.load(Ordering::Acquire) != 0
}

fn idx(offset: usize) -> *mut u32 {
    (PAGE.load(Ordering::Acquire) as usize + offset) as *mut u32
}

fn read_idx(offset: usize) -> u32 {
    // SAFETY: `offset` is one of the page's index fields; the page is mapped for the domain's
    // lifetime (`init` checked it). The backend writes it concurrently: volatile.
    unsafe { idx(offset).read_volatile() }
}

/// Copies as much of `data` as fits into the output ring and publishes it. Returns the count.
fn put(data: &[u8]) -> usize {
    if !is_up() || data.is_empty() {
        return 0;
    }
    let cons = read_idx(field::OUT_CONS);
    let mut prod = read_idx(field::OUT_PROD);
    arch::dmb(); // read the indices before writing the data
    let base = PAGE.load(Ordering::Acquire) as usize + field::OUT.start;
    let mut done = 0;
    while done < data.len() {
        let Ok(span) = OUT_RING.write_span(cons, prod, data.len() - done) else {
            break;
        };
        if span.len == 0 {
            break;
        }
        for (i, b) in data[done..done + span.len].iter().enumerate() {
            // SAFETY: `span` lies inside the 2 KiB output ring (checked by `write_span`).
            unsafe { ((base + span.offset + i) as *mut u8).write_volatile(*b) };
        }
        done += span.len;
        prod = prod.wrapping_add(span.len as u32);
    }
    if done > 0 {
        arch::dmb(); // data before the index that publishes it
                     // SAFETY: as in `read_idx`; only this guest writes out_prod.
        unsafe { idx(field::OUT_PROD).write_volatile(prod) };
        Port(PORT.load(Ordering::Relaxed)).notify();
    }
    done
}

/// Moves queued bytes into the ring. Returns the total flushed so far.
fn flush(q: &mut Queue) -> u64 {
    while !q.bytes.is_empty() {
        let (a, _) = q.bytes.as_slices();
        let n = put(a);
        if n == 0 {
            break;
        }
        q.bytes.drain(..n);
        q.flushed += n as u64;
    }
    q.flushed
}

/// Writes the concatenation of `parts` to the console as one unit (no other writer's bytes come
/// between them); completes when they are all in the ring.
pub async fn write(parts: &[&[u8]]) {
    if !is_up() {
        return;
    }
    let target = {
        let mut q = QUEUE.lock();
        stamped(parts, |b| q.bytes.extend(b.iter().copied()));
        q.flushed + q.bytes.len() as u64
    };
    loop {
        if flush(&mut QUEUE.lock()) >= target {
            return;
        }
        // The ring is full: xenconsoled notifies us after it reads; poll too, in case it doesn't.
        Port(PORT.load(Ordering::Relaxed))
            .wait_timeout(10_000_000)
            .await;
    }
}

/// Writes `bytes` without the executor (panics, faults, early boot): flushes anything queued
/// first, then spins (yielding the physical CPU) while the ring is full, for at most 2 s.
pub fn write_sync(bytes: &[u8]) {
    write_sync_parts(&[bytes]);
}

/// [`write_sync`] of the concatenation of `parts`.
pub fn write_sync_parts(parts: &[&[u8]]) {
    if !is_up() {
        return;
    }
    let deadline = time::now_ns() + 2_000_000_000;
    if let Some(mut q) = QUEUE.try_lock() {
        while !q.bytes.is_empty() && time::now_ns() < deadline {
            flush(&mut q);
            if !q.bytes.is_empty() {
                hypercall::sched_yield();
            }
        }
    }
    stamped(parts, |mut rest| {
        while !rest.is_empty() && time::now_ns() < deadline {
            let n = put(rest);
            rest = &rest[n..];
            if n == 0 {
                hypercall::sched_yield();
            }
        }
    });
}

/// Waits (at most `timeout_ns`) until the backend has read everything in the ring, so that
/// output is not lost when the domain is destroyed right after.
pub fn drain(timeout_ns: u64) {
    if !is_up() {
        return;
    }
    let deadline = time::now_ns() + timeout_ns;
    while read_idx(field::OUT_CONS) != read_idx(field::OUT_PROD) && time::now_ns() < deadline {
        Port(PORT.load(Ordering::Relaxed)).notify();
        hypercall::sched_yield();
    }
}

/// A `core::fmt::Write` sink over [`write_sync`].
pub struct SyncWriter;

impl core::fmt::Write for SyncWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_sync(s.as_bytes());
        super::debug_uart_write(s.as_bytes());
        Ok(())
    }
}
