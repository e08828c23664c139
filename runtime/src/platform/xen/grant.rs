//! Grant tables v1: frames mapped into the grant window the device tree names
//! (`/hypervisor` `reg[0]`) with `XENMEM_add_to_physmap(XENMAPSPACE_grant_table)`; entries written
//! and revoked with the flag protocol of [`xen_wire::grant`](crate::xen_wire::grant)
//! ([`write_entry`](grant::write_entry), [`end_entry`](grant::end_entry)) on a [`SharedPage`].

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

use super::hypercall;
use super::shared::SharedPage;
use crate::xen_wire::grant::{self, EntryRepr, GrantRef, InUse, RefAllocator, ENTRIES_PER_FRAME};

/// Why a grant operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantError {
    /// The device tree named no grant window.
    NoWindow,
    /// Xen refused to map a grant-table frame.
    Map(hypercall::XenError),
    /// Every grant reference is in use (and the table is at its maximum size).
    Exhausted,
    /// The remote domain still has the frame mapped.
    InUse,
}

impl core::fmt::Display for GrantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GrantError::NoWindow => f.write_str("grant table: no grant window in the device tree"),
            GrantError::Map(e) => write!(f, "grant table: mapping a frame failed: {e}"),
            GrantError::Exhausted => f.write_str("grant table: no free grant references"),
            GrantError::InUse => {
                f.write_str("grant table: the grant is still mapped by the remote domain")
            }
        }
    }
}

impl core::error::Error for GrantError {}

impl From<InUse> for GrantError {
    fn from(_: InUse) -> GrantError {
        GrantError::InUse
    }
}

struct State {
    window: u32,
    /// The mapped frames of the table, `mapped * 4096` bytes from `window`.
    table: SharedPage,
    window_frames: u32,
    mapped: u32,
    max: u32,
    refs: RefAllocator,
}

static WINDOW: AtomicU32 = AtomicU32::new(0);
static WINDOW_SIZE: AtomicU32 = AtomicU32::new(0);
static STATE: spin::Mutex<Option<State>> = spin::Mutex::new(None);

/// Records the grant window (from the device tree). Frames are mapped on first use.
pub fn set_window(base: u64, size: u64) {
    WINDOW.store(base as u32, Ordering::Relaxed);
    WINDOW_SIZE.store(size.min(u64::from(u32::MAX)) as u32, Ordering::Relaxed);
}

fn map_frames(st: &mut State, upto: u32) -> Result<(), GrantError> {
    while st.mapped < upto {
        let gpfn = u64::from(st.window >> 12) + u64::from(st.mapped);
        // SAFETY: the grant window is guest-physical space outside RAM reserved for this purpose;
        // nothing else is mapped there.
        unsafe {
            hypercall::add_to_physmap(
                hypercall::XENMAPSPACE_GRANT_TABLE,
                u64::from(st.mapped),
                gpfn,
            )
        }
        .map_err(GrantError::Map)?;
        st.mapped += 1;
    }
    // SAFETY: the first `mapped` frames of the window now hold the grant table (mapped above);
    // they are accessed only through this handle, and by Xen.
    st.table = unsafe { SharedPage::new(window_ptr(st.window), st.mapped as usize * 4096) };
    st.refs.grow(st.mapped * ENTRIES_PER_FRAME);
    Ok(())
}

fn window_ptr(window: u32) -> NonNull<u8> {
    NonNull::new(window as usize as *mut u8).expect("the grant window is not at 0")
}

fn with_state<T>(f: impl FnOnce(&mut State) -> Result<T, GrantError>) -> Result<T, GrantError> {
    let mut guard = STATE.lock();
    if guard.is_none() {
        let window = WINDOW.load(Ordering::Relaxed);
        if window == 0 {
            return Err(GrantError::NoWindow);
        }
        let window_frames = WINDOW_SIZE.load(Ordering::Relaxed) / 4096;
        let (_, max) = hypercall::gnttab_query_size().map_err(GrantError::Map)?;
        let mut st = State {
            window,
            // SAFETY: an empty region: no access through it is possible.
            table: unsafe { SharedPage::new(window_ptr(window), 0) },
            window_frames,
            mapped: 0,
            max: max.min(window_frames),
            refs: RefAllocator::new(0),
        };
        map_frames(&mut st, 1)?;
        *guard = Some(st);
    }
    f(guard.as_mut().expect("initialized above"))
}

/// The byte offset of `r`'s entry in the mapped table.
fn entry_offset(st: &State, r: GrantRef) -> usize {
    let (frame, offset) = r.location();
    debug_assert!(frame < st.mapped);
    frame as usize * 4096 + offset
}

/// The grant table of this domain.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrantTable;

impl GrantTable {
    /// The grant table (mapped on first use).
    pub fn new() -> GrantTable {
        GrantTable
    }

    /// Lets domain `domid` access guest frame `frame` (read-only if `readonly`).
    pub fn grant_access(
        &self,
        domid: u16,
        frame: u32,
        readonly: bool,
    ) -> Result<GrantRef, GrantError> {
        with_state(|st| {
            let r = match st.refs.alloc() {
                Some(r) => r,
                None if st.mapped < st.max => {
                    let more = st.mapped + 1;
                    map_frames(st, more)?;
                    st.refs.alloc().ok_or(GrantError::Exhausted)?
                }
                None => return Err(GrantError::Exhausted),
            };
            let repr = EntryRepr {
                domid,
                frame,
                readonly,
            };
            grant::write_entry(&st.table, entry_offset(st, r), &repr);
            Ok(r)
        })
    }

    /// Revokes `r`: fails with [`GrantError::InUse`] while the peer has the frame mapped (the
    /// grant stays valid then; try again later). On success the reference is free for reuse.
    pub fn end_access(&self, r: GrantRef) -> Result<(), GrantError> {
        with_state(|st| {
            grant::end_entry(&st.table, entry_offset(st, r))?;
            st.refs.release(r);
            Ok(())
        })
    }

    /// Reads entry `r` as it stands (`None` if it is not a live access grant).
    pub fn entry(&self, r: GrantRef) -> Result<Option<EntryRepr>, GrantError> {
        with_state(|st| {
            if r.location().0 >= st.mapped {
                return Ok(None);
            }
            Ok(grant::read_entry(&st.table, entry_offset(st, r)))
        })
    }

    /// (frames mapped, maximum frames).
    pub fn frames(&self) -> Result<(u32, u32), GrantError> {
        with_state(|st| Ok((st.mapped, st.max.min(st.window_frames))))
    }
}
