//! Networking on real Xen: examples/echo on the emulated board, over netfront and the direct
//! stack, reached from the host through `uni run -p` only. One boot with DHCP carries most
//! checks (dom0 ping, 10 MiB, 50 concurrent connections, 2000 malformed frames injected inside
//! the board's own network namespace with `uni lan`, and on the user's board peers that vanish
//! without FIN or RST and a SYN flood, with tests/tools/vanish.py there too); on the full boards
//! (not the smoke board) a second boot, run by user nobody with no privileges at all
//! (setpriv), takes a static address from the xl `extra=` boot arguments.
//! While each board runs, the test's own namespace has no TAP device and no route to the LAN.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use std::process::Command;

use uni_tests::{
    assert_lan_is_sealed, echo_roundtrip, example, full_boards, lan, pattern, root, smoke_boards,
    uni_on, Background,
};

const DOM0_PING: &str =
    "for i in $(seq 60); do ping -c 1 -W 1 $GUEST_IP && exit 0; sleep 1; done; exit 1";

/// A `uni run --target xen-arm` in the background, its console and status lines collected.
struct Board {
    run: Background,
    port: u16,
}

impl Board {
    fn start(board: &str, dir: &Path, dom0_check: Option<&str>, boot_args: &[&str]) -> Board {
        Board::spawn(|port| {
            let forward = format!("{port}:7000");
            // Long enough for the vanished-peer waves too (UNI_VANISHED=10000: 100 waves).
            let limit = (600 + vanished_count() / WAVE * (PAUSE_SECS as usize + 3)).to_string();
            let mut args = vec![
                "run",
                "--target",
                "xen-arm",
                "-p",
                &forward,
                "--timeout",
                &limit,
            ];
            if !boot_args.is_empty() {
                args.push("--");
                args.extend_from_slice(boot_args);
            }
            let mut cmd = uni_on(board, dir, &args);
            if let Some(c) = dom0_check {
                cmd.env("UNI_DOM0_CHECK", c);
            }
            cmd
        })
    }

    fn spawn(cmd: impl FnOnce(u16) -> Command) -> Board {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Board {
            run: Background::spawn(cmd(port)),
            port,
        }
    }

    fn wait_for(&mut self, what: &str, in_stderr: bool, limit: Duration) {
        self.run.wait_for(what, in_stderr, limit)
    }

    fn out(&self) -> String {
        self.run.out()
    }

    fn err(&self) -> String {
        self.run.err()
    }

    /// The TAP device the run reports, inside its namespace.
    fn tap(&self) -> String {
        let err = self.err();
        let at = err
            .find("host 10.0.0.254 on ")
            .expect("the run reports its TAP device")
            + "host 10.0.0.254 on ".len();
        err[at..].split_whitespace().next().unwrap().to_string()
    }
}

