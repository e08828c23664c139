//! `uni trace`: a snapshot of a deployed guest's trace ring, copied in dom0 by
//! `uni-trace-dump` (built here for dom0's architecture, uploaded when missing or changed) and
//! converted to Chrome JSON here (docs/tracing.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use sha2::Digest as _;

use super::deploy::{board_of, explain, name_of, optional_config, place, Place};
use super::show;
use crate::cli::Trace;
use crate::remote::quote;
use crate::status::status;

/// dom0's side, after deploy's script (its `fail`): `uni_trace NAME READER` runs the reader on
/// the domain and prints the image as `uni: trace <base64>` lines.
const PRELUDE: &str = r#"
uni_trace() {
	"$2" "$1" >/tmp/uni-trace.$$ 2>/tmp/uni-trace-err.$$ || {
		why=$(tail -n 1 /tmp/uni-trace-err.$$)
		rm -f /tmp/uni-trace.$$ /tmp/uni-trace-err.$$
		fail trace "$why"
	}
	base64 /tmp/uni-trace.$$ | sed 's/^/uni: trace /'
	rm -f /tmp/uni-trace.$$ /tmp/uni-trace-err.$$
}
"#;

pub fn run(args: Trace, file: &Path) -> Result<ExitCode> {
    let (name, out) = match args.args.as_slice() {
        [out] => (None, out),
        [name, out] => (Some(name.clone()), out),
        _ => bail!("uni trace takes [NAME] OUT"),
    };
    let out = PathBuf::from(out);
    let cfg = optional_config(file)?;
    let name = name_of(name, cfg.as_ref())?;
    let Place { remote, dir } = place(&args.remote, cfg.as_ref(), &board_of(cfg.as_ref())?)?;
    let host = remote.spec.to_string();

    let machine = remote
        .raw_call("", "uname -m")
        .map_err(|e| explain(e, &host))?;
    let arch = match machine.trim() {
        "aarch64" | "arm64" => "arm64",
        m if m.starts_with("armv7") || m.starts_with("armv8l") => "armhf",
        m => bail!("{host}'s dom0 is a `{m}` machine; uni builds the trace reader for armhf and arm64 dom0s"),
    };
    let reader = crate::trace::dom0_reader(arch)?;
    let bytes = std::fs::read(&reader).with_context(|| format!("reading {}", reader.display()))?;
    let hash: String = sha2::Sha256::digest(&bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tools = format!("{dir}/.tools");
    let path = format!("{tools}/uni-trace-dump-{hash}");
    let have = remote
        .raw_call(
            "",
            &format!(
                "mkdir -p {t} && if [ -x {p} ]; then echo uni: have yes; else echo uni: have no; fi",
                t = quote(&tools),
                p = quote(&path)
            ),
        )
        .map_err(|e| explain(e, &host))?;
    if !have.contains("uni: have yes") {
        status(
            "Uploading",
            format!(
                "the trace reader ({arch}, {} KiB) to {host}:{path}",
                bytes.len() / 1024
            ),
        );
        let part = format!("{path}.part");
        remote.upload(&bytes, &part)?;
        remote
            .raw_call(
                "",
                &format!(
                    "chmod 755 {part} && mv {part} {p} && for f in {t}/uni-trace-dump-*; do [ \"$f\" = {p} ] || rm -f \"$f\"; done",
                    part = quote(&part),
                    t = quote(&tools),
                    p = quote(&path)
                ),
            )
            .map_err(|e| explain(e, &host))?;
    }
    let reply = remote
        .call(
            PRELUDE,
            &format!("uni_trace {} {}", quote(&name), quote(&path)),
        )
        .map_err(|e| explain(e, &host))?;
    let text: String = reply.all("trace").collect();
    let image = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("the trace ring came from {host} damaged: {e}"))?;
    let ring = crate::trace::decode(&image).context("in the ring dom0 sent")?;
    let json = serde_json::to_vec(&ring.to_chrome(&name))?;
    std::fs::write(&out, json).with_context(|| format!("writing {}", show(&out)))?;
    status(
        "Traced",
        format!("{name} on {host}: {} to {}", ring.summary(), show(&out)),
    );
    Ok(ExitCode::SUCCESS)
}
