//! Memory per connection is bounded and returned: heap use is flat across 10,000 requests,
//! and streaming a 5 MiB file takes a few chunks of heap, not the file.
//!
//! This test binary counts every allocation with a wrapper around the system allocator, so
//! it holds only this one test (other tests' threads would disturb the count).
#![cfg(unix)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use common::{duplex, file, site, End};
use futures_lite::future::zip;
use uni_http::{Limits, StaticFiles};
use uni_runtime::device::net::Flow;
use uni_runtime::platform::{block_on, Clock};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator with the same arguments; the
// counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout (through `alloc` above).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Reads one response of `len` body bytes (the head is found by its blank line), without
/// keeping the body.
async fn read_response(client: &mut End, buf: &mut [u8], body: usize) {
    let mut head = Vec::new();
    let mut got = 0usize;
    let mut in_body = false;
    loop {
        let n = client.read(buf).await.unwrap();
        assert!(n > 0, "the server closed early");
        if in_body {
            got += n;
        } else {
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                assert!(
                    head.starts_with(b"HTTP/1.1 200 "),
                    "{}",
                    String::from_utf8_lossy(&head)
                );
                got = head.len() - end - 4;
                in_body = true;
            }
        }
        if in_body && got >= body {
            assert_eq!(got, body, "nothing after the body");
            return;
        }
    }
}

#[test]
fn heap_is_flat_across_10000_requests_and_streaming_is_bounded() {
    let files = StaticFiles::new(site());
    let clock = Clock::new();
    let limits = Limits::default();
    let index = file("index.html").len();
    let big = file("big.bin").len();
    let mut live_after = Vec::with_capacity(100);
    let mut peak = 0;
    block_on(async {
        for conn in 0..100 {
            let (mut client, server) = duplex(16 * 1024);
            let serve = uni_http::serve_flow(server, &clock, &limits, &files, &uni_http::NoLog);
            let requests = async {
                let mut buf = vec![0u8; 16 * 1024];
                for _ in 0..100 {
                    client
                        .write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
                        .await
                        .unwrap();
                    read_response(&mut client, &mut buf, index).await;
                }
                if conn == 99 {
                    // Stream the big file: the peak is a few chunks above the baseline.
                    let base = LIVE.load(Relaxed);
                    PEAK.store(base, Relaxed);
                    client
                        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
                        .await
                        .unwrap();
                    read_response(&mut client, &mut buf, big).await;
                    peak = PEAK.load(Relaxed) - base;
                }
                client.shutdown().await.unwrap();
                drop(buf);
            };
            let (result, ()) = zip(serve, requests).await;
            result.unwrap();
            drop(client);
            live_after.push(LIVE.load(Relaxed));
        }
    });
    // Every connection gives back all it took: after each one the heap is where it was after
    // the first.
    let first = live_after[0];
    let last = *live_after.last().unwrap();
    assert_eq!(
        last, first,
        "heap use after each connection: {live_after:?}"
    );
    assert!(
        peak < 128 * 1024,
        "streaming {big} bytes took {peak} bytes of heap at its peak"
    );
    // Printed last: the test harness's capture of this line is itself on the heap.
    eprintln!("heap flat at {first} bytes over 100 connections; streaming {big} bytes peaked {peak} bytes above it");
}
