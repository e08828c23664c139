//! Fuzzes the unikernel.toml loader: any input must give a config or diagnostics that render,
//! never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    match mirage_cli::config::load_str(Path::new("unikernel.toml"), text) {
        Ok(cfg) => {
            assert!(!cfg.name.is_empty());
        }
        Err(diags) => {
            assert!(!diags.0.is_empty(), "an error with no diagnostic");
            for d in &diags.0 {
                let out = d.render(false);
                let (line, col) = d.line_col();
                assert!(line >= 1 && col >= 1);
                assert!(out.contains("error"), "{out}");
            }
        }
    }
});
