//! The `kv_ro` device's implementation: a directory packed into the image at build time
//! (MirageOS's `crunch`).
//!
//! `uni build` packs the directory into one file that the generated crate `include_bytes!`s, so
//! rustc sees a single byte string however many files there are. The pack is:
//!
//! ```text
//! magic    8 bytes  b"UNIKV\0\0\x01"
//! count    u32 LE   number of values
//! entries  count × { key_len u16 LE, key (UTF-8, '/'-separated), offset u64 LE, len u64 LE,
//!                    sha256 [u8; 32] }, sorted by key bytes, keys unique
//! data     the values, each at `data start + offset`
//! ```
//!
//! Dictionaries are not stored: a key names a dictionary when some value's key starts with it
//! and a `/`. The writer is `mirage-cli`'s `kv` module; [`Embedded::new`] checks everything it
//! relies on, so a damaged pack is an error at boot, never a panic.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::device::{EntryKind, KvError, KvRo};

/// The first bytes of a pack.
pub const MAGIC: &[u8; 8] = b"UNIKV\0\0\x01";

/// One value of a pack.
#[derive(Clone, Copy)]
struct Value {
    key: &'static str,
    data: &'static [u8],
    sha256: &'static [u8; 32],
}

/// A read-only store over a pack embedded in the image. Cloning is cheap (the index is shared).
#[derive(Clone)]
pub struct Embedded {
    values: Arc<Vec<Value>>,
}

impl fmt::Debug for Embedded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Embedded")
            .field("values", &self.values.len())
            .field("bytes", &self.total_bytes())
            .finish()
    }
}

/// Why a pack could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackError {
    /// Byte offset in the pack where reading failed.
    pub at: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "embedded kv_ro pack is damaged at byte {}: {}",
            self.at, self.what
        )
    }
}

impl core::error::Error for PackError {}

struct Reader {
    bytes: &'static [u8],
    pos: usize,
}

impl Reader {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'static [u8], PackError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(PackError { at: self.pos, what })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, PackError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, PackError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, PackError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

impl Embedded {
    /// Reads the index of `pack` (values are not copied).
    pub fn new(pack: &'static [u8]) -> Result<Embedded, PackError> {
        let mut r = Reader {
            bytes: pack,
            pos: 0,
        };
        if r.take(8, "too short for the magic")? != MAGIC {
            return Err(PackError {
                at: 0,
                what: "wrong magic (not a uni kv_ro pack, or another version)",
            });
        }
        let count = r.u32("truncated count")? as usize;
        // Each entry takes at least 50 bytes: a count that cannot fit is damage, not a reason
        // to allocate.
        if count > (pack.len() - r.pos) / 50 {
            return Err(PackError {
                at: 8,
                what: "count larger than the pack",
            });
        }
        let mut raw = Vec::with_capacity(count);
        for _ in 0..count {
            let at = r.pos;
            let len = r.u16("truncated key length")? as usize;
            let key =
                core::str::from_utf8(r.take(len, "truncated key")?).map_err(|_| PackError {
                    at,
                    what: "key is not UTF-8",
                })?;
            if key.is_empty() || key.starts_with('/') || key.ends_with('/') || key.contains("//") {
                return Err(PackError {
                    at,
                    what: "malformed key",
                });
            }
            let offset = r.u64("truncated offset")?;
            let size = r.u64("truncated length")?;
            let sha: &'static [u8; 32] = r
                .take(32, "truncated digest")?
                .try_into()
                .map_err(|_| PackError { at, what: "digest" })?;
            raw.push((at, key, offset, size, sha));
        }
        let data = &pack[r.pos..];
        let mut values = Vec::with_capacity(count);
        for (at, key, offset, size, sha256) in raw {
            let start = usize::try_from(offset).map_err(|_| PackError {
                at,
                what: "offset out of range",
            })?;
            let len = usize::try_from(size).map_err(|_| PackError {
                at,
                what: "length out of range",
            })?;
            let end = start
                .checked_add(len)
                .filter(|&e| e <= data.len())
                .ok_or(PackError {
                    at,
                    what: "value past the end of the pack",
                })?;
            if let Some(prev) = values.last().map(|v: &Value| v.key) {
                if prev.as_bytes() >= key.as_bytes() {
                    return Err(PackError {
                        at,
                        what: "keys not sorted or not unique",
                    });
                }
            }
            values.push(Value {
                key,
                data: &data[start..end],
                sha256,
            });
        }
        let store = Embedded {
            values: Arc::new(values),
        };
        // A key cannot be both a value and a dictionary ("a" and "a/b"). Such keys need not be
        // neighbours in the index ("a", "a.txt", "a/b": '.' sorts before '/'), so look for
        // each value's children.
        for v in store.values.iter() {
            if !store.children(v.key).is_empty() {
                return Err(PackError {
                    at: 12,
                    what: "a key is both a value and a dictionary",
                });
            }
        }
        Ok(store)
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the store holds no value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The sum of the values' sizes.
    pub fn total_bytes(&self) -> u64 {
        self.values.iter().map(|v| v.data.len() as u64).sum()
    }

    /// The value under `key`, borrowed from the image: no copy, no allocation.
    pub fn get_static(&self, key: &str) -> Result<&'static [u8], KvError> {
        self.value(key).map(|v| v.data)
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.values
            .binary_search_by(|v| v.key.as_bytes().cmp(key.as_bytes()))
    }

