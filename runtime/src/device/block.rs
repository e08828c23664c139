use alloc::string::String;
use core::fmt;

/// What a block device is: its sector size, how many sectors it has, and whether it may be
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Bytes per sector: a power of two, at least 512.
    pub sector_size: u32,
    /// The capacity, in sectors.
    pub sectors: u64,
    /// Whether [`Block::write`] is refused.
    pub read_only: bool,
}

impl BlockInfo {
    /// The capacity in bytes.
    pub fn bytes(&self) -> u64 {
        self.sectors * u64::from(self.sector_size)
    }
}

/// A block device: a disk of fixed-size sectors (MirageOS's `Mirage_block.S`).
///
/// # Contract
/// * [`read`](Block::read) and [`write`](Block::write) transfer whole sectors: the buffer's
///   length MUST be a multiple of [`BlockInfo::sector_size`], else
///   [`BlockError::Unaligned`]; the sectors `sector..sector + len / sector_size` MUST lie within
///   the device, else [`BlockError::OutOfRange`]. Nothing is transferred when either is wrong.
/// * A `read` after a `write` of the same sectors returns what was written, even before a
///   [`flush`](Block::flush).
/// * When `flush` returns `Ok`, everything written before it was called is durable: it
///   survives a crash of the unikernel, of the host or a power cut.
/// * A write to a read-only device is [`BlockError::ReadOnly`].
/// * Any other failure is [`BlockError::Io`], saying what failed; a device never panics on a
///   failing backend.
pub trait Block {
    /// The device's geometry.
    fn info(&self) -> BlockInfo;
    /// Reads the sectors from `sector` on into `buf`.
    async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError>;
    /// Writes `buf` to the sectors from `sector` on.
    async fn write(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError>;
    /// Makes every write that returned before this call durable.
    async fn flush(&self) -> Result<(), BlockError>;
}

/// Why a block operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// The buffer is not a whole number of sectors.
    Unaligned {
        /// The buffer's length.
        len: usize,
        /// The device's sector size.
        sector_size: u32,
    },
    /// The request reaches past the end of the device.
    OutOfRange {
        /// The first sector asked for.
        sector: u64,
        /// How many sectors were asked for.
        count: u64,
        /// The device's capacity in sectors.
        sectors: u64,
    },
    /// The device is read-only.
    ReadOnly,
    /// The backend failed: what was being done, and why.
    Io(String),
}

impl BlockError {
    /// Checks a request of `len` bytes at `sector` against `info`.
    pub fn check(info: &BlockInfo, sector: u64, len: usize) -> Result<(), BlockError> {
        let size = info.sector_size as usize;
        if !len.is_multiple_of(size) {
            return Err(BlockError::Unaligned {
                len,
                sector_size: info.sector_size,
            });
        }
        let count = (len / size) as u64;
        match sector.checked_add(count) {
            Some(end) if end <= info.sectors => Ok(()),
            _ => Err(BlockError::OutOfRange {
                sector,
                count,
                sectors: info.sectors,
            }),
        }
    }
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::Unaligned { len, sector_size } => write!(
                f,
                "a transfer of {len} bytes is not a whole number of {sector_size}-byte sectors"
            ),
            BlockError::OutOfRange {
                sector,
                count,
                sectors,
            } => write!(
                f,
                "sectors {sector}..{} are past the end of the device ({sectors} sectors)",
                sector.saturating_add(*count)
            ),
            BlockError::ReadOnly => f.write_str("the device is read-only"),
            BlockError::Io(what) => f.write_str(what),
        }
    }
}

impl core::error::Error for BlockError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_alignment_and_range() {
        let info = BlockInfo {
            sector_size: 512,
            sectors: 8,
            read_only: false,
        };
        assert_eq!(BlockError::check(&info, 0, 4096), Ok(()));
        assert_eq!(BlockError::check(&info, 7, 512), Ok(()));
        assert_eq!(
            BlockError::check(&info, 0, 100),
            Err(BlockError::Unaligned {
                len: 100,
                sector_size: 512
            })
        );
        assert_eq!(
            BlockError::check(&info, 7, 1024),
            Err(BlockError::OutOfRange {
                sector: 7,
                count: 2,
                sectors: 8
            })
        );
        assert!(BlockError::check(&info, u64::MAX, 512).is_err());
        assert_eq!(info.bytes(), 4096);
    }
}
