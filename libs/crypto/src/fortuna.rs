//! Fortuna (Ferguson, Schneier and Kohno, *Cryptography Engineering*, ch. 9): a generator, an
//! accumulator of 32 entropy pools, and the reseed schedule.
//!
//! * **Generator:** AES-256 in counter mode with a 128-bit little-endian counter. After every
//!   request the key is replaced by two fresh blocks of output, so a later compromise of the
//!   state does not reveal earlier output. One request yields at most 2^20 bytes before
//!   rekeying.
//! * **Accumulator:** 32 pools, each a running SHA-256. An event from source `s` is appended
//!   to pool `p` as `s ‖ len ‖ data`.
//! * **Reseed:** when pool 0 has received at least [`MIN_POOL_SIZE`] bytes and at least
//!   [`RESEED_INTERVAL_NS`] has passed since the last reseed. Reseed number `r` uses pool `i`
//!   when `2^i` divides `r`; the new key is `SHAd-256(key ‖ SHAd-256(pool_i)…)`.
//! * **No output before the first reseed:** [`Fortuna::fill`] returns [`NotSeeded`] until then.
//!
//! This type is sans-IO: the caller passes the time in. [`crate::Rng`] wraps it with entropy
//! sources and a clock.

use aes::cipher::{KeyIvInit, StreamCipher};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// The number of entropy pools.
pub const POOLS: usize = 32;
/// Bytes pool 0 must have received before a reseed.
pub const MIN_POOL_SIZE: usize = 64;
/// The minimum time between two reseeds, in nanoseconds (100 ms).
pub const RESEED_INTERVAL_NS: u64 = 100_000_000;
/// The most output one generator request produces before rekeying.
pub const MAX_REQUEST: usize = 1 << 20;

type Aes256Ctr = ctr::Ctr128LE<aes::Aes256>;

/// The generator has not been seeded yet: it refuses to produce output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotSeeded;

impl core::fmt::Display for NotSeeded {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the random number generator has not been seeded with enough entropy yet")
    }
}

impl core::error::Error for NotSeeded {}

/// The generator: an AES-256 key and a 128-bit block counter (0 = never seeded).
struct Generator {
    key: [u8; 32],
    counter: u128,
}

impl Generator {
    fn reseed(&mut self, seed: &[u8]) {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(seed);
        self.key = shad256_finish(h);
        self.counter = self.counter.wrapping_add(1);
    }

    /// Writes `out.len().div_ceil(16)` blocks of keystream into `out` (a partial last block is
    /// cut), advancing the counter by that many blocks.
    fn blocks(&mut self, out: &mut [u8]) {
        out.fill(0);
        let mut c = Aes256Ctr::new(&self.key.into(), &self.counter.to_le_bytes().into());
        c.apply_keystream(out);
        self.counter = self.counter.wrapping_add(out.len().div_ceil(16) as u128);
    }

    fn pseudo_random_data(&mut self, out: &mut [u8]) -> Result<(), NotSeeded> {
        if self.counter == 0 {
            return Err(NotSeeded);
        }
        for chunk in out.chunks_mut(MAX_REQUEST) {
            self.blocks(chunk);
            let mut key = [0u8; 32];
            self.blocks(&mut key);
            self.key = key;
            key.zeroize();
        }
        Ok(())
    }
}

/// SHAd-256: SHA-256 applied twice, closing the length-extension hole.
pub fn shad256(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(data);
    shad256_finish(h)
}

fn shad256_finish(h: Sha256) -> [u8; 32] {
    Sha256::digest(h.finalize()).into()
}

/// The Fortuna state: generator plus accumulator.
pub struct Fortuna {
    generator: Generator,
    pools: [Sha256; POOLS],
    pool0_len: usize,
    reseeds: u64,
    last_reseed_ns: Option<u64>,
}

impl Default for Fortuna {
    fn default() -> Self {
        Fortuna::new()
    }
}

impl core::fmt::Debug for Fortuna {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the key.
        f.debug_struct("Fortuna")
            .field("reseeds", &self.reseeds)
            .field("pool0_len", &self.pool0_len)
            .finish_non_exhaustive()
    }
}

impl Fortuna {
    /// An unseeded generator with empty pools.
    pub fn new() -> Fortuna {
        Fortuna {
            generator: Generator {
                key: [0; 32],
                counter: 0,
            },
            pools: core::array::from_fn(|_| Sha256::new()),
            pool0_len: 0,
            reseeds: 0,
            last_reseed_ns: None,
        }
    }

    /// Adds an event from entropy source `source` to pool `pool % 32`. `data` is at most 32
    /// bytes (longer data is hashed down first).
    pub fn add_event(&mut self, source: u8, pool: usize, data: &[u8]) {
        let p = pool % POOLS;
        let digest;
        let data = if data.len() > 32 {
            digest = Sha256::digest(data);
            &digest[..]
        } else {
            data
        };
        self.pools[p].update([source, data.len() as u8]);
        self.pools[p].update(data);
        if p == 0 {
            self.pool0_len += data.len();
        }
    }

