//! The unix target end to end: `uni configure`, `uni build` and `uni run` on the examples,
//! checked by their output, exit codes and, for echo, a real TCP client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use uni_tests::{echo_roundtrip, example, pattern, run_uni, text, uni};

#[test]
fn hello_configures_builds_and_runs() {
    let dir = example("hello");
    let o = run_uni(&dir, &["configure", "--target", "unix"]);
    assert!(o.status.success(), "{}", text(&o).1);

    let o = run_uni(&dir, &["build", "--target", "unix"]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // no `Compiling` when hello is already built (tests/build_errors.rs checks both cases)
    for verb in ["Finished", "Built dist/hello"] {
        assert!(err.contains(verb), "no `{verb}` status line in:\n{err}");
    }
    assert!(
        !err.contains("Compiling uni-runtime"),
        "cargo's own output leaks without -v:\n{err}"
    );
    assert!(dir.join("dist/hello").is_file());

    // `uni run` streams the console; lines come about a second apart.
    let mut child = uni(&dir, &["run", "--target", "unix"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = vec![];
    let mut stamps = vec![];
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        lines.push(line.unwrap());
        stamps.push(Instant::now());
    }
    let status = child.wait().unwrap();
    assert_eq!(lines, ["hello", "world", "hello", "world"]);
    assert!(status.success(), "hello exits 0, got {status}");
    for w in stamps.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap > Duration::from_millis(900) && gap < Duration::from_secs(3),
            "lines {gap:?} apart"
        );
    }
}

#[test]
fn build_alone_configures_first() {
    // A scratch copy of hello's config, so the generated crate starts missing.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("unikernel.toml"),
        format!(
            "[unikernel]\nschema = 1\nname = \"hello\"\napp = {:?}\n[devices.console]\nkind = \"console\"\n[devices.clock]\nkind = \"clock\"\n",
            example("hello")
        ),
    )
    .unwrap();
    let o = run_uni(tmp.path(), &["build"]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("Configuring hello"), "{err}");
    assert!(tmp.path().join("_build/unix/src/main.rs").is_file());
    assert!(tmp.path().join("dist/hello").is_file());
    // Nothing stale the second time: no Configuring line.
    let o = run_uni(tmp.path(), &["build"]);
    assert!(o.status.success());
    assert!(!text(&o).1.contains("Configuring"), "{}", text(&o).1);
}

#[test]
fn app_error_becomes_exit_code_and_bad_boot_args_are_reported() {
    let dir = example("echo");
    // A port that does not parse: refused at boot, in words, as a usage error (exit 2).
    let o = run_uni(&dir, &["run", "--", "--port=notaport"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: boot argument --port=notaport: expected a port number, 1–65535"),
        "{err}"
    );
    // A malformed network boot argument: the same, for the net device's key.
    let o = run_uni(&dir, &["run", "--", "--ipv4=10.0.0.2"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--ipv4=10.0.0.2: expected an address with a prefix length"),
        "{err}"
    );
    // An error the app returns (its listen fails on a port taken): exit 1 with the message.
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let o = run_uni(&dir, &["run", "--", &format!("--port={port}")]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error: net device \"net\": cannot listen on port {port}: address in use"
        )),
        "{err}"
    );
}

