//! TLS on real Xen: examples/tls-echo on the emulated board (smoltcp over netfront, DHCP,
//! Fortuna over the Xen entropy source), reached from the host through `uni run -p`, with the
//! real `openssl s_client` (TLS 1.3 and TLS 1.2) and curl. One boot carries every check; it
//! passes `--uni-boot-info --uni-seed=…` so that the entropy calibration and seed show up.
//!
//! The PKI is generated here the way tests/tls.rs does it (rcgen): a CA and a certificate for
//! `localhost` and `127.0.0.1`.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use uni_tests::{example, full_boards, uni_on, Background};

/// A CA and a server certificate for localhost/127.0.0.1 in `dir`.
fn pki(dir: &Path) {
    let write = |name: &str, s: &str| std::fs::write(dir.join(name), s).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "uni test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    write("ca.pem", &ca.pem());
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca, &ca_key).unwrap();
    write("server.pem", &cert.pem());
    write("server.key", &key.serialize_pem());
}

/// `openssl s_client -<version>` through the forwarded port: sends a line, waits for it to come
/// back, and returns the client's output.
fn s_client(port: u16, ca: &str, version: &str, line: &str) -> String {
    let mut c = Command::new("openssl");
    c.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-servername",
        "localhost",
        "-CAfile",
        ca,
        "-verify_return_error",
        version,
    ]);
    let mut p = Background::spawn(c);
    p.wait_for("Verify return code", false, Duration::from_secs(120));
    let stdin = p.child.stdin.as_mut().unwrap();
    stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
    let t0 = Instant::now();
    loop {
        let o = p.out();
        // The line comes back after the handshake summary.
        if o.split_once("Verify return code")
            .is_some_and(|(_, rest)| rest.contains(line))
        {
            return o;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no echo of {line:?}:\n{o}\n{}",
            p.err()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn tls_echo_on_real_xen_with_openssl_and_curl() {
    for board in full_boards() {
        let board = board.as_str();
        eprintln!("=== {board}");
        let tmp = tempfile::tempdir().unwrap();
        let dir: PathBuf = tmp.path().to_path_buf();
        pki(&dir);
        std::fs::write(
            dir.join("unikernel.toml"),
            format!(
                "[unikernel]\nschema = 1\nname = \"tls-echo-xen\"\napp = {app:?}\nboot-args = \"--port=4433\"\n\n\
                 [devices.console]\nkind = \"console\"\n\n[devices.net]\nkind = \"net\"\n\n\
                 [devices.tls]\nkind = \"tls\"\nnet = \"net\"\ncert = \"server.pem\"\nkey = \"server.key\"\nca = \"ca.pem\"\nalpn = [\"http/1.1\"]\n\n\
                 [devices.args]\nkind = \"args\"\n\n\
                 [xen]\nextra = \"--uni-boot-info --uni-seed=00112233445566778899aabbccddeeff\"\n",
                app = example("tls-echo").display().to_string(),
            ),
        )
        .unwrap();
        let ca = dir.join("ca.pem").display().to_string();

        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let fwd = format!("{port}:4433");
        let mut b = Background::spawn(uni_on(
            board,
            &dir,
            &["run", "--target", "xen-arm", "-p", &fwd, "--timeout", "900"],
        ));
        b.wait_for(
            "tls-echo: listening on 10.0.0.2:4433",
            false,
            Duration::from_secs(700),
        );
        assert!(
            b.out().contains("net: 10.0.0.2/24 via 10.0.0.1 (DHCP)"),
            "{}",
            b.out()
        );
        uni_tests::assert_lan_is_sealed();
        // The tls device seeded Fortuna from the Xen source at boot: it calibrated the counter
        // jitter and mixed in the seed from the boot arguments.
        let out = b.out();
        let cal = out
            .lines()
            .find(|l| l.starts_with("entropy: counter jitter: "))
            .unwrap_or_else(|| panic!("no calibration line:\n{out}"));
        eprintln!("{cal}");
        assert!(
            out.contains("entropy: 16 bytes of boot seed mixed in"),
            "{out}"
        );

        // openssl s_client, TLS 1.3: handshake verified against the CA, data echoed.
        let o = s_client(port, &ca, "-tls1_3", "ping through tls 1.3 on xen");
        assert!(
            o.contains("Protocol  : TLSv1.3") || o.contains("New, TLSv1.3"),
            "{o}"
        );
        assert!(o.contains("Verify return code: 0 (ok)"), "{o}");
        eprintln!(
            "s_client -tls1_3: {}",
            o.lines().find(|l| l.contains("Cipher is")).unwrap_or("")
        );

        // openssl s_client, TLS 1.2.
        let o = s_client(port, &ca, "-tls1_2", "ping through tls 1.2 on xen");
        assert!(o.contains("Protocol  : TLSv1.2"), "{o}");
        assert!(o.contains("Verify return code: 0 (ok)"), "{o}");
        eprintln!(
            "s_client -tls1_2: {}",
            o.lines().find(|l| l.contains("Cipher is")).unwrap_or("")
        );

        // curl over TLS 1.3 and TLS 1.2: the request body comes back as the response body.
        for (flag, v) in [("--tlsv1.3", "1.3"), ("--tls-max", "1.2")] {
            let mut c = Command::new("curl");
            c.args([
                "-sS",
                "--max-time",
                "120",
                "--cacert",
                &ca,
                "--resolve",
                &format!("localhost:{port}:127.0.0.1"),
            ]);
            if flag == "--tls-max" {
                c.args(["--tls-max", "1.2"]);
            } else {
                c.arg(flag);
            }
            let body = format!("curl payload over TLS {v} on xen");
            let o = c
                .args([
                    "-w",
                    "\n%{ssl_verify_result}",
                    "--data-binary",
                    &body,
                    &format!("https://localhost:{port}/echo"),
                ])
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "curl TLS {v}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&o.stdout),
                format!("{body}\n0"),
                "curl TLS {v}"
            );
        }

        // The guest's view: both versions negotiated, every connection echoed, and still running.
        let t0 = Instant::now();
        while b.out().matches("bytes echoed").count() < 4 && t0.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        let out = b.out();
        eprintln!("--- guest console\n{out}");
        assert!(out.contains(": TLSv1_3 "), "{out}");
        assert!(out.contains(": TLSv1_2 "), "{out}");
        assert!(out.matches("bytes echoed").count() >= 4, "{out}");
        assert!(
            b.child.try_wait().unwrap().is_none(),
            "the guest died:\n{}",
            b.err()
        );
    }
}
