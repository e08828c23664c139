//! Spawning concurrent tasks on the unikernel's single-threaded executor.

pub use crate::platform::spawn;
