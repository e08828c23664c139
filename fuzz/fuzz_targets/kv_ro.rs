//! Fuzzes the kv_ro pack reader (`uni_runtime::kv::Embedded`, the store an image embeds):
//! any pack is either refused with an error naming the byte where it went wrong, or gives a
//! store whose every answer is consistent.
//!
//! Seeds: `seeds-kv_ro/`, packs written by `uni_runtime::kv::pack` (the format `uni configure`
//! writes), made by `cargo run --example make_seeds`.
//! Properties: an error's position lies within the pack and its text says what was wrong;
//! everything `list` shows `exists` with the same kind; a value's `get`, `size`,
//! `get_partial` and `digest` agree; the values' bytes lie inside the pack; packing the
//! store's contents again gives a pack that reads back the same.
#![no_main]

use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use uni_runtime::device::{EntryKind, KvRo};
use uni_runtime::kv::{pack, Embedded};

fn block<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the embedded store never waits"),
    }
}

/// Every value under `dir`: (key, bytes, digest).
fn walk(kv: &Embedded, dir: &str, out: &mut Vec<(String, Vec<u8>, [u8; 32])>, depth: usize) {
    assert!(depth < 1000);
    let entries = block(kv.list(dir)).expect("a listed dictionary lists");
    let mut names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), entries.len(), "a name listed twice in {dir:?}");
    for (name, kind) in entries {
        assert!(!name.is_empty() && !name.contains('/'), "{name:?}");
        let key = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        assert_eq!(block(kv.exists(&key)).unwrap(), Some(kind), "{key:?}");
        match kind {
            EntryKind::Value => {
                let v = block(kv.get(&key)).unwrap();
                assert_eq!(block(kv.size(&key)).unwrap(), v.len() as u64);
                assert_eq!(kv.get_static(&key).unwrap(), &v[..]);
                let half = v.len() as u64 / 2;
                assert_eq!(
                    block(kv.get_partial(&key, half, 7)).unwrap(),
                    &v[v.len() / 2..(v.len() / 2 + 7).min(v.len())]
                );
                assert!(block(kv.get_partial(&key, u64::MAX, 7)).unwrap().is_empty());
                let hex = block(kv.digest(&key)).unwrap();
                assert_eq!(hex.len(), 64);
                let mut digest = [0u8; 32];
                for (i, d) in digest.iter_mut().enumerate() {
                    *d = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
                }
                assert!(block(kv.list(&key)).is_err(), "a value is not a dictionary");
                out.push((key, v, digest));
            }
            EntryKind::Dictionary => {
                assert!(block(kv.get(&key)).is_err(), "a dictionary is not a value");
                walk(kv, &key, out, depth + 1)
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // `Embedded` borrows its pack for 'static (an image's `include_bytes!`): lend it a leaked
    // copy, and take it back at the end.
    let bytes: &'static [u8] = Box::leak(data.to_vec().into_boxed_slice());
    {
        match Embedded::new(bytes) {
            Ok(kv) => {
                let mut values = Vec::new();
                walk(&kv, "", &mut values, 0);
                assert_eq!(
                    values.len(),
                    kv.len(),
                    "every value is reachable from the root"
                );
                let total: u64 = values.iter().map(|v| v.1.len() as u64).sum();
                assert_eq!(total, kv.total_bytes());
                assert!(total <= data.len() as u64 * values.len().max(1) as u64);
                for (k, _, _) in &values {
                    let v = kv.get_static(k).unwrap();
                    let (start, end) = (v.as_ptr() as usize, v.as_ptr() as usize + v.len());
                    assert!(start >= bytes.as_ptr() as usize);
                    assert!(end <= bytes.as_ptr() as usize + bytes.len());
                }
                assert_eq!(block(kv.exists("")).unwrap(), Some(EntryKind::Dictionary));
                // Round trip: the same contents packed again read back the same.
                let triples: Vec<(&str, &[u8], [u8; 32])> = values
                    .iter()
                    .map(|(k, v, d)| (k.as_str(), v.as_slice(), *d))
                    .collect();
                let again = pack(&triples);
                let again: &'static [u8] = Box::leak(again.into_boxed_slice());
                let kv2 = Embedded::new(again).expect("a repacked store reads");
                let mut values2 = Vec::new();
                walk(&kv2, "", &mut values2, 0);
                assert_eq!(values, values2);
                drop(kv2);
                // SAFETY: `again` came from Box::leak just above, and kv2 and everything
                // borrowed from it are gone.
                drop(unsafe { Box::from_raw(again as *const [u8] as *mut [u8]) });
            }
            Err(e) => {
                assert!(e.at <= data.len(), "{e}");
                let shown = e.to_string();
                assert!(
                    shown.starts_with("embedded kv_ro pack is damaged at byte "),
                    "{shown}"
                );
                assert!(!e.what.is_empty());
            }
        }
    }
    // SAFETY: `bytes` came from Box::leak above, and the store and every slice borrowed from
    // it were dropped at the end of the block.
    drop(unsafe { Box::from_raw(bytes as *const [u8] as *mut [u8]) });
});
