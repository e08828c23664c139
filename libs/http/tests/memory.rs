//! Memory per connection is bounded and returned: heap use is flat across 10,000 requests,
//! and streaming a 5 MiB file takes a few chunks of heap, not the file.
//!
//! This test binary counts every allocation of the process (peak_alloc's wrapper around the
//! system allocator), so it holds only this one test, and nothing else may allocate while it
//! measures. In particular it does not use the unix platform's executor and clock: their timers
//! live in async-io's global reactor, whose timer table (a `BTreeMap`, 456-byte nodes) is
//! reshaped by async-io's helper thread at moments of its own, and that thread's own start-up
//! allocations land whenever it is first scheduled. Under CPU load that moved the count by
//! tens or hundreds of bytes between two measurements (issue #17 item 7: 88 bytes once), which
//! was the reactor's memory, not the server's. Here the future runs on `futures_lite`'s
//! `block_on` (this thread only, no reactor), and the clock is [`Frozen`].
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::{duplex, file, site, End};
use futures_lite::future::{block_on, zip};
use uni_http::{Limits, StaticFiles};
use uni_runtime::device::net::Flow;
use uni_runtime::device::{Clock, Instant, WallTime};

#[global_allocator]
static HEAP: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

/// A clock where time stands still: `now` is always zero and no sleep of any length ends, so
/// no timeout can fire (none should: every exchange here is immediate; a timeout would end a
/// connection early and fail the test). Its timers register nothing anywhere, so the heap
/// counted is the server's and the test's alone.
struct Frozen;

impl Clock for Frozen {
    fn now(&self) -> Instant {
        Instant(0)
    }

    fn wall(&self) -> WallTime {
        WallTime {
            secs: 1_800_000_000,
            nanos: 0,
        }
    }

    async fn sleep(&self, duration: Duration) {
        if !duration.is_zero() {
            std::future::pending::<()>().await;
        }
    }
}

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
    let clock = Frozen;
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
                    let base = HEAP.current_usage();
                    HEAP.reset_peak_usage();
                    client
                        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
                        .await
                        .unwrap();
                    read_response(&mut client, &mut buf, big).await;
                    peak = HEAP.peak_usage() - base;
                }
                client.shutdown().await.unwrap();
                drop(buf);
            };
            let (result, ()) = zip(serve, requests).await;
            result.unwrap();
            drop(client);
            live_after.push(HEAP.current_usage());
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
