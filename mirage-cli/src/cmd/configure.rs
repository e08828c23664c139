//! `uni configure`.

use std::path::Path;
use std::process::ExitCode;

use std::fmt::Write as _;

use anyhow::Result;

use super::show;
use crate::cli::Configure;
use crate::generate;
use crate::status::{self, status};

pub fn run(args: Configure, file: &Path) -> Result<ExitCode> {
    let (cfg, target) = super::load_on(file, args.target, args.board.as_deref())?;
    super::build::refuse_board(target, args.board.as_deref(), "configure")?;
    let plan = generate::plan(&cfg, target)?;
    if args.dry_run {
        let mut o = String::new();
        writeln!(
            o,
            "plan for `{}` (target {}, board {}), nothing written:",
            cfg.name, target, plan.board
        )?;
        writeln!(o, "  device order: {}", plan.order.join(" -> "))?;
        for f in &plan.files {
            let state = if generate::stale_files(&plan)
                .iter()
                .any(|s| s.path == f.path)
            {
                "write"
            } else {
                "keep "
            };
            writeln!(
                o,
                "  {state} {} ({} lines)",
                show(&f.path),
                f.contents.lines().count()
            )?;
        }
        for p in &plan.packs {
            let state = if p.pack.is_current(&p.path) {
                "keep "
            } else {
                "write"
            };
            let (n, bytes) = (p.pack.files.len(), p.pack.len());
            writeln!(
                o,
                "  {state} {} (kv_ro pack of {}: {n} files, {bytes} bytes)",
                show(&p.path),
                show(&p.pack.dir)
            )?;
        }
        writeln!(
            o,
            "  run   rustfmt --edition 2021 on src/main.rs (already applied above)"
        )?;
        writeln!(
            o,
            "  then `uni build` runs: {}",
            crate::cmd::build::cargo_command_line(&cfg, &plan)
        )?;
        if status::verbose() {
            for f in &plan.files {
                writeln!(o, "\n--- {} ---\n{}", show(&f.path), f.contents)?;
            }
        }
        super::out(&o)?;
        return Ok(ExitCode::SUCCESS);
    }
    let stale = generate::stale_paths(&plan);
    if args.check {
        if stale.is_empty() {
            status(
                "Fresh",
                format!("{} is up to date with {}", show(&plan.dir), show(&cfg.file)),
            );
            return Ok(ExitCode::SUCCESS);
        }
        for path in &stale {
            let why = if path.exists() {
                "out of date"
            } else {
                "missing"
            };
            eprintln!("error: `{}` is {why}", show(path));
        }
        eprintln!("help: run `uni configure --target {target}` to regenerate");
        return Ok(ExitCode::FAILURE);
    }
    status(
        "Configuring",
        format!("{} (target {target}, board {})", cfg.name, plan.board),
    );
    generate::write(&plan)?;
    let written: String = plan
        .files
        .iter()
        .map(|f| &f.path)
        .chain(plan.packs.iter().map(|p| &p.path))
        .map(|p| show(p) + "\n")
        .collect();
    super::out(&written)?;
    Ok(ExitCode::SUCCESS)
}
