//! The store as an application sees it: Mirage_kv.RW's operations, keys as paths, the tree
//! rules, values of 1 MiB and more, history with parents, and a file-backed disk.

mod common;

use common::*;
use sha2::{Digest, Sha256};
use uni_kv::Store;
use uni_runtime::device::{Change, Changed, EntryKind, KvError, KvRo, KvRw};

#[test]
fn get_set_list_exists_digest_size_and_the_tree_rules() {
    let (_disk, mut s) = format(256);
    block_on(async {
        assert_eq!(s.list("").await.unwrap(), vec![]);
        s.set("a/b", b"one").await.unwrap();
        s.set("a/c/d", b"two").await.unwrap();
        s.set("a.txt", b"").await.unwrap();
        assert_eq!(s.get("a/b").await.unwrap(), b"one");
        assert_eq!(s.get("a.txt").await.unwrap(), b"");
        assert_eq!(s.size("a/c/d").await.unwrap(), 3);
        assert_eq!(
            s.digest("a/b").await.unwrap(),
            Sha256::digest(b"one")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        assert_eq!(s.exists("a").await.unwrap(), Some(EntryKind::Dictionary));
        assert_eq!(s.exists("a/b").await.unwrap(), Some(EntryKind::Value));
        assert_eq!(s.exists("zz").await.unwrap(), None);
        assert_eq!(
            s.list("").await.unwrap(),
            vec![
                ("a".into(), EntryKind::Dictionary),
                ("a.txt".into(), EntryKind::Value)
            ]
        );
        assert_eq!(
            s.list("a").await.unwrap(),
            vec![
                ("b".into(), EntryKind::Value),
                ("c".into(), EntryKind::Dictionary)
            ]
        );
        // a value is not a dictionary, nor a dictionary a value
        assert_eq!(
            s.set("a/b/x", b"").await,
            Err(KvError::DictionaryExpected("a/b".into()))
        );
        assert_eq!(
            s.set("a", b"").await,
            Err(KvError::ValueExpected("a".into()))
        );
        assert_eq!(s.get("a").await, Err(KvError::ValueExpected("a".into())));
        assert_eq!(
            s.list("a/b").await,
            Err(KvError::DictionaryExpected("a/b".into()))
        );
        assert_eq!(s.get("nope").await, Err(KvError::NotFound("nope".into())));
        assert_eq!(
            s.remove("nope").await,
            Err(KvError::NotFound("nope".into()))
        );
        for bad in ["", "/a", "a/", "a//b", "a/../b"] {
            assert!(
                matches!(s.set(bad, b"x").await, Err(KvError::InvalidKey { .. })),
                "{bad:?}"
            );
        }
        // overwrite, then a dictionary removed whole
        s.set("a/b", b"three").await.unwrap();
        assert_eq!(s.get("a/b").await.unwrap(), b"three");
        s.remove("a").await.unwrap();
        assert_eq!(s.exists("a/c/d").await.unwrap(), None);
        assert_eq!(
            s.list("").await.unwrap(),
            vec![("a.txt".into(), EntryKind::Value)]
        );
        // a failed change changed nothing, and made no commit
        let before = s.log().await.unwrap().len();
        assert!(s.set("a.txt/x", b"").await.is_err());
        assert_eq!(s.log().await.unwrap().len(), before);
    });
}

#[test]
fn get_partial_streams_across_sectors() {
    let (_disk, mut s) = format(256);
    let v = pattern(5000, 1);
    block_on(async {
        s.set("big", &v).await.unwrap();
        for (off, len) in [
            (0, 10),
            (490, 20),
            (495, 1),
            (496, 496),
            (4000, 5000),
            (5000, 3),
            (9999, 1),
        ] {
            let start = off.min(v.len());
            let end = (off + len).min(v.len());
            assert_eq!(
                s.get_partial("big", off as u64, len).await.unwrap(),
                &v[start..end],
                "{off}+{len}"
            );
        }
    });
}

#[test]
fn batches_are_one_commit_applied_in_order() {
    let (disk, mut s) = format(256);
    block_on(async {
        s.set("old/x", b"1").await.unwrap();
        s.batch(&[
            Change::Remove("old"),
            Change::Set("old", b"now a value"),
            Change::Set("n/1", b"a"),
            Change::Set("n/1", b"b"),
        ])
        .await
        .unwrap();
        assert_eq!(s.get("old").await.unwrap(), b"now a value");
        assert_eq!(s.get("n/1").await.unwrap(), b"b");
        let log = s.log().await.unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].changes.len(), 4);
        assert_eq!(log[0].changes[0], Changed::Removed { key: "old".into() });
        // one bad change and none applies
        let r = s
            .batch(&[Change::Set("fine", b"x"), Change::Remove("missing")])
            .await;
        assert_eq!(r, Err(KvError::NotFound("missing".into())));
        assert_eq!(s.exists("fine").await.unwrap(), None);
        assert_eq!(s.log().await.unwrap().len(), 2);
    });
    let again = mount(&disk).unwrap();
    assert_eq!(state(&again), state(&s));
}

