//! The command line itself: help, version, completions, and configure's dry-run and check modes.

use std::fs;

use uni_tests::{example, run_uni, text};

#[test]
fn help_carries_examples_for_every_command() {
    let dir = example("hello");
    for args in [
        &["--help"][..],
        &["configure", "--help"],
        &["build", "--help"],
        &["run", "--help"],
        &["deploy", "--help"],
        &["ps", "--help"],
        &["stop", "--help"],
        &["logs", "--help"],
        &["lan", "--help"],
        &["fetch", "--help"],
        &["kv", "--help"],
        &["completions", "--help"],
    ] {
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
    fs::write(
        dir.join("unikernel.toml"),
        format!(
            "[unikernel]\nschema = 1\nname = \"hello\"\napp = {:?}\n\n[devices.console]\nkind = \"console\"\n\n[devices.clock]\nkind = \"clock\"\n",
            example("hello")
        ),
    )
    .unwrap();

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
