//! Networking on real Xen: examples/echo on the emulated board, over netfront and the direct
//! stack, reached from the host. One boot with DHCP carries most checks (dom0 ping, 10 MiB,
//! 50 concurrent connections, 2000 malformed frames); a second boot takes a static address from
//! the xl `extra=` boot arguments.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use uni_tests::{echo_roundtrip, example, pattern, root, uni, Background};

const DOM0_PING: &str = "for i in $(seq 60); do ping -c 1 -W 1 $GUEST_IP && exit 0; sleep 1; done; exit 1";

/// A `uni run --target xen-arm` in the background, its console and status lines collected.
struct Board {
    run: Background,
    port: u16,
}

impl Board {
    fn start(dir: &Path, dom0_check: Option<&str>) -> Board {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let fwd = format!("{port}:7000");
        let mut cmd = uni(dir, &["run", "--target", "xen-arm", "-p", &fwd, "--timeout", "600"]);
        if let Some(c) = dom0_check {
            cmd.env("UNI_DOM0_CHECK", c);
        }
        Board { run: Background::spawn(cmd), port }
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

    fn tap(&self) -> String {
        let err = self.err();
        let at = err.find("host 10.0.0.254 on ").expect("the run reports its TAP device") + "host 10.0.0.254 on ".len();
        err[at..].split_whitespace().next().unwrap().to_string()
    }
}

#[test]
fn echo_on_real_xen() {
    // --- Boot 1: DHCP ---
    let mut b = Board::start(&example("echo"), Some(DOM0_PING));
    b.wait_for("echo: listening on 10.0.0.2:7000", false, Duration::from_secs(400));
    let out = b.out();
    assert!(out.contains("net: 10.0.0.2/24 via 10.0.0.1 (DHCP)"), "the guest prints its DHCP address:\n{out}");

    // dom0 pings the guest.
    b.wait_for("Checked", true, Duration::from_secs(120));
    assert!(b.err().contains("in dom0: ok"), "dom0 could not ping the guest:\n{}", b.err());

    // 10 MiB through echo, byte for byte.
    let data = pattern(10 << 20, 1);
    let t0 = Instant::now();
    let back = echo_roundtrip(("127.0.0.1", b.port), &data);
    eprintln!("10 MiB echoed in {:?}", t0.elapsed());
    assert!(back == data, "10 MiB: got {} bytes back, or different ones", back.len());

    // 50 concurrent connections, each echoed correctly.
    let port = b.port;
    let clients: Vec<_> = (0..50u32)
        .map(|i| std::thread::spawn(move || {
            let data = pattern(16 * 1024, 100 + i);
            assert!(echo_roundtrip(("127.0.0.1", port), &data) == data, "connection {i} got other bytes back");
        }))
        .collect();
    for c in clients {
        c.join().unwrap();
    }

    // 2000 malformed or random frames onto the bridge; echo still answers.
    let tap = b.tap();
    let o = std::process::Command::new("python3")
        .arg(root().join("tests/tools/inject-frames.py"))
        .args(["--iface", &tap, "--count", "2000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "inject-frames: {}", String::from_utf8_lossy(&o.stderr));
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(echo_roundtrip(("127.0.0.1", b.port), b"still here\n"), b"still here\n");
    assert!(b.run.child.try_wait().unwrap().is_none(), "the guest died:\n{}", b.err());
    drop(b);

    // --- Boot 2: a static address from the boot arguments (MirageOS's spelling) ---
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
    let mut b = Board::start(tmp.path(), None);
    b.wait_for("echo: listening on 10.0.0.9:7000", false, Duration::from_secs(400));
    assert!(b.out().contains("net: 10.0.0.9/24 via 10.0.0.1 (static)"), "{}", b.out());
    let data = pattern(1 << 20, 7);
    assert!(echo_roundtrip(("127.0.0.1", b.port), &data) == data, "1 MiB over the static address");
}
