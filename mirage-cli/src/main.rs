//! `uni`: assemble unikernels from one config file.

use std::process::ExitCode;

use clap::Parser;
use mirage_cli::{cli, cmd, config, status};

fn main() -> ExitCode {
    let cli = cli::Cli::try_parse().unwrap_or_else(|e| {
        // `-f` names the config file before the command only (after it, `logs -f` follows)
        let stray_f = e.kind() == clap::error::ErrorKind::UnknownArgument
            && e.get(clap::error::ContextKind::InvalidArg)
                .is_some_and(|a| a.to_string() == "-f");
        if stray_f {
            let _ = e.print();
            eprintln!(
                "\nThe config file goes before the command, `uni -f PATH build`, or anywhere as \
                 `--file PATH`."
            );
            std::process::exit(e.exit_code());
        }
        e.exit()
    });
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