#[test]
fn the_log_chains_commits_and_reads_back_the_same_after_mount() {
    let (disk, mut s) = format(256);
    block_on(async {
        s.set("k", b"1").await.unwrap();
        s.set("k", b"2").await.unwrap();
        s.remove("k").await.unwrap();
        let log = s.log().await.unwrap();
        assert_eq!(log.iter().map(|c| c.seq).collect::<Vec<_>>(), [3, 2, 1]);
        assert_eq!(log[2].parent, None, "the first commit has no parent");
        for w in log.windows(2) {
            assert_eq!(w[0].parent, Some(w[1].hash));
            assert!(
                w[0].time > w[1].time,
                "the test clock ticks between commits"
            );
        }
        assert_eq!(
            log[1].changes,
            vec![Changed::Set {
                key: "k".into(),
                size: 1,
                sha256: Sha256::digest(b"2").into()
            }]
        );
        assert_eq!(log[0].changes, vec![Changed::Removed { key: "k".into() }]);
        assert_eq!(
            s.last_modified("k").await,
            Err(KvError::NotFound("k".into()))
        );
        let m = mount(&disk).unwrap();
        assert_eq!(m.log().await.unwrap(), log);
        assert!(m.notes().is_empty(), "{:?}", m.notes());
    });
}

#[test]
fn last_modified_is_the_commit_time() {
    let (_disk, mut s) = format(256);
    block_on(async {
        s.set("d/a", b"1").await.unwrap();
        s.set("d/b", b"2").await.unwrap();
        let log = s.log().await.unwrap();
        assert_eq!(s.last_modified("d/a").await.unwrap(), log[1].time);
        assert_eq!(s.last_modified("d/b").await.unwrap(), log[0].time);
        assert_eq!(
            s.last_modified("d").await.unwrap(),
            log[0].time,
            "a dictionary: its latest value"
        );
    });
}

#[test]
fn values_of_one_mebibyte_and_more_read_back_byte_identical() {
    // 16 MiB: regions of about 8 MiB
    let (disk, mut s) = format(32 * 1024);
    let one = pattern(1 << 20, 7);
    let three = pattern(3 << 20 | 123, 8);
    block_on(async {
        s.set("one", &one).await.unwrap();
        s.batch(&[Change::Set("three", &three), Change::Set("small", b"s")])
            .await
            .unwrap();
        assert_eq!(s.get("one").await.unwrap(), one);
    });
    let m = mount(&disk).unwrap();
    block_on(async {
        assert_eq!(m.get("one").await.unwrap(), one);
        assert_eq!(m.get("three").await.unwrap(), three);
        assert_eq!(m.size("three").await.unwrap(), three.len() as u64);
    });
}

#[test]
fn a_read_only_device_mounts_and_refuses_changes() {
    let (disk, mut s) = format(256);
    block_on(s.set("k", b"v")).unwrap();
    disk.set_read_only(true);
    let mut m = mount(&disk).unwrap();
    assert_eq!(block_on(m.get("k")).unwrap(), b"v");
    let e = block_on(m.set("k", b"w")).unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
}

#[test]
fn a_file_backed_disk_keeps_the_store_across_opens() {
    use uni_runtime::platform::{block_on, Block, Clock};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.img");
    std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
    let path = path.to_str().unwrap();
    let v = pattern(300_000, 3);
    block_on(async {
        let disk = Block::open(path, false).unwrap();
        let mut s = Store::format(disk, Clock::new()).await.unwrap();
        s.set("photos/cat", &v).await.unwrap();
    });
    let (log, got) = block_on(async {
        let s = Store::mount(Block::open(path, true).unwrap(), Clock::new())
            .await
            .unwrap();
        (s.log().await.unwrap(), s.get("photos/cat").await.unwrap())
    });
    assert_eq!(got, v);
    assert_eq!(log.len(), 1);
    let file = std::fs::read(path).unwrap();
    assert_eq!(&file[..8], uni_kv::MAGIC);
}
