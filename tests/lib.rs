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

/// A command running in the background, its stdout and stderr collected as they come.
pub struct Background {
    pub child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<String>>,
    err: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Background {
    pub fn spawn(mut cmd: Command) -> Background {
        use std::io::{BufRead, Read};
        use std::sync::{Arc, Mutex};
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let collect = |r: Box<dyn Read + Send>, buf: Arc<Mutex<String>>| {
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let line = line.unwrap_or_default();
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
        Background { child, out, err }
    }

    /// Waits until stdout (or stderr) contains `what`; panics with both when the command ends
    /// first or `limit` passes.
    pub fn wait_for(&mut self, what: &str, in_stderr: bool, limit: std::time::Duration) {
        let t0 = std::time::Instant::now();
        loop {
            let text = if in_stderr { self.err() } else { self.out() };
            if text.contains(what) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("the command ended ({st}) before {what:?}\n--- stdout\n{}\n--- stderr\n{}", self.out(), self.err());
            }
            if t0.elapsed() > limit {
                panic!("no {what:?} after {limit:?}\n--- stdout\n{}\n--- stderr\n{}", self.out(), self.err());
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    pub fn out(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    pub fn err(&self) -> String {
        self.err.lock().unwrap().clone()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // SIGTERM: uni stops QEMU and removes what it made.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}
