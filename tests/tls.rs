//! TLS interop on the unix target: examples/tls-echo, built and run by the real `uni`, against
//! the real OpenSSL (`s_client`, `s_server`), GnuTLS (`gnutls-cli`, `gnutls-serv`) and curl.
//!
//! The PKI is generated here (rcgen, plus openssl for an RSA key): a CA, server certificates
//! for `localhost` and for the SNI name `b.test`, a client certificate, and the bad ones
//! (expired, not yet valid, wrong host, other CA, self-signed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use uni_tests::{example, text, uni};

// ---------------------------------------------------------------------------------------------
// The PKI
// ---------------------------------------------------------------------------------------------

struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

fn leaf(names: &[&str], cn: &str) -> CertificateParams {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("uni-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, s: &str| std::fs::write(dir.join(name), s).unwrap();

        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.distinguished_name.push(DnType::CommonName, "uni test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        write("ca.pem", &ca.pem());
        write("ca.key", &ca_key.serialize_pem());

        let issue = |name: &str, params: CertificateParams| {
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
            write(&format!("{name}.pem"), &cert.pem());
            write(&format!("{name}.key"), &key.serialize_pem());
        };
        issue("server", leaf(&["localhost", "127.0.0.1"], "localhost"));
        issue("b", leaf(&["b.test"], "b.test"));
        issue("client", leaf(&["client.test"], "client"));
        issue("wronghost", leaf(&["elsewhere.test"], "elsewhere.test"));
        let mut expired = leaf(&["localhost"], "expired");
        expired.not_before = rcgen::date_time_ymd(2001, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2002, 1, 1);
        issue("expired", expired);
        let mut notyet = leaf(&["localhost"], "notyet");
        notyet.not_before = rcgen::date_time_ymd(2090, 1, 1);
        notyet.not_after = rcgen::date_time_ymd(2091, 1, 1);
        issue("notyet", notyet);

        // Another CA's certificate, and a self-signed one, both for localhost.
        let other_key = KeyPair::generate().unwrap();
        let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        other_params.distinguished_name.push(DnType::CommonName, "some other CA");
        other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let other = other_params.self_signed(&other_key).unwrap();
        let k = KeyPair::generate().unwrap();
        write("otherca.pem", &leaf(&["localhost"], "localhost").signed_by(&k, &other, &other_key).unwrap().pem());
        write("otherca.key", &k.serialize_pem());
        let k = KeyPair::generate().unwrap();
        write("selfsigned.pem", &leaf(&["localhost"], "localhost").self_signed(&k).unwrap().pem());
        write("selfsigned.key", &k.serialize_pem());

        // RSA (the peer signs with RSA; uni only verifies): openssl, signed by the CA.
        let d = dir.display().to_string();
        sh(&format!(
            "cd {d} && openssl req -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.csr -subj /CN=localhost 2>/dev/null && \
             printf 'subjectAltName=DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > rsa.ext && \
             openssl x509 -req -in rsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile rsa.ext -out rsa.pem 2>/dev/null"
        ));
        Pki { dir }
    })
}

fn sh(cmd: &str) {
    let s = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(s.success(), "{cmd}");
}

// ---------------------------------------------------------------------------------------------
// tls-echo, configured with the test PKI and built once per configuration
// ---------------------------------------------------------------------------------------------

/// A scratch unikernel.toml for examples/tls-echo using the test PKI; `extra` adds tls keys.
/// Each configuration has its own unikernel name, so their programs do not overwrite each
/// other in the shared target directory.
fn unikernel(name: &str, extra: &str) -> PathBuf {
    let p = pki();
    let dir = p.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("unikernel.toml"),
        format!(
            "[unikernel]\nschema = 1\nname = \"tls-echo-{name}\"\napp = {app:?}\n\n\
             [devices.console]\nkind = \"console\"\n[devices.net]\nkind = \"net\"\nstack = \"socket\"\n\
             [devices.tls]\nkind = \"tls\"\nnet = \"net\"\ncert = \"../server.pem\"\nkey = \"../server.key\"\nca = \"../ca.pem\"\n\
             sni = [{{ name = \"b.test\", cert = \"../b.pem\", key = \"../b.key\" }}]\nalpn = [\"http/1.1\"]\n{extra}\n\
             [devices.args]\nkind = \"args\"\n",
            app = example("tls-echo").display().to_string(),
        ),
    )
    .unwrap();
    let o = uni(&dir, &["build", "--target", "unix"]).output().unwrap();
    assert!(o.status.success(), "uni build failed:\n{}", text(&o).1);
    dir
}

