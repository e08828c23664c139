//! 2-level event channels and the `shared_info` page (ARM layout, `xen/include/public/xen.h`).
//!
//! Port `p` is bit `p % 64` of word `p / 64` of `evtchn_pending` and `evtchn_mask`; the vCPU's
//! `evtchn_pending_sel` (a 64-bit `xen_ulong_t`, also on a 32-bit guest) has bit `w` set when word
//! `w` may hold pending ports. Truncating the selector to 32 bits loses ports 2048..4095.

use super::mem::SharedMem;

/// Byte offsets within the `shared_info` page.
pub mod field {
    /// `vcpu_info[0].evtchn_upcall_pending` (u8).
    pub const UPCALL_PENDING: usize = 0;
    /// `vcpu_info[0].evtchn_upcall_mask` (u8).
    pub const UPCALL_MASK: usize = 1;
    /// `vcpu_info[0].evtchn_pending_sel` (u64).
    pub const PENDING_SEL: usize = 8;
    /// `evtchn_pending[64]` (u64 each).
    pub const EVTCHN_PENDING: usize = 48;
    /// `evtchn_mask[64]` (u64 each).
    pub const EVTCHN_MASK: usize = 560;
    /// `wc_version` (u32): a seqlock, odd while Xen updates the wall clock.
    pub const WC_VERSION: usize = 1072;
    /// `wc_sec` (u32).
    pub const WC_SEC: usize = 1076;
    /// `wc_nsec` (u32).
    pub const WC_NSEC: usize = 1080;
    /// `wc_sec_hi` (u32).
    pub const WC_SEC_HI: usize = 1084;
}

/// Number of 64-bit words in each bitmap.
pub const WORDS: usize = 64;
/// Number of ports the 2-level ABI addresses on ARM.
pub const MAX_PORTS: u32 = (WORDS * 64) as u32;

/// The word index and bit mask of `port`.
pub const fn port_bit(port: u32) -> (usize, u64) {
    ((port / 64) as usize, 1u64 << (port % 64))
}

/// Calls `f` for every port that is pending and not masked, in ascending order.
///
/// `sel` is the value swapped out of `evtchn_pending_sel`; `word(w)` returns the pending-and-not-
/// masked bits of word `w` (the caller clears those bits in `evtchn_pending` as it reads them).
pub fn for_each_pending(sel: u64, mut word: impl FnMut(usize) -> u64, mut f: impl FnMut(u32)) {
    let mut sel = sel;
    while sel != 0 {
        let w = sel.trailing_zeros() as usize;
        sel &= sel - 1;
        let mut bits = word(w);
        while bits != 0 {
            let b = bits.trailing_zeros();
            bits &= bits - 1;
            f((w as u32) * 64 + b);
        }
    }
}

/// Whether Xen raised an upcall (`evtchn_upcall_pending` is set) since [`clear_upcall`].
pub fn upcall_pending<M: SharedMem + ?Sized>(info: &M) -> bool {
    let v = info.read_u8(field::UPCALL_PENDING);
    info.fence();
    v != 0
}

/// Clears `evtchn_upcall_pending`, before the ports are scanned (so a later event raises it
/// again).
pub fn clear_upcall<M: SharedMem + ?Sized>(info: &M) {
    info.fence();
    info.write_u8(field::UPCALL_PENDING, 0);
    info.fence();
}

/// Takes every pending, unmasked port out of `shared_info` (swapping out the 64-bit selector and
/// clearing the bits it reports in `evtchn_pending`) and calls `f` for each, in ascending order.
/// Masked pending ports stay pending.
pub fn take_pending<M: SharedMem + ?Sized>(info: &M, f: impl FnMut(u32)) {
    let sel = info.swap_u64(field::PENDING_SEL, 0);
    for_each_pending(
        sel,
        |w| {
            let pending = field::EVTCHN_PENDING + 8 * w;
            let mask = info.read_u64(field::EVTCHN_MASK + 8 * w);
            info.fence();
            let bits = info.read_u64(pending) & !mask;
            info.fetch_and_u64(pending, !bits);
            bits
        },
        f,
    );
}

/// Reads the wall clock's reference point under its seqlock (`wc_version`), retrying while Xen
/// updates it.
pub fn wall_clock<M: SharedMem + ?Sized>(info: &M) -> WallClock {
    loop {
        let v1 = info.read_u32(field::WC_VERSION);
        info.fence();
        let sec = info.read_u32(field::WC_SEC);
        let nsec = info.read_u32(field::WC_NSEC);
        let hi = info.read_u32(field::WC_SEC_HI);
        info.fence();
        let v2 = info.read_u32(field::WC_VERSION);
        if v1 & 1 == 0 && v1 == v2 {
            return WallClock::from_fields(sec, nsec, hi);
        }
    }
}

