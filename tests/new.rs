//! `uni new`: apps written in a temporary directory outside the checkout, for each device set
//! docs/apps.md shows, built and run by the real `uni` on unix (the http ones answering the real
//! curl). The app with every kind is also built for xen-arm and run on the emulated board by
//! tests/deploy.rs, in the board session it already has (`a_new_app_on_the_board`). The unix
//! apps share one target directory with the other tests (`uni_tests::uni`), so uni's crates
//! compile once; each app adds its own crate and main. Error cases run no build.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use uni_tests::{curl, free_port, root, run_uni, text, uni, Background, DnsServer};

/// `uni new args…` in `dir`, which must succeed; the app's directory.
fn new_app(dir: &Path, args: &[&str]) -> PathBuf {
    let mut a = vec!["new"];
    a.extend_from_slice(args);
    let o = run_uni(dir, &a);
    let (out, err) = text(&o);
    assert!(o.status.success(), "uni {a:?}:\n{out}\n{err}");
    assert!(err.contains("Created app"), "{err}");
    assert!(out.contains("uni run"), "prints the next steps: {out}");
    let path = match a.iter().position(|x| *x == "--path") {
        Some(i) => dir.join(a[i + 1]),
        None => dir.join(args[0]),
    };
    assert!(path.join("unikernel.toml").is_file());
    path
}

/// `uni new args…` in `dir`, which must fail with a one-line `error:` saying `what`.
fn refused(dir: &Path, args: &[&str], what: &[&str]) -> String {
    let mut a = vec!["new"];
    a.extend_from_slice(args);
    let o = run_uni(dir, &a);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "uni {a:?}:\n{out}\n{err}");
    assert!(err.starts_with("error: "), "{err}");
    for w in what {
        assert!(err.contains(w), "uni {a:?}: no {w:?} in\n{err}");
    }
    assert!(!err.contains("panicked") && !err.contains("Os {"), "{err}");
    err
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn bad_input_is_refused_with_what_to_do_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    refused(
        dir,
        &["Web"],
        &["`Web` is not a valid app name", "lowercase"],
    );
    refused(dir, &["1web"], &["not a valid app name"]);
    refused(dir, &["fn"], &["Rust keyword"]);
    refused(dir, &["uni-http"], &["one of uni's own crates"]);
    refused(
        dir,
        &["web", "--devices", "console,htpp"],
        &[
            "unknown device kind `htpp` (--devices)",
            "did you mean `http`?",
            "accepted: console, clock, random, args, net, kv_ro, kv_rw, block, http, dns, xenstore",
        ],
    );
    refused(
        dir,
        &["web", "--devices", "net,http,net"],
        &["`net` is listed twice"],
    );
    refused(
        dir,
        &["web", "--devices", "net,tls,http"],
        &[
            "does not write a tls device",
            "docs/apps.md (\"Adding TLS\")",
        ],
    );
    assert!(files_in(dir).is_empty(), "{:?}", files_in(dir));

    // an existing directory with something in it is left alone
    std::fs::create_dir(dir.join("web")).unwrap();
    std::fs::write(dir.join("web/notes.txt"), "mine").unwrap();
    refused(
        dir,
        &["web"],
        &["`web` already exists and is not empty", "--path DIR"],
    );
    refused(dir, &["app", "--path", "web"], &["already exists"]);
    assert_eq!(files_in(&dir.join("web")), ["notes.txt"]);
    std::fs::write(dir.join("file"), "").unwrap();
    refused(dir, &["app", "--path", "file"], &["is not a directory"]);

    // inside the checkout, an app would have to join its workspace
    refused(
        dir,
        &[
            "app",
            "--path",
            root().join("examples/app").to_str().unwrap(),
        ],
        &["inside the uni checkout", "examples/*"],
    );
    assert!(!root().join("examples/app").exists());

    // uni's sources where UNI_HOME says, else a clear error
    let o = uni(dir, &["new", "app"])
        .env("UNI_HOME", dir.join("nowhere"))
        .output()
        .unwrap();
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("uni's sources are not at"), "{err}");
    assert!(err.contains("set UNI_HOME to a uni checkout"), "{err}");
    assert!(!dir.join("app").exists());

    let o = run_uni(dir, &["new", "--help"]);
    let out = text(&o).0;
    assert!(o.status.success() && out.contains("Examples:"), "{out}");
}

