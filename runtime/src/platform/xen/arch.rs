//! ARMv7-A instructions the platform needs: barriers, WFI, the generic timer's cp15 registers,
//! cache and TLB maintenance, fault status registers.

use core::arch::asm;

/// Data memory barrier (inner shareable): orders memory accesses, e.g. ring data before the index
/// that publishes it.
#[inline(always)]
pub fn dmb() {
    // SAFETY: a barrier has no effect besides ordering memory accesses.
    unsafe { asm!("dmb ish", options(nostack, preserves_flags)) };
}

/// Waits for an interrupt. Interrupts stay masked in CPSR (the platform polls the GIC), but a
/// pending interrupt still ends the wait; under Xen the vCPU is descheduled meanwhile.
#[inline(always)]
pub fn wfi() {
    // SAFETY: WFI only suspends execution until an interrupt is pending.
    unsafe { asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
}

/// CNTFRQ: the generic timer's frequency in Hz.
pub fn cntfrq() -> u32 {
    let f: u32;
    // SAFETY: reading CNTFRQ is side-effect free and allowed at PL1.
    unsafe {
        asm!("mrc p15, 0, {}, c14, c0, 0", out(reg) f, options(nomem, nostack, preserves_flags))
    };
    f
}

/// CNTVCT: the virtual count (ticks since Xen created the domain).
pub fn cntvct() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading the virtual counter is side-effect free; the ISB keeps it from being read
    // early.
    unsafe {
        asm!("isb sy", "mrrc p15, 1, {}, {}, c14", out(reg) lo, out(reg) hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// CNTV_CVAL: the virtual timer fires when CNTVCT reaches this value.
pub fn set_cntv_cval(v: u64) {
    // SAFETY: programs the virtual timer's compare value; no memory effects.
    unsafe {
        asm!("mcrr p15, 3, {}, {}, c14", in(reg) v as u32, in(reg) (v >> 32) as u32, options(nomem, nostack, preserves_flags))
    };
}

/// CNTV_CTL: bit 0 enables the virtual timer, bit 1 masks its interrupt.
pub fn set_cntv_ctl(v: u32) {
    // SAFETY: enables/disables the virtual timer; no memory effects.
    unsafe {
        asm!("mcr p15, 0, {}, c14, c3, 1", "isb sy", in(reg) v, options(nomem, nostack, preserves_flags))
    };
}

/// Cleans the data cache line holding `addr` to the point of coherency (DCCMVAC).
pub fn dcache_clean_line(addr: usize) {
    // SAFETY: cleaning a line writes dirty data back to memory; it never changes the contents.
    unsafe { asm!("mcr p15, 0, {}, c7, c10, 1", in(reg) addr, options(nostack, preserves_flags)) };
}

/// Makes new translation-table entries visible: entries that replace invalid ones need no TLB
/// maintenance (faulting translations are never cached), only the barriers.
pub fn tables_updated() {
    // SAFETY: barriers only.
    unsafe { asm!("dsb ish", "isb sy", options(nostack, preserves_flags)) };
}

/// Invalidates the TLB entries for `addr` on all CPUs (TLBIMVAAIS) and the branch predictor, then
/// synchronizes. (A full TLB flush is much slower under emulation and not needed.)
pub fn tlb_invalidate_addr(addr: usize) {
    // SAFETY: TLB maintenance only drops cached translations; the tables are unchanged.
    unsafe {
        asm!(
            "dsb ish",
            "mcr p15, 0, {a}, c8, c3, 3",
            "mcr p15, 0, {z}, c7, c5, 6",
            "dsb ish",
            "isb sy",
            a = in(reg) addr & !0xfff,
            z = in(reg) 0u32,
            options(nostack, preserves_flags)
        )
    };
}

/// The fault status and address registers: (DFSR, DFAR, IFSR, IFAR).
pub fn fault_registers() -> (u32, u32, u32, u32) {
    let (dfsr, dfar, ifsr, ifar): (u32, u32, u32, u32);
    // SAFETY: reading the fault registers has no side effects.
    unsafe {
        asm!(
            "mrc p15, 0, {0}, c5, c0, 0",
            "mrc p15, 0, {1}, c6, c0, 0",
            "mrc p15, 0, {2}, c5, c0, 1",
            "mrc p15, 0, {3}, c6, c0, 2",
            out(reg) dfsr, out(reg) dfar, out(reg) ifsr, out(reg) ifar,
            options(nomem, nostack, preserves_flags)
        )
    };
    (dfsr, dfar, ifsr, ifar)
}

// MMIO. Xen emulates device registers (the vGIC distributor and redistributor, GICv2's CPU
// interface, the vUART) by decoding the trapped access from its syndrome, which the CPU only
// provides for plain loads and stores: no writeback, no load/store-multiple. A volatile access in
// Rust may compile to `str r1, [r0], #1024` (post-indexed), which Xen cannot emulate and turns into
// a data abort, so device registers are accessed through these fixed instructions.

/// Writes the 32-bit device register at `addr`.
///
/// # Safety
/// `addr` must be a 4-byte aligned device register mapped as Device memory, and writing `v` to it
/// must be sound for the device.
#[inline(always)]
pub unsafe fn mmio_write32(addr: usize, v: u32) {
    // SAFETY: forwarded to the caller.
    unsafe {
        asm!("str {v}, [{a}]", v = in(reg) v, a = in(reg) addr, options(nostack, preserves_flags))
    };
}

/// Writes the 8-bit device register at `addr`.
///
/// # Safety
/// As for [`mmio_write32`], for a byte-accessible register.
#[inline(always)]
pub unsafe fn mmio_write8(addr: usize, v: u8) {
    // SAFETY: forwarded to the caller.
    unsafe {
        asm!("strb {v}, [{a}]", v = in(reg) u32::from(v), a = in(reg) addr, options(nostack, preserves_flags))
    };
}

/// Reads the 32-bit device register at `addr`.
///
/// # Safety
/// `addr` must be a 4-byte aligned device register mapped as Device memory, and reading it must be
/// sound for the device (reads may have side effects, e.g. acknowledging an interrupt).
#[inline(always)]
pub unsafe fn mmio_read32(addr: usize) -> u32 {
    let v: u32;
    // SAFETY: forwarded to the caller.
    unsafe {
        asm!("ldr {v}, [{a}]", v = out(reg) v, a = in(reg) addr, options(nostack, preserves_flags))
    };
    v
}