#[test]
fn echo_on_real_xen() {
    for board in smoke_boards() {
        let board = board.as_str();
        eprintln!("=== {board}");
        // --- Boot 1: DHCP ---
        // Short TCP timeouts, for the vanished peers below, and a heap report per accepted
        // connection.
        let mut b = Board::start(board, &example("echo"), Some(DOM0_PING), &CLEANUP_ARGS);
        b.wait_for(
            "echo: listening on 10.0.0.2:7000",
            false,
            Duration::from_secs(400),
        );
        let out = b.out();
        assert!(
            out.contains("net: 10.0.0.2/24 via 10.0.0.1 (DHCP)"),
            "the guest prints its DHCP address:\n{out}"
        );

        // dom0 pings the guest.
        b.wait_for("Checked", true, Duration::from_secs(120));
        assert!(
            b.err().contains("in dom0: ok"),
            "dom0 could not ping the guest:\n{}",
            b.err()
        );

        // 10 MiB through echo, byte for byte.
        let data = pattern(10 << 20, 1);
        let t0 = Instant::now();
        let back = echo_roundtrip(("127.0.0.1", b.port), &data);
        eprintln!("10 MiB echoed in {:?}", t0.elapsed());
        assert!(
            back == data,
            "10 MiB: got {} bytes back, or different ones",
            back.len()
        );

        // 50 concurrent connections, each echoed correctly.
        let port = b.port;
        let clients: Vec<_> = (0..50u32)
            .map(|i| {
                std::thread::spawn(move || {
                    let data = pattern(16 * 1024, 100 + i);
                    assert!(
                        echo_roundtrip(("127.0.0.1", port), &data) == data,
                        "connection {i} got other bytes back"
                    );
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }

        assert_lan_is_sealed();

        // 2000 malformed or random frames onto the bridge, from inside the board's namespace; echo
        // still answers.
        let tap = b.tap();
        let script = root().join("tests/tools/inject-frames.py");
        let err = b.err();
        let mac = err
            .split("MAC ")
            .nth(1)
            .and_then(|r| r.get(..17))
            .expect("the run reports the guest's MAC");
        let o = lan(
            b.run.child.id(),
            &[
                "python3",
                script.to_str().unwrap(),
                "--iface",
                &tap,
                "--target-mac",
                mac,
                "--count",
                "2000",
            ],
        )
        .output()
        .unwrap();
        assert!(
            o.status.success(),
            "inject-frames: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        eprintln!("{}", String::from_utf8_lossy(&o.stdout));
        assert_eq!(
            echo_roundtrip(("127.0.0.1", b.port), b"still here\n"),
            b"still here\n"
        );
        assert!(
            b.run.child.try_wait().unwrap().is_none(),
            "the guest died:\n{}",
            b.err()
        );
        // Peers that vanish, and a SYN flood (issue #15): on the boards a user runs, not again
        // on the smoke board.
        let full = full_boards().iter().any(|f| f == board);
        if full {
            vanished_peers_and_a_syn_flood(&b, &tap, mac);
        }
        drop(b);
        // Boot 2 checks the host's side (an unprivileged run) and the guest's static address,
        // neither of which depends on the hypervisor: the full boards only.
        if !full {
            continue;
        }

        // --- Boot 2: user nobody, no privileges, a prebuilt image; a static address from the boot
        // arguments (MirageOS's spelling) ---
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("unikernel.toml"),
            format!(
                "[unikernel]\nschema = 1\nname = \"echo-static\"\napp = {:?}\nboot-args = \"--port=7000\"\n\n\
                 [devices.console]\nkind = \"console\"\n\n[devices.net]\nkind = \"net\"\n\n[devices.args]\nkind = \"args\"\n\n\
                 [xen]\nextra = \"--ipv4=10.0.0.9/24 --ipv4-gateway=10.0.0.1\"\n",
                example("echo")
            ),
        )
        .unwrap();
        let o = uni_on(board, tmp.path(), &["build", "--target", "xen-arm"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "building echo-static: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let nobody = Nobody::new(tmp.path());
        let mut b = Board::spawn(|port| {
            nobody.uni(
                tmp.path(),
                &[
                    "run",
                    "--target",
                    "xen-arm",
                    "--board",
                    board,
                    "--no-build",
                    "-p",
                    &format!("{port}:7000"),
                    "--timeout",
                    "600",
                ],
            )
        });
        b.wait_for(
            "echo: listening on 10.0.0.9:7000",
            false,
            Duration::from_secs(400),
        );
        assert!(
            b.out().contains("net: 10.0.0.9/24 via 10.0.0.1 (static)"),
            "{}",
            b.out()
        );
        let data = pattern(1 << 20, 7);
        assert!(
            echo_roundtrip(("127.0.0.1", b.port), &data) == data,
            "1 MiB over the static address"
        );
        assert_lan_is_sealed();
        // it really ran as nobody: the run's process, and the namespace it made
        let status = std::fs::read_to_string(format!("/proc/{}/status", b.run.child.id())).unwrap();
        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(uid.split_whitespace().nth(1) == Some("65534"), "{uid}");
        let mine = std::fs::read_link("/proc/self/ns/user").unwrap();
        assert_ne!(
            std::fs::read_link(format!("/proc/{}/ns/user", b.run.child.id())).unwrap(),
            mine,
            "an unprivileged run makes a user namespace"
        );
    }
}

/// Boot arguments of the first boot: TCP timeouts short enough for a test (the direct stack's
/// defaults are 75 s, 675 s, 60 s and 63 s, as Linux's), and echo's heap report per accepted
/// connection.
const CLEANUP_ARGS: [&str; 5] = [
    "--log-heap",
    "--tcp-keepalive=1",
    "--tcp-timeout=4",
    "--tcp-fin-timeout=2",
    "--tcp-syn-timeout=2",
];

/// Vanished connections per wave, and the pause after each: longer than --tcp-timeout, so that
/// a wave is reclaimed before the next and no more sockets are ever open at once than in the
/// warm-up wave.
const WAVE: usize = 100;
const PAUSE_SECS: u64 = 7;

/// How many vanished connections after the warm-up: `UNI_VANISHED`, or 200.
fn vanished_count() -> usize {
    std::env::var("UNI_VANISHED")
        .ok()
        .map(|v| v.parse().expect("UNI_VANISHED: a number of connections"))
        .unwrap_or(200)
}

/// The heap (bytes, allocations) echo reports when it accepts a probe connection from the host
/// through `-p`; waits for the console line.
fn probe_heap(b: &Board) -> (u64, u64) {
    let reports = |out: &str| -> Vec<(u64, u64)> {
        out.lines()
            .filter(|l| !l.contains("10.0.0.200:"))
            .filter_map(|l| {
                let rest = l.split_once("accepted; heap used ")?.1;
                let (used, rest) = rest.split_once(" bytes in ")?;
                let allocs = rest.split_whitespace().next()?;
                Some((used.parse().ok()?, allocs.parse().ok()?))
            })
            .collect()
    };
    let before = reports(&b.out()).len();
    assert_eq!(
        echo_roundtrip(("127.0.0.1", b.port), b"probe\n"),
        b"probe\n"
    );
    let t0 = Instant::now();
    loop {
        let r = reports(&b.out());
        if r.len() > before {
            return r[before];
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "echo did not report its heap for the probe:\n{}",
            b.out()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Probes until two probes in a row report the same heap; returns it.
fn quiet_heap(b: &Board, what: &str) -> ((u64, u64), Vec<(u64, u64)>) {
    let mut seen = vec![probe_heap(b)];
    let t0 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let h = probe_heap(b);
        seen.push(h);
        if seen[seen.len() - 2] == h {
            return (h, seen);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{what}: the heap never settled: {seen:?}"
        );
    }
}

/// `vanish.py` inside the board's namespace, from 10.0.0.200, a host nobody else owns.
fn vanish(b: &Board, tap: &str, mac: &str, args: &[&str]) -> Command {
    let script = root().join("tests/tools/vanish.py");
    let mut a = vec![
        "python3",
        script.to_str().unwrap(),
        "--iface",
        tap,
        "--guest-mac",
        mac,
    ];
    a.extend_from_slice(args);
    let a: Vec<String> = a.into_iter().map(String::from).collect();
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    lan(b.run.child.id(), &a)
}

/// Connections whose peers vanish without FIN or RST (idle after a request, with data in
/// flight, after the peer's FIN, mid-handshake) are reclaimed after the timeouts, and the heap
/// comes back to where it was; an established connection keeps working through a SYN flood.
/// `UNI_VANISHED=10000` sets how many vanished connections (default 200 after a warm-up wave
/// of 100).
fn vanished_peers_and_a_syn_flood(b: &Board, tap: &str, mac: &str) {
    let t0 = Instant::now();
    let total = vanished_count();
    let run = |count: usize| {
        let o = vanish(
            b,
            tap,
            mac,
            &[
                "connections",
                "--count",
                &count.to_string(),
                "--wave",
                &WAVE.to_string(),
                "--pause",
                &PAUSE_SECS.to_string(),
            ],
        )
        .output()
        .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "vanish.py: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        eprintln!("{}", out.trim_end());
    };
    // Warm-up: one wave, so that what is sized once for that many sockets at a time (smoltcp's
    // socket table) is in the baseline.
    run(WAVE);
    let (baseline, seen) = quiet_heap(b, "after the warm-up");
    eprintln!("quiet heap after the warm-up wave: {seen:?}");
    let load = Instant::now();
    run(total);
    let loaded = load.elapsed();
    // Every wave ended with a pause longer than --tcp-timeout; the last one's sockets are freed
    // by now, or within a few seconds more.
    // The same live allocations as before, and the same bytes but for a little capacity: a
    // queue sized to a peak (the executor's run queue keeps room for the most tasks ever woken
    // at once, 4 bytes each) may step by a few hundred bytes with how many wake together when
    // a wave times out (128 bytes once in three runs). A socket's buffers are 64 KiB, an echo
    // task over 4 KiB, a doubling of smoltcp's socket table 22 KiB: all far above 2 KiB.
    let back = |h: (u64, u64)| h.1 == baseline.1 && h.0.abs_diff(baseline.0) <= 2048;
    let mut after = vec![];
    let t1 = Instant::now();
    loop {
        let h = probe_heap(b);
        after.push(h);
        if back(h) || t1.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "{total} vanished peers in {loaded:.1?}; heap (bytes, allocations) before {baseline:?}, \
         after {after:?}"
    );
    assert!(
        back(*after.last().unwrap()),
        "the heap did not come back to its quiet baseline {baseline:?} (bytes, allocations) \
         after {total} vanished peers: {after:?}"
    );
    let died = b.out();
    assert!(!died.contains("panicked"), "the guest panicked:\n{died}");

    // A SYN flood while an established connection echoes.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut round = |i: u32| {
        let msg = pattern(1000, i);
        s.write_all(&msg).unwrap();
        let mut back = vec![0; msg.len()];
        s.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("echo round {i} during the SYN flood: {e}"));
        assert!(back == msg, "echo round {i}: other bytes came back");
    };
    round(0);
    let mut flood = vanish(
        b,
        tap,
        mac,
        &["flood", "--count", "20000", "--rate", "4000"],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut rounds = 0;
    while flood.try_wait().unwrap().is_none() {
        rounds += 1;
        round(rounds);
    }
    let mut out = String::new();
    flood
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    eprintln!("{} ; {rounds} echo rounds during it", out.trim_end());
    assert!(flood.wait().unwrap().success(), "vanish.py flood: {out}");
    assert!(
        rounds >= 1,
        "no echo round finished while the flood ran: {out}"
    );
    round(rounds + 1);
    // Once the flood's handshakes time out (--tcp-syn-timeout=2), new peers are accepted again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        echo_roundtrip(("127.0.0.1", b.port), b"after the flood\n"),
        b"after the flood\n"
    );
    eprintln!("vanished peers and SYN flood: {:.1?}", t0.elapsed());
}

/// `src` at `dst`: directories made, files hard-linked, or copied where a link is refused.
fn link_tree(src: &Path, dst: &Path) {
    if src.is_dir() {
        std::fs::create_dir_all(dst).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap().path();
            link_tree(&e, &dst.join(e.file_name().unwrap()));
        }
    } else if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", src.display(), dst.display()));
    }
}

/// What user nobody (65534) needs to boot a prebuilt image: the uni binary and a copy of the
/// board cache (hard links) it can read, and `dir`, the unikernel's, its own.
struct Nobody {
    home: tempfile::TempDir,
}

impl Nobody {
    fn new(dir: &Path) -> Nobody {
        let home = tempfile::tempdir().unwrap();
        let cache = std::env::var_os("UNI_CACHE_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/uni")
            });
        let h = home.path().display();
        // each assembled board's files (a directory with a dom0-* image), linked, or copied when
        // on another file system; its apt state, lock and logs stay behind: a cache that is only
        // read needs none of them. Directories without an image (a Linux guest's .debs, the logs
        // --dom0 leaves) are skipped.
        let dst = home.path().join("cache");
        std::fs::create_dir(&dst).unwrap();
        for b in std::fs::read_dir(&cache).unwrap() {
            let b = b.unwrap().path();
            let entries: Vec<_> = match std::fs::read_dir(&b) {
                Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
                Err(_) => continue,
            };
            // `debs` and the assembled `dom0-<key>` directories; not the files --dom0 leaves
            // (dom0-serial.log), which another test may be writing or removing
            let keep: Vec<_> = entries
                .iter()
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    p.is_dir() && (n == "debs" || n.starts_with("dom0-"))
                })
                .collect();
            if !keep.iter().any(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("dom0-")
            }) {
                continue;
            }
            let to = dst.join(b.file_name().unwrap());
            for p in keep {
                link_tree(p, &to.join(p.file_name().unwrap()));
            }
        }
        let st = Command::new("sh")
            .args([
                "-ec",
                &format!(
                    "cp '{}' {h}/uni && chmod -R a+rX {h} && chown -R 65534:65534 '{}'",
                    uni_tests::uni_bin().display(),
                    dir.display()
                ),
            ])
            .status()
            .unwrap();
        assert!(
            st.success(),
            "giving nobody the uni binary and {}",
            dir.display()
        );
        Nobody { home }
    }

    /// `uni args…` in `dir` as user nobody, with no capabilities, no supplementary groups and
    /// HOME in its own directory.
    fn uni(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(self.home.path().join("uni"))
        .args(args)
        .current_dir(dir)
        .env("HOME", self.home.path())
        .env("UNI_CACHE_DIR", self.home.path().join("cache"))
        .env("NO_COLOR", "1");
        c
    }
}
