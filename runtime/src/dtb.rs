//! The facts the Xen platform takes from the device tree libxl builds for the domain, as pure
//! code over the blob's bytes: compiled and tested on every target (and fuzzed, fuzz/ `dtb`).
//! `platform::xen` hands it the blob Xen passed in r2.
//!
//! The flattened tree (devicetree specification v0.4, chapter 5) is read here directly: a
//! header, a structure block of big-endian tokens (`BEGIN_NODE name`, `PROP len nameoff
//! value`, `END_NODE`, `NOP`, `END`), and a strings block of property names. Every length and
//! offset is checked against the blob, so a damaged tree is an error that says what was
//! wrong, never a panic. (The `fdt` crate this replaced asserted on malformed trees: its
//! fuzz target found that within seconds.)

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtError {
    /// The blob's header is invalid: what was wrong.
    Header(&'static str),
    /// The structure block is malformed: what was wrong, and the byte offset in the blob.
    Structure(&'static str, usize),
    /// No memory node.
    NoMemory,
    /// No supported GIC node.
    NoGic,
}

impl core::fmt::Display for DtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DtError::Header(what) => write!(f, "device tree: bad header: {what}"),
            DtError::Structure(what, at) => {
                write!(f, "device tree: malformed at byte {at}: {what}")
            }
            DtError::NoMemory => f.write_str("device tree: no memory node"),
            DtError::NoGic => f.write_str("device tree: no arm,gic-v3 or arm,cortex-a15-gic node"),
        }
    }
}

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const HEADER_LEN: usize = 40;
/// Deeper trees are refused (libxl's is 3 levels deep).
const MAX_DEPTH: usize = 32;
/// More address or size cells than this are refused (the spec uses 1 or 2).
const MAX_CELLS: u32 = 4;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// Big-endian cells as a number (wider values keep their low 64 bits).
fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// The NUL-terminated string at the start of `b`, and its length with the NUL.
fn cstr(b: &[u8]) -> Option<(&[u8], usize)> {
    let end = b.iter().position(|&c| c == 0)?;
    Some((&b[..end], end + 1))
}

/// One node's properties that matter here.
#[derive(Default, Clone, Copy)]
struct Node<'a> {
    device_type: Option<&'a [u8]>,
    compatible: Option<&'a [u8]>,
    reg: Option<&'a [u8]>,
    bootargs: Option<&'a [u8]>,
    /// `#address-cells` and `#size-cells`, for the node's children.
    cells: (u32, u32),
    /// `/chosen`.
    chosen: bool,
}

/// `(address, size)` pairs of `reg` with the parent's cell counts.
fn regs(reg: Option<&[u8]>, (a, s): (u32, u32)) -> impl Iterator<Item = (u64, u64)> + '_ {
    let a = a as usize * 4;
    let entry = a + s as usize * 4;
    let reg = if entry == 0 {
        &[][..]
    } else {
        reg.unwrap_or(&[])
    };
    reg.chunks_exact(entry.max(1))
        .map(move |e| (be(&e[..a]), be(&e[a..])))
}

