//! The PV console: an output ring in the console page (HVM_PARAM_CONSOLE_PFN), read by
//! xenconsoled in dom0, which is notified through HVM_PARAM_CONSOLE_EVTCHN.
//!
//! Writers append to a software queue in one step (so concurrent writes never interleave and
//! keep call order), then move queued bytes into the ring as space allows, with
//! [`xen_wire::console::write_out`](crate::xen_wire::console::write_out). A write completes once
//! its last byte is in the ring and the backend has been notified.

use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::events::Port;
use super::shared::SharedPage;
use super::{hypercall, time};
use crate::xen_wire::console::{self, timestamp, TIMESTAMP_MAX};

static PAGE: spin::Once<SharedPage> = spin::Once::new();
static PORT: AtomicU32 = AtomicU32::new(0);

/// `--uni-timestamps`: prefix each line with the time since boot.
static TIMESTAMPS: AtomicBool = AtomicBool::new(false);
/// The next byte written starts a line.
static LINE_START: AtomicBool = AtomicBool::new(true);

/// Turns on the `[    1.002003] ` line prefix (`--uni-timestamps`).
pub fn enable_timestamps() {
    TIMESTAMPS.store(true, Ordering::Relaxed);
}

/// Whether `--uni-timestamps` stamps each line.
pub fn timestamps_on() -> bool {
    TIMESTAMPS.load(Ordering::Relaxed)
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
    let Some(base) = super::shared::magic_page(pfn) else {
        return Err(hypercall::XenError(-22));
    };
    PORT.store(port, Ordering::Relaxed);
    // SAFETY: the console page is mapped (`magic_page` checked it) for the domain's lifetime,
    // and only this module (through the handle) and xenconsoled access it.
    PAGE.call_once(|| unsafe { SharedPage::new(base, 4096) });
    Port(port).unmask();
    Ok(())
}

/// Whether the console ring is usable.
pub fn is_up() -> bool {
    PAGE.get().is_some()
}

/// Copies as much of `data` as fits into the output ring and publishes it. Returns the count.
fn put(data: &[u8]) -> usize {
    let Some(page) = PAGE.get() else {
        return 0;
    };
    match console::write_out(page, data) {
        Ok(0) | Err(_) => 0,
        Ok(n) => {
            Port(PORT.load(Ordering::Relaxed)).notify();
            n
        }
    }
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
    if q.bytes.is_empty() && q.bytes.capacity() > 0 {
        // Give the memory back: a burst of output (a line per request under load) would
        // otherwise keep the queue at its largest size for good, a step in the heap after
        // every busier load than the last (issue #15).
        q.bytes = VecDeque::new();
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
    let Some(page) = PAGE.get() else {
        return;
    };
    let deadline = time::now_ns() + timeout_ns;
    while console::out_pending(page) != 0 && time::now_ns() < deadline {
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
