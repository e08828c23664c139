//! Grant tables v1: frames mapped into the grant window the device tree names
//! (`/hypervisor` reg[0]) with `XENMEM_add_to_physmap(XENMAPSPACE_grant_table)`; entries written
//! with the flag protocol of [`xen_wire::grant`](crate::xen_wire::grant).

use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use super::{arch, hypercall};
use crate::xen_wire::grant::{
    self, EntryRepr, GrantRef, InUse, RefAllocator, ENTRIES_PER_FRAME, ENTRY_LEN,
};

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
    st.refs.grow(st.mapped * ENTRIES_PER_FRAME);
    Ok(())
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

fn entry_addr(st: &State, r: GrantRef) -> usize {
    let (frame, offset) = r.location();
    debug_assert!(frame < st.mapped);
    st.window as usize + frame as usize * 4096 + offset
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
            let e = entry_addr(st, r);
            let repr = EntryRepr {
                domid,
                frame,
                readonly,
            };
            // SAFETY: `e` is the 8-byte entry of a reference we own, in a mapped grant frame.
            unsafe {
                ((e + grant::field::DOMID.start) as *mut u16).write_volatile(repr.domid);
                ((e + grant::field::FRAME.start) as *mut u32).write_volatile(repr.frame);
            }
            arch::dmb(); // domid and frame before the flags that make the entry live
                         // SAFETY: as above.
            unsafe { ((e + grant::field::FLAGS.start) as *mut u16).write_volatile(repr.flags()) };
            Ok(r)
        })
    }

    /// Revokes `r`: fails with [`GrantError::InUse`] while the peer has the frame mapped (the
    /// grant stays valid then; try again later). On success the reference is free for reuse.
    pub fn end_access(&self, r: GrantRef) -> Result<(), GrantError> {
        with_state(|st| {
            let e = entry_addr(st, r);
            // SAFETY: the flags field of a mapped entry; Xen updates it with atomic operations too.
            let flags = unsafe { AtomicU16::from_ptr((e + grant::field::FLAGS.start) as *mut u16) };
            let mut cur = flags.load(Ordering::Acquire);
            loop {
                let new = grant::revoke(cur)?;
                match flags.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(now) => cur = now,
                }
            }
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
            let e = entry_addr(st, r);
            let mut raw = [0u8; ENTRY_LEN];
            for (i, b) in raw.iter_mut().enumerate() {
                // SAFETY: reads the 8 bytes of a mapped entry.
                *b = unsafe { ((e + i) as *const u8).read_volatile() };
            }
            Ok(EntryRepr::parse(
                &grant::Entry::new_checked(&raw[..]).expect("8 bytes"),
            ))
        })
    }

    /// (frames mapped, maximum frames).
    pub fn frames(&self) -> Result<(u32, u32), GrantError> {
        with_state(|st| Ok((st.mapped, st.max.min(st.window_frames))))
    }
}
