//! The command line itself: help, version, completions, and configure's dry-run and check modes.

use std::fs;

use uni_tests::{example, run_uni, text};

#[test]
fn help_carries_examples_for_every_command() {
    let dir = example("hello");
    // Every command `uni --help` lists, so that a new command cannot come without examples.
    let o = run_uni(&dir, &["--help"]);
    let (top, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let commands: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Options:"))
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    for c in [
        "new", "build", "run", "deploy", "trace", "stats", "describe",
    ] {
        assert!(commands.contains(&c), "{c} is not among {commands:?}");
    }
    let lists: Vec<[&str; 2]> = commands.iter().map(|c| [*c, "--help"]).collect();
    for args in std::iter::once(&["--help"][..]).chain(lists.iter().map(|a| &a[..])) {
        let o = run_uni(&dir, args);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{args:?}: {err}");
        assert!(
            out.contains("Examples:"),
            "{args:?} --help has no examples:\n{out}"
        );
        assert!(out.contains("uni "), "{args:?}:\n{out}");
    }
}

#[test]
fn version() {
    let o = run_uni(&example("hello"), &["--version"]);
    assert!(o.status.success());
    assert_eq!(
        text(&o).0.trim(),
        format!("uni {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef uni"),
        ("fish", "complete -c uni"),
    ] {
        let o = run_uni(&example("hello"), &["completions", shell]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{shell}: {err}");
        assert!(out.contains(marker), "{shell} completion lacks {marker:?}");
        assert!(
            out.contains("configure"),
            "{shell} completion does not know `configure`"
        );
    }
}

#[test]
fn dry_run_writes_nothing_and_check_detects_staleness() {
    // Work on a copy so other tests' builds of the real example are not disturbed.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    hello_config(dir);

    let o = run_uni(dir, &["configure", "--dry-run"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("write _build/unix/Cargo.toml"), "{out}");
    assert!(out.contains("write _build/unix/src/main.rs"), "{out}");
    assert!(out.contains("device order: console -> clock"), "{out}");
    assert!(
        out.contains("cargo build --release"),
        "the plan names the build command:\n{out}"
    );
    assert!(!dir.join("_build").exists(), "--dry-run wrote files");

    let o = run_uni(dir, &["configure", "--check"]);
    assert!(!o.status.success(), "--check passes with nothing generated");
    assert!(
        text(&o).1.contains("_build/unix/src/main.rs` is missing"),
        "{}",
        text(&o).1
    );

    let o = run_uni(dir, &["configure"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["_build/unix/Cargo.toml", "_build/unix/src/main.rs"]
    );
    assert!(
        err.contains("Configuring hello (target unix"),
        "status line on stderr: {err}"
    );

    let o = run_uni(dir, &["configure", "--check"]);
    assert!(
        o.status.success(),
        "fresh files reported stale: {}",
        text(&o).1
    );

    // Editing the config makes the generated files stale.
    let toml = fs::read_to_string(dir.join("unikernel.toml")).unwrap();
    fs::write(
        dir.join("unikernel.toml"),
        toml.replace("[devices.clock]", "[devices.time]"),
    )
    .unwrap();
    let o = run_uni(dir, &["configure", "--check"]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("src/main.rs` is out of date"),
        "{}",
        text(&o).1
    );

    // Hand edits are detected too.
    run_uni(dir, &["configure"]);
    let main = dir.join("_build/unix/src/main.rs");
    fs::write(&main, fs::read_to_string(&main).unwrap() + "// edited\n").unwrap();
    assert!(!run_uni(dir, &["configure", "--check"]).status.success());
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run_uni(tmp.path(), &["build"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("no `unikernel.toml` here"), "{err}");
}

/// A unikernel.toml for the hello app in `dir`.
fn hello_config(dir: &std::path::Path) {
    fs::write(
        dir.join("unikernel.toml"),
        format!(
            "[unikernel]\nschema = 1\nname = \"hello\"\napp = {:?}\n\n[devices.console]\nkind = \"console\"\n\n[devices.clock]\nkind = \"clock\"\n",
            example("hello")
        ),
    )
    .unwrap();
}

#[test]
fn flags_of_the_emulated_board_are_refused_on_unix_before_building() {
    let tmp = tempfile::tempdir().unwrap();
    hello_config(tmp.path());
    for (args, want) in [
        (
            &["run", "--target", "unix", "-p", "8080:80"][..],
            "`-p 8080:80` does not apply to target unix: only the emulated board (--target xen-arm) takes it",
        ),
        (
            &["run", "--target", "unix", "--timeout", "5"],
            "`--timeout 5` does not apply to target unix: only the emulated board (--target xen-arm) takes it",
        ),
        (
            &["run", "--target", "unix", "--board", "cubieboard2"],
            "`--board cubieboard2` does not apply to target unix",
        ),
    ] {
        let o = run_uni(tmp.path(), args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: no {want:?} in:\n{err}");
        assert!(
            !tmp.path().join("_build").exists(),
            "{args:?} configured before refusing"
        );
    }
}

#[test]
fn describe_prints_the_device_graph_as_text_and_as_dot() {
    let dir = example("static-website");
    let o = run_uni(&dir, &["describe", "--target", "unix"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        out.starts_with(
            "static-website (target unix): `static_website::start` takes 6 devices, in this order"
        ),
        "{out}"
    );
    for row in [
        &[
            "1",
            "console",
            "console",
            "-",
            "impl",
            "Console",
            "uni_runtime::platform::Console::new",
        ][..],
        &[
            "2",
            "net",
            "net",
            "-",
            "impl",
            "Stack",
            "uni_net::socket::SocketStack::configure",
        ],
        &["3", "htdocs", "kv_ro", "-", "impl", "KvRo"],
        &["4", "tls", "tls", "net", "Tls<S>", "uni_tls::Tls::new"],
        &[
            "5",
            "https",
            "http",
            "net,tls",
            "Server<Tls<S>,",
            "C>",
            "uni_http::Server::tls",
        ],
        &[
            "6",
            "http",
            "http",
            "net",
            "Server<Plain<S>,",
            "C>",
            "uni_http::Server::plain",
        ],
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(row)),
            "no row {row:?} in:\n{out}"
        );
    }
    assert!(
        out.contains("built in this order: console -> net -> htdocs -> tls -> https -> http"),
        "{out}"
    );
    // The target's own implementations.
    let o = run_uni(&dir, &["describe", "--target", "xen-arm"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("uni_net::direct::DirectStack::configure"),
        "{out}"
    );

    let o = run_uni(&dir, &["describe", "--dot"]);
    let (dot, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for edge in [
        "\"app:static-website\" -> \"device:console\" [label = \"1\"];",
        "\"app:static-website\" -> \"device:http\" [label = \"6\"];",
        "\"device:https\" -> \"device:tls\" [style = dashed];",
        "\"device:tls\" -> \"device:net\" [style = dashed];",
    ] {
        assert!(dot.contains(edge), "no {edge} in:\n{dot}");
    }
    // Graphviz itself reads it (.ci/setup installs graphviz).
    let mut child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("graphviz's `dot` runs (.ci/setup installs graphviz)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let (svg, err) = text(&o);
    assert!(
        o.status.success() && err.is_empty(),
        "dot -Tsvg: {err}\n{dot}"
    );
    for title in [
        "<title>device:https</title>",
        "<title>device:https&#45;&gt;device:tls</title>",
    ] {
        assert!(svg.contains(title), "no {title} in the SVG:\n{svg}");
    }
}

#[test]
fn clean_removes_build_and_dist_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    let outside = tmp.path().join("checkout");
    fs::create_dir_all(dir.join("_build/unix/src")).unwrap();
    fs::create_dir_all(dir.join("dist")).unwrap();
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    // Not even a valid config: clean does not need one.
    fs::write(dir.join("unikernel.toml"), "[unikernel\n").unwrap();
    fs::write(dir.join("_build/unix/src/main.rs"), "fn main() {}\n").unwrap();
    fs::write(dir.join("dist/hello"), vec![0u8; 3000]).unwrap();
    fs::write(dir.join("src/lib.rs"), "").unwrap();
    fs::write(dir.join("notes.img"), "disk").unwrap();
    fs::write(outside.join("keep"), "the checkout").unwrap();
    // As `_build/<target>/uni` links to the uni checkout.
    std::os::unix::fs::symlink(&outside, dir.join("_build/unix/uni")).unwrap();

    let o = run_uni(&dir, &["clean"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("Removed _build (2 files"), "{err}");
    assert!(err.contains("Removed dist (1 files, 2.9KiB)"), "{err}");
    assert!(!dir.join("_build").exists() && !dir.join("dist").exists());
    for kept in ["unikernel.toml", "src/lib.rs", "notes.img"] {
        assert!(dir.join(kept).exists(), "{kept} was removed");
    }
    assert!(outside.join("keep").exists(), "clean followed the link");

    let o = run_uni(&dir, &["clean"]);
    assert!(o.status.success());
    assert!(text(&o).1.contains("nothing to remove"), "{}", text(&o).1);

    // Without a unikernel.toml, nothing is touched.
    fs::remove_file(dir.join("unikernel.toml")).unwrap();
    fs::create_dir(dir.join("dist")).unwrap();
    let o = run_uni(&dir, &["clean"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("no `unikernel.toml` here"),
        "{}",
        text(&o).1
    );
    assert!(dir.join("dist").exists());
}

/// `error:` is bold red where colour is on, decided as cargo decides: CLICOLOR_FORCE forces it
/// (stderr is a pipe here), NO_COLOR and CLICOLOR=0 turn it off; a pipe alone gets none.
#[test]
fn errors_are_coloured_as_cargo_colours_them() {
    let tmp = tempfile::tempdir().unwrap();
    let red = "\x1b[1;31merror\x1b[0m: no `unikernel.toml` here";
    let run = |env: &[(&str, &str)]| {
        let mut c = uni_tests::uni(tmp.path(), &["build"]);
        c.env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        text(&o).1
    };
    assert!(
        run(&[("CLICOLOR_FORCE", "1")]).starts_with(red),
        "{:?}",
        run(&[("CLICOLOR_FORCE", "1")])
    );
    for env in [
        &[][..],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
        &[("CLICOLOR", "0")],
    ] {
        let err = run(env);
        assert!(
            err.starts_with("error: no `unikernel.toml` here"),
            "{env:?}: {err:?}"
        );
    }
    // A config error too: its title and the closing line.
    fs::write(
        tmp.path().join("unikernel.toml"),
        "[unikernel]\nschema = 1\nname = 5\n",
    )
    .unwrap();
    let err = run(&[("CLICOLOR_FORCE", "1")]);
    assert!(
        err.contains("\x1b[1;31merror\x1b[0m: could not load"),
        "{err:?}"
    );
    assert!(err.contains("\x1b["), "{err:?}");
    let err = run(&[]);
    assert!(!err.contains('\x1b'), "{err:?}");
}
