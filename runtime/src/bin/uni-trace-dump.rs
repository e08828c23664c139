//! `uni-trace-dump DOMAIN`: run in dom0, it copies the trace ring of a guest built with tracing
//! (docs/tracing.md) to stdout, as the ring's memory image. DOMAIN is a domain id or name. The
//! guest published its ring's grant references under `/local/domain/<id>/data/uni-trace/`
//! (`pages`, then `refs-0`, `refs-1`, … of up to 512 each); this maps them read-only through
//! `/dev/xen/gntdev`, copies them and unmaps them, so the guest runs on undisturbed (or stays
//! as it crashed, with `on_crash = "preserve"`). `uni run --target xen-arm --trace` and `uni
//! trace` run it; it needs `xenstore-read` (and `xl`, for a name) on PATH.
//!
//! Exit status: 0 with the image on stdout; 1 with a one-line error on stderr.

use std::io::Write;
use std::process::{Command, ExitCode};

/// Grant references per `refs-K` key (the guest's `REFS_PER_KEY`).
const REFS_PER_KEY: usize = 512;

fn tool(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn dump(domain: &str) -> Result<Vec<u8>, String> {
    let domid: u32 = match domain.parse() {
        Ok(id) => id,
        Err(_) => tool("xl", &["domid", domain])?
            .parse()
            .map_err(|_| format!("`xl domid {domain}` did not print a domain id"))?,
    };
    let dir = format!("/local/domain/{domid}/data/uni-trace");
    let pages = tool("xenstore-read", &[&format!("{dir}/pages")]).map_err(|e| {
        format!("domain {domain} published no trace ring ({e}); was it built with tracing (uni build --trace)?")
    })?;
    let pages: usize = pages
        .parse()
        .map_err(|_| format!("{dir}/pages is `{pages}`, not a number of pages"))?;
    let mut refs = Vec::with_capacity(pages);
    for k in 0..pages.div_ceil(REFS_PER_KEY) {
        let key = format!("{dir}/refs-{k}");
        for r in tool("xenstore-read", &[&key])?.split_whitespace() {
            refs.push(
                r.parse::<u32>()
                    .map_err(|_| format!("{key} holds `{r}`, not a grant reference"))?,
            );
        }
    }
    if refs.len() != pages {
        return Err(format!(
            "{dir} lists {} grant references for {pages} pages",
            refs.len()
        ));
    }
    let image = uni_runtime::platform::dom0::copy_granted(domid, &refs)?;
    if image.get(..4) != Some(b"UNIT".as_slice()) {
        return Err(format!(
            "the pages domain {domain} granted do not start with a trace ring's magic \"UNIT\""
        ));
    }
    Ok(image)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [domain] = args.as_slice() else {
        eprintln!(
            "usage: uni-trace-dump DOMAIN (a domain id or name): writes its trace ring to stdout"
        );
        return ExitCode::from(2);
    };
    match dump(domain).and_then(|image| {
        std::io::stdout()
            .lock()
            .write_all(&image)
            .map_err(|e| format!("writing to stdout: {e}"))
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uni-trace-dump: {e}");
            ExitCode::from(1)
        }
    }
}
