//! What both drivers of this crate (`website-xen`, `website-nginx`) need from a board session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mirage_cli::emu;

/// The key of an `xl` file's `key = value` line.
pub fn key(line: &str) -> Option<&str> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim();
    (!k.starts_with('#') && !k.is_empty()).then_some(k)
}

/// The host's ARP on this run's TAP device (made by the board run, in this process's
/// namespace): resolve a guest within 100 ms of its coming up (the default re-asks once a
/// second). A thread sets it as soon as the device exists, until `stop`.
pub fn fast_arp(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let f = format!(
            "/proc/sys/net/ipv4/neigh/{}/retrans_time_ms",
            emu::net::TAP_NAME
        );
        while !stop.load(Ordering::Relaxed) {
            if std::fs::write(&f, "100").is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}
