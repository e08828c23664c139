//! Writes sectors `0..--sectors` of its disk with a pattern derived from `--seed`, flushes, and
//! reads them back (`--mode=write`, the default); or only reads and checks them
//! (`--mode=check`). It prints what it did and fails on the first difference.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use uni_runtime::device::{Block, Console};
use uni_runtime::{AppResult, BootArgs};

/// The byte at `offset` of the pattern for `seed`.
fn pattern(seed: u64, offset: u64) -> u8 {
    (offset.wrapping_mul(31).wrapping_add(seed.wrapping_mul(7)) % 251) as u8
}

pub async fn start(console: impl Console, disk: impl Block, args: BootArgs) -> AppResult {
    let seed: u64 = args.get_or("seed", 1)?;
    let sectors: u64 = args.get_or("sectors", 16)?;
    let mode: String = args.get_or("mode", String::from("write"))?;
    let info = disk.info();
    console
        .log(&format!(
            "disk: {} sectors of {} bytes{}",
            info.sectors,
            info.sector_size,
            if info.read_only { ", read-only" } else { "" }
        ))
        .await?;
    let size = info.sector_size as usize;
    let mut buf = vec![0u8; size * sectors as usize];
    if mode == "write" {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = pattern(seed, i as u64);
        }
        disk.write(0, &buf).await?;
        disk.flush().await?;
        console
            .log(&format!("wrote and flushed {sectors} sectors"))
            .await?;
    }
    let mut back = vec![0u8; buf.len()];
    disk.read(0, &mut back).await?;
    if let Some(i) = (0..back.len()).find(|&i| back[i] != pattern(seed, i as u64)) {
        return Err(format!(
            "byte {i} reads {} instead of {}",
            back[i],
            pattern(seed, i as u64)
        )
        .into());
    }
    console
        .log(&format!("read back {sectors} sectors: all as written"))
        .await?;
    // past the end is an error, not a panic
    let past = disk.read(info.sectors, &mut back[..size]).await;
    console
        .log(&format!("past the end: {}", past.unwrap_err()))
        .await?;
    Ok(())
}