fn plain() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| unikernel("plain", ""))
}

fn client_auth() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| unikernel("clientauth", "client-ca = \"../ca.pem\""))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Captures stdout and stderr into one buffer.
    fn spawn(mut c: Command) -> Proc {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        for r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Proc { child, out }
    }

    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let o = self.out.lock().unwrap().clone();
            if o.contains(what) {
                return o;
            }
            assert!(Instant::now() < deadline, "no `{what}` in:\n{o}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }
}

/// tls-echo serving on a free port, via `uni run`.
/// Port 0: the server binds a port of the kernel's choosing and prints it, so parallel tests
/// never race for a "free" port (one found free, then taken before the server binds it).
fn server(dir: &Path) -> (Proc, u16) {
    let p = Proc::spawn(uni(dir, &["run", "--target", "unix", "--", "--port=0"]));
    let out = p.wait_for("tls-echo: listening on 0.0.0.0:");
    let port = printed_port(&out, "tls-echo: listening on ");
    (p, port)
}

/// The port at the end of the line that starts with `prefix` (`ADDRESS:PORT`).
fn printed_port(out: &str, prefix: &str) -> u16 {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port after `{prefix}` in:\n{out}"))
}

/// `openssl s_client` against `port`; sends a line and waits for it to come back.
fn s_client(port: u16, args: &[&str]) -> String {
    let p = pki();
    let mut c = Command::new("openssl");
    c.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-CAfile",
        &p.path("ca.pem"),
        "-verify_return_error",
    ]);
    c.args(args);
    let mut proc = Proc::spawn(c);
    proc.wait_for("Verify return code");
    proc.send(b"ping through tls\n");
    // The echo, after the handshake summary.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = proc.text();
        if o.matches("ping through tls").count() >= 1 && o.contains("Cipher") {
            return o;
        }
        assert!(Instant::now() < deadline, "no echo in:\n{o}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Server role: OpenSSL, GnuTLS and curl clients against tls-echo
// ---------------------------------------------------------------------------------------------

#[test]
fn openssl_client_tls13_each_suite() {
    let (_srv, port) = server(plain());
    for suite in [
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    ] {
        let o = s_client(
            port,
            &[
                "-tls1_3",
                "-ciphersuites",
                suite,
                "-servername",
                "localhost",
            ],
        );
        assert!(
            o.contains(&format!("New, TLSv1.3, Cipher is {suite}")),
            "{suite}:\n{o}"
        );
    }
}

#[test]
fn openssl_client_tls12_each_suite() {
    let (_srv, port) = server(plain());
    for suite in [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ] {
        let o = s_client(port, &["-tls1_2", "-cipher", suite]);
        assert!(
            o.contains(&format!("New, TLSv1.2, Cipher is {suite}")),
            "{suite}:\n{o}"
        );
    }
}

#[test]
fn openssl_client_key_exchange_groups() {
    let (_srv, port) = server(plain());
    for (version, group, shown) in [
        ("-tls1_3", "X25519", "Server Temp Key: X25519"),
        ("-tls1_3", "P-256", "Server Temp Key: ECDH, prime256v1"),
        ("-tls1_3", "P-384", "Server Temp Key: ECDH, secp384r1"),
        // TLS 1.2 ECDSA: OpenSSL also needs the certificate's curve (P-256) among the groups.
        ("-tls1_2", "X25519:P-256", "Server Temp Key: X25519"),
        ("-tls1_2", "P-256", "Server Temp Key: ECDH, prime256v1"),
    ] {
        let o = s_client(port, &[version, "-groups", group]);
        assert!(o.contains(shown), "{version} {group}:\n{o}");
    }
}

#[test]
fn sni_selects_the_certificate() {
    let (_srv, port) = server(plain());
    let o = s_client(port, &["-servername", "b.test"]);
    assert!(o.contains("subject=CN = b.test"), "{o}");
    let o = s_client(port, &["-servername", "localhost"]);
    assert!(o.contains("subject=CN = localhost"), "{o}");
}

#[test]
fn openssl_client_resumes_tls12_and_tls13() {
    let (_srv, port) = server(plain());
    for v in ["-tls1_2", "-tls1_3"] {
        let sess = pki().dir.join(format!("sess{v}-{port}"));
        let sess = sess.display().to_string();
        let first = s_client(port, &[v, "-sess_out", &sess]);
        assert!(first.contains("New, TLS"), "{first}");
        let second = s_client(port, &[v, "-sess_in", &sess]);
        assert!(
            second.contains("Reused, TLS"),
            "{v}: second connection not resumed:\n{second}"
        );
    }
}

#[test]
fn gnutls_client_tls12_tls13_and_resumption() {
    let (_srv, port) = server(plain());
    for prio in [
        "NORMAL:-VERS-ALL:+VERS-TLS1.2",
        "NORMAL:-VERS-ALL:+VERS-TLS1.3",
    ] {
        let mut c = Command::new("gnutls-cli");
        c.args([
            "--x509cafile",
            &pki().path("ca.pem"),
            "-p",
            &port.to_string(),
            "--priority",
            prio,
            "--resume",
            "localhost",
        ]);
        let mut p = Proc::spawn(c);
        p.wait_for("This is a resumed session");
        p.wait_for("- Simple Client Mode");
        p.send(b"gnutls says hi\n");
        // gnutls-cli prints only what it receives: the echo.
        let o = p.wait_for("Simple Client Mode:\n\ngnutls says hi");
        assert!(o.contains("Handshake was completed"), "{o}");
    }
}

#[test]
fn curl_gets_its_data_echoed_over_tls12_and_tls13() {
    let (_srv, port) = server(plain());
    for v in [
        ["--tlsv1.2", "--tls-max", "1.2"],
        ["--tlsv1.3", "--tls-max", "1.3"],
    ] {
        let o = Command::new("curl")
            .args([
                "-sS",
                "--cacert",
                &pki().path("ca.pem"),
                "--resolve",
                &format!("localhost:{port}:127.0.0.1"),
                "-w",
                "\n%{ssl_verify_result}",
            ])
            .args(v)
            .args([
                "--data-binary",
                "curl payload",
                &format!("https://localhost:{port}/echo"),
            ])
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "{v:?}: {err}");
        assert_eq!(out, "curl payload\n0", "{v:?}");
    }
}