/// Every kind's argument, in declaration order, with the dependency lines of this checkout;
/// no build (`uni configure --dry-run` loads the config and plans the generated crate).
#[test]
fn the_files_follow_the_devices_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let app = new_app(
        tmp.path(),
        &[
            "every",
            "--devices",
            "clock,random,args,kv_ro,kv_rw,block,dns,http,xenstore",
        ],
    );
    let lib = std::fs::read_to_string(app.join("src/lib.rs")).unwrap();
    assert!(lib.contains("#![no_std]\n"), "{lib}");
    assert!(lib.contains("extern crate alloc;\n"), "{lib}");
    let sig = lib
        .split("pub async fn start<S, C>(\n")
        .nth(1)
        .and_then(|s| s.split(") -> AppResult").next())
        .unwrap_or_else(|| panic!("no start:\n{lib}"));
    let params: Vec<&str> = sig.lines().map(str::trim).collect();
    assert_eq!(
        params,
        [
            "console: impl Console + 'static,",
            "clock: impl Clock,",
            "random: impl Random,",
            "args: BootArgs,",
            "data: impl KvRo,",
            "mut store: impl KvRw,",
            "disk: impl Block,",
            "_net: impl Stack,",
            "dns: impl Resolver,",
            "http: Server<Plain<S>, C>,",
            "xenstore: impl Xenstore,",
        ]
    );
    let toml = std::fs::read_to_string(app.join("unikernel.toml")).unwrap();
    let tables: Vec<&str> = toml
        .lines()
        .filter_map(|l| l.strip_prefix("[devices.")?.strip_suffix(']'))
        .collect();
    assert_eq!(
        tables,
        [
            "console", "clock", "random", "args", "data", "store", "disk", "net", "dns", "http",
            "xenstore"
        ]
    );
    assert!(toml.contains("target = \"xen-arm\""), "{toml}");
    // the args device declares the key its app reads (and no `port`: http has its own)
    assert!(
        toml.contains(
            "keys.greeting = { type = \"string\", default = \"hello\", doc = \"what the app says at boot\" }\n"
        ),
        "{toml}"
    );
    assert!(!toml.contains("keys.port"), "{toml}");
    assert!(lib.contains("args.get(\"greeting\")"), "{lib}");
    let cargo = std::fs::read_to_string(app.join("Cargo.toml")).unwrap();
    for (package, dir) in [("uni-runtime", "runtime"), ("uni-http", "libs/http")] {
        let line = format!(
            "{package} = {{ path = {:?} }}",
            root().join(dir).display().to_string()
        );
        assert!(cargo.contains(&line), "no {line:?} in\n{cargo}");
    }
    assert_eq!(
        std::fs::read_to_string(app.join(".gitignore")).unwrap(),
        "/_build/\n/dist/\n/target/\n"
    );
    assert_eq!(
        std::fs::metadata(app.join("store.img")).unwrap().len(),
        16 << 20
    );
    assert_eq!(
        std::fs::metadata(app.join("disk.img")).unwrap().len(),
        1 << 20
    );
    assert_eq!(
        std::fs::read_to_string(app.join("data/hello.txt")).unwrap(),
        "hello from every\n"
    );
    let o = run_uni(&app, &["configure", "--dry-run"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("device order: console -> clock -> random -> args -> data -> store -> disk -> net -> dns -> http -> xenstore"),
        "{out}"
    );
}

fn run_to_end(app: &Path, boot_args: &[&str]) -> (String, String) {
    let mut a = vec!["run", "--"];
    a.extend_from_slice(boot_args);
    let o: Output = run_uni(app, &a);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    (out, err)
}

