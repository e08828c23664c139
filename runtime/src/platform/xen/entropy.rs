//! Entropy on Xen ARM: the platform's [`Random`], the raw input that `uni_crypto::Rng` (Fortuna)
//! is built over, exactly as the unix platform's `Random` (the OS's `getrandom`) is:
//! `uni_crypto::Rng::from_device(platform::Random::new(), platform::Clock::new())`.
//!
//! A domU has no hardware RNG, so the bytes come from:
//! * **Counter-timer jitter** (credited): the ARM virtual counter (CNTVCT) read around a small
//!   memory-touching loop whose length depends on the previous reading. Under Xen (and more so
//!   under QEMU) the loop's duration varies with caches, TLBs, interrupts, the host scheduler and
//!   the other vCPUs. Each output byte folds [`SAMPLES_PER_BYTE`] readings, so a byte of output
//!   assumes no more than half a bit of min-entropy per reading: every byte Fortuna is told about
//!   (`DeviceSource` credits the whole buffer) stands on at least 16 timing samples. A health
//!   check refuses a counter that does not move between readings (more work, then a crash with a
//!   clear reason, never weak output).
//! * **Event-channel timing** (mixed in, not credited): [`note_event`] is called on every
//!   event-channel upcall (console, xenstore, and netfront, so every packet batch), and folds the
//!   counter value at that moment into an accumulator that each [`Random::fill`] mixes in.
//! * **A boot seed** (mixed in, not credited): `--uni-seed=<hex>` in the xl `extra=` string, for
//!   a dom0 that has a good generator (`extra="--uni-seed=$(head -c32 /dev/urandom | xxd -p -c64)"`).
//!   It is XORed into the first output only, so a known or absent seed takes nothing away.
//!
//! Nothing here blocks: one `fill` of 32 bytes takes 512 readings (well under a millisecond on a
//! Cortex-A7; a few on QEMU TCG).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::arch;
use crate::device;

/// Counter readings folded into one output byte (≤ ½ bit of min-entropy assumed per reading).
pub const SAMPLES_PER_BYTE: usize = 16;

/// Event-channel timing, folded (see [`note_event`]).
static EVENTS: AtomicU64 = AtomicU64::new(0);
/// Whether the boot seed has been mixed in already.
static SEED_USED: AtomicBool = AtomicBool::new(false);

/// Folds the counter's value at an event-channel upcall into the event accumulator.
pub(super) fn note_event() {
    let t = arch::cntvct();
    let prev = EVENTS.load(Ordering::Relaxed);
    EVENTS.store(prev.rotate_left(5) ^ t, Ordering::Relaxed);
}

/// The raw entropy device of the domain (see the module docs). Wrap it in Fortuna before use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Random;

impl Random {
    /// The domain's entropy device.
    pub fn new() -> Random {
        Random
    }
}

/// `--uni-seed=<hex>` from the boot arguments, up to 32 bytes (odd or bad digits end it).
fn boot_seed(out: &mut [u8; 32]) -> usize {
    let Some(hex) = super::cmdline().split_whitespace().find_map(|a| a.strip_prefix("--uni-seed=")) else {
        return 0;
    };
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut n = 0;
    for pair in hex.as_bytes().chunks_exact(2) {
        let (Some(h), Some(l)) = (digit(pair[0]), digit(pair[1])) else { break };
        if n == out.len() {
            break;
        }
        out[n] = h << 4 | l;
        n += 1;
    }
    n
}

/// A small buffer the sampling loop walks, so that the loop's time depends on the caches too.
struct Scratch([u32; 64]);

/// One counter-jitter reading: the ticks taken by a loop whose length depends on `prev`.
#[inline(never)]
fn sample(scratch: &mut Scratch, prev: u64) -> u64 {
    let t0 = arch::cntvct();
    let rounds = 16 + (prev as usize & 0x3f);
    let mut x = prev as u32 | 1;
    for i in 0..rounds {
        let j = (x as usize ^ i) & 63;
        x = x.rotate_left(5) ^ scratch.0[j].wrapping_add(i as u32);
        scratch.0[j] = x;
    }
    core::hint::black_box(x);
    arch::cntvct().wrapping_sub(t0)
}

/// One output byte: [`SAMPLES_PER_BYTE`] readings, each rotated into a 64-bit accumulator that
/// is then XOR-folded to 8 bits (the low, jittery bits of every reading reach every output bit).
/// Returns the byte and whether the readings varied (the health check).
fn jitter_byte(scratch: &mut Scratch, prev: &mut u64) -> (u8, bool) {
    let mut acc = 0u64;
    let first = sample(scratch, *prev);
    let mut varied = false;
    let mut last = first;
    acc ^= first;
    for _ in 1..SAMPLES_PER_BYTE {
        let d = sample(scratch, last);
        varied |= d != last;
        last = d;
        acc = acc.rotate_left(7) ^ d;
    }
    *prev = last ^ acc;
    let folded = acc.to_le_bytes().iter().fold(0u8, |a, b| a ^ b);
    (folded, varied && last != 0)
}

impl device::Random for Random {
    /// Fills `buf` with conditioned jitter (every byte from 16 fresh counter readings), with the
    /// event timing and, the first time, the boot seed XORed in. Crashes the domain rather than
    /// return bytes when the counter does not move.
    fn fill(&self, buf: &mut [u8]) {
        let mut scratch = Scratch([0x9e37_79b9; 64]);
        let mut prev = arch::cntvct();
        let mut stuck = 0u32;
        let mut i = 0;
        while i < buf.len() {
            let (b, varied) = jitter_byte(&mut scratch, &mut prev);
            if !varied {
                // The counter stood still across 16 readings: no credit for this byte.
                stuck += 1;
                assert!(stuck < 1024, "xen entropy: the virtual counter does not move between readings; refusing to produce random bytes");
                continue;
            }
            buf[i] = b;
            i += 1;
        }
        let ev = EVENTS.load(Ordering::Relaxed).to_le_bytes();
        for (b, e) in buf.iter_mut().zip(ev.iter().cycle()) {
            *b ^= *e;
        }
        if !SEED_USED.swap(true, Ordering::Relaxed) {
            let mut seed = [0u8; 32];
            let n = boot_seed(&mut seed);
            for (b, s) in buf.iter_mut().zip(&seed[..n]) {
                *b ^= *s;
            }
            seed.fill(0);
        }
    }
}
