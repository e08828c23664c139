//! Helpers shared by the end-to-end tests: find (and build) the real `uni` binary, and run it
//! in a directory with a clean, predictable environment.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The uni checkout.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `uni` binary, built once per test process with the same profile as the tests.
pub fn uni_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--quiet",
                "-p",
                "mirage-cli",
                "--bin",
                "uni",
                "--message-format=json",
            ])
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
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Sends `data` to the echo server at `addr` while reading what comes back, until the server
/// closes: the bytes echoed.
pub fn echo_roundtrip(addr: impl std::net::ToSocketAddrs, data: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
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
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 24) as u8)
        .collect()
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
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
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
                panic!(
                    "the command ended ({st}) before {what:?}\n--- stdout\n{}\n--- stderr\n{}",
                    self.out(),
                    self.err()
                );
            }
            if t0.elapsed() > limit {
                panic!(
                    "no {what:?} after {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                    self.out(),
                    self.err()
                );
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
        // SIGTERM: uni stops QEMU and removes what it made. (Not when it has ended and been
        // reaped: the id may be another process's by now.)
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
        }
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
        files.push(SiteFile {
            url: url_path(rel),
            bytes,
        });
    };
    let htdocs = example("static-website").join("htdocs");
    let mut stack = vec![htdocs.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(&htdocs)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                put(&rel, std::fs::read(&p).unwrap());
            }
        }
    }
    put("big/random-5MiB.bin", pattern(5 << 20, 7));
    put(
        "odd names/ü & space.txt",
        "a name that needs URL decoding\n".as_bytes().to_vec(),
    );
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

/// A free TCP port on 127.0.0.1 (free when this returns; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A static website being served: its HTTPS and HTTP base URLs (`https://localhost:PORT`) and
/// the CA that signed its certificate. The checks run the real curl.
pub struct Website {
    pub https: String,
    pub http: String,
    pub ca: PathBuf,
}

