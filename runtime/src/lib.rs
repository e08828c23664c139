//! uni's runtime: the device traits applications are written against, boot-argument parsing,
//! and one platform per target.
//!
//! * [`device`] holds every device trait (console, clock, random, network stack, key-value store).
//!   An application takes its devices as values implementing these traits, so the same source
//!   builds for every target.
//! * [`platform`] is the implementation for the target being compiled: `unix` (a Linux process)
//!   or `xen` (an armv7 Xen guest). Exactly one is compiled in, chosen by one `cfg`.
//! * [`boot`] parses the boot arguments (argv on unix, the xl `extra=` string on Xen).
//! * [`dtb`] reads what the Xen platform needs from the domain's device tree (pure code, built
//!   and tested on every target).
//! * [`log`] is the logger behind the `log` crate's facade (`--log-level`), and [`metrics`] the
//!   counters the devices keep (printed on SIGUSR2 on unix, read from dom0 on Xen).
//! * [`entry!`] turns the generated `unikernel` function into the program's entry point.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(unix)]
extern crate std;

pub mod boot;
pub mod device;
pub mod dtb;
pub mod kv;
pub mod log;
pub mod metrics;
// The only place `unsafe` is allowed (the workspace denies it): the platforms' hardware,
// hypercall and shared-memory code, each block with its SAFETY argument.
#[allow(unsafe_code)]
pub mod platform;
pub mod task;
#[cfg(feature = "trace")]
pub mod trace;
pub mod xen_wire;

pub use boot::BootArgs;

/// Marks a boot milestone after the platform is up (a library's first listening socket, say). On
/// Xen, with the `--uni-boot-info` boot argument, it prints `uni: boot: <what> at N us` (the guest
/// clock since the image's first instruction) on the console; otherwise, and on unix, it does
/// nothing.
pub fn boot_milestone(what: &str) {
    #[cfg(all(target_arch = "arm", target_os = "none"))]
    platform::boot_milestone(what);
    #[cfg(not(all(target_arch = "arm", target_os = "none")))]
    let _ = what;
}

/// What an application's entry point returns. `Err` is printed on the console and the
/// unikernel exits with status 1 (unix) or shuts down as crashed (Xen).
pub type AppResult = Result<(), alloc::boxed::Box<dyn core::error::Error>>;

/// The heap's use at one moment, from [`platform::heap`]: for an app's own reports (a
/// server printing its memory every N requests, for instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes in live allocations.
    pub used: usize,
    /// Bytes the heap can still hand out (on unix, what malloc holds free; the OS may give
    /// more).
    pub free: usize,
    /// Live allocations where the allocator counts them (Xen); 0 on unix.
    pub allocations: usize,
}

impl core::fmt::Display for HeapStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "heap used {} KiB ({} allocations), {} KiB free",
            self.used / 1024,
            self.allocations,
            self.free / 1024
        )
    }
}
