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
                eprintln!("error: {e}");
                for cause in e.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            }
            ExitCode::FAILURE
        }
    }
}
