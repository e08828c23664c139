//! Resolves each name of the boot argument `--names=a,b,…` and prints `name: address, …` or
//! `name: error`. Exits 1 if any lookup failed.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use uni_runtime::device::{Console, Resolver};
use uni_runtime::{AppResult, BootArgs};

/// Entry point.
pub async fn start(
    console: impl Console,
    _net: impl Sized,
    dns: impl Resolver,
    args: BootArgs,
) -> AppResult {
    let names = args.get("names").unwrap_or("");
    let mut failed = 0;
    for name in names.split(',').filter(|n| !n.is_empty()) {
        match dns.lookup_ipv4(name).await {
            Ok(addrs) => {
                let list: Vec<String> = addrs.iter().map(|a| format!("{a}")).collect();
                console.log(&format!("{name}: {}", list.join(", "))).await?;
            }
            Err(e) => {
                failed += 1;
                console.log(&format!("{name}: {e}")).await?;
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} lookup(s) failed").into());
    }
    Ok(())
}
