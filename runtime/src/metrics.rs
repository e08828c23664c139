//! Metrics: the counters the devices and libraries keep, in one registry readable at run time.
//!
//! Each counter is a static atomic: bumping one is an atomic add, with no allocation and no
//! lock, so the hot paths (every TCP read and write, every HTTP response) keep them always, at
//! no cost worth measuring. [`snapshot`] gathers them, with the heap's use and (on Xen) the
//! network interfaces' ring counters, as `(name, value)` rows:
//!
//! * unix: `SIGUSR2` prints [`table`] on stderr (the platform starts the thread that waits for
//!   it at boot);
//! * Xen: dom0 writes `data/uni-stats/request` in the guest's xenstore directory; the guest
//!   answers by writing each row as `data/uni-stats/<name>` and then the request's value to
//!   `data/uni-stats/answered`. `uni stats --host H NAME` does that over SSH (docs/observability.md).
//!
//! The names are stable: `tcp.accepted`, `http.requests.200`, `heap.used_bytes`, …
//!
//! A device that there can be several of (netfront, blkfront) keeps its own counters
//! ([`device_counters!`]), registered once in a [`Devices`] list when it is opened; the totals
//! are summed over that list when they are read, so that a bump on the hot path is one atomic
//! add to the device's own counter, with no lock and nothing shared between devices.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::sync::atomic::{AtomicU16, AtomicU64, Ordering};

/// One counter: only ever added to.
#[derive(Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for Counter {
    fn default() -> Self {
        Counter::new()
    }
}

/// Every device of one kind opened since boot, each with its own counters `T` (a `$live` struct
/// of [`device_counters!`]): [`Devices::add`] when a device is opened, [`Devices::each`] to
/// read them. The lock is taken only there, never when a counter is bumped.
pub struct Devices<T: 'static> {
    list: spin::Mutex<Vec<&'static T>>,
}

impl<T: Default + Sync + 'static> Devices<T> {
    /// An empty list.
    pub const fn new() -> Devices<T> {
        Devices {
            list: spin::Mutex::new(Vec::new()),
        }
    }

    /// Counters for one more device, at zero. They are kept for the rest of the run (one small
    /// allocation per device opened, never freed), so the totals count every device opened
    /// since boot, closed or not.
    pub fn add(&self) -> &'static T {
        let counters: &'static T = Box::leak(Box::new(T::default()));
        self.list.lock().push(counters);
        counters
    }

    /// Calls `f` with each device's counters, in the order they were added.
    pub fn each(&self, mut f: impl FnMut(&T)) {
        for counters in self.list.lock().iter() {
            f(counters);
        }
    }
}

impl<T: Default + Sync + 'static> Default for Devices<T> {
    fn default() -> Self {
        Devices::new()
    }
}

