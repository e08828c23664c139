//! Opening a store the way a unikernel's `kv_rw` device does: mount it, and format the device
//! only when asked and only when it holds no store at all.

use alloc::vec;

use uni_runtime::device::{Block, Clock};

use crate::{MountError, Store, MAGIC, SUPERBLOCKS};

/// Mounts the store on `block`. With `format`, a device that holds no store (neither
/// superblock starts with [`MAGIC`]: zeroed, another format) is formatted first; a store that
/// is damaged is never formatted, whatever `format` says: mounting it reports the damage.
pub async fn open<B: Block, C: Clock>(
    block: B,
    clock: C,
    format: bool,
) -> Result<Store<B, C>, MountError> {
    if format && !holds_a_store(&block).await? {
        return Store::format(block, clock).await;
    }
    Store::mount(block, clock).await
}

/// Whether either superblock of `block` starts with the store's magic.
async fn holds_a_store<B: Block>(block: &B) -> Result<bool, MountError> {
    let info = block.info();
    if info.sectors < SUPERBLOCKS {
        return Ok(false);
    }
    let size = info.sector_size as usize;
    let mut buf = vec![0u8; size * SUPERBLOCKS as usize];
    block
        .read(0, &mut buf)
        .await
        .map_err(|e| MountError::Io(alloc::format!("reading the superblocks: {e}")))?;
    Ok(buf.chunks(size).any(|s| s.starts_with(MAGIC)))
}