/// The wall clock as `shared_info` holds it: the time at which the domain's virtual counter read
/// zero, to the second (Xen rounds the domain's start down to a whole second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// Seconds since the Unix epoch (`wc_sec_hi << 32 | wc_sec`).
    pub secs: u64,
    /// Nanoseconds (`wc_nsec`).
    pub nanos: u32,
}

impl WallClock {
    /// Combines the raw fields.
    pub fn from_fields(sec: u32, nsec: u32, sec_hi: u32) -> WallClock {
        WallClock {
            secs: (u64::from(sec_hi) << 32) | u64::from(sec),
            nanos: nsec.min(999_999_999),
        }
    }

    /// The wall time `elapsed_ns` nanoseconds after this reference.
    pub fn plus_nanos(self, elapsed_ns: u64) -> (u64, u32) {
        let total = u64::from(self.nanos) + elapsed_ns % 1_000_000_000;
        let secs = self.secs + elapsed_ns / 1_000_000_000 + total / 1_000_000_000;
        (secs, (total % 1_000_000_000) as u32)
    }
}

/// Converts counter ticks at `freq` Hz to nanoseconds (the product is taken in 128 bits, so no
/// uptime below 584 years overflows; beyond that it saturates).
pub fn ticks_to_ns(ticks: u64, freq: u64) -> u64 {
    if freq == 0 {
        return 0;
    }
    (u128::from(ticks) * 1_000_000_000 / u128::from(freq)).min(u128::from(u64::MAX)) as u64
}

/// Converts nanoseconds to counter ticks at `freq` Hz, rounding up so that a deadline computed
/// from it is never early.
pub fn ns_to_ticks(ns: u64, freq: u64) -> u64 {
    let t = (u128::from(ns) * u128::from(freq)).div_ceil(1_000_000_000);
    t.min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_above_2048_use_the_high_half_of_the_selector() {
        // Word 40 is reachable only through bit 40 of the 64-bit selector.
        let sel = (1u64 << 40) | 1;
        let mut seen = alloc::vec::Vec::new();
        for_each_pending(
            sel,
            |w| match w {
                0 => 0b101,
                40 => 1 << 63,
                _ => panic!("word {w} not selected"),
            },
            |p| seen.push(p),
        );
        assert_eq!(seen, [0, 2, 40 * 64 + 63]);
        assert_eq!(port_bit(2623), (40, 1 << 63));
        assert_eq!(MAX_PORTS, 4096);
    }

    #[test]
    fn pending_ports_are_taken_from_shared_info() {
        let mut page = [0u8; 4096];
        let m = crate::xen_wire::mem::cells(&mut page);
        m.write_u8(field::UPCALL_PENDING, 1);
        m.write_u64(field::PENDING_SEL, (1 << 40) | 1);
        m.write_u64(field::EVTCHN_PENDING, 0b1101);
        m.write_u64(field::EVTCHN_MASK, 0b1000);
        m.write_u64(field::EVTCHN_PENDING + 8 * 40, 1 << 63);
        assert!(upcall_pending(m));
        clear_upcall(m);
        assert!(!upcall_pending(m));
        let mut seen = alloc::vec::Vec::new();
        take_pending(m, |p| seen.push(p));
        assert_eq!(seen, [0, 2, 40 * 64 + 63]);
        assert_eq!(m.read_u64(field::PENDING_SEL), 0);
        // The masked port stays pending.
        assert_eq!(m.read_u64(field::EVTCHN_PENDING), 0b1000);
        assert_eq!(m.read_u64(field::EVTCHN_PENDING + 8 * 40), 0);
        m.write_u32(field::WC_VERSION, 2);
        m.write_u32(field::WC_SEC, 10);
        m.write_u32(field::WC_NSEC, 5);
        m.write_u32(field::WC_SEC_HI, 1);
        assert_eq!(wall_clock(m), WallClock::from_fields(10, 5, 1));
    }

    #[test]
    fn shared_info_offsets() {
        assert_eq!(field::EVTCHN_MASK - field::EVTCHN_PENDING, 64 * 8);
        assert_eq!(field::WC_VERSION, field::EVTCHN_MASK + 64 * 8);
    }

    #[test]
    fn clocks() {
        assert_eq!(ticks_to_ns(62_500_000, 62_500_000), 1_000_000_000);
        let year = 365 * 86400 * 62_500_000u64;
        assert_eq!(
            ticks_to_ns(500 * year, 62_500_000) / 1_000_000_000 / 86400 / 365,
            500
        );
        assert_eq!(ticks_to_ns(u64::MAX, 62_500_000), u64::MAX);
        assert_eq!(ns_to_ticks(1, 62_500_000), 1);
        assert_eq!(ns_to_ticks(1_000_000_000, 62_500_000), 62_500_000);
        let wc = WallClock::from_fields(10, 900_000_000, 1);
        assert_eq!(wc.secs, (1 << 32) + 10);
        assert_eq!(wc.plus_nanos(1_200_000_000), ((1 << 32) + 12, 100_000_000));
    }
}
