//! The real server over an in-memory duplex flow: framing, keep-alive, pipelining, methods,
//! paths, conditional requests, limits and timeouts, without a network in between.
#![cfg(unix)]

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{assert_cut_off, duplex, file, header, responses, site, statuses};
use futures_lite::future::zip;
use uni_http::{Handler, Limits, LogFn, Redirect, StaticFiles};
use uni_runtime::device::net::Flow;
use uni_runtime::device::Clock as _;
use uni_runtime::platform::{block_on, Clock};

/// Writes `input` (then shuts down, if `shutdown`), and runs the server on the other end
/// until the connection ends. Returns everything the server sent, the log lines, and the
/// server's result.
fn exchange_with<H: Handler>(
    handler: &H,
    limits: Limits,
    input: &[u8],
    shutdown: bool,
) -> (Vec<u8>, Vec<String>, Result<(), uni_http::Error>) {
    let (mut client, server) = duplex(64 * 1024);
    let lines = Rc::new(RefCell::new(Vec::new()));
    let log = LogFn({
        let lines = lines.clone();
        move |r: &uni_http::Record<'_>| lines.borrow_mut().push(r.to_string())
    });
    let clock = Clock::new();
    let (result, got) = block_on(zip(
        uni_http::serve_flow(server, &clock, &limits, handler, &log),
        async {
            client.write_all(input).await.unwrap();
            if shutdown {
                client.shutdown().await.unwrap();
            }
            client.read_to_end().await
        },
    ));
    let lines = lines.borrow().clone();
    (got, lines, result)
}

