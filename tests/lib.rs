//! Helpers shared by the end-to-end tests: find (and build) the real `uni` binary, and run it
//! in a directory with a clean, predictable environment.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::sync::OnceLock;

/// The uni checkout.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The `uni` binary, built once per test process with the same profile as the tests.
pub fn uni_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--quiet", "-p", "mirage-cli", "--bin", "uni", "--message-format=json"])
            .current_dir(root())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cargo runs");
        let mut exe = None;
        let out = BufReader::new(child.stdout.take().unwrap());
        for m in cargo_metadata::Message::parse_stream(out) {
            if let cargo_metadata::Message::CompilerArtifact(a) = m.expect("cargo JSON") {
                if a.target.name == "uni" {
                    exe = a.executable.map(|p| p.into_std_path_buf());
                }
            }
        }
        assert!(child.wait().unwrap().success(), "building uni failed");
        exe.expect("cargo built the uni binary")
    })
    .clone()
}

/// A `uni` command run in `dir`. Example builds share one target directory so that the
/// dependencies compile once for the whole test run.
pub fn uni(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(uni_bin());
    c.args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", root().join("target/examples"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE");
    c
}

/// Runs `uni` and captures its output.
pub fn run_uni(dir: &Path, args: &[&str]) -> Output {
    uni(dir, args).output().expect("uni starts")
}

/// The directory of example `name`.
pub fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// stdout and stderr as text, for assertion messages.
pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Sends `data` to the echo server at `addr` while reading what comes back, until the server
/// closes: the bytes echoed.
pub fn echo_roundtrip(addr: impl std::net::ToSocketAddrs, data: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(120))).unwrap();
    let mut w = s.try_clone().unwrap();
    let sent = data.to_vec();
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::with_capacity(data.len());
    s.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    back
}

/// `len` bytes that differ per `seed` and do not repeat with a short period.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 24) as u8).collect()
}

/// A child process whose stdout and stderr are collected into buffers.
pub struct Proc {
    pub child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

impl Proc {
    pub fn spawn(mut c: Command) -> Proc {
        let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let collect = |r: Box<dyn Read + Send>, buf: Arc<Mutex<String>>| {
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    let mut b = buf.lock().unwrap();
                    b.push_str(&line);
                    b.push('\n');
                }
            })
        };
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        collect(Box::new(child.stdout.take().unwrap()), out.clone());
        collect(Box::new(child.stderr.take().unwrap()), err.clone());
        Proc { child, out, err }
    }

    pub fn out(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    pub fn err(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits until `what` is in stdout; returns stdout and stderr.
    pub fn wait_for(&mut self, what: &str, limit: Duration) -> String {
        let t0 = Instant::now();
        loop {
            let text = format!("{}{}", self.out(), self.err());
            if self.out().contains(what) {
                return text;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("ended ({st}) before {what:?}\n--- stdout\n{}\n--- stderr\n{}", self.out(), self.err());
            }
            assert!(t0.elapsed() < limit, "no {what:?} after {limit:?}\n--- stdout\n{}\n--- stderr\n{}", self.out(), self.err());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The board: SIGTERM makes uni stop QEMU and remove its TAP device.
pub struct Board(pub Proc);

impl Drop for Board {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.child.id().to_string()).status();
        let _ = self.0.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}


/// A file of the website test site: its URL path (percent-encoded) and its bytes.
pub struct SiteFile {
    pub url: String,
    pub bytes: Vec<u8>,
}

/// Writes `tests/static-website/site/` (examples/static-website/htdocs, a 5 MiB file, and names
/// that need URL decoding) and returns its files. The config next to it serves it with
/// examples/static-website's app.
pub fn website_test_site() -> (PathBuf, Vec<SiteFile>) {
    let dir = root().join("tests/static-website");
    let site = dir.join("site");
    let _ = std::fs::remove_dir_all(&site);
    let mut files = vec![];
    let mut put = |rel: &str, bytes: Vec<u8>| {
        let p = site.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &bytes).unwrap();
        files.push(SiteFile { url: url_path(rel), bytes });
    };
    let htdocs = example("static-website").join("htdocs");
    let mut stack = vec![htdocs.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&htdocs).unwrap().to_str().unwrap().to_string();
                put(&rel, std::fs::read(&p).unwrap());
            }
        }
    }
    put("big/random-5MiB.bin", pattern(5 << 20, 7));
    put("odd names/ü & space.txt", "a name that needs URL decoding\n".as_bytes().to_vec());
    put("odd names/100%.txt", b"percent\n".to_vec());
    (dir.join("unikernel.toml"), files)
}

/// `rel` as a URL path: each segment percent-encoded except RFC 3986's unreserved characters.
pub fn url_path(rel: &str) -> String {
    let mut out = String::new();
    for seg in rel.split('/') {
        out.push('/');
        for &b in seg.as_bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}
