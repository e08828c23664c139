use core::time::Duration;

/// A point on the monotonic clock, in nanoseconds since an arbitrary start (usually boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// Nanoseconds since the clock's start.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// Wall-clock time: seconds and nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WallTime {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: u64,
    /// Nanoseconds within the second, `< 1_000_000_000`.
    pub nanos: u32,
}

/// Time: a monotonic clock, a wall clock, and sleeping.
///
/// # Contract
/// * [`now`](Clock::now) MUST never go backwards, and MUST keep counting while the unikernel
///   sleeps.
/// * [`wall`](Clock::wall) MAY jump (the host's clock may be set); do not use it to measure
///   intervals.
/// * [`sleep`](Clock::sleep) MUST NOT complete before `now()` has advanced by `duration`. It
///   SHOULD complete soon after; the platform idles (no busy wait) meanwhile.
pub trait Clock {
    /// The monotonic time.
    fn now(&self) -> Instant;

    /// The wall-clock time.
    fn wall(&self) -> WallTime;

    /// Waits for `duration` of monotonic time.
    async fn sleep(&self, duration: Duration);
}
