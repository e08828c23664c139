//! The `uni` command's library: config model, device graph, code generation and build
//! driver. The binary (`src/main.rs`) only parses the command line and reports errors; the
//! fuzz target and tests use this crate directly.

pub mod board;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod devices;
pub mod diag;
pub mod emu;
pub mod generate;
pub mod home;
pub mod image;
pub mod kv;
pub mod remote;
pub mod status;
pub mod target;
pub mod toolchain;
pub mod trace;
pub mod xl;
