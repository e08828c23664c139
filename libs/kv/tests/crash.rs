//! Power cuts, torn sector writes and device failures at every step of a commit: a change that
//! returned survives; one that did not is there whole or not at all; what was committed before
//! it is never damaged.

mod common;

use std::collections::BTreeMap;

use common::*;
use uni_kv::mem::{Cut, MemBlock};
use uni_runtime::device::{Change, KvError, KvRo, KvRw};

type State = BTreeMap<String, Vec<u8>>;

/// The cuts tried for a device with `pending` unflushed sector writes: none, all, every
/// prefix, every torn sector (at a few byte counts) and a few subsets.
fn cuts(pending: usize) -> Vec<Cut> {
    let mut v = vec![Cut::DropAll, Cut::KeepAll];
    let step = (pending / 40).max(1);
    for k in (0..=pending)
        .step_by(step)
        .chain([pending.saturating_sub(1), pending])
    {
        v.push(Cut::Prefix(k));
        if k < pending {
            for bytes in [1, 100, 256, 511] {
                v.push(Cut::Torn { n: k, bytes });
            }
        }
    }
    for mask in [
        0x5555_5555_5555_5555,
        0xaaaa_aaaa_aaaa_aaaa,
        0x0f0f_0f0f_0f0f_0f0f,
        0x9e37_79b9_7f4a_7c15,
        1 << (pending % 64),
        !(1 << (pending.saturating_sub(1) % 64)),
    ] {
        v.push(Cut::Subset(mask));
    }
    v
}

/// What the cuts showed.
#[derive(Default, Debug)]
struct Seen {
    runs: usize,
    old: usize,
    new: usize,
    dropped_notes: usize,
    superblock_notes: usize,
}

/// Runs `op` on a copy of `base`, with the device failing after each possible number of
/// writes and flushes; for each, cuts the power in each way and mounts what is left: it must
/// mount, and hold `before` or `after`, and `after` when `op` had returned `Ok`.
fn crash_everywhere(
    base: &MemBlock,
    before: &State,
    after: &State,
    op: impl Fn(&mut MemStore) -> Result<(), KvError>,
) -> Seen {
    // how many device operations the change takes
    let probe = MemBlock::from_image(base.image(), 512);
    let mut s = mount(&probe).unwrap();
    let ops0 = probe.ops();
    op(&mut s).expect("the change works on a healthy device");
    assert_eq!(&state(&s), after, "the change does what the test expects");
    let ops = (probe.ops().0 - ops0.0 + probe.ops().1 - ops0.1) as usize;
    let mut seen = Seen::default();
    for n in 0..=ops {
        let disk = MemBlock::from_image(base.image(), 512);
        let mut s = mount(&disk).unwrap();
        disk.fail_after(n);
        let ok = op(&mut s).is_ok();
        assert_eq!(
            ok,
            n == ops,
            "the change fails exactly when the device does (n = {n})"
        );
        for cut in cuts(disk.pending_writes()) {
            let left = disk.power_cut(cut);
            let m = mount(&left)
                .unwrap_or_else(|e| panic!("n = {n}, {cut:?}: the store does not mount: {e}"));
            let got = state(&m);
            seen.runs += 1;
            if &got == after {
                seen.new += 1;
            } else if &got == before {
                assert!(!ok, "n = {n}, {cut:?}: a change that returned Ok was lost");
                seen.old += 1;
            } else {
                panic!("n = {n}, {cut:?}: neither the state before nor after: {got:?}");
            }
            for note in m.notes() {
                if note.contains("not completely written") {
                    seen.dropped_notes += 1;
                } else if note.contains("superblock copy") {
                    seen.superblock_notes += 1;
                } else {
                    panic!("unexpected note {note:?}");
                }
            }
            // and it goes on working from there
            let mut m = m;
            block_on(m.set("after/crash", b"ok")).unwrap();
            assert_eq!(
                block_on(mount(&left).unwrap().get("after/crash")).unwrap(),
                b"ok"
            );
        }
    }
    seen
}

fn base_with_data() -> (MemBlock, State) {
    let (disk, mut s) = format(512);
    block_on(async {
        s.set("keep/a", &pattern(1500, 1)).await.unwrap();
        s.set("keep/b", b"small").await.unwrap();
        s.set("x", b"to be replaced").await.unwrap();
    });
    let st = state(&s);
    (disk, st)
}

#[test]
fn an_acknowledged_change_survives_any_power_cut() {
    let (disk, mut s) = format(512);
    let v = pattern(3000, 2);
    block_on(s.set("k", &v)).unwrap();
    assert_eq!(disk.pending_writes(), 0, "set flushed before it returned");
    for cut in cuts(4) {
        let m = mount(&disk.power_cut(cut)).unwrap();
        assert_eq!(block_on(m.get("k")).unwrap(), v, "{cut:?}");
    }
}

