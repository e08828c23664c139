//! `uni_kv::open`, as a `kv_rw` device calls it: `format = true` formats a device that holds no
//! store, and never one that holds a damaged store.

mod common;

use common::{block_on, format, TestClock};
use uni_kv::mem::MemBlock;
use uni_kv::MountError;
use uni_runtime::device::{KvRo, KvRw};

#[test]
fn format_true_formats_only_a_device_without_a_store() {
    // zeroed: refused without format, formatted with it
    let disk = MemBlock::new(256, 512);
    match block_on(uni_kv::open(disk.clone(), TestClock::default(), false)) {
        Err(MountError::NotAStore(what)) => assert!(what.contains("zero"), "{what}"),
        other => panic!("a zeroed device mounted without format: {:?}", other.err()),
    }
    assert!(disk.image().iter().all(|&b| b == 0), "nothing was written");
    let mut store = block_on(uni_kv::open(disk.clone(), TestClock::default(), true)).unwrap();
    block_on(store.set("a", b"1")).unwrap();
    drop(store);

    // a store: mounted as it is, format or not
    let store = block_on(uni_kv::open(disk.clone(), TestClock::default(), true)).unwrap();
    assert_eq!(block_on(store.get("a")).unwrap(), b"1");
    drop(store);

    // another format: formatted only when asked
    let other = MemBlock::from_image(b"SQLite format 3\0".repeat(2048), 512);
    assert!(matches!(
        block_on(uni_kv::open(other.clone(), TestClock::default(), false)),
        Err(MountError::NotAStore(_))
    ));
    assert!(block_on(uni_kv::open(other, TestClock::default(), true)).is_ok());

    // a damaged store is never formatted: the damage is reported and the image left alone
    let (disk, mut store) = format(256);
    block_on(store.set("kept", b"value")).unwrap();
    drop(store);
    disk.flip_bit(512 * 2 + 40, 1); // in the log, after the superblocks
    let before = disk.image();
    match block_on(uni_kv::open(disk.clone(), TestClock::default(), true)) {
        Err(MountError::Damaged { sector, .. }) => assert!(sector >= 2, "{sector}"),
        other => panic!("a damaged store: {:?}", other.err()),
    }
    assert_eq!(disk.image(), before, "a damaged store is not touched");
}

#[test]
fn a_truncated_image_is_refused_saying_how_big_the_store_was() {
    let (disk, mut store) = format(256);
    block_on(store.set("a", &[7u8; 3000])).unwrap();
    drop(store);
    let image = disk.image();
    for sectors in [255usize, 200, 128, 3] {
        let cut = MemBlock::from_image(image[..sectors * 512].to_vec(), 512);
        let before = cut.image();
        match block_on(uni_kv::open(cut.clone(), TestClock::default(), true)) {
            Err(e @ (MountError::Unsupported(_) | MountError::Damaged { .. })) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("256") || msg.contains("sector"),
                    "{sectors} sectors: {msg}"
                );
            }
            other => panic!(
                "a store cut to {sectors} of 256 sectors: {:?}",
                other.map(|_| ()).err()
            ),
        }
        assert_eq!(cut.image(), before, "a truncated store is not formatted");
    }
    // the whole image still mounts, with what was committed
    let whole = MemBlock::from_image(image, 512);
    let store = block_on(uni_kv::open(whole, TestClock::default(), false)).unwrap();
    assert_eq!(block_on(store.get("a")).unwrap(), vec![7u8; 3000]);
}
