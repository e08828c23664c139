//! Panics on purpose. On Xen the runtime prints the panic's location and message on the
//! console and shuts the domain down as crashed; on unix the process exits with status 101.
#![no_std]
#![forbid(unsafe_code)]

use uni_runtime::device::Console;
use uni_runtime::AppResult;

/// Entry point.
pub async fn start(console: impl Console) -> AppResult {
    console.log("crash: about to panic").await?;
    let depth: u32 = 3;
    panic!("crash: deliberate panic at depth {depth}");
}
