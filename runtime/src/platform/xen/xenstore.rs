//! The xenstore client: the protocol state is [`xen_wire::xenstore::Session`](crate::xen_wire::xenstore::Session),
//! and [`xen_wire::xenstore::pump`](crate::xen_wire::xenstore::pump) moves bytes between it and
//! the shared page (HVM_PARAM_STORE_PFN); this module holds them and waits on the store's event
//! channel (HVM_PARAM_STORE_EVTCHN).
//!
//! Every task waiting for a reply or a watch event "pumps" the rings itself, so no background
//! task is needed: requests go out as ring space allows, replies are matched by `req_id`, and watch
//! events are queued for their watcher.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use super::events::Port;
use super::hypercall;
use super::shared::SharedPage;
use crate::device::{self, XenstoreError};
use crate::xen_wire::xenstore::{self as wire, MsgType, Session};

static PAGE: spin::Once<SharedPage> = spin::Once::new();
static PORT: AtomicU32 = AtomicU32::new(0);
static NEXT_TOKEN: AtomicU32 = AtomicU32::new(1);
static SESSION: spin::Mutex<Option<Session>> = spin::Mutex::new(None);

/// Finds the store's page and event channel.
pub fn init() -> Result<(), hypercall::XenError> {
    let pfn = hypercall::hvm_get_param(hypercall::HVM_PARAM_STORE_PFN)?;
    let port = hypercall::hvm_get_param(hypercall::HVM_PARAM_STORE_EVTCHN)? as u32;
    let Some(base) = super::shared::magic_page(pfn) else {
        return Err(hypercall::XenError(-22));
    };
    PORT.store(port, Ordering::Relaxed);
    // SAFETY: the xenstore page is mapped (`magic_page` checked it) for the domain's lifetime,
    // and only this module (through the handle) and xenstored access it.
    PAGE.call_once(|| unsafe { SharedPage::new(base, 4096) });
    *SESSION.lock() = Some(Session::new());
    Port(port).unmask();
    Ok(())
}

fn port() -> Port {
    Port(PORT.load(Ordering::Relaxed))
}

/// Moves queued requests into the request ring and replies out of the response ring
/// ([`wire::pump`]), notifying xenstored when either moved.
fn pump(s: &mut Session) -> Result<(), XenstoreError> {
    let page = PAGE
        .get()
        .ok_or(XenstoreError::Protocol("xenstore is not available"))?;
    wire::pump(page, s, || port().notify())
}

fn with_session<T>(
    f: impl FnOnce(&mut Session) -> Result<T, XenstoreError>,
) -> Result<T, XenstoreError> {
    let mut guard = SESSION.lock();
    let s = guard
        .as_mut()
        .ok_or(XenstoreError::Protocol("xenstore is not available"))?;
    f(s)
}

/// Forgets the request if its future is dropped before the reply arrives.
struct Pending(u32);

impl Drop for Pending {
    fn drop(&mut self) {
        let id = self.0;
        let _ = with_session(|s| {
            s.cancel(id);
            Ok(())
        });
    }
}

