//! Device traits: the contracts between an application and the platform.
//!
//! An application is a library crate whose entry point takes its devices as arguments typed by
//! these traits, in the order `unikernel.toml` declares them:
//!
//! ```
//! use core::time::Duration;
//! use uni_runtime::device::{Clock, Console};
//!
//! pub async fn start(console: impl Console, clock: impl Clock) -> uni_runtime::AppResult {
//!     console.log("hello").await?;
//!     clock.sleep(Duration::from_secs(1)).await;
//!     Ok(())
//! }
//! ```
//!
//! The generated main crate picks one implementation of each trait for the target and passes it
//! in. Every trait here is implemented on every target that offers the device; the
//! [`crate::platform`] and `uni-net` crates hold the implementations.
//!
//! Methods are `async fn`s. The executors are single-threaded, so futures need not be `Send`.
#![allow(async_fn_in_trait)]

mod block;
mod clock;
mod console;
mod dns;
mod kv;
pub mod net;
pub mod netif;
mod random;
mod xenstore;

pub use block::{Block, BlockError, BlockInfo};
pub use clock::{Clock, Instant, WallTime};
pub use console::{Console, ConsoleError};
pub use dns::{DnsError, Resolver};
pub use kv::{Change, Changed, Commit, CommitHash, EntryKind, KvError, KvRo, KvRw};
pub use random::Random;
pub use xenstore::{Xenstore, XenstoreError};
