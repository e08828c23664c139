//! Hypercalls: `HVC #0xEA1` with the call number in r12, arguments in r0–r4, result in r0.
//! Argument structures use the ARM ABI's layouts (64-bit `xen_ulong_t`/`xen_pfn_t`), checked by
//! the `const` assertions below.

use core::arch::asm;
use core::mem::{offset_of, size_of};

/// `__HYPERVISOR_memory_op`.
pub const MEMORY_OP: u32 = 12;
/// `__HYPERVISOR_xen_version`.
pub const XEN_VERSION: u32 = 17;
/// `__HYPERVISOR_grant_table_op`.
pub const GRANT_TABLE_OP: u32 = 20;
/// `__HYPERVISOR_sched_op`.
pub const SCHED_OP: u32 = 29;
/// `__HYPERVISOR_event_channel_op`.
pub const EVENT_CHANNEL_OP: u32 = 32;
/// `__HYPERVISOR_hvm_op`.
pub const HVM_OP: u32 = 34;

/// `DOMID_SELF`.
pub const DOMID_SELF: u16 = 0x7ff0;

/// `XENMEM_add_to_physmap`.
const XENMEM_ADD_TO_PHYSMAP: u32 = 7;
/// `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;

/// `HVMOP_get_param`.
const HVMOP_GET_PARAM: u32 = 1;
/// `HVM_PARAM_STORE_PFN`.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// `HVM_PARAM_STORE_EVTCHN`.
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// `HVM_PARAM_CONSOLE_PFN`.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// `HVM_PARAM_CONSOLE_EVTCHN`.
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;

const EVTCHNOP_CLOSE: u32 = 3;
const EVTCHNOP_SEND: u32 = 4;
const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;
const EVTCHNOP_UNMASK: u32 = 9;

const SCHEDOP_YIELD: u32 = 0;
const SCHEDOP_SHUTDOWN: u32 = 2;

const GNTTABOP_QUERY_SIZE: u32 = 6;

/// A negative errno from Xen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XenError(pub i32);

impl core::fmt::Display for XenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "hypercall failed with errno {}", -self.0)
    }
}

fn check(r: i32) -> Result<i32, XenError> {
    if r < 0 {
        Err(XenError(r))
    } else {
        Ok(r)
    }
}

/// Issues hypercall `nr` with up to three arguments.
///
/// # Safety
/// The arguments must be valid for `nr`: pointers must point to initialized structures of the
/// layout Xen expects, in guest RAM, and the call's effects (remapping memory, shutting down)
/// must be acceptable to the caller.
#[inline(always)]
unsafe fn hypercall3(nr: u32, a0: u32, a1: u32, a2: u32) -> i32 {
    let ret: i32;
    // SAFETY: forwarded to the caller; the clobbers are those of the Xen ARM hypercall ABI.
    unsafe {
        asm!(
            ".arch_extension virt",
            "hvc #0xea1",
            inout("r0") a0 => ret,
            inout("r1") a1 => _,
            inout("r2") a2 => _,
            out("r3") _,
            out("r4") _,
            inout("r12") nr => _,
            options(nostack)
        );
    }
    ret
}

#[repr(C)]
struct AddToPhysmap {
    domid: u16,
    size: u16,
    space: u32,
    idx: u64,
    gpfn: u64,
}
const _: () = {
    assert!(size_of::<AddToPhysmap>() == 24);
    assert!(offset_of!(AddToPhysmap, space) == 4);
    assert!(offset_of!(AddToPhysmap, idx) == 8);
    assert!(offset_of!(AddToPhysmap, gpfn) == 16);
};

#[repr(C)]
struct HvmParam {
    domid: u16,
    pad: u16,
    index: u32,
    value: u64,
}
const _: () = {
    assert!(size_of::<HvmParam>() == 16);
    assert!(offset_of!(HvmParam, index) == 4);
    assert!(offset_of!(HvmParam, value) == 8);
};

#[repr(C)]
struct AllocUnbound {
    dom: u16,
    remote_dom: u16,
    port: u32,
}
const _: () = assert!(size_of::<AllocUnbound>() == 8 && offset_of!(AllocUnbound, port) == 4);

#[repr(C)]
struct GnttabQuerySize {
    dom: u16,
    nr_frames: u32,
    max_nr_frames: u32,
    status: i16,
}
const _: () =
    assert!(size_of::<GnttabQuerySize>() == 16 && offset_of!(GnttabQuerySize, status) == 12);

