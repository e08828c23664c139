//! What the server tests share: a real kv_ro pack of a test site, and an in-memory duplex
//! flow pair.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::OnceLock;
use std::task::{Poll, Waker};
use std::time::Duration;

use sha2::Digest;
use uni_runtime::device::net::{Flow, NetError};
use uni_runtime::kv::Embedded;

/// A pack in the format `uni configure` writes (see `uni_runtime::kv`), with real SHA-256
/// digests, so that the store under test is the real `Embedded`.
pub fn pack(files: &[(&str, Vec<u8>)]) -> Embedded {
    let values: Vec<(&str, &[u8], [u8; 32])> = files
        .iter()
        .map(|(k, v)| (*k, v.as_slice(), sha2::Sha256::digest(v).into()))
        .collect();
    let out = uni_runtime::kv::pack(&values);
    Embedded::new(Box::leak(out.into_boxed_slice())).expect("the test pack is well formed")
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A file of `n` pseudo-random bytes.
pub fn big_file(n: usize) -> Vec<u8> {
    Rng(0x5eed).bytes(n)
}

/// The test site: pages, a directory with an index, names that need URL-decoding, and a
/// several-megabyte file.
pub fn site_files() -> &'static [(&'static str, Vec<u8>)] {
    static FILES: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        vec![
            ("index.html", b"<!doctype html><h1>home</h1>\n".to_vec()),
            ("css/site.css", b"body { color: #333 }\n".to_vec()),
            ("js/app.js", b"console.log('hi');\n".to_vec()),
            ("data.json", b"{\"a\": 1}\n".to_vec()),
            ("docs/index.html", b"<h1>docs</h1>\n".to_vec()),
            (
                "docs/a b/\u{fc} \u{20ac}.txt",
                "umlaut and euro: \u{fc} \u{20ac}\n".as_bytes().to_vec(),
            ),
            (
                "img/logo.png",
                b"\x89PNG\r\n\x1a\n not really a png".to_vec(),
            ),
            ("empty.txt", Vec::new()),
            ("big.bin", big_file(5 * 1024 * 1024 + 123)),
        ]
    })
}

/// The test site as a store (packed once per test binary).
pub fn site() -> Embedded {
    static SITE: OnceLock<Embedded> = OnceLock::new();
    SITE.get_or_init(|| pack(site_files())).clone()
}

/// The content of `key` in the test site.
pub fn file(key: &str) -> &'static [u8] {
    &site_files()
        .iter()
        .find(|(k, _)| *k == key)
        .expect("a file of the test site")
        .1
}

struct Pipe {
    bytes: VecDeque<u8>,
    cap: usize,
    /// The writer shut down (or went away): the reader sees end of stream once empty.
    write_closed: bool,
    /// The reader went away: writes fail.
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Pipe {
    fn new(cap: usize) -> Rc<RefCell<Pipe>> {
        Rc::new(RefCell::new(Pipe {
            bytes: VecDeque::new(),
            cap,
            write_closed: false,
            read_closed: false,
            reader: None,
            writer: None,
        }))
    }
}

/// One end of an in-memory duplex connection: a [`Flow`] whose peer is the other end. Each
/// direction buffers at most `cap` bytes, so a writer waits for its reader as over TCP.
pub struct End {
    rx: Rc<RefCell<Pipe>>,
    tx: Rc<RefCell<Pipe>>,
    peer: SocketAddr,
}

/// A connected pair: (client, server).
pub fn duplex(cap: usize) -> (End, End) {
    let (a, b) = (Pipe::new(cap), Pipe::new(cap));
    let client = End {
        rx: a.clone(),
        tx: b.clone(),
        peer: "10.0.0.1:80".parse().unwrap(),
    };
    let server = End {
        rx: b,
        tx: a,
        peer: "10.0.0.254:51234".parse().unwrap(),
    };
    (client, server)
}

impl End {
    /// Reads until end of stream.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.read(&mut buf).await {
                Ok(0) | Err(_) => return all,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    }
}

impl Flow for End {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        poll_fn(|cx| {
            let mut p = self.rx.borrow_mut();
            if !p.bytes.is_empty() {
                let n = buf.len().min(p.bytes.len());
                for (d, s) in buf.iter_mut().zip(p.bytes.drain(..n)) {
                    *d = s;
                }
                if let Some(w) = p.writer.take() {
                    w.wake();
                }
                return Poll::Ready(Ok(n));
            }
            if p.write_closed || buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            p.reader = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        poll_fn(|cx| {
            let mut p = self.tx.borrow_mut();
            if p.read_closed {
                return Poll::Ready(Err(NetError::Reset));
            }
            if p.write_closed {
                return Poll::Ready(Err(NetError::Closed));
            }
            let room = p.cap - p.bytes.len();
            if room == 0 && !buf.is_empty() {
                p.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = room.min(buf.len());
            p.bytes.extend(&buf[..n]);
            if let Some(w) = p.reader.take() {
                w.wake();
            }
            Poll::Ready(Ok(n))
        })
        .await
    }

    async fn shutdown(&mut self) -> Result<(), NetError> {
        let mut p = self.tx.borrow_mut();
        p.write_closed = true;
        if let Some(w) = p.reader.take() {
            w.wake();
        }
        Ok(())
    }

    async fn close(self) -> Result<(), NetError> {
        Ok(()) // Drop closes both directions.
    }

    fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

impl Drop for End {
    fn drop(&mut self) {
        let mut tx = self.tx.borrow_mut();
        tx.write_closed = true;
        if let Some(w) = tx.reader.take() {
            w.wake();
        }
        drop(tx);
        let mut rx = self.rx.borrow_mut();
        rx.read_closed = true;
        if let Some(w) = rx.writer.take() {
            w.wake();
        }
    }
}

/// One parsed response: status, headers (names lowercase), body.
pub type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// Splits a byte stream of HTTP/1.1 responses into (status, headers, body), reading bodies
/// by `Content-Length` (none for HEAD requests, flagged in `heads`).
pub fn responses(mut stream: &[u8], heads: &[bool]) -> Vec<Reply> {
    let mut out = Vec::new();
    let mut i = 0;
    while !stream.is_empty() {
        let end = stream
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head")
            + 4;
        let head = std::str::from_utf8(&stream[..end]).expect("an ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(
            status_line.starts_with("HTTP/1.1 "),
            "status line {status_line:?}"
        );
        let status: u16 = status_line[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(": ").expect("a header line");
                (n.to_ascii_lowercase(), v.to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let head_only = heads.get(i).copied().unwrap_or(false) || status == 304 || status == 100;
        let body_len = if head_only { 0 } else { len };
        out.push((status, headers, stream[end..end + body_len].to_vec()));
        stream = &stream[end + body_len..];
        i += usize::from(status != 100);
    }
    out
}

/// The value of header `name` (lowercase) in a parsed response's headers.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The statuses of parsed responses, in order.
pub fn statuses(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.0).collect()
}

/// Checks that a slow client got `408` and was cut off between `min` and `max` after it
/// started.
pub fn assert_cut_off(got: &[u8], elapsed: Duration, min: Duration, max: Duration) {
    assert!(
        got.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"),
        "{:?}",
        String::from_utf8_lossy(got)
    );
    assert!(elapsed >= min && elapsed < max, "cut off after {elapsed:?}");
}
