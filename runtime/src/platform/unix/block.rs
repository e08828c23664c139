//! A block device backed by a file (MirageOS's mirage-block-unix): sectors of 512 bytes,
//! `pread`/`pwrite` at their offsets, and `flush` as `fdatasync`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::string::String;

use crate::device::{self, BlockError, BlockInfo};

/// The sector size of a file-backed disk.
pub const SECTOR_SIZE: u32 = 512;

/// A disk image file as a block device.
#[derive(Debug)]
pub struct Block {
    file: File,
    path: String,
    info: BlockInfo,
}

impl Block {
    /// Opens the disk image at `path`. It must exist and be a non-empty whole number of
    /// 512-byte sectors; `read_only` opens it for reading only.
    pub fn open(path: &str, read_only: bool) -> Result<Block, BlockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .map_err(|e| BlockError::Io(std::format!("opening the disk image {path}: {e}")))?;
        let len = file
            .metadata()
            .map_err(|e| BlockError::Io(std::format!("reading the size of {path}: {e}")))?
            .len();
        if len == 0 || !len.is_multiple_of(u64::from(SECTOR_SIZE)) {
            return Err(BlockError::Io(std::format!(
                "the disk image {path} is {len} bytes: a disk image is a non-empty whole number of \
                 {SECTOR_SIZE}-byte sectors (make one with `truncate -s 64M {path}`)"
            )));
        }
        Ok(Block {
            file,
            path: path.into(),
            info: BlockInfo {
                sector_size: SECTOR_SIZE,
                sectors: len / u64::from(SECTOR_SIZE),
                read_only,
            },
        })
    }

    fn offset(sector: u64) -> u64 {
        sector * u64::from(SECTOR_SIZE)
    }
}

impl device::Block for Block {
    fn info(&self) -> BlockInfo {
        self.info
    }

    async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        #[cfg(feature = "trace")]
        let op = crate::trace::op(crate::trace::Kind::BlockRead, buf.len() as u32, sector);
        let r = self.read_at(sector, buf);
        #[cfg(feature = "trace")]
        op.end(r.is_ok().into(), 0);
        r
    }

    async fn write(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        #[cfg(feature = "trace")]
        let op = crate::trace::op(crate::trace::Kind::BlockWrite, buf.len() as u32, sector);
        let r = self.write_at(sector, buf);
        #[cfg(feature = "trace")]
        op.end(r.is_ok().into(), 0);
        r
    }

    async fn flush(&self) -> Result<(), BlockError> {
        if self.info.read_only {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| BlockError::Io(std::format!("flushing {}: {e}", self.path)))
    }
}

impl Block {
    fn read_at(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        BlockError::check(&self.info, sector, buf.len())?;
        self.file
            .read_exact_at(buf, Self::offset(sector))
            .map_err(|e| {
                BlockError::Io(std::format!(
                    "reading sector {sector} of {}: {e}",
                    self.path
                ))
            })
    }

    fn write_at(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.info.read_only {
            return Err(BlockError::ReadOnly);
        }
        BlockError::check(&self.info, sector, buf.len())?;
        self.file
            .write_all_at(buf, Self::offset(sector))
            .map_err(|e| {
                BlockError::Io(std::format!(
                    "writing sector {sector} of {}: {e}",
                    self.path
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Block as _;
    use std::string::ToString;
    use std::vec;

    fn image(len: usize) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        std::fs::write(&path, vec![0u8; len]).unwrap();
        let p = path.to_str().unwrap().into();
        (dir, p)
    }

    #[test]
    fn writes_read_back_and_reach_the_file() {
        let (_dir, path) = image(8 * 512);
        let disk = Block::open(&path, false).unwrap();
        assert_eq!(disk.info().sectors, 8);
        let data: std::vec::Vec<u8> = (0..1024).map(|i| (i % 251) as u8).collect();
        crate::platform::block_on(async {
            disk.write(3, &data).await.unwrap();
            let mut back = vec![0u8; 1024];
            disk.read(3, &mut back).await.unwrap();
            assert_eq!(back, data);
            disk.flush().await.unwrap();
            assert!(matches!(
                disk.read(7, &mut back).await,
                Err(BlockError::OutOfRange { .. })
            ));
            assert!(matches!(
                disk.write(0, &data[..100]).await,
                Err(BlockError::Unaligned { .. })
            ));
        });
        let file = std::fs::read(&path).unwrap();
        assert_eq!(&file[3 * 512..5 * 512], &data[..]);
        assert!(file[..3 * 512].iter().all(|&b| b == 0));
    }

    #[test]
    fn refuses_bad_images_and_writes_when_read_only() {
        let (_dir, path) = image(1000);
        let e = Block::open(&path, false).unwrap_err().to_string();
        assert!(
            e.contains("1000 bytes") && e.contains("512-byte sectors"),
            "{e}"
        );
        let (_dir, path) = image(0);
        assert!(Block::open(&path, false).is_err());
        assert!(Block::open("/nonexistent/disk.img", false)
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/disk.img"));
        let (_dir, path) = image(512);
        let disk = Block::open(&path, true).unwrap();
        crate::platform::block_on(async {
            assert_eq!(disk.write(0, &[1u8; 512]).await, Err(BlockError::ReadOnly));
        });
    }
}
