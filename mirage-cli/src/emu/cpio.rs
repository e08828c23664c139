//! A writer for the cpio "newc" format, the one Linux reads as an initramfs.
//!
//! Every entry is owned by root, with mtime 0, so the same tree always gives the same bytes.
//! Linux accepts several archives in a row (each may be compressed or not), which is how a run
//! adds its guest to the cached dom0 initramfs without rebuilding it.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// Writes entries one by one, then [`Writer::finish`] writes the trailer.
pub struct Writer<W: Write> {
    out: W,
    written: u64,
    ino: u32,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer {
            out,
            written: 0,
            ino: 0,
        }
    }

    pub fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.entry(name, S_IFDIR | (perm & 0o7777), &[])
    }

    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, S_IFREG | (perm & 0o7777), data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.entry(name, S_IFLNK | 0o777, target.as_bytes())
    }

    /// Adds everything under `root` (not `root` itself), sorted by name, named relative to it.
    pub fn tree(&mut self, root: &Path) -> io::Result<()> {
        self.tree_at(root, "")
    }

    fn tree_at(&mut self, dir: &Path, prefix: &str) -> io::Result<()> {
        let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name.to_str().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("non-UTF-8 name in {}", dir.display()),
                )
            })?;
            let rel = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            let meta = std::fs::symlink_metadata(e.path())?;
            let perm = meta.permissions().mode();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(e.path())?;
                self.symlink(&rel, &target.to_string_lossy())?;
            } else if meta.is_dir() {
                self.dir(&rel, perm)?;
                self.tree_at(&e.path(), &rel)?;
            } else if meta.is_file() {
                self.file(&rel, perm, &std::fs::read(e.path())?)?;
            }
            // sockets, fifos and devices do not occur in .debs' data; /dev is devtmpfs
        }
        Ok(())
    }

    /// Writes the `TRAILER!!!` entry and returns the writer and the archive's length.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.entry_raw("TRAILER!!!", 0, 0, &[])?;
        Ok((self.out, self.written))
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.ino += 1;
        let ino = self.ino;
        self.entry_raw(name, mode, ino, data)
    }

    fn entry_raw(&mut self, name: &str, mode: u32, ino: u32, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: over 4 GiB"))
        })?;
        let nlink = if mode & S_IFDIR == S_IFDIR { 2 } else { 1 };
        // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
        // rdevmajor, rdevminor, namesize (with the NUL), check
        let header = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{len:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    /// Header+name and data are each padded to a multiple of 4 bytes.
    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0; 3][..n])
    }
}

#[cfg(test)]
mod tests {
    use super::Writer;

    #[test]
    fn one_file_archive_matches_the_newc_layout() {
        let mut w = Writer::new(Vec::new());
        w.file("a", 0o644, b"hi\n").unwrap();
        let (bytes, len) = w.finish().unwrap();
        assert_eq!(len as usize, bytes.len());
        assert_eq!(bytes.len() % 4, 0);
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert_eq!(&header[..6], "070701");
        assert_eq!(&header[6..14], "00000001", "ino");
        assert_eq!(&header[14..22], "000081a4", "mode: regular file 0644");
        assert_eq!(&header[54..62], "00000003", "file size");
        assert_eq!(&header[94..102], "00000002", "name size with NUL");
        // 110-byte header + "a\0" = 112, already aligned; then data padded to 116
        assert_eq!(&bytes[110..112], b"a\0");
        assert_eq!(&bytes[112..115], b"hi\n");
        assert_eq!(bytes[115], 0);
        let trailer = std::str::from_utf8(&bytes[116..116 + 110]).unwrap();
        assert_eq!(&trailer[..6], "070701");
        assert_eq!(&bytes[226..236], b"TRAILER!!!");
    }

    #[test]
    fn same_tree_gives_same_bytes() {
        let d = std::env::temp_dir().join(format!("uni-cpio-test-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/f"), b"x").unwrap();
        std::os::unix::fs::symlink("sub/f", d.join("l")).unwrap();
        let pack = || {
            let mut w = Writer::new(Vec::new());
            w.tree(&d).unwrap();
            w.finish().unwrap().0
        };
        let a = pack();
        assert_eq!(a, pack());
        let s = String::from_utf8_lossy(&a);
        assert!(s.contains("l\0") && s.contains("sub/f\0") && s.contains("sub/f"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