#[test]
fn a_batch_is_atomic_at_every_crash_point() {
    let (base, before) = base_with_data();
    let big = pattern(2000, 9);
    let mut after = before.clone();
    after.remove("keep/b");
    after.insert("x".into(), big.clone());
    after.insert("new/y".into(), b"y".to_vec());
    let seen = crash_everywhere(&base, &before, &after, |s| {
        block_on(s.batch(&[
            Change::Remove("keep/b"),
            Change::Set("x", &big),
            Change::Set("new/y", b"y"),
        ]))
    });
    eprintln!("{seen:?}");
    assert!(seen.old > 0 && seen.new > 0, "{seen:?}");
    assert!(
        seen.dropped_notes > 0,
        "some cut left a superblock naming an incomplete commit: {seen:?}"
    );
    assert!(
        seen.superblock_notes > 0,
        "some cut tore a superblock: {seen:?}"
    );
}

#[test]
fn a_commit_that_compacts_is_atomic_at_every_crash_point() {
    // a small disk, overwritten until the next set has to compact
    let (disk, mut s) = format(64);
    let mut i = 0u32;
    let (base, before) = loop {
        let image = MemBlock::from_image(disk.image(), 512);
        let st = state(&s);
        let c = s.stats().compactions;
        block_on(s.set(&format!("k{}", i % 3), &pattern(1200, i))).unwrap();
        i += 1;
        if s.stats().compactions > c {
            break (image, st);
        }
    };
    let mut after = before.clone();
    let v = pattern(1200, i - 1);
    let key = format!("k{}", (i - 1) % 3);
    after.insert(key.clone(), v.clone());
    let seen = crash_everywhere(&base, &before, &after, |s| block_on(s.set(&key, &v)));
    eprintln!("{seen:?}");
    assert!(seen.old > 0 && seen.new > 0, "{seen:?}");
}

#[test]
fn an_explicit_compaction_loses_nothing_at_any_crash_point() {
    let (base, before) = base_with_data();
    let seen = crash_everywhere(&base, &before, &before, |s| block_on(s.compact()));
    assert!(seen.runs > 0);
}

#[test]
fn torn_writes_never_damage_what_was_committed() {
    let (base, before) = base_with_data();
    let probe = MemBlock::from_image(base.image(), 512);
    let mut s = mount(&probe).unwrap();
    // never flushed: every write of the commit is pending when the power goes
    probe.fail_after(1);
    let v = pattern(4000, 5);
    assert!(block_on(s.set("x", &v)).is_err());
    let pending = probe.pending_writes();
    assert!(pending >= 8, "the value spans sectors ({pending})");
    for n in 0..pending {
        for bytes in 1..512 {
            if bytes % 37 != 0 {
                continue;
            }
            let m = mount(&probe.power_cut(Cut::Torn { n, bytes })).unwrap();
            assert_eq!(state(&m), before, "torn at write {n}, byte {bytes}");
        }
    }
}

#[test]
fn a_commit_written_again_after_a_crash_cannot_mix_with_the_first_attempt() {
    // the first attempt at commit 4 is cut after its record and superblock copy 0 were
    // written, all but one sector; then commit 4 is made again, differently, and cut too
    let (base, before) = base_with_data();
    let first = pattern(3000, 11);
    let disk = MemBlock::from_image(base.image(), 512);
    let mut s = mount(&disk).unwrap();
    disk.fail_after(2); // the record's write and superblock copy 0's, no flush
    assert!(block_on(s.set("x", &first)).is_err());
    let pending = disk.pending_writes();
    let left = disk.power_cut(Cut::Subset(!(1 << 2))); // all but the record's third sector
    let m = mount(&left).unwrap();
    assert_eq!(state(&m), before);
    assert!(
        m.notes()
            .iter()
            .any(|n| n.contains("not completely written")),
        "{:?} ({pending} pending)",
        m.notes()
    );
    drop(m);
    let second = pattern(3000, 12);
    let mut after = before.clone();
    after.insert("x".into(), second.clone());
    let seen = crash_everywhere(&left, &before, &after, |s| block_on(s.set("x", &second)));
    assert!(seen.new > 0);
}

#[test]
fn after_a_device_error_reads_work_and_writes_wait_for_a_new_mount() {
    let (base, before) = base_with_data();
    let disk = MemBlock::from_image(base.image(), 512);
    let mut s = mount(&disk).unwrap();
    disk.fail_after(0);
    let e = block_on(s.set("x", b"new")).unwrap_err();
    assert!(
        matches!(&e, KvError::Io(m) if m.contains("the device has failed")),
        "{e}"
    );
    assert_eq!(state(&s), before, "the failed change is not visible");
    disk.fail_after(usize::MAX);
    let e = block_on(s.set("y", b"other")).unwrap_err();
    assert!(e.to_string().contains("mount it again"), "{e}");
    let mut m = mount(&disk).unwrap();
    assert_eq!(state(&m), before);
    block_on(m.set("y", b"other")).unwrap();
}

#[test]
fn a_failure_after_the_first_superblock_reports_a_durable_commit() {
    let (base, before) = base_with_data();
    let disk = MemBlock::from_image(base.image(), 512);
    let mut s = mount(&disk).unwrap();
    // record, copy 0, flush: then the device fails writing copy 1
    disk.fail_after(3);
    let e = block_on(s.set("x", b"durable")).unwrap_err();
    assert!(e.to_string().contains("is durable"), "{e}");
    assert_eq!(block_on(s.get("x")).unwrap(), b"durable");
    let m = mount(&disk.power_cut(Cut::DropAll)).unwrap();
    let mut want = before;
    want.insert("x".into(), b"durable".to_vec());
    assert_eq!(state(&m), want);
}
