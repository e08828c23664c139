//! Bit flips are found at mount, naming the sector and what it held; an image that is not a
//! store is refused, saying what it looks like, and left as it was.

mod common;

use common::*;
use uni_kv::mem::MemBlock;
use uni_kv::MountError;
use uni_runtime::device::{KvError, KvRo, KvRw};

fn damaged(r: Result<MemStore, MountError>) -> (u64, String) {
    match r {
        Err(MountError::Damaged { sector, what }) => (sector, what),
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("a damaged store mounted"),
    }
}

#[test]
fn a_zeroed_image_is_not_a_store_and_is_left_alone() {
    let disk = MemBlock::new(128, 512);
    let e = mount(&disk).expect_err("a blank disk does not mount");
    assert!(matches!(e, MountError::NotAStore(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("not a uni kv_rw store"), "{msg}");
    assert!(msg.contains("zeroed"), "{msg}");
    assert!(
        disk.image().iter().all(|&b| b == 0),
        "mount wrote to a disk it refused"
    );
}

#[test]
fn a_foreign_image_is_not_a_store_and_says_what_it_starts_with() {
    let disk = MemBlock::new(128, 512);
    disk.poke(0, b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0");
    disk.poke(512, &pattern(512, 1));
    let image = disk.image();
    let msg = mount(&disk)
        .expect_err("an ELF file is no store")
        .to_string();
    assert!(msg.contains("not a uni kv_rw store"), "{msg}");
    assert!(msg.contains("7f 45 4c 46 01 01 01 00"), "{msg}");
    assert!(msg.contains("\\x7fELF"), "{msg}");
    assert!(
        msg.contains("UNIKVRW"),
        "names the magic it looked for: {msg}"
    );
    assert_eq!(disk.image(), image);
    // too small for anything
    let tiny = MemBlock::new(1, 512);
    assert!(matches!(mount(&tiny), Err(MountError::NotAStore(_))));
    let e = block_on(uni_kv::Store::format(
        MemBlock::new(10, 512),
        TestClock::default(),
    ))
    .err()
    .unwrap();
    assert!(e.to_string().contains("needs at least 18"), "{e}");
}

#[test]
fn a_flipped_bit_in_a_value_names_its_sector_and_key() {
    let (disk, mut s) = format(256);
    let v = pattern(2000, 4);
    block_on(async {
        s.set("a", b"first").await.unwrap();
        s.set("photos/cat.jpg", &v).await.unwrap();
        s.set("z", b"last").await.unwrap();
    });
    // somewhere in the second sector of the value
    let at = find(&disk.image(), &v[600..632]).unwrap() + 10;
    disk.flip_bit(at, 3);
    let (sector, what) = damaged(mount(&disk));
    assert_eq!(sector, (at / 512) as u64);
    assert!(what.contains("\"photos/cat.jpg\""), "{what}");
    assert!(what.contains("commit 2"), "{what}");
    assert!(what.contains("CRC-32C"), "{what}");
    let msg = MountError::Damaged { sector, what }.to_string();
    assert!(msg.contains(&format!("sector {sector}")), "{msg}");
}

#[test]
fn a_flipped_bit_in_a_commits_metadata_or_trailer_is_found() {
    let (disk, mut s) = format(256);
    block_on(async {
        s.set("first", b"1").await.unwrap();
        s.set("a-rather-distinctive-key", b"2").await.unwrap();
    });
    let image = disk.image();
    let at = find(&image, b"a-rather-distinctive-key").unwrap();
    let d = MemBlock::from_image(image.clone(), 512);
    d.flip_bit(at + 3, 0);
    let (sector, what) = damaged(mount(&d));
    assert_eq!(sector, (at / 512) as u64);
    assert!(what.contains("commit 2 (its header)"), "{what}");
    // a commit whose change list spans sectors: damage past its first sector
    let (disk, mut s) = format(256);
    let long: Vec<String> = (0..20)
        .map(|i| format!("{i:02}-{}", "m".repeat(60)))
        .collect();
    let changes: Vec<_> = long
        .iter()
        .map(|k| uni_runtime::device::Change::Set(k, b"v"))
        .collect();
    block_on(s.batch(&changes)).unwrap();
    let later = find(&disk.image(), long[15].as_bytes()).unwrap();
    assert!(later / 512 > find(&disk.image(), long[0].as_bytes()).unwrap() / 512);
    disk.flip_bit(later + 8, 4);
    let (sector, what) = damaged(mount(&disk));
    assert_eq!(sector, (later / 512) as u64);
    assert!(what.contains("commit 1's header and index"), "{what}");
    // the trailer of the same sector (its seq, tag and CRC)
    let d = MemBlock::from_image(image, 512);
    d.flip_bit(at / 512 * 512 + 512 - 7, 6);
    let (sector, _) = damaged(mount(&d));
    assert_eq!(sector, (at / 512) as u64);
}

#[test]
fn a_flipped_bit_in_a_compacted_value_is_found() {
    let (disk, mut s) = format(256);
    let v = pattern(3000, 6);
    block_on(async {
        s.set("old", b"x").await.unwrap();
        s.set("kept", &v).await.unwrap();
        s.compact().await.unwrap();
    });
    assert_eq!(s.stats().compactions, 1);
    // the compacted copy, in region 1 (the old one in region 0 is no longer read)
    let at = rfind(&disk.image(), &v[100..140]).unwrap();
    assert!(at > find(&disk.image(), &v[100..140]).unwrap());
    disk.flip_bit(at, 7);
    let (sector, what) = damaged(mount(&disk));
    assert_eq!(sector, (at / 512) as u64);
    assert!(
        what.contains("\"kept\"") && what.contains("checkpoint of commit 2"),
        "{what}"
    );
}

#[test]
fn a_flipped_bit_in_one_superblock_is_survived_and_said() {
    let (disk, mut s) = format(256);
    block_on(s.set("k", b"v")).unwrap();
    for slot in [0usize, 1] {
        let d = MemBlock::from_image(disk.image(), 512);
        d.flip_bit(slot * 512 + 33, 1);
        let mut m = mount(&d).unwrap();
        assert_eq!(block_on(m.get("k")).unwrap(), b"v");
        let notes = m.notes().join("\n");
        assert!(
            notes.contains(&format!(
                "superblock copy {slot} (sector {slot}) is damaged"
            )),
            "{notes}"
        );
        assert!(notes.contains("CRC-32C"), "{notes}");
        // the next change rewrites both copies
        block_on(m.set("k2", b"w")).unwrap();
        assert!(mount(&d).unwrap().notes().is_empty());
    }
    // both: no store to trust
    disk.flip_bit(33, 1);
    disk.flip_bit(512 + 40, 2);
    let (sector, what) = damaged(mount(&disk));
    assert_eq!(sector, 0);
    assert!(what.contains("copy 0") && what.contains("copy 1"), "{what}");
}

#[test]
fn damage_after_mount_is_an_error_on_get_not_wrong_bytes() {
    let (disk, mut s) = format(256);
    let v = pattern(1500, 8);
    block_on(async {
        s.set("v", &v).await.unwrap();
        s.set("w", b"fine").await.unwrap();
    });
    let at = find(&disk.image(), &v[900..940]).unwrap();
    disk.flip_bit(at, 0);
    match block_on(s.get("v")) {
        Err(KvError::Damaged { sector, what }) => {
            assert_eq!(sector, (at / 512) as u64);
            assert!(what.contains("\"v\""), "{what}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(block_on(s.get("w")).unwrap(), b"fine");
    // a partial read that avoids the damaged sector still works
    assert_eq!(block_on(s.get_partial("v", 0, 100)).unwrap(), &v[..100]);
}

#[test]
fn a_log_that_ends_before_its_superblock_says_is_damage() {
    // commit 2's sectors overwritten with zeros (a write the device lost)
    let (disk, mut s) = format(256);
    block_on(async {
        s.set("a", b"1").await.unwrap();
        s.set("b-distinct", b"2").await.unwrap();
    });
    let at = find(&disk.image(), b"b-distinct").unwrap() / 512 * 512;
    disk.poke(at, &[0u8; 512]);
    let (sector, what) = damaged(mount(&disk));
    assert_eq!(sector, (at / 512) as u64);
    assert!(what.contains("zeroed"), "{what}");
}
