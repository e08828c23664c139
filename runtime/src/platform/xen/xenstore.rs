//! The xenstore client: the protocol state is [`xen_wire::xenstore::Session`](crate::xen_wire::xenstore::Session);
//! this module moves bytes between it and the shared page (HVM_PARAM_STORE_PFN), and waits on the
//! store's event channel (HVM_PARAM_STORE_EVTCHN).
//!
//! Every task waiting for a reply or a watch event "pumps" the rings itself, so no background
//! task is needed: requests go out as ring space allows, replies are matched by `req_id`, and watch
//! events are queued for their watcher.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use super::events::Port;
use super::{arch, hypercall};
use crate::device::{self, XenstoreError};
use crate::xen_wire::xenstore::{self as wire, page, MsgType, Session, RING};

static PAGE: AtomicU32 = AtomicU32::new(0);
static PORT: AtomicU32 = AtomicU32::new(0);
static NEXT_TOKEN: AtomicU32 = AtomicU32::new(1);
static SESSION: spin::Mutex<Option<Session>> = spin::Mutex::new(None);

/// Finds the store's page and event channel.
pub fn init() -> Result<(), hypercall::XenError> {
    let pfn = hypercall::hvm_get_param(hypercall::HVM_PARAM_STORE_PFN)?;
    let port = hypercall::hvm_get_param(hypercall::HVM_PARAM_STORE_EVTCHN)? as u32;
    if pfn == 0 || pfn >= 1 << 20 || !super::mmu::is_mapped((pfn << 12) as u32) {
        return Err(hypercall::XenError(-22));
    }
    PORT.store(port, Ordering::Relaxed);
    PAGE.store((pfn << 12) as u32, Ordering::Release);
    *SESSION.lock() = Some(Session::new());
    Port(port).unmask();
    Ok(())
}

fn port() -> Port {
    Port(PORT.load(Ordering::Relaxed))
}

fn ptr(offset: usize) -> usize {
    PAGE.load(Ordering::Acquire) as usize + offset
}

fn read_idx(offset: usize) -> u32 {
    // SAFETY: `offset` is an index field of the xenstore page, mapped for the domain's lifetime
    // (`init` checked it); xenstored writes it concurrently, hence volatile.
    unsafe { (ptr(offset) as *const u32).read_volatile() }
}

fn write_idx(offset: usize, v: u32) {
    // SAFETY: as in `read_idx`; the guest owns req_prod and rsp_cons.
    unsafe { (ptr(offset) as *mut u32).write_volatile(v) }
}

/// Moves queued requests into the request ring and replies out of the response ring.
fn pump(s: &mut Session) -> Result<(), XenstoreError> {
    let mut notify = false;
    // Requests.
    let cons = read_idx(page::REQ_CONS);
    let mut prod = read_idx(page::REQ_PROD);
    arch::dmb();
    let mut sent = 0;
    {
        let (a, b) = s.output();
        for chunk in [a, b] {
            let mut off = 0;
            while off < chunk.len() {
                let span = RING
                    .write_span(cons, prod, chunk.len() - off)
                    .map_err(|_| XenstoreError::Protocol("request ring indices out of range"))?;
                if span.len == 0 {
                    break;
                }
                for i in 0..span.len {
                    // SAFETY: `span` lies inside the 1 KiB request ring.
                    unsafe {
                        ((ptr(page::REQ.start) + span.offset + i) as *mut u8)
                            .write_volatile(chunk[off + i])
                    };
                }
                off += span.len;
                prod = prod.wrapping_add(span.len as u32);
            }
            sent += off;
            if off < chunk.len() {
                break;
            }
        }
    }
    if sent > 0 {
        arch::dmb();
        write_idx(page::REQ_PROD, prod);
        s.consume_output(sent);
        notify = true;
    }
    // Replies and watch events.
    let mut cons = read_idx(page::RSP_CONS);
    let prod = read_idx(page::RSP_PROD);
    arch::dmb();
    let mut buf = [0u8; 1024];
    let mut got = 0;
    loop {
        let span = RING
            .read_span(cons, prod, buf.len() - got)
            .map_err(|_| XenstoreError::Protocol("reply ring indices out of range"))?;
        if span.len == 0 {
            break;
        }
        for i in 0..span.len {
            // SAFETY: `span` lies inside the 1 KiB response ring.
            buf[got + i] =
                unsafe { ((ptr(page::RSP.start) + span.offset + i) as *const u8).read_volatile() };
        }
        got += span.len;
        cons = cons.wrapping_add(span.len as u32);
    }
    if got > 0 {
        arch::dmb(); // finish reading before handing the space back
        write_idx(page::RSP_CONS, cons);
        notify = true;
    }
    if notify {
        port().notify();
    }
    s.receive(&buf[..got])
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
    loop {
        let reply = with_session(|s| {
            pump(s)?;
            Ok(s.take_reply(req.0))
        })?;
        if let Some(m) = reply {
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
