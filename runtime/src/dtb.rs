//! The facts the Xen platform takes from the device tree libxl builds for the domain, as pure
//! code over the blob's bytes: compiled and tested on every target (and fuzzed, fuzz/ `dtb`).
//! `platform::xen` hands it the blob Xen passed in r2.

use fdt::Fdt;

/// At most this many RAM banks are used.
pub const MAX_BANKS: usize = 4;

/// Which interrupt controller the domain has, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gic {
    /// GICv2 (`arm,cortex-a15-gic`): distributor and CPU interface.
    V2 {
        /// GICD.
        dist: u64,
        /// GICC.
        cpu: u64,
    },
    /// GICv3 (`arm,gic-v3`): distributor and the first redistributor (vCPU 0).
    V3 {
        /// GICD.
        dist: u64,
        /// GICR region.
        redist: u64,
        /// Size of the GICR region.
        redist_size: u64,
    },
}

/// What the platform needs from the device tree.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// RAM banks below 4 GiB: (base, size).
    pub ram: [(u64, u64); MAX_BANKS],
    /// Number of valid entries in `ram`.
    pub banks: usize,
    /// The grant-table window (`/hypervisor` `reg[0]`).
    pub grant_window: Option<(u64, u64)>,
    /// Xen's version from the `/hypervisor` compatible (`xen,xen-4.17`), as text.
    pub xen_compatible: &'a str,
    /// The interrupt controller.
    pub gic: Gic,
    /// The `vuart = "sbsa_uart"` UART, if configured.
    pub uart: Option<u64>,
    /// `/chosen/bootargs` (the xl `extra=` string).
    pub bootargs: &'a str,
    /// Where the device tree blob lies (base address, size from its header), so the heap can
    /// avoid it.
    pub blob: (u64, u64),
}

/// Why the device tree could not be used.
#[derive(Debug, Clone, Copy)]
pub enum DtError {
    /// The blob's header is invalid.
    Header,
    /// No memory node.
    NoMemory,
    /// No supported GIC node.
    NoGic,
}

impl core::fmt::Display for DtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DtError::Header => "device tree: bad header",
            DtError::NoMemory => "device tree: no memory node",
            DtError::NoGic => "device tree: no arm,gic-v3 or arm,cortex-a15-gic node",
        })
    }
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn regs<'a>(node: fdt::node::FdtNode<'_, 'a>) -> impl Iterator<Item = (u64, u64)> + 'a {
    node.raw_reg()
        .into_iter()
        .flatten()
        .map(|r| (be(r.address), be(r.size)))
}

/// Reads the facts from `blob`, a flattened device tree (it may run past the tree's own
/// `totalsize`: the header says where it ends).
pub fn parse(blob: &[u8]) -> Result<Facts<'_>, DtError> {
    let fdt = Fdt::new(blob).map_err(|_| DtError::Header)?;
    let mut facts = Facts {
        ram: [(0, 0); MAX_BANKS],
        banks: 0,
        grant_window: None,
        xen_compatible: "",
        gic: Gic::V2 { dist: 0, cpu: 0 },
        uart: None,
        bootargs: "",
        blob: (blob.as_ptr() as usize as u64, fdt.total_size() as u64),
    };
    let mut gic = None;
    for node in fdt.all_nodes() {
        let device_type = node.property("device_type").and_then(|p| p.as_str());
        if device_type == Some("memory") {
            for (base, size) in regs(node) {
                if facts.banks < MAX_BANKS && base < 1 << 32 && size > 0 {
                    facts.ram[facts.banks] = (base, size.min((1 << 32) - base));
                    facts.banks += 1;
                }
            }
            continue;
        }
        let Some(compat) = node.compatible() else {
            continue;
        };
        for c in compat.all() {
            match c {
                "xen,xen" => facts.grant_window = regs(node).next(),
                c if c.starts_with("xen,xen-") => facts.xen_compatible = c,
                "arm,gic-v3" => {
                    let mut r = regs(node);
                    if let (Some((dist, _)), Some((redist, redist_size))) = (r.next(), r.next()) {
                        gic = Some(Gic::V3 {
                            dist,
                            redist,
                            redist_size,
                        });
                    }
                }
                "arm,cortex-a15-gic" | "arm,gic-400" | "arm,cortex-a7-gic" => {
                    let mut r = regs(node);
                    if let (Some((dist, _)), Some((cpu, _))) = (r.next(), r.next()) {
                        gic = Some(Gic::V2 { dist, cpu });
                    }
                }
                "arm,sbsa-uart" | "arm,pl011" => facts.uart = regs(node).next().map(|(b, _)| b),
                _ => {}
            }
        }
    }
    if let Some(chosen) = fdt.find_node("/chosen") {
        if let Some(p) = chosen.property("bootargs") {
            let v = p.value;
            let v = v.strip_suffix(&[0]).unwrap_or(v);
            facts.bootargs = core::str::from_utf8(v).unwrap_or("");
        }
    }
    if facts.banks == 0 {
        return Err(DtError::NoMemory);
    }
    facts.gic = gic.ok_or(DtError::NoGic)?;
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libxl's layout for a GICv2 guest, compiled with dtc (fuzz/dts/xenvm-gicv2.dts).
    const GICV2: &[u8] = include_bytes!("../../fuzz/seeds-dtb/xenvm-gicv2.dtb");
    /// The same with a GICv3 and a second RAM bank above 4 GiB (fuzz/dts/xenvm-gicv3.dts).
    const GICV3: &[u8] = include_bytes!("../../fuzz/seeds-dtb/xenvm-gicv3.dtb");

    #[test]
    fn a_guest_tree_gives_ram_gic_grant_window_uart_and_bootargs() {
        let f = parse(GICV2).unwrap();
        assert_eq!(&f.ram[..f.banks], [(0x4000_0000, 0x800_0000)]);
        assert_eq!(
            f.gic,
            Gic::V2 {
                dist: 0x300_1000,
                cpu: 0x300_2000
            }
        );
        assert_eq!(f.grant_window, Some((0x3800_0000, 0x100_0000)));
        assert_eq!(f.xen_compatible, "xen,xen-4.17");
        assert_eq!(f.uart, Some(0x2200_0000));
        assert_eq!(
            f.bootargs,
            "--uni-boot-info --ipv4=10.0.0.9/24 --ipv4-gateway=10.0.0.1"
        );
        assert_eq!(f.blob.1, GICV2.len() as u64);

        let f = parse(GICV3).unwrap();
        assert_eq!(
            &f.ram[..f.banks],
            [(0x4000_0000, 0x400_0000)],
            "bank above 4 GiB left out"
        );
        assert_eq!(
            f.gic,
            Gic::V3 {
                dist: 0x300_1000,
                redist: 0x302_0000,
                redist_size: 0x100_0000
            }
        );
        assert_eq!(f.bootargs, "--port=8080");
    }

    #[test]
    fn damaged_trees_are_errors() {
        assert!(matches!(parse(&GICV2[..20]), Err(DtError::Header)));
        let mut bad = GICV2.to_vec();
        bad[0] ^= 1;
        assert!(matches!(parse(&bad), Err(DtError::Header)));
        assert!(matches!(
            parse(&GICV2[..GICV2.len() - 8]),
            Err(DtError::Header)
        ));
    }
}
