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
