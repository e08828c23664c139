//! Boards: small descriptions under `boards/<name>/board.toml`, compiled into the binary.

use serde::Deserialize;

const SOURCES: &[(&str, &str)] = &[
    (
        "cubieboard2",
        include_str!("../../boards/cubieboard2/board.toml"),
    ),
    (
        "qemu-virt",
        include_str!("../../boards/qemu-virt/board.toml"),
    ),
    (
        "qemu-virt-gicv2",
        include_str!("../../boards/qemu-virt-gicv2/board.toml"),
    ),
    (
        "qemu-virt32",
        include_str!("../../boards/qemu-virt32/board.toml"),
    ),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Board {
    pub name: String,
    pub description: String,
    pub cpu: Cpu,
    pub xen: Xen,
    pub defaults: Defaults,
    /// A real board names the emulated board that stands for it in `uni run` (same hypervisor
    /// architecture, CPU and GIC); an emulated board has [`Board::qemu`] and [`Board::dom0`]
    /// itself.
    pub emulation: Option<String>,
    pub qemu: Option<Qemu>,
    pub dom0: Option<Dom0>,
    pub deploy: Option<Deploy>,
}

impl Board {
    /// The board `uni run` boots this board's images on: itself when it is emulated, else its
    /// [`Board::emulation`].
    pub fn emulator(&self) -> anyhow::Result<Board> {
        if self.qemu.is_some() && self.dom0.is_some() {
            return Ok(self.clone());
        }
        let Some(name) = &self.emulation else {
            anyhow::bail!("board `{}` cannot be emulated: it has no [qemu] and [dom0], and names no `emulation`", self.name);
        };
        let e = find(name).ok_or_else(|| {
            anyhow::anyhow!(
                "board `{}` names the emulation `{name}`, which is not a board; accepted: {}",
                self.name,
                names()
            )
        })?;
        if e.qemu.is_none() || e.dom0.is_none() {
            anyhow::bail!(
                "board `{}` names the emulation `{name}`, which has no [qemu] and [dom0]",
                self.name
            );
        }
        if e.xen.hypervisor_arch != self.xen.hypervisor_arch {
            anyhow::bail!(
                "board `{}` (Xen {}) names the emulation `{name}`, which runs Xen {}",
                self.name,
                self.xen.hypervisor_arch,
                e.xen.hypervisor_arch
            );
        }
        Ok(e)
    }

    /// The QEMU program for the hypervisor's architecture.
    pub fn qemu_program(&self) -> &'static str {
        if self.xen.hypervisor_arch == "arm64" {
            "qemu-system-aarch64"
        } else {
            "qemu-system-arm"
        }
    }
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
    /// Xen command-line options of this board's emulation, after uni's own (dom0's memory, log
    /// levels, the console): `dom0_vcpus_pin` on the GICv2 boards, for instance.
    #[serde(default)]
    pub xen_options: Vec<String>,
}

/// An emulated board's dom0: which Debian packages it is assembled from (see `emu`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Dom0 {
    /// Debian's architecture of dom0's packages: `arm64` or `armhf`.
    pub arch: String,
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
    /// Loaded only when a run has disks: the virtio disks QEMU gives dom0 for the guests'
    /// images.
    #[serde(default)]
    pub disk_modules: Vec<String>,
    /// Packages of `packages` of which dom0 gets only these files (paths in the package), such
    /// as util-linux's `usr/bin/flock` for the hotplug scripts' locking: the rest of the package
    /// would shadow busybox's tools with binaries whose libraries dom0 does not have.
    #[serde(default)]
    pub pick: std::collections::BTreeMap<String, Vec<String>>,
    pub memory: u32,
}

impl Dom0 {
    /// The multiarch directory of dom0's libraries: `aarch64-linux-gnu`, `arm-linux-gnueabihf`.
    pub fn triplet(&self) -> &'static str {
        match self.arch.as_str() {
            "arm64" => "aarch64-linux-gnu",
            _ => "arm-linux-gnueabihf",
        }
    }
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
    SOURCES
        .iter()
        .map(|(n, _)| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The board used when unikernel.toml names none.
pub const DEFAULT: &str = "qemu-virt";

/// The board a xen-arm build is for: `name` (the config's), else [`DEFAULT`].
pub fn for_xen(name: Option<&str>) -> anyhow::Result<Board> {
    let name = name.unwrap_or(DEFAULT);
    find(name).ok_or_else(|| anyhow::anyhow!("unknown board `{name}`; accepted: {}", names()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_board_parses_and_is_named_after_its_directory() {
        for (dir, _) in super::SOURCES {
            let b = super::find(dir).unwrap();
            assert_eq!(b.name, *dir);
            let e = b.emulator().unwrap();
            assert!(
                ["arm64", "armhf"].contains(&e.dom0.as_ref().unwrap().arch.as_str()),
                "{dir}"
            );
        }
    }

    #[test]
    fn the_cubieboard_is_emulated_by_the_32_bit_board() {
        let e = super::find("cubieboard2").unwrap().emulator().unwrap();
        assert_eq!(e.name, "qemu-virt32");
        assert_eq!(e.qemu_program(), "qemu-system-arm");
        let q = e.qemu.unwrap();
        assert!(
            q.machine.contains("gic-version=2") && q.cpu == "cortex-a7",
            "{q:?}"
        );
        assert_eq!(e.dom0.unwrap().triplet(), "arm-linux-gnueabihf");
        assert_eq!(
            super::find("qemu-virt").unwrap().emulator().unwrap().name,
            "qemu-virt"
        );
    }
}
