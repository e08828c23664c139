//! The `kv_ro` device at build time: a directory packed into one file that the generated crate
//! embeds with `include_bytes!` (MirageOS's `crunch`, without generating one Rust literal per
//! byte, so that a large directory costs rustc one file read, not a huge array to type-check).
//!
//! The format is specified, and read, in `runtime/src/kv.rs` (`uni_runtime::kv::Embedded`):
//! a magic, an index sorted by key (key, offset, length, SHA-256 of each value), then the
//! values. The index names every value's digest, so two packs with equal indexes and lengths
//! hold the same bytes: [`Pack::is_current`] compares only those, and writing streams the files
//! without holding them in memory.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// The first bytes of a pack (the runtime's `uni_runtime::kv::MAGIC`).
pub const MAGIC: &[u8; 8] = b"UNIKV\0\0\x01";

/// A planned pack of a directory: its index, and where each value's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    /// The directory packed.
    pub dir: PathBuf,
    /// Magic, count and entries: everything before the values.
    pub index: Vec<u8>,
    /// The files, in key order, with their sizes.
    pub files: Vec<(PathBuf, u64)>,
}

impl Pack {
    /// Walks `dir` (following symbolic links) and hashes every file.
    pub fn of_dir(dir: &Path) -> Result<Pack> {
        let mut entries: Vec<(String, PathBuf)> = vec![];
        for e in walkdir::WalkDir::new(dir)
            .follow_links(true)
            .sort_by_file_name()
        {
            let e =
                e.with_context(|| format!("reading the kv_ro directory `{}`", dir.display()))?;
            if !e.file_type().is_file() {
                continue;
            }
            let rel = e
                .path()
                .strip_prefix(dir)
                .expect("walkdir yields paths under its root");
            let mut key = String::new();
            for c in rel.components() {
                let part = c.as_os_str().to_str().with_context(|| {
                    format!(
                        "`{}`: file names in a kv_ro directory must be UTF-8 (they become keys)",
                        e.path().display()
                    )
                })?;
                if !key.is_empty() {
                    key.push('/');
                }
                key.push_str(part);
            }
            if key.len() > u16::MAX as usize {
                bail!(
                    "`{}`: the path is longer than a kv_ro key may be (65535 bytes)",
                    e.path().display()
                );
            }
            entries.push((key, e.into_path()));
        }
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

        let mut index = MAGIC.to_vec();
        let count =
            u32::try_from(entries.len()).context("more than 2^32 files in a kv_ro directory")?;
        index.extend(count.to_le_bytes());
        let mut files = Vec::with_capacity(entries.len());
        let mut offset = 0u64;
        for (key, path) in entries {
            let (size, sha) = hash_file(&path)?;
            index.extend((key.len() as u16).to_le_bytes());
            index.extend(key.as_bytes());
            index.extend(offset.to_le_bytes());
            index.extend(size.to_le_bytes());
            index.extend(sha);
            offset += size;
            files.push((path, size));
        }
        Ok(Pack {
            dir: dir.to_path_buf(),
            index,
            files,
        })
    }

    /// The pack's size in bytes.
    pub fn len(&self) -> u64 {
        self.index.len() as u64 + self.files.iter().map(|(_, s)| s).sum::<u64>()
    }

    /// Whether the pack is empty of values.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether `path` already holds this pack: same length, same index (which names every
    /// value's digest).
    pub fn is_current(&self, path: &Path) -> bool {
        let Ok(mut f) = File::open(path) else {
            return false;
        };
        if f.metadata().map(|m| m.len()).ok() != Some(self.len()) {
            return false;
        }
        let mut head = vec![0; self.index.len()];
        f.read_exact(&mut head).is_ok() && head == self.index
    }

    /// Writes the pack to `path`, streaming the files. A file that changed size since it was
    /// hashed is an error (the pack would not match its index).
    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("kv.partial");
        let mut out = BufWriter::new(
            File::create(&tmp).with_context(|| format!("creating `{}`", tmp.display()))?,
        );
        out.write_all(&self.index)?;
        for (file, size) in &self.files {
            let copied = io::copy(
                &mut File::open(file).with_context(|| format!("reading `{}`", file.display()))?,
                &mut out,
            )
            .with_context(|| format!("copying `{}` into `{}`", file.display(), tmp.display()))?;
            if copied != *size {
                bail!("`{}` changed while it was being packed ({size} bytes hashed, {copied} copied); build again", file.display());
            }
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing `{}`", path.display()))?;
        Ok(())
    }
}