async fn call(msg_type: MsgType, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, XenstoreError> {
    let req = Pending(with_session(|s| s.request(msg_type, tx_id, payload))?);
    #[cfg(feature = "trace")]
    let asked = {
        let t = u32::from(msg_type);
        crate::trace::device(
            crate::trace::DEV_XENSTORE,
            0,
            crate::trace::Kind::XsRequest,
            t,
            req.0.into(),
        );
        super::time::now_ns()
    };
    loop {
        let reply = with_session(|s| {
            pump(s)?;
            Ok(s.take_reply(req.0))
        })?;
        if let Some(m) = reply {
            #[cfg(feature = "trace")]
            crate::trace::device(
                crate::trace::DEV_XENSTORE,
                0,
                crate::trace::Kind::XsReply,
                u32::from(msg_type),
                super::time::now_ns().saturating_sub(asked),
            );
            return m.into_result(msg_type);
        }
        port().wait().await;
    }
}

async fn read(tx: u32, path: &str) -> Result<String, XenstoreError> {
    wire::parse_value(&call(MsgType::Read, tx, &wire::path_payload(path)?).await?)
}

async fn write(tx: u32, path: &str, value: &str) -> Result<(), XenstoreError> {
    call(
        MsgType::Write,
        tx,
        &wire::write_payload(path, value.as_bytes())?,
    )
    .await
    .map(drop)
}

async fn directory(tx: u32, path: &str) -> Result<Vec<String>, XenstoreError> {
    wire::parse_directory(&call(MsgType::Directory, tx, &wire::path_payload(path)?).await?)
}

async fn rm(tx: u32, path: &str) -> Result<(), XenstoreError> {
    call(MsgType::Rm, tx, &wire::path_payload(path)?)
        .await
        .map(drop)
}

async fn mkdir(tx: u32, path: &str) -> Result<(), XenstoreError> {
    call(MsgType::Mkdir, tx, &wire::path_payload(path)?)
        .await
        .map(drop)
}

/// Writes `path` (relative to this domain's directory) from synchronous code, waiting for the
/// reply at once ([`super::executor::wait_now`]).
#[cfg(feature = "trace")]
pub fn write_now(path: &str, value: &str) -> Result<(), XenstoreError> {
    super::executor::wait_now(write(0, path, value))
}

/// The Xen store of this domain. Relative paths resolve under `/local/domain/<domid>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Xenstore;

impl Xenstore {
    /// The store (the connection is set up at boot).
    pub fn new() -> Xenstore {
        Xenstore
    }

    /// Removes `path` and everything under it.
    pub async fn rm(&self, path: &str) -> Result<(), XenstoreError> {
        rm(0, path).await
    }

    /// Creates `path` with an empty value.
    pub async fn mkdir(&self, path: &str) -> Result<(), XenstoreError> {
        mkdir(0, path).await
    }

    /// This domain's id (the `domid` key libxl writes).
    pub async fn domid(&self) -> Result<u16, XenstoreError> {
        read(0, "domid")
            .await?
            .trim()
            .parse()
            .map_err(|_| XenstoreError::Protocol("domid is not a number"))
    }

    /// Watches `path` and everything under it. The store fires the watch once right away.
    pub async fn watch(&self, path: &str) -> Result<Watch, XenstoreError> {
        let token = format!("uni-{}", NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
        let payload = wire::watch_payload(path, &token)?;
        with_session(|s| {
            s.add_watch(&token);
            Ok(())
        })?;
        match call(MsgType::Watch, 0, &payload).await {
            Ok(_) => Ok(Watch {
                path: path.into(),
                token,
            }),
            Err(e) => {
                let _ = with_session(|s| {
                    s.remove_watch(&token);
                    Ok(())
                });
                Err(e)
            }
        }
    }

    /// Starts a transaction. Commit it with [`Transaction::commit`], and run it again from the
    /// start when that reports a conflict.
    pub async fn transaction(&self) -> Result<Transaction, XenstoreError> {
        let id = wire::parse_tx_id(&call(MsgType::TransactionStart, 0, b"\0").await?)?;
        Ok(Transaction { id })
    }
}

impl device::Xenstore for Xenstore {
    async fn read(&self, path: &str) -> Result<String, XenstoreError> {
        read(0, path).await
    }
    async fn write(&self, path: &str, value: &str) -> Result<(), XenstoreError> {
        write(0, path, value).await
    }
    async fn directory(&self, path: &str) -> Result<Vec<String>, XenstoreError> {
        directory(0, path).await
    }
}

/// A registered watch.
#[derive(Debug)]
pub struct Watch {
    path: String,
    token: String,
}

impl Watch {
    /// The path watched.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Waits for the watch to fire and returns the path that changed.
    pub async fn changed(&self) -> Result<String, XenstoreError> {
        loop {
            let ev = with_session(|s| {
                pump(s)?;
                Ok(s.take_event(&self.token))
            })?;
            if let Some(p) = ev {
                return Ok(p);
            }
            port().wait().await;
        }
    }

    /// Removes the watch.
    pub async fn cancel(self) -> Result<(), XenstoreError> {
        let payload = wire::watch_payload(&self.path, &self.token)?;
        let r = call(MsgType::Unwatch, 0, &payload).await.map(drop);
        let _ = with_session(|s| {
            s.remove_watch(&self.token);
            Ok(())
        });
        r
    }
}

/// An open transaction: its reads see a snapshot, its writes apply together at commit.
#[derive(Debug)]
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction {
    id: u32,
}

impl Transaction {
    /// The transaction id.
    pub fn id(&self) -> u32 {
        self.id
    }
    /// Reads `path` in the transaction.
    pub async fn read(&self, path: &str) -> Result<String, XenstoreError> {
        read(self.id, path).await
    }
    /// Writes `path` in the transaction.
    pub async fn write(&self, path: &str, value: &str) -> Result<(), XenstoreError> {
        write(self.id, path, value).await
    }
    /// Lists `path`'s children in the transaction.
    pub async fn directory(&self, path: &str) -> Result<Vec<String>, XenstoreError> {
        directory(self.id, path).await
    }
    /// Removes `path` in the transaction.
    pub async fn rm(&self, path: &str) -> Result<(), XenstoreError> {
        rm(self.id, path).await
    }
    /// Commits. `Ok(false)` means another writer conflicted (`EAGAIN`): nothing was applied and
    /// the caller should run the transaction again.
    pub async fn commit(self) -> Result<bool, XenstoreError> {
        match call(
            MsgType::TransactionEnd,
            self.id,
            &wire::transaction_end_payload(true),
        )
        .await
        {
            Ok(_) => Ok(true),
            Err(XenstoreError::Xen(e)) if e == "EAGAIN" => Ok(false),
            Err(e) => Err(e),
        }
    }
    /// Abandons the transaction.
    pub async fn abort(self) -> Result<(), XenstoreError> {
        call(
            MsgType::TransactionEnd,
            self.id,
            &wire::transaction_end_payload(false),
        )
        .await
        .map(drop)
    }
}
