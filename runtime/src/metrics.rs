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

/// TCP connections accepted (either stack).
pub static TCP_ACCEPTED: Counter = Counter::new();
/// TCP connections opened by this unikernel.
pub static TCP_CONNECTED: Counter = Counter::new();
/// TCP connections closed by this unikernel.
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
}