fn hash_file(path: &Path) -> Result<(u64, [u8; 32])> {
    let mut f = File::open(path).with_context(|| format!("reading `{}`", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading `{}`", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, h.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uni_runtime::device::{EntryKind, KvRo};
    use uni_runtime::kv::Embedded;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        futures_lite::future::block_on(f)
    }

    fn site() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let put = |p: &str, v: &[u8]| {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        };
        put("index.html", b"<h1>hello</h1>");
        put("abc.txt", b"abc");
        put("docs/getting started.txt", b"spaces in the name");
        put("docs/deep/er/ü.txt", "non-ASCII name".as_bytes());
        put("empty", b"");
        std::fs::create_dir_all(d.path().join("no-files-here")).unwrap();
        d
    }

    /// What the CLI writes, the runtime reads: values, dictionaries, digests.
    #[test]
    fn written_packs_read_back_in_the_runtime() {
        let d = site();
        let pack = Pack::of_dir(d.path()).unwrap();
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("site.kv");
        pack.write(&out).unwrap();
        assert!(pack.is_current(&out));
        let bytes: &'static [u8] = Box::leak(std::fs::read(&out).unwrap().into_boxed_slice());
        assert_eq!(bytes.len() as u64, pack.len());
        let kv = Embedded::new(bytes).unwrap();
        assert_eq!(kv.len(), 5);
        assert_eq!(block(kv.get("index.html")).unwrap(), b"<h1>hello</h1>");
        assert_eq!(
            block(kv.get("docs/getting started.txt")).unwrap(),
            b"spaces in the name"
        );
        assert_eq!(
            block(kv.get("docs/deep/er/ü.txt")).unwrap(),
            "non-ASCII name".as_bytes()
        );
        assert_eq!(block(kv.get("empty")).unwrap(), b"");
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            block(kv.digest("abc.txt")).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            block(kv.exists("docs/deep")).unwrap(),
            Some(EntryKind::Dictionary)
        );
        assert_eq!(
            block(kv.exists("no-files-here")).unwrap(),
            None,
            "empty directories hold no keys"
        );
        let root: Vec<String> = block(kv.list(""))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(root, ["abc.txt", "docs", "empty", "index.html"]);
    }

    #[test]
    fn a_changed_file_makes_the_pack_stale() {
        let d = site();
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("stale.kv");
        Pack::of_dir(d.path()).unwrap().write(&out).unwrap();
        assert!(
            Pack::of_dir(d.path()).unwrap().is_current(&out),
            "packing is deterministic"
        );
        // Same size, different bytes: only the digest tells.
        std::fs::write(d.path().join("abc.txt"), b"abd").unwrap();
        assert!(!Pack::of_dir(d.path()).unwrap().is_current(&out));
        std::fs::write(d.path().join("abc.txt"), b"abc").unwrap();
        std::fs::write(d.path().join("new.txt"), b"new").unwrap();
        assert!(!Pack::of_dir(d.path()).unwrap().is_current(&out));
    }

    /// Many files make one pack with an index entry each: the generated code does not grow
    /// with the directory (it embeds the one file), and every value reads back.
    #[test]
    fn a_large_directory_is_one_pack() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..3000 {
            let p = d.path().join(format!("d{}/f{i}.txt", i % 30));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("file {i}\n").repeat(i % 7)).unwrap();
        }
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("big.kv");
        let pack = Pack::of_dir(d.path()).unwrap();
        pack.write(&out).unwrap();
        let kv = Embedded::new(Box::leak(std::fs::read(&out).unwrap().into_boxed_slice())).unwrap();
        assert_eq!(kv.len(), 3000);
        assert_eq!(block(kv.list("")).unwrap().len(), 30);
        assert_eq!(block(kv.list("d7")).unwrap().len(), 100);
        for i in (0..3000).step_by(97) {
            assert_eq!(
                block(kv.get(&format!("d{}/f{i}.txt", i % 30))).unwrap(),
                format!("file {i}\n").repeat(i % 7).into_bytes()
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_are_refused_with_the_path() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(std::ffi::OsStr::from_bytes(b"bad\xff.txt")),
            b"x",
        )
        .unwrap();
        let e = format!("{:#}", Pack::of_dir(d.path()).unwrap_err());
        assert!(e.contains("bad") && e.contains("must be UTF-8"), "{e}");
    }
}
