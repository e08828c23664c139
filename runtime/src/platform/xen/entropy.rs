//! Entropy on Xen ARM: the platform's [`Random`], the raw input that `uni_crypto::Rng` (Fortuna)
//! is built over, exactly as the unix platform's `Random` (the OS's `getrandom`) is:
//! `uni_crypto::Rng::from_device(platform::Random::new(), platform::Clock::new())`.
//!
//! A domU has no hardware RNG, so the bytes come from:
//! * **Counter-timer jitter** (credited): the ARM virtual counter (CNTVCT) read around a small
//!   memory-touching loop whose length depends on the previous reading. Under Xen (and more so
//!   under QEMU) the loop's duration varies with caches, TLBs, interrupts, the host scheduler and
//!   the other vCPUs. On first use the source measures itself: from 1024 readings of a fixed
//!   amount of work (so that only jitter counts, not the varying loop lengths), the most
//!   common delta's frequency `p_max` gives the min-entropy of one reading, `-log2(p_max)`, and
//!   each output byte then folds `k` readings with `p_max^k ≤ 2^-16` (at least 16, at most 512):
//!   every byte Fortuna is told about (`DeviceSource` credits the whole buffer) stands on twice
//!   the min-entropy it is credited with, the factor 2 for the readings' correlation. A counter
//!   that would need more than 512 readings per byte, or that stops moving, crashes the domain
//!   with a clear reason: never weak output.
//! * **Event-channel timing** (mixed in, not credited): [`note_event`] is called on every
//!   event-channel upcall (console, xenstore, and netfront, so every packet batch), and folds the
//!   counter value at that moment into an accumulator that each [`Random::fill`](crate::device::Random::fill) mixes in.
//! * **A boot seed** (mixed in, not credited): `--uni-seed=<hex>` in the xl `extra=` string, for
//!   a dom0 that has a good generator (`extra="--uni-seed=$(head -c32 /dev/urandom | xxd -p -c64)"`).
//!   It is XORed into the first output only, so a known or absent seed takes nothing away.
//!
//! Nothing here blocks: one `fill` of 32 bytes takes 32·k readings of a few hundred ns each.
//! `--uni-boot-info` prints the calibration (`entropy: counter jitter: …`).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::arch;
use crate::device;

/// The fewest counter readings folded into one output byte.
pub const MIN_SAMPLES_PER_BYTE: u32 = 16;
/// The most: a counter that needs more than this is refused (the domain crashes with a reason).
pub const MAX_SAMPLES_PER_BYTE: u32 = 512;
/// Readings taken to estimate the min-entropy of one reading.
const CALIBRATION_READINGS: usize = 1024;

