//! `uni deploy` against a real Xen dom0: the emulated board's, started alone with
//! `uni run --dom0 -p FWD:echo:7000` (dropbear in dom0, reached through a QEMU port forward,
//! and a forward from 127.0.0.1 to the unikernel deployed as echo). One boot carries every
//! check: hello and echo deployed, echo answering over TCP through the forward and dom0's
//! bridge, a redeploy replacing it at the same address and the same forward still answering, a broken image rolled back, an image for the wrong board refused,
//! `uni ps` (and `--json`), `uni logs` (each boot set off by a line naming its domain),
//! `uni logs -f` and `uni stop`; a block-app's disk, examples/notes through a power cut,
//! static-website at 4 MiB, a traced static-website snapshotted by `uni trace` while it runs,
//! and the app `uni new` writes with every kind; `uni deploy --console` in a
//! pseudo-terminal (util-linux `script`): hello's whole console, ending when hello powers off,
//! and echo's redeploy attached until left with Ctrl-] (nothing left behind in dom0); a dom0
//! without `xl` and a dom0 whose /var/lib/uni is full (filled with `dd` over ssh) refused with a
//! clear message, the running guest untouched; an unknown host key refused; and, without the
//! board, an unreachable host refused.
//!
//! The tests bring their own ~/.ssh (key, known_hosts, an ssh_config passed with
//! UNI_SSH_CONFIG) in a temporary HOME, so the user's files are never read or changed. Only the
//! board runs with that HOME (for --trust-host-key); the builds keep the real one, from which
//! cargo's paths and so the examples' build flags derive.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use uni_tests::{echo_roundtrip, example, full_boards, pattern, text, uni_on, Background};

/// A temporary HOME with an SSH key and an ssh_config that uses only it and its own
/// known_hosts.
struct SshHome {
    dir: tempfile::TempDir,
    /// the board the commands build for and run
    board: String,
}

impl SshHome {
    fn new(board: &str) -> SshHome {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join(".ssh");
        std::fs::create_dir(&ssh).unwrap();
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(ssh.join("id_ed25519"))
            .status()
            .unwrap();
        assert!(st.success(), "ssh-keygen failed");
        let home = SshHome {
            dir,
            board: board.to_string(),
        };
        home.config("config", &home.ssh("known_hosts"));
        // the same key, but a known_hosts that knows no one
        std::fs::write(home.ssh("empty_known_hosts"), "").unwrap();
        home.config("config-stranger", &home.ssh("empty_known_hosts"));
        home
    }

    fn ssh(&self, file: &str) -> PathBuf {
        self.dir.path().join(".ssh").join(file)
    }

    fn config(&self, name: &str, known_hosts: &Path) {
        let text = format!(
            "Host *\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  IdentityFile {}\n  IdentitiesOnly yes\n  IdentityAgent none\n",
            known_hosts.display(),
            self.ssh("id_ed25519").display()
        );
        std::fs::write(self.ssh(name), text).unwrap();
    }

