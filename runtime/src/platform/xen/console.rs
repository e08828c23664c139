//! The PV console: an output ring in the console page (HVM_PARAM_CONSOLE_PFN), read by
//! xenconsoled in dom0, which is notified through HVM_PARAM_CONSOLE_EVTCHN.
//!
//! The app's console writes ([`write`]) never wait for dom0. Each goes whole into a fixed
//! backlog of [`BACKLOG`] bytes in front of the ring (storage in the image's BSS, so a line
//! costs no allocation), then as much of the backlog as fits moves into the ring with
//! [`xen_wire::console::write_out`](crate::xen_wire::console::write_out). What does not fit is
//! moved by a task of its own when xenconsoled has read the ring (it notifies the console's
//! event channel after each read; the task also looks every 10 ms). When the backlog is full, a
//! write is dropped whole, and so is every write after it until the backlog has been emptied;
//! then one line says how much was lost, as on unix: `console: N lines (B bytes) dropped: the
//! output was not read fast enough` (issue #16, item 4: a request used to wait for its log line
//! to fit the 2 KiB ring, and xenconsoled reads a busy guest's ring only so often).
//!
//! Notifications of new output are paced ([`NOTIFY_EVERY_NS`]), so that xenconsoled's rate
//! limit does not leave the ring unread for most of each 200 ms under load.
//!
//! The synchronous writers ([`write_sync`], used by panics, faults, boot errors and the
//! platform's diagnostics) move the backlog into the ring first, then their own bytes, spinning
//! while the ring is full; [`drain`], before the domain shuts down, does the same.

use core::future::poll_fn;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::task::{Poll, Waker};

use super::events::Port;
use super::shared::SharedPage;
use super::{hypercall, time};
use crate::xen_wire::console::{self, timestamp, Backlog, DROP_REPORT_MAX, TIMESTAMP_MAX};

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

/// How much console output waits for room in the ring before writes are dropped: 16 KiB, 8
/// ring-fulls, about 160 request log lines. In the BSS, not the heap.
pub const BACKLOG: usize = 16 * 1024;

static QUEUE: spin::Mutex<Backlog<BACKLOG>> = spin::Mutex::new(Backlog::new());

/// The flusher task's waker while it waits for output to move ([`flusher`]).
static FLUSHER: spin::Mutex<Option<Waker>> = spin::Mutex::new(None);
/// The flusher task has been spawned (with the first [`write`]).
static FLUSHER_STARTED: AtomicBool = AtomicBool::new(false);

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

/// Copies as much of `data` as fits into the output ring and publishes it (without notifying
/// the backend). Returns the count.
fn put(data: &[u8]) -> usize {
    let Some(page) = PAGE.get() else {
        return 0;
    };
    console::write_out(page, data).unwrap_or(0)
}

/// At most one notification of new output per 10 ms, unless the ring is half full.
/// xenconsoled handles at most 30 events of a domain per 200 ms, then leaves the domain's ring
/// alone until the 200 ms are over (`RATE_LIMIT_ALLOWANCE`, `RATE_LIMIT_PERIOD` in
/// tools/console/daemon/io.c): a notification per request log line spends that allowance on
/// reads of a line or two, and then the ring is read only 5 times a second. With 20
/// notifications a period at most, each read takes what 10 ms of output filled.
const NOTIFY_EVERY_NS: u64 = 10_000_000;

/// When the backend was last notified, and whether bytes it was not told of are in the ring.
struct Notified {
    at: u64,
    owed: bool,
}

static NOTIFIED: spin::Mutex<Notified> = spin::Mutex::new(Notified { at: 0, owed: false });

/// Notifies the backend that the ring has new bytes.
fn notify() {
    Port(PORT.load(Ordering::Relaxed)).notify();
    let mut n = NOTIFIED.lock();
    (n.at, n.owed) = (time::now_ns(), false);
}

/// Notifies the backend of bytes put in the ring, now when `force`, when the ring is at least
/// half full or the last notification is [`NOTIFY_EVERY_NS`] old; otherwise later. Returns how
/// long until the notification owed is due (None: nothing owed).
fn notify_paced(moved: bool, force: bool) -> Option<u64> {
    let now = time::now_ns();
    {
        let mut n = NOTIFIED.lock();
        n.owed |= moved;
        if !n.owed {
            return None;
        }
        let half = PAGE
            .get()
            .is_some_and(|p| console::out_pending(p) >= console::OUT_RING.size() / 2);
        let due = n.at.saturating_add(NOTIFY_EVERY_NS);
        if !(force || half || now >= due) {
            return Some(due - now);
        }
        (n.at, n.owed) = (now, false);
    }
    Port(PORT.load(Ordering::Relaxed)).notify();
    None
}

