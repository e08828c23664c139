//! What `uni build` prints when the app does not fit its config, and when nothing compiles:
//! the real `uni` and cargo on small apps written outside the checkout.
//!
//! - A `start` with two devices swapped, on unix: rustc's errors point at
//!   `_build/unix/src/main.rs` and the app's `src/lib.rs` as the user's directory sees them,
//!   each error once, then one note with the signature unikernel.toml implies and where each
//!   device is declared. (The app and main crates compile; uni's crates are shared with the
//!   other unix tests: about 5 s.)
//! - An app without `#![no_std]`, on xen-arm: one line that says so, rustc's E0463 cascade and
//!   the target-feature warnings hidden. The app has no dependencies, so cargo stops after core
//!   and alloc; it lives at a fixed path, since the path is in the build's flags, so that core
//!   is built once per machine (about 35 s the first time, 3 s after).
//! - A no-op build of examples/hello prints no `Compiling` line (0.5 s after the other tests'
//!   build of it).

use std::path::{Path, PathBuf};

use uni_tests::{example, root, run_uni, text, uni_on};

/// A copy of examples/hello at `dir`, its Cargo.toml naming uni's runtime by path (as `uni new`
/// writes it), with `lib_rs` as its src/lib.rs.
fn hello_app(dir: &Path, lib_rs: &str, deps: bool) -> PathBuf {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::copy(
        example("hello").join("unikernel.toml"),
        dir.join("unikernel.toml"),
    )
    .unwrap();
    let dep = if deps {
        format!(
            "uni-runtime = {{ path = {:?} }}\n",
            root().join("runtime").display().to_string()
        )
    } else {
        String::new()
    };
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\n{dep}\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), lib_rs).unwrap();
    dir.to_path_buf()
}

/// `line:col` of the first `needle` in `text`, 1-based.
fn position(text: &str, needle: &str) -> String {
    let at = text.find(needle).expect("needle in text");
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{line}:{col}")
}

#[test]
fn a_wrong_start_signature_is_reported_in_the_users_paths_once_with_the_expected_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = std::fs::read_to_string(example("hello").join("src/lib.rs")).unwrap();
    let right = "pub async fn start(console: impl Console, clock: impl Clock)";
    assert!(lib.contains(right), "examples/hello's start changed");
    let swapped = lib.replace(
        right,
        "pub async fn start(clock: impl Clock, console: impl Console)",
    );
    let app = hello_app(&tmp.path().join("hello"), &swapped, true);
    let o = run_uni(&app, &["build", "--target", "unix"]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}\n{err}");
    // the app and its main compile: uni says so, once, and cargo's own lines stay hidden
    assert_eq!(
        err.matches("Compiling hello (target unix, release)")
            .count(),
        1,
        "{err}"
    );
    assert!(!err.contains("Compiling hello-unikernel v"), "{err}");

    // where: the generated main as the user's directory sees it, and the app's own file
    assert!(
        err.contains("--> _build/unix/src/main.rs:"),
        "the error names _build/unix/src/main.rs:\n{err}"
    );
    assert!(!err.contains("--> src/main.rs"), "{err}");
    assert!(
        err.contains("--> src/lib.rs:"),
        "the app's start, relative to the app:\n{err}"
    );
    // each error once: rustc reports both mismatches three times
    let headers: Vec<&str> = err.lines().filter(|l| l.starts_with("error[")).collect();
    assert_eq!(headers.len(), 2, "two distinct errors:\n{err}");
    assert_ne!(headers[0], headers[1], "{err}");
    assert_eq!(
        err.matches("= note: uni: the same error 2 more times, at _build/unix/src/main.rs:")
            .count(),
        2,
        "{err}"
    );
    // the note: the signature unikernel.toml implies, and where each argument comes from
    let toml = std::fs::read_to_string(app.join("unikernel.toml")).unwrap();
    let note = err
        .split("note: unikernel.toml gives `start` one argument per device")
        .nth(1)
        .unwrap_or_else(|| panic!("no signature note:\n{err}"));
    assert_eq!(
        err.matches("gives `start` one argument per device").count(),
        1,
        "{err}"
    );
    assert!(
        note.contains("pub async fn start(console: impl Console, clock: impl Clock) -> AppResult"),
        "{note}"
    );
    let console = note
        .find(&format!(
            "console: impl Console  from [devices.console] kind = \"console\", unikernel.toml:{}",
            position(&toml, "\"console\"")
        ))
        .unwrap_or_else(|| panic!("console's line in the note:\n{note}"));
    let clock = note
        .find(&format!(
            "clock: impl Clock      from [devices.clock] kind = \"clock\", unikernel.toml:{}",
            position(&toml, "\"clock\"")
        ))
        .unwrap_or_else(|| panic!("clock's line in the note:\n{note}"));
    assert!(console < clock, "declaration order:\n{note}");
    assert!(note.contains("docs/apps.md"), "{note}");
}

#[test]
fn an_app_without_no_std_gets_one_line_on_xen_arm() {
    // A directory of its own, so that two runs at once do not clash: an app's place reaches
    // only its own crate's flags (generated Cargo.toml's per-package rustflags), so the
    // dependencies built for the examples are reused, core's included.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("std-app");
    let app = hello_app(
        &dir,
        "//! An app that forgot `#![no_std]`.\npub async fn start() {}\n",
        false,
    );
    let o = uni_on("cubieboard2", &app, &["build", "--target", "xen-arm"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}\n{err}");
    assert!(
        err.contains(
            "error: `hello` does not declare `#![no_std]`, and xen-arm has no standard library: \
             add `#![no_std]` at the top of src/lib.rs"
        ),
        "{err}"
    );
    assert!(err.contains("The no_std rule"), "{err}");
    assert!(
        err.contains(&root().join("docs/apps.md").display().to_string()),
        "{err}"
    );
    // rustc's cascade and its misleading advice, and the board's target-feature warnings: -v
    assert!(!err.contains("-Zbuild-std"), "{err}");
    assert!(!err.contains("error[E0463]"), "{err}");
    assert!(!err.contains("-Ctarget-feature"), "{err}");
    assert!(!err.contains("warnings emitted"), "{err}");
}

#[test]
fn a_no_op_build_prints_no_compiling_line() {
    let hello = example("hello");
    let first = run_uni(&hello, &["build", "--target", "unix"]);
    assert!(first.status.success(), "{:?}", text(&first));
    let again = run_uni(&hello, &["build", "--target", "unix"]);
    let (out, err) = text(&again);
    assert!(again.status.success(), "{out}\n{err}");
    assert!(!err.contains("Compiling"), "{err}");
    assert!(!err.contains("Building"), "{err}");
    assert!(err.contains("Finished release build of hello"), "{err}");
}