/// The apps of docs/apps.md on unix: the default (console, clock) runs to its end; a net app
/// without http says hello over TCP. (`web`, with http, is README.md's walk-through, which
/// tests/newcomer.rs runs on unix and on the board.)
#[test]
fn the_apps_of_the_docs_run_on_unix() {
    let tmp = tempfile::tempdir().unwrap();
    // (not `hello`: examples/hello's binary shares the tests' target directory)
    let first = new_app(tmp.path(), &["first"]);
    let (out, _) = run_to_end(&first, &[]);
    assert!(out.starts_with("hello from first\nclock: "), "{out}");

    let tcp = new_app(
        tmp.path(),
        &["tcp", "--devices", "console,net,args", "--path", "tcp-app"],
    );
    // its args device declares both keys the app reads: --help lists them, others are refused
    let toml = std::fs::read_to_string(tcp.join("unikernel.toml")).unwrap();
    assert!(
        toml.contains("keys.port = { type = \"port\", default = 8080, doc = "),
        "{toml}"
    );
    let o = run_uni(&tcp, &["build"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = run_uni(&tcp, &["run", "--", "--help"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    for want in [
        "--greeting=TEXT",
        "what the app says at boot",
        "--port=PORT",
        "the TCP port the app says hello on",
    ] {
        assert!(out.contains(want), "no {want:?} in --help:\n{out}");
    }
    let o = run_uni(&tcp, &["run", "--", "--greting=hi"]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown boot argument --greting: did you mean --greeting?"),
        "{err}"
    );
    let port = free_port();
    let mut run = Background::spawn(uni(&tcp, &["run", "--", &format!("--port={port}")]));
    run.wait_for("net: listening on", false, Duration::from_secs(600));
    // --greeting not given: the default unikernel.toml declares
    assert!(
        run.out().contains("args: hello (--greeting=…)"),
        "{}",
        run.out()
    );
    let got = uni_tests::echo_roundtrip(("127.0.0.1", port), b"");
    assert_eq!(got, b"hello from tcp\n");
    run.wait_for(
        "net: said hello to 127.0.0.1:",
        false,
        Duration::from_secs(10),
    );
}

/// Every kind `uni new` writes but xenstore, in one app on unix: each device's use prints
/// what the device did, the lookup answered by a real DNS server on 127.0.0.1.
#[test]
fn every_kind_runs_on_unix() {
    let tmp = tempfile::tempdir().unwrap();
    let app = new_app(
        tmp.path(),
        &[
            "every",
            "--devices",
            "clock,random,args,kv_ro,kv_rw,block,dns,http",
        ],
    );
    let dns = DnsServer::start("127.0.0.1", &["example.com=192.0.2.7"]);
    let port = free_port();
    let mut run = Background::spawn(uni(
        &app,
        &[
            "run",
            "--",
            &format!("--http-port={port}"),
            &format!("--nameserver=127.0.0.1:{}", dns.port),
            "--greeting=hi",
        ],
    ));
    run.wait_for("http: listening on", false, Duration::from_secs(600));
    let out = run.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello from every", "{out}");
    assert!(
        lines[1].starts_with("clock: ") && lines[1].ends_with(" ms since boot"),
        "{out}"
    );
    let random = lines[2].strip_prefix("random: ").unwrap_or_default();
    assert!(
        random.len() == 16 && random.chars().all(|c| c.is_ascii_hexdigit()),
        "{out}"
    );
    assert_eq!(
        &lines[3..8],
        [
            "args: hi (--greeting=…)",
            "data: hello.txt holds 17 bytes",
            "store: 0 keys, then wrote `hello`",
            "disk: 2048 sectors of 512 bytes",
            "dns: example.com: 192.0.2.7",
        ],
        "{out}"
    );
    assert_eq!(dns.queries_for("example.com"), 1);
    assert_eq!(
        curl(&[&format!("http://localhost:{port}/")]).stdout,
        b"hello from every\n"
    );
    drop(run);
    // the store kept the key: a second boot finds it
    let (out, _) = {
        let mut run = Background::spawn(uni(
            &app,
            &["run", "--", &format!("--http-port={}", free_port())],
        ));
        run.wait_for("http: listening on", false, Duration::from_secs(120));
        (run.out(), ())
    };
    assert!(out.contains("store: 1 keys, then wrote `hello`"), "{out}");
    assert!(
        out.contains("dns: example.com: dns: no nameserver configured"),
        "{out}"
    );
}
