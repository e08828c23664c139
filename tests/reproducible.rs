//! Reproducible from any directory: the same sources, in two checkouts at different places,
//! build a byte-identical `hello.xen`, identical build records and xl files that differ only in
//! the kernel path. One build is the checkout's own, into the target directory the examples
//! share (`target/examples`, warm, with other apps' builds in it); the other is a copy of the
//! checkout at another place and depth, into a target directory of its own, from scratch
//! (`core` included). Both run with the network cut off where the machine allows it
//! (`unshare -rn`): a fresh example directory builds offline once the registry cache is filled
//! (`.ci/setup`). It takes one xen-arm build of hello from scratch, about 30–40 s, and one
//! warm build.

use std::path::{Path, PathBuf};
use std::process::Command;

use uni_tests::{root, text, uni};

/// The files of the checkout as they are in the working tree: tracked and new, not ignored
/// (`git ls-files`), so that `_build/`, `dist/` and `target/` stay behind.
fn copy_checkout(to: &Path) {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root())
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git ls-files: {}", text(&out).1);
    for rel in out.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).expect("UTF-8 paths"));
        let from = root().join(rel);
        if !from.is_file() {
            continue; // deleted in the working tree, or a submodule
        }
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&from, &dest).unwrap_or_else(|e| panic!("copying {}: {e}", rel.display()));
    }
}

/// Whether this machine lets us make a network namespace of our own.
pub fn can_unshare_net() -> bool {
    Command::new("unshare")
        .args(["-rn", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Both tests build the checkout's own examples/hello (in place, into `target/examples`, for
/// different boards): one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Build {
    image: Vec<u8>,
    xl: String,
    buildinfo: String,
    dist: PathBuf,
}

/// `uni build --target xen-arm` of hello in the checkout at `home`, into `target_dir`.
fn build_hello(home: &Path, target_dir: &Path, offline: bool) -> Build {
    let app = home.join("examples/hello");
    let mut cmd = uni(&app, &["build", "--target", "xen-arm"]);
    cmd.env("UNI_HOME", home)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let o = if offline {
        // the same command, in a network namespace with only `lo`: no registry
        let mut un = Command::new("unshare");
        un.arg("-rn").arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => un.env(k, v),
                None => un.env_remove(k),
            };
        }
        un.current_dir(&app).output().expect("unshare runs")
    } else {
        cmd.output().expect("uni runs")
    };
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "uni build in {} failed{}:\n{out}\n{err}",
        home.display(),
        if offline {
            " with the network cut off (has .ci/setup run `cargo fetch`?)"
        } else {
            ""
        }
    );
    let dist = app.join("dist");
    Build {
        image: std::fs::read(dist.join("hello.xen")).unwrap(),
        xl: std::fs::read_to_string(dist.join("hello.xl")).unwrap(),
        buildinfo: std::fs::read_to_string(dist.join("hello.buildinfo")).unwrap(),
        dist,
    }
}

