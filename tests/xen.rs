//! xen-arm end to end: `uni build` writes a valid zImage and xl file, reproducibly, and
//! `uni run` boots the examples on real Xen (Debian's Xen 4.17 on the emulated board). Boots
//! run one after another in a single test: two QEMUs on a 2-core machine would only slow each
//! other down.

use std::fs;
use std::process::Output;

use uni_tests::{example, full_boards, run_uni, smoke_boards, text, uni_on};

const ZIMAGE_MAGIC: u32 = 0x016f_2818;

/// hello.xen measured 49,760 bytes (cubieboard2) and 50,096 (qemu-virt) on 2026-12-08 01:40Z,
/// built in Thumb-2 (bench/README.md, "Image size per `tls` choice"; it was about 70 KiB in
/// A32). The ceiling, 56 KiB, leaves about 14% for growth; an A32 build again fails it.
const HELLO_CEILING: usize = 56 * 1024;

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
        image.len() <= HELLO_CEILING,
        "hello.xen is {} bytes, over its ceiling of {HELLO_CEILING}",
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

    // The same inputs give the same bytes from a fresh target directory, in another place:
    // tests/reproducible.rs builds this hello.xen again from scratch in a copy of the checkout.
}

#[test]
fn examples_boot_on_real_xen() {
    for board in smoke_boards() {
        let board = board.as_str();
        // hello: the four lines about a second apart in guest time (the runtime stamps each console
        // line with its monotonic clock under --uni-timestamps), then poweroff → exit 0. Its
        // --uni-boot-info report comes first: the boot stages, and the app's start in time.
        let o = boot(
            board,
            "hello",
            &["--", "--uni-timestamps", "--uni-boot-info"],
        );
        let (out, err) = text(&o);
        let all: Vec<(f64, &str)> = out
            .lines()
            .map(|l| {
                let (t, msg) = l
                    .strip_prefix('[')
                    .and_then(|r| r.split_once("] "))
                    .unwrap_or_else(|| panic!("unstamped line {l:?}"));
                (t.trim().parse().unwrap(), msg)
            })
            .collect();
        let (report, stamped): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|(_, m)| m.starts_with("uni: "));
        check_boot_report(board, &report.iter().map(|(_, m)| *m).collect::<Vec<_>>());
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

        // The smoke board (qemu-virt, unless UNI_BOARDS names it) stops here: hello has shown
        // that its Xen boots the guest, stamps its clock and powers it off. crash and xeninfo
        // run the same guest code on every hypervisor, so CI boots them on the full boards only
        // (`UNI_BOARDS=all` runs them everywhere), a board boot each less.
        if !full_boards().iter().any(|b| b == board) {
            continue;
        }

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

        // crash with --help in extra=: the runtime lists the keys it accepts (the app's, from
        // its args device, and the Xen platform's) on the console and powers off → exit 0,
        // before the app starts. One boot more on the full boards (about 15 s).
        let o = boot(board, "crash", &["--", "--help"]);
        let (out, err) = text(&o);
        assert!(out.starts_with("crash: boot arguments"), "{out}\n{err}");
        for want in [
            "--in-task ",
            "panic in a spawned task instead of the app's own (app; a flag, off unless given)",
            "--uni-timestamps ",
            "--uni-boot-info ",
            "--uni-seed=TEXT",
            "--help ",
        ] {
            assert!(out.contains(want), "no {want:?} in:\n{out}");
        }
        assert!(
            !out.contains("about to panic"),
            "the app did not start: {out}"
        );
        assert_eq!(o.status.code(), Some(0), "--help powers off: {err}");
        assert!(err.contains("powered off"), "{err}");

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

/// The stages `--uni-boot-info` names, in order (runtime/src/platform/xen/mod.rs).
const BOOT_STAGES: [&str; 11] = [
    ".bss zeroed",
    "MMU + caches on",
    "console",
    "device tree",
    "mappings",
    "heap",
    "shared_info",
    "GIC",
    "xenstore",
    "boot args",
    "app start",
];

/// Generous ceiling on the guest clock from the first instruction to hello's start. The issue's
/// goal is 10 ms; on 2026-12-07 hello started after 5.2-5.6 ms on qemu-virt32 and qemu-virt at
/// load average 1.5, and after 24 ms at load average 3.5 (bench/README.md, xen-boot): most of it
/// is QEMU translating code that runs once, and the guest clock is wall time, so a busy host (a
/// build beside the test) stretches it. 100 ms is 4x the worst figure seen and still well below
/// a boot that waits on something (a 100 ms poll, a long entropy calibration in the boot path).
const HELLO_START_CEILING_US: u64 = 100_000;

/// Checks hello's `--uni-boot-info` lines: every stage, in order, with times that never go back,
/// and the app's start within [`HELLO_START_CEILING_US`].
fn check_boot_report(board: &str, lines: &[&str]) {
    let all = lines.join("\n");
    let stages = lines
        .iter()
        .find_map(|l| l.strip_prefix("uni: boot stages ("))
        .and_then(|l| l.split_once("): ").map(|(_, s)| s))
        .unwrap_or_else(|| panic!("{board}: no boot stages line in\n{all}"));
    let mut last = 0u64;
    let parsed: Vec<(&str, u64)> = stages
        .split(", ")
        .map(|st| {
            // "<name> <us since first instruction> (<the stage's own us>)"
            let (head, own) = st
                .rsplit_once(" (")
                .unwrap_or_else(|| panic!("{board}: stage {st:?}"));
            let (name, at) = head
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("{board}: stage {st:?}"));
            let at: u64 = at.parse().unwrap_or_else(|_| panic!("{board}: {st:?}"));
            let own: u64 = own
                .trim_end_matches(')')
                .parse()
                .unwrap_or_else(|_| panic!("{board}: {st:?}"));
            assert!(
                at >= last,
                "{board}: stage {name} ends before the one before it: {stages}"
            );
            assert_eq!(own, at - last, "{board}: stage {name}'s own time: {stages}");
            last = at;
            (name, at)
        })
        .collect();
    let names: Vec<&str> = parsed.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, BOOT_STAGES, "{board}: {stages}");
    let started: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("uni: app started after "))
        .and_then(|l| l.strip_suffix(" us (guest clock)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{board}: no app start line in\n{all}"));
    assert_eq!(
        started, last,
        "{board}: the app start line and the last stage differ"
    );
    assert!(
        (1..=HELLO_START_CEILING_US).contains(&started),
        "{board}: hello started {started} us after its first instruction (ceiling {HELLO_START_CEILING_US} us)"
    );
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
