//! The block bench's guest (bench/block): four workloads on its disk, one after the other,
//! timed with the guest's monotonic clock (`device::Clock`), the same four that
//! bench/block/linux runs in the Linux domU:
//!
//! | line | workload |
//! |---|---|
//! | `seq_write` | `--seq-mib` MiB from sector 0 on, `--chunk-kib` KiB per `write`, then one `flush` |
//! | `seq_read` | the same range read back, `--chunk-kib` KiB per `read` |
//! | `rand_read` | `--ops` reads of 4 KiB at 4 KiB-aligned offsets anywhere on the disk, one at a time |
//! | `rand_write_flush` | `--ops` writes of 4 KiB at such offsets, each followed by a `flush`, one at a time |
//!
//! The offsets come from a fixed xorshift64 sequence (`--seed`), the one the Linux program
//! uses. A random workload stops early once it has run `--seconds` (TCG is slow); its line
//! says how many operations it did (the clock is looked at every 16). Each line is `blkbench: NAME bytes=B ops=N us=T`.
//! Nothing is printed while a workload runs.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec;
use uni_runtime::device::{Block, Clock, Console};
use uni_runtime::{AppResult, BootArgs};

/// Bytes of one random transfer.
pub const BLOCK: usize = 4096;

/// The offsets' sequence (xorshift64), as bench/block/linux has it.
pub struct Offsets {
    state: u64,
    blocks: u64,
}

impl Offsets {
    /// Offsets of 4 KiB blocks on a disk of `blocks` of them.
    pub fn new(seed: u64, blocks: u64) -> Offsets {
        Offsets {
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            blocks,
        }
    }

    /// The next block's number.
    pub fn next_block(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x % self.blocks
    }
}

pub async fn start(
    console: impl Console,
    clock: impl Clock,
    disk: impl Block,
    args: BootArgs,
) -> AppResult {
    let seq_mib: u64 = args.get_or("seq-mib", 16)?;
    let chunk_kib: usize = args.get_or("chunk-kib", 1024)?;
    let ops: u64 = args.get_or("ops", 2000)?;
    let seconds: u64 = args.get_or("seconds", 60)?;
    let seed: u64 = args.get_or("seed", 1)?;
    let info = disk.info();
    let ss = u64::from(info.sector_size);
    console
        .log(&format!(
            "blkbench: disk {} sectors of {} bytes; seq {seq_mib} MiB in {chunk_kib} KiB \
             transfers, {ops} random 4 KiB ops (at most {seconds} s each)",
            info.sectors, info.sector_size
        ))
        .await?;
    let chunk = chunk_kib * 1024;
    let seq = seq_mib << 20;
    if chunk == 0
        || !(chunk as u64).is_multiple_of(ss)
        || !seq.is_multiple_of(chunk as u64)
        || seq > info.bytes()
    {
        return Err(format!(
            "--chunk-kib must divide --seq-mib and be whole sectors, and --seq-mib fit the disk \
             ({} bytes)",
            info.bytes()
        )
        .into());
    }
    let us = |t0: u64| (clock.now().as_nanos() - t0) / 1000;
    let report = |name: &str, bytes: u64, ops: u64, us: u64| {
        format!("blkbench: {name} bytes={bytes} ops={ops} us={us}")
    };

    // sequential write, then one flush
    let mut buf = vec![0u8; chunk];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let n = seq / chunk as u64;
    let t0 = clock.now().as_nanos();
    for k in 0..n {
        disk.write(k * chunk as u64 / ss, &buf).await?;
    }
    disk.flush().await?;
    let t = us(t0);
    console.log(&report("seq_write", seq, n, t)).await?;

    // sequential read
    let t0 = clock.now().as_nanos();
    for k in 0..n {
        disk.read(k * chunk as u64 / ss, &mut buf).await?;
    }
    let t = us(t0);
    console.log(&report("seq_read", seq, n, t)).await?;

    // random 4 KiB reads, one at a time
    let blocks = info.bytes() / BLOCK as u64;
    let limit = seconds * 1_000_000_000;
    let mut b = vec![0u8; BLOCK];
    let mut at = Offsets::new(seed, blocks);
    let t0 = clock.now().as_nanos();
    let mut done = 0;
    while done < ops && (!done.is_multiple_of(16) || clock.now().as_nanos() - t0 < limit) {
        disk.read(at.next_block() * BLOCK as u64 / ss, &mut b)
            .await?;
        done += 1;
    }
    let t = us(t0);
    console
        .log(&report("rand_read", done * BLOCK as u64, done, t))
        .await?;

    // random 4 KiB writes, each made durable before the next
    let mut at = Offsets::new(seed.wrapping_add(1), blocks);
    let t0 = clock.now().as_nanos();
    let mut done = 0;
    while done < ops && (!done.is_multiple_of(16) || clock.now().as_nanos() - t0 < limit) {
        disk.write(at.next_block() * BLOCK as u64 / ss, &b).await?;
        disk.flush().await?;
        done += 1;
    }
    let t = us(t0);
    console
        .log(&report("rand_write_flush", done * BLOCK as u64, done, t))
        .await?;
    console.log("blkbench: done").await?;
    Ok(())
}