#[test]
fn client_certificates_are_required_when_configured() {
    let (_srv, port) = server(client_auth());
    let o = s_client(
        port,
        &[
            "-cert",
            &pki().path("client.pem"),
            "-key",
            &pki().path("client.key"),
        ],
    );
    assert!(o.contains("New, TLSv1.3"), "{o}");
    // Without a certificate the server refuses the handshake.
    let mut c = Command::new("openssl");
    c.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-CAfile",
        &pki().path("ca.pem"),
    ]);
    let mut p = Proc::spawn(c);
    p.send(b"no cert\n");
    let o = p.wait_for("alert");
    assert!(
        o.contains("certificate required") || o.contains("alert number 116"),
        "{o}"
    );
    assert!(!o.contains("no cert\nno cert"), "{o}");
}

// ---------------------------------------------------------------------------------------------
// Refused handshakes: the alert on the wire, as `openssl s_client -msg` decodes it
// ---------------------------------------------------------------------------------------------

/// `openssl s_client -msg` with `args` against `port`, stdin closed; its whole output once it
/// exits (it does, on a refused handshake).
fn s_client_msg(port: u16, args: &[&str]) -> String {
    let o = Command::new("timeout")
        // -ign_eof: a TLS 1.3 client is done after its Finished, and would otherwise close
        // at once on the empty stdin, before the server's verdict on its certificate.
        .args(["20", "openssl", "s_client", "-msg", "-ign_eof", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-CAfile", &pki().path("ca.pem")])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    format!("{out}{err}")
}

/// The alert record, as `-msg` prints a received one: `<<< TLS 1.3, Alert [length 0002],
/// fatal handshake_failure` and its bytes, `02 28` (fatal, 40). OpenSSL 3.0 names some
/// alerts `???` (no_application_protocol), so the bytes decide. In TLS 1.3 the alert after
/// ServerHello is encrypted with the handshake keys; s_client prints it decrypted.
fn assert_alert(out: &str, version: &str, name: &str) {
    let code: u8 = match name {
        "handshake_failure" => 40,
        "bad_certificate" => 42,
        "certificate_expired" => 45,
        "access_denied" => 49,
        "unknown_ca" => 48,
        "decrypt_error" => 51,
        "protocol_version" => 70,
        "certificate_required" => 116,
        "no_application_protocol" => 120,
        _ => panic!("add {name}'s number"),
    };
    let head = format!("<<< {version}, Alert [length 0002], fatal");
    let bytes = format!("02 {code:02x}");
    let mut lines = out.lines();
    while let Some(l) = lines.next() {
        if l.starts_with(&head) && lines.next().map(str::trim) == Some(bytes.as_str()) {
            return;
        }
    }
    panic!("no fatal {name} alert ({head} / {bytes}) in:\n{out}");
}

#[test]
fn refused_handshakes_send_their_alert() {
    let (_srv, port) = server(plain());
    for (v, shown) in [("-tls1_3", "TLS 1.3"), ("-tls1_2", "TLS 1.2")] {
        // No ALPN overlap (tls-echo speaks http/1.1): after ServerHello in TLS 1.3.
        let o = s_client_msg(port, &[v, "-alpn", "h2"]);
        assert_alert(&o, shown, "no_application_protocol");
        // No signature scheme for the ECDSA P-256 certificate: after ServerHello in TLS 1.3.
        let o = s_client_msg(port, &[v, "-sigalgs", "rsa_pss_rsae_sha256:RSA+SHA256"]);
        assert_alert(&o, shown, "handshake_failure");
    }
    // No common key-exchange group.
    let o = s_client_msg(port, &["-tls1_3", "-groups", "ffdhe2048"]);
    assert_alert(&o, "TLS 1.3", "handshake_failure");
    // No common cipher suite (uni offers only AEAD suites with forward secrecy).
    let o = s_client_msg(port, &["-tls1_2", "-cipher", "AES128-SHA"]);
    assert_alert(&o, "TLS 1.2", "handshake_failure");
    // Garbage instead of a ClientHello is answered with an alert too.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = vec![];
    let _ = c.read_to_end(&mut got);
    assert_eq!(got.first(), Some(&0x15), "an alert record: {got:?}");
}

// ---------------------------------------------------------------------------------------------
// A narrow choice: `versions`, `cipher-suites`, `kx-groups`, `signature-schemes`
// ---------------------------------------------------------------------------------------------

/// What examples/static-website offers: TLS 1.3, AES-128-GCM and ChaCha20, X25519, P-256.
const NARROW: &str = "versions = [\"TLSv1_3\"]\n\
    cipher-suites = [\"TLS13_AES_128_GCM_SHA256\", \"TLS13_CHACHA20_POLY1305_SHA256\"]\n\
    kx-groups = [\"X25519\"]\nsignature-schemes = [\"ECDSA_NISTP256_SHA256\"]";

fn narrow() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| unikernel("narrow", NARROW))
}

