//! `uni run`: build, then run on the local target.

use std::os::unix::process::CommandExt;
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
            // Become the unikernel: signals reach it directly and its exit code is ours.
            let err = Command::new(&built.artifact).args(&args.args).exec();
            Err(err).with_context(|| format!("starting `{}`", built.artifact.display()))
        }
        Target::XenArm => bail!("running on xen-arm is not implemented yet (issue #3)"),
    }
}
