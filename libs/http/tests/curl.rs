//! The real server on host sockets (`uni_net::socket::SocketStack` on 127.0.0.1, driven by
//! uni-runtime's unix executor), serving a real `kv::Embedded` store, hit by curl and by raw
//! TCP clients: plain and over TLS.
#![cfg(unix)]

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::{assert_cut_off, file, responses, site, site_files, statuses, Rng};
use uni_http::{Limits, LogFn, Server, StaticFiles};
use uni_net::socket::SocketStack;
use uni_runtime::platform::{block_on, Clock, Random};
use uni_runtime::BootArgs;

const PKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/tls-echo/pki");

/// Runs `serve` on a thread of its own (the executor is single-threaded and the tests block
/// on curl); it sends the bound address once listening.
fn spawn_server<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(mpsc::Sender<SocketAddr>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || block_on(serve(tx)));
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the server listens")
}

fn stack() -> SocketStack {
    SocketStack::configure("net", "127.0.0.1/8", None, &BootArgs::default()).unwrap()
}

type Lines = Arc<Mutex<Vec<String>>>;

/// A plain server of the test site with `limits`, logging into the returned lines.
fn static_site(limits: Limits) -> (SocketAddr, Lines) {
    let lines: Lines = Arc::default();
    let log = lines.clone();
    let addr = spawn_server(move |tx| async move {
        let server = Server::plain(stack(), Clock::new(), 0)
            .with_limits(limits)
            .listen()
            .await
            .unwrap();
        tx.send(server.local_addr()).unwrap();
        let log = LogFn(move |r: &uni_http::Record<'_>| log.lock().unwrap().push(r.to_string()));
        let _ = server.serve(StaticFiles::new(site()), log).await;
    });
    (addr, lines)
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh directory under the target's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("uni-http-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `key` as a URL path: every byte but unreserved ones and `/` percent-encoded.
fn url_path(key: &str) -> String {
    let mut p = String::from("/");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            p.push(b as char);
        } else {
            p.push_str(&format!("%{b:02X}"));
        }
    }
    p
}

/// Fetches every file of the site with one curl over one connection (`base` is
/// `http://…` or `https://…`), and checks each byte for byte, with its Content-Type.
fn every_file_over_one_connection(base: &str, extra: &[&str], name: &str) {
    let dir = scratch(name);
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend([
        "-w".into(),
        "%{http_code} %{num_connects} %{content_type}\\n".into(),
    ]);
    let mut expected = Vec::new();
    for (i, (key, data)) in site_files().iter().enumerate() {
        args.extend([
            "-o".into(),
            dir.join(i.to_string()).display().to_string(),
            format!("{base}{}", url_path(key)),
        ]);
        expected.push((i, *key, data));
    }
    let n = expected.len();
    args.extend([
        "-o".into(),
        dir.join("root").display().to_string(),
        format!("{base}/"),
    ]);
    let out = curl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), n + 1, "{out}");
    for (line, (i, key, data)) in lines.iter().zip(&expected) {
        let mut f = line.splitn(3, ' ');
        assert_eq!(f.next(), Some("200"), "{key}: {line}");
        let connects = f.next().unwrap();
        assert_eq!(
            connects,
            if *i == 0 { "1" } else { "0" },
            "{key}: one connection, kept alive: {line}"
        );
        assert_eq!(f.next().unwrap_or(""), uni_http::content_type(key), "{key}");
        let got = std::fs::read(dir.join(i.to_string())).unwrap_or_default();
        assert!(
            got == **data,
            "{key}: {} bytes received, {} expected",
            got.len(),
            data.len()
        );
    }
    assert_eq!(std::fs::read(dir.join("root")).unwrap(), file("index.html"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn curl_gets_every_file_byte_identical_over_one_kept_alive_connection() {
    let (addr, lines) = static_site(Limits::default());
    every_file_over_one_connection(&format!("http://{addr}"), &[], "plain");
    // The log has one line per request, in the documented format.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lines.lock().unwrap().len() < site_files().len() + 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let lines = lines.lock().unwrap();
    let line = lines
        .iter()
        .find(|l| l.contains("/index.html"))
        .expect("a log line for index.html");
    let (peer, rest) = line.split_once(' ').unwrap();
    assert!(peer.starts_with("127.0.0.1:"), "{line}");
    let size = file("index.html").len();
    assert!(
        rest.starts_with(&format!("\"GET /index.html HTTP/1.1\" 200 {size} "))
            && rest.ends_with("ms"),
        "{line}"
    );
}

#[test]
fn curl_sees_head_304_404_405_301_and_400() {
    let (addr, _) = static_site(Limits::default());
    let base = format!("http://{addr}");
    let head = curl(&["-I", &format!("{base}/big.bin")]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}\r\n", file("big.bin").len())),
        "{head}"
    );
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an ETag")
        .trim()
        .to_string();
    let code = |args: &[&str]| curl(&[&["-o", "/dev/null", "-w", "%{http_code}"], args].concat());
    let big = format!("{base}/big.bin");
    assert_eq!(
        code(&["-H", &format!("If-None-Match: {etag}"), &big]),
        "304"
    );
    assert_eq!(
        code(&["-H", &format!("If-None-Match: \"nope\", {etag}"), &big]),
        "304"
    );
    assert_eq!(code(&["-H", "If-None-Match: *", &big]), "304");
    assert_eq!(code(&["-H", "If-None-Match: \"nope\"", &big]), "200");
    assert_eq!(code(&[&format!("{base}/nope.html")]), "404");
    assert_eq!(
        code(&["-X", "POST", "-d", "x=1", &format!("{base}/index.html")]),
        "405"
    );
    assert_eq!(
        code(&["-X", "DELETE", &format!("{base}/index.html")]),
        "405"
    );
    let allow = curl(&[
        "-X",
        "PUT",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{base}/"),
    ])
    .to_ascii_lowercase();
    assert!(allow.contains("allow: get, head\r\n"), "{allow}");
    assert_eq!(
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            &format!("{base}/docs")
        ]),
        format!("301 {base}/docs/")
    );
    assert_eq!(
        curl(&["-L", &format!("{base}/docs")]).as_bytes(),
        file("docs/index.html")
    );
    for bad in [
        "/../index.html",
        "/%2e%2e/index.html",
        "/docs/..%2F..%2Fetc",
        "/index.html%00",
        "/%C3%28",
    ] {
        assert_eq!(
            code(&["--path-as-is", &format!("{base}{bad}")]),
            "400",
            "{bad}"
        );
    }
}

