//! Prints what a Xen guest can learn about itself: its name and domain id from the Xen store,
//! a key it writes and reads back, and a boot argument from the xl `extra=` line.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use uni_runtime::device::{Console, Xenstore};
use uni_runtime::{AppResult, BootArgs};

/// Entry point.
pub async fn start(console: impl Console, xs: impl Xenstore, args: BootArgs) -> AppResult {
    let name = xs.read("name").await?;
    let domid = xs.read("domid").await?;
    console.log(&format!("xenstore: name = {name}")).await?;
    console.log(&format!("xenstore: domid = {domid}")).await?;

    xs.write("data/uni-greeting", "written by the guest")
        .await?;
    let back = xs.read("data/uni-greeting").await?;
    console
        .log(&format!("xenstore: data/uni-greeting = {back}"))
        .await?;
    let data = xs.directory("data").await?;
    console
        .log(&format!("xenstore: data/ holds {}", data.join(",")))
        .await?;

    match xs.read("no/such/key").await {
        Err(e) => {
            console
                .log(&format!("xenstore: no/such/key -> {e}"))
                .await?
        }
        Ok(v) => {
            console
                .log(&format!("xenstore: no/such/key unexpectedly = {v}"))
                .await?
        }
    }

    let greeting = args.get("greeting").unwrap_or("(none)");
    console
        .log(&format!("boot argument: greeting = {greeting}"))
        .await?;
    Ok(())
}
