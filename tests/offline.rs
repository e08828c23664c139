//! Offline after setup: an app outside the checkout, new to this machine (no `_build/` yet),
//! builds with the network cut off: its generated crate's lockfile is seeded from the
//! workspace's Cargo.lock, so cargo needs nothing from the registry that `.ci/setup` (`cargo
//! fetch`) has not put in the cache. The network is cut with a network namespace of its own,
//! `unshare -rn`: only `lo`, so the registry is unreachable. (tests/reproducible.rs does the
//! same for examples inside the checkout, on xen-arm.)

use std::path::Path;
use std::process::Command;

use uni_tests::{example, root, text, uni};

fn can_unshare_net() -> bool {
    Command::new("unshare")
        .args(["-rn", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A copy of examples/hello at `to`, naming uni-runtime by its path in the checkout.
fn copy_hello(to: &Path) {
    let from = example("hello");
    std::fs::create_dir_all(to.join("src")).unwrap();
    std::fs::copy(from.join("unikernel.toml"), to.join("unikernel.toml")).unwrap();
    std::fs::copy(from.join("src/lib.rs"), to.join("src/lib.rs")).unwrap();
    // its own manifest: the example's inherits from the workspace it is no longer in
    let manifest = format!(
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\nuni-runtime = {{ path = \"{}\" }}\n",
        root().join("runtime").display()
    );
    std::fs::write(to.join("Cargo.toml"), manifest).unwrap();
}

#[test]
fn a_new_app_builds_with_the_network_cut_off() {
    if !can_unshare_net() {
        eprintln!("SKIPPED: this machine refuses a network namespace of our own (unshare -rn)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("hello-elsewhere");
    copy_hello(&app);
    // `uni build`, as the test helper runs it, inside `unshare -rn`
    let cmd = uni(&app, &["build", "--target", "unix"]);
    let mut un = Command::new("unshare");
    un.arg("-rn").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => un.env(k, v),
            None => un.env_remove(k),
        };
    }
    let started = std::time::Instant::now();
    let o = un.current_dir(&app).output().expect("unshare runs");
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "uni build failed with the network cut off (has .ci/setup run `cargo fetch`?):\n{out}\n{err}"
    );
    eprintln!("built offline in {:.1}s", started.elapsed().as_secs_f64());
    assert!(app.join("dist/hello").is_file());
    assert!(app.join("dist/hello.buildinfo").is_file());
    // seeded from the workspace: cargo kept its versions
    let lock = std::fs::read_to_string(app.join("_build/unix/Cargo.lock")).unwrap();
    let ws = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let smoltcp = |l: &str| {
        l.split("[[package]]")
            .find(|p| p.contains("name = \"smoltcp\""))
            .map(|p| {
                // its version and checksum (the dependency list follows the features in use)
                p.lines()
                    .filter(|l| l.starts_with("version") || l.starts_with("checksum"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
    };
    assert!(smoltcp(&lock).is_some(), "{lock}");
    assert_eq!(
        smoltcp(&lock),
        smoltcp(&ws),
        "smoltcp is locked differently"
    );
    // an app outside the checkout names uni's crates by their real paths: no link
    assert!(!app.join("_build/unix/uni").exists());
}
