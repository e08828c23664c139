//! `uni`: assemble unikernels from one config file.

use std::process::ExitCode;

use clap::Parser;
use mirage_cli::{cli, cmd, config, status};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    status::set_verbosity(cli.global.verbose, cli.global.quiet);
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(d) = e.downcast_ref::<config::Diagnostics>() {
                d.eprint();
            } else {
                mirage_cli::diag::eprint_error(&e);
            }
            ExitCode::FAILURE
        }
    }
}
