//! Spawning concurrent tasks on the unikernel's single-threaded executor.

#[cfg(not(feature = "trace"))]
pub use crate::platform::spawn;

/// Runs `future` concurrently with the application, on the same thread (see the platform's
/// `spawn`). With tracing on, the task gets an id and a track of its own: its spawn, each run
/// (one poll), each wake-up and its end are events on it.
#[cfg(feature = "trace")]
pub fn spawn<F: core::future::Future<Output = ()> + 'static>(future: F) {
    crate::platform::spawn(crate::trace::Traced::new(future));
}

/// Lets the executor run the other ready tasks once: pending (after waking itself) on its first
/// poll, ready on the next. A task calls it where it could otherwise go on without ever
/// waiting (the next pipelined request, a stack's next batch of frames), so that it never keeps
/// the one thread from the others for long.
pub async fn yield_now() {
    let mut yielded = false;
    core::future::poll_fn(|cx| {
        if yielded {
            core::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            core::task::Poll::Pending
        }
    })
    .await
}
