//! The X.509 table: one chain per cause of rejection, generated with the `openssl` CLI at test
//! time, presented by a uni server to a uni client in memory; the client's error text is
//! asserted exactly: the cause, and the certificate (its place in the chain and subject).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use pki_types::CertificateDer;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use uni_crypto::Rng;
use uni_tls::auth::{self, FingerprintHash};
use uni_tls::config::FixedTime;
use uni_tls::{ClientOptions, Identity, ServerOptions, Session, Status, TlsError};

fn rng() -> &'static Rng {
    static RNG: OnceLock<&'static Rng> = OnceLock::new();
    RNG.get_or_init(|| {
        Rng::from_device(
            uni_runtime::platform::Random::new(),
            uni_runtime::platform::Clock::new(),
        )
        .unwrap()
        .leak()
    })
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(uni_crypto::provider(rng())))
        .clone()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

const DAY: u64 = 86_400;

struct Pki {
    dir: PathBuf,
}

fn run(dir: &Path, cmd: &str) {
    let o = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .expect("sh");
    assert!(
        o.status.success(),
        "{cmd}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Pki {
    fn key(&self, name: &str, kind: &str) {
        let opts = match kind {
            "ec" => "-algorithm EC -pkeyopt ec_paramgen_curve:P-256",
            "rsa1024" => "-algorithm RSA -pkeyopt rsa_keygen_bits:1024",
            "rsa2048" => "-algorithm RSA -pkeyopt rsa_keygen_bits:2048",
            _ => unreachable!(),
        };
        run(
            &self.dir,
            &format!("openssl genpkey {opts} -out {name}.key"),
        );
    }

    /// `name.pem` for `name.key` with `subject` and extensions `ext`, signed by `issuer`'s key
    /// (itself when `None`), valid from now for `days`, digest `md`.
    fn cert(
        &self,
        name: &str,
        subject: &str,
        issuer: Option<&str>,
        ext: &str,
        days: u32,
        md: &str,
    ) {
        std::fs::write(self.dir.join(format!("{name}.ext")), ext.replace('|', "\n")).unwrap();
        run(
            &self.dir,
            &format!("openssl req -new -key {name}.key -subj '/CN={subject}' -out {name}.csr"),
        );
        let sign = match issuer {
            None => format!("-signkey {name}.key"),
            Some(i) => format!(
                "-CA {i}.pem -CAkey {i}.key -set_serial 0x{:x}",
                rand_serial()
            ),
        };
        run(
            &self.dir,
            &format!(
                "openssl x509 -req -in {name}.csr {sign} -days {days} -{md} -extfile {name}.ext -out {name}.pem"
            ),
        );
    }

    fn ders(&self, names: &[&str]) -> Vec<CertificateDer<'static>> {
        names
            .iter()
            .flat_map(|n| {
                uni_crypto::pem::certificates(
                    &std::fs::read(self.dir.join(format!("{n}.pem"))).unwrap(),
                )
                .unwrap()
            })
            .collect()
    }

    fn identity(&self, chain: &[&str], key: &str) -> Identity {
        Identity {
            chain: self.ders(chain),
            key: uni_crypto::pem::private_key(
                &std::fs::read(self.dir.join(format!("{key}.key"))).unwrap(),
            )
            .unwrap(),
        }
    }
}

fn rand_serial() -> u64 {
    let mut b = [0u8; 8];
    rng().try_fill(&mut b).unwrap();
    u64::from_le_bytes(b) >> 1
}