#[test]
fn narrow_config_links_only_its_choice() {
    let dir = narrow();
    // The generated crate turns uni-tls's default features off and names none: no TLS 1.2,
    // RSA, P-384, Ed25519 or client-certificate code is compiled.
    let cargo = std::fs::read_to_string(dir.join("_build/unix/Cargo.toml")).unwrap();
    assert!(
        cargo.contains("uni-tls = { path = ") && cargo.contains(", default-features = false }"),
        "{cargo}"
    );
    let main = std::fs::read_to_string(dir.join("_build/unix/src/main.rs")).unwrap();
    for named in [
        "versions: &[&uni_tls::rustls::version::TLS13]",
        "uni_tls::uni_crypto::suites::TLS13_CHACHA20_POLY1305_SHA256",
        "kx_groups: &[uni_tls::uni_crypto::kx::x25519]",
        "signature_schemes: &[uni_tls::uni_crypto::schemes::ECDSA_NISTP256_SHA256]",
    ] {
        assert!(main.contains(named), "no {named:?} in:\n{main}");
    }
    // And the program has none of their symbols (the plain build, with every feature, has).
    let symbols = |d: &Path, name: &str| {
        let o = Command::new("nm")
            .args(["-C", &d.join("dist").join(name).display().to_string()])
            .output()
            .unwrap();
        assert!(o.status.success(), "nm: {}", text(&o).1);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let left_out = [
        "num_bigint_dig::",
        "rustls::server::tls12::",
        "p384::",
        "ed25519_dalek::",
        "ExplainedClientVerifier",
    ];
    let plain = symbols(plain(), "tls-echo-plain");
    let narrow = symbols(dir, "tls-echo-narrow");
    for s in left_out {
        assert!(plain.contains(s), "the plain build has no {s} symbol");
        assert!(!narrow.contains(s), "the narrow build links {s}");
    }
}

#[test]
fn narrow_config_serves_its_choice_and_refuses_the_rest() {
    let (_srv, port) = server(narrow());
    for suite in ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"] {
        let o = s_client(port, &["-tls1_3", "-ciphersuites", suite]);
        assert!(
            o.contains(&format!("New, TLSv1.3, Cipher is {suite}")),
            "{suite}:\n{o}"
        );
    }
    let mut c = Command::new("gnutls-cli");
    c.args([
        "--x509cafile",
        &pki().path("ca.pem"),
        "-p",
        &port.to_string(),
    ])
    .args(["--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3", "localhost"]);
    let mut p = Proc::spawn(c);
    p.wait_for("- Simple Client Mode");
    p.send(b"gnutls says hi\n");
    let o = p.wait_for("Simple Client Mode:\n\ngnutls says hi");
    assert!(o.contains("(TLS1.3-"), "{o}");
    // What it left out: a suite, a group, the other version.
    let o = s_client_msg(
        port,
        &["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"],
    );
    assert_alert(&o, "TLS 1.3", "handshake_failure");
    let o = s_client_msg(port, &["-tls1_3", "-groups", "P-256:P-384"]);
    assert_alert(&o, "TLS 1.3", "handshake_failure");
    let o = s_client_msg(port, &["-tls1_2"]);
    assert_alert(&o, "TLS 1.2", "protocol_version");
}

