//! [`Rng`]: Fortuna with its entropy sources and a clock, shared behind a lock. This is the one
//! source of randomness of the provider and of the `random` device.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use rustls::crypto::{GetRandomFailed, SecureRandom};
use uni_runtime::device;

use crate::fortuna::{Fortuna, NotSeeded, POOLS};

/// A source of entropy events.
///
/// # Contract
/// * [`gather`](EntropySource::gather) writes at most `out.len()` (32) bytes of fresh,
///   unpredictable input into `out` and returns how many. Returning 0 is allowed (nothing new).
/// * It MUST NOT block for long: it is called while the generator's lock is held.
///
/// Each platform's `uni_runtime::platform::Random` is used through [`DeviceSource`]: on unix the
/// OS's randomness; on xen-arm counter-timer jitter conditioned so that every byte stands on
/// twice the min-entropy it is credited with, with event-channel (and so packet) timing and an
/// optional `--uni-seed` boot argument mixed in uncredited. Callers with other timing events
/// can add them with [`Rng::add_event`].
pub trait EntropySource: Send {
    /// Writes fresh entropy into `out`, returning how many bytes.
    fn gather(&mut self, out: &mut [u8; 32]) -> usize;
}

/// Any [`device::Random`] as an entropy source (on unix: the OS's `getrandom`).
#[derive(Debug, Clone)]
pub struct DeviceSource<R>(pub R);

impl<R: device::Random + Send> EntropySource for DeviceSource<R> {
    fn gather(&mut self, out: &mut [u8; 32]) -> usize {
        self.0.fill(out);
        32
    }
}

struct Source {
    id: u8,
    next_pool: usize,
    inner: Box<dyn EntropySource>,
}

struct Inner {
    fortuna: Fortuna,
    sources: Vec<Source>,
    /// Round-robin pool of each source id used through [`Rng::add_event`].
    event_pools: [u8; 256],
    clock: Box<dyn Fn() -> u64 + Send>,
}

impl Inner {
    fn gather(&mut self) {
        let mut buf = [0u8; 32];
        for s in &mut self.sources {
            let n = s.inner.gather(&mut buf).min(32);
            if n > 0 {
                self.fortuna.add_event(s.id, s.next_pool, &buf[..n]);
                s.next_pool = (s.next_pool + 1) % POOLS;
            }
        }
    }
}

/// The CSPRNG: Fortuna, fed by its sources on every request, reseeding on Fortuna's schedule.
///
/// It is `Sync` (a spinlock; the executors are single-threaded, so it never spins for long) and
/// implements both [`device::Random`] and rustls's [`SecureRandom`].
pub struct Rng {
    inner: spin::Mutex<Inner>,
}

impl fmt::Debug for Rng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rng(Fortuna)")
    }
}

impl Rng {
    /// An unseeded generator that reads monotonic time (nanoseconds) from `clock`.
    pub fn new(clock: impl Fn() -> u64 + Send + 'static) -> Rng {
        Rng {
            inner: spin::Mutex::new(Inner {
                fortuna: Fortuna::new(),
                sources: Vec::new(),
                event_pools: [0; 256],
                clock: Box::new(clock),
            }),
        }
    }

    /// A generator fed by `random` (the platform's entropy device) and timed by `clock`,
    /// seeded before it is returned. On unix `random` is the OS's generator.
    pub fn from_device(
        random: impl device::Random + Send + 'static,
        clock: impl device::Clock + Send + 'static,
    ) -> Result<Rng, NotSeeded> {
        let rng = Rng::new(move || clock.now().as_nanos());
        rng.add_source(DeviceSource(random));
        rng.seed()?;
        Ok(rng)
    }

    /// Adds an entropy source. Sources are numbered in the order added (ids 0..=127; ids from
    /// 128 up are left to [`Rng::add_event`] callers).
    pub fn add_source(&self, source: impl EntropySource + 'static) {
        let mut g = self.inner.lock();
        let id = g.sources.len() as u8 & 0x7f;
        g.sources.push(Source {
            id,
            next_pool: 0,
            inner: Box::new(source),
        });
    }

