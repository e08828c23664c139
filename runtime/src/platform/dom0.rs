//! Code that runs in dom0 (a Linux domain with the Xen drivers), not in a guest: mapping pages
//! a guest granted to dom0 through the gntdev driver (`/dev/xen/gntdev`), read-only. Used by
//! `uni-trace-dump`, the dom0 reader of a guest's trace ring (feature `dom0`; docs/tracing.md).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::vec::Vec;

/// `IOCTL_GNTDEV_MAP_GRANT_REF`: `_IOC(_IOC_NONE, 'G', 0, sizeof(struct
/// ioctl_gntdev_map_grant_ref))` (linux/include/uapi/xen/gntdev.h), the struct being 24 bytes
/// with its one `refs` entry.
const IOCTL_GNTDEV_MAP_GRANT_REF: u32 = (24 << 16) | (b'G' as u32) << 8;
/// `IOCTL_GNTDEV_UNMAP_GRANT_REF`: `_IOC(_IOC_NONE, 'G', 1, 16)`.
const IOCTL_GNTDEV_UNMAP_GRANT_REF: u32 = (16 << 16) | (b'G' as u32) << 8 | 1;
const PAGE_SIZE: usize = 4096;

/// Copies the pages that domain `domid` granted to this domain by `refs`, in order: each
/// mapped read-only through `/dev/xen/gntdev` for the copy, then unmapped. The guest may be
/// writing them meanwhile (a live snapshot); the copy is made word by word with volatile reads.
pub fn copy_granted(domid: u32, refs: &[u32]) -> Result<Vec<u8>, std::string::String> {
    use std::format;
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let dev = "/dev/xen/gntdev";
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(|e| format!("opening {dev}: {e} (is the xen-gntdev module loaded?)"))?;
    // struct ioctl_gntdev_map_grant_ref { u32 count; u32 pad; u64 index; { u32 domid; u32 ref; }
    // refs[count]; }, as u64 words so that `index` is aligned.
    let mut req: Vec<u64> = Vec::with_capacity(2 + refs.len());
    req.push(refs.len() as u64);
    req.push(0);
    req.extend(
        refs.iter()
            .map(|&r| u64::from(domid) | (u64::from(r) << 32)),
    );
    let fd = file.as_raw_fd();
    // SAFETY: `req` is a valid ioctl_gntdev_map_grant_ref for `refs.len()` entries (count, pad,
    // index, then the (domid, ref) pairs, little-endian u32 halves of each u64 as the struct
    // has them on the little-endian ARM and x86 dom0s), which the kernel reads and whose `index`
    // it writes; it outlives the call.
    let rc = unsafe {
        libc::ioctl(
            fd,
            IOCTL_GNTDEV_MAP_GRANT_REF as _,
            req.as_mut_ptr().cast::<libc::c_void>(),
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "mapping {} grant references of domain {domid} ({dev}): {e}",
            refs.len()
        ));
    }
    let index = req[1];
    let len = refs.len() * PAGE_SIZE;
    let unmap = |file: &File| {
        let mut u: [u64; 2] = [index, refs.len() as u64];
        // SAFETY: `u` is a valid ioctl_gntdev_unmap_grant_ref (u64 index, u32 count, u32 pad),
        // which the kernel only reads.
        unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                IOCTL_GNTDEV_UNMAP_GRANT_REF as _,
                u.as_mut_ptr().cast::<libc::c_void>(),
            )
        };
    };
    let Ok(offset) = libc::off_t::try_from(index) else {
        unmap(&file);
        return Err(format!("gntdev gave an offset {index} beyond off_t"));
    };
    // SAFETY: a new read-only shared mapping of the grants just mapped at `offset` of gntdev
    // (the kernel picks the address); it is only read, below, and unmapped before returning.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            offset,
        )
    };
    if p == libc::MAP_FAILED {
        let e = std::io::Error::last_os_error();
        unmap(&file);
        return Err(format!(
            "mapping the granted pages of domain {domid} into memory: {e} (did the domain grant them to this domain?)"
        ));
    }
    let words = p.cast::<u32>();
    let mut out = Vec::with_capacity(len);
    for i in 0..len / 4 {
        // SAFETY: `i` < len / 4 words of the mapping made above, which is page-aligned and
        // readable; the guest may write the words concurrently, so each is read once, volatile.
        let w = unsafe { words.add(i).read_volatile() };
        out.extend_from_slice(&w.to_le_bytes());
    }
    // SAFETY: the mapping made above, of `len` bytes; nothing refers to it any more.
    unsafe { libc::munmap(p, len) };
    unmap(&file);
    Ok(out)
}
