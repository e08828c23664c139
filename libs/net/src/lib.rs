//! The network stack uni applications use.
//!
//! Applications are written against [`uni_runtime::device::net`]'s traits. This crate holds the
//! implementations and their configuration:
//!
//! * [`socket::SocketStack`] (unix only): host sockets through `async-io`. `stack = "socket"`.
//! * [`direct::DirectStack`]: smoltcp over the platform's network device (Xen netfront, or a
//!   TAP device on unix). `stack = "direct"`.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(unix)]
extern crate std;

mod config;
pub mod direct;
pub mod dns;
// Its unit tests run without the feature too (in the workspace's tests).
#[cfg(any(feature = "trace", test))]
mod retransmit;
#[cfg(unix)]
pub mod socket;

pub use config::{Ipv4Setting, NetConfig, NetConfigError};
