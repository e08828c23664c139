//! Helpers shared by the store's tests: a clock that ticks, state dumps, patterns.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use uni_kv::mem::MemBlock;
use uni_kv::Store;
use uni_runtime::device::{Clock, Instant, KvRo, WallTime};

pub use futures_lite::future::block_on;

/// A wall clock that advances 1.5 s at each reading, from 2026-12-01T00:00:00Z.
#[derive(Debug, Clone, Default)]
pub struct TestClock(Rc<Cell<u64>>);

impl Clock for TestClock {
    fn now(&self) -> Instant {
        Instant(self.0.get())
    }
    fn wall(&self) -> WallTime {
        let n = self.0.get() + 1;
        self.0.set(n);
        WallTime {
            secs: 1_796_083_200 + n + n / 2,
            nanos: if n % 2 == 1 { 500_000_000 } else { 0 },
        }
    }
    async fn sleep(&self, _: Duration) {}
}

pub type MemStore = Store<MemBlock, TestClock>;

pub fn format(sectors: u64) -> (MemBlock, MemStore) {
    let disk = MemBlock::new(sectors, 512);
    let store = block_on(Store::format(disk.clone(), TestClock::default())).expect("format");
    (disk, store)
}

pub fn mount(disk: &MemBlock) -> Result<MemStore, uni_kv::MountError> {
    block_on(Store::mount(disk.clone(), TestClock::default()))
}

/// Every key and its value, read back through the store (so each value's sectors and SHA-256
/// are checked).
pub fn dump<S: KvRo>(store: &S, keys: impl Iterator<Item = String>) -> BTreeMap<String, Vec<u8>> {
    keys.map(|k| {
        let v = block_on(store.get(&k)).unwrap_or_else(|e| panic!("get {k:?}: {e}"));
        (k, v)
    })
    .collect()
}

pub fn state(store: &MemStore) -> BTreeMap<String, Vec<u8>> {
    let keys: Vec<String> = store.keys().map(String::from).collect();
    dump(store, keys.into_iter())
}

/// `len` bytes that differ per `seed` and do not repeat with a short period.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| {
            (i.wrapping_add(seed.wrapping_mul(7919))
                .wrapping_mul(2654435761)
                >> 24) as u8
        })
        .collect()
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where `needle` last occurs in `hay`.
pub fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}