/// `uni configure` on tls-echo with `extra` tls keys must fail at `at` (`unikernel.toml:L:C`)
/// saying `wrong` and `accepted`.
fn refused(name: &str, extra: &str, at: &str, wrong: &str, accepted: &str) {
    let p = pki();
    let dir = p.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("unikernel.toml"),
        format!(
            "[unikernel]\nschema = 1\nname = \"tls-echo-{name}\"\napp = {app:?}\n\
             [devices.console]\nkind = \"console\"\n[devices.net]\nkind = \"net\"\n\
             [devices.tls]\nkind = \"tls\"\nnet = \"net\"\ncert = \"../server.pem\"\nkey = \"../server.key\"\n{extra}\n\
             [devices.args]\nkind = \"args\"\n",
            app = example("tls-echo").display().to_string(),
        ),
    )
    .unwrap();
    let o = uni(&dir, &["configure"]).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{name}:\n{err}");
    for want in [&format!("--> {at}"), wrong, accepted] {
        assert!(err.contains(want), "{name}: no {want:?} in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unsatisfiable_choices_are_config_errors_at_the_entry() {
    // Line 12 is the tls table's `cert`; `extra` starts on line 14.
    refused(
        "unknown",
        "kx-groups = [\"X25519\", \"P-256\"]",
        "unikernel.toml:14:24",
        "unknown value \"P-256\"",
        "\"X25519\", \"secp256r1\", \"secp384r1\"",
    );
    refused(
        "p256-only-ed25519",
        "signature-schemes = [\"ED25519\"]",
        "unikernel.toml:12:8",
        "the certificate has an ECDSA P-256 key, which none of the configured `signature-schemes` can sign with",
        "add \"ECDSA_NISTP256_SHA256\" to `signature-schemes`",
    );
    refused(
        "tls12-suite-no-version",
        "versions = [\"TLSv1_3\"]\ncipher-suites = [\"TLS13_AES_128_GCM_SHA256\", \"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\"]",
        "unikernel.toml:15:46",
        "\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\" is a TLS 1.2 suite, but `versions` does not name \"TLSv1_2\"",
        "add \"TLSv1_2\" to `versions`",
    );
    refused(
        "rsa-ca",
        "ca = \"../rsa.pem\"\nsignature-schemes = [\"ECDSA_NISTP256_SHA256\"]",
        "unikernel.toml:14:6",
        "a certificate in \"../rsa.pem\" has an RSA key, which none of the configured `signature-schemes` can verify",
        "\"RSA_PSS_SHA256\"",
    );
}

#[test]
fn tls12_client_offering_only_x25519_gets_handshake_failure_not_a_p256_certificate() {
    // tls-echo's only certificate is ECDSA P-256: a TLS 1.2 client whose groups lack P-256
    // cannot use it (RFC 8422 5.1), so the server refuses instead of sending it.
    let (_srv, port) = server(plain());
    let o = s_client_msg(port, &["-tls1_2", "-groups", "X25519"]);
    assert_alert(&o, "TLS 1.2", "handshake_failure");
    assert!(
        !o.contains("Certificate [length"),
        "a certificate was sent:\n{o}"
    );
    // TLS 1.3 binds the curve by the signature scheme: served.
    let o = s_client(port, &["-tls1_3", "-groups", "X25519"]);
    assert!(o.contains("New, TLSv1.3"), "{o}");
}

#[test]
fn refused_client_certificates_send_their_alert() {
    let (_srv, port) = server(client_auth());
    for (v, shown) in [("-tls1_3", "TLS 1.3"), ("-tls1_2", "TLS 1.2")] {
        // A certificate from another CA.
        let o = s_client_msg(
            port,
            &[
                v,
                "-cert",
                &pki().path("otherca.pem"),
                "-key",
                &pki().path("otherca.key"),
            ],
        );
        assert_alert(&o, shown, "unknown_ca");
        // No certificate at all: rustls says certificate_required in both versions.
        let o = s_client_msg(port, &[v]);
        assert_alert(&o, shown, "certificate_required");
    }
}

// ---------------------------------------------------------------------------------------------
// Client role: tls-echo's client mode against OpenSSL and GnuTLS servers
// ---------------------------------------------------------------------------------------------

/// `openssl s_server -rev` (replies with each line reversed) with `cert`/`key` from the PKI.
fn s_server(cert: &str, extra: &[&str]) -> (Proc, u16) {
    let p = pki();
    let mut c = Command::new("openssl");
    c.args([
        "s_server",
        // Port 0, as for `server`: s_server prints the one it bound (`ACCEPT [::]:PORT`).
        "-accept",
        "0",
        "-cert",
        &p.path(&format!("{cert}.pem")),
        "-key",
        &p.path(&format!("{cert}.key")),
        "-rev",
    ]);
    c.args(extra);
    let srv = Proc::spawn(c);
    let out = srv.wait_for("ACCEPT");
    let port = printed_port(&out, "ACCEPT ");
    (srv, port)
}

/// Runs tls-echo's client mode; returns (success, console output + stderr).
fn connect(port: u16, extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        "run".to_string(),
        "--target".into(),
        "unix".into(),
        "--".into(),
        format!("--connect=127.0.0.1:{port}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o: Output = uni(plain(), &args).output().unwrap();
    let (out, err) = text(&o);
    (o.status.success(), format!("{out}{err}"))
}

#[test]
fn client_against_openssl_tls12_and_tls13_resumes() {
    for v in ["-tls1_2", "-tls1_3"] {
        let (_srv, port) = s_server("server", &[v]);
        let (ok, out) = connect(
            port,
            &["--host=localhost", "--connections=2", "--message=hello"],
        );
        assert!(ok, "{v}: {out}");
        assert!(out.contains("reply: olleh"), "{v}: {out}");
        let version = if v == "-tls1_2" { "TLSv1_2" } else { "TLSv1_3" };
        assert!(
            out.contains(&format!("connection 0: {version}")) && out.contains("resumed=false"),
            "{v}: {out}"
        );
        assert!(
            out.contains(&format!("connection 1: {version}")) && out.contains("resumed=true"),
            "{v}: second connection not resumed: {out}"
        );
    }
}

#[test]
fn client_against_openssl_each_suite_and_group() {
    for (args, shown) in [
        (
            vec!["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
            "TLS13_AES_128_GCM_SHA256",
        ),
        (
            vec!["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"],
            "TLS13_AES_256_GCM_SHA384",
        ),
        (
            vec!["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
            "TLS13_CHACHA20_POLY1305_SHA256",
        ),
        (
            vec!["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ),
        (
            vec!["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
        (
            vec!["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"],
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
        (vec!["-groups", "P-256"], "secp256r1"),
        (vec!["-groups", "X25519"], "X25519"),
    ] {
        let (_srv, port) = s_server("server", &args);
        let (ok, out) = connect(port, &["--host=localhost"]);
        assert!(
            ok && out.contains(shown) && out.contains("reply: "),
            "{args:?}: {out}"
        );
    }
}

#[test]
fn client_verifies_rsa_servers() {
    for (v, shown) in [("-tls1_2", "TLS_ECDHE_RSA_WITH_"), ("-tls1_3", "TLSv1_3")] {
        let (_srv, port) = s_server("rsa", &[v]);
        let (ok, out) = connect(port, &["--host=localhost"]);
        assert!(ok && out.contains(shown), "{v}: {out}");
    }
}

#[test]
fn client_presents_its_certificate() {
    let (_srv, port) = s_server(
        "server",
        &["-Verify", "1", "-CAfile", &pki().path("ca.pem")],
    );
    let (ok, out) = connect(port, &["--host=localhost"]);
    assert!(ok && out.contains("reply: "), "{out}");
}

#[test]
fn client_against_gnutls_serv() {
    let port = free_port();
    let p = pki();
    let mut c = Command::new("gnutls-serv");
    c.args([
        "--echo",
        "-p",
        &port.to_string(),
        "--x509certfile",
        &p.path("server.pem"),
        "--x509keyfile",
        &p.path("server.key"),
    ]);
    let srv = Proc::spawn(c);
    srv.wait_for("listening");
    let (ok, out) = connect(
        port,
        &[
            "--host=localhost",
            "--connections=2",
            "--message=via gnutls",
        ],
    );
    assert!(ok && out.contains("reply: via gnutls"), "{out}");
    assert!(out.contains("resumed=true"), "{out}");
}

/// tls-echo's client refuses `cert`'s server with `error`, and tells the server why with a
/// fatal `alert` (TLS 1.3: encrypted with the handshake keys; s_server -msg decrypts it).
fn rejected(cert: &str, extra: &[&str], error: &str, alert: &str) {
    let (srv, port) = s_server(cert, &["-msg"]);
    let mut args = vec!["--host=localhost"];
    args.extend(extra);
    let (ok, out) = connect(port, &args);
    assert!(!ok, "connected to a server with {cert}: {out}");
    assert!(out.contains(error), "{cert}: expected `{error}` in:\n{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !srv.text().contains("<<< TLS 1.3, Alert") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_alert(&srv.text(), "TLS 1.3", alert);
}

#[test]
fn bad_cert_expired() {
    rejected(
        "expired",
        &[],
        "certificate expired: leaf \"CN=expired\"",
        "certificate_expired",
    );
}

#[test]
fn bad_cert_not_yet_valid() {
    rejected(
        "notyet",
        &[],
        "certificate not yet valid: leaf \"CN=notyet\"",
        "certificate_expired",
    );
}

#[test]
fn bad_cert_wrong_hostname() {
    rejected(
        "wronghost",
        &[],
        "certificate is not valid for this host name: leaf \"CN=elsewhere.test\"",
        "bad_certificate",
    );
}

#[test]
fn bad_cert_unknown_ca() {
    rejected(
        "otherca",
        &[],
        "certificate issuer is unknown (not signed by a trusted CA): leaf \"CN=localhost\"",
        "unknown_ca",
    );
}

#[test]
fn bad_cert_self_signed() {
    rejected(
        "selfsigned",
        &[],
        "certificate issuer is unknown (not signed by a trusted CA): leaf \"CN=localhost\"",
        "unknown_ca",
    );
}

#[test]
fn bad_cert_pin_mismatch() {
    // The pin of another certificate: rejected, although the chain is fine.
    let other = fingerprint("b.pem");
    rejected(
        "server",
        &[&format!("--pin={other}")],
        "certificate fingerprint does not match the pinned fingerprints: leaf \"CN=localhost\"",
        "access_denied",
    );
    // The right pin is accepted.
    let (_srv, port) = s_server("server", &[]);
    let (ok, out) = connect(
        port,
        &[
            "--host=localhost",
            &format!("--pin={}", fingerprint("server.pem")),
        ],
    );
    assert!(ok, "{out}");
}

/// `openssl x509 -fingerprint -sha256`, as hex with colons.
fn fingerprint(cert: &str) -> String {
    let o = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            &pki().path(cert),
        ])
        .output()
        .unwrap();
    let s = String::from_utf8(o.stdout).unwrap();
    s.trim().rsplit('=').next().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Configuration: pins
// ---------------------------------------------------------------------------------------------

/// `uni configure` on a tls device with `pins`; (exit code, stderr).
fn configure_pins(pins: &str) -> (Option<i32>, String) {
    let dir = pki().dir.join(format!(
        "pins-{:x}",
        pins.len() * 7919 + pins.bytes().map(usize::from).sum::<usize>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("unikernel.toml"),
        format!(
            "[unikernel]\nschema = 1\nname = \"pins\"\napp = {app:?}\n\n\
             [devices.console]\nkind = \"console\"\n[devices.net]\nkind = \"net\"\n\
             [devices.tls]\nkind = \"tls\"\nnet = \"net\"\npins = {pins}\n\
             [devices.args]\nkind = \"args\"\n",
            app = example("tls-echo").display().to_string(),
        ),
    )
    .unwrap();
    let o = uni(&dir, &["configure", "--target", "unix", "--dry-run"])
        .output()
        .unwrap();
    (o.status.code(), text(&o).1)
}

#[test]
fn pins_of_the_wrong_length_are_refused_at_configure() {
    let good = "AB:".repeat(31) + "AB";
    // 20 bytes (a SHA-1 fingerprint): refused at the pin, with the expected form.
    let short = "AB:".repeat(19) + "AB";
    let (code, err) = configure_pins(&format!("[\"{good}\", \"{short}\"]"));
    assert_eq!(code, Some(1), "{err}");
    // Line 13, at the second pin.
    assert!(err.contains("--> unikernel.toml:13:108"), "{err}");
    assert!(err.contains("`devices.tls.pins`"), "{err}");
    assert!(err.contains(&format!("invalid pin \"{short}\"")), "{err}");
    assert!(
        err.contains("40 hex digits (20 bytes), not 64 (32 bytes)"),
        "{err}"
    );
    assert!(
        err.contains("the SHA-256 fingerprint of the server's certificate: 64 hex digits"),
        "{err}"
    );
    let (code, err) = configure_pins("[\"not a fingerprint\"]");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not hexadecimal"), "{err}");
    // A good pin alone is a complete client configuration.
    let (code, err) = configure_pins(&format!("[\"{good}\"]"));
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn configured_pins_are_what_the_client_trusts() {
    // tls-echo's client uses the device's pins when it has some (over its `ca`): pinning
    // b.test's certificate, it refuses the localhost server although the CA signed it.
    let dir = unikernel("pinned", &format!("pins = [\"{}\"]", fingerprint("b.pem")));
    let (_srv, port) = s_server("server", &[]);
    let o = uni(
        &dir,
        &[
            "run",
            "--target",
            "unix",
            "--",
            &format!("--connect=127.0.0.1:{port}"),
            "--host=localhost",
        ],
    )
    .output()
    .unwrap();
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}{err}");
    assert!(
        format!("{out}{err}").contains(
            "certificate fingerprint does not match the pinned fingerprints: leaf \"CN=localhost\""
        ),
        "{out}{err}"
    );
}
