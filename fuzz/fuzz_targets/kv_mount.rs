//! Fuzzes the kv_rw mount path: any image either mounts or is refused with an error, never a
//! panic; and what a mounted image lists can be read (or is reported damaged) without one.
//!
//! Seeds: `seeds-kv/`, small stores made with `uni kv` (see seeds-kv/README.md). Run with
//! `cargo fuzz run kv_mount corpus/kv_mount seeds-kv`.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use uni_kv::mem::MemBlock;
use uni_kv::Store;
use uni_runtime::device::{Clock, EntryKind, Instant, KvRo, KvRw, WallTime};

struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> Instant {
        Instant(0)
    }
    fn wall(&self) -> WallTime {
        WallTime::default()
    }
    async fn sleep(&self, _: Duration) {}
}

/// Lists `dir` and everything under it, reading each value.
async fn walk(store: &Store<MemBlock, Fixed>, dir: String, depth: usize) {
    let Ok(entries) = store.list(&dir).await else {
        return;
    };
    for (name, kind) in entries {
        let key = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        assert_eq!(
            store.exists(&key).await.ok().flatten(),
            Some(kind),
            "{key:?}"
        );
        match kind {
            EntryKind::Value => {
                let size = store.size(&key).await.expect("a listed value has a size");
                if let Ok(v) = store.get(&key).await {
                    assert_eq!(v.len() as u64, size);
                }
                let _ = store.get_partial(&key, size / 2, 1000).await;
                store
                    .digest(&key)
                    .await
                    .expect("a listed value has a digest");
                store.last_modified(&key).await.expect("and a time");
            }
            EntryKind::Dictionary if depth < 64 => Box::pin(walk(store, key, depth + 1)).await,
            EntryKind::Dictionary => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut image = data.to_vec();
    image.resize(data.len().div_ceil(512).max(2) * 512, 0);
    let disk = MemBlock::from_image(image, 512);
    futures_lite::future::block_on(async {
        match Store::mount(disk, Fixed).await {
            Ok(mut store) => {
                walk(&store, String::new(), 0).await;
                let log = store.log().await.expect("the log is in memory");
                for w in log.windows(2) {
                    assert_eq!(w[0].parent, Some(w[1].hash));
                }
                // and it takes a change
                let _ = store.set("fuzz/key", b"value").await;
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    });
});