    /// Adds one event (such as the low bits of a timer read when a packet arrived) from source
    /// `source`; events of one source go round-robin over the pools.
    pub fn add_event(&self, source: u8, data: &[u8]) {
        let mut g = self.inner.lock();
        let pool = g.event_pools[source as usize] as usize;
        g.event_pools[source as usize] = ((pool + 1) % POOLS) as u8;
        g.fortuna.add_event(source, pool, data);
    }

    /// Gathers from the sources until the first reseed has happened. Fails when the sources
    /// give nothing (after 32 × 8 rounds).
    pub fn seed(&self) -> Result<(), NotSeeded> {
        let mut g = self.inner.lock();
        for _ in 0..POOLS * 8 {
            if g.fortuna.is_seeded() {
                return Ok(());
            }
            g.gather();
            let now = (g.clock)();
            if g.fortuna.reseed_due(now) {
                let mut b = [0u8; 1];
                let _ = g.fortuna.fill(now, &mut b);
            }
        }
        if g.fortuna.is_seeded() {
            Ok(())
        } else {
            Err(NotSeeded)
        }
    }

    /// Whether the generator has been seeded.
    pub fn is_seeded(&self) -> bool {
        self.inner.lock().fortuna.is_seeded()
    }

    /// How many reseeds have happened.
    pub fn reseeds(&self) -> u64 {
        self.inner.lock().fortuna.reseeds()
    }

    /// Fills `buf`, or fails before the first reseed.
    pub fn try_fill(&self, buf: &mut [u8]) -> Result<(), NotSeeded> {
        let mut g = self.inner.lock();
        g.gather();
        let now = (g.clock)();
        g.fortuna.fill(now, buf)
    }

    /// Gives the generator a `'static` lifetime, as rustls's provider needs.
    pub fn leak(self) -> &'static Rng {
        Box::leak(Box::new(self))
    }
}

impl SecureRandom for Rng {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        self.try_fill(buf).map_err(|_| GetRandomFailed)
    }
}

impl device::Random for Rng {
    fn fill(&self, buf: &mut [u8]) {
        self.try_fill(buf)
            .expect("uni-crypto: random bytes requested before the generator was seeded");
    }
}

impl device::Random for &Rng {
    fn fill(&self, buf: &mut [u8]) {
        device::Random::fill(*self, buf)
    }
}

/// `rand_core` view of an [`Rng`], for the RustCrypto key generators.
pub(crate) struct RandCore<'a>(pub &'a Rng);

impl rand_core::RngCore for RandCore<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        device::Random::fill(self.0, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill(dest).map_err(|_| {
            rand_core::Error::from(
                core::num::NonZeroU32::new(rand_core::Error::CUSTOM_START).expect("non-zero"),
            )
        })
    }
}

impl rand_core::CryptoRng for RandCore<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU64, Ordering};

    struct Counter(u8);
    impl EntropySource for Counter {
        fn gather(&mut self, out: &mut [u8; 32]) -> usize {
            self.0 = self.0.wrapping_add(1);
            out.fill(self.0);
            32
        }
    }

    #[test]
    fn unseeded_refuses_and_sources_seed_it() {
        static NOW: AtomicU64 = AtomicU64::new(0);
        let rng = Rng::new(|| NOW.load(Ordering::Relaxed));
        let mut b = [0u8; 8];
        assert_eq!(rng.try_fill(&mut b), Err(NotSeeded), "no sources");
        assert_eq!(rng.seed(), Err(NotSeeded));
        rng.add_source(Counter(0));
        rng.seed().unwrap();
        assert_eq!(rng.reseeds(), 1);
        rng.try_fill(&mut b).unwrap();
        // Sources keep feeding: after 100 ms and 64 more bytes in pool 0, it reseeds again.
        NOW.store(200_000_000, Ordering::Relaxed);
        for _ in 0..64 {
            rng.try_fill(&mut b).unwrap();
        }
        assert_eq!(rng.reseeds(), 2);
    }
}
