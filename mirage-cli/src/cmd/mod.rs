//! One file per command; each exposes `run`.

pub mod build;
mod clean;
mod configure;
mod deploy;
mod describe;
mod fetch;
pub mod kv;
mod lan;
mod new;
mod run;
mod stats;
mod trace;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::config::{self, Config};
use crate::target::Target;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let file = cli.file();
    match cli.command {
        Command::Configure(c) => configure::run(c, &file),
        Command::Build(b) => build::run(b, &file).map(|_| ExitCode::SUCCESS),
        Command::Run(r) => run::run(r, &file),
        Command::Deploy(d) => deploy::deploy(d, &file),
        Command::Ps(p) => deploy::ps(p, &file),
        Command::Stop(s) => deploy::stop(s, &file),
        Command::Logs(l) => deploy::logs(l, &file),
        Command::Stats(s) => stats::run(s, &file),
        Command::Trace(t) => trace::run(t, &file),
        Command::Lan(l) => lan::run(l),
        Command::Fetch(f) => fetch::run(f, &file),
        Command::Kv(k) => kv::run(k),
        Command::New(n) => new::run(n),
        Command::Describe(d) => describe::run(d, &file),
        Command::Clean(c) => clean::run(c, &file),
        Command::Completions(c) => {
            let mut script = Vec::new();
            clap_complete::generate(c.shell, &mut Cli::command(), "uni", &mut script);
            out(&String::from_utf8_lossy(&script))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the config file and picks the target: the flag, else the file's, else unix.
pub fn load(file: &Path, target: Option<Target>) -> Result<(Config, Target)> {
    if !file.is_file() {
        anyhow::bail!(
            "no `{}` here: run uni in a directory with a unikernel.toml, or pass -f PATH",
            file.display()
        );
    }
    let cfg = config::load(file)?;
    let target = target.or(cfg.target).unwrap_or(Target::Unix);
    Ok((cfg, target))
}

/// [`load`], with `--board` (when given) in place of unikernel.toml's board.
pub fn load_on(
    file: &Path,
    target: Option<Target>,
    board: Option<&str>,
) -> Result<(Config, Target)> {
    let (mut cfg, target) = load(file, target)?;
    if let Some(b) = board {
        if crate::board::find(b).is_none() {
            anyhow::bail!(
                "unknown board `{b}` (--board); accepted: {}",
                crate::board::names()
            );
        }
        cfg.board = Some(b.to_string());
    }
    Ok((cfg, target))
}

/// Writes `text` to stdout. A reader that went away (`uni configure --dry-run | head`) is not an
/// error: there is nobody left to tell.
pub fn out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// `path` relative to the current directory when it is inside it, for messages.
pub fn show(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .map(PathBuf::from)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}
