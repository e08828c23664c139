//! uni's runtime: the device traits applications are written against, boot-argument parsing,
//! and one platform per target.
//!
//! * [`device`] holds every device trait (console, clock, random, network stack, key-value store).
//!   An application takes its devices as values implementing these traits, so the same source
//!   builds for every target.
//! * [`platform`] is the implementation for the target being compiled: `unix` (a Linux process)
//!   or `xen` (an armv7 Xen guest). Exactly one is compiled in, chosen by one `cfg`.
//! * [`boot`] parses the boot arguments (argv on unix, the xl `extra=` string on Xen).
//! * [`entry!`] turns the generated `unikernel` function into the program's entry point.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(unix)]
extern crate std;

pub mod boot;
pub mod device;
pub mod kv;
pub mod platform;
pub mod task;
pub mod xen_wire;

pub use boot::BootArgs;

/// What an application's entry point returns. `Err` is printed on the console and the
/// unikernel exits with status 1 (unix) or shuts down as crashed (Xen).
pub type AppResult = Result<(), alloc::boxed::Box<dyn core::error::Error>>;
