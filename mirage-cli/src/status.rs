//! cargo-style status lines on stderr: a right-aligned, bold green verb, then the message.

use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);
static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_verbosity(verbose: bool, quiet: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `-q` was given: no status lines.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Whether `-v` was given: pass the output of child processes (cargo, qemu) through.
pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Whether stderr gets colour: as cargo decides (see [`crate::diag::stderr_color`]).
pub fn color() -> bool {
    crate::diag::stderr_color()
}

/// Prints `   Compiling hello (unix)`.
pub fn status(verb: &str, message: impl std::fmt::Display) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    if color() {
        eprintln!("\x1b[1;32m{verb:>12}\x1b[0m {message}");
    } else {
        eprintln!("{verb:>12} {message}");
    }
}

/// Prints `warning: …`.
pub fn warn(message: impl std::fmt::Display) {
    if color() {
        eprintln!("\x1b[1;33mwarning\x1b[0m: {message}");
    } else {
        eprintln!("warning: {message}");
    }
}