/// `--help`, unknown keys and values of the wrong form, checked by the runtime against the
/// keys the devices and the app (its args device's `keys`) declare.
#[test]
fn boot_arguments_are_listed_by_help_and_checked() {
    let dir = example("echo");
    let o = run_uni(&dir, &["run", "--", "--help"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.starts_with("echo: boot arguments"), "{out}");
    for want in [
        // the net device's keys, with the config's defaults
        "--ipv4=A.B.C.D/N",
        "(devices.net; an address with a prefix length, like 10.0.0.2/24; default 0.0.0.0/0)",
        "--ipv4-gateway=A.B.C.D",
        // the app's, declared in unikernel.toml; boot-args' --port=7000 is the default in force
        "--port=PORT",
        "the TCP port to listen on (app; a port number, 1–65535; default 7000)",
        "--log-heap ",
        "(app; a flag, off unless given)",
        "--help",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    for rust in ["u16", "i64", "Some(", "Type::"] {
        assert!(!out.contains(rust), "{out}");
    }

    // Unknown keys: named, with the nearest known key when one is near; exit 2.
    for (arg, want) in [
        (
            "--prot=7001",
            "error: unknown boot argument --prot: did you mean --port? (--help lists every key)",
        ),
        (
            "--ipv4-gatway=10.0.0.1",
            "error: unknown boot argument --ipv4-gatway: did you mean --ipv4-gateway?",
        ),
        (
            "--bogus",
            "error: unknown boot argument --bogus (--help lists every key this unikernel accepts)",
        ),
        // a flag with a value
        (
            "--log-heap=yes",
            "error: boot argument --log-heap=yes: expected no value",
        ),
    ] {
        let o = run_uni(&dir, &["run", "--", arg]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{arg}: {err}");
        assert!(err.contains(want), "{arg}: {err}");
        assert!(out.is_empty(), "{arg}: nothing starts: {out}");
    }
}

/// A panic anywhere in the process, the app's own task or a spawned one, prints its location
/// and message (no backtrace unless RUST_BACKTRACE asks) and exits 1, as the Xen guest ends
/// crashed. Before, a spawned task's panic was dropped by the executor and the app went on.
#[test]
fn a_panic_anywhere_prints_its_location_and_exits_1() {
    let dir = example("crash");
    let o = run_uni(&dir, &["run", "--target", "unix"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(out, "crash: about to panic\n", "{err}");
    assert!(
        err.contains("panicked at ")
            && err.contains("crash/src/lib.rs:13:5:\ncrash: deliberate panic at depth 3\n"),
        "{err}"
    );
    assert!(
        !err.contains("RUST_BACKTRACE") && !err.contains("thread '"),
        "{err}"
    );

    // In a spawned task, while the app waits forever: the panic alone must end the process.
    let mut child = uni(&dir, &["run", "--target", "unix", "--", "--in-task"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("a task's panic did not end the process within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("crash/src/lib.rs:") && err.contains(":\ncrash: deliberate panic in a task\n"),
        "{err}"
    );

    // RUST_BACKTRACE asks for Rust's own report; the exit code stays 1.
    let o = uni(&dir, &["run", "--target", "unix"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("stack backtrace:"), "{err}");
}

/// A port the http device cannot take: the error names the device, the port and the boot
/// argument that sets another; an unknown key names the nearest device key.
#[test]
fn http_listen_errors_name_the_device_port_and_override() {
    let dir = example("static-website");
    let o = run_uni(&dir, &["build", "--target", "unix"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let free = uni_tests::free_port();
    let o = run_uni(
        &dir,
        &[
            "run",
            "--target",
            "unix",
            "--",
            &format!("--https-port={port}"),
            &format!("--http-port={free}"),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error: http device \"https\": cannot listen on port {port}: address in use (set another with --https-port=N)"
        )),
        "{err}"
    );
    drop(taken);

    // `--port` on an app without a port key of its own: the http devices' keys are near.
    let o = run_uni(&dir, &["run", "--target", "unix", "--", "--port=8082"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: unknown boot argument --port: did you mean --https-port?"),
        "{err}"
    );
    let o = run_uni(&dir, &["run", "--target", "unix", "--", "--https-port=abc"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: boot argument --https-port=abc: expected a port number, 1–65535"),
        "{err}"
    );
}

/// A port an app's own listener cannot take (echo's `net.listen`, tls-echo's `tls.listen`):
/// the error the runtime's stacks return names the net device and the port, without the app
/// saying them.
#[test]
fn app_listen_errors_name_the_device_and_port() {
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for (app, want) in [
        (
            "echo",
            format!("error: net device \"net\": cannot listen on port {port}: address in use"),
        ),
        (
            "tls-echo",
            format!("error: TLS: net device \"net\": cannot listen on port {port}: address in use"),
        ),
    ] {
        let o = run_uni(
            &example(app),
            &["run", "--target", "unix", "--", &format!("--port={port}")],
        );
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{app}: {out}\n{err}");
        assert!(err.contains(&want), "{app}: no {want:?} in:\n{err}");
        assert!(!out.contains("listening"), "{app}: {out}");
    }
    drop(taken);
}

/// `--board` on the unix target is refused by `build` and `configure` before anything is
/// written, naming the target, as `uni run` refuses it; the config's own target counts too.
#[test]
fn build_and_configure_refuse_a_board_on_unix() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("unikernel.toml"),
        format!(
            "[unikernel]\nschema = 1\nname = \"hello\"\napp = {:?}\ntarget = \"unix\"\n\n\
             [devices.console]\nkind = \"console\"\n\n[devices.clock]\nkind = \"clock\"\n",
            example("hello").display().to_string()
        ),
    )
    .unwrap();
    for args in [
        &["build", "--target", "unix", "--board", "cubieboard2"][..],
        &["configure", "--target", "unix", "--board", "cubieboard2"],
        &["configure", "--board", "qemu-virt"],
    ] {
        let o = run_uni(tmp.path(), args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        let board = args[args.len() - 1];
        let want = format!("error: `--board {board}` does not apply to target unix");
        assert!(err.contains(&want), "{args:?}: no {want:?} in:\n{err}");
        assert!(err.contains("--target xen-arm"), "{args:?}: {err}");
        assert!(
            !tmp.path().join("_build").exists(),
            "{args:?} configured before refusing"
        );
    }
    let o = run_uni(
        tmp.path(),
        &[
            "configure",
            "--dry-run",
            "--target",
            "xen-arm",
            "--board",
            "cubieboard2",
        ],
    );
    assert!(o.status.success(), "{}", text(&o).1);
}

struct Echo {
    child: Child,
    port: u16,
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an echo unikernel from `dir` with `args` and waits for its first console line, which
/// must be `expected`.
fn start_echo_in(dir: &std::path::Path, args: &[&str], port: u16, expected: &str) -> Echo {
    let mut full = vec!["run", "--"];
    full.extend_from_slice(args);
    let mut child = uni(dir, &full)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let mut err = String::new();
    if line.is_empty() {
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
    }
    assert_eq!(line.trim(), expected, "{err}");
    // Keep draining the console so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    Echo { child, port }
}

fn start_echo() -> Echo {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    start_echo_in(
        &example("echo"),
        &[&format!("--port={port}")],
        port,
        &format!("echo: listening on 0.0.0.0:{port}"),
    )
}

#[test]
fn echo_serves_tcp_clients() {
    let echo = start_echo();

    // One large transfer, written and read concurrently.
    let data = pattern(4 << 20, 0);
    let back = echo_roundtrip(("127.0.0.1", echo.port), &data);
    assert!(
        back == data,
        "echoed {} bytes, sent {}",
        back.len(),
        data.len()
    );

    // Many clients at once, each getting its own bytes back.
    let clients: Vec<_> = (0..32)
        .map(|i| {
            let port = echo.port;
            std::thread::spawn(move || {
                let msg = format!("client {i} says hello\n").repeat(100);
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.write_all(msg.as_bytes()).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut back = String::new();
                s.read_to_string(&mut back).unwrap();
                assert_eq!(back, msg, "client {i}");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

/// A TAP interface for the test, removed on drop.
struct Tap(String);

impl Tap {
    fn create(name: &str, host_cidr: &str) -> Result<Tap, String> {
        let ip = |args: &[&str]| {
            let o = std::process::Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("running ip: {e}"))?;
            if o.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
        };
        let _ = ip(&["link", "del", name]);
        ip(&["tuntap", "add", "dev", name, "mode", "tap"])?;
        let tap = Tap(name.to_string());
        ip(&["addr", "add", host_cidr, "dev", name])?;
        ip(&["link", "set", name, "up"])?;
        Ok(tap)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .status();
    }
}

/// The direct stack over a TAP device, with the host's Linux as the peer. Everything happens in
/// a user and network namespace of the test's own (util-linux's `unshare`): the TAP device, its
/// address and every packet stay there, and no privileges are needed.
#[test]
fn echo_over_the_direct_stack_on_a_tap_device() {
    // echo's app, with the smoltcp stack instead of host sockets, built out here (the namespace
    // has no network)
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("unikernel.toml"),
        format!(
            "[unikernel]\nschema = 1\nname = \"echo-direct\"\napp = {:?}\n\n[devices.console]\nkind = \"console\"\n\n\
             [devices.net]\nkind = \"net\"\nstack = \"direct\"\nipv4 = \"192.168.77.2/24\"\n\n[devices.args]\nkind = \"args\"\n",
            example("echo")
        ),
    )
    .unwrap();
    let o = uni(tmp.path(), &["build"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "direct_stack_on_a_tap_device_inside_a_namespace",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("UNI_TAP_TEST_DIR", tmp.path())
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        o.status.success() && out.contains("test result: ok. 1 passed"),
        "in the namespace:\n{out}\n{err}"
    );
}

#[test]
#[ignore = "the second half of echo_over_the_direct_stack_on_a_tap_device, which runs it in a namespace"]
fn direct_stack_on_a_tap_device_inside_a_namespace() {
    let dir = std::env::var_os("UNI_TAP_TEST_DIR")
        .expect("run by echo_over_the_direct_stack_on_a_tap_device");
    let tmp = std::path::PathBuf::from(dir);
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    let init = std::fs::read_link("/proc/1/ns/net");
    assert!(
        init.map_or(true, |i| i != own),
        "not in a network namespace of its own"
    );
    let up = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success());
    let tap =
        Tap::create("unitap0", "192.168.77.1/24").expect("a TAP device in the test's namespace");
    let echo = start_echo_in(
        &tmp,
        &[&format!("--tap={}", tap.0), "--port=7000"],
        7000,
        "echo: listening on 192.168.77.2:7000",
    );

    let data = pattern(1 << 20, 0);
    let back = echo_roundtrip(("192.168.77.2", echo.port), &data);
    assert!(
        back == data,
        "echoed {} bytes, sent {}",
        back.len(),
        data.len()
    );

    let clients: Vec<_> = (0..12)
        .map(|i| {
            std::thread::spawn(move || {
                let msg = format!("direct client {i}\n").repeat(50);
                let mut s = TcpStream::connect(("192.168.77.2", 7000)).unwrap();
                s.write_all(msg.as_bytes()).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut back = String::new();
                s.read_to_string(&mut back).unwrap();
                assert_eq!(back, msg, "client {i}");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    drop(echo);
    drop(tap);
}

#[test]
fn lookup_resolves_through_the_dns_device() {
    let server = uni_tests::DnsServer::start(
        "127.0.0.1",
        &["uni.test=192.0.2.7", "other.uni.test=198.51.100.1"],
    );
    let ns = format!("--nameserver=127.0.0.1:{}", server.port);
    let o = run_uni(
        &example("lookup"),
        &["run", "--", &ns, "--names=uni.test,other.uni.test,10.1.2.3"],
    );
    let (out, err) = text(&o);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "uni.test: 192.0.2.7",
            "other.uni.test: 198.51.100.1",
            "10.1.2.3: 10.1.2.3"
        ],
        "{err}"
    );
    assert_eq!(o.status.code(), Some(0), "{err}");

    let o = run_uni(
        &example("lookup"),
        &["run", "--", &ns, "--names=missing.uni.test"],
    );
    let (out, err) = text(&o);
    assert_eq!(
        out.trim(),
        "missing.uni.test: dns: missing.uni.test: no such name (or no IPv4 address)",
        "{err}"
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failed lookup is the app's error: {err}"
    );
    drop(server);

    // Nobody answers: the resolver retries, then times out.
    let o = run_uni(&example("lookup"), &["run", "--", &ns, "--names=uni.test"]);
    assert!(
        text(&o)
            .0
            .contains("uni.test: dns: the nameserver did not answer"),
        "{:?}",
        text(&o)
    );
}

/// The pattern tests/block-app writes for `seed`.
fn block_pattern(seed: u64, offset: u64) -> u8 {
    (offset.wrapping_mul(31).wrapping_add(seed.wrapping_mul(7)) % 251) as u8
}

#[test]
fn block_device_writes_reach_the_file_and_bad_images_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let app = uni_tests::root().join("tests/block-app");
    std::fs::write(
        tmp.path().join("unikernel.toml"),
        format!(
            "[unikernel]\nschema = 1\nname = \"block-app\"\napp = {:?}\n\n[devices.console]\nkind = \"console\"\n\n\
             [devices.disk]\nkind = \"block\"\nfile = \"disk.img\"\n\n[devices.args]\nkind = \"args\"\n",
            app.display().to_string()
        ),
    )
    .unwrap();
    let img = tmp.path().join("disk.img");
    std::fs::write(&img, vec![0u8; 128 * 512]).unwrap();

    let o = run_uni(tmp.path(), &["run", "--", "--seed=5", "--sectors=16"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("disk: 128 sectors of 512 bytes"), "{out}");
    assert!(out.contains("wrote and flushed 16 sectors"), "{out}");
    assert!(
        out.contains("read back 16 sectors: all as written"),
        "{out}"
    );
    assert!(
        out.contains("past the end: sectors 128..129 are past the end of the device (128 sectors)"),
        "{out}"
    );
    let bytes = std::fs::read(&img).unwrap();
    assert_eq!(bytes.len(), 128 * 512, "the image keeps its size");
    assert!(
        (0..16 * 512).all(|i| bytes[i] == block_pattern(5, i as u64)),
        "the pattern is in the host file"
    );
    assert!(
        bytes[16 * 512..].iter().all(|&b| b == 0),
        "nothing past the written sectors"
    );

    // a second boot reads what the first wrote; a wrong expectation is the app's error
    let o = run_uni(
        tmp.path(),
        &["run", "--", "--seed=5", "--sectors=16", "--mode=check"],
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let o = run_uni(
        tmp.path(),
        &["run", "--", "--seed=6", "--sectors=16", "--mode=check"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("byte 0 reads"), "{}", text(&o).1);

    // --disk-file names another image; one that is not whole sectors is refused at boot
    let bad = tmp.path().join("bad.img");
    std::fs::write(&bad, vec![0u8; 1000]).unwrap();
    let arg = format!("--disk-file={}", bad.display());
    let o = run_uni(tmp.path(), &["run", "--", &arg]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is 1000 bytes") && err.contains("512-byte sectors"),
        "{err}"
    );

    // on xen-arm the same config opens the first disk of the xl file with blkfront
    let o = run_uni(tmp.path(), &["configure", "--target", "xen-arm"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let main = std::fs::read_to_string(tmp.path().join("_build/xen-arm/src/main.rs")).unwrap();
    assert!(
        main.contains("uni_runtime::platform::Block::open(0).await?"),
        "{main}"
    );
}

/// What `uni configure` checks of boot arguments, without building: the args device's `keys`
/// (type, default, reserved names) at their file:line:col, an app key that a device reads
/// too, and the compiled-in `boot-args` as the runtime would check them at every boot.
#[test]
fn configure_checks_declared_keys_and_boot_args() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |head: &str, keys: &str| {
        std::fs::write(
            tmp.path().join("unikernel.toml"),
            format!(
                "[unikernel]\nschema = 1\nname = \"echo\"\napp = {:?}\n{head}\n[devices.console]\nkind = \"console\"\n[devices.net]\nkind = \"net\"\n[devices.args]\nkind = \"args\"\n{keys}",
                example("echo")
            ),
        )
        .unwrap();
    };
    let configure = || {
        let o = run_uni(tmp.path(), &["configure", "--target", "unix"]);
        (o.status.code(), text(&o).1)
    };

    write(
        "",
        "keys.port = { type = \"prot\" }\nkeys.n = { type = \"port\", default = 70000 }\nkeys.v = { type = \"flag\", default = \"x\" }\nkeys.help = { type = \"flag\" }\n",
    );
    let (code, err) = configure();
    assert_eq!(code, Some(1), "{err}");
    for want in [
        "error: `devices.args.keys.port.type`: unknown boot argument type \"prot\"",
        "--> unikernel.toml:12:22",
        "\"string\", \"integer\", \"port\", \"seconds\", \"flag\", \"path\", \"ipv4\"",
        "error: `devices.args.keys.n.default`: the default of --n is not a port number, 1–65535",
        "--> unikernel.toml:13:37",
        "error: `devices.args.keys.v.default`: a flag takes no default",
        "error: `devices.args.keys.help`: boot argument --help is the runtime's own",
    ] {
        assert!(err.contains(want), "no {want:?} in:\n{err}");
    }

    write("", "keys.ipv4 = { type = \"string\" }\n");
    let (code, err) = configure();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("devices.args.keys declares --ipv4, which devices.net already reads"),
        "{err}"
    );

    write(
        "boot-args = \"--prot=7000\"",
        "keys.port = { type = \"port\", default = 7 }\n",
    );
    let (code, err) = configure();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "error: `unikernel.boot-args`: unknown boot argument --prot: did you mean --port?"
        ),
        "{err}"
    );

    write(
        "boot-args = \"--port=7000 --ipv4=127.0.0.1/8\"",
        "keys.port = { type = \"port\", default = 7 }\n",
    );
    let (code, err) = configure();
    assert_eq!(code, Some(0), "{err}");
}