/// Extensions, one per line, lines separated by `|`.
const CA: &str = "basicConstraints=critical,CA:TRUE|keyUsage=critical,keyCertSign,cRLSign";
const LEAF: &str = "subjectAltName=DNS:localhost|extendedKeyUsage=serverAuth";

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("uni-x509-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = Pki { dir };
        for (name, kind) in [
            ("root", "ec"),
            ("other", "ec"),
            ("int", "ec"),
            ("short", "ec"),
            ("notca", "ec"),
            ("nobc", "ec"),
            ("pathlen0", "ec"),
            ("below", "ec"),
            ("constrained", "ec"),
            ("rsaint", "rsa2048"),
            ("leaf", "ec"),
            ("weak", "rsa1024"),
        ] {
            p.key(name, kind);
        }
        p.cert("root", "Test Root", None, CA, 3650, "sha256");
        p.cert("other", "Other Root", None, CA, 3650, "sha256");
        p.cert("int", "Test Intermediate", Some("root"), CA, 3650, "sha256");
        p.cert("short", "Short Intermediate", Some("root"), CA, 1, "sha256");
        p.cert("notca", "Not A CA", Some("root"), "basicConstraints=critical,CA:FALSE", 3650, "sha256");
        p.cert("nobc", "No Basic Constraints", Some("root"), "keyUsage=critical,keyCertSign", 3650, "sha256");
        let pathlen0 = "basicConstraints=critical,CA:TRUE,pathlen:0|keyUsage=critical,keyCertSign";
        p.cert("pathlen0", "Path Length Zero", Some("root"), pathlen0, 3650, "sha256");
        p.cert("below", "Below Path Length Zero", Some("pathlen0"), CA, 3650, "sha256");
        p.cert(
            "constrained",
            "Constrained CA",
            Some("root"),
            &format!("{CA}|nameConstraints=critical,permitted;DNS:example.com"),
            3650,
            "sha256",
        );
        p.cert("rsaint", "RSA Intermediate", Some("root"), CA, 3650, "sha256");
        // Leaves: each issued by the CA that makes its case, each with its own subject.
        let leaves: &[(&str, &str, &str, &str, u32, &str)] = &[
            ("good", "localhost", "int", LEAF, 3650, "sha256"),
            ("expiring", "expiring leaf", "int", LEAF, 1, "sha256"),
            ("undershort", "leaf under short", "short", LEAF, 3650, "sha256"),
            ("selfsigned", "self-signed leaf", "", LEAF, 3650, "sha256"),
            ("undernotca", "leaf under not-a-CA", "notca", LEAF, 3650, "sha256"),
            ("undernobc", "leaf under no basicConstraints", "nobc", LEAF, 3650, "sha256"),
            ("deep", "leaf too deep", "below", LEAF, 3650, "sha256"),
            ("outside", "leaf outside constraints", "constrained", LEAF, 3650, "sha256"),
            ("critical", "leaf with critical extension", "int", "subjectAltName=DNS:localhost|extendedKeyUsage=serverAuth|1.2.3.4=critical,ASN1:UTF8String:hello", 3650, "sha256"),
            ("clientonly", "client-only leaf", "int", "subjectAltName=DNS:localhost|extendedKeyUsage=clientAuth", 3650, "sha256"),
            ("sha1", "SHA-1 leaf", "int", LEAF, 3650, "sha1"),
            ("md5", "MD5 leaf", "rsaint", LEAF, 3650, "md5"),
        ];
        for (name, subject, issuer, ext, days, md) in leaves {
            std::fs::copy(p.dir.join("leaf.key"), p.dir.join(format!("{name}.key"))).unwrap();
            let issuer = (!issuer.is_empty()).then_some(*issuer);
            p.cert(name, subject, issuer, ext, *days, md);
        }
        p.cert("weak", "weak leaf", Some("int"), LEAF, 3650, "sha256");
        p
    })
}