fn exchange(input: &[u8]) -> (Vec<u8>, Vec<String>) {
    let (got, lines, result) =
        exchange_with(&StaticFiles::new(site()), Limits::default(), input, true);
    result.expect("the connection ends cleanly");
    (got, lines)
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let input = b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n\
HEAD /css/site.css HTTP/1.1\r\nHost: t\r\n\r\n\
GET /docs HTTP/1.1\r\nHost: t\r\n\r\n\
GET /docs/ HTTP/1.1\r\nHost: t\r\n\r\n\
GET / HTTP/1.1\r\nHost: t\r\n\r\n\
GET /nope.html HTTP/1.1\r\nHost: t\r\n\r\n\
GET /js/app.js?v=3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    // No shutdown: the server must close by itself after `Connection: close`.
    let (got, lines, result) =
        exchange_with(&StaticFiles::new(site()), Limits::default(), input, false);
    result.unwrap();
    let r = responses(&got, &[false, true]);
    assert_eq!(statuses(&r), [200, 200, 301, 200, 200, 404, 200]);
    assert_eq!(r[0].2, file("index.html"));
    let date = header(&r[0].1, "date").expect("a Date header");
    assert!(date.len() == 29 && date.ends_with(" GMT"), "{date}");
    assert_eq!(
        header(&r[0].1, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        header(&r[1].1, "content-length"),
        Some(&*file("css/site.css").len().to_string()),
        "HEAD: the GET's length"
    );
    assert!(r[1].2.is_empty());
    assert_eq!(
        header(&r[1].1, "content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(header(&r[2].1, "location"), Some("/docs/"));
    assert_eq!(r[3].2, file("docs/index.html"));
    assert_eq!(r[4].2, file("index.html"));
    assert_eq!(
        header(&r[6].1, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(r[6].2, file("js/app.js"), "the query is ignored");
    assert_eq!(header(&r[6].1, "connection"), Some("close"));
    assert!(
        r[..6].iter().all(|r| header(&r.1, "connection").is_none()),
        "kept alive until asked"
    );
    assert_eq!(lines.len(), 7);
    assert!(
        lines[0].starts_with("10.0.0.254:51234 \"GET /index.html HTTP/1.1\" 200 "),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with("ms"), "{}", lines[0]);
    assert!(
        lines[1].contains("\"HEAD /css/site.css HTTP/1.1\" 200 0 "),
        "{}",
        lines[1]
    );
    assert!(
        lines[5].contains("\"GET /nope.html HTTP/1.1\" 404 "),
        "{}",
        lines[5]
    );
}

#[test]
fn etags_and_if_none_match() {
    let (got, _) = exchange(b"GET /data.json HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = responses(&got, &[]);
    let etag = header(&r[0].1, "etag").unwrap().to_string();
    assert!(
        etag.len() == 66 && etag.starts_with('"') && etag.ends_with('"'),
        "a quoted SHA-256: {etag}"
    );
    assert_eq!(header(&r[0].1, "content-type"), Some("application/json"));
    let req =
        |inm: &str| format!("GET /data.json HTTP/1.1\r\nHost: t\r\nIf-None-Match: {inm}\r\n\r\n");
    let input = [
        req(&etag),
        req(&format!("\"x\", {etag}")),
        req("*"),
        req(&format!("W/{etag}")),
        req("\"other\""),
        req(&etag[..10]),
    ]
    .concat();
    let (got, _) = exchange(input.as_bytes());
    let r = responses(&got, &[]);
    assert_eq!(statuses(&r), [304, 304, 304, 304, 200, 200]);
    assert!(
        r[0].2.is_empty() && header(&r[0].1, "content-length").is_none(),
        "304 has no body"
    );
    assert_eq!(header(&r[0].1, "etag"), Some(&*etag));
    assert_eq!(r[4].2, file("data.json"));
}

#[test]
fn methods_other_than_get_and_head_get_405() {
    let (got, _) = exchange(b"POST /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcDELETE / HTTP/1.1\r\nHost: t\r\n\r\nget / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = responses(&got, &[]);
    assert_eq!(statuses(&r), [405, 405, 405], "methods are case-sensitive");
    assert!(r.iter().all(|r| header(&r.1, "allow") == Some("GET, HEAD")));
}

#[test]
fn paths_are_decoded_and_tricks_refused() {
    let (got, _) = exchange(b"GET /docs/a%20b/%C3%BC%20%E2%82%AC.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = responses(&got, &[]);
    assert_eq!(
        (r[0].0, &r[0].2[..]),
        (200, file("docs/a b/\u{fc} \u{20ac}.txt"))
    );
    for bad in [
        "/..%2findex.html",
        "/docs/../index.html",
        "/%2e%2e/index.html",
        "/index.html%00",
        "/%zz",
        "/%C3",
        "/css%2fsite.css",
        "//index.html",
        "/./index.html",
    ] {
        let (got, _) = exchange(format!("GET {bad} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert_eq!(responses(&got, &[])[0].0, 400, "{bad}");
    }
    let (got, _) = exchange(b"GET /index.html/ HTTP/1.1\r\nHost: t\r\n\r\nGET /css/ HTTP/1.1\r\nHost: t\r\n\r\nGET /docs?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = responses(&got, &[]);
    assert_eq!(
        statuses(&r),
        [404, 404, 301],
        "a file is no directory; no listings"
    );
    assert_eq!(header(&r[2].1, "location"), Some("/docs/?x=1"));
}

#[test]
fn request_bodies_are_skipped_or_refused_without_desync() {
    // A GET body within the limit is read and dropped; the next request is still found.
    let (got, _) = exchange(b"GET /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\nGET /nope HTTP/1.GET /data.json HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = responses(&got, &[]);
    assert_eq!(statuses(&r), [200, 200]);
    assert_eq!(r[1].2, file("data.json"));

    // Too large: 413, and the connection closes (what follows is never parsed).
    let limits = Limits::default().max_body(10);
    let input = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello worldGET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let (got, lines, _) = exchange_with(&StaticFiles::new(site()), limits, input, true);
    let r = responses(&got, &[]);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].0, header(&r[0].1, "connection")),
        (413, Some("close"))
    );
    assert!(lines[0].contains("\"POST / HTTP/1.1\" 413"), "{}", lines[0]);

    // Chunked: refused with 411 rather than guessed at.
    let (got, _) = exchange(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = responses(&got, &[]);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].0, header(&r[0].1, "connection")),
        (411, Some("close"))
    );

    // Smuggling attempts: conflicting lengths, both framings.
    for head in [
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\nabcd",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +4\r\n\r\nabcd",
    ] {
        let (got, _) = exchange(head.as_bytes());
        let r = responses(&got, &[]);
        assert_eq!(r.len(), 1, "{head:?}");
        assert!(r[0].0 == 400 || r[0].0 == 411, "{head:?}: {}", r[0].0);
    }

    // Expect: 100-continue is honoured before the body is read.
    let (got, _) = exchange(
        b"PUT /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert!(
        got.starts_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 405 "),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn limits_on_heads() {
    let files = StaticFiles::new(site());
    let limits = Limits::default().max_head(1024).max_headers(8);
    let status = |input: &[u8]| {
        let (got, _, _) = exchange_with(&files, limits, input, true);
        let r = responses(&got, &[]);
        assert_eq!(r.len(), 1, "{}", String::from_utf8_lossy(&got));
        assert_eq!(header(&r[0].1, "connection"), Some("close"));
        r[0].0
    };
    let long = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Long: {}\r\n\r\n",
        "a".repeat(1100)
    );
    assert_eq!(status(long.as_bytes()), 431);
    let many: String = (0..9).map(|i| format!("X-{i}: {i}\r\n")).collect();
    assert_eq!(
        status(format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes()),
        431
    );
    assert_eq!(
        status(b"GET / HTTP/1.1\r\n\r\n"),
        400,
        "HTTP/1.1 without Host"
    );
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    assert_eq!(
        status(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
        400,
        "a TLS hello on the plain port"
    );
    assert_eq!(status(b"GET / HTTP/2.0\r\nHost: t\r\n\r\n"), 400);
    assert_eq!(status(b"GET /\0 HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n"),
        400
    );
}

#[test]
fn http10_closes_unless_asked_to_keep_alive() {
    let (got, _, r) = exchange_with(
        &StaticFiles::new(site()),
        Limits::default(),
        b"GET /data.json HTTP/1.0\r\n\r\n",
        false,
    );
    r.unwrap();
    let r = responses(&got, &[]);
    assert_eq!((r.len(), header(&r[0].1, "connection")), (1, Some("close")));
    let (got, _) = exchange(
        b"GET /data.json HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /data.json HTTP/1.0\r\n\r\n",
    );
    let r = responses(&got, &[]);
    assert_eq!(r.len(), 2);
    assert_eq!(header(&r[0].1, "connection"), Some("keep-alive"));
    assert_eq!(header(&r[1].1, "connection"), Some("close"));
}

#[test]
fn big_files_stream_through_a_small_pipe() {
    let files = StaticFiles::new(site());
    let (mut client, server) = duplex(1000);
    let clock = Clock::new();
    let limits = Limits::default().chunk(4096);
    let big = file("big.bin");
    let (result, got) = block_on(zip(
        uni_http::serve_flow(server, &clock, &limits, &files, &uni_http::NoLog),
        async {
            client.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /empty.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.unwrap();
            client.read_to_end().await
        },
    ));
    result.unwrap();
    let r = responses(&got, &[]);
    assert_eq!(r[0].0, 200);
    assert_eq!(
        header(&r[0].1, "content-type"),
        Some("application/octet-stream")
    );
    assert!(r[0].2 == big, "the big file, byte for byte");
    assert_eq!(
        (r[1].0, r[1].2.len(), header(&r[1].1, "content-length")),
        (200, 0, Some("0"))
    );
}

#[test]
fn slow_heads_get_408_and_idle_connections_close() {
    let files = StaticFiles::new(site());
    let limits = Limits::default()
        .head_timeout(Duration::from_millis(300))
        .idle_timeout(Duration::from_millis(300));
    let clock = Clock::new();

    // A slowloris: a byte every 50 ms, never a whole head. The server answers 408 and
    // closes at the head timeout; the client's next write then fails.
    let (mut client, server) = duplex(4096);
    let (result, (got, elapsed)) = block_on(zip(
        uni_http::serve_flow(server, &clock, &limits, &files, &uni_http::NoLog),
        async {
            let start = Instant::now();
            for b in b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if client.write_all(&[*b]).await.is_err() {
                break;
            }
            clock.sleep(Duration::from_millis(50)).await;
        }
            (client.read_to_end().await, start.elapsed())
        },
    ));
    result.unwrap();
    assert_cut_off(
        &got,
        elapsed,
        Duration::from_millis(300),
        Duration::from_secs(3),
    );

    // A kept-alive connection with nothing more to ask is closed after the idle timeout.
    let (mut client, server) = duplex(4096);
    let (result, (got, elapsed)) = block_on(zip(
        uni_http::serve_flow(server, &clock, &limits, &files, &uni_http::NoLog),
        async {
            let start = Instant::now();
            client
                .write_all(b"GET /data.json HTTP/1.1\r\nHost: t\r\n\r\n")
                .await
                .unwrap();
            (client.read_to_end().await, start.elapsed())
        },
    ));
    result.unwrap();
    assert_eq!(responses(&got, &[])[0].2, file("data.json"));
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "closed after {elapsed:?}"
    );
}

#[test]
fn redirect_to_https() {
    let to = |port: u16, input: &str| {
        let (got, _, r) = exchange_with(
            &Redirect::https(port),
            Limits::default(),
            input.as_bytes(),
            true,
        );
        r.unwrap();
        let r = responses(&got, &[input.starts_with("HEAD")]);
        (r[0].0, header(&r[0].1, "location").map(String::from))
    };
    assert_eq!(
        to(
            443,
            "GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"
        ),
        (301, Some("https://example.com/a/b?c=d".into()))
    );
    assert_eq!(
        to(8443, "HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        (301, Some("https://example.com:8443/".into()))
    );
    assert_eq!(
        to(443, "GET /x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"),
        (301, Some("https://[::1]/x".into()))
    );
    assert_eq!(to(443, "GET /x HTTP/1.0\r\n\r\n"), (400, None), "no Host");
    assert_eq!(
        to(443, "GET /x HTTP/1.1\r\nHost: evil.com/x@y\r\n\r\n"),
        (400, None)
    );
}

/// A handler of its own, whose body declares 10 bytes and ends after 5.
struct Liar;

struct ShortBody(bool);

impl uni_http::Body for ShortBody {
    fn len(&self) -> u64 {
        10
    }

    async fn chunk(&mut self, _max: usize) -> Result<&[u8], uni_http::Error> {
        let first = std::mem::replace(&mut self.0, false);
        Ok(if first { b"12345" } else { b"" })
    }
}

impl Handler for Liar {
    type Body = ShortBody;

    async fn handle(&self, _: &uni_http::Request<'_>) -> uni_http::Response<ShortBody> {
        uni_http::Response::new(200, ShortBody(true))
    }
}

#[test]
fn a_body_shorter_than_declared_ends_only_its_connection() {
    let input = b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let (got, lines, result) = exchange_with(&Liar, Limits::default(), input, true);
    match result {
        Err(uni_http::Error::BodyLength {
            expected: 10,
            got: 5,
        }) => {}
        other => panic!("{other:?}"),
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\n12345"),
        "{text}"
    );
    assert_eq!(
        lines.len(),
        1,
        "the failed response is logged, and nothing after it is answered"
    );
    assert!(lines[0].contains("\" 200 5 "), "{}", lines[0]);
}

/// A handler that takes bodies: answers with the method, the path and the body it got.
struct Echo;

impl Handler for Echo {
    type Body = uni_http::Bytes;
    const TAKES_BODY: bool = true;
    async fn handle(&self, req: &uni_http::Request<'_>) -> uni_http::Response<uni_http::Bytes> {
        let mut text = format!("{} {} ", req.method(), req.path()).into_bytes();
        text.extend_from_slice(req.body());
        uni_http::Response::new(200, uni_http::Bytes::new(text))
    }
}

#[test]
fn a_handler_that_takes_bodies_gets_each_body_whole_in_order() {
    // pipelined: two bodies in one write, a GET without one, and a body that needs 100-continue
    let big = "x".repeat(20_000); // longer than the head buffer: read over several reads
    let input = format!(
        "PUT /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
         POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{big}\
         GET /c HTTP/1.1\r\nHost: t\r\n\r\n\
         PUT /d HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
        big.len()
    );
    let (got, _, result) = exchange_with(&Echo, Limits::default(), input.as_bytes(), true);
    result.expect("the connection ends cleanly");
    let text = String::from_utf8(got).unwrap();
    let bodies: Vec<&str> = text
        .split("HTTP/1.1 ")
        .filter(|r| r.starts_with("200"))
        .map(|r| r.split("\r\n\r\n").nth(1).unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            "PUT /a hello",
            &format!("POST /b {big}"),
            "GET /c ",
            "PUT /d hi"
        ]
    );
    assert!(text.contains("HTTP/1.1 100 Continue\r\n\r\n"), "{text}");

    // a body over max_body is refused with 413 before the handler runs
    let (got, _, _) = exchange_with(
        &Echo,
        Limits::default().max_body(10),
        b"PUT /e HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world",
        true,
    );
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    assert!(!text.contains("PUT /e"), "{text}");
}
