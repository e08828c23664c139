//! Bad `unikernel.toml`s: each must fail with `file:line:col`, the key path, what is wrong and
//! what is accepted, exit non-zero, and never panic.

use std::fs;
use std::path::Path;

use uni_tests::{example, run_uni, text};

struct Case {
    name: &'static str,
    /// The `[unikernel]` table and anything after it; `APP` becomes the hello app's path.
    toml: &'static str,
    /// `unikernel.toml:LINE:COL`
    at: &'static str,
    key: &'static str,
    wrong: &'static str,
    accepted: &'static str,
}

const HEAD: &str = "[unikernel]\nschema = 1\nname = \"bad\"\napp = APP\n";

/// tests/bad-tls, the certificates and keys of the tls cases (made by its make.sh).
fn pki() -> String {
    uni_tests::root()
        .join("tests/bad-tls")
        .display()
        .to_string()
}

fn check(case: &Case, command: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let app = format!("{:?}", example("hello").display().to_string());
    let toml = case
        .toml
        .replace("HEAD\n", HEAD)
        .replace("APP", &app)
        .replace("PKI", &pki());
    fs::write(tmp.path().join("unikernel.toml"), &toml).unwrap();
    fs::create_dir(tmp.path().join("www")).unwrap();
    let o = run_uni(tmp.path(), command);
    let (out, err) = text(&o);
    let ctx = format!(
        "case `{}`\n--- unikernel.toml ---\n{toml}--- stderr ---\n{err}",
        case.name
    );
    assert_eq!(o.status.code(), Some(1), "{ctx}");
    assert!(out.is_empty(), "{ctx}\nstdout: {out}");
    assert!(
        err.contains(&format!("--> {}", case.at)),
        "expected location {}: {ctx}",
        case.at
    );
    if !case.key.is_empty() {
        assert!(
            err.contains(&format!("`{}`", case.key)),
            "expected key path {}: {ctx}",
            case.key
        );
    }
    assert!(err.contains(case.wrong), "expected {:?}: {ctx}", case.wrong);
    assert!(
        err.contains(case.accepted),
        "expected accepted values {:?}: {ctx}",
        case.accepted
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{ctx}"
    );
    assert!(
        !Path::new(&tmp.path().join("_build")).exists(),
        "a bad config wrote files: {ctx}"
    );
}

macro_rules! bad {
    ($name:ident, $toml:expr, at = $at:expr, key = $key:expr, wrong = $wrong:expr, accepted = $acc:expr) => {
        #[test]
        fn $name() {
            check(
                &Case {
                    name: stringify!($name),
                    toml: $toml,
                    at: $at,
                    key: $key,
                    wrong: $wrong,
                    accepted: $acc,
                },
                &["configure"],
            );
        }
    };
}

bad!(
    unknown_top_level_key,
    "HEAD\n[network]\nip = 1\n",
    at = "unikernel.toml:5:2",
    key = "network",
    wrong = "unknown key `network`",
    accepted = "expected one of `unikernel`, `devices`, `xen`"
);

bad!(
    unknown_key_in_unikernel,
    "[unikernel]\nschema = 1\nname = \"bad\"\nnmae = \"typo\"\n",
    at = "unikernel.toml:4:1",
    key = "unikernel.nmae",
    wrong = "unknown key `nmae`",
    accepted = "`name`"
);

bad!(
    wrong_type,
    "[unikernel]\nschema = 1\nname = 5\n",
    at = "unikernel.toml:3:8",
    key = "unikernel.name",
    wrong = "invalid type: integer `5`",
    accepted = "expected a string"
);

bad!(
    missing_name,
    "[unikernel]\nschema = 1\n",
    at = "unikernel.toml:1:1",
    key = "unikernel",
    wrong = "missing key `name`",
    accepted = ""
);

bad!(
    unsupported_schema,
    "[unikernel]\nschema = 2\nname = \"bad\"\n",
    at = "unikernel.toml:2:10",
    key = "unikernel.schema",
    wrong = "unsupported schema version 2",
    accepted = "this uni reads schema = 1"
);

