//! blkfront on real Xen: `kind = "block"` on the emulated board, where the disk image on the
//! host is dom0's virtio disk and blkback serves it to the guest. What the guest writes is in the
//! host file once the board has stopped, and a second boot of the guest reads it back. Two boots
//! of the board per board in `UNI_BOARDS` (CI: the Cubieboard 2's emulation), one after the other.

use std::path::Path;

use uni_tests::{full_boards, root, text, uni_on};

/// tests/block-app's pattern: the byte at `offset` for `seed`.
fn pattern(seed: u64, offset: u64) -> u8 {
    (offset.wrapping_mul(31).wrapping_add(seed.wrapping_mul(7)) % 251) as u8
}

fn config(dir: &Path) {
    std::fs::write(
        dir.join("unikernel.toml"),
        format!(
            "[unikernel]\nschema = 1\nname = \"block-app\"\napp = {:?}\n\n[devices.console]\nkind = \"console\"\n\n\
             [devices.disk]\nkind = \"block\"\nfile = \"disk.img\"\n\n[devices.args]\nkind = \"args\"\n",
            root().join("tests/block-app").display().to_string()
        ),
    )
    .unwrap();
}

fn run(board: &str, dir: &Path, args: &[&str]) -> (bool, String, String) {
    let mut a = vec!["run", "--target", "xen-arm", "--timeout", "240", "--"];
    a.extend_from_slice(args);
    let o = uni_on(board, dir, &a).output().unwrap();
    let (out, err) = text(&o);
    eprintln!(
        "--- {args:?} on {board}: exit {:?}\n{out}{err}",
        o.status.code()
    );
    (o.status.success(), out, err)
}

#[test]
fn blkfront_writes_land_in_the_host_file_and_survive_a_reboot() {
    for board in full_boards() {
        let board = board.as_str();
        let tmp = tempfile::tempdir().unwrap();
        config(tmp.path());
        let img = tmp.path().join("disk.img");

        // an image that is not whole sectors is refused before the board boots
        std::fs::write(&img, vec![0u8; 1000]).unwrap();
        let (ok, _, err) = run(board, tmp.path(), &[]);
        assert!(!ok);
        assert!(
            err.contains("is 1000 bytes") && err.contains("512-byte sectors"),
            "{err}"
        );
        assert!(!err.contains("Booting"), "refused before booting: {err}");

        // 4 MiB of 0xee, so that what the guest did not write is told apart from zeros
        std::fs::write(&img, vec![0xeeu8; 4 << 20]).unwrap();
        let seed = 9u64;
        let sectors = 2048u64; // 1 MiB: 24 requests of at most 11 pages, all in flight at once
        let (ok, out, err) = run(
            board,
            tmp.path(),
            &[
                &format!("--seed={seed}"),
                &format!("--sectors={sectors}"),
                "--parallel=64",
            ],
        );
        assert!(ok, "{out}{err}");
        for line in [
            "disk: 8192 sectors of 512 bytes",
            "wrote and flushed 2048 sectors",
            "read back 2048 sectors: all as written",
            "64 parallel 4 KiB reads and writes: all as written",
            "past the end: sectors 8192..8193 are past the end of the device (8192 sectors)",
            "unaligned: a transfer of 100 bytes is not a whole number of 512-byte sectors",
        ] {
            assert!(out.contains(line), "{line:?} missing from\n{out}");
        }
        assert!(
            err.contains("as dom0's virtio disk /guest/disk0"),
            "the run says where the disk is: {err}"
        );

        // the board has stopped: the bytes are in the file, and nothing else changed
        let bytes = std::fs::read(&img).unwrap();
        assert_eq!(bytes.len(), 4 << 20);
        let written = (sectors * 512) as usize;
        if let Some(i) = (0..written).find(|&i| bytes[i] != pattern(seed, i as u64)) {
            panic!(
                "byte {i} of the host file is {:#x}, not the pattern's {:#x}",
                bytes[i],
                pattern(seed, i as u64)
            );
        }
        assert!(
            bytes[written..].iter().all(|&b| b == 0xee),
            "the guest wrote past what it was told to"
        );

        // a new boot of the guest (and of the board) reads back what the first one wrote
        let (ok, out, err) = run(
            board,
            tmp.path(),
            &[
                "--mode=check",
                &format!("--seed={seed}"),
                &format!("--sectors={sectors}"),
            ],
        );
        assert!(ok, "{out}{err}");
        assert!(
            out.contains("read back 2048 sectors: all as written") && !out.contains("wrote"),
            "{out}"
        );
        assert_eq!(std::fs::read(&img).unwrap(), bytes, "a check only reads");
    }
}
