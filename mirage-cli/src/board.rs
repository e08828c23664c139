//! Boards: small descriptions under `boards/<name>/board.toml`, compiled into the binary.

use serde::Deserialize;

const SOURCES: &[(&str, &str)] = &[
    ("cubieboard2", include_str!("../../boards/cubieboard2/board.toml")),
    ("qemu-virt", include_str!("../../boards/qemu-virt/board.toml")),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Board {
    pub name: String,
    pub description: String,
    pub cpu: Cpu,
    pub xen: Xen,
    pub defaults: Defaults,
    pub qemu: Option<Qemu>,
    pub dom0: Option<Dom0>,
    pub deploy: Option<Deploy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Cpu {
    pub target_cpu: String,
    pub target_features: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Xen {
    pub version: String,
    pub hypervisor_arch: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Defaults {
    pub memory: u32,
    pub vcpus: u32,
    pub bridge: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Qemu {
    pub machine: String,
    pub cpu: String,
    pub smp: u32,
    pub memory: u32,
}

/// An emulated board's dom0: which Debian packages it is assembled from (see `emu`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Dom0 {
    pub debian: String,
    pub mirror: String,
    pub security_mirror: String,
    pub kernel: String,
    pub hypervisor: String,
    pub packages: Vec<String>,
    pub modules: Vec<String>,
    /// Loaded only when a run has networking: the NIC QEMU gives dom0 for the host's tap.
    #[serde(default)]
    pub net_modules: Vec<String>,
    pub memory: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Deploy {
    pub user: String,
    pub dir: String,
}

/// The board named `name`.
pub fn find(name: &str) -> Option<Board> {
    let (_, src) = SOURCES.iter().find(|(n, _)| *n == name)?;
    Some(toml::from_str(src).unwrap_or_else(|e| panic!("boards/{name}/board.toml is invalid: {e}")))
}

/// Every board.
pub fn all() -> Vec<Board> {
    SOURCES.iter().filter_map(|(n, _)| find(n)).collect()
}

/// Every board name, quoted, for error messages.
pub fn names() -> String {
    SOURCES.iter().map(|(n, _)| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_board_parses_and_is_named_after_its_directory() {
        for (dir, _) in super::SOURCES {
            assert_eq!(super::find(dir).unwrap().name, *dir);
        }
    }
}