/// Queues the concatenation of `parts` (stamped) whole, or drops it whole. The line-start state
/// the timestamps follow is left as it was when the write is dropped.
fn queue(q: &mut Backlog<BACKLOG>, parts: &[&[u8]]) -> bool {
    let line_start = LINE_START.load(Ordering::Relaxed);
    let mut w = q.write();
    stamped(parts, |b| w.put(b));
    let kept = w.commit();
    if !kept {
        LINE_START.store(line_start, Ordering::Relaxed);
    }
    kept
}

/// What [`flush`] left.
struct Flushed {
    /// The backlog is empty.
    empty: bool,
    /// A notification is owed, due in this many nanoseconds ([`notify_paced`]).
    owed: Option<u64>,
}

/// Moves queued bytes into the ring, and the drop report once the gap's turn has come, and
/// notifies the backend ([`notify_paced`]; at once when `force`).
fn flush(q: &mut Backlog<BACKLOG>, force: bool) -> Flushed {
    let mut moved = false;
    loop {
        while !q.is_empty() {
            let n = put(q.front());
            if n == 0 {
                break;
            }
            q.consume(n);
            moved = true;
        }
        match q.is_empty().then(|| q.take_drops()).flatten() {
            Some(d) => {
                let mut line = [0u8; DROP_REPORT_MAX];
                let n = console::drop_report(d, &mut line);
                let nl: &[u8] = if LINE_START.load(Ordering::Relaxed) {
                    b""
                } else {
                    b"\n"
                };
                queue(q, &[nl, &line[..n]]);
            }
            None => break,
        }
    }
    Flushed {
        empty: q.is_empty(),
        owed: notify_paced(moved, force),
    }
}

/// Writes the concatenation of `parts` to the console as one unit (no other writer's bytes come
/// between them, and it is kept or dropped whole), without waiting: what does not fit the ring
/// now waits in the backlog, moved by the flusher task, which also sends the notification when
/// it is not due yet.
pub async fn write(parts: &[&[u8]]) {
    if !is_up() {
        return;
    }
    if !FLUSHER_STARTED.swap(true, Ordering::Relaxed) {
        // Once, with the app's first console write (the task's allocation comes at start-up, not
        // under load).
        super::spawn(flusher());
    }
    let f = {
        let mut q = QUEUE.lock();
        queue(&mut q, parts);
        flush(&mut q, false)
    };
    if !f.empty || f.owed.is_some() {
        if let Some(w) = FLUSHER.lock().take() {
            w.wake();
        }
    }
}

/// The task that moves the backlog into the ring as xenconsoled reads it, and sends the
/// notifications [`notify_paced`] put off: it sleeps while there is nothing to do, and
/// otherwise waits for the console's event (xenconsoled notifies after it reads), the owed
/// notification's time, or 10 ms, whichever comes first.
async fn flusher() {
    loop {
        let f = poll_fn(|cx| {
            let mut q = QUEUE.lock();
            let f = flush(&mut q, false);
            if f.empty && f.owed.is_none() {
                *FLUSHER.lock() = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(f)
            }
        })
        .await;
        let wait = f.owed.unwrap_or(10_000_000).clamp(1, 10_000_000);
        Port(PORT.load(Ordering::Relaxed)).wait_timeout(wait).await;
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
    flush_sync(deadline);
    stamped(parts, |mut rest| {
        while !rest.is_empty() && time::now_ns() < deadline {
            let n = put(rest);
            rest = &rest[n..];
            if n == 0 {
                hypercall::sched_yield();
            } else {
                notify();
            }
        }
    });
}

/// Moves the backlog into the ring without the executor, spinning (yielding the physical CPU)
/// while the ring is full, until `deadline`. Skipped when the backlog is locked (a panic inside
/// a write).
fn flush_sync(deadline: u64) {
    if let Some(mut q) = QUEUE.try_lock() {
        while !flush(&mut q, true).empty && time::now_ns() < deadline {
            hypercall::sched_yield();
        }
    }
}

/// Waits (at most `timeout_ns`) until the backend has read everything queued and in the ring,
/// so that output is not lost when the domain is destroyed right after.
pub fn drain(timeout_ns: u64) {
    if !is_up() {
        return;
    }
    let Some(page) = PAGE.get() else {
        return;
    };
    let deadline = time::now_ns() + timeout_ns;
    flush_sync(deadline);
    while console::out_pending(page) != 0 && time::now_ns() < deadline {
        notify();
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
