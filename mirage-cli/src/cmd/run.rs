//! `uni run`: build, then run on the local target.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

use crate::emu;

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
        Target::XenArm => run_xen(&args, file, built.artifact),
    }
}

/// Boots the image on the emulated board and mirrors how the guest ended in the exit code:
/// poweroff 0, crash 1, reboot 2, boot failure 3, timeout 124.
fn run_xen(args: &Run, file: &Path, image: std::path::PathBuf) -> Result<ExitCode> {
    let (cfg, _) = load(file, Some(Target::XenArm))?;
    let board = super::xen_board(&cfg)?;
    let prepared = emu::prepare(&board, &emu::cache_dir())?;
    let mut xl = image.with_extension("xl");
    if !args.args.is_empty() {
        // Boot arguments after `--` go after the xl file's own `extra=`, for this run only.
        let text = std::fs::read_to_string(&xl).with_context(|| format!("reading {}", xl.display()))?;
        let run_xl = cfg.dir.join("_build/xen-arm").join(format!("{}.run.xl", cfg.name));
        std::fs::write(&run_xl, crate::xl::append_extra(&text, &args.args.join(" "))?)?;
        xl = run_xl;
    }
    let guest = emu::Guest { name: cfg.name.clone(), image, xl, marker: None };
    let opts = emu::RunOptions {
        timeout: std::time::Duration::from_secs(args.timeout),
        verbose: crate::status::verbose(),
        log: cfg.dir.join("_build/xen-arm/serial.log"),
        forwards: args.publish.clone(),
        // a board-side check for tests, e.g. `ping -c 3 -w 60 $GUEST_IP` (see emu::RunOptions)
        dom0_check: std::env::var("UNI_DOM0_CHECK").ok().filter(|c| !c.trim().is_empty()),
    };
    let outcome = emu::run(&prepared, &guest, &opts)?;
    status("Finished", format!("{} {outcome} (exit code {})", cfg.name, outcome.exit_code()));
    Ok(ExitCode::from(outcome.exit_code()))
}