/// A handshake in memory: the server presents `identity`, the client trusts `auth` and
/// connects to `host`. The client's error, if any.
fn connect(
    identity: Identity,
    auth: Arc<dyn ServerCertVerifier>,
    host: &str,
) -> Result<(), TlsError> {
    let srv = ServerOptions::new(identity)
        .build(provider(), rng(), Arc::new(FixedTime(now())))
        .unwrap();
    let cfg = ClientOptions::new(auth)
        .build(provider(), Arc::new(FixedTime(now())))
        .unwrap();
    let mut c = Session::client(cfg, host).unwrap();
    let mut s = Session::server(srv).unwrap();
    let mut to_server = c.handle(&[]).map_err(|f| f.error)?.to_send;
    for _ in 0..10 {
        let out = s.handle(&to_server).map_err(|f| f.error)?;
        to_server = c.handle(&out.to_send).map_err(|f| f.error)?.to_send;
        if c.status() == Status::Established && to_server.is_empty() {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

fn trust(roots: &[&str], at: u64) -> Arc<dyn ServerCertVerifier> {
    auth::chain_of_trust(&pki().ders(roots), Arc::new(FixedTime(at)), provider()).unwrap()
}

/// (case, what the server presents, what the client trusts, host name, the client's error).
type Case = (
    &'static str,
    Identity,
    Arc<dyn ServerCertVerifier>,
    &'static str,
    &'static str,
);

#[test]
fn each_cause_has_its_own_error_naming_the_certificate() {
    let p = pki();
    let t = now();
    let id = |chain: &[&str]| p.identity(chain, "leaf");
    // Corrupt the good leaf's signature (its last byte).
    let mut bad_sig = id(&["good", "int"]);
    let mut der = bad_sig.chain[0].as_ref().to_vec();
    *der.last_mut().unwrap() ^= 0x55;
    bad_sig.chain[0] = CertificateDer::from(der);
    // The RSA-1024 leaf is presented with an unrelated ECDSA key: the client refuses the
    // certificate before any handshake signature.
    let weak = p.identity(&["weak", "int"], "leaf");
    let pin_other =
        auth::server_fingerprint(FingerprintHash::Sha256, vec![vec![7; 32]], provider()).unwrap();

    let cases: Vec<Case> = vec![
        ("accepted", id(&["good", "int"]), trust(&["root"], t), "localhost", ""),
        (
            "expired leaf",
            id(&["expiring", "int"]),
            trust(&["root"], t + 3 * DAY),
            "localhost",
            "TLS: certificate expired: leaf \"CN=expiring leaf\"",
        ),
        (
            "expired intermediate",
            id(&["undershort", "short"]),
            trust(&["root"], t + 3 * DAY),
            "localhost",
            "TLS: certificate expired: intermediate 1 \"CN=Short Intermediate\"",
        ),
        (
            "not yet valid",
            id(&["good", "int"]),
            trust(&["root"], t - DAY),
            "localhost",
            "TLS: certificate not yet valid: leaf \"CN=localhost\"",
        ),
        (
            "wrong host",
            id(&["good", "int"]),
            trust(&["root"], t),
            "elsewhere.test",
            "TLS: certificate is not valid for this host name: leaf \"CN=localhost\"",
        ),
        (
            "unknown issuer",
            id(&["good", "int"]),
            trust(&["other"], t),
            "localhost",
            "TLS: certificate issuer is unknown (not signed by a trusted CA): intermediate 1 \"CN=Test Intermediate\"",
        ),
        (
            "self-signed",
            id(&["selfsigned"]),
            trust(&["root"], t),
            "localhost",
            "TLS: certificate issuer is unknown (not signed by a trusted CA): leaf \"CN=self-signed leaf\"",
        ),
        (
            "bad signature",
            bad_sig,
            trust(&["root"], t),
            "localhost",
            "TLS: bad signature on certificate: leaf \"CN=localhost\"",
        ),
        (
            "CA:FALSE intermediate",
            id(&["undernotca", "notca"]),
            trust(&["root"], t),
            "localhost",
            "TLS: certificate issues others but is not a CA (basicConstraints CA:TRUE missing): intermediate 1 \"CN=Not A CA\"",
        ),
        (
            "intermediate without basicConstraints",
            id(&["undernobc", "nobc"]),
            trust(&["root"], t),
            "localhost",
            "TLS: certificate issues others but is not a CA (basicConstraints CA:TRUE missing): intermediate 1 \"CN=No Basic Constraints\"",
        ),
        (
            "CA as leaf",
            p.identity(&["int"], "int"),
            trust(&["root"], t),
            "localhost",
            "TLS: a CA certificate is used as the end-entity certificate: leaf \"CN=Test Intermediate\"",
        ),
        (
            "path too long",
            id(&["deep", "below", "pathlen0"]),
            trust(&["root"], t),
            "localhost",
            "TLS: certificate chain is longer than a CA's path length constraint allows: intermediate 2 \"CN=Path Length Zero\"",
        ),
        (
            "name constraints",
            id(&["outside", "constrained"]),
            trust(&["root"], t),
            "localhost",
            "TLS: certificate name is outside a CA's name constraints: intermediate 1 \"CN=Constrained CA\"",
        ),
        (
            "unsupported critical extension",
            id(&["critical", "int"]),
            trust(&["root"], t),
            "localhost",
            "TLS: certificate has an unsupported critical extension (OID 1.2.3.4): leaf \"CN=leaf with critical extension\"",
        ),
        (
            "wrong purpose",
            id(&["clientonly", "int"]),
            trust(&["root"], t),
            "localhost",
            "TLS: certificate's extended key usage does not allow this use (TLS server or client authentication): leaf \"CN=client-only leaf\"",
        ),
        (
            "weak key",
            weak,
            trust(&["root"], t),
            "localhost",
            "TLS: certificate key is too weak: RSA 1024 bits (RSA keys need at least 2048 bits): leaf \"CN=weak leaf\"",
        ),
        (
            "SHA-1",
            id(&["sha1", "int"]),
            trust(&["root"], t),
            "localhost",
            "TLS: certificate is signed with an unsupported algorithm: ECDSA with SHA-1: leaf \"CN=SHA-1 leaf\"",
        ),
        (
            "MD5",
            id(&["md5", "rsaint"]),
            trust(&["root"], t),
            "localhost",
            "TLS: certificate is signed with an unsupported algorithm: MD5 with RSA: leaf \"CN=MD5 leaf\"",
        ),
        (
            "pin mismatch",
            id(&["good", "int"]),
            pin_other,
            "localhost",
            "TLS: certificate fingerprint does not match the pinned fingerprints: leaf \"CN=localhost\"",
        ),
    ];
    let mut wrong = vec![];
    for (case, identity, auth, host, expected) in cases {
        let got = match connect(identity, auth, host) {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        };
        assert!(
            !got.contains("Context") && !got.contains("OtherError") && !got.contains(" {"),
            "{case}: a Rust Debug form in `{got}`"
        );
        if got != expected {
            wrong.push(format!("{case}:\n  expected {expected}\n  got      {got}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// A server requiring client certificates from `ca` refuses `chain`: the server's error.
fn client_refused(chain: &[&str], ca: &str) -> String {
    let p = pki();
    let mut opts = ServerOptions::new(p.identity(&["good", "int"], "leaf"));
    opts.client_ca = Some(p.ders(&[ca]));
    let srv = opts
        .build(provider(), rng(), Arc::new(FixedTime(now())))
        .unwrap();
    let mut o = ClientOptions::new(trust(&["root"], now()));
    o.identity = Some(p.identity(chain, "leaf"));
    let cfg = o.build(provider(), Arc::new(FixedTime(now()))).unwrap();
    let mut c = Session::client(cfg, "localhost").unwrap();
    let mut s = Session::server(srv).unwrap();
    let mut to_server = c.handle(&[]).unwrap().to_send;
    for _ in 0..10 {
        match s.handle(&to_server) {
            Ok(out) => to_server = c.handle(&out.to_send).unwrap().to_send,
            Err(f) => return f.error.to_string(),
        }
    }
    panic!("the server accepted {chain:?}");
}

#[test]
fn client_certificates_are_refused_naming_the_cause_and_certificate() {
    // The good leaf is for TLS servers only (EKU serverAuth).
    assert_eq!(
        client_refused(&["good", "int"], "root"),
        "TLS: certificate's extended key usage does not allow this use (TLS server or client \
         authentication): leaf \"CN=localhost\""
    );
    // A client certificate from a CA the server does not trust.
    assert_eq!(
        client_refused(&["clientonly", "int"], "other"),
        "TLS: certificate issuer is unknown (not signed by a trusted CA): intermediate 1 \
         \"CN=Test Intermediate\""
    );
}
