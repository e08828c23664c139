//! An in-memory block device that can fail the way disks fail, for tests and fuzzing: it
//! keeps what was flushed apart from what was only written, so a power cut can drop, keep, or
//! keep part of the writes since the last flush, tear a sector, flip bits, or make the device
//! fail from the Nth operation on.
//!
//! ```
//! use uni_kv::mem::{Cut, MemBlock};
//! use uni_runtime::device::Block;
//!
//! futures_lite::future::block_on(async {
//!     let disk = MemBlock::new(64, 512);
//!     disk.write(3, &[1u8; 512]).await.unwrap(); // written, not flushed
//!     let after = disk.power_cut(Cut::DropAll);   // the machine loses power
//!     let mut back = [0u8; 512];
//!     after.read(3, &mut back).await.unwrap();
//!     assert_eq!(back, [0u8; 512]);
//! });
//! ```
//!
//! Clones share the device, so a test can keep a handle while a store owns another.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use uni_runtime::device::{Block, BlockError, BlockInfo};

/// What survives of the writes since the last flush when the power goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// None of them.
    DropAll,
    /// All of them (the disk had written its cache out anyway).
    KeepAll,
    /// The first `n` sector writes, in the order they were issued.
    Prefix(usize),
    /// Sector write `i` survives when bit `i % 64` of the mask is set: any subset, in any
    /// order, as a disk with a write cache may reorder.
    Subset(u64),
    /// The first `n` sector writes, then the next one only its first `bytes` bytes (a torn
    /// sector: the rest keeps its old contents).
    Torn {
        /// Whole sector writes that survive.
        n: usize,
        /// Bytes of the next one that do.
        bytes: usize,
    },
}

#[derive(Debug)]
struct Inner {
    sector_size: u32,
    /// What survives a power cut.
    durable: Vec<u8>,
    /// What reads see.
    current: Vec<u8>,
    /// Sector writes since the last flush: sector number and contents.
    pending: Vec<(u64, Vec<u8>)>,
    read_only: bool,
    /// Writes and flushes left before the device fails (`None`: never).
    ops_left: Option<usize>,
    writes: u64,
    flushes: u64,
}

/// A RAM disk with fault injection. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct MemBlock(Rc<RefCell<Inner>>);

impl MemBlock {
    /// A zeroed disk of `sectors` sectors of `sector_size` bytes.
    pub fn new(sectors: u64, sector_size: u32) -> MemBlock {
        MemBlock::from_image(
            alloc::vec![0u8; (sectors * u64::from(sector_size)) as usize],
            sector_size,
        )
    }

    /// A disk holding `image` (cut to whole sectors), all of it durable.
    pub fn from_image(mut image: Vec<u8>, sector_size: u32) -> MemBlock {
        image.truncate(image.len() - image.len() % sector_size as usize);
        MemBlock(Rc::new(RefCell::new(Inner {
            sector_size,
            durable: image.clone(),
            current: image,
            pending: Vec::new(),
            read_only: false,
            ops_left: None,
            writes: 0,
            flushes: 0,
        })))
    }

    /// What reads see now.
    pub fn image(&self) -> Vec<u8> {
        self.0.borrow().current.clone()
    }

    /// Sector writes not yet flushed.
    pub fn pending_writes(&self) -> usize {
        self.0.borrow().pending.len()
    }

    /// Write and flush calls so far.
    pub fn ops(&self) -> (u64, u64) {
        let i = self.0.borrow();
        (i.writes, i.flushes)
    }

    /// Makes writes fail as on a read-only device.
    pub fn set_read_only(&self, read_only: bool) {
        self.0.borrow_mut().read_only = read_only;
    }

    /// After `n` more writes and flushes, every write and flush fails with an I/O error and
    /// changes nothing, as if the machine had stopped there (then call [`power_cut`]).
    ///
    /// [`power_cut`]: MemBlock::power_cut
    pub fn fail_after(&self, n: usize) {
        self.0.borrow_mut().ops_left = Some(n);
    }

    /// The disk as it is after a power cut now: what was flushed, plus what `cut` keeps of the
    /// writes since. A new, independent device; this one is unchanged.
    pub fn power_cut(&self, cut: Cut) -> MemBlock {
        let i = self.0.borrow();
        let ss = i.sector_size as usize;
        let mut image = i.durable.clone();
        for (k, (sector, data)) in i.pending.iter().enumerate() {
            let at = *sector as usize * ss;
            let keep = match cut {
                Cut::DropAll => 0,
                Cut::KeepAll => ss,
                Cut::Prefix(n) => usize::from(k < n) * ss,
                Cut::Subset(mask) => usize::from(mask >> (k % 64) & 1 == 1) * ss,
                Cut::Torn { n, .. } if k < n => ss,
                Cut::Torn { n, bytes } if k == n => bytes.min(ss),
                Cut::Torn { .. } => 0,
            };
            image[at..at + keep].copy_from_slice(&data[..keep]);
        }
        MemBlock::from_image(image, i.sector_size)
    }

    /// Flips bit `bit` (0–7) of byte `offset`, in what is durable and in what reads see.
    pub fn flip_bit(&self, offset: usize, bit: u8) {
        let mut i = self.0.borrow_mut();
        i.durable[offset] ^= 1 << bit;
        i.current[offset] ^= 1 << bit;
    }

    /// Overwrites bytes at `offset`, durably (a test planting foreign data).
    pub fn poke(&self, offset: usize, bytes: &[u8]) {
        let mut i = self.0.borrow_mut();
        i.durable[offset..offset + bytes.len()].copy_from_slice(bytes);
        i.current[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    fn spend(i: &mut Inner, what: &str) -> Result<(), BlockError> {
        match &mut i.ops_left {
            Some(0) => Err(BlockError::Io(
                String::from(what) + ": the device has failed",
            )),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Block for MemBlock {
    fn info(&self) -> BlockInfo {
        let i = self.0.borrow();
        BlockInfo {
            sector_size: i.sector_size,
            sectors: (i.current.len() / i.sector_size as usize) as u64,
            read_only: i.read_only,
        }
    }

    async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        BlockError::check(&self.info(), sector, buf.len())?;
        let i = self.0.borrow();
        let at = sector as usize * i.sector_size as usize;
        buf.copy_from_slice(&i.current[at..at + buf.len()]);
        Ok(())
    }

    async fn write(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        let info = self.info();
        if info.read_only {
            return Err(BlockError::ReadOnly);
        }
        BlockError::check(&info, sector, buf.len())?;
        let mut i = self.0.borrow_mut();
        MemBlock::spend(&mut i, "writing")?;
        i.writes += 1;
        let ss = i.sector_size as usize;
        for (k, chunk) in buf.chunks(ss).enumerate() {
            let s = sector + k as u64;
            let at = s as usize * ss;
            i.current[at..at + ss].copy_from_slice(chunk);
            i.pending.push((s, chunk.to_vec()));
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), BlockError> {
        let mut i = self.0.borrow_mut();
        MemBlock::spend(&mut i, "flushing")?;
        i.flushes += 1;
        let ss = i.sector_size as usize;
        let pending = core::mem::take(&mut i.pending);
        for (sector, data) in pending {
            let at = sector as usize * ss;
            i.durable[at..at + ss].copy_from_slice(&data);
        }
        Ok(())
    }
}