/// Reads until the server closes (or 10 s pass).
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn pipelined_requests_in_one_write_over_tcp() {
    let (addr, _) = static_site(Limits::default());
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n\
HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
GET /data.json HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
GET /css/site.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let got = read_all(&mut s);
    let r = responses(&got, &[false, true]);
    assert_eq!(statuses(&r), [200, 200, 200, 200, 200]);
    assert_eq!(r[0].2, file("index.html"));
    assert!(r[1].2.is_empty());
    assert_eq!(r[2].2, file("data.json"));
    assert!(r[3].2 == file("big.bin"));
    assert_eq!(r[4].2, file("css/site.css"));
}

/// One malformed or random request, as the `i`th of a deterministic sequence.
fn malformed(rng: &mut Rng) -> Vec<u8> {
    let good = b"GET /index.html HTTP/1.1\r\nHost: t\r\nAccept: */*\r\n\r\n".to_vec();
    match rng.below(8) {
        0 => {
            let n = 1 + rng.below(3000) as usize;
            rng.bytes(n)
        }
        1 => {
            let mut r = good.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(r.len() as u64) as usize;
                r[i] = rng.next() as u8;
            }
            r
        }
        2 => {
            let mut r = good[..rng.below(good.len() as u64) as usize].to_vec();
            let n = rng.below(64) as usize;
            r.extend(rng.bytes(n));
            r
        }
        3 => format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "x".repeat(9000)
        )
        .into_bytes(),
        4 => format!(
            "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
            (0..100)
                .map(|i| format!("X-{i}: y\r\n"))
                .collect::<String>()
        )
        .into_bytes(),
        5 => {
            let target: String = (0..rng.below(40))
                .map(|_| (b'!' + rng.below(94) as u8) as char)
                .collect();
            format!("GET /{target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
        }
        6 => {
            let cl =
                ["-1", "99999999999999999999", "1, 2", "abc", "20000000"][rng.below(5) as usize];
            format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {cl}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").into_bytes()
        }
        _ => {
            let target: String = (0..rng.below(12))
                .map(|_| format!("%{:02x}", rng.next() as u8))
                .collect();
            format!("GET /{target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
        }
    }
}

