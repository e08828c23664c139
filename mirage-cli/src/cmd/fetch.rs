//! `uni fetch`: the emulated boards, downloaded and assembled ahead of time.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::Fetch;
use crate::emu;
use crate::status::status;

pub fn run(args: Fetch, file: &Path) -> Result<ExitCode> {
    let names = if args.boards.is_empty() {
        // the config's board when there is a config here, else the default one
        let from_config = file
            .is_file()
            .then(|| crate::config::load(file))
            .transpose()?
            .and_then(|c| c.board);
        vec![from_config.unwrap_or_else(|| crate::board::DEFAULT.to_string())]
    } else {
        args.boards
    };
    // every name checked before anything is downloaded
    let boards = names
        .iter()
        .map(|name| {
            crate::board::find(name).with_context(|| {
                format!(
                    "unknown board `{name}` (--board); accepted: {}",
                    crate::board::names()
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let cache = emu::cache_dir();
    for (name, board) in names.iter().zip(&boards) {
        emu::prepare(board, &cache)?;
        status("Fetched", format!("board {name}, in {}", cache.display()));
    }
    Ok(ExitCode::SUCCESS)
}