    fn value(&self, key: &str) -> Result<Value, KvError> {
        match self.find(key) {
            Ok(i) => Ok(self.values[i]),
            Err(_) if self.is_dictionary(key) => Err(KvError::ValueExpected(key.into())),
            Err(_) => Err(KvError::NotFound(key.into())),
        }
    }

    /// The values under dictionary `key`: a contiguous run of the sorted index.
    fn children(&self, key: &str) -> &[Value] {
        if key.is_empty() {
            return &self.values;
        }
        // The keys starting with "key/" are a contiguous run of the sorted index.
        let mut prefix = String::with_capacity(key.len() + 1);
        prefix.push_str(key);
        prefix.push('/');
        let start = self
            .values
            .partition_point(|v| v.key.as_bytes() < prefix.as_bytes());
        let run = self.values[start..]
            .iter()
            .take_while(|v| v.key.starts_with(prefix.as_str()))
            .count();
        &self.values[start..start + run]
    }

    fn is_dictionary(&self, key: &str) -> bool {
        key.is_empty() || !self.children(key).is_empty()
    }
}

impl KvRo for Embedded {
    async fn exists(&self, key: &str) -> Result<Option<EntryKind>, KvError> {
        Ok(if self.find(key).is_ok() {
            Some(EntryKind::Value)
        } else if self.is_dictionary(key) {
            Some(EntryKind::Dictionary)
        } else {
            None
        })
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, KvError> {
        self.get_partial(key, 0, usize::MAX).await
    }

    async fn get_partial(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>, KvError> {
        #[cfg(feature = "trace")]
        let op = crate::trace::op(
            crate::trace::Kind::KvGet,
            crate::trace::key_name(key).into(),
            offset,
        );
        let r = self.value(key).map(|v| {
            let data = v.data;
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let end = start.saturating_add(len).min(data.len());
            data[start..end].to_vec()
        });
        #[cfg(feature = "trace")]
        op.end(r.is_ok().into(), r.as_ref().map_or(0, |d| d.len() as u64));
        r
    }

    async fn size(&self, key: &str) -> Result<u64, KvError> {
        Ok(self.value(key)?.data.len() as u64)
    }

    async fn list(&self, key: &str) -> Result<Vec<(String, EntryKind)>, KvError> {
        if self.find(key).is_ok() {
            return Err(KvError::DictionaryExpected(key.into()));
        }
        if !self.is_dictionary(key) {
            return Err(KvError::NotFound(key.into()));
        }
        let skip = if key.is_empty() { 0 } else { key.len() + 1 };
        let mut out: Vec<(String, EntryKind)> = Vec::new();
        for v in self.children(key) {
            let rest = &v.key[skip..];
            let (name, kind) = match rest.split_once('/') {
                Some((dir, _)) => (dir, EntryKind::Dictionary),
                None => (rest, EntryKind::Value),
            };
            if out.last().map(|(n, _)| n.as_str()) != Some(name) {
                out.push((name.into(), kind));
            }
        }
        // Index order puts "a/x" before "a.txt" only when '/' sorts first; names are sorted
        // here on their own.
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    async fn digest(&self, key: &str) -> Result<String, KvError> {
        use core::fmt::Write;
        let v = self.value(key)?;
        let mut s = String::with_capacity(64);
        for b in v.sha256 {
            let _ = write!(s, "{b:02x}");
        }
        Ok(s)
    }
}

/// A pack in memory, from `(key, value, SHA-256 of the value)` in any order: for stores built
/// at run time, and for tests. `uni configure` writes the same format, streaming the files of a
/// directory.
pub fn pack(values: &[(&str, &[u8], [u8; 32])]) -> Vec<u8> {
    let mut values: Vec<&(&str, &[u8], [u8; 32])> = values.iter().collect();
    values.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = MAGIC.to_vec();
    out.extend((values.len() as u32).to_le_bytes());
    let mut offset = 0u64;
    for (key, value, sha256) in &values {
        out.extend((key.len() as u16).to_le_bytes());
        out.extend(key.as_bytes());
        out.extend(offset.to_le_bytes());
        out.extend((value.len() as u64).to_le_bytes());
        out.extend(sha256);
        offset += value.len() as u64;
    }
    for (_, value, _) in &values {
        out.extend(*value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec;

    /// A pack whose digests are the value's length repeated (the tests check that digests
    /// are passed through, not how they are computed).
    fn pack(files: &[(&str, &[u8])]) -> &'static [u8] {
        let values: Vec<(&str, &[u8], [u8; 32])> = files
            .iter()
            .map(|&(k, v)| (k, v, [v.len() as u8; 32]))
            .collect();
        Box::leak(super::pack(&values).into_boxed_slice())
    }

    fn block<F: core::future::Future>(f: F) -> F::Output {
        use core::task::{Context, Poll, Waker};
        let mut f = core::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => unreachable!("the embedded store never waits"),
        }
    }

    fn site() -> Embedded {
        Embedded::new(pack(&[
            ("index.html", b"<h1>hi</h1>"),
            ("css/site.css", b"body{}"),
            ("css/x/deep.css", b"x"),
            ("css.txt", b"not the dir"),
            ("docs/a b.txt", b"space"),
        ]))
        .unwrap()
    }

    #[test]
    fn a_key_that_is_also_a_dictionary_is_refused_even_when_not_adjacent() {
        // "a", "a.txt", "a/b": '.' sorts before '/', so "a" and "a/b" are not neighbours.
        let e = Embedded::new(pack(&[("a", b"1"), ("a.txt", b"2"), ("a/b", b"3")])).unwrap_err();
        assert_eq!(e.what, "a key is both a value and a dictionary");
        let e = Embedded::new(pack(&[("a", b"1"), ("a/b", b"3")])).unwrap_err();
        assert_eq!(e.what, "a key is both a value and a dictionary");
        assert!(Embedded::new(pack(&[("a.txt", b"2"), ("a/b", b"3")])).is_ok());
    }

    #[test]
    fn values_and_dictionaries() {
        let kv = site();
        assert_eq!(kv.len(), 5);
        assert_eq!(block(kv.get("index.html")).unwrap(), b"<h1>hi</h1>");
        assert_eq!(block(kv.get("css/x/deep.css")).unwrap(), b"x");
        assert_eq!(block(kv.size("docs/a b.txt")).unwrap(), 5);
        assert_eq!(
            block(kv.exists("css")).unwrap(),
            Some(EntryKind::Dictionary)
        );
        assert_eq!(block(kv.exists("css.txt")).unwrap(), Some(EntryKind::Value));
        assert_eq!(block(kv.exists("cs")).unwrap(), None);
        assert_eq!(block(kv.exists("")).unwrap(), Some(EntryKind::Dictionary));
        assert_eq!(
            block(kv.get("css")),
            Err(KvError::ValueExpected("css".into()))
        );
        assert_eq!(block(kv.get("nope")), Err(KvError::NotFound("nope".into())));
        assert_eq!(
            block(kv.list("index.html")),
            Err(KvError::DictionaryExpected("index.html".into()))
        );
        assert_eq!(
            block(kv.list("nope")),
            Err(KvError::NotFound("nope".into()))
        );
    }

    #[test]
    fn listing() {
        let kv = site();
        let names = |k| {
            block(kv.list(k))
                .unwrap()
                .into_iter()
                .map(|(n, k)| (n, k == EntryKind::Dictionary))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(""),
            vec![
                ("css".into(), true),
                ("css.txt".into(), false),
                ("docs".into(), true),
                ("index.html".into(), false)
            ]
        );
        assert_eq!(
            names("css"),
            vec![("site.css".into(), false), ("x".into(), true)]
        );
        assert_eq!(names("css/x"), vec![("deep.css".into(), false)]);
    }

    #[test]
    fn partial_reads_and_digest() {
        let kv = site();
        assert_eq!(block(kv.get_partial("index.html", 4, 3)).unwrap(), b"hi<");
        assert_eq!(block(kv.get_partial("index.html", 8, 100)).unwrap(), b"h1>");
        assert_eq!(block(kv.get_partial("index.html", 11, 5)).unwrap(), b"");
        assert_eq!(
            block(kv.get_partial("index.html", u64::MAX, usize::MAX)).unwrap(),
            b""
        );
        assert_eq!(block(kv.digest("css/site.css")).unwrap(), "06".repeat(32));
        assert_eq!(kv.get_static("css.txt").unwrap(), b"not the dir");
    }

    #[test]
    fn damaged_packs_are_errors() {
        let good = pack(&[("a", b"1"), ("b", b"22")]);
        for cut in 0..good.len() - 3 {
            // Every truncation that cuts into the index or a value is caught.
            assert!(Embedded::new(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = good.to_vec();
        bad[0] = b'X';
        assert_eq!(
            Embedded::new(Box::leak(bad.into_boxed_slice()))
                .unwrap_err()
                .at,
            0
        );
        assert!(Embedded::new(pack(&[("a", b"1"), ("a/b", b"2")])).is_err());
        assert!(Embedded::new(pack(&[("/abs", b"1")])).is_err());
        let mut huge = MAGIC.to_vec();
        huge.extend(u32::MAX.to_le_bytes());
        assert!(Embedded::new(Box::leak(huge.into_boxed_slice())).is_err());
        assert!(Embedded::new(pack(&[])).unwrap().is_empty());
    }
}