/// Readings per output byte, from the calibration (0: not calibrated yet).
static SAMPLES_PER_BYTE: AtomicU32 = AtomicU32::new(0);

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
    let Some(hex) = super::cmdline()
        .split_whitespace()
        .find_map(|a| a.strip_prefix("--uni-seed="))
    else {
        return 0;
    };
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut n = 0;
    for pair in hex.as_bytes().chunks_exact(2) {
        let (Some(h), Some(l)) = (digit(pair[0]), digit(pair[1])) else {
            break;
        };
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

/// The calibration: [`CALIBRATION_READINGS`] readings of a fixed amount of work, the most common
/// delta's frequency `p_max` (so one reading has `-log2(p_max)` bits of min-entropy, assuming
/// independent readings), and the number `k` of readings per byte such that `p_max^k ≤ 2^-16`: 16 bits of
/// estimated min-entropy behind every byte credited as 8 (a factor 2 for the readings'
/// correlation). Returns `(k, p_max in 1/CALIBRATION_READINGS, distinct deltas)`; `k` is 0 when
/// the counter needs more than [`MAX_SAMPLES_PER_BYTE`].
fn calibrate(scratch: &mut Scratch) -> (u32, usize, usize) {
    // The same amount of work for every reading: the loop lengths that vary with the previous
    // reading in real use would make a deterministic spread look like entropy here.
    let mut d = [0u16; CALIBRATION_READINGS];
    for x in d.iter_mut() {
        *x = sample(scratch, 32).min(u64::from(u16::MAX)) as u16;
    }
    d.sort_unstable();
    let (mut max_run, mut run, mut distinct) = (1usize, 1usize, 1usize);
    for w in d.windows(2) {
        if w[0] == w[1] {
            run += 1;
            max_run = max_run.max(run);
        } else {
            run = 1;
            distinct += 1;
        }
    }
    // p_max as a 32-bit binary fraction; multiply until the product is at most 2^-16.
    let q = ((max_run as u64) << 32) / CALIBRATION_READINGS as u64;
    let mut prod: u64 = 1 << 32;
    let mut k = 0u32;
    while prod > 1 << 16 {
        if k >= MAX_SAMPLES_PER_BYTE {
            return (0, max_run, distinct);
        }
        prod = ((u128::from(prod) * u128::from(q)) >> 32) as u64;
        k += 1;
    }
    (k.max(MIN_SAMPLES_PER_BYTE), max_run, distinct)
}

/// Readings per byte, calibrating on first use; crashes the domain when the counter does not
/// jitter enough to be used.
fn samples_per_byte(scratch: &mut Scratch) -> u32 {
    let k = SAMPLES_PER_BYTE.load(Ordering::Relaxed);
    if k != 0 {
        return k;
    }
    let (k, max_run, distinct) = calibrate(scratch);
    if super::cmdline()
        .split_whitespace()
        .any(|a| a == "--uni-boot-info")
    {
        super::diag(&alloc::format!(
            "entropy: counter jitter: {distinct} distinct deltas in {CALIBRATION_READINGS} readings, the commonest {max_run} times; {k} readings per byte"
        ));
    }
    super::boot_milestone("entropy source calibrated");
    assert!(k != 0, "xen entropy: the virtual counter barely jitters ({distinct} distinct deltas in {CALIBRATION_READINGS} readings, one of them {max_run} times); refusing to produce random bytes");
    SAMPLES_PER_BYTE.store(k, Ordering::Relaxed);
    k
}

/// One output byte: `k` readings, each rotated into a 64-bit accumulator that is then
/// XOR-folded to 8 bits (the low, jittery bits of every reading reach every output bit).
/// Returns the byte and whether the readings varied (the health check).
fn jitter_byte(scratch: &mut Scratch, prev: &mut u64, k: u32) -> (u8, bool) {
    let mut acc = 0u64;
    let first = sample(scratch, *prev);
    let mut varied = false;
    let mut last = first;
    acc ^= first;
    for _ in 1..k {
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
    /// Fills `buf` with conditioned jitter (every byte from k fresh counter readings), with the
    /// event timing and, the first time, the boot seed XORed in. Crashes the domain rather than
    /// return bytes when the counter does not move.
    fn fill(&self, buf: &mut [u8]) {
        let mut scratch = Scratch([0x9e37_79b9; 64]);
        let mut prev = arch::cntvct();
        let k = samples_per_byte(&mut scratch);
        let mut stuck = 0u32;
        let mut i = 0;
        while i < buf.len() {
            let (b, varied) = jitter_byte(&mut scratch, &mut prev, k);
            if !varied {
                // The counter stood still across k readings: no credit for this byte.
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
            super::boot_milestone(&alloc::format!("first {} random bytes", buf.len()));
            let mut seed = [0u8; 32];
            let n = boot_seed(&mut seed);
            if n > 0
                && super::cmdline()
                    .split_whitespace()
                    .any(|a| a == "--uni-boot-info")
            {
                super::diag(&alloc::format!("entropy: {n} bytes of boot seed mixed in"));
            }
            for (b, s) in buf.iter_mut().zip(&seed[..n]) {
                *b ^= *s;
            }
            seed.fill(0);
        }
    }
}