/// curl's output of one run: the `-w` lines on stdout.
pub fn curl(args: &[&str]) -> Output {
    let o = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "300"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        o.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

impl Website {
    fn tls_args(&self) -> Vec<String> {
        vec!["--cacert".into(), self.ca.to_str().unwrap().into()]
    }

    /// Fetches every file over one kept-alive connection and compares the bytes.
    pub fn fetch_all(&self, files: &[SiteFile]) {
        let out = tempfile::tempdir().unwrap();
        let mut args = self.tls_args();
        args.extend([
            "-w".into(),
            "%{http_code} %{num_connects} %{content_type}\\n".into(),
        ]);
        for (i, f) in files.iter().enumerate() {
            args.extend([
                format!("{}{}", self.https, f.url),
                "-o".into(),
                out.path().join(i.to_string()).to_str().unwrap().into(),
            ]);
        }
        let o = curl(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(lines.len(), files.len(), "{lines:?}");
        let connects: u32 = lines
            .iter()
            .map(|l| l.split(' ').nth(1).unwrap().parse::<u32>().unwrap())
            .sum();
        assert_eq!(
            connects,
            1,
            "curl kept one connection alive for {} files: {lines:?}",
            files.len()
        );
        for (i, (f, line)) in files.iter().zip(&lines).enumerate() {
            assert!(line.starts_with("200 "), "{}: {line}", f.url);
            let got = std::fs::read(out.path().join(i.to_string())).unwrap();
            assert!(
                got == f.bytes,
                "{}: {} bytes, expected {} (first difference at {:?})",
                f.url,
                got.len(),
                f.bytes.len(),
                got.iter().zip(&f.bytes).position(|(a, b)| a != b)
            );
        }
        let types: Vec<&str> = lines
            .iter()
            .map(|l| l.splitn(3, ' ').nth(2).unwrap())
            .collect();
        for (f, t) in files.iter().zip(&types) {
            let want = match f.url.rsplit('.').next().unwrap() {
                "html" => "text/html; charset=utf-8",
                "css" => "text/css; charset=utf-8",
                "svg" => "image/svg+xml",
                "txt" => "text/plain; charset=utf-8",
                _ => "application/octet-stream",
            };
            assert_eq!(*t, want, "Content-Type of {}", f.url);
        }
    }

    /// HEAD, a conditional GET answered 304, a missing file, a directory's index.html, and
    /// the HTTP port's redirect.
    pub fn semantics(&self, file: &SiteFile) {
        let ca = self.ca.to_str().unwrap();
        let url = format!("{}{}", self.https, file.url);
        // HEAD: the GET's headers, no body.
        let o = curl(&["--cacert", ca, "--head", "-w", "%{size_download}", &url]);
        let head = String::from_utf8_lossy(&o.stdout).to_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}\r\n", file.bytes.len())),
            "{head}"
        );
        assert!(
            head.trim_end().ends_with("\r\n0") || head.ends_with('0'),
            "HEAD has no body: {head}"
        );
        let etag = head
            .lines()
            .find_map(|l| l.strip_prefix("etag: "))
            .expect("an ETag")
            .trim()
            .to_string();
        // If-None-Match with that ETag: 304, no body; with another: 200.
        let o = curl(&[
            "--cacert",
            ca,
            "-H",
            &format!("If-None-Match: {etag}"),
            "-w",
            "%{http_code} %{size_download}",
            "-o",
            "/dev/null",
            &url,
        ]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "304 0");
        let o = curl(&[
            "--cacert",
            ca,
            "-H",
            "If-None-Match: \"other\"",
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
            &url,
        ]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "200");
        // Paths that try to leave the site, or carry NUL: 400.
        for bad in [
            "/../../etc/passwd",
            "/docs/%2e%2e/%2e%2e/x",
            "/a%00b",
            "/a%2Fb",
        ] {
            let o = curl(&[
                "--cacert",
                ca,
                "--path-as-is",
                "-w",
                "%{http_code}",
                "-o",
                "/dev/null",
                &format!("{}{bad}", self.https),
            ]);
            assert_eq!(String::from_utf8_lossy(&o.stdout), "400", "{bad}");
        }
        // A missing file.
        let o = curl(&[
            "--cacert",
            ca,
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
            &format!("{}/no/such/file.html", self.https),
        ]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "404");
        // Directories: "/" and "/docs/" serve their index.html; "/docs" redirects to "/docs/".
        let index = |p: &str| curl(&["--cacert", ca, &format!("{}{p}", self.https)]).stdout;
        assert_eq!(
            index("/"),
            std::fs::read(example("static-website").join("htdocs/index.html")).unwrap()
        );
        assert_eq!(
            index("/docs/"),
            std::fs::read(example("static-website").join("htdocs/docs/index.html")).unwrap()
        );
        let o = curl(&[
            "--cacert",
            ca,
            "-w",
            "%{http_code} %{redirect_url}",
            "-o",
            "/dev/null",
            &format!("{}/docs", self.https),
        ]);
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.starts_with("301 ") && s.ends_with("/docs/"), "{s}");
        // Plain HTTP redirects to HTTPS.
        let o = curl(&[
            "-w",
            "%{http_code} %{redirect_url}",
            "-o",
            "/dev/null",
            &format!("{}/docs/", self.http),
        ]);
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.starts_with("301 https://"), "{s}");
        assert!(s.ends_with("/docs/"), "{s}");
    }
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
    /// Starts the server on `bind` ("127.0.0.1", say) and a free port.
    pub fn start(bind: &str, zone: &[&str]) -> DnsServer {
        Self::spawn(Command::new("python3"), bind, "0", zone)
    }

    /// Starts the server inside the LAN of the board run by `uni` process `pid` (see [`lan`]),
    /// on 10.0.0.254:`port`, where the board's guests reach the host.
    pub fn start_in_lan(pid: u32, port: u16, zone: &[&str]) -> DnsServer {
        Self::spawn(
            lan(pid, &["python3"]),
            "10.0.0.254",
            &port.to_string(),
            zone,
        )
    }

    fn spawn(mut python: Command, bind: &str, port: &str, zone: &[&str]) -> DnsServer {
        use std::io::BufRead;
        let mut child = python
            .arg(root().join("tests/tools/dns-server.py"))
            .args(["--bind", bind, "--log", port])
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
                if let Some(name) = line
                    .strip_prefix("query ")
                    .and_then(|r| r.split_whitespace().next())
                {
                    q.lock().unwrap().push(name.to_string());
                }
            }
        });
        DnsServer {
            child,
            port,
            queries,
        }
    }

    /// How many queries for `name` it has received.
    pub fn queries_for(&self, name: &str) -> usize {
        self.queries
            .lock()
            .unwrap()
            .iter()
            .filter(|n| *n == name)
            .count()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Panics unless this process's network namespace is untouched by the board: no TAP device
/// named `uni*`, no address in 10.0.0.0/24 and no route into it (the board's LAN lives in a
/// namespace of the run's own). Call it while a board runs.
pub fn assert_lan_is_sealed() {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert!(
        !ifaces.iter().any(|i| i.starts_with("uni")),
        "a uni TAP device in the host's namespace: {ifaces:?}"
    );
    // /proc/net/route: destination and mask in hex, in the kernel's (little-endian) byte order
    let routes = std::fs::read_to_string("/proc/self/net/route").unwrap();
    for l in routes.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(dst), Some(mask)) = (
            f.get(1).and_then(|d| u32::from_str_radix(d, 16).ok()),
            f.get(7).and_then(|m| u32::from_str_radix(m, 16).ok()),
        ) else {
            continue;
        };
        let (dst, mask) = (
            std::net::Ipv4Addr::from(dst.swap_bytes()),
            std::net::Ipv4Addr::from(mask.swap_bytes()),
        );
        let o = dst.octets();
        let narrow = u32::from(mask).leading_ones() >= 24;
        assert!(
            !(narrow && o[..3] == [10, 0, 0]),
            "a route to {dst}/{mask} in the host's namespace:\n{routes}"
        );
    }
    let o = Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .expect("ip (iproute2) runs");
    let addrs = String::from_utf8_lossy(&o.stdout);
    assert!(
        !addrs.contains(" inet 10.0.0."),
        "an address on 10.0.0.0/24 in the host's namespace:\n{addrs}"
    );
}

