//! The virtual GIC, v2 (memory-mapped CPU interface) or v3 (ICC_* system registers).
//!
//! The platform keeps IRQs masked in CPSR and never takes an IRQ exception. It enables the two
//! PPIs it uses, lets WFI return when one is pending, and then acknowledges and ends them here
//! ([`drain`]). Xen's vGIC keeps an interrupt pending until the guest acknowledges it, so draining
//! before every WFI is what keeps the vCPU from spinning.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};

use super::dtb::Gic;

/// The virtual timer's PPI.
pub const VTIMER_PPI: u32 = 27;
/// Xen's event-channel upcall PPI.
pub const EVTCHN_PPI: u32 = 31;

const PRIORITY: u8 = 0xa0;

// 2 = v2, 3 = v3; addresses of GICC (v2) or GICD.
static VERSION: AtomicU32 = AtomicU32::new(0);
static CPU_BASE: AtomicU32 = AtomicU32::new(0);

fn mmio_write32(addr: u64, v: u32) {
    // SAFETY: `addr` is a GIC register inside a region the device tree names, mapped as Device
    // memory by `mmu::map` before `init` runs.
    unsafe { super::arch::mmio_write32(addr as usize, v) }
}

fn mmio_write8(addr: u64, v: u8) {
    // SAFETY: as for `mmio_write32`; priority registers are byte-accessible.
    unsafe { super::arch::mmio_write8(addr as usize, v) }
}

fn mmio_read32(addr: u64) -> u32 {
    // SAFETY: as for `mmio_write32`; IAR reads acknowledge an interrupt, which `drain` wants.
    unsafe { super::arch::mmio_read32(addr as usize) }
}

fn icc_sre() -> u32 {
    let v: u32;
    // SAFETY: reads ICC_SRE; no side effects.
    unsafe {
        asm!("mrc p15, 0, {}, c12, c12, 5", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Why the GIC could not be set up.
#[derive(Debug, Clone, Copy)]
pub struct GicError(pub &'static str);

/// Enables the distributor, the CPU interface, and PPIs 27 and 31.
pub fn init(gic: Gic) -> Result<(), GicError> {
    let ppis = (1u32 << VTIMER_PPI) | (1 << EVTCHN_PPI);
    match gic {
        Gic::V2 { dist, cpu } => {
            mmio_write32(dist, 1); // GICD_CTLR: enable
            for irq in [VTIMER_PPI, EVTCHN_PPI] {
                mmio_write8(dist + 0x400 + u64::from(irq), PRIORITY); // GICD_IPRIORITYR
            }
            mmio_write32(dist + 0x100, ppis); // GICD_ISENABLER0
            mmio_write32(cpu + 0x4, 0xff); // GICC_PMR
            mmio_write32(cpu, 1); // GICC_CTLR: enable
            CPU_BASE.store(cpu as u32, Ordering::Relaxed);
            VERSION.store(2, Ordering::Relaxed);
        }
        Gic::V3 { dist, redist, .. } => {
            if icc_sre() & 1 == 0 {
                return Err(GicError(
                    "GICv3 without the system-register interface (ICC_SRE.SRE = 0)",
                ));
            }
            mmio_write32(dist, (1 << 4) | (1 << 1) | 1); // GICD_CTLR: ARE_NS, EnableGrp1A
            let sgi = redist + 0x10000; // SGI_base frame of vCPU 0's redistributor
            mmio_write32(sgi + 0x80, !0); // GICR_IGROUPR0: group 1
            for irq in [VTIMER_PPI, EVTCHN_PPI] {
                mmio_write8(sgi + 0x400 + u64::from(irq), PRIORITY); // GICR_IPRIORITYR
            }
            mmio_write32(sgi + 0x100, ppis); // GICR_ISENABLER0
                                             // SAFETY: ICC_PMR = 0xff (unmask all priorities), ICC_BPR1 = 0, ICC_IGRPEN1 = 1:
                                             // the system-register interface is enabled (checked above); no memory effects.
            unsafe {
                asm!(
                    "mcr p15, 0, {pmr}, c4, c6, 0",
                    "mcr p15, 0, {zero}, c12, c12, 3",
                    "mcr p15, 0, {one}, c12, c12, 7",
                    "isb sy",
                    pmr = in(reg) 0xffu32, zero = in(reg) 0u32, one = in(reg) 1u32,
                    options(nomem, nostack, preserves_flags)
                )
            };
            let _ = mmio_read32(dist); // complete the distributor writes
            VERSION.store(3, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Which GIC version was set up (0 before `init`).
pub fn version() -> u32 {
    VERSION.load(Ordering::Relaxed)
}

fn ack() -> u32 {
    match VERSION.load(Ordering::Relaxed) {
        2 => mmio_read32(u64::from(CPU_BASE.load(Ordering::Relaxed)) + 0xc) & 0x3ff, // GICC_IAR
        3 => {
            let v: u32;
            // SAFETY: reads ICC_IAR1, acknowledging the highest-priority pending interrupt.
            unsafe {
                asm!("mrc p15, 0, {}, c12, c12, 0", out(reg) v, options(nomem, nostack, preserves_flags))
            };
            v & 0xffffff
        }
        _ => 1023,
    }
}

fn eoi(irq: u32) {
    match VERSION.load(Ordering::Relaxed) {
        2 => mmio_write32(u64::from(CPU_BASE.load(Ordering::Relaxed)) + 0x10, irq), // GICC_EOIR
        3 => {
            // SAFETY: writes ICC_EOIR1 for an interrupt acknowledged by `ack`.
            unsafe {
                asm!("mcr p15, 0, {}, c12, c12, 1", "isb sy", in(reg) irq, options(nomem, nostack, preserves_flags))
            }
        }
        _ => {}
    }
}

/// Acknowledges and ends every pending interrupt, calling `f` with each id.
pub fn drain(mut f: impl FnMut(u32)) {
    if VERSION.load(Ordering::Relaxed) == 0 {
        return;
    }
    for _ in 0..64 {
        let irq = ack();
        if irq >= 1020 {
            break; // 1020..1023: spurious / none pending
        }
        f(irq);
        eoi(irq);
    }
}
