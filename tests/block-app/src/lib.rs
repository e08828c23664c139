//! Writes sectors `0..--sectors` of its disk with a pattern derived from `--seed` in one transfer,
//! flushes, and reads them back in one transfer (`--mode=write`, the default); or only reads and
//! checks them (`--mode=check`). Then it reads `--parallel` 4 KiB blocks of that range at once,
//! and writes them back at once, so that more requests are in flight than a Xen ring holds. It
//! prints what it did and fails on the first difference.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::Poll;
use uni_runtime::device::{Block, BlockError, Console};
use uni_runtime::{AppResult, BootArgs};

/// The byte at `offset` of the pattern for `seed`.
fn pattern(seed: u64, offset: u64) -> u8 {
    (offset.wrapping_mul(31).wrapping_add(seed.wrapping_mul(7)) % 251) as u8
}

/// The first byte of `buf`, which starts at byte `base` of the disk, that is not the pattern.
fn first_difference(buf: &[u8], seed: u64, base: u64) -> Option<(u64, u8, u8)> {
    let i = (0..buf.len()).find(|&i| buf[i] != pattern(seed, base + i as u64))?;
    Some((base + i as u64, buf[i], pattern(seed, base + i as u64)))
}

type Job<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;

/// Runs every job at once on this task; the first error, once all have finished.
async fn join_all(mut jobs: Vec<Option<Job<'_>>>) -> Result<(), String> {
    let mut result = Ok(());
    poll_fn(|cx| {
        for slot in jobs.iter_mut() {
            if let Some(job) = slot {
                if let Poll::Ready(r) = job.as_mut().poll(cx) {
                    *slot = None;
                    if result.is_ok() {
                        result = r;
                    }
                }
            }
        }
        if jobs.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    result
}

pub async fn start(console: impl Console, disk: impl Block, args: BootArgs) -> AppResult {
    let seed: u64 = args.get_or("seed", 1)?;
    let sectors: u64 = args.get_or("sectors", 16)?;
    let parallel: u64 = args.get_or("parallel", 0)?;
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
    if let Some((at, got, want)) = first_difference(&back, seed, 0) {
        return Err(format!("byte {at} reads {got} instead of {want}").into());
    }
    console
        .log(&format!("read back {sectors} sectors: all as written"))
        .await?;

    // `parallel` 4 KiB blocks spread over the range, all read at once, then all written at once
    let block = 4096u64;
    let span = sectors * size as u64;
    if parallel > 0 && span >= block {
        let blocks = span / block;
        let offset = |k: u64| (k * 7919 % blocks) * block;
        let disk = &disk;
        let reads = (0..parallel)
            .map(|k| {
                let job: Job<'_> = Box::pin(async move {
                    let at = offset(k);
                    let mut b = vec![0u8; block as usize];
                    disk.read(at / size as u64, &mut b)
                        .await
                        .map_err(|e| format!("{e}"))?;
                    match first_difference(&b, seed, at) {
                        None => Ok(()),
                        Some((at, got, want)) => Err(format!(
                            "a parallel read: byte {at} reads {got} instead of {want}"
                        )),
                    }
                });
                Some(job)
            })
            .collect();
        join_all(reads).await?;
        let writes = (0..parallel)
            .map(|k| {
                let job: Job<'_> = Box::pin(async move {
                    let at = offset(k);
                    let b: Vec<u8> = (0..block).map(|i| pattern(seed, at + i)).collect();
                    disk.write(at / size as u64, &b)
                        .await
                        .map_err(|e| format!("{e}"))
                });
                Some(job)
            })
            .collect();
        join_all(writes).await?;
        disk.flush().await?;
        console
            .log(&format!(
                "{parallel} parallel 4 KiB reads and writes: all as written"
            ))
            .await?;
    }

    // past the end and unaligned are errors, not panics, and transfer nothing
    let past = disk.read(info.sectors, &mut back[..size]).await;
    console
        .log(&format!("past the end: {}", past.unwrap_err()))
        .await?;
    let odd = disk.write(0, &[0u8; 100]).await;
    if !matches!(odd, Err(BlockError::Unaligned { .. })) {
        return Err(format!("an unaligned write gave {odd:?}").into());
    }
    console
        .log(&format!("unaligned: {}", odd.unwrap_err()))
        .await?;
    Ok(())
}
