//! The metrics' answer to dom0 ([`crate::metrics`]): a task that watches
//! `data/uni-stats/request` in the domain's xenstore directory and, each time dom0 writes a new
//! value there, writes every counter as `data/uni-stats/<name>` and then the request's value to
//! `data/uni-stats/answered`, which dom0 waits for (`uni stats`, templates/deploy/dom0.sh).
//! xenstore refuses `.` in a node's name, so the names' dots are dashes there
//! (`data/uni-stats/http-requests-200`); `uni stats` turns them back.
//!
//! `data/` is the directory libxl lets a guest write; the guest makes the request key itself at
//! boot, so that it owns it and reads what dom0 writes there.

use alloc::format;

use super::xenstore::Xenstore;
use crate::device::Xenstore as _;

const DIR: &str = "data/uni-stats";

/// Runs for the domain's life; a xenstore failure ends it, with a warning (the unikernel runs on
/// without its stats).
pub async fn responder() {
    if let Err(e) = serve().await {
        log::warn!("stats: no more answers to dom0's uni stats: {e}");
    }
}

async fn serve() -> Result<(), crate::device::XenstoreError> {
    let xs = Xenstore::new();
    let request = format!("{DIR}/request");
    let answered = format!("{DIR}/answered");
    xs.write(&request, "").await?;
    xs.write(&answered, "").await?;
    let watch = xs.watch(&request).await?;
    let mut last = alloc::string::String::new();
    loop {
        watch.changed().await?;
        let req = xs.read(&request).await?;
        if req.is_empty() || req == last {
            continue; // the watch's first firing, or our own answer's echo
        }
        for (name, value) in crate::metrics::snapshot() {
            xs.write(
                &format!("{DIR}/{}", name.replace('.', "-")),
                &format!("{value}"),
            )
            .await?;
        }
        xs.write(&answered, &req).await?;
        log::debug!("stats: answered dom0's request {req}");
        last = req;
    }
}
