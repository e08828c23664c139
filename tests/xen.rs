//! xen-arm end to end: `uni build` writes a valid zImage and xl file, reproducibly, and
//! `uni run` boots the examples on real Xen (Debian's Xen 4.17 on the emulated board). Boots
//! run one after another in a single test: two QEMUs on a 2-core machine would only slow each
//! other down.

use std::fs;
use std::process::Output;

use uni_tests::{example, root, run_uni, smoke_boards, text, uni, uni_on};

const ZIMAGE_MAGIC: u32 = 0x016f_2818;

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn boot(board: &str, name: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--target", "xen-arm", "--timeout", "240"];
    args.extend_from_slice(extra);
    let o = uni_on(board, &example(name), &args).output().unwrap();
    let (out, err) = text(&o);
    eprintln!(
        "--- {name} on {board}: exit {:?}\n--- stdout\n{out}--- stderr\n{err}",
        o.status.code()
    );
    o
}

#[test]
fn build_writes_a_reproducible_zimage_and_xl() {
    let dir = example("hello");
    let o = run_uni(&dir, &["build", "--target", "xen-arm"]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("Built dist/hello.xen ("),
        "prints the image size: {err}"
    );
    let image = fs::read(dir.join("dist/hello.xen")).unwrap();
    assert_eq!(word(&image, 0x24), ZIMAGE_MAGIC);
    assert_eq!(word(&image, 0x28), 0x4000_8000, "start address");
    assert_eq!(
        word(&image, 0x2c),
        0x4000_8000 + image.len() as u32,
        "end address = start + file size"
    );
    assert!(
        image.len() < 256 * 1024,
        "hello.xen is {} bytes",
        image.len()
    );

    let xl = fs::read_to_string(dir.join("dist/hello.xl")).unwrap();
    for line in [
        "name = \"hello\"",
        "memory = 32",
        "vcpus = 1",
        "on_crash = \"preserve\"",
    ] {
        assert!(
            xl.lines().any(|l| l == line),
            "{line:?} missing from hello.xl:\n{xl}"
        );
    }
    assert!(
        xl.contains(&format!(
            "kernel = \"{}\"",
            dir.join("dist/hello.xen").display()
        )),
        "{xl}"
    );

    // The same inputs give the same bytes, even from a fresh target directory.
    let other = root().join("target/examples-repro");
    let _ = fs::remove_dir_all(&other);
    let o = uni(&dir, &["build", "--target", "xen-arm"])
        .env("CARGO_TARGET_DIR", &other)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let again = fs::read(dir.join("dist/hello.xen")).unwrap();
    assert!(
        again == image,
        "two builds of hello.xen differ ({} vs {} bytes)",
        image.len(),
        again.len()
    );
    let _ = fs::remove_dir_all(&other);
}

#[test]
fn examples_boot_on_real_xen() {
    for board in smoke_boards() {
        let board = board.as_str();
        // hello: the four lines about a second apart in guest time (the runtime stamps each console
        // line with its monotonic clock under --uni-timestamps), then poweroff → exit 0.
        let o = boot(board, "hello", &["--", "--uni-timestamps"]);
        let (out, err) = text(&o);
        let stamped: Vec<(f64, &str)> = out
            .lines()
            .map(|l| {
                let (t, msg) = l
                    .strip_prefix('[')
                    .and_then(|r| r.split_once("] "))
                    .unwrap_or_else(|| panic!("unstamped line {l:?}"));
                (t.trim().parse().unwrap(), msg)
            })
            .collect();
        let msgs: Vec<&str> = stamped.iter().map(|(_, m)| *m).collect();
        assert_eq!(msgs, ["hello", "world", "hello", "world"], "{err}");
        for w in stamped.windows(2) {
            let gap = w[1].0 - w[0].0;
            assert!(
                (0.99..1.5).contains(&gap),
                "guest-clock gap of {gap:.3} s between {:?} and {:?}",
                w[0].1,
                w[1].1
            );
        }
        assert_eq!(o.status.code(), Some(0), "hello powers off");
        assert!(err.contains("powered off"), "{err}");

        // crash: the panic's location and message on the console, then a crash → exit 1.
        let o = boot(board, "crash", &[]);
        let (out, err) = text(&o);
        assert!(out.contains("crash: about to panic\n"), "{out}");
        assert!(
            out.contains("panicked at crash/src/lib.rs:13:5:\ncrash: deliberate panic at depth 3"),
            "{out}\n{err}"
        );
        assert_eq!(o.status.code(), Some(1), "a panic crashes the domain");
        assert!(err.contains("crashed"), "{err}");
        // however soon it crashed after `xl create`, the board saw its domain: a Started line, and
        // the register dump's PC (xenctx needs the domid)
        assert!(err.contains("Started crash as domain 1 after"), "{err}");
        assert!(err.contains("crash crashed at PC "), "{err}");

        // xeninfo: the Xen store and a boot argument from the xl file's extra= line.
        let o = boot(board, "xeninfo", &[]);
        let (out, err) = text(&o);
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "xenstore: name = xeninfo",
                "xenstore: domid = 1",
                "xenstore: data/uni-greeting = written by the guest",
                "xenstore: data/ holds uni-greeting",
                "xenstore: no/such/key -> xenstore: no such path (ENOENT)",
                "boot argument: greeting = hello-from-xl",
            ],
            "{err}"
        );
        assert_eq!(o.status.code(), Some(0));
    }
}

#[test]
fn timeout_stops_the_board() {
    // A zero timeout stops QEMU as soon as it starts: exit code 124, as timeout(1) has it.
    let o = run_uni(
        &example("hello"),
        &["run", "--target", "xen-arm", "--timeout", "0"],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(124), "{err}");
}