bad!(
    unknown_target,
    "HEAD\ntarget = \"x86\"\n",
    at = "unikernel.toml:5:10",
    key = "unikernel.target",
    wrong = "unknown target \"x86\"",
    accepted = "\"unix\", \"xen-arm\""
);

bad!(
    unknown_board,
    "HEAD\nboard = \"raspberry\"\n",
    at = "unikernel.toml:5:9",
    key = "unikernel.board",
    wrong = "unknown board \"raspberry\"",
    accepted = "\"cubieboard2\", \"qemu-virt\""
);

bad!(
    app_is_not_a_crate,
    "[unikernel]\nschema = 1\nname = \"bad\"\napp = \"www\"\n",
    at = "unikernel.toml:4:7",
    key = "unikernel.app",
    wrong = "no crate at \"www\"",
    accepted = "a directory with a Cargo.toml"
);

bad!(unknown_device_kind,
    "HEAD\n[devices.gpu0]\nkind = \"gpu\"\n",
    at = "unikernel.toml:6:8", key = "devices.gpu0.kind", wrong = "unknown device kind \"gpu\"",
    accepted = "\"console\", \"clock\", \"random\", \"args\", \"net\", \"kv_ro\", \"kv_rw\", \"block\", \"tls\", \"http\", \"dns\"");

bad!(
    ip_without_prefix,
    "HEAD\n[devices.net]\nkind = \"net\"\nstack = \"direct\"\nipv4 = \"10.0.0.2\"\n",
    at = "unikernel.toml:8:8",
    key = "devices.net.ipv4",
    wrong = "no prefix length",
    accepted = "\"10.0.0.2/24\""
);

bad!(
    prefix_out_of_range,
    "HEAD\n[devices.net]\nkind = \"net\"\nipv4 = \"10.0.0.2/33\"\n",
    at = "unikernel.toml:7:8",
    key = "devices.net.ipv4",
    wrong = "prefix length must be 0 to 32",
    accepted = "\"dhcp\""
);

bad!(
    unknown_stack,
    "HEAD\n[devices.net]\nkind = \"net\"\nstack = \"lwip\"\n",
    at = "unikernel.toml:7:9",
    key = "devices.net.stack",
    wrong = "unknown network stack \"lwip\"",
    accepted = "\"socket\""
);

bad!(gateway_with_dhcp,
    "HEAD\n[devices.net]\nkind = \"net\"\nstack = \"direct\"\nipv4 = \"dhcp\"\ngateway = \"10.0.0.1\"\n",
    at = "unikernel.toml:9:11", key = "devices.net.gateway", wrong = "a gateway needs a static address",
    accepted = "drop `gateway`");

bad!(
    dhcp_on_socket_stack,
    "HEAD\n[devices.net]\nkind = \"net\"\nstack = \"socket\"\nipv4 = \"dhcp\"\n",
    at = "unikernel.toml:8:8",
    key = "devices.net.ipv4",
    wrong = "DHCP needs the direct stack",
    accepted = "use stack = \"direct\""
);

bad!(
    bad_mac,
    "HEAD\n[devices.net]\nkind = \"net\"\nmac = \"00:16:3e:00:00\"\n",
    at = "unikernel.toml:7:7",
    key = "devices.net.mac",
    wrong = "invalid MAC address",
    accepted = "\"00:16:3e:00:00:02\""
);

bad!(
    missing_kv_directory,
    "HEAD\n[devices.files]\nkind = \"kv_ro\"\ndir = \"htdocs\"\n",
    at = "unikernel.toml:7:7",
    key = "devices.files.dir",
    wrong = "\"htdocs\" does not exist",
    accepted = "the path of an existing directory"
);

bad!(
    kv_directory_is_a_file,
    "HEAD\n[devices.files]\nkind = \"kv_ro\"\ndir = \"unikernel.toml\"\n",
    at = "unikernel.toml:7:7",
    key = "devices.files.dir",
    wrong = "\"unikernel.toml\" is not a directory",
    accepted = "the path of an existing directory"
);

