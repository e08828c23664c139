//! `uni run`: build, then run on the local target.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use super::{build, load, show};
use crate::cli::Run;
use crate::status::status;
use crate::target::Target;

pub fn run(args: Run, file: &Path) -> Result<ExitCode> {
    let (cfg, target) = load(file, args.target)?;
    let built = build::build(cfg, target)?;
    match target {
        Target::Unix => {
            status("Running", format!("{} {}", show(&built.artifact), args.args.join(" ")));
            let st = Command::new(&built.artifact)
                .args(&args.args)
                .status()
                .with_context(|| format!("starting `{}`", built.artifact.display()))?;
            Ok(match (st.code(), st.signal()) {
                (Some(c), _) => ExitCode::from(c as u8),
                (None, Some(sig)) => ExitCode::from(128u8.wrapping_add(sig as u8)),
                _ => ExitCode::FAILURE,
            })
        }
        Target::XenArm => bail!("running on xen-arm is not implemented yet (issue #3)"),
    }
}
