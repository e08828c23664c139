//! `uni configure`.

use std::path::Path;
use std::process::ExitCode;

use std::fmt::Write as _;

use anyhow::Result;

use super::{load, show};
use crate::cli::Configure;
use crate::generate;
use crate::status::{self, status};

pub fn run(args: Configure, file: &Path) -> Result<ExitCode> {
    let (cfg, target) = load(file, args.target)?;
    let plan = generate::plan(&cfg, target)?;
    if args.dry_run {
        let mut o = String::new();
        writeln!(o, "plan for `{}` (target {}, board {}), nothing written:", cfg.name, target, plan.board)?;
        writeln!(o, "  device order: {}", plan.order.join(" -> "))?;
        for f in &plan.files {
            let state = if generate::stale_files(&plan).iter().any(|s| s.path == f.path) { "write" } else { "keep " };
            writeln!(o, "  {state} {} ({} lines)", show(&f.path), f.contents.lines().count())?;
        }
        writeln!(o, "  run   rustfmt --edition 2021 on src/main.rs (already applied above)")?;
        writeln!(o, "  then `uni build` runs: {}", crate::cmd::build::cargo_command_line(&cfg, &plan))?;
        if status::verbose() {
            for f in &plan.files {
                writeln!(o, "\n--- {} ---\n{}", show(&f.path), f.contents)?;
            }
        }
        super::out(&o)?;
        return Ok(ExitCode::SUCCESS);
    }
    let stale = generate::stale_files(&plan);
    if args.check {
        if stale.is_empty() {
            status(
                "Fresh",
                format!("{} is up to date with {}", show(&plan.dir), show(&cfg.file)),
            );
            return Ok(ExitCode::SUCCESS);
        }
        for f in &stale {
            let why = if f.path.exists() { "out of date" } else { "missing" };
            eprintln!("error: `{}` is {why}", show(&f.path));
        }
        eprintln!("help: run `uni configure --target {target}` to regenerate");
        return Ok(ExitCode::FAILURE);
    }
    status("Configuring", format!("{} (target {target}, board {})", cfg.name, plan.board));
    generate::write(&plan)?;
    let written: String = plan.files.iter().map(|f| show(&f.path) + "\n").collect();
    super::out(&written)?;
    Ok(ExitCode::SUCCESS)
}