/// `uni lan --pid PID -- args…`: a command inside the LAN of the board run by `uni` process `pid`.
pub fn lan(pid: u32, args: &[&str]) -> Command {
    let mut c = uni(&root(), &["lan", "--pid", &pid.to_string(), "--"]);
    c.args(args);
    c
}

/// The boards every Xen end-to-end test runs on. By default the Cubieboard 2's emulation
/// (cubieboard2 → qemu-virt32: 32-bit Xen, Cortex-A7, GICv2), which is what a user's board
/// runs; `UNI_BOARDS=all` adds qemu-virt (64-bit Xen, GICv3) and qemu-virt-gicv2, and
/// `UNI_BOARDS=a,b` names them.
pub fn full_boards() -> Vec<String> {
    match std::env::var("UNI_BOARDS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .as_deref()
    {
        None => vec!["cubieboard2".into()],
        Some("all") => ["cubieboard2", "qemu-virt", "qemu-virt-gicv2"]
            .map(String::from)
            .to_vec(),
        Some(list) => list.split(',').map(|b| b.trim().to_string()).collect(),
    }
}

/// The boards of the smoke set (hello's boot, echo's net): the full boards, and qemu-virt
/// when it is not one of them, so CI boots both hypervisor architectures.
pub fn smoke_boards() -> Vec<String> {
    let mut b = full_boards();
    if !b.iter().any(|b| b == "qemu-virt") {
        b.push("qemu-virt".into());
    }
    b
}

/// `uni args…` in `dir` for `board`: `--board BOARD` after the command when it builds or runs
/// (build, run, deploy; not when the args name one), and a target directory per board, since
/// each board compiles core with its own CPU flags.
pub fn uni_on(board: &str, dir: &Path, args: &[&str]) -> Command {
    let mut a: Vec<&str> = args.to_vec();
    if matches!(a.first(), Some(&("build" | "run" | "deploy"))) && !a.contains(&"--board") {
        a.splice(1..1, ["--board", board]);
    }
    let mut c = uni(dir, &a);
    c.env(
        "CARGO_TARGET_DIR",
        root().join(format!("target/examples-{board}")),
    );
    c
}

/// Writes `dir/unikernel.toml`: examples/notes' app and devices, its store on `dir/notes.img`
/// (static-website's test certificate by absolute path, so that `dir` can be anywhere).
pub fn notes_config(dir: &Path) {
    let pki = example("static-website").join("pki");
    std::fs::write(
        dir.join("unikernel.toml"),
        format!(
            "[unikernel]\nschema = 1\nname = \"notes\"\napp = {:?}\n\n[devices.console]\nkind = \"console\"\n\n\
             [devices.net]\nkind = \"net\"\n\n[devices.notes]\nkind = \"kv_rw\"\nfile = \"notes.img\"\n\n\
             [devices.tls]\nkind = \"tls\"\nnet = \"net\"\ncert = {:?}\nkey = {:?}\nalpn = [\"http/1.1\"]\n\n\
             [devices.https]\nkind = \"http\"\nnet = \"net\"\ntls = \"tls\"\n",
            example("notes").display().to_string(),
            pki.join("server.pem").display().to_string(),
            pki.join("server.key").display().to_string(),
        ),
    )
    .unwrap();
}

/// The events of the Chrome trace-event JSON at `json` (what `uni run --trace` and
/// `uni trace` write): its `traceEvents`.
pub fn trace_events(json: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(json)
        .unwrap_or_else(|e| panic!("no trace at {}: {e}", json.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("the trace is JSON");
    v["traceEvents"].as_array().expect("traceEvents").clone()
}

/// The name the trace's metadata gives track `tid` (empty when it has none).
pub fn trace_track_name(evs: &[serde_json::Value], tid: &serde_json::Value) -> String {
    evs.iter()
        .find(|e| e["ph"] == "M" && e["name"] == "thread_name" && &e["tid"] == tid)
        .map(|e| e["args"]["name"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The trace of one HTTPS request from curl to static-website, accepted on `port`, from a peer
/// whose track name starts with `peer`: its TCP accept, TLS handshake steps and HTTP request
/// in order on the connection's track, with increasing timestamps, the flow through the
/// layers, and the task that served it. Returns the connection's events after those eight
/// (name and phase).
pub fn check_traced_https_request(
    evs: &[serde_json::Value],
    port: u16,
    peer: &str,
) -> Vec<(String, String)> {
    let accept = evs
        .iter()
        .find(|e| e["name"] == "tcp accept")
        .unwrap_or_else(|| panic!("no tcp accept in {evs:#?}"));
    assert_eq!(accept["args"]["local port"], port);
    let tid = accept["tid"].clone();
    assert!(
        trace_track_name(evs, &tid).starts_with(peer),
        "{}",
        trace_track_name(evs, &tid)
    );
    let on_conn: Vec<&serde_json::Value> = evs
        .iter()
        .filter(|e| e["tid"] == tid && e["cat"] != "flow" && e["ph"] != "M")
        .collect();
    let steps: Vec<(String, String)> = on_conn
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["ph"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("tcp accept", "i"),
        ("tls handshake", "B"),
        ("tls client hello received", "i"),
        ("tls server hello sent", "i"),
        ("tls handshake done", "i"),
        ("tls handshake", "E"),
        ("http request", "B"),
        ("http request", "E"),
    ];
    let got: Vec<(&str, &str)> = steps
        .iter()
        .map(|(n, p)| (n.as_str(), p.as_str()))
        .take(expected.len())
        .collect();
    assert_eq!(got, expected, "the connection's events: {steps:?}");
    let end = on_conn[7];
    assert_eq!(end["args"]["status"], 200);
    assert_eq!(on_conn[4]["args"]["version"], "TLS 1.3");
    let ts: Vec<f64> = on_conn.iter().map(|e| e["ts"].as_f64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "timestamps: {ts:?}");
    assert!(ts[0] < ts[7], "timestamps: {ts:?}");

    // The flow that links the layers: start at the accept, a step at the handshake's end, its
    // end at the request, all on this connection.
    let flow: Vec<&str> = evs
        .iter()
        .filter(|e| e["cat"] == "flow" && e["tid"] == tid)
        .map(|e| e["ph"].as_str().unwrap())
        .collect();
    assert_eq!(flow, ["s", "t", "f"]);

    // The connection was served by a task of its own, which the trace shows running.
    assert!(evs.iter().any(|e| e["name"] == "task spawned"));
    assert!(evs
        .iter()
        .any(|e| e["name"] == "task run" && trace_track_name(evs, &e["tid"]).starts_with("task ")));
    steps[expected.len()..].to_vec()
}

/// A copy of `example`'s unikernel.toml in `dir` (so that its `_build` and `dist` are the
/// test's), with its paths made absolute; returns `dir`.
pub fn config_copy(example_name: &str, dir: &Path) -> PathBuf {
    let e = example(example_name);
    let e = e.to_str().unwrap();
    let toml = std::fs::read_to_string(Path::new(e).join("unikernel.toml")).unwrap();
    let mut out = String::new();
    for line in toml.lines() {
        let line = if line.starts_with("app = ") {
            format!("app = \"{e}\"")
        } else if line.starts_with("name = ") && !toml.contains("\napp = ") {
            format!("{line}\napp = \"{e}\"")
        } else {
            line.replace("\"pki/", &format!("\"{e}/pki/"))
                .replace("dir = \"htdocs\"", &format!("dir = \"{e}/htdocs\""))
        };
        out.push_str(&line);
        out.push('\n');
    }
    let file = dir.join("unikernel.toml");
    if std::fs::read_to_string(&file).ok() != Some(out.clone()) {
        std::fs::write(&file, out).unwrap();
    }
    dir.to_path_buf()
}

/// examples/static-website's config copied (see [`config_copy`]) into a directory under
/// target/ of `board`'s own, for the traced runs on the board: tests/trace.rs's
/// `uni run --trace` and tests/deploy.rs's `uni build --trace`, which generate the same crate,
/// so that the traced image is built once per test run, not once per test.
pub fn traced_website_dir(board: &str) -> PathBuf {
    let dir = root().join(format!("target/tests/traced-static-website-{board}"));
    std::fs::create_dir_all(&dir).unwrap();
    config_copy("static-website", &dir)
}
