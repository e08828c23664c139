//! Fuzzes the HTTP/1.1 server: the request parser and the connection state machine
//! (`uni_http::serve_flow`, keep-alive, pipelining, bodies, conditional and range requests),
//! over the in-memory duplex flow the server tests use (libs/http/tests/common), serving a
//! small real kv_ro site with `StaticFiles`.
//!
//! Input: the bytes a client sends on one connection, then end of stream.
//! Properties: the connection ends (no hang: the client's end of stream is always enough);
//! the output is a sequence of well-formed HTTP/1.1 responses with known status codes, never
//! a 5xx; every 200 body is a file of the site, every 206 body a slice of one; the server
//! answers no more requests than the input could hold; an error says what happened.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../libs/http/tests/common/mod.rs"]
mod common;

use std::sync::OnceLock;

use futures_lite::future::zip;
use libfuzzer_sys::fuzz_target;
use uni_http::{Limits, LogFn, StaticFiles};
use uni_runtime::device::net::Flow;
use uni_runtime::kv::Embedded;
use uni_runtime::platform::{block_on, Clock};

const FILES: &[(&str, &[u8])] = &[
    ("index.html", b"<!doctype html><h1>home</h1>\n"),
    ("css/site.css", b"body { color: #333 }\n"),
    ("docs/index.html", b"<h1>docs</h1>\n"),
    ("docs/a b/\u{fc}.txt", b"umlaut\n"),
    ("empty.txt", b""),
    ("data.json", b"{\"a\": 1}\n"),
];

fn site() -> Embedded {
    static SITE: OnceLock<Embedded> = OnceLock::new();
    SITE.get_or_init(|| {
        common::pack(
            &FILES
                .iter()
                .map(|(k, v)| (*k, v.to_vec()))
                .collect::<Vec<_>>(),
        )
    })
    .clone()
}

/// Splits the server's output into (status, content-length, head, body) without knowing
/// which requests were HEAD: a body is taken when what follows it is another response or
/// the end, else the response had none.
fn responses(mut out: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut got = Vec::new();
    while !out.is_empty() {
        assert!(
            out.starts_with(b"HTTP/1.1 "),
            "{:?}",
            String::from_utf8_lossy(out)
        );
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head")
            + 4;
        let head = std::str::from_utf8(&out[..end]).expect("an ASCII head");
        let status: u16 = head[9..12].parse().expect("a status code");
        assert_eq!(&head[12..13], " ");
        assert!(
            status == 100 || !uni_http::reason(status).is_empty(),
            "unknown status {status}"
        );
        let len = head
            .split("\r\n")
            .find_map(|l| {
                let (n, v) = l.split_once(": ")?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        for line in head.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
            assert!(line.contains(": "), "header line {line:?}");
        }
        let rest = &out[end..];
        let with_body = len <= rest.len()
            && (rest.len() == len || rest[len..].starts_with(b"HTTP/1.1 "))
            && status != 304
            && status != 100;
        let body_len = if with_body { len } else { 0 };
        got.push((status, rest[..body_len].to_vec()));
        out = &rest[body_len..];
    }
    got
}

fuzz_target!(|data: &[u8]| {
    let (mut client, server) = common::duplex(1 << 22);
    let log = LogFn(|r: &uni_http::Record<'_>| assert!(!r.to_string().is_empty()));
    let clock = Clock::new();
    let limits = Limits::default();
    let handler = StaticFiles::new(site());
    let (result, out) = block_on(zip(
        uni_http::serve_flow(server, &clock, &limits, &handler, &log),
        async {
            client.write_all(data).await.unwrap();
            client.shutdown().await.unwrap();
            client.read_to_end().await
        },
    ));
    if let Err(e) = &result {
        let shown = e.to_string();
        assert!(!shown.is_empty() && !shown.contains("Some(") && !shown.contains("Err("));
    }
    let replies = responses(&out);
    // A request is at least "GET / HTTP/1.1\n\n"-sized (16 bytes) or a bad request that ends
    // the connection.
    assert!(
        replies.len() <= data.len() / 16 + 1,
        "{} replies",
        replies.len()
    );
    for (status, body) in &replies {
        assert!(
            *status < 500 || [501, 505].contains(status),
            "status {status}"
        );
        match status {
            200 if !body.is_empty() => assert!(
                FILES.iter().any(|(_, f)| f == body),
                "a 200 body that is no file: {:?}",
                String::from_utf8_lossy(body)
            ),
            206 if !body.is_empty() => assert!(
                FILES
                    .iter()
                    .any(|(_, f)| f.windows(body.len()).any(|w| w == &body[..])),
                "a 206 body that is no slice of a file"
            ),
            _ => {}
        }
    }
});
