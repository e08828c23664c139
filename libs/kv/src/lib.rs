//! kv_rw: a crash-safe key-value store with commit history, over any
//! [`Block`](uni_runtime::device::Block) device (MirageOS's `Mirage_kv.RW`, with commits in the
//! spirit of Irmin).
//!
//! ```
//! use uni_kv::{mem::MemBlock, Store};
//! use uni_runtime::device::{Change, KvRo, KvRw};
//! # struct Clock;
//! # impl uni_runtime::device::Clock for Clock {
//! #     fn now(&self) -> uni_runtime::device::Instant { Default::default() }
//! #     fn wall(&self) -> uni_runtime::device::WallTime { Default::default() }
//! #     async fn sleep(&self, _: core::time::Duration) {}
//! # }
//!
//! futures_lite::future::block_on(async {
//!     let disk = MemBlock::new(2048, 512); // 1 MiB
//!     // a blank disk is no store: mount refuses it, format is asked for explicitly
//!     assert!(Store::mount(disk.clone(), Clock).await.is_err());
//!     let mut store = Store::format(disk.clone(), Clock).await?;
//!     store.set("config/name", b"uni").await?; // durable when it returns
//!     store
//!         .batch(&[Change::Set("a", b"1"), Change::Remove("config")]) // atomic
//!         .await?;
//!     let again = Store::mount(disk, Clock).await?;
//!     assert_eq!(again.get("a").await?, b"1");
//!     assert_eq!(again.log().await?.len(), 2); // newest first, each naming its parent
//!     # Ok::<(), Box<dyn core::error::Error>>(())
//! }).unwrap();
//! ```
//!
//! # Guarantees
//! * A `set`, `remove` or `batch` that returned `Ok` is durable: it flushed before returning.
//! * A batch is atomic across a crash: after a power cut (whatever part of the unflushed
//!   writes reached the disk, torn sectors included) the store holds the state before it or
//!   after it, never a mix, and what was committed before is never damaged, because no sector
//!   that holds committed data is ever written again while it is live.
//! * A change that does not fit is [`KvError::NoSpace`](uni_runtime::device::KvError::NoSpace)
//!   with the bytes it needs and the bytes free; nothing changes, and reads, removals and
//!   smaller changes go on working.
//! * Damage (a flipped bit, a lost write) is found at mount, which reads and checks the whole
//!   log: [`MountError::Damaged`] names the first damaged sector and what it held. A value
//!   damaged later is an error on `get`, never wrong bytes.
//! * A device that holds no store is [`MountError::NotAStore`], saying what its first sector
//!   looks like; [`Store::mount`] never writes to it. Only [`Store::format`] makes a store
//!   ([`open`] with `format = true` formats a device that holds no store, never a damaged one).
//! * Space is reclaimed by compaction, so overwrites run forever on a fixed disk.
//!
//! # Design
//! Log-structured, with two superblocks and two regions (docs/kv-rw-format.md has the
//! layout and the argument):
//! * Sectors 0 and 1 hold two copies of the superblock: the geometry, the active region, the
//!   log's end, the last commit's number and hash, and a generation counter.
//! * The rest is two equal regions. The active one holds a log: a checkpoint (the whole state
//!   at some commit) then commits appended after it. Every log sector ends in a trailer (commit
//!   number, record tag, CRC-32C over the sector and its number). A commit lists its changes
//!   with each value's SHA-256 and its parent's hash, and its hash covers all that, so it
//!   names the whole history before it.
//! * A commit is written after the log's end, then superblock copy 0, a flush, copy 1, a flush.
//! * When a commit does not fit in the region, the live values are copied into the other
//!   region as one checkpoint (with the commit folded in), and the superblocks switch to it
//!   the same way. Live data can take up to one region: about half the disk.
//! * Mount picks the newer valid superblock, reads the whole log, checks every sector, hash
//!   and parent, and rebuilds the index in memory. If the newer superblock names sectors that
//!   the older one does not vouch for and they are damaged, that was an unacknowledged change
//!   cut short: the store mounts at the older one and says so in [`Store::notes`].
//!
//! Memory: the index (every key, with its value's place, length, SHA-256 and time) and the
//! latest [`HISTORY_KEPT`] commits' metadata are in RAM; values are read from the device on
//! `get`. A commit holds its values in memory while it is written; a compaction holds one value
//! at a time. Mount time is linear in the log's length (one region at most).
//!
//! Times: a commit is stamped with the wall clock of the [`Clock`](uni_runtime::device::Clock)
//! the store was given ([`Clock::wall`](uni_runtime::device::Clock::wall)), which may jump;
//! commits are ordered by their number, not their time.
//!
//! One writer: changes take `&mut self`. A change whose future is dropped before it completes
//! leaves the store refusing changes until it is mounted again (reads go on).
//!
//! # Why not a crate
//! The registry's embedded stores were checked, and none fits:
//! * `littlefs2` (0.8) binds littlefs's C code (`littlefs2-sys` builds it with `cc` and
//!   `bindgen`, so a C cross toolchain and libclang for armv7a-none-eabihf), behind a
//!   synchronous `Storage` trait of read/write/erase with no flush; a file system, no history.
//! * `ekv` (1.0) is async and transactional, but for raw NOR flash (page erase, write-once
//!   bytes), with its geometry and limits fixed at build time (by default 4 KiB pages, 256
//!   pages, values of at most 1 KiB), and no history.
//! * `sequential-storage` (8.0) is an async map over `embedded-storage-async`'s `NorFlash`;
//!   items carry a `u16` length (values under 64 KiB), there are no multi-key transactions and
//!   no history.
//! * `embedded-storage`(`-async`) are only NOR-flash traits (erase, write, no flush).
//! * sled and its kind need std and an operating system.
//!
//! None gives commits with parents, checksummed commits, an async sector device with flush as
//! its durability point, values of a MiB and more, and pure Rust for the guest target. The
//! format here is small instead, documented, host-tested against power cuts, torn writes and
//! bit flips, and fuzzed (`fuzz/fuzz_targets/kv_mount.rs`). Checksums are the `crc` crate's
//! CRC-32C and the `sha2` crate's SHA-256.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(async_fn_in_trait)]

extern crate alloc;

mod error;
mod format;
pub mod mem;
mod open;
mod store;

pub use error::MountError;
pub use format::{MAGIC, MAX_KEY, SUPERBLOCKS, TRAILER, VERSION};
pub use open::open;
pub use store::{Stats, Store, HISTORY_BYTES, HISTORY_KEPT};
