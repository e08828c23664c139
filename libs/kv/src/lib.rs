//! kv_rw: a crash-safe key-value store with commit history, over any
//! [`Block`](uni_runtime::device::Block) device.
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
pub use open::open;
pub use format::{MAGIC, MAX_KEY, SUPERBLOCKS, TRAILER, VERSION};
pub use store::{Stats, Store, HISTORY_BYTES, HISTORY_KEPT};
