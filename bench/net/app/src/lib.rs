//! TCP servers for the network bench (bench/net), the same services the Linux domU offers
//! there with busybox:
//!
//! | port | service |
//! |---|---|
//! | 9 | discard: reads until the client shuts down its side, then answers the byte count (`N\n`) and closes |
//! | 19 | source: reads a line `N\n`, sends N bytes, closes |
//! | 7 | echo: sends back every byte until the client shuts down its side |
//! | 99 | quit: the first connection ends the app (the domain powers off) |
//!
//! Nothing is printed per connection, so the console does not slow the figures.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use core::future::Future;
use uni_runtime::device::net::{Flow, Listener, NetError, Stack};
use uni_runtime::device::Console;
use uni_runtime::AppResult;

pub const DISCARD: u16 = 9;
pub const SOURCE: u16 = 19;
pub const ECHO: u16 = 7;
pub const QUIT: u16 = 99;

/// Entry point; the devices come from `unikernel.toml` in declaration order.
pub async fn start(console: impl Console, net: impl Stack) -> AppResult {
    serve(net.listen(DISCARD).await?, discard);
    serve(net.listen(SOURCE).await?, source);
    serve(net.listen(ECHO).await?, echo);
    let quit = net.listen(QUIT).await?;
    let addr = net.ipv4().map(|c| c.address);
    console
        .log(&format!("netbench: ready on {addr:?}: discard {DISCARD}, source {SOURCE}, echo {ECHO}, quit {QUIT}"))
        .await?;
    let (_, peer) = quit.accept().await?;
    console.log(&format!("netbench: quit by {peer}")).await?;
    Ok(())
}

/// Accepts connections on `listener` for ever, each handled by its own task.
fn serve<L, H, F>(listener: L, handle: H)
where
    L: Listener + 'static,
    H: Fn(L::Flow) -> F + 'static,
    F: Future<Output = Result<(), NetError>> + 'static,
{
    uni_runtime::task::spawn(async move {
        while let Ok((flow, _)) = listener.accept().await {
            let done = handle(flow);
            uni_runtime::task::spawn(async move {
                let _ = done.await;
            });
        }
    });
}

async fn discard<F: Flow>(mut flow: F) -> Result<(), NetError> {
    let mut buf = [0u8; 8192];
    let mut total = 0u64;
    loop {
        match flow.read(&mut buf).await? {
            0 => break,
            n => total += n as u64,
        }
    }
    flow.write_all(format!("{total}\n").as_bytes()).await?;
    flow.close().await
}

async fn source<F: Flow>(mut flow: F) -> Result<(), NetError> {
    // the request: decimal digits up to a newline
    let mut want = 0u64;
    let mut byte = [0u8; 1];
    loop {
        if flow.read(&mut byte).await? == 0 {
            return flow.close().await;
        }
        match byte[0] {
            d @ b'0'..=b'9' => want = want.saturating_mul(10).saturating_add((d - b'0') as u64),
            b'\n' => break,
            _ => {}
        }
    }
    let buf = [0u8; 8192];
    while want > 0 {
        let n = want.min(buf.len() as u64) as usize;
        let sent = flow.write(&buf[..n]).await?;
        want -= sent as u64;
    }
    flow.close().await
}

async fn echo<F: Flow>(mut flow: F) -> Result<(), NetError> {
    let mut buf = [0u8; 4096];
    loop {
        let n = flow.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        flow.write_all(&buf[..n]).await?;
    }
    flow.close().await
}
