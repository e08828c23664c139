//! The buffer pages of one device: granted to the backend once, when the load first needs them,
//! and reused; at most [`MAX_PAGES`].

use alloc::vec::Vec;

use crate::platform::xen::grant::GrantError;
use crate::platform::xen::granted::Granted;

/// The most buffer pages a device grants: 512 KiB, enough for every slot of the ring with 4 KiB
/// requests, or about a dozen 44 KiB ones in flight.
pub const MAX_PAGES: usize = 128;

/// Free pages, and how many exist.
pub struct Pages {
    free: Vec<Granted>,
    made: usize,
}

impl Pages {
    pub fn new() -> Pages {
        Pages {
            free: Vec::new(),
            made: 0,
        }
    }

    /// Whether `n` pages can be had now.
    pub fn can_take(&self, n: usize) -> bool {
        self.free.len() + (MAX_PAGES - self.made) >= n
    }

    /// `n` pages (check [`can_take`](Pages::can_take) first): free ones, then fresh ones granted
    /// to `backend`, writable (a read's data is written into them).
    pub fn take(&mut self, n: usize, backend: u16) -> Result<Vec<Granted>, GrantError> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.free.pop() {
                Some(p) => out.push(p),
                None => {
                    let p = match Granted::new(backend, false) {
                        Ok(p) => p,
                        Err(e) => {
                            self.free.append(&mut out);
                            return Err(e);
                        }
                    };
                    self.made += 1;
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    /// Returns pages taken with [`take`](Pages::take).
    pub fn give(&mut self, mut pages: Vec<Granted>) {
        self.free.append(&mut pages);
    }
}
