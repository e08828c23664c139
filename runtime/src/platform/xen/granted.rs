//! Pages of this domain's RAM granted to a back end: the rings and buffers of split drivers
//! (netfront now, a block front end later).

use core::alloc::Layout;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use super::grant::{GrantError, GrantTable};
use super::shared::SharedPage;
use crate::xen_wire::grant::GrantRef;

/// The size of a page.
pub const PAGE_SIZE: usize = 4096;

const PAGE_LAYOUT: Layout = match Layout::from_size_align(PAGE_SIZE, PAGE_SIZE) {
    Ok(l) => l,
    Err(_) => panic!("page layout"),
};

/// One zeroed, page-aligned page of RAM (identity-mapped, so its address is its frame), accessed
/// only as a [`SharedPage`].
pub struct Page(SharedPage);

impl Page {
    /// A fresh zeroed page from the heap.
    pub fn new() -> Page {
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc::alloc::alloc_zeroed(PAGE_LAYOUT) };
        let Some(p) = NonNull::new(p) else {
            alloc::alloc::handle_alloc_error(PAGE_LAYOUT)
        };
        // SAFETY: a page of our own, mapped, page-aligned, referenced by nothing else; it is
        // accessed only through this handle (and by the peer it is granted to) until `drop`.
        Page(unsafe { SharedPage::new(p, PAGE_SIZE) })
    }

    /// The page's memory.
    pub fn mem(&self) -> &SharedPage {
        &self.0
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let p = self.0.addr() as *mut u8;
        // SAFETY: allocated in `new` with the same layout; dropped once, and only once no grant to
        // it is live (see `Granted`).
        unsafe { alloc::alloc::dealloc(p, PAGE_LAYOUT) }
    }
}

/// A page granted to a back end. Dropping it revokes the grant; if the back end still has the
/// page mapped, the page is leaked rather than reused.
pub struct Granted {
    page: ManuallyDrop<Page>,
    gref: GrantRef,
}

impl Granted {
    /// A fresh zeroed page, granted to domain `backend` (read-only if `readonly`).
    pub fn new(backend: u16, readonly: bool) -> Result<Granted, GrantError> {
        let page = Page::new();
        let gref = GrantTable::new().grant_access(backend, page.mem().frame(), readonly)?;
        Ok(Granted {
            page: ManuallyDrop::new(page),
            gref,
        })
    }

    /// The page's memory.
    pub fn mem(&self) -> &SharedPage {
        self.page.mem()
    }

    /// The grant reference the back end maps it by.
    pub fn gref(&self) -> GrantRef {
        self.gref
    }
}

impl Drop for Granted {
    fn drop(&mut self) {
        if GrantTable::new().end_access(self.gref).is_ok() {
            // SAFETY: the grant is revoked, so nothing else can access the page; dropped once.
            unsafe { ManuallyDrop::drop(&mut self.page) };
        }
    }
}