bad!(http_tls_names_a_device_of_another_kind,
    "HEAD\n[devices.files]\nkind = \"kv_ro\"\ndir = \"www\"\n[devices.net]\nkind = \"net\"\n[devices.web]\nkind = \"http\"\nnet = \"net\"\ntls = \"files\"\n",
    at = "unikernel.toml:13:7", key = "devices.web.tls", wrong = "device \"files\" is a kv_ro device, not a tls device",
    accepted = "declared tls devices: none");

bad!(http_port_out_of_range,
    "HEAD\n[devices.net]\nkind = \"net\"\n[devices.web]\nkind = \"http\"\nnet = \"net\"\nport = 70000\n",
    at = "unikernel.toml:10:8", key = "devices.web.port", wrong = "port 70000 is out of range",
    accepted = "an integer from 1 to 65535");

bad!(
    key_of_another_kind,
    "HEAD\n[devices.console]\nkind = \"console\"\ndir = \"www\"\n",
    at = "unikernel.toml:7:7",
    key = "devices.console.dir",
    wrong = "key `dir` does not apply to a device of kind \"console\"",
    accepted = "a device of kind \"console\" accepts: `kind`"
);

bad!(
    unknown_key_in_device_lists_that_kinds_keys,
    "HEAD\n[devices.net]\nkind = \"net\"\nipv6 = \"::1/128\"\n",
    at = "unikernel.toml:7:1",
    key = "devices.net.ipv6",
    wrong = "unknown key `ipv6`",
    accepted = "a device of kind \"net\" accepts: `kind`, `stack`, `ipv4`, `gateway`, `mac`"
);

bad!(
    wrong_type_inside_a_device_points_at_the_value,
    "HEAD\n[devices.net]\nkind = \"net\"\n[devices.web]\nkind = \"http\"\nnet = \"net\"\nport = \"eighty\"\n",
    at = "unikernel.toml:10:8",
    key = "devices.web.port",
    wrong = "invalid type: string \"eighty\"",
    accepted = "expected i64"
);

bad!(
    unknown_key_in_an_sni_entry_lists_the_entry_keys,
    "HEAD\n[devices.net]\nkind = \"net\"\n[devices.tls]\nkind = \"tls\"\nnet = \"net\"\nsni = [{ name = \"a.example\", cert = \"c\", key = \"k\", chain = \"x\" }]\n",
    at = "unikernel.toml:10:53",
    key = "devices.tls.sni.[0].chain",
    wrong = "unknown key `chain`",
    accepted = "expected one of `name`, `cert`, `key`"
);

bad!(
    reference_to_undeclared_device,
    "HEAD\n[devices.dns]\nkind = \"dns\"\nnet = \"net0\"\n",
    at = "unikernel.toml:7:7",
    key = "devices.dns.net",
    wrong = "no device named \"net0\"",
    accepted = "declared devices: \"dns\""
);

bad!(reference_to_a_device_of_the_wrong_kind,
    "HEAD\n[devices.console]\nkind = \"console\"\n[devices.dns]\nkind = \"dns\"\nnet = \"console\"\n",
    at = "unikernel.toml:9:7", key = "devices.dns.net", wrong = "device \"console\" is a console device, not a net device",
    accepted = "declared net devices: none");

bad!(
    invalid_device_name,
    "HEAD\n[devices.Net-0]\nkind = \"net\"\n",
    at = "unikernel.toml:5:10",
    key = "devices.Net-0",
    wrong = "invalid device name \"Net-0\"",
    accepted = "a Rust identifier in snake_case"
);

bad!(
    xen_memory_out_of_range,
    "HEAD\n[xen]\nmemory = 0\n",
    at = "unikernel.toml:6:10",
    key = "xen.memory",
    wrong = "memory = 0 is out of range",
    accepted = "from 4 to 3072"
);

bad!(
    xen_on_crash_unknown,
    "HEAD\n[xen]\non-crash = \"explode\"\n",
    at = "unikernel.toml:6:12",
    key = "xen.on-crash",
    wrong = "unknown on_crash action \"explode\"",
    accepted = "\"preserve\""
);

