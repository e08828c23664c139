//! Event channels (2-level ABI) over the `shared_info` page, and the wall clock it carries.
//!
//! Xen marks a port pending in `evtchn_pending`, sets the word's bit in the vCPU's 64-bit
//! `evtchn_pending_sel`, sets `evtchn_upcall_pending`, and raises PPI 31 on its 0→1 edge.
//! [`process`] runs in the executor's idle loop: it clears `upcall_pending`, swaps the whole
//! selector out (as a `u64`), and wakes the tasks waiting on each pending, unmasked port. The
//! page protocol is [`xen_wire::evtchn`](crate::xen_wire::evtchn)'s, on a [`SharedPage`].

use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::{Context, Poll, Waker};

use super::hypercall;
use super::shared::SharedPage;
use crate::xen_wire::evtchn;

/// The page Xen's `shared_info` is mapped over (its RAM is given up).
#[repr(C, align(4096))]
struct Page([u8; 4096]);
static mut SHARED_INFO: Page = Page([0; 4096]);

/// (port, wait id, waker) of every pending [`EventWait`].
static WAITERS: spin::Mutex<Vec<(u32, u32, Waker)>> = spin::Mutex::new(Vec::new());
static NEXT_WAIT_ID: AtomicU32 = AtomicU32::new(1);

fn base() -> usize {
    (&raw const SHARED_INFO) as usize
}

/// The `shared_info` page.
fn shared_info() -> SharedPage {
    let base = NonNull::new((&raw mut SHARED_INFO).cast::<u8>()).expect("a static is not at 0");
    // SAFETY: SHARED_INFO is a page-aligned static that lives forever and that no Rust code
    // references: it is only accessed through this handle (and by Xen, once mapped over it).
    unsafe { SharedPage::new(base, 4096) }
}

/// Maps `shared_info` over its page.
pub fn init() -> Result<(), hypercall::XenError> {
    let gpfn = (base() >> 12) as u64;
    // SAFETY: SHARED_INFO is a page-aligned static that nothing else uses as memory; from here on
    // it is only accessed through `shared_info()`.
    unsafe { hypercall::add_to_physmap(hypercall::XENMAPSPACE_SHARED_INFO, 0, gpfn) }
}

/// Handles a pending upcall: wakes the waiters of every pending port. Returns whether anything
/// was pending.
pub fn process() -> bool {
    let info = shared_info();
    if !evtchn::upcall_pending(&info) {
        return false;
    }
    evtchn::clear_upcall(&info);
    super::entropy::note_event();
    let mut fired: Vec<u32> = Vec::new();
    evtchn::take_pending(&info, |port| fired.push(port));
    #[cfg(feature = "trace")]
    crate::trace::device(
        crate::trace::DEV_EVTCHN,
        0,
        crate::trace::Kind::Upcall,
        fired.len() as u32,
        fired
            .iter()
            .filter(|&&p| p < 64)
            .fold(0, |m, &p| m | 1u64 << p),
    );
    if !fired.is_empty() {
        let mut woken = Vec::new();
        {
            let mut waiters = WAITERS.lock();
            waiters.retain(|(p, _, w)| {
                if fired.contains(p) {
                    woken.push(w.clone());
                    false
                } else {
                    true
                }
            });
        }
        for w in woken {
            w.wake();
        }
    }
    true
}

/// The wall clock's reference point (the domain's start, to the second).
pub fn wall_clock() -> evtchn::WallClock {
    evtchn::wall_clock(&shared_info())
}

/// A local event-channel port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port(pub u32);

impl Port {
    /// A new port that domain `remote` can bind to (`EVTCHNOP_alloc_unbound`), unmasked.
    pub fn alloc_unbound(remote: u16) -> Result<Port, hypercall::XenError> {
        let p = Port(hypercall::evtchn_alloc_unbound(remote)?);
        p.unmask();
        Ok(p)
    }

    /// Notifies the remote end.
    pub fn notify(self) {
        hypercall::evtchn_send(self.0);
    }

    /// Unmasks the port; Xen re-raises it if it was pending meanwhile.
    pub fn unmask(self) {
        hypercall::evtchn_unmask(self.0);
    }

    /// Closes the port.
    pub fn close(self) -> Result<(), hypercall::XenError> {
        hypercall::evtchn_close(self.0)
    }

    /// Completes at the next event on this port after the first poll (or spuriously earlier:
    /// callers re-check their condition in a loop).
    pub fn wait(self) -> EventWait {
        EventWait {
            port: self,
            deadline: None,
            id: 0,
        }
    }

    /// Like [`wait`](Port::wait), but also completes after `ns` nanoseconds.
    pub fn wait_timeout(self, ns: u64) -> EventWait {
        EventWait {
            port: self,
            deadline: Some(super::time::deadline_after_ns(ns)),
            id: 0,
        }
    }
}

/// The future returned by [`Port::wait`].
pub struct EventWait {
    port: Port,
    deadline: Option<u64>,
    /// 0 until the first poll registers the waker.
    id: u32,
}

impl Future for EventWait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.id != 0 {
            return Poll::Ready(());
        }
        self.id = NEXT_WAIT_ID.fetch_add(1, Ordering::Relaxed).max(1);
        WAITERS
            .lock()
            .push((self.port.0, self.id, cx.waker().clone()));
        if let Some(d) = self.deadline {
            super::time::wake_at(d, cx.waker());
        }
        Poll::Pending
    }
}

impl Drop for EventWait {
    fn drop(&mut self) {
        if self.id != 0 {
            let id = self.id;
            WAITERS.lock().retain(|(_, i, _)| *i != id);
        }
    }
}
