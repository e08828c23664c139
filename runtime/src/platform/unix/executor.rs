//! The executor: the application's main future and a run queue of spawned tasks (async-task),
//! driven by async-io's reactor, in rounds as the Xen executor runs them.
//!
//! A round runs the tasks that were ready when it began, each polled once; a task woken during
//! the round (by another, or by itself when it yields) runs in the next one. Between two rounds
//! the reactor is polled (without blocking while tasks are ready, blocking when none is), so a
//! connection whose socket became readable meanwhile is in the next round too. No task runs
//! twice while another waits its turn with its I/O done: one client that always has its next
//! request ready cannot keep the thread from the others for more than one request each round
//! (uni-http yields after every response). async-executor's run loop, used before, ran up to
//! 200 tasks between two polls of the reactor, so such a client could be served up to 200
//! times while the others' requests sat unread.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use async_task::Runnable;

/// One thread's run queue. Wakers may be called from other threads (async-io's own thread
/// delivers I/O events while it holds the reactor), so it is shared and locked.
struct Queue {
    /// Woken tasks, in the order they were woken.
    ready: Mutex<VecDeque<Runnable>>,
    /// `block_on`'s waker, taken by the first wake after it was stored.
    waker: Mutex<Option<Waker>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic ends the process (the platform's hook), so a poisoned lock is never seen in
    // practice; its data is plain and stays consistent anyway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Queue {
    fn push(&self, runnable: Runnable) {
        lock(&self.ready).push_back(runnable);
        self.wake_runner();
    }

    fn wake_runner(&self) {
        let waker = lock(&self.waker).take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

std::thread_local! {
    static QUEUE: Arc<Queue> = Arc::new(Queue {
        ready: Mutex::new(VecDeque::new()),
        waker: Mutex::new(None),
    });
}

/// Runs `future` concurrently with the application, on the same thread (the one that calls
/// [`block_on`]).
///
/// A task that is still pending when the application's entry point returns is not run again.
pub fn spawn<F: Future<Output = ()> + 'static>(future: F) {
    let queue = QUEUE.with(Arc::clone);
    let (runnable, task) = async_task::spawn_local(future, move |r| queue.push(r));
    task.detach();
    runnable.schedule();
}

/// The main future's waker: marks it ready and wakes the runner.
struct MainWaker {
    ready: AtomicBool,
    queue: Arc<Queue>,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.queue.wake_runner();
    }
}

/// Runs `future` to completion on this thread, together with the tasks [`spawn`]ed on it.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let queue = QUEUE.with(Arc::clone);
    let main = Arc::new(MainWaker {
        ready: AtomicBool::new(true),
        queue: queue.clone(),
    });
    let main_waker = Waker::from(main.clone());
    let mut future = pin!(future);
    async_io::block_on(poll_fn(|cx| {
        // Stored first, so that a wake-up during the round (a task yielding, an I/O event
        // delivered by async-io's thread) makes async-io poll the reactor without blocking,
        // then come back for the next round.
        *lock(&queue.waker) = Some(cx.waker().clone());
        if main.ready.swap(false, Ordering::AcqRel) {
            if let Poll::Ready(v) = future.as_mut().poll(&mut Context::from_waker(&main_waker)) {
                return Poll::Ready(v);
            }
        }
        let round = lock(&queue.ready).len();
        for _ in 0..round {
            let Some(runnable) = lock(&queue.ready).pop_front() else {
                break;
            };
            runnable.run();
        }
        Poll::Pending
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::vec::Vec;

    #[test]
    fn tasks_take_turns_in_rounds_and_main_ends_the_run() {
        let order = Rc::new(RefCell::new(Vec::new()));
        let out = block_on({
            let order = order.clone();
            async move {
                for name in ['a', 'b', 'c'] {
                    let order = order.clone();
                    spawn(async move {
                        for i in 0..3 {
                            order.borrow_mut().push((name, i));
                            crate::task::yield_now().await;
                        }
                    });
                }
                // Main waits on a task through a channel-like cell: woken from a task.
                let done = Rc::new(RefCell::new((false, None::<Waker>)));
                let d = done.clone();
                spawn(async move {
                    crate::task::yield_now().await;
                    let mut d = d.borrow_mut();
                    d.0 = true;
                    if let Some(w) = d.1.take() {
                        w.wake();
                    }
                });
                poll_fn(|cx| {
                    let mut d = done.borrow_mut();
                    if d.0 {
                        Poll::Ready(())
                    } else {
                        d.1 = Some(cx.waker().clone());
                        Poll::Pending
                    }
                })
                .await;
                // Time passes through the reactor too.
                async_io::Timer::after(std::time::Duration::from_millis(5)).await;
                42
            }
        });
        assert_eq!(out, 42);
        let order = order.borrow();
        // Each round runs every task once: a task that yields goes after the others.
        assert_eq!(
            &order[..],
            &[
                ('a', 0),
                ('b', 0),
                ('c', 0),
                ('a', 1),
                ('b', 1),
                ('c', 1),
                ('a', 2),
                ('b', 2),
                ('c', 2)
            ]
        );
    }

    #[test]
    fn a_task_woken_from_another_thread_runs() {
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        let got = block_on(async move {
            let flag = Arc::new(AtomicBool::new(false));
            let f = flag.clone();
            let waker_thread = std::thread::spawn(move || {
                let w = rx.recv().unwrap();
                f.store(true, Ordering::Release);
                w.wake();
            });
            let mut sent = Some(tx);
            poll_fn(|cx| {
                if flag.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                if let Some(tx) = sent.take() {
                    tx.send(cx.waker().clone()).unwrap();
                }
                Poll::Pending
            })
            .await;
            waker_thread.join().unwrap();
            true
        });
        assert!(got);
    }
}
