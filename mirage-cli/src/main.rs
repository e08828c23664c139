//! `uni`: assemble unikernels from one config file.

mod board;
mod cli;
mod cmd;
mod config;
mod devices;
mod emu;
mod generate;
mod home;
mod status;
mod target;

use std::process::ExitCode;

use clap::Parser;

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
