//! A full disk is an error that says how much is needed and free, and the store stays usable;
//! space is reclaimed, so overwrites run forever on a fixed disk; what the log keeps.

mod common;

use std::collections::BTreeMap;

use common::*;
use uni_kv::HISTORY_KEPT;
use uni_runtime::device::{Change, KvError, KvRo, KvRw};

#[test]
fn a_full_disk_is_no_space_and_the_store_stays_usable() {
    // 64 KiB: two regions of 63 sectors, about 31 KiB of log
    let (disk, mut s) = format(128);
    let mut n = 0;
    let err = loop {
        match block_on(s.set(&format!("f/{n}"), &pattern(4000, n))) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 100, "a 64 KiB disk took 400 KB");
    };
    assert!(n >= 5, "{n} values of 4000 bytes fit");
    let KvError::NoSpace { needed, free } = err else {
        panic!("{err}");
    };
    assert!(needed > free, "needed {needed}, free {free}");
    assert!(needed >= 4000, "needed {needed}");
    assert!(free < 4000 + 512, "free {free}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("needs {needed} bytes, {free} are free")),
        "{msg}"
    );
    // reads work, the failed value is not there, nothing was lost
    let before = state(&s);
    assert_eq!(before.len(), n as usize);
    assert_eq!(block_on(s.exists(&format!("f/{n}"))).unwrap(), None);
    assert_eq!(state(&mount(&disk).unwrap()), before);
    // a removal frees space; then the same set fits
    block_on(s.remove("f/0")).unwrap();
    block_on(s.set(&format!("f/{n}"), &pattern(4000, n))).unwrap();
    assert_eq!(
        block_on(s.get(&format!("f/{n}"))).unwrap(),
        pattern(4000, n)
    );
    // a value larger than the whole store, even empty
    let (_d, mut small) = format(128);
    let e = block_on(small.set("huge", &pattern(100_000, 0))).unwrap_err();
    assert!(
        matches!(e, KvError::NoSpace { needed, free } if needed >= 100_000 && free < 40_000),
        "{e}"
    );
    block_on(small.set("fine", b"still works")).unwrap();
}

#[test]
fn overwrites_of_twenty_times_the_disk_run_on_a_fixed_disk() {
    // 128 KiB disk
    let sectors = 256u64;
    let (disk, mut s) = format(sectors);
    let capacity = sectors * 512;
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut written = 0u64;
    let mut i = 0u32;
    while written < 20 * capacity {
        let key = format!("k/{}", i % 8);
        let len = 500 + (i as usize * 737) % 2500;
        let v = pattern(len, i);
        if i % 5 == 4 {
            // and batches, with a removal
            let other = format!("k/{}", (i + 3) % 8);
            let mut changes = vec![Change::Set(&key, &v)];
            if model.contains_key(&other) {
                changes.push(Change::Remove(&other));
            }
            block_on(s.batch(&changes)).unwrap();
            model.remove(&other);
        } else {
            block_on(s.set(&key, &v)).unwrap();
        }
        model.insert(key, v);
        written += len as u64;
        i += 1;
        let st = s.stats();
        assert!(st.used <= st.capacity);
    }
    let st = s.stats();
    assert!(st.compactions >= 20, "{st:?}");
    assert_eq!(state(&s), model);
    let m = mount(&disk).unwrap();
    assert_eq!(state(&m), model);
    assert_eq!(m.stats(), st);
    eprintln!("{i} commits, {written} bytes written on a {capacity}-byte disk: {st:?}");
}

#[test]
fn the_log_keeps_the_latest_commits_through_compactions() {
    let (disk, mut s) = format(128);
    for i in 0..200u32 {
        block_on(s.set(&format!("k{}", i % 4), &pattern(700, i))).unwrap();
    }
    assert!(s.stats().compactions > 0);
    let log = block_on(s.log()).unwrap();
    assert_eq!(log.len(), HISTORY_KEPT);
    assert_eq!(log[0].seq, 200);
    assert_eq!(log.last().unwrap().seq, 200 - HISTORY_KEPT as u64 + 1);
    for w in log.windows(2) {
        assert_eq!(w[0].parent, Some(w[1].hash));
    }
    // the oldest one kept names a parent the log no longer has
    assert!(log.last().unwrap().parent.is_some());
    let m = mount(&disk).unwrap();
    assert_eq!(block_on(m.log()).unwrap(), log);
}

#[test]
fn a_compaction_keeps_at_most_64_kib_of_history() {
    // a 4 MiB disk: room for commits with long change lists
    let (disk, mut s) = format(8192);
    let keys: Vec<String> = (0..300)
        .map(|i| format!("{}/{i}", "d".repeat(180)))
        .collect();
    for round in 0..3u8 {
        let changes: Vec<Change> = keys
            .iter()
            .map(|k| Change::Set(k, std::slice::from_ref(&round)))
            .collect();
        block_on(s.batch(&changes)).unwrap();
    }
    block_on(s.set("last", b"small")).unwrap();
    let before = block_on(s.log()).unwrap();
    assert_eq!(before.len(), 4);
    block_on(s.compact()).unwrap();
    let after = block_on(s.log()).unwrap();
    // each big commit lists 300 keys of ~185 bytes: only the newest fit in 64 KiB
    assert!(
        after.len() < before.len() && !after.is_empty(),
        "{}",
        after.len()
    );
    assert_eq!(after[..], before[..after.len()]);
    assert_eq!(block_on(mount(&disk).unwrap().log()).unwrap(), after);
    assert_eq!(block_on(s.get(&keys[7])).unwrap(), [2]);
}

#[test]
fn compaction_reclaims_space_and_keeps_state() {
    let (disk, mut s) = format(256);
    for i in 0..20 {
        block_on(s.set("same", &pattern(2000, i))).unwrap();
    }
    let used = s.stats().used;
    let st = state(&s);
    block_on(s.compact()).unwrap();
    assert!(s.stats().used * 5 < used, "{} vs {used}", s.stats().used);
    assert_eq!(state(&s), st);
    assert_eq!(state(&mount(&disk).unwrap()), st);
}