    /// `uni args…` in `dir`, with ssh_config `config`. HOME stays: cargo's paths (and so the
    /// examples' build flags) derive from it.
    fn uni(&self, dir: &Path, config: &str, args: &[&str]) -> Command {
        let mut c = uni_on(&self.board, dir, args);
        c.env("UNI_SSH_CONFIG", self.ssh(config));
        c
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.uni(dir, "config", args).output().unwrap()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs uni, which must succeed; returns its stderr (the status lines).
fn ok(o: Output, what: &str) -> (String, String) {
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "{what} failed ({})\n--- stdout\n{out}\n--- stderr\n{err}",
        o.status
    );
    (out, err)
}

/// Runs uni, which must fail with exit code 1; returns its stderr.
fn fails(o: Output, what: &str) -> String {
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what} should have failed\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// `word N` in `text` → N.
fn number_after(text: &str, word: &str) -> u32 {
    let at = text
        .find(word)
        .unwrap_or_else(|| panic!("no {word:?} in:\n{text}"))
        + word.len();
    text[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {word:?} in:\n{text}"))
}

/// The address in `Deployed … address 10.0.0.X`.
fn address(err: &str) -> String {
    let at = err
        .find("address ")
        .unwrap_or_else(|| panic!("no address reported:\n{err}"))
        + "address ".len();
    err[at..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap()
        .to_string()
}

/// Runs the shell line `cmd` in dom0 as root over SSH; it must succeed. Returns its stdout.
fn dom0(home: &SshHome, port: u16, cmd: &str) -> String {
    let o = Command::new("ssh")
        .arg("-F")
        .arg(home.ssh("config"))
        .args([
            "-o",
            "BatchMode=yes",
            "-p",
            &port.to_string(),
            "root@localhost",
            cmd,
        ])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "in dom0: {cmd} ({})\n--- stdout\n{out}\n--- stderr\n{err}",
        o.status
    );
    out
}

/// Ends a background command and everything it started (it runs in a process group of its own).
fn kill_group(b: Background) {
    let _ = Command::new("kill")
        .args(["--", &format!("-{}", b.child.id())])
        .status();
    drop(b);
}

/// `uni args…` in `dir` (as [`SshHome::uni`] runs it) in a pseudo-terminal: util-linux
/// `script`, in a process group of its own. Its stdin stays open: what is written there is typed.
fn in_terminal(home: &SshHome, dir: &Path, args: &[&str]) -> Background {
    let u = home.uni(dir, "config", args);
    let words: Vec<String> = std::iter::once(u.get_program())
        .chain(u.get_args())
        .map(|w| format!("'{}'", w.to_string_lossy()))
        .collect();
    let line = words.join(" ");
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .current_dir(dir)
        .process_group(0);
    for (k, v) in u.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    Background::spawn(c)
}

/// Waits at most `limit` for `b` to end; its exit status and all it printed.
fn finish(mut b: Background, limit: Duration, what: &str) -> (std::process::ExitStatus, String) {
    let t = Instant::now();
    let st = loop {
        if let Some(st) = b.child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > limit {
            let out = b.out();
            kill_group(b);
            panic!("{what} did not end:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_millis(300)); // the last of its output
    (st, b.out())
}

/// Echoes 64 KiB through `uni run --dom0 -p FWD:echo:7000`: from 127.0.0.1:`fwd` here to port
/// 7000 of the unikernel deployed as echo, which must be at `ip`, its static lease in dom0.
fn echo_answers(fwd: u16, ip: &str) {
    assert_eq!(
        ip, "10.0.0.2",
        "echo keeps the address dom0 leases to its MAC"
    );
    let data = pattern(64 * 1024, fwd as u32);
    let t0 = Instant::now();
    let mut back = Vec::new();
    // the guest may still be starting its stack: the forward then closes the connection
    while t0.elapsed() < Duration::from_secs(60) {
        back = echo_roundtrip(("127.0.0.1", fwd), &data);
        if back == data {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        back == data,
        "echo at {ip} through 127.0.0.1:{fwd}: {} bytes back of {}",
        back.len(),
        data.len()
    );
}

/// tests/block-app's pattern: the byte at `offset` for `seed`.
fn block_pattern(seed: u64, offset: u64) -> u8 {
    (offset.wrapping_mul(31).wrapping_add(seed.wrapping_mul(7)) % 251) as u8
}

/// The first bytes of the deployed block-app's disk image in dom0.
fn dom0_disk_head(home: &SshHome, port: u16) -> Vec<u8> {
    dom0(
        home,
        port,
        "od -An -tu1 -N16 -v /var/lib/uni/block-app/disk.img",
    )
    .split_whitespace()
    .map(|b| b.parse().unwrap())
    .collect()
}

/// block-app with a disk: the first deploy uploads the image and the guest writes it; a
/// redeploy keeps what the guest wrote (whatever the host's file holds now); `--replace-disk`
/// overwrites it; bad `--replace-disk`s are refused before anything is copied.
fn disk_deploys(home: &SshHome, host: &str, port: u16) {
    let dir = tempfile::tempdir().unwrap();
    let app = uni_tests::root().join("tests/block-app");
    let config = |extra: &str| {
        std::fs::write(
            dir.path().join("unikernel.toml"),
            format!(
                "[unikernel]\nschema = 1\nname = \"block-app\"\napp = {:?}\n\n[devices.console]\nkind = \"console\"\n\n\
                 [devices.disk]\nkind = \"block\"\nfile = \"disk.img\"\n\n[devices.args]\nkind = \"args\"\n\n\
                 [xen]\nextra = \"{extra}\"\n",
                app.display().to_string()
            ),
        )
        .unwrap()
    };
    let img = dir.path().join("disk.img");
    std::fs::write(&img, vec![0xeeu8; 1 << 20]).unwrap();
    let want = |seed: u64| (0..16).map(|i| block_pattern(seed, i)).collect::<Vec<u8>>();
    let read_backs = |n: usize| {
        let (out, _) = ok(
            home.run(dir.path(), &["logs", "--host", host]),
            "logs block-app",
        );
        assert_eq!(
            out.matches("read back 64 sectors: all as written").count(),
            n,
            "{out}"
        );
    };

    // the first deploy uploads the image; the guest writes seed 3's pattern
    config("--seed=3 --sectors=64");
    let (_, err) = ok(
        home.run(dir.path(), &["deploy", "--host", host]),
        "deploy block-app",
    );
    assert!(
        err.contains("Uploading disk's disk disk.img (1.0 MiB) to ")
            && err.contains("/var/lib/uni/block-app/disk.img"),
        "{err}"
    );
    read_backs(1);
    assert_eq!(dom0_disk_head(home, port), want(3));

    // a redeploy keeps dom0's image, though the host's now holds something else
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    config("--mode=check --seed=3 --sectors=64");
    let (_, err) = ok(
        home.run(dir.path(), &["deploy", "--host", host]),
        "redeploy block-app",
    );
    assert!(
        err.contains("Keeping disk's disk /var/lib/uni/block-app/disk.img")
            && !err.contains("Uploading disk's disk"),
        "{err}"
    );
    read_backs(2);
    assert_eq!(dom0_disk_head(home, port), want(3));

    // bad --replace-disk: refused before anything is copied
    let odd = dir.path().join("odd.img");
    std::fs::write(&odd, vec![0u8; 1000]).unwrap();
    for (arg, says) in [
        (
            "missing.img".to_string(),
            "there is no file missing.img".to_string(),
        ),
        (
            "nodisk=x.img".to_string(),
            "`nodisk` is not a block device of block-app".to_string(),
        ),
        (odd.display().to_string(), "is 1000 bytes".to_string()),
    ] {
        let err = fails(
            home.run(
                dir.path(),
                &[
                    "deploy",
                    "--no-build",
                    "--host",
                    host,
                    "--replace-disk",
                    &arg,
                ],
            ),
            "deploy with a bad --replace-disk",
        );
        assert!(err.contains(&says), "{arg}: {err}");
    }
    assert_eq!(dom0_disk_head(home, port), want(3));

    // --replace-disk overwrites it: the guest reads seed 4's pattern from the new image
    let fresh = dir.path().join("fresh.img");
    std::fs::write(
        &fresh,
        (0..1u64 << 20)
            .map(|i| block_pattern(4, i))
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    config("--mode=check --seed=4 --sectors=64");
    let (_, err) = ok(
        home.run(
            dir.path(),
            &["deploy", "--host", host, "--replace-disk", "fresh.img"],
        ),
        "deploy --replace-disk",
    );
    assert!(
        err.contains("Uploading disk's disk fresh.img (1.0 MiB)"),
        "{err}"
    );
    read_backs(3);
    assert_eq!(dom0_disk_head(home, port), want(4));
}

/// curl against the deployed notes through the board's forward: stdout and whether it exited 0.
fn notes_curl(args: &[String]) -> (String, bool) {
    let ca = example("static-website").join("pki/ca.pem");
    let o = Command::new("curl")
        .args(["--silent", "--max-time", "120", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        o.status.success(),
    )
}

/// Every note the deployed notes holds (waiting up to 90 s for it to answer): key → body.
fn board_notes(base: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let t0 = Instant::now();
    let list = loop {
        match notes_curl(&["--fail".into(), format!("{base}/notes/")]) {
            (list, true) => break list,
            _ if t0.elapsed() < Duration::from_secs(90) => {
                std::thread::sleep(Duration::from_millis(500))
            }
            _ => panic!("notes does not answer at {base}"),
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = list.lines().map(str::to_string).collect();
    let mut args = vec!["--output-dir".to_string(), dir.path().display().to_string()];
    for k in &keys {
        args.extend(["-o".into(), k.clone(), format!("{base}/notes/{k}")]);
    }
    args.extend(["-w".into(), "%{http_code}\n".into()]);
    if !keys.is_empty() {
        let (codes, ok) = notes_curl(&args);
        assert!(ok && codes.lines().all(|c| c == "200"), "{codes}");
    }
    keys.into_iter()
        .map(|k| {
            let v = std::fs::read(dir.path().join(&k)).unwrap();
            (k, v)
        })
        .collect()
}

/// `/` and `/css/site.css` of the site at `base` with one curl: whether both came, and the bytes.
fn site_fetch(ca: &Path, base: &str) -> (bool, Vec<u8>) {
    let o = Command::new("curl")
        .args(["--silent", "--fail", "--max-time", "120", "--cacert"])
        .arg(ca)
        .args([format!("{base}/"), format!("{base}/css/site.css")])
        .output()
        .unwrap();
    (o.status.success(), o.stdout)
}

/// examples/static-website deployed as its unikernel.toml has it: at `memory = 4`, the smallest
/// size bench/website/xen.sh found it serves at (issue #16). It serves HTTPS there, also to 16
/// clients at once, more than its heap holds connections for at once (the stack drops the SYNs
/// it has no room for, and the clients retry), and does not crash.
fn website_at_its_smallest_memory(home: &SshHome, host: &str, fwd: u16) {
    let dir = example("static-website");
    ok(
        home.run(&dir, &["deploy", "--host", host]),
        "deploy static-website",
    );
    let xl = std::fs::read_to_string(dir.join("dist/static-website.xl")).unwrap();
    assert!(
        xl.lines().any(|l| l.replace(' ', "") == "memory=4"),
        "static-website's xl file:\n{xl}"
    );
    let base = format!("https://localhost:{fwd}");
    let index = std::fs::read(dir.join("htdocs/index.html")).unwrap();
    let css = std::fs::read(dir.join("htdocs/css/site.css")).unwrap();
    let ca = dir.join("pki/ca.pem");
    let t0 = Instant::now();
    loop {
        let (done, body) = site_fetch(&ca, &base);
        if done {
            assert!(body == [index.as_slice(), css.as_slice()].concat());
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "static-website at 4 MiB does not answer at {base}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let t0 = Instant::now();
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (ca, base) = (ca.clone(), base.clone());
            std::thread::spawn(move || site_fetch(&ca, &base))
        })
        .collect();
    for c in clients {
        let (done, body) = c.join().unwrap();
        assert!(
            done && body == [index.as_slice(), css.as_slice()].concat(),
            "a client of 16 at once did not get both files"
        );
    }
    eprintln!("16 clients at once, at 4 MiB, in {:.1?}", t0.elapsed());
    // Its counters (issue #18 item 6), asked for through xenstore: at least the 17 fetches of
    // two files each just made (one connection and one handshake each), in JSON and as a table.
    let t0 = Instant::now();
    let (json, _) = ok(
        home.run(&dir, &["stats", "--host", host, "static-website", "--json"]),
        "stats static-website",
    );
    let stats = |text: &str, name: &str| -> u64 {
        let key = format!("\"{name}\": ");
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&key))
            .and_then(|v| v.trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("no {name} in uni stats --json:\n{text}"))
    };
    for (name, least) in [
        ("http.requests.200", 34),
        ("tcp.accepted", 17),
        ("tls.handshakes", 17),
        ("tcp.rx_bytes", 1),
        ("tcp.tx_bytes", 1),
        ("netif.rx_frames", 17),
        ("netif.tx_bytes", 1),
        ("heap.used_bytes", 1),
    ] {
        let v = stats(&json, name);
        assert!(
            v >= least,
            "{name} = {v}, expected at least {least}:\n{json}"
        );
    }
    assert_eq!(stats(&json, "netif.rx_errors"), 0, "{json}");
    let (table, _) = ok(
        home.run(&dir, &["stats", "--host", host]),
        "stats static-website (table)",
    );
    assert!(
        table.starts_with("static-website (domain ") && table.contains("\n  http.requests.200 "),
        "{table}"
    );
    eprintln!("uni stats, twice, in {:.1?}", t0.elapsed());
    let (logs, _) = ok(
        home.run(&dir, &["logs", "--host", host]),
        "logs static-website",
    );
    assert!(!logs.contains("panicked"), "{logs}");
    ok(
        home.run(&dir, &["stop", "--host", host]),
        "stop static-website",
    );
}

/// One HTTPS GET of `/` through the forward to `base` (waiting up to 90 s for the guest to
/// answer): the page must come whole.
fn get_index(base: &str) {
    let dir = example("static-website");
    let index = std::fs::read(dir.join("htdocs/index.html")).unwrap();
    let t0 = Instant::now();
    loop {
        let o = Command::new("curl")
            .args(["--silent", "--fail", "--max-time", "60", "--cacert"])
            .arg(dir.join("pki/ca.pem"))
            .arg(format!("{base}/"))
            .output()
            .unwrap();
        if o.status.success() {
            assert!(o.stdout == index, "{base}/ is not htdocs/index.html");
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "the traced static-website does not answer at {base}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `uni trace --host H NAME OUT` (issue #18): a snapshot of a deployed guest's trace ring,
/// which it keeps running. static-website built with tracing (`uni build --trace`, in the
/// directory where tests/trace.rs's traced board run builds the same image: one build for both)
/// and deployed as it is; after one HTTPS request through the forward, the snapshot holds that
/// connection's TCP accept, TLS handshake steps, HTTP request and TCP close, in order, with
/// increasing timestamps. The first call uploads dom0's reader; the second finds it there.
fn a_deployed_guest_traced(home: &SshHome, host: &str, port: u16, fwd: u16) {
    let dir = uni_tests::traced_website_dir(&home.board);
    let (_, err) = ok(
        home.run(&dir, &["deploy", "--no-build", "--host", host]),
        "deploy the traced static-website",
    );
    assert!(
        err.contains(&format!("Deployed static-website on {host} as domain ")),
        "{err}"
    );
    let base = format!("https://localhost:{fwd}");
    get_index(&base);

    let tmp = tempfile::tempdir().unwrap();
    // `uni trace` into `out`: what it printed on stderr
    let snapshot = |out: &Path, what: &str| {
        let args = ["trace", "--host", host, "static-website"];
        let out = out.to_str().unwrap();
        ok(home.run(&dir, &[&args[..], &[out]].concat()), what).1
    };
    let first = tmp.path().join("first.json");
    let err = snapshot(&first, "uni trace");
    assert!(
        err.contains("Uploading the trace reader (armhf, ")
            || err.contains("Uploading the trace reader (arm64, "),
        "the first uni trace uploads dom0's reader:\n{err}"
    );
    assert!(
        err.contains(&format!("Traced static-website on {host}: ")),
        "{err}"
    );
    let evs = uni_tests::trace_events(&first);
    // (curl's connection reaches the guest from the host's end of the board's LAN)
    let after = uni_tests::check_traced_https_request(&evs, 443, "tcp 10.0.0.254:");
    assert!(
        after.iter().any(|(n, p)| n == "tcp close" && p == "i"),
        "no tcp close after the request on its connection: {after:?}"
    );

    // the guest runs on, and answers; the second snapshot holds the first's events and the
    // second request, and finds the reader in dom0 (one file there)
    get_index(&base);
    let second = tmp.path().join("second.json");
    let err = snapshot(&second, "uni trace, again");
    assert!(!err.contains("Uploading"), "uploaded again:\n{err}");
    let again = uni_tests::trace_events(&second);
    let accepts = |evs: &[serde_json::Value]| {
        evs.iter()
            .filter(|e| e["name"] == "tcp accept")
            .map(|e| e["ts"].as_f64().unwrap())
            .collect::<Vec<f64>>()
    };
    let (one, two) = (accepts(&evs), accepts(&again));
    assert!(
        two.len() == one.len() + 1 && two.starts_with(&one) && two[one.len()] > one[one.len() - 1],
        "tcp accepts at {one:?}, then at {two:?}"
    );
    let tools = dom0(home, port, "ls /var/lib/uni/.tools");
    assert_eq!(
        tools
            .lines()
            .filter(|l| l.starts_with("uni-trace-dump-"))
            .count(),
        1,
        "{tools}"
    );
    ok(
        home.run(&dir, &["stop", "--host", host]),
        "stop the traced static-website",
    );
}

/// `uni new`'s app with every kind (issue #17), written outside the checkout, deployed to the
/// board as it is: each device's use prints on its console, and its page answers curl through
/// the forward. (Here rather than in tests/new.rs, which runs the same app on unix, so that it
/// shares this board's boot.)
fn a_new_app_on_the_board(home: &SshHome, host: &str, fwd: u16) {
    let tmp = tempfile::tempdir().unwrap();
    let o = home.run(
        tmp.path(),
        &[
            "new",
            "every",
            "--devices",
            "console,clock,random,args,kv_ro,kv_rw,block,net,dns,http,xenstore",
        ],
    );
    ok(o, "uni new every");
    let app = tmp.path().join("every");
    // the boot argument its args device reads, on the xl file's extra= line
    let mut toml = std::fs::read_to_string(app.join("unikernel.toml")).unwrap();
    toml.push_str("\n[xen]\nextra = \"--greeting=hi\"\n");
    std::fs::write(app.join("unikernel.toml"), toml).unwrap();
    let (_, err) = ok(home.run(&app, &["deploy", "--host", host]), "deploy every");
    assert!(err.contains("Uploading store's disk store.img"), "{err}");
    let t = Instant::now();
    let log = loop {
        let (log, _) = ok(home.run(&app, &["logs", "--host", host]), "logs every");
        if log.contains("http: listening on") {
            break log;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "every's console:\n{log}"
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    for line in [
        "hello from every\n",
        "args: hi (--greeting=…)\n",
        "data: hello.txt holds 17 bytes\n",
        "store: 0 keys, then wrote `hello`\n",
        "disk: 2048 sectors of 512 bytes\n",
        "dns: example.com: dns: no nameserver configured",
        "xenstore: my domain is every\n",
        "http: listening on 10.0.0.",
    ] {
        assert!(log.contains(line), "no {line:?} in\n{log}");
    }
    let page = Command::new("curl")
        .args(["--silent", "--fail", "--max-time", "60", "--retry", "5"])
        .arg("--retry-all-errors")
        .arg(format!("http://localhost:{fwd}/"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&page.stdout), "hello from every\n");
    ok(home.run(&app, &["stop", "--host", host]), "stop every");
}

/// The power cuts of [`notes_on_the_board`]: one, the cut that only the board can make
/// (blkback's writes, `xl destroy`); tests/notes.rs cuts the unix process many more times.
const ROUNDS: u64 = 1;

/// examples/notes on the board's dom0: deployed with a fresh store, written to while its domain
/// is destroyed (`xl destroy`, a power cut) at random points [`ROUNDS`] times and created
/// again, every acknowledged note still there each time; then a redeploy keeps the store. (Each
/// round is a boot of notes, about 20 s here.)
fn notes_on_the_board(home: &SshHome, host: &str, port: u16, fwd: u16) {
    let dir = tempfile::tempdir().unwrap();
    uni_tests::notes_config(dir.path());
    ok(
        home.run(dir.path(), &["kv", "format", "--size", "4M", "notes.img"]),
        "uni kv format",
    );
    let (_, err) = ok(
        home.run(dir.path(), &["deploy", "--host", host]),
        "deploy notes",
    );
    assert!(err.contains("Uploading notes's disk notes.img"), "{err}");
    let base = format!("https://localhost:{fwd}");
    assert!(board_notes(&base).is_empty());

    let bodies = tempfile::tempdir().unwrap();
    let mut model = std::collections::BTreeMap::new();
    let mut rng: u64 = 0x0b0a_7d00_5eed_0001;
    let mut acked = 0;
    for round in 0..ROUNDS {
        let mut args = Vec::new();
        let mut sent = Vec::new();
        for j in 0..20u64 {
            let key = format!("k{}", (round * 3 + j) % 8);
            let value = format!("round {round} put {j} of {key}\n").repeat(1 + j as usize * 20);
            let file = bodies.path().join(format!("{round}-{j}"));
            std::fs::write(&file, &value).unwrap();
            args.extend([
                "-o".to_string(),
                "/dev/null".into(),
                "-w".into(),
                "%{http_code}\n".into(),
                "-T".into(),
                file.display().to_string(),
                format!("{base}/notes/{key}"),
            ]);
            sent.push((key, value.into_bytes()));
        }
        let ca = example("static-website").join("pki/ca.pem");
        // line-buffered (stdbuf), so that each PUT's status arrives as it is answered; 2 PUTs a
        // second at most (curl --rate), so that the cut, an ssh command to dom0, lands among them
        let mut client = Command::new("stdbuf")
            .args([
                "-oL",
                "curl",
                "--rate",
                "2/s",
                "--silent",
                "--max-time",
                "120",
            ])
            .arg("--cacert")
            .arg(&ca)
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // The cut comes right after the k-th answer (k from 1 to 8): unpaced, the 20 PUTs took
        // less than the ssh round trip of `xl destroy`, and every cut came after all of them.
        let k = 1 + (rng % 8) as usize;
        let mut stdout = std::io::BufReader::new(client.stdout.take().unwrap());
        let mut codes = String::new();
        for _ in 0..k {
            if std::io::BufRead::read_line(&mut stdout, &mut codes).unwrap() == 0 {
                break;
            }
        }
        dom0(home, port, "xl destroy notes");
        // what was answered before the cut is in the pipe by now; the PUT the cut caught would
        // wait out curl's --max-time, and each after it too
        std::thread::sleep(Duration::from_secs(3));
        let _ = client.kill();
        client.wait().unwrap();
        std::io::Read::read_to_string(&mut stdout, &mut codes).unwrap();
        let mut in_flight = None;
        for (i, (key, value)) in sent.into_iter().enumerate() {
            match codes.lines().nth(i) {
                Some("201" | "204") => {
                    model.insert(key, value);
                    acked += 1;
                }
                _ => {
                    in_flight = Some((key, value));
                    break;
                }
            }
        }
        dom0(
            home,
            port,
            "xl create /var/lib/uni/notes/notes.xl >/dev/null",
        );
        let got = board_notes(&base);
        for (k, v) in &got {
            let flying = in_flight
                .as_ref()
                .is_some_and(|(fk, fv)| fk == k && fv == v);
            assert!(
                model.get(k) == Some(v) || flying,
                "round {round}: {k} holds {} bytes never acknowledged for it",
                v.len()
            );
        }
        for k in model.keys() {
            assert!(
                got.contains_key(k),
                "round {round}: acknowledged {k} is gone"
            );
        }
        if let Some((k, v)) = in_flight {
            if got.get(&k) == Some(&v) {
                model.insert(k, v);
            }
        }
    }
    assert!(acked > 0, "no PUT was acknowledged in {ROUNDS} rounds");
    assert!(
        acked < ROUNDS as usize * 20,
        "every PUT was acknowledged: no cut came among them"
    );
    eprintln!("notes on the board: {ROUNDS} power cuts, {acked} acknowledged PUTs");

    // a redeploy keeps the store
    let (_, err) = ok(
        home.run(dir.path(), &["deploy", "--host", host]),
        "redeploy notes",
    );
    assert!(err.contains("Keeping notes's disk"), "{err}");
    assert_eq!(board_notes(&base), model);
    ok(
        home.run(dir.path(), &["stop", "--host", host]),
        "stop notes",
    );
}

#[test]
fn deploy_to_the_emulated_dom0() {
    for board in full_boards() {
        let board = board.as_str();
        eprintln!("=== {board}");
        let t0 = Instant::now();
        let step = |what: &str| eprintln!("[{:6.1}s] {what}", t0.elapsed().as_secs_f64());
        let home = SshHome::new(board);
        let here = example("hello");

        // --- Without the board: an unreachable host fails fast and says so ---
        let closed = free_port();
        uni_tests::uni_bin(); // built before the clock starts
        let t = Instant::now();
        let err = fails(
            home.run(
                &here,
                &["deploy", "--host", &format!("root@127.0.0.1:{closed}")],
            ),
            "deploy to a closed port",
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "took {:?}",
            t.elapsed()
        );
        assert!(
            err.contains(&format!("cannot reach root@127.0.0.1:{closed} over SSH"))
                && err.contains("Connection refused"),
            "{err}"
        );

        // --- The board, alone, with SSH; hello builds meanwhile ---
        let port = free_port();
        let fwd = free_port();
        let key = home.ssh("id_ed25519.pub");
        let publish = format!("{fwd}:echo:7000");
        let notes_fwd = free_port();
        let publish_notes = format!("{notes_fwd}:notes:443");
        let web_fwd = free_port();
        let publish_web = format!("{web_fwd}:static-website:443");
        let new_fwd = free_port();
        let publish_new = format!("{new_fwd}:every:8080");
        let mut cmd = home.uni(
            &here,
            "config",
            &[
                "run",
                "--dom0",
                "--ssh-port",
                &port.to_string(),
                "-p",
                &publish,
                "-p",
                &publish_notes,
                "-p",
                &publish_web,
                "-p",
                &publish_new,
                "--trust-host-key",
                "--timeout",
                "600",
            ],
        );
        // --trust-host-key writes $HOME/.ssh/known_hosts
        cmd.arg("--ssh-key").arg(&key).env("HOME", home.dir.path());
        let mut board = Background::spawn(cmd);
        // (hello, and the traced static-website `uni trace` snapshots below, whose build is
        // the longest of the session's)
        ok(
            home.run(&here, &["build", "--target", "xen-arm"]),
            "building hello",
        );
        ok(
            home.run(
                &uni_tests::traced_website_dir(&home.board),
                &["build", "--target", "xen-arm", "--trace"],
            ),
            "building static-website with tracing",
        );
        board.wait_for("Ready", true, Duration::from_secs(300));
        let host = format!("root@localhost:{port}");
        uni_tests::assert_lan_is_sealed();
        assert!(
            board
                .err()
                .contains(&format!("127.0.0.1:{fwd} -> echo:7000 (10.0.0.x 10.0.0.2")),
            "{}",
            board.err()
        );
        step("board ready");

        step("An unknown host key");
        // --- An unknown host key is refused ---
        let o = home
            .uni(&here, "config-stranger", &["ps", "--host", &host])
            .output()
            .unwrap();
        let err = fails(o, "ps with an unknown host key");
        assert!(
            err.contains(&format!(
                "the host key of {host} is not in your known_hosts"
            )),
            "{err}"
        );

        step("hello:");
        // --- hello: deployed, runs, its console is in dom0's log ---
        let (_, err) = ok(
            home.run(&here, &["deploy", "--host", &host]),
            "deploy hello",
        );
        assert!(
            err.contains(&format!("Deployed hello on {host} as domain ")),
            "{err}"
        );
        let t = Instant::now();
        loop {
            let (out, _) = ok(home.run(&here, &["logs", "--host", &host]), "logs hello");
            if out.matches("world").count() == 2 {
                assert_eq!(out.matches("hello").count(), 2, "{out}");
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "hello's console: {out:?}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }

        step("logs -f");
        // --- `uni logs -f` (--follow) streams the console log and keeps following ---
        let mut c = home.uni(&here, "config", &["logs", "-f", "--host", &host]);
        c.process_group(0);
        let mut follow = Background::spawn(c);
        follow.wait_for("world", false, Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            follow.child.try_wait().unwrap().is_none(),
            "logs --follow ended:\n{}\n{}",
            follow.out(),
            follow.err()
        );
        kill_group(follow);

        step("deploy --console");
        // --- deploy --console, in a terminal: hello's whole console, then it ends with hello ---
        let console = in_terminal(
            &home,
            &here,
            &["deploy", "--no-build", "--console", "--host", &host],
        );
        let (st, out) = finish(
            console,
            Duration::from_secs(60),
            "deploy --console with hello",
        );
        assert!(st.success(), "deploy --console: {st}\n{out}");
        assert!(
            out.contains(&format!("Deployed hello on {host} as domain ")),
            "{out}"
        );
        let shown = out
            .split("Ctrl-])")
            .nth(1)
            .unwrap_or_else(|| panic!("no Console line:\n{out}"));
        let words: Vec<&str> = shown
            .lines()
            .filter_map(|l| ["hello", "world"].into_iter().find(|w| l.contains(w)))
            .collect();
        assert!(
            words.starts_with(&["hello", "world", "hello", "world"]),
            "the console showed {words:?}:\n{out}"
        );

        step("no xl");
        // --- a dom0 without xl is refused, and says so ---
        // (every xl on dom0's PATH, each looked up by a new shell: ash remembers where commands are)
        let moved = dom0(
            &home,
            port,
            r#"for i in 1 2 3; do x=$(sh -c 'command -v xl') || break; mv "$x" "$x.away" && echo "$x"; done; ! sh -c 'command -v xl'"#,
        );
        assert!(!moved.trim().is_empty(), "no xl found in dom0");
        let err = fails(
            home.run(&here, &["deploy", "--no-build", "--host", &host]),
            "deploy to a dom0 without xl",
        );
        let back: Vec<String> = moved
            .lines()
            .map(|x| format!("mv '{x}.away' '{x}'"))
            .collect();
        dom0(
            &home,
            port,
            &format!("{} && command -v xl", back.join(" && ")),
        );
        assert!(
            err.contains(&format!(
                "{host} is not a Xen dom0 with the xl toolstack: no `xl` on the PATH"
            )),
            "{err}"
        );

        step("echo:");
        // --- echo: deployed, answers over TCP through dom0 ---
        let echo = example("echo");
        let (_, err) = ok(home.run(&echo, &["deploy", "--host", &host]), "deploy echo");
        let first = number_after(&err, "as domain");
        let ip = address(&err);
        echo_answers(fwd, &ip);
        let (out, _) = ok(home.run(&echo, &["ps", "--host", &host]), "ps");
        assert!(
            out.lines().any(|l| l
                .split_whitespace()
                .take(2)
                .eq(["echo", &first.to_string()])
                && l.ends_with(" running")),
            "{out}"
        );
        let (json, _) = ok(
            home.run(&echo, &["ps", "--json", "--host", &host]),
            "ps --json",
        );
        let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        let row = |name: &str| rows.iter().find(|r| r["name"] == name).cloned();
        let e = row("echo").unwrap_or_else(|| panic!("{json}"));
        assert_eq!(e["domid"], first, "{json}");
        assert_eq!(e["state"], "running", "{json}");
        assert!(e["memory_mib"].as_u64().is_some_and(|m| m > 0), "{json}");
        let h = row("hello").unwrap_or_else(|| panic!("{json}"));
        assert!(h["domid"].is_null() && h["state"] == "stopped", "{json}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("hello ") && l.contains("stopped")),
            "{out}"
        );

        step("a redeploy, with --console");
        // --- a redeploy replaces it; --console shows its console from the start and stays attached
        // (echo runs on) until left with Ctrl-] ---
        let mut console = in_terminal(&home, &echo, &["deploy", "--console", "--host", &host]);
        let t = Instant::now();
        while !console
            .out()
            .split("Ctrl-])")
            .nth(1)
            .is_some_and(|c| c.contains("net: "))
        {
            assert!(
                t.elapsed() < Duration::from_secs(120)
                    && console.child.try_wait().unwrap().is_none(),
                "no console of echo:\n{}",
                console.out()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // Ctrl-] until it leaves (keys typed before `xl console` runs may be flushed)
        let stdin = console.child.stdin.take().unwrap();
        let typist = std::thread::spawn(move || {
            use std::io::Write;
            let mut stdin = stdin;
            for _ in 0..30 {
                if stdin
                    .write_all(b"\x1d")
                    .and_then(|_| stdin.flush())
                    .is_err()
                {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        let (st, err) = finish(
            console,
            Duration::from_secs(30),
            "deploy --console with echo, left with Ctrl-]",
        );
        drop(typist);
        assert!(st.success(), "deploy --console: {st}\n{err}");
        let second = number_after(&err, "as domain");
        let shown = err.split("Ctrl-])").nth(1).unwrap();
        assert!(shown.contains(&format!("net: {}/", address(&err))), "{err}");
        // neither `xl console` nor its watcher (a subshell of `sh -c '… exec xl console …'`, which
        // polls each second) stays behind in dom0; whole command lines, as busybox ps cuts them
        let procs = dom0(
            &home,
            port,
            r#"sleep 2; for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' <"$f" 2>/dev/null; echo; done; true"#,
        );
        assert!(!procs.contains("xl console"), "{procs}");
        assert_ne!(first, second, "{err}");
        assert!(err.contains(&format!("Replaced domain {first}")), "{err}");
        echo_answers(fwd, &address(&err));

        step("a broken image");
        // --- a broken image is not left in its place: the previous one runs again ---
        let broken = tempfile::tempdir().unwrap();
        let toml = std::fs::read_to_string(echo.join("unikernel.toml"))
            .unwrap()
            .replace(
                "app = \".\"",
                &format!("app = {:?}", echo.display().to_string()),
            );
        std::fs::write(broken.path().join("unikernel.toml"), toml).unwrap();
        std::fs::create_dir(broken.path().join("dist")).unwrap();
        std::fs::copy(
            echo.join("dist/echo.xl"),
            broken.path().join("dist/echo.xl"),
        )
        .unwrap();
        std::fs::write(broken.path().join("dist/echo.xen"), vec![0u8; 4096]).unwrap();
        let err = fails(
            home.run(broken.path(), &["deploy", "--no-build", "--host", &host]),
            "deploy a broken echo",
        );
        assert!(
            err.contains(&format!("echo did not start on {host}: `xl create` failed")),
            "{err}"
        );
        assert!(
            err.contains("the previous image was put back and runs again as domain "),
            "{err}"
        );
        let restored = number_after(&err, "runs again as domain");
        let (out, _) = ok(home.run(&echo, &["ps", "--host", &host]), "ps");
        assert!(
            out.lines().any(|l| l
                .split_whitespace()
                .take(2)
                .eq(["echo", &restored.to_string()])
                && l.contains("running")),
            "{out}"
        );
        let (log, _) = ok(home.run(&echo, &["logs", "--host", &host]), "logs echo");
        // each boot is set off by a line naming its domain: the first deploy, the redeploy, and
        // the restored image (the broken one's `xl create` made no domain)
        let boots: Vec<u32> = log
            .lines()
            .filter_map(|l| l.strip_prefix("--- uni: domain "))
            .map(|l| {
                assert!(l.ends_with(" ---") && l.contains(" started 20"), "{l}");
                l.split(' ').next().unwrap().parse().unwrap()
            })
            .collect();
        assert_eq!(boots, [first, second, restored], "{log}");
        for boot in log.split("--- uni: domain ").skip(1) {
            assert_eq!(
                boot.matches("echo: listening on ").count(),
                1,
                "one boot each:\n{log}"
            );
        }
        let last = log
            .lines()
            .filter_map(|l| l.strip_prefix("net: "))
            .next_back()
            .unwrap_or_else(|| panic!("no address in:\n{log}"));
        echo_answers(fwd, last.split('/').next().unwrap());

        step("an image for another");
        // --- an image for another board is refused before anything is copied ---
        let (other, arch) = if home.board == "cubieboard2" {
            ("qemu-virt", "arm64")
        } else {
            ("cubieboard2", "armhf")
        };
        let err = fails(
            home.run(
                broken.path(),
                &["deploy", "--no-build", "--board", other, "--host", &host],
            ),
            "deploy for the wrong board",
        );
        assert!(
            err.contains(&format!(
                "wrong architecture: the image is built for board `{other}` (Xen {arch})"
            )),
            "{err}"
        );

        step("no space");
        // --- a full dom0 is refused before anything is copied; echo runs on ---
        let avail = dom0(&home, port, "dd if=/dev/zero of=/var/lib/uni/filler bs=1M 2>/dev/null; df -Pk /var/lib/uni | awk 'NR == 2 { print $4 }'");
        assert!(
            avail.trim().parse::<u64>().is_ok_and(|kb| kb < 64),
            "free KiB after the fill: {avail:?}"
        );
        let err = fails(
            home.run(&echo, &["deploy", "--no-build", "--host", &host]),
            "deploy to a full dom0",
        );
        dom0(&home, port, "rm /var/lib/uni/filler");
        assert!(
            err.contains(&format!("no space on {host}: /var/lib/uni has "))
                && err.contains("KiB free, and echo needs about "),
            "{err}"
        );
        assert!(
            err.contains("nothing was uploaded, and what runs there is untouched"),
            "{err}"
        );
        let (out, _) = ok(home.run(&echo, &["ps", "--host", &host]), "ps");
        assert!(
            out.lines().any(|l| l
                .split_whitespace()
                .take(2)
                .eq(["echo", &restored.to_string()])
                && l.contains("running")),
            "{out}"
        );

        step("a disk");
        // --- a block device's disk: uploaded once, kept across redeploys, replaced on request ---
        disk_deploys(&home, &host, port);

        step("notes: power cuts and a redeploy");
        // --- examples/notes deployed with its store; xl destroy at random points; redeployed ---
        notes_on_the_board(&home, &host, port, notes_fwd);

        step("static-website at its smallest memory");
        website_at_its_smallest_memory(&home, &host, web_fwd);

        step("uni trace");
        a_deployed_guest_traced(&home, &host, port, web_fwd);

        step("uni new's app");
        a_new_app_on_the_board(&home, &host, new_fwd);

        step("stop");
        // --- stop ---
        let (_, err) = ok(home.run(&echo, &["stop", "--host", &host]), "stop echo");
        assert!(
            err.contains(&format!(
                "Stopped echo on {host} (domain {restored} destroyed)"
            )),
            "{err}"
        );
        let (out, _) = ok(home.run(&echo, &["ps", "--host", &host]), "ps");
        assert!(
            out.lines()
                .any(|l| l.starts_with("echo ") && l.contains("stopped")),
            "{out}"
        );

        assert!(
            board.child.try_wait().unwrap().is_none(),
            "the board stopped:\n{}",
            board.err()
        );
        step("done");
    }
}
