//! `unikernel.toml`, in three layers: the file model ([`model`]), the resolved config (this
//! module, validated), and the template context ([`crate::generate`]).

mod host;
pub mod model;
mod resolve;

pub use crate::devices::DeviceConfig;
pub use crate::diag::{Diagnostic, Diagnostics, Source};
pub use host::HostSpec;
pub use resolve::{check_deploy_dir, load, load_str};

use std::ops::Range;
use std::path::PathBuf;

use crate::target::Target;

/// A validated `unikernel.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file, as given.
    pub file: PathBuf,
    /// Its directory (absolute); relative paths in the file resolve against it.
    pub dir: PathBuf,
    pub source: Source,
    pub name: String,
    /// The app crate's directory (absolute).
    pub app_dir: PathBuf,
    /// The app's entry point function, inside the app crate.
    pub entry: String,
    pub target: Option<Target>,
    pub board: Option<String>,
    pub board_span: Range<usize>,
    /// Compiled-in default boot arguments.
    pub boot_args: String,
    /// The span of `boot-args`' value, where errors about it point (`None`: not given).
    pub boot_args_span: Option<Range<usize>>,
    pub devices: Vec<DeviceConfig>,
    pub xen: XenConfig,
    pub deploy: DeployConfig,
    /// `[trace]`, or `--trace` on the command line: build with event tracing.
    pub trace: Option<TraceConfig>,
}

/// `[trace]`: event tracing compiled in (docs/tracing.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceConfig {
    /// The ring's capacity in events.
    pub events: u32,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig { events: 8192 }
    }
}

/// `[xen]`, with defaults filled in from the board where the file is silent.
#[derive(Debug, Clone, Default)]
pub struct XenConfig {
    pub memory: Option<u32>,
    pub vcpus: Option<u32>,
    pub bridge: Option<String>,
    pub extra: String,
    /// The span of `extra`'s value, where errors about it point (`None`: not given).
    pub extra_span: Option<Range<usize>>,
    pub on_crash: Option<String>,
}

/// `[deploy]`; the command line's `--host` and `--dir` win over it.
#[derive(Debug, Clone, Default)]
pub struct DeployConfig {
    pub host: Option<HostSpec>,
    /// Absolute, in dom0.
    pub dir: Option<String>,
}