bad!(
    deploy_host_without_a_host,
    "HEAD\n[deploy]\nhost = \"root@\"\n",
    at = "unikernel.toml:6:8",
    key = "deploy.host",
    wrong = "invalid deploy host \"root@\"",
    accepted = "an SSH destination [USER@]HOST[:PORT], such as \"root@cubie\""
);

bad!(
    deploy_host_bad_port,
    "HEAD\n[deploy]\nhost = \"root@cubie:99999\"\n",
    at = "unikernel.toml:6:8",
    key = "deploy.host",
    wrong = "`99999` in `root@cubie:99999` is not a TCP port",
    accepted = "[USER@]HOST[:PORT]"
);

bad!(
    deploy_dir_relative,
    "HEAD\n[deploy]\ndir = \"var/lib/uni\"\n",
    at = "unikernel.toml:6:7",
    key = "deploy.dir",
    wrong = "invalid deploy dir \"var/lib/uni\": it is not absolute",
    accepted = "an absolute path in dom0"
);

bad!(
    deploy_unknown_key,
    "HEAD\n[deploy]\nport = 22\n",
    at = "unikernel.toml:6:1",
    key = "deploy.port",
    wrong = "unknown key `port`",
    accepted = "`host`"
);

bad!(
    toml_syntax_error,
    "HEAD\n[devices.console]\nkind = \"console\n",
    at = "unikernel.toml:6:16",
    key = "",
    wrong = "invalid basic string",
    accepted = "expected `\"`"
);

bad!(
    duplicate_key,
    "HEAD\nname = \"again\"\n",
    at = "unikernel.toml:5:1",
    key = "",
    wrong = "duplicate key",
    accepted = ""
);

bad!(
    a_nested_keys_entry_is_named_in_its_path,
    "HEAD\n[devices.args]\nkind = \"args\"\nkeys.colour = { type = \"string\", dfault = \"red\" }\n",
    at = "unikernel.toml:7:34",
    key = "devices.args.keys.colour.dfault",
    wrong = "unknown key `dfault`",
    accepted = "expected one of `type`, `default`, `doc`"
);

bad!(
    boot_args_every_boot_would_refuse,
    "HEAD\nboot-args = \"--prot=7000\"\n",
    at = "unikernel.toml:5:13",
    key = "unikernel.boot-args",
    wrong = "unknown boot argument --prot",
    accepted = "the unikernel would refuse this at every boot (target unix)"
);

/// `[xen] extra`, baked into the .xl, is checked at configure as `boot-args` is, on xen-arm;
/// unix does not read it.
#[test]
fn xen_extra_every_boot_would_refuse() {
    let case = |toml| Case {
        name: "xen_extra",
        toml,
        at: "unikernel.toml:6:9",
        key: "xen.extra",
        wrong: "unknown boot argument --uni-timestamp: did you mean --uni-timestamps?",
        accepted: "the unikernel would refuse this at every boot (target xen-arm)",
    };
    check(
        &case("HEAD\n[xen]\nextra = \"--uni-timestamp\"\n"),
        &["configure", "--target", "xen-arm"],
    );
    let mut wrong_form = case("HEAD\n[xen]\nextra = \"--uni-timestamps --uni-boot-info=yes\"\n");
    wrong_form.wrong = "boot argument --uni-boot-info=yes: expected no value";
    check(&wrong_form, &["configure", "--target", "xen-arm"]);
}

#[test]
fn device_the_target_cannot_provide() {
    check(
        &Case {
            name: "xenstore_on_unix",
            toml: "HEAD\n[devices.net]\nkind = \"net\"\n[devices.xs]\nkind = \"xenstore\"\n",
            at: "unikernel.toml:8:8",
            key: "devices.xs.kind",
            wrong: "target unix cannot provide this device",
            accepted: "on unix, use: target xen-arm for this device",
        },
        &["configure", "--target", "unix"],
    );
}

