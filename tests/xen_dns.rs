//! DNS and UDP over the direct stack on real Xen: examples/lookup on the emulated board
//! (smoltcp over netfront, address by DHCP) asks a real DNS server that runs inside the board's
//! own network namespace (`uni lan`), on the host's end of the board's LAN, 10.0.0.254. One boot
//! resolves a name the server knows, a literal address, a name it does not know (NXDOMAIN) and a
//! name it never answers (the resolver retries, then times out).

use std::time::{Duration, Instant};

use uni_tests::{assert_lan_is_sealed, example, full_boards, uni_on, Background, DnsServer};

#[test]
fn lookup_on_real_xen_asks_a_dns_server_on_the_boards_lan() {
    for board in full_boards() {
        let board = board.as_str();
        eprintln!("=== {board}");
        // any port is free in the board's fresh namespace, whose root the server runs as
        let ns = "--nameserver=10.0.0.254:53";
        let names = "--names=uni.test,other.uni.test,10.1.2.3,missing.uni.test,silent.uni.test";
        let mut run = Background::spawn(uni_on(
            board,
            &example("lookup"),
            &[
                "run",
                "--target",
                "xen-arm",
                "--timeout",
                "300",
                "--",
                ns,
                names,
            ],
        ));
        // The LAN exists from this line on, before QEMU starts; the guest asks seconds later.
        run.wait_for("Network", true, Duration::from_secs(600));
        let server = DnsServer::start_in_lan(
            run.child.id(),
            53,
            &[
                "uni.test=192.0.2.7",
                "other.uni.test=198.51.100.1",
                "silent.uni.test=drop",
            ],
        );
        assert!(
            !run.err().contains("Started"),
            "the guest started before the DNS server was up:\n{}",
            run.err()
        );
        assert_lan_is_sealed();
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = run.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(400),
                "the run did not end:\n{}\n{}",
                run.out(),
                run.err()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        std::thread::sleep(Duration::from_millis(300)); // the last of its output
        let (out, err) = (run.out(), run.err());
        eprintln!("--- stdout\n{out}--- stderr\n{err}");

        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.contains(".test: ") || l.starts_with("10.1.2.3: "))
            .collect();
        assert_eq!(
            lines,
            [
                "uni.test: 192.0.2.7",
                "other.uni.test: 198.51.100.1",
                "10.1.2.3: 10.1.2.3",
                "missing.uni.test: dns: missing.uni.test: no such name (or no IPv4 address)",
                "silent.uni.test: dns: the nameserver did not answer",
            ],
            "the guest's answers, in order"
        );
        assert!(
            out.contains("net: 10.0.0.2/24 via 10.0.0.1 (DHCP)"),
            "the guest got its address by DHCP"
        );
        // two lookups failed: the app returns an error, the domain crashes, `uni run` exits 1
        assert!(
            out.contains("2 lookup(s) failed"),
            "the app's error is on the console"
        );
        assert_eq!(status.code(), Some(1));
        // the queries really crossed the board's network, and the unanswered one was retried
        assert_eq!(server.queries_for("missing.uni.test"), 1);
        assert_eq!(
            server.queries_for("silent.uni.test"),
            3,
            "the resolver tries 3 times before giving up"
        );
        // the namespace went with the run: the server, still inside it, is its last process
        assert_lan_is_sealed();
    }
}
