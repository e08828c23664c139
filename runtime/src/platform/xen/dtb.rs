//! The facts the platform takes from the device tree libxl builds for the domain.

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
pub struct Facts {
    /// RAM banks below 4 GiB: (base, size).
    pub ram: [(u64, u64); MAX_BANKS],
    /// Number of valid entries in `ram`.
    pub banks: usize,
    /// The grant-table window (`/hypervisor` `reg[0]`).
    pub grant_window: Option<(u64, u64)>,
    /// Xen's version from the `/hypervisor` compatible (`xen,xen-4.17`), as text.
    pub xen_compatible: &'static str,
    /// The interrupt controller.
    pub gic: Gic,
    /// The `vuart = "sbsa_uart"` UART, if configured.
    pub uart: Option<u64>,
    /// `/chosen/bootargs` (the xl `extra=` string).
    pub bootargs: &'static str,
    /// Where the device tree blob lies (base, size), so the heap can avoid it.
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

/// Reads the facts from the blob at `addr`.
///
/// # Safety
/// `addr` must be the device tree Xen passed in r2, mapped, and never written afterwards.
pub unsafe fn parse(addr: usize) -> Result<Facts, DtError> {
    // SAFETY: forwarded from the caller: a valid, mapped, immutable blob.
    let fdt: Fdt<'static> =
        unsafe { Fdt::from_ptr(addr as *const u8) }.map_err(|_| DtError::Header)?;
    let mut facts = Facts {
        ram: [(0, 0); MAX_BANKS],
        banks: 0,
        grant_window: None,
        xen_compatible: "",
        gic: Gic::V2 { dist: 0, cpu: 0 },
        uart: None,
        bootargs: "",
        blob: (addr as u64, fdt.total_size() as u64),
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