/// Reads the facts from `blob`, a flattened device tree (it may run past the tree's own
/// `totalsize`: the header says where it ends).
pub fn parse(blob: &[u8]) -> Result<Facts<'_>, DtError> {
    let h = |at| be32(blob, at).ok_or(DtError::Header("shorter than the 40-byte header"));
    if blob.len() < HEADER_LEN {
        return Err(DtError::Header("shorter than the 40-byte header"));
    }
    if h(0)? != FDT_MAGIC {
        return Err(DtError::Header("wrong magic"));
    }
    let total = h(4)? as usize;
    if total < HEADER_LEN || total > blob.len() {
        return Err(DtError::Header("totalsize larger than the blob"));
    }
    let blob = &blob[..total];
    let (off_struct, off_strings) = (h(8)? as usize, h(12)? as usize);
    let version = h(20)?;
    let size_strings = h(32)? as usize;
    // Version 17 added size_dt_struct; before it the block runs to the strings or the end.
    let size_struct = if version >= 17 {
        h(36)? as usize
    } else {
        total.saturating_sub(off_struct)
    };
    let block = |off: usize, len: usize, what| {
        off.checked_add(len)
            .filter(|&end| off >= HEADER_LEN && end <= total)
            .map(|end| &blob[off..end])
            .ok_or(DtError::Header(what))
    };
    let structs = block(off_struct, size_struct, "structure block outside the blob")?;
    let strings = block(off_strings, size_strings, "strings block outside the blob")?;

    let mut facts = Facts {
        ram: [(0, 0); MAX_BANKS],
        banks: 0,
        grant_window: None,
        xen_compatible: "",
        gic: Gic::V2 { dist: 0, cpu: 0 },
        uart: None,
        bootargs: "",
        blob: (blob.as_ptr() as usize as u64, total as u64),
    };
    let mut gic = None;
    // The open nodes, root first; a node's reg uses its parent's cells.
    let mut stack: [Node<'_>; MAX_DEPTH] = [Node::default(); MAX_DEPTH];
    let mut depth = 0;
    let mut seen_root = false;
    let mut pos = 0;
    let bad = |what, pos: usize| DtError::Structure(what, off_struct + pos);
    loop {
        let token = be32(structs, pos).ok_or(bad("structure block ends without FDT_END", pos))?;
        let at = pos;
        pos += 4;
        match token {
            FDT_BEGIN_NODE => {
                let (name, len) = structs
                    .get(pos..)
                    .and_then(cstr)
                    .ok_or(bad("node name without a NUL", at))?;
                pos = (pos + len).next_multiple_of(4);
                if depth == 0 && core::mem::replace(&mut seen_root, true) {
                    return Err(bad("a second root node", at));
                }
                if depth == MAX_DEPTH {
                    return Err(bad("nodes nested too deep", at));
                }
                stack[depth] = Node {
                    cells: (2, 1),
                    chosen: depth == 1 && (name == b"chosen" || name.starts_with(b"chosen@")),
                    ..Node::default()
                };
                depth += 1;
            }
            FDT_PROP => {
                let len = be32(structs, pos).ok_or(bad("truncated property", at))? as usize;
                let nameoff = be32(structs, pos + 4).ok_or(bad("truncated property", at))?;
                pos += 8;
                let value = structs
                    .get(pos..pos.saturating_add(len))
                    .ok_or(bad("property value past the structure block", at))?;
                pos = (pos + len).next_multiple_of(4);
                let (name, _) = strings
                    .get(nameoff as usize..)
                    .and_then(cstr)
                    .ok_or(bad("property name outside the strings block", at))?;
                let Some(node) = depth.checked_sub(1).map(|d| &mut stack[d]) else {
                    return Err(bad("a property outside any node", at));
                };
                let cells = |v: &[u8]| {
                    (v.len() == 4)
                        .then(|| be(v) as u32)
                        .filter(|&c| c <= MAX_CELLS)
                        .ok_or(bad(
                            "#address-cells or #size-cells is not a small number",
                            at,
                        ))
                };
                match name {
                    b"device_type" => node.device_type = Some(value),
                    b"compatible" => node.compatible = Some(value),
                    b"reg" => node.reg = Some(value),
                    b"bootargs" => node.bootargs = Some(value),
                    b"#address-cells" => node.cells.0 = cells(value)?,
                    b"#size-cells" => node.cells.1 = cells(value)?,
                    _ => {}
                }
            }
            FDT_END_NODE => {
                let Some(d) = depth.checked_sub(1) else {
                    return Err(bad("FDT_END_NODE without a node", at));
                };
                let node = stack[d];
                let parent_cells = d.checked_sub(1).map_or((2, 1), |p| stack[p].cells);
                visit(&node, parent_cells, &mut facts, &mut gic);
                depth = d;
            }
            FDT_NOP => {}
            FDT_END => {
                if depth != 0 {
                    return Err(bad("FDT_END inside a node", at));
                }
                break;
            }
            _ => return Err(bad("unknown token", at)),
        }
        if pos > structs.len() {
            return Err(bad("structure block ends inside a token", at));
        }
    }
    if facts.banks == 0 {
        return Err(DtError::NoMemory);
    }
    facts.gic = gic.ok_or(DtError::NoGic)?;
    Ok(facts)
}

