//! `uni kv` through the real binary: format, put, get byte-identical, ls, rm, log, and the
//! images it refuses (not a store, zeroed, damaged) with errors naming the image.

use std::fs;
use std::path::Path;
use std::process::{Output, Stdio};

use uni_tests::{pattern, run_uni, text, uni};

fn kv(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["kv", "--disk", "disk.img"];
    all.extend(args);
    run_uni(dir, &all)
}

fn ok(o: &Output, what: &str) -> String {
    let (out, err) = text(o);
    assert!(o.status.success(), "{what}: {err}");
    out
}

fn fails(o: &Output, what: &str) -> String {
    let (_, err) = text(o);
    assert!(!o.status.success(), "{what} succeeded");
    err
}

#[test]
fn format_put_get_ls_rm_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = kv(dir, &["format", "--size", "4M"]);
    ok(&o, "format");
    assert!(text(&o).1.contains("Formatted disk.img"), "{}", text(&o).1);
    assert_eq!(fs::metadata(dir.join("disk.img")).unwrap().len(), 4 << 20);

    // a value of 1.5 MiB from a file, one from stdin
    let blob = pattern(1_500_000, 3);
    fs::write(dir.join("blob.bin"), &blob).unwrap();
    ok(
        &kv(dir, &["put", "photos/blob.bin", "blob.bin"]),
        "put file",
    );
    let mut child = uni(
        dir,
        &["kv", "--disk", "disk.img", "put", "notes/today", "-"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"remember the milk\n")
        .unwrap();
    ok(&child.wait_with_output().unwrap(), "put stdin");

    // get: stdout and -o, byte for byte
    let o = kv(dir, &["get", "photos/blob.bin"]);
    ok(&o, "get");
    assert!(o.stdout == blob, "get returned {} bytes", o.stdout.len());
    ok(&kv(dir, &["get", "notes/today", "-o", "out.txt"]), "get -o");
    assert_eq!(
        fs::read(dir.join("out.txt")).unwrap(),
        b"remember the milk\n"
    );

    // ls: the root, a dictionary, long, recursive
    assert_eq!(ok(&kv(dir, &["ls"]), "ls"), "notes/\nphotos/\n");
    assert_eq!(
        ok(&kv(dir, &["ls", "photos"]), "ls photos"),
        "photos/blob.bin\n"
    );
    let long = ok(&kv(dir, &["ls", "-l", "photos/"]), "ls -l");
    assert!(
        long.contains("1500000") && long.contains(" UTC ") && long.contains("photos/blob.bin"),
        "{long}"
    );
    assert_eq!(
        ok(&kv(dir, &["ls", "-r"]), "ls -r"),
        "notes/today\nphotos/blob.bin\n"
    );

    // rm, then log shows every commit, newest first, each naming its parent
    ok(&kv(dir, &["rm", "notes"]), "rm");
    assert_eq!(ok(&kv(dir, &["ls"]), "ls after rm"), "photos/\n");
    let log = ok(&kv(dir, &["log"]), "log");
    let c3 = log.find("commit 3 ").expect(&log);
    let c2 = log.find("commit 2 ").expect(&log);
    let c1 = log.find("commit 1 ").expect(&log);
    assert!(c3 < c2 && c2 < c1, "{log}");
    assert!(log.contains("    remove notes\n"), "{log}");
    assert!(
        log.contains("    set notes/today (18 bytes, sha256 "),
        "{log}"
    );
    assert!(
        log.contains("    set photos/blob.bin (1500000 bytes, sha256 "),
        "{log}"
    );
    assert!(log.contains("Parent: none (the first commit)"), "{log}");
    let hash = |at: usize| log[at..].split_whitespace().nth(2).unwrap().to_string();
    assert!(
        log.contains(&format!("Parent: {}", hash(c2))),
        "commit 3's parent is 2: {log}"
    );
    assert!(
        log.contains(&format!("Parent: {}", hash(c1))),
        "commit 2's parent is 1: {log}"
    );

    // errors name the image and the key
    let err = fails(&kv(dir, &["get", "nope"]), "get nope");
    assert!(
        err.contains("disk.img") && err.contains("\"nope\""),
        "{err}"
    );

    // format refuses a store without --force; with it, the store is empty
    let err = fails(&kv(dir, &["format"]), "reformat");
    assert!(
        err.contains("already a kv_rw store") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(ok(&kv(dir, &["ls"]), "still there"), "photos/\n");
    ok(&kv(dir, &["format", "--force"]), "format --force");
    assert_eq!(ok(&kv(dir, &["ls"]), "ls after format"), "");
    assert!(ok(&kv(dir, &["log"]), "log after format").contains("no commits yet"));
}

#[test]
fn images_that_are_not_stores_are_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // zeroed
    fs::write(dir.join("disk.img"), vec![0u8; 1 << 20]).unwrap();
    for cmd in [
        &["ls"][..],
        &["get", "k"],
        &["log"],
        &["put", "k", "disk.img"],
        &["rm", "k"],
    ] {
        let err = fails(&kv(dir, cmd), "a zeroed image");
        assert!(
            err.contains("disk.img: not a uni kv_rw store"),
            "{cmd:?}: {err}"
        );
        assert!(err.contains("zeroed"), "{err}");
        assert!(
            err.contains("uni kv --disk disk.img format"),
            "says how to make one: {err}"
        );
    }
    assert!(fs::read(dir.join("disk.img"))
        .unwrap()
        .iter()
        .all(|&b| b == 0));
    // a zeroed image is blank: format takes it without --force (the image as its argument)
    ok(
        &run_uni(dir, &["kv", "format", "disk.img"]),
        "format a zeroed image",
    );
    ok(&kv(dir, &["ls"]), "ls after format");

    // another format: refused for reading and for formatting, untouched
    let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
    elf.resize(256 << 10, 0x5a);
    fs::write(dir.join("disk.img"), &elf).unwrap();
    let err = fails(&kv(dir, &["ls"]), "an ELF image");
    assert!(err.contains("disk.img: not a uni kv_rw store"), "{err}");
    assert!(err.contains("7f 45 4c 46 02 01 01 00"), "{err}");
    let err = fails(&kv(dir, &["format"]), "format over an ELF image");
    assert!(
        err.contains("not a kv_rw store") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(fs::read(dir.join("disk.img")).unwrap(), elf);

    // no image, no --disk
    let err = fails(
        &run_uni(dir, &["kv", "--disk", "missing.img", "ls"]),
        "missing",
    );
    assert!(err.contains("no disk image missing.img"), "{err}");
    let err = fails(&run_uni(dir, &["kv", "ls"]), "no --disk");
    assert!(err.contains("--disk"), "{err}");
}

#[test]
fn a_damaged_image_is_refused_naming_the_sector() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(&kv(dir, &["format", "--size", "1M"]), "format");
    let value = pattern(5000, 9);
    fs::write(dir.join("v"), &value).unwrap();
    ok(&kv(dir, &["put", "data/v", "v"]), "put");
    let mut image = fs::read(dir.join("disk.img")).unwrap();
    let at = image
        .windows(64)
        .position(|w| w == &value[2000..2064])
        .unwrap();
    image[at] ^= 0x20;
    fs::write(dir.join("disk.img"), &image).unwrap();
    let err = fails(&kv(dir, &["ls"]), "a damaged image");
    assert!(
        err.contains(&format!(
            "disk.img: the kv_rw store is damaged at sector {}",
            at / 512
        )),
        "{err}"
    );
    assert!(
        err.contains("\"data/v\""),
        "says what the sector held: {err}"
    );
    // and format leaves a damaged store alone unless forced
    let err = fails(&kv(dir, &["format"]), "format over damage");
    assert!(err.contains("--force"), "{err}");
}
