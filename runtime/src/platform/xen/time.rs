//! Time: the ARM virtual counter for the monotonic clock, `shared_info`'s wall clock, and
//! sleeping on the virtual timer (PPI 27).

use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};

use super::arch;
use crate::xen_wire::evtchn::{ns_to_ticks, ticks_to_ns};

static FREQ: AtomicU32 = AtomicU32::new(1);
static BOOT_COUNT: AtomicU64 = AtomicU64::new(0);

/// Deadlines (in counter ticks), the tasks waiting for them, and how many waits each entry
/// stands for (waits of one task on one deadline share an entry).
///
/// A [`Sleep`] dropped before its deadline withdraws its entry. Before it did (issue #15), every
/// timeout that did not fire (`uni-http` arms one per read and write) stayed here until its
/// deadline, with a waker that kept its finished task's memory alive, so the list held
/// requests-per-second × timeout entries under load, and its capacity never came back down:
/// the heap step of 96 to 192 KiB seen after a load on more connections than the one before.
static TIMERS: spin::Mutex<Vec<(u64, Waker, u32)>> = spin::Mutex::new(Vec::new());

/// Records the counter frequency and the count at the first instruction.
pub fn init(first_count: u64) {
    FREQ.store(arch::cntfrq().max(1), Ordering::Relaxed);
    BOOT_COUNT.store(first_count, Ordering::Relaxed);
    arch::set_cntv_ctl(0);
}

/// The counter frequency in Hz.
pub fn freq() -> u64 {
    u64::from(FREQ.load(Ordering::Relaxed))
}

/// The counter value at the image's first instruction.
pub fn boot_count() -> u64 {
    BOOT_COUNT.load(Ordering::Relaxed)
}

/// Nanoseconds since the domain was created (the virtual counter starts then).
pub fn since_domain_start_ns() -> u64 {
    ticks_to_ns(arch::cntvct(), freq())
}

/// Nanoseconds since the first instruction of the image.
pub fn now_ns() -> u64 {
    ticks_to_ns(arch::cntvct().saturating_sub(boot_count()), freq())
}

/// A future that completes once the counter reaches `deadline` ticks.
pub struct Sleep {
    deadline: u64,
    /// The waker registered in [`TIMERS`], withdrawn if the sleep is dropped early.
    registered: Option<Waker>,
}

/// Sleeps until `ns` nanoseconds from now have passed.
pub fn sleep_ns(ns: u64) -> Sleep {
    Sleep {
        deadline: arch::cntvct().saturating_add(ns_to_ticks(ns, freq())),
        registered: None,
    }
}

/// A deadline `ns` from now, in ticks.
pub fn deadline_after_ns(ns: u64) -> u64 {
    arch::cntvct().saturating_add(ns_to_ticks(ns, freq()))
}

/// Registers `waker` to be woken at `deadline` ticks.
pub fn wake_at(deadline: u64, waker: &Waker) {
    let mut timers = TIMERS.lock();
    match timers
        .iter_mut()
        .find(|(d, w, _)| *d == deadline && w.will_wake(waker))
    {
        Some((_, _, n)) => *n += 1,
        None => timers.push((deadline, waker.clone(), 1)),
    }
}

/// Withdraws one registration of `waker` at `deadline`.
fn cancel(deadline: u64, waker: &Waker) {
    let mut timers = TIMERS.lock();
    if let Some(i) = timers
        .iter()
        .position(|(d, w, _)| *d == deadline && w.will_wake(waker))
    {
        if timers[i].2 > 1 {
            timers[i].2 -= 1;
        } else {
            timers.swap_remove(i);
        }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = arch::cntvct();
        if now >= self.deadline {
            // Its entry, if any, is due: `expire` removes it.
            #[cfg(feature = "trace")]
            if self.registered.is_some() {
                crate::trace::timer(
                    crate::trace::Kind::TimerFire,
                    ticks_to_ns(now - self.deadline, freq()),
                );
            }
            self.registered = None;
            return Poll::Ready(());
        }
        if !self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            match self.registered.take() {
                Some(old) => cancel(self.deadline, &old),
                #[cfg(feature = "trace")]
                None => crate::trace::timer(
                    crate::trace::Kind::TimerArm,
                    ticks_to_ns(self.deadline - now, freq()),
                ),
                #[cfg(not(feature = "trace"))]
                None => {}
            }
            wake_at(self.deadline, cx.waker());
            self.registered = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(w) = self.registered.take() {
            // Dropped after its deadline without a last poll (the task woke for another reason
            // as well, and went on): it fired all the same.
            #[cfg(feature = "trace")]
            if let Some(late) = arch::cntvct().checked_sub(self.deadline) {
                crate::trace::timer(crate::trace::Kind::TimerFire, ticks_to_ns(late, freq()));
            }
            cancel(self.deadline, &w);
        }
    }
}

/// Wakes every task whose deadline has passed.
pub fn expire() {
    let now = arch::cntvct();
    let due: Vec<Waker> = {
        let mut timers = TIMERS.lock();
        let mut due = Vec::new();
        timers.retain(|(d, w, _)| {
            if *d <= now {
                due.push(w.clone());
                false
            } else {
                true
            }
        });
        due
    };
    for w in due {
        w.wake();
    }
}

/// Programs the virtual timer for the earliest deadline, or turns it off. Clears the interrupt
/// mask Xen sets when it forwards a timer interrupt.
pub fn arm_next() {
    let next = TIMERS.lock().iter().map(|(d, _, _)| *d).min();
    match next {
        Some(d) => {
            arch::set_cntv_cval(d);
            arch::set_cntv_ctl(1);
        }
        None => arch::set_cntv_ctl(0),
    }
}

/// The timer PPI fired: stop it until `arm_next` programs the next deadline.
pub fn on_irq() {
    arch::set_cntv_ctl(0);
}