#[test]
fn a_thousand_malformed_requests_then_a_good_one() {
    let (addr, _) = static_site(Limits::default().head_timeout(Duration::from_secs(2)));
    let mut rng = Rng(0xbad_5eed);
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..1000 {
        let req = malformed(&mut rng);
        let mut s = TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("request {i}: the server is gone: {e}"));
        // The server may answer and close before reading everything: ignore write errors.
        let _ = s.write_all(&req);
        let _ = s.shutdown(Shutdown::Write);
        let got = read_all(&mut s);
        let status = if got.is_empty() {
            0
        } else {
            assert!(
                got.starts_with(b"HTTP/1.1 "),
                "request {i} {:?}: {:?}",
                String::from_utf8_lossy(&req),
                String::from_utf8_lossy(&got)
            );
            std::str::from_utf8(&got[9..12])
                .unwrap()
                .parse::<u16>()
                .unwrap()
        };
        assert!(
            [0, 200, 301, 400, 404, 405, 411, 413, 431].contains(&status),
            "request {i}: {status}"
        );
        *seen.entry(status).or_insert(0) += 1;
    }
    eprintln!("statuses of the malformed requests (0: closed without a response): {seen:?}");
    for status in [400, 404, 411, 431] {
        assert!(
            seen.contains_key(&status),
            "the mix reaches {status}: {seen:?}"
        );
    }
    assert_eq!(
        curl(&[&format!("http://{addr}/index.html")]).as_bytes(),
        file("index.html")
    );
}

#[test]
fn a_slowloris_is_cut_off_and_does_not_hold_up_others() {
    let (addr, _) = static_site(Limits::default().head_timeout(Duration::from_secs(2)));
    let mut slow = TcpStream::connect(addr).unwrap();
    let mut writer = slow.try_clone().unwrap();
    let start = Instant::now();
    let drip = std::thread::spawn(move || {
        let _ = writer.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n");
        for i in 0..40 {
            std::thread::sleep(Duration::from_millis(100));
            if writer
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .is_err()
            {
                break;
            }
        }
    });
    // Meanwhile other clients are served at once.
    let quick = Instant::now();
    assert_eq!(
        curl(&[&format!("http://{addr}/data.json")]).as_bytes(),
        file("data.json")
    );
    assert!(
        quick.elapsed() < Duration::from_millis(1500),
        "served in {:?} beside a slowloris",
        quick.elapsed()
    );
    let got = read_all(&mut slow);
    let elapsed = start.elapsed();
    assert_cut_off(
        &got,
        elapsed,
        Duration::from_secs(2),
        Duration::from_secs(5),
    );
    drip.join().unwrap();
}

#[test]
fn https_with_curl_handshakes_per_connection_and_keeps_alive() {
    let addr = spawn_server(|tx| async move {
        let pem = |f: &str| -> &'static [u8] {
            Box::leak(
                std::fs::read(format!("{PKI}/{f}"))
                    .unwrap()
                    .into_boxed_slice(),
            )
        };
        let files = uni_tls::Files {
            cert: Some(pem("server.pem")),
            key: Some(pem("server.key")),
            alpn: &["http/1.1"],
            ..Default::default()
        };
        let tls = uni_tls::Tls::new(stack(), Random::new(), Clock::new(), &files).unwrap();
        let server = Server::tls(tls.clone(), Clock::new(), 0)
            .listen()
            .await
            .unwrap();
        tx.send(server.local_addr()).unwrap();
        let _ = server
            .serve(StaticFiles::new(site()), uni_http::NoLog)
            .await;
    });
    // A client that connects and never says hello must not hold up the accept loop.
    let _silent = TcpStream::connect(addr).unwrap();
    let base = format!("https://localhost:{}", addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    let cacert = format!("{PKI}/ca.pem");
    every_file_over_one_connection(&base, &["--resolve", &resolve, "--cacert", &cacert], "tls");
}

#[test]
fn connections_beyond_the_limit_wait_for_a_free_one() {
    let limits = Limits::default()
        .max_connections(1)
        .idle_timeout(Duration::from_secs(1));
    let (addr, _) = static_site(limits);
    // A client that was answered and keeps its connection holds the only place until its idle
    // timeout: only connections without a complete head are evicted (tests/slowloris.rs).
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.write_all(b"GET /data.json HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.ends_with(file("data.json")) {
        match kept.read(&mut buf) {
            Ok(n) if n > 0 => answer.extend_from_slice(&buf[..n]),
            r => panic!("the first client's answer ended early: {r:?}"),
        }
    }
    let start = Instant::now();
    assert_eq!(
        curl(&[&format!("http://{addr}/data.json")]).as_bytes(),
        file("data.json")
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(600) && waited < Duration::from_secs(5),
        "served after {waited:?}"
    );
    assert_eq!(read_all(&mut kept), b"", "closed quietly when idle");
}