    /// Whether the first reseed has happened (output is available).
    pub fn is_seeded(&self) -> bool {
        self.generator.counter != 0
    }

    /// How many reseeds have happened.
    pub fn reseeds(&self) -> u64 {
        self.reseeds
    }

    /// Whether a reseed would happen now (pool 0 is full enough and the interval has passed).
    pub fn reseed_due(&self, now_ns: u64) -> bool {
        self.pool0_len >= MIN_POOL_SIZE
            && self
                .last_reseed_ns
                .is_none_or(|t| now_ns.saturating_sub(t) >= RESEED_INTERVAL_NS)
    }

    fn reseed(&mut self, now_ns: u64) {
        self.reseeds += 1;
        let mut seed = [0u8; 32 * POOLS];
        let mut used = 0;
        for i in 0..POOLS {
            if i < 64 && !self.reseeds.is_multiple_of(1u64 << i) {
                break;
            }
            let pool = core::mem::replace(&mut self.pools[i], Sha256::new());
            seed[used..used + 32].copy_from_slice(&shad256_finish(pool));
            used += 32;
        }
        self.generator.reseed(&seed[..used]);
        seed.zeroize();
        self.pool0_len = 0;
        self.last_reseed_ns = Some(now_ns);
    }

    /// Fills `out` with random bytes, reseeding first when due. Fails only before the first
    /// reseed.
    pub fn fill(&mut self, now_ns: u64, out: &mut [u8]) -> Result<(), NotSeeded> {
        if self.reseed_due(now_ns) {
            self.reseed(now_ns);
        }
        self.generator.pseudo_random_data(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_output_before_first_reseed() {
        let mut f = Fortuna::new();
        let mut buf = [0u8; 16];
        assert_eq!(f.fill(0, &mut buf), Err(NotSeeded));
        // 63 bytes in pool 0 is not enough.
        f.add_event(0, 0, &[1; 32]);
        f.add_event(0, 0, &[1; 31]);
        assert_eq!(f.fill(0, &mut buf), Err(NotSeeded));
        f.add_event(0, 0, &[1; 1]);
        assert_eq!(f.fill(0, &mut buf), Ok(()));
        assert!(f.is_seeded());
        assert_eq!(f.reseeds(), 1);
    }

    #[test]
    fn reseed_interval_and_pool_schedule() {
        let mut f = Fortuna::new();
        for p in 0..POOLS {
            f.add_event(1, p, &[p as u8; 32]);
            f.add_event(1, p, &[p as u8; 32]);
        }
        let mut a = [0u8; 32];
        f.fill(1, &mut a).unwrap();
        assert_eq!(f.reseeds(), 1);
        // Pool 0 refilled but only 50 ms later: no reseed.
        f.add_event(1, 0, &[9; 32]);
        f.add_event(1, 0, &[9; 32]);
        f.fill(50_000_001, &mut a).unwrap();
        assert_eq!(f.reseeds(), 1);
        f.fill(100_000_001, &mut a).unwrap();
        assert_eq!(f.reseeds(), 2);
        // Reseed 2 used pools 0 and 1, so pool 1 is empty again and pool 2 still full.
        assert_eq!(f.pool0_len, 0);
    }

    #[test]
    fn output_differs_between_requests_and_is_deterministic_for_a_state() {
        let seed = |f: &mut Fortuna| {
            f.add_event(0, 0, &[7; 32]);
            f.add_event(0, 0, &[7; 32]);
        };
        let (mut f, mut g) = (Fortuna::new(), Fortuna::new());
        seed(&mut f);
        seed(&mut g);
        let (mut a, mut b, mut c) = ([0u8; 48], [0u8; 48], [0u8; 48]);
        f.fill(0, &mut a).unwrap();
        f.fill(0, &mut b).unwrap();
        g.fill(0, &mut c).unwrap();
        assert_ne!(a, b, "rekeying after each request");
        assert_eq!(a, c, "same events, same output");
    }

    #[test]
    fn generator_is_aes256_ctr_little_endian() {
        // With key K and counter 1, the first block is AES-256_K(1 as 16 LE bytes).
        use aes::cipher::{BlockEncrypt, KeyInit};
        let mut g = Generator {
            key: [0x42; 32],
            counter: 1,
        };
        let mut out = [0u8; 16];
        g.blocks(&mut out);
        let mut block = 1u128.to_le_bytes().into();
        aes::Aes256::new(&[0x42; 32].into()).encrypt_block(&mut block);
        assert_eq!(out, block.as_slice());
        assert_eq!(g.counter, 2);
    }

    #[test]
    fn shad256_vector() {
        // SHAd-256("abc") = SHA-256(SHA-256("abc")).
        let once = Sha256::digest(b"abc");
        assert_eq!(shad256(b"abc"), <[u8; 32]>::from(Sha256::digest(once)));
    }
}