#[test]
fn several_errors_are_reported_together() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("unikernel.toml"),
        "[unikernel]\nschema = 1\nname = \"Bad Name\"\ntarget = \"vax\"\n[devices.net]\nkind = \"net\"\nipv4 = \"1.2.3.4\"\n",
    )
    .unwrap();
    let o = run_uni(tmp.path(), &["configure"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    for at in [
        "unikernel.toml:3:8",
        "unikernel.toml:4:10",
        "unikernel.toml:7:8",
    ] {
        assert!(err.contains(at), "missing {at}:\n{err}");
    }
    assert!(err.contains("due to 3 previous errors"), "{err}");
}

bad!(
    kv_rw_without_a_file,
    "HEAD\n[devices.notes]\nkind = \"kv_rw\"\n",
    at = "unikernel.toml:6:8",
    key = "devices.notes.file",
    wrong = "missing key `file`",
    accepted = "`file`: the path of the store's disk image, relative to this file (make it with `uni kv format --size 16M FILE`)"
);

bad!(
    kv_rw_format_not_a_boolean,
    "HEAD\n[devices.notes]\nkind = \"kv_rw\"\nfile = \"n.img\"\nformat = \"yes\"\n",
    at = "unikernel.toml:8:10",
    key = "devices.notes.format",
    wrong = "invalid type: string \"yes\"",
    accepted = "expected a boolean"
);

// The tls device's files, checked at configure time (fixtures: tests/bad-tls/make.sh). Lines
// 10 and 11 are `cert` and `key`.
const TLS: &str =
    "HEAD\n[devices.net]\nkind = \"net\"\n[devices.tls]\nkind = \"tls\"\nnet = \"net\"\n";

macro_rules! bad_tls {
    ($name:ident, $keys:expr, at = $at:expr, key = $key:expr, wrong = $wrong:expr, accepted = $acc:expr) => {
        #[test]
        fn $name() {
            check(
                &Case {
                    name: stringify!($name),
                    toml: format!("{TLS}{}\n", $keys).leak(),
                    at: $at,
                    key: $key,
                    wrong: $wrong,
                    accepted: $acc,
                },
                &["configure"],
            );
        }
    };
}

bad_tls!(
    tls_rsa_key_is_refused,
    "cert = \"PKI/server.pem\"\nkey = \"PKI/rsa.key\"",
    at = "unikernel.toml:11:7",
    key = "devices.tls.key",
    wrong = "rsa.key\": it is an RSA private key, and uni's TLS does not sign with RSA",
    accepted = "an ECDSA P-256/P-384 or Ed25519 key"
);

bad_tls!(
    tls_rsa_key_in_pkcs1_form_is_refused,
    "cert = \"PKI/server.pem\"\nkey = \"PKI/rsa-pkcs1.key\"",
    at = "unikernel.toml:11:7",
    key = "devices.tls.key",
    wrong = "it is an RSA private key",
    accepted = "openssl genpkey -algorithm EC"
);

bad_tls!(
    tls_key_of_another_certificate,
    "cert = \"PKI/server.pem\"\nkey = \"PKI/other.key\"",
    at = "unikernel.toml:11:7",
    key = "devices.tls.key",
    wrong = "other.key\" does not match the certificate in",
    accepted = "`openssl pkey -pubout -in KEY` print the same key"
);

bad_tls!(
    tls_key_of_another_type_than_the_certificate,
    "cert = \"PKI/server.pem\"\nkey = \"PKI/ed25519.key\"",
    at = "unikernel.toml:11:7",
    key = "devices.tls.key",
    wrong = "the certificate has an ECDSA P-256 key, this is an Ed25519 key",
    accepted = "the private key of the first certificate"
);

bad_tls!(
    tls_encrypted_key,
    "cert = \"PKI/server.pem\"\nkey = \"PKI/encrypted.key\"",
    at = "unikernel.toml:11:7",
    key = "devices.tls.key",
    wrong = "the private key is encrypted",
    accepted = "an unencrypted key"
);

bad_tls!(
    tls_cert_that_is_no_certificate,
    "cert = \"PKI/garbage.pem\"\nkey = \"PKI/server.key\"",
    at = "unikernel.toml:10:8",
    key = "devices.tls.cert",
    wrong = "garbage.pem\": it holds no certificate",
    accepted = "PEM `BEGIN CERTIFICATE` blocks, or one DER certificate"
);

bad_tls!(
    tls_key_that_is_a_certificate,
    "cert = \"PKI/server.pem\"\nkey = \"PKI/server.pem\"",
    at = "unikernel.toml:11:7",
    key = "devices.tls.key",
    wrong = "no PEM private key in it",
    accepted = "ECDSA P-256 or P-384 (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`), or Ed25519"
);

bad_tls!(
    tls_sni_entry_with_another_certificates_key,
    "sni = [{ key = \"PKI/ed25519.key\", name = \"a.example\", cert = \"PKI/server.pem\" }]",
    at = "unikernel.toml:10:16",
    key = "devices.tls.sni.key",
    wrong = "the certificate has an ECDSA P-256 key, this is an Ed25519 key",
    accepted = "the private key of the first certificate"
);

bad_tls!(
    tls_ca_that_is_no_certificate,
    "ca = \"PKI/garbage.pem\"",
    at = "unikernel.toml:10:6",
    key = "devices.tls.ca",
    wrong = "it holds no certificate",
    accepted = "PEM `BEGIN CERTIFICATE` blocks"
);

// Not read: the check must not hang on a device that never ends.
bad_tls!(
    tls_cert_that_is_a_device_is_refused_without_reading_it,
    "cert = \"/dev/zero\"\nkey = \"PKI/server.key\"\nca = \"/dev/zero\"",
    at = "unikernel.toml:10:8",
    key = "devices.tls.cert",
    wrong = "\"/dev/zero\" is not a file",
    accepted = "the path of an existing file"
);

/// A chain with the CA first: the chain's order is wrong at `cert`, and the key (the second
/// certificate's) at `key`.
#[test]
fn tls_chain_out_of_order() {
    let tmp = tempfile::tempdir().unwrap();
    let toml = format!("{TLS}cert = \"PKI/reversed.pem\"\nkey = \"PKI/server.key\"\n")
        .replace("HEAD\n", HEAD)
        .replace(
            "APP",
            &format!("{:?}", example("hello").display().to_string()),
        )
        .replace("PKI", &pki());
    fs::write(tmp.path().join("unikernel.toml"), &toml).unwrap();
    let o = run_uni(tmp.path(), &["configure"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for want in [
        "--> unikernel.toml:10:8",
        "is out of order: certificate 1 (\"CN=uni bad-tls CA\") was issued by \"CN=uni bad-tls CA\", but certificate 2 is \"CN=localhost\"",
        "the server's own certificate first, then the certificate that issued it",
        "--> unikernel.toml:11:7",
        "server.key\" is the key of certificate 2 in",
        "due to 2 previous errors",
    ] {
        assert!(err.contains(want), "no {want:?} in:\n{err}");
    }
    assert!(!tmp.path().join("_build").exists());
}

/// What the device loads passes: a chain in order with a PKCS#8 key, a SEC1 key, Ed25519.
#[test]
fn tls_files_the_device_loads_pass() {
    for (cert, key) in [
        ("chain.pem", "server.key"),
        ("server.pem", "server-sec1.key"),
        ("ed25519.pem", "ed25519.key"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let toml =
            format!("{TLS}cert = \"PKI/{cert}\"\nkey = \"PKI/{key}\"\nca = \"PKI/ca.pem\"\n")
                .replace("HEAD\n", HEAD)
                .replace(
                    "APP",
                    &format!("{:?}", example("hello").display().to_string()),
                )
                .replace("PKI", &pki());
        fs::write(tmp.path().join("unikernel.toml"), &toml).unwrap();
        let o = run_uni(tmp.path(), &["configure", "--dry-run"]);
        assert!(o.status.success(), "{cert} + {key}:\n{}", text(&o).1);
    }
}
