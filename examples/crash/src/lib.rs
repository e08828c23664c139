//! Panics on purpose. The runtime prints the panic's location and message, then ends: on Xen
//! the domain shuts down as crashed, on unix the process exits 1. `--in-task` panics in a task.
#![no_std]
#![forbid(unsafe_code)]

use uni_runtime::device::Console;
use uni_runtime::{AppResult, BootArgs};

/// Entry point.
pub async fn start(console: impl Console, args: BootArgs) -> AppResult {
    console.log("crash: about to panic").await?;
    let depth: u32 = elsewhere(&args).await;
    panic!("crash: deliberate panic at depth {depth}");
}

/// 3, or with `--in-task`, never: a spawned task panics (as an HTTP handler would, in the task
/// of its connection) while this one waits, so the panic must end the unikernel by itself.
async fn elsewhere(args: &BootArgs) -> u32 {
    if args.get("in-task").is_none() {
        return 3;
    }
    uni_runtime::task::spawn(async { panic!("crash: deliberate panic in a task") });
    core::future::pending().await
}
