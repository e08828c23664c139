//! Build targets.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// A Linux process.
    Unix,
    /// An armv7 Xen guest image plus its xl config.
    #[value(name = "xen-arm")]
    XenArm,
}

impl Target {
    pub const ALL: &'static [Target] = &[Target::Unix, Target::XenArm];

    pub fn name(self) -> &'static str {
        match self {
            Target::Unix => "unix",
            Target::XenArm => "xen-arm",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.iter().copied().find(|t| t.name() == s)
    }

    pub fn accepted() -> String {
        Target::ALL
            .iter()
            .map(|t| format!("\"{}\"", t.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
