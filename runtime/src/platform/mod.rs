//! The platform for the target being compiled. This is the one place that chooses: every other
//! module, and every generated main, names `uni_runtime::platform::…` without a `cfg`.

#[cfg(all(target_os = "linux", feature = "dom0"))]
pub mod dom0;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod xen;
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub use xen::*;
