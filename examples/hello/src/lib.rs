//! The hello unikernel, after MirageOS's tutorial: `hello` and `world` alternately, four lines,
//! one second apart.
#![no_std]
#![forbid(unsafe_code)]

use core::time::Duration;
use uni_runtime::device::{Clock, Console};
use uni_runtime::AppResult;

/// Entry point; the devices come from `unikernel.toml` in declaration order.
pub async fn start(console: impl Console, clock: impl Clock) -> AppResult {
    for i in 0..4 {
        if i > 0 {
            clock.sleep(Duration::from_secs(1)).await;
        }
        console
            .log(if i % 2 == 0 { "hello" } else { "world" })
            .await?;
    }
    Ok(())
}