/// Declares a device's counters twice over the same fields: `$stats`, a plain copy (`Copy`,
/// `Default`, and `+=` to sum devices), and `$live`, one [`Counter`] per field that the device
/// bumps (`live.rx_frames.inc()`) and whose `get` is a `$stats`. A [`Devices<$live>`] lists the
/// open devices for the totals.
#[cfg_attr(
    not(all(target_arch = "arm", target_os = "none")),
    allow(unused_macros) // only the Xen platform's devices and the tests use it
)]
macro_rules! device_counters {
    (
        $(#[$sm:meta])*
        pub struct $stats:ident / $live:ident {
            $( $(#[$fm:meta])* pub $f:ident, )*
        }
    ) => {
        $(#[$sm])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $stats {
            $( $(#[$fm])* pub $f: u64, )*
        }

        impl core::ops::AddAssign for $stats {
            fn add_assign(&mut self, other: $stats) {
                $( self.$f += other.$f; )*
            }
        }

        #[doc = concat!("The live counters behind [`", stringify!($stats), "`], bumped by one device.")]
        #[derive(Debug, Default)]
        pub struct $live {
            $( $(#[$fm])* pub $f: $crate::metrics::Counter, )*
        }

        impl $live {
            /// The counts now.
            pub fn get(&self) -> $stats {
                $stats { $( $f: self.$f.get(), )* }
            }
        }
    };
}
#[allow(unused_imports)] // used by the Xen platform's devices and the tests
pub(crate) use device_counters;

/// TCP connections accepted (either stack).
pub static TCP_ACCEPTED: Counter = Counter::new();
/// TCP connections opened by this unikernel.
pub static TCP_CONNECTED: Counter = Counter::new();
/// TCP connections that ended: closed by the app, or dropped (by the app, or after an error or
/// a reset), on either stack; each flow counts once.
pub static TCP_CLOSED: Counter = Counter::new();
/// Bytes read from TCP connections.
pub static TCP_RX_BYTES: Counter = Counter::new();
/// Bytes written to TCP connections.
pub static TCP_TX_BYTES: Counter = Counter::new();
/// TLS handshakes completed.
pub static TLS_HANDSHAKES: Counter = Counter::new();
/// TLS sessions that failed (a handshake refused, a bad record).
pub static TLS_FAILURES: Counter = Counter::new();
/// HTTP connections that ended with an error (timeouts, resets, a TLS failure).
pub static HTTP_ERRORS: Counter = Counter::new();

/// How many distinct HTTP statuses are counted apart; the rest go to `http.requests.other`.
const STATUS_SLOTS: usize = 16;
static STATUS: [AtomicU16; STATUS_SLOTS] = [const { AtomicU16::new(0) }; STATUS_SLOTS];
static STATUS_COUNT: [Counter; STATUS_SLOTS] = [const { Counter::new() }; STATUS_SLOTS];
static STATUS_OTHER: Counter = Counter::new();

/// Counts one HTTP response with `status`: the first 16 distinct statuses seen get a counter
/// each (a slot is claimed once, with a compare-and-swap), later ones count as `other`.
pub fn http_response(status: u16) {
    for (slot, count) in STATUS.iter().zip(&STATUS_COUNT) {
        match slot.compare_exchange(0, status, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return count.inc(),
            Err(s) if s == status => return count.inc(),
            Err(_) => {}
        }
    }
    STATUS_OTHER.inc();
}

/// Every counter now, as `(name, value)` rows in a fixed order (HTTP statuses in the order they
/// were first seen). Allocates: call it to report, not on a hot path.
pub fn snapshot() -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = Vec::new();
    let mut put = |name: &str, v: u64| rows.push((String::from(name), v));
    put("tcp.accepted", TCP_ACCEPTED.get());
    put("tcp.connected", TCP_CONNECTED.get());
    put("tcp.closed", TCP_CLOSED.get());
    put("tcp.rx_bytes", TCP_RX_BYTES.get());
    put("tcp.tx_bytes", TCP_TX_BYTES.get());
    put("tls.handshakes", TLS_HANDSHAKES.get());
    put("tls.failures", TLS_FAILURES.get());
    put("http.errors", HTTP_ERRORS.get());
    // In the order first seen (no sort: it would cost the guest's image more than it is worth;
    // `uni stats` sorts).
    let mut total = STATUS_OTHER.get();
    for (s, c) in STATUS.iter().zip(&STATUS_COUNT) {
        let s = s.load(Ordering::Relaxed);
        if s != 0 {
            total += c.get();
            rows.push((alloc::format!("http.requests.{s}"), c.get()));
        }
    }
    if STATUS_OTHER.get() > 0 {
        rows.push((String::from("http.requests.other"), STATUS_OTHER.get()));
    }
    rows.push((String::from("http.requests"), total));
    #[cfg(all(target_arch = "arm", target_os = "none"))]
    {
        let n = crate::platform::netif_totals();
        for (name, v) in [
            ("netif.rx_frames", n.rx_frames),
            ("netif.rx_bytes", n.rx_bytes),
            ("netif.rx_errors", n.rx_errors),
            ("netif.tx_frames", n.tx_frames),
            ("netif.tx_bytes", n.tx_bytes),
            ("netif.tx_errors", n.tx_errors),
            ("netif.tx_oversize", n.tx_oversize),
            ("netif.tx_full", n.tx_full),
            ("netif.bad_ids", n.bad_ids),
            ("netif.connects", n.connects),
        ] {
            rows.push((String::from(name), v));
        }
        // Only in a guest that opened a block device.
        if let Some(b) = crate::platform::block_totals() {
            for (name, v) in [
                ("blkif.requests", b.requests),
                ("blkif.flushes", b.flushes),
                ("blkif.bytes_read", b.bytes_read),
                ("blkif.bytes_written", b.bytes_written),
                ("blkif.errors", b.errors),
                ("blkif.bad_ids", b.bad_ids),
                ("blkif.bad_responses", b.bad_responses),
            ] {
                rows.push((String::from(name), v));
            }
        }
    }
    let heap = crate::platform::heap();
    rows.push((String::from("heap.used_bytes"), heap.used as u64));
    rows.push((String::from("heap.free_bytes"), heap.free as u64));
    rows.push((String::from("heap.allocations"), heap.allocations as u64));
    rows
}

/// [`snapshot`] as a table for people: a title line, then `name  value`, one row a line.
pub fn table() -> String {
    let rows = snapshot();
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = String::from("uni stats:\n");
    for (name, v) in rows {
        let _ = writeln!(out, "  {name:<width$}  {v:>12}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_statuses() {
        let before = TCP_ACCEPTED.get();
        TCP_ACCEPTED.inc();
        TCP_ACCEPTED.add(2);
        assert_eq!(TCP_ACCEPTED.get(), before + 3);
        for _ in 0..3 {
            http_response(200);
        }
        http_response(404);
        let rows = snapshot();
        let get = |n: &str| rows.iter().find(|(k, _)| k == n).map(|&(_, v)| v);
        assert!(get("http.requests.200") >= Some(3), "{rows:?}");
        assert!(get("http.requests.404") >= Some(1), "{rows:?}");
        assert!(get("http.requests") >= Some(4), "{rows:?}");
        assert!(get("heap.used_bytes").is_some());
        let t = table();
        assert!(t.starts_with("uni stats:\n  tcp.accepted "), "{t}");
        // In the same test: the slots fill up (tests share the statics).
        for s in 600..(600 + STATUS_SLOTS as u16 + 2) {
            http_response(s);
        }
        let rows = snapshot();
        assert!(rows
            .iter()
            .any(|(k, v)| k == "http.requests.other" && *v >= 1));
    }

    device_counters! {
        /// Test counters.
        pub struct TestStats / TestCounters {
            /// Frames.
            pub frames,
            /// Bytes.
            pub bytes,
        }
    }

    #[test]
    fn device_counters_are_summed_over_the_devices_when_read() {
        static DEVICES: Devices<TestCounters> = Devices::new();
        let sum = || {
            let mut t = TestStats::default();
            DEVICES.each(|c| t += c.get());
            t
        };
        assert_eq!(sum(), TestStats::default(), "no device yet");
        let a = DEVICES.add();
        let b = DEVICES.add();
        a.frames.inc();
        a.bytes.add(1500);
        b.frames.add(2);
        b.bytes.add(60);
        assert_eq!(
            a.get(),
            TestStats {
                frames: 1,
                bytes: 1500
            },
            "each device reads its own"
        );
        assert_eq!(
            sum(),
            TestStats {
                frames: 3,
                bytes: 1560
            }
        );
        // A device that is closed still counts: its counters stay in the list (`add` hands out
        // `&'static`), and a new device gets counters of its own.
        let c = DEVICES.add();
        c.bytes.add(40);
        assert_eq!(
            sum(),
            TestStats {
                frames: 3,
                bytes: 1600
            }
        );
    }
}
