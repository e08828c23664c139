//! Helpers shared by the end-to-end tests: find (and build) the real `uni` binary, and run it
//! in a directory with a clean, predictable environment.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
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

/// tests/tools/dns-server.py, running: a real UDP DNS server answering A queries from `zone`
/// (`NAME=ADDRESS`, or `NAME=drop` for a name it never answers). Killed on drop.
pub struct DnsServer {
    child: std::process::Child,
    /// the port it listens on
    pub port: u16,
    /// the names it was asked for, in order
    queries: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl DnsServer {
    /// Starts the server on `bind` ("127.0.0.1", or "0.0.0.0" to be reached through a TAP device)
    /// and a free port.
    pub fn start(bind: &str, zone: &[&str]) -> DnsServer {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .arg(root().join("tests/tools/dns-server.py"))
            .args(["--bind", bind, "--log", "0"])
            .args(zone)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs tests/tools/dns-server.py");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().and_then(|l| l.ok()).unwrap_or_default();
        let port = ready
            .strip_prefix("dns-server: ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("dns-server did not start: {ready:?}"));
        let queries = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let q = queries.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(name) = line.strip_prefix("query ").and_then(|r| r.split_whitespace().next()) {
                    q.lock().unwrap().push(name.to_string());
                }
            }
        });
        DnsServer { child, port, queries }
    }

    /// How many queries for `name` it has received.
    pub fn queries_for(&self, name: &str) -> usize {
        self.queries.lock().unwrap().iter().filter(|n| *n == name).count()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
