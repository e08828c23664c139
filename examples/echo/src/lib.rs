//! A TCP echo server: every byte a client sends comes back, until the client closes its side.
//! The port is the boot argument `--port` (default 7). With `--log-heap`, each accepted
//! connection is logged with the heap's use at that moment, in bytes (for tests of what the
//! stack keeps after a load).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use uni_runtime::device::net::{Flow, Listener, NetError, Stack};
use uni_runtime::device::Console;
use uni_runtime::{AppResult, BootArgs};

/// Entry point; the devices come from `unikernel.toml` in declaration order.
pub async fn start(
    console: impl Console + Clone + 'static,
    net: impl Stack,
    args: BootArgs,
) -> AppResult {
    let port: u16 = args.get_or("port", 7)?;
    let log_heap = args.get("log-heap").is_some();
    let listener = net.listen(port).await?;
    console
        .log(&format!("echo: listening on {}", listener.local_addr()))
        .await?;
    loop {
        let (flow, peer) = listener.accept().await?;
        if log_heap {
            let h = uni_runtime::platform::heap();
            console
                .log(&format!(
                    "echo: {peer}: accepted; heap used {} bytes in {} allocations",
                    h.used, h.allocations
                ))
                .await?;
        }
        let console = console.clone();
        uni_runtime::task::spawn(async move {
            let result = echo(flow).await;
            let line = match result {
                Ok(n) => format!("echo: {peer}: {n} bytes echoed"),
                Err(e) => format!("echo: {peer}: {e}"),
            };
            let _ = console.log(&line).await;
        });
    }
}

async fn echo(mut flow: impl Flow) -> Result<u64, NetError> {
    let mut buf = [0u8; 4096];
    let mut total = 0u64;
    loop {
        let n = flow.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        flow.write_all(&buf[..n]).await?;
        total += n as u64;
    }
    flow.close().await?;
    Ok(total)
}
