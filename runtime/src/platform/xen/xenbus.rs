//! The front end's side of the XenBus handshake over xenstore, for any split device (`vif` now,
//! `vbd` later): find the device's back end, follow the back end's `state`, publish the front
//! end's ring details in one transaction, and switch the front end's `state`.
//!
//! A driver's connect is, with [`Frontend`]:
//! 1. [`Frontend::find`] (`device/<kind>/<index>/backend` and `backend-id`);
//! 2. [`wait_backend`](Frontend::wait_backend)`(InitWait)`;
//! 3. grant its rings, allocate its event channel, then [`publish`](Frontend::publish) their
//!    references and its features;
//! 4. [`set_state`](Frontend::set_state)`(Connected)` and `wait_backend(Connected)`.

use alloc::format;
use alloc::string::String;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use super::time;
use super::xenstore::Xenstore;
use crate::device::{Xenstore as _, XenstoreError};
use crate::xen_wire::xenbus::XenbusState;

/// How long the back end gets to reach each handshake state.
pub const HANDSHAKE_TIMEOUT_NS: u64 = 30_000_000_000;

/// Why a handshake step failed.
#[derive(Debug)]
pub enum XenbusError {
    /// The front end's directory has no `backend` node: the domain has no such device.
    NoDevice,
    /// A xenstore operation failed.
    Xenstore {
        /// What was being done.
        what: String,
        /// The store's error.
        error: XenstoreError,
    },
    /// A xenstore node holds something unusable.
    BadValue {
        /// The node.
        path: String,
        /// Its value.
        value: String,
    },
    /// The back end closed during the handshake.
    BackendClosed {
        /// The back end's xenstore directory.
        backend: String,
        /// The state it went to.
        state: XenbusState,
    },
    /// The back end did not reach the next handshake state in time.
    Timeout {
        /// The back end's xenstore directory.
        backend: String,
        /// The state it was waiting for.
        want: XenbusState,
        /// The state it stayed in.
        state: XenbusState,
    },
}

/// Wraps a xenstore error with what was being done.
pub fn xs_err(what: impl Into<String>) -> impl FnOnce(XenstoreError) -> XenbusError {
    let what = what.into();
    move |error| XenbusError::Xenstore { what, error }
}

/// Runs `f` for at most `ns` nanoseconds.
pub async fn timeout<F: Future>(ns: u64, f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    let mut sleep = pin!(time::sleep_ns(ns));
    poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// One split device as its front end sees it in xenstore.
#[derive(Debug)]
pub struct Frontend {
    /// The front end's directory, relative to the domain's (`device/vif/0`).
    pub frontend: String,
    /// The back end's directory (`/local/domain/0/backend/vif/<domid>/0`).
    pub backend: String,
    /// The back end's domain.
    pub backend_id: u16,
}

impl Frontend {
    /// Reads `<frontend>/backend` and `<frontend>/backend-id`.
    pub async fn find(frontend: String) -> Result<Frontend, XenbusError> {
        let xs = Xenstore::new();
        let backend = match xs.read(&format!("{frontend}/backend")).await {
            Ok(b) => String::from(b.trim()),
            Err(XenstoreError::NoEntry) => return Err(XenbusError::NoDevice),
            Err(e) => return Err(xs_err(format!("reading {frontend}/backend"))(e)),
        };
        let id_path = format!("{frontend}/backend-id");
        let id = xs
            .read(&id_path)
            .await
            .map_err(xs_err(format!("reading {id_path}")))?;
        let backend_id = id.trim().parse().map_err(|_| XenbusError::BadValue {
            path: id_path,
            value: id.clone(),
        })?;
        Ok(Frontend {
            frontend,
            backend,
            backend_id,
        })
    }

    /// The path of the back end's `state` node.
    pub fn backend_state_path(&self) -> String {
        format!("{}/state", self.backend)
    }

    /// The path of the front end's `state` node.
    pub fn state_path(&self) -> String {
        format!("{}/state", self.frontend)
    }

    /// The back end's state as it stands.
    pub async fn backend_state(&self) -> Result<XenbusState, XenstoreError> {
        Ok(XenbusState::parse(
            &Xenstore::new().read(&self.backend_state_path()).await?,
        ))
    }

    /// Waits until the back end's state is `want`; fails if it closes or takes longer than
    /// [`HANDSHAKE_TIMEOUT_NS`].
    pub async fn wait_backend(&self, want: XenbusState) -> Result<(), XenbusError> {
        let xs = Xenstore::new();
        let path = self.backend_state_path();
        let watch = xs
            .watch(&path)
            .await
            .map_err(xs_err(format!("watching {path}")))?;
        let deadline = time::now_ns() + HANDSHAKE_TIMEOUT_NS;
        let result = loop {
            let state = match self.backend_state().await {
                Ok(s) => s,
                Err(XenstoreError::NoEntry) => XenbusState::Unknown,
                Err(e) => break Err(xs_err(format!("reading {path}"))(e)),
            };
            if state == want {
                break Ok(());
            }
            if matches!(state, XenbusState::Closing | XenbusState::Closed) {
                break Err(XenbusError::BackendClosed {
                    backend: self.backend.clone(),
                    state,
                });
            }
            let left = deadline.saturating_sub(time::now_ns());
            match timeout(left, watch.changed()).await {
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(xs_err(format!("watching {path}"))(e)),
                None => {
                    break Err(XenbusError::Timeout {
                        backend: self.backend.clone(),
                        want,
                        state,
                    })
                }
            }
        };
        let _ = watch.cancel().await;
        result
    }

    /// Writes `<frontend>/<key> = value` for every pair in one transaction, run again on
    /// conflicts (at most 10 times). `what` names the values in errors ("ring details").
    pub async fn publish(&self, what: &str, values: &[(&str, String)]) -> Result<(), XenbusError> {
        let xs = Xenstore::new();
        let fe = &self.frontend;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let tx = xs
                .transaction()
                .await
                .map_err(xs_err("starting a transaction"))?;
            for (key, value) in values {
                if let Err(e) = tx.write(&format!("{fe}/{key}"), value).await {
                    let _ = tx.abort().await;
                    return Err(xs_err(format!("writing {fe}/{key}"))(e));
                }
            }
            match tx.commit().await {
                Ok(true) => return Ok(()),
                Ok(false) if attempts < 10 => continue,
                Ok(false) => {
                    return Err(XenbusError::Xenstore {
                        what: format!("writing {fe}'s {what}"),
                        error: XenstoreError::Xen(String::from("EAGAIN (10 conflicts)")),
                    })
                }
                Err(e) => return Err(xs_err(format!("committing {fe}'s {what}"))(e)),
            }
        }
    }

    /// Switches the front end's `state`.
    pub async fn set_state(&self, state: XenbusState) -> Result<(), XenbusError> {
        let path = self.state_path();
        Xenstore::new()
            .write(&path, state.value())
            .await
            .map_err(xs_err(format!("writing {path}")))
    }
}
