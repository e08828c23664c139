//! DNS and UDP over the direct stack on real Xen: examples/lookup on the emulated board
//! (smoltcp over netfront, address by DHCP) asks a real DNS server on the host, reached through
//! the board's TAP device (the host is 10.0.0.254 on the board's LAN). One boot resolves a
//! name the server knows, a literal address, a name it does not know (NXDOMAIN) and a name it
//! never answers (the resolver retries, then times out).

use uni_tests::{example, run_uni, text, DnsServer};

#[test]
fn lookup_on_real_xen_asks_a_dns_server_on_the_host() {
    let server = DnsServer::start(
        "0.0.0.0",
        &["uni.test=192.0.2.7", "other.uni.test=198.51.100.1", "silent.uni.test=drop"],
    );
    let ns = format!("--nameserver=10.0.0.254:{}", server.port);
    let names = "--names=uni.test,other.uni.test,10.1.2.3,missing.uni.test,silent.uni.test";
    let o = run_uni(&example("lookup"), &["run", "--target", "xen-arm", "--timeout", "300", "--", &ns, names]);
    let (out, err) = text(&o);
    eprintln!("--- stdout\n{out}--- stderr\n{err}");

    let lines: Vec<&str> = out.lines().filter(|l| l.contains(".test: ") || l.starts_with("10.1.2.3: ")).collect();
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
    assert!(out.contains("net: 10.0.0.2/24 via 10.0.0.1 (DHCP)"), "the guest got its address by DHCP");
    // two lookups failed: the app returns an error, the domain crashes, `uni run` exits 1
    assert!(out.contains("2 lookup(s) failed"), "the app's error is on the console");
    assert_eq!(o.status.code(), Some(1));
    // the queries really crossed the board's network, and the unanswered one was retried
    assert_eq!(server.queries_for("missing.uni.test"), 1);
    assert_eq!(server.queries_for("silent.uni.test"), 3, "the resolver tries 3 times before giving up");
}
