//! The executor: the application's main future, a run queue of spawned tasks (async-task), and
//! an idle loop that blocks the vCPU in Xen (WFI) until an event channel or the virtual timer
//! fires.
//!
//! Interrupts stay masked in CPSR for the whole run: nothing preempts a task, so the platform's
//! statics never see concurrent access. A pending interrupt still ends WFI; the idle loop then
//! acknowledges it at the GIC, processes event channels and expired timers, and wakes tasks.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::task::Wake;
use core::future::Future;
use core::pin::pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use super::{arch, events, gic, time};

static QUEUE: spin::Mutex<VecDeque<async_task::Runnable>> = spin::Mutex::new(VecDeque::new());
static MAIN_READY: AtomicBool = AtomicBool::new(true);

struct MainWaker;

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        MAIN_READY.store(true, Ordering::Release);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        MAIN_READY.store(true, Ordering::Release);
    }
}

/// Runs `future` concurrently with the application, on the same vCPU.
///
/// A task that is still pending when the application's entry point returns is dropped.
pub fn spawn<F: Future<Output = ()> + 'static>(future: F) {
    let schedule = |r: async_task::Runnable| QUEUE.lock().push_back(r);
    // SAFETY: `spawn_unchecked` drops the `Send` bounds. The runtime has one thread of execution
    // (one vCPU, no interrupt handlers), so the future, its Runnable and its wakers are only ever
    // used on it; the future is 'static.
    let (runnable, task) = unsafe { async_task::spawn_unchecked(future, schedule) };
    task.detach();
    runnable.schedule();
}

/// Services the hardware: acknowledges interrupts, dispatches event channels, expires timers.
fn poll_platform() {
    gic::drain(|irq| {
        if irq == gic::VTIMER_PPI {
            time::on_irq();
        }
    });
    events::process();
    time::expire();
}

/// Runs `future` to completion now, from synchronous code (inside a task or before the
/// executor runs), servicing the hardware between its polls but running no other task: for the
/// platform's own short waits, such as a xenstore write at the trace session's start. Tasks it
/// wakes run when the executor next gets control.
#[cfg(feature = "trace")]
pub fn wait_now<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        poll_platform();
        // Its event (a reply on an event channel) may have come already: poll again first.
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        time::arm_next();
        arch::wfi();
        poll_platform();
    }
}

/// Runs `main` to completion, running spawned tasks alongside, and returns its output.
pub fn block_on<T>(main: impl Future<Output = T>) -> T {
    let mut main = pin!(main);
    let waker = Waker::from(Arc::new(MainWaker));
    let mut cx = Context::from_waker(&waker);
    MAIN_READY.store(true, Ordering::Release);
    loop {
        if MAIN_READY.swap(false, Ordering::AcqRel) {
            if let Poll::Ready(v) = main.as_mut().poll(&mut cx) {
                return v;
            }
        }
        // Run what is ready now; tasks woken meanwhile run in the next round.
        let n = QUEUE.lock().len();
        for _ in 0..n {
            let Some(r) = QUEUE.lock().pop_front() else {
                break;
            };
            r.run();
        }
        poll_platform();
        if MAIN_READY.load(Ordering::Acquire) || !QUEUE.lock().is_empty() {
            continue;
        }
        time::arm_next();
        arch::wfi();
        poll_platform();
    }
}