/// Takes what the platform needs from one complete node.
fn visit<'a>(node: &Node<'a>, cells: (u32, u32), facts: &mut Facts<'a>, gic: &mut Option<Gic>) {
    if node.chosen {
        if let Some(v) = node.bootargs {
            let v = v.strip_suffix(&[0]).unwrap_or(v);
            facts.bootargs = core::str::from_utf8(v).unwrap_or("");
        }
    }
    if node.device_type == Some(b"memory\0") || node.device_type == Some(b"memory") {
        for (base, size) in regs(node.reg, cells) {
            if facts.banks < MAX_BANKS && base < 1 << 32 && size > 0 {
                facts.ram[facts.banks] = (base, size.min((1 << 32) - base));
                facts.banks += 1;
            }
        }
        return;
    }
    let Some(compat) = node.compatible else {
        return;
    };
    for c in compat.split(|&b| b == 0).filter(|c| !c.is_empty()) {
        let Ok(c) = core::str::from_utf8(c) else {
            continue;
        };
        let mut r = regs(node.reg, cells);
        match c {
            "xen,xen" => facts.grant_window = r.next(),
            c if c.starts_with("xen,xen-") => facts.xen_compatible = c,
            "arm,gic-v3" => {
                if let (Some((dist, _)), Some((redist, redist_size))) = (r.next(), r.next()) {
                    *gic = Some(Gic::V3 {
                        dist,
                        redist,
                        redist_size,
                    });
                }
            }
            "arm,cortex-a15-gic" | "arm,gic-400" | "arm,cortex-a7-gic" => {
                if let (Some((dist, _)), Some((cpu, _))) = (r.next(), r.next()) {
                    *gic = Some(Gic::V2 { dist, cpu });
                }
            }
            "arm,sbsa-uart" | "arm,pl011" => facts.uart = r.next().map(|(b, _)| b),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

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
        // A property whose length runs past the structure block.
        let mut bad = GICV2.to_vec();
        let off = u32::from_be_bytes(bad[8..12].try_into().unwrap()) as usize;
        let prop = (off..bad.len() - 4)
            .step_by(4)
            .find(|&i| bad[i..i + 4] == FDT_PROP.to_be_bytes())
            .unwrap();
        bad[prop + 4..prop + 8].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
        assert_eq!(
            parse(&bad).unwrap_err(),
            DtError::Structure("property value past the structure block", prop)
        );
        // An unbalanced tree: the root's FDT_END_NODE turned into FDT_END.
        let mut bad = GICV2.to_vec();
        let size = u32::from_be_bytes(bad[36..40].try_into().unwrap()) as usize;
        let end_node = off + size - 8;
        assert_eq!(bad[end_node..end_node + 4], FDT_END_NODE.to_be_bytes());
        bad[end_node..end_node + 4].copy_from_slice(&FDT_END.to_be_bytes());
        assert_eq!(
            parse(&bad).unwrap_err().to_string(),
            alloc::format!("device tree: malformed at byte {end_node}: FDT_END inside a node")
        );
        assert!(matches!(parse(&GICV2[..20]), Err(DtError::Header(_))));
        let mut bad = GICV2.to_vec();
        bad[0] ^= 1;
        assert_eq!(
            parse(&bad).unwrap_err().to_string(),
            "device tree: bad header: wrong magic"
        );
        assert!(matches!(
            parse(&GICV2[..GICV2.len() - 8]),
            Err(DtError::Header(_))
        ));
    }
}