#[test]
fn hello_xen_is_the_same_from_two_directories() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    // the checkout itself, and a copy at another name and depth
    let copy = tmp.path().join("b/elsewhere/deeper/checkout");
    copy_checkout(&copy);
    let homes = [root(), copy];
    let target_dirs = [root().join("target/examples"), tmp.path().join("target")];
    let offline = can_unshare_net();
    if !offline {
        eprintln!(
            "note: no network namespace here (unshare -rn failed): building with the network"
        );
    }
    let builds: Vec<Build> = homes
        .iter()
        .zip(&target_dirs)
        .map(|(home, target_dir)| {
            let started = std::time::Instant::now();
            let b = build_hello(home, target_dir, offline);
            eprintln!(
                "built {} into {} in {:.1}s",
                b.dist.join("hello.xen").display(),
                target_dir.display(),
                started.elapsed().as_secs_f64()
            );
            b
        })
        .collect();
    let [a, b] = &builds[..] else { unreachable!() };

    let differing = a.image.iter().zip(&b.image).filter(|(x, y)| x != y).count();
    assert!(
        a.image == b.image,
        "hello.xen differs between {} and {}: {} vs {} bytes, {differing} bytes differ",
        homes[0].display(),
        homes[1].display(),
        a.image.len(),
        b.image.len()
    );

    // the xl files name their own image, and nothing else differs
    let kernel = |x: &Build| {
        x.xl.replace(
            &format!("\"{}\"", x.dist.join("hello.xen").display()),
            "\"KERNEL\"",
        )
    };
    assert!(kernel(a).contains("kernel = \"KERNEL\""), "{}", a.xl);
    assert_eq!(
        kernel(a),
        kernel(b),
        "the xl files differ beyond the kernel path"
    );

    // the build records are whole and identical, but for the commit that only the checkout
    // (a git repository; the copy is not one) can name
    let without_commit = |r: &str| {
        r.lines()
            .filter(|l| !l.starts_with("uni-commit = "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        without_commit(&a.buildinfo),
        without_commit(&b.buildinfo),
        "the build records differ"
    );
    let info = fields(&a.buildinfo);
    for key in [
        "format",
        "name",
        "target",
        "triple",
        "board",
        "uni",
        "rust-toolchain",
        "core",
        "image",
        "image-sha256",
        "config-sha256",
        "lockfile-sha256",
        "version", // [rustc]
        "commit-hash",
    ] {
        assert!(
            info.iter().any(|(k, _)| k == key),
            "no `{key}` in\n{}",
            a.buildinfo
        );
    }
    let field = |k: &str| {
        info.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("triple"), Some("armv7a-none-eabihf"));
    let digest = sha256_hex(&a.image);
    assert_eq!(field("image-sha256"), Some(digest.as_str()));
    assert!(field("version").is_some_and(|v| v.starts_with("rustc ")));
    eprintln!("hello.xen sha256 {digest} from both directories");
}

/// The `key = value` lines of a build record, values unquoted.
fn fields(record: &str) -> Vec<(String, String)> {
    record
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Apps anywhere build with the same flags for every crate but their own: an app outside the
/// checkout, built into the target directory the examples use on a board, compiles its own
/// crates and none of core's, and hello built after it is still fresh (issue #17: before, the
/// outside app's path in the build's RUSTFLAGS made the two rebuild each other's dependencies,
/// core included). A copy of hello in a temporary directory; about 10 s once hello is built.
#[test]
fn an_app_elsewhere_shares_the_examples_dependencies() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let board = "cubieboard2";
    let build = |dir: &Path| {
        let o = uni_tests::uni_on(board, dir, &["build", "--target", "xen-arm", "-v"])
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "{}:\n{out}\n{err}", dir.display());
        err
    };
    let hello = root().join("examples/hello");
    build(&hello);
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("hello");
    std::fs::create_dir_all(copy.join("src")).unwrap();
    for f in ["unikernel.toml", "src/lib.rs"] {
        std::fs::copy(hello.join(f), copy.join(f)).unwrap();
    }
    std::fs::write(
        copy.join("Cargo.toml"),
        format!(
            "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nuni-runtime = {{ path = {:?} }}\n\n[workspace]\n",
            root().join("runtime").display().to_string()
        ),
    )
    .unwrap();
    let err = build(&copy);
    assert!(err.contains("Compiling hello v0.1.0"), "{err}");
    assert!(
        !err.contains("Compiling core v"),
        "core compiled again:\n{err}"
    );
    let generated = std::fs::read_to_string(copy.join("_build/xen-arm/Cargo.toml")).unwrap();
    assert!(
        generated.contains(&format!(
            "[profile.release.package.hello]\nrustflags = [\"--remap-path-prefix={}/=\"]",
            tmp.path().display()
        )),
        "{generated}"
    );
    let err = build(&hello);
    assert!(!err.contains("Compiling "), "hello rebuilt:\n{err}");
}