/// Maps Xen-owned frame `idx` of `space` (shared_info or a grant-table frame) at guest frame
/// `gpfn`, replacing whatever RAM was there.
///
/// # Safety
/// Nothing may be using the RAM at `gpfn` as ordinary memory: its contents are replaced.
pub unsafe fn add_to_physmap(space: u32, idx: u64, gpfn: u64) -> Result<(), XenError> {
    let arg = AddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space,
        idx,
        gpfn,
    };
    // SAFETY: `arg` is a valid xen_add_to_physmap; the caller vouches for the target frame.
    check(unsafe { hypercall3(MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, &arg as *const _ as u32, 0) })
        .map(drop)
}

/// `HVMOP_get_param` for this domain.
pub fn hvm_get_param(index: u32) -> Result<u64, XenError> {
    let mut arg = HvmParam {
        domid: DOMID_SELF,
        pad: 0,
        index,
        value: 0,
    };
    // SAFETY: `arg` is a valid xen_hvm_param that Xen fills in; reading a parameter has no other
    // effect.
    check(unsafe { hypercall3(HVM_OP, HVMOP_GET_PARAM, &mut arg as *mut _ as u32, 0) })?;
    Ok(arg.value)
}

/// `EVTCHNOP_send`: notifies the remote end of `port`.
pub fn evtchn_send(port: u32) {
    let arg = port;
    // SAFETY: struct evtchn_send is a single u32 port; sending on a bad port only fails.
    unsafe { hypercall3(EVENT_CHANNEL_OP, EVTCHNOP_SEND, &arg as *const _ as u32, 0) };
}

/// `EVTCHNOP_unmask`: clears the port's mask bit and re-raises it if it is pending.
pub fn evtchn_unmask(port: u32) {
    let arg = port;
    // SAFETY: struct evtchn_unmask is a single u32 port.
    unsafe {
        hypercall3(
            EVENT_CHANNEL_OP,
            EVTCHNOP_UNMASK,
            &arg as *const _ as u32,
            0,
        )
    };
}

/// `EVTCHNOP_close`.
pub fn evtchn_close(port: u32) -> Result<(), XenError> {
    let arg = port;
    // SAFETY: struct evtchn_close is a single u32 port.
    check(unsafe { hypercall3(EVENT_CHANNEL_OP, EVTCHNOP_CLOSE, &arg as *const _ as u32, 0) })
        .map(drop)
}

/// `EVTCHNOP_alloc_unbound`: a new port that domain `remote` may bind to.
pub fn evtchn_alloc_unbound(remote: u16) -> Result<u32, XenError> {
    let mut arg = AllocUnbound {
        dom: DOMID_SELF,
        remote_dom: remote,
        port: 0,
    };
    // SAFETY: `arg` is a valid evtchn_alloc_unbound that Xen fills in.
    check(unsafe {
        hypercall3(
            EVENT_CHANNEL_OP,
            EVTCHNOP_ALLOC_UNBOUND,
            &mut arg as *mut _ as u32,
            0,
        )
    })?;
    Ok(arg.port)
}

/// `SCHEDOP_yield`: lets other vCPUs on this physical CPU run.
pub fn sched_yield() {
    // SAFETY: yield takes no argument and has no memory effects.
    unsafe { hypercall3(SCHED_OP, SCHEDOP_YIELD, 0, 0) };
}

/// `SCHEDOP_shutdown` with `reason` (0 poweroff, 1 reboot, 3 crash). Returns only if Xen refused.
pub fn sched_shutdown(reason: u32) {
    let arg = reason;
    // SAFETY: struct sched_shutdown is a single u32 reason; shutting down is what the caller wants.
    unsafe { hypercall3(SCHED_OP, SCHEDOP_SHUTDOWN, &arg as *const _ as u32, 0) };
}

/// `GNTTABOP_query_size`: (frames in use, maximum frames).
pub fn gnttab_query_size() -> Result<(u32, u32), XenError> {
    let mut arg = GnttabQuerySize {
        dom: DOMID_SELF,
        nr_frames: 0,
        max_nr_frames: 0,
        status: 0,
    };
    // SAFETY: `arg` is a valid gnttab_query_size; count 1.
    check(unsafe {
        hypercall3(
            GRANT_TABLE_OP,
            GNTTABOP_QUERY_SIZE,
            &mut arg as *mut _ as u32,
            1,
        )
    })?;
    if arg.status != 0 {
        return Err(XenError(i32::from(arg.status)));
    }
    Ok((arg.nr_frames, arg.max_nr_frames))
}

/// `XENVER_version`: (major, minor).
pub fn xen_version() -> (u16, u16) {
    // SAFETY: XENVER_version takes no buffer and returns the version in r0.
    let v = unsafe { hypercall3(XEN_VERSION, 0, 0, 0) } as u32;
    ((v >> 16) as u16, v as u16)
}
