//! Request ids and which of them the backend holds.

/// A response named an id that has no request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadId(pub u16);

/// Request ids `0..n` and which are in flight (owned by the backend).
#[derive(Debug, Clone)]
pub struct IdPool {
    free: alloc::vec::Vec<u16>,
    in_flight: alloc::vec::Vec<bool>,
}

impl IdPool {
    /// `n` ids, all free.
    pub fn new(n: u16) -> IdPool {
        IdPool {
            free: (0..n).rev().collect(),
            in_flight: alloc::vec![false; usize::from(n)],
        }
    }

    /// Takes a free id and marks it in flight.
    pub fn alloc(&mut self) -> Option<u16> {
        let id = self.free.pop()?;
        self.in_flight[usize::from(id)] = true;
        Some(id)
    }

    /// Takes the specific free id `id` (a buffer re-posted under its own id); false if it is
    /// out of range or already in flight.
    pub fn take(&mut self, id: u16) -> bool {
        match self.free.iter().rposition(|&f| f == id) {
            Some(i) => {
                self.free.swap_remove(i);
                self.in_flight[usize::from(id)] = true;
                true
            }
            None => false,
        }
    }

    /// Whether `id` is in flight.
    pub fn is_in_flight(&self, id: u16) -> bool {
        self.in_flight
            .get(usize::from(id))
            .copied()
            .unwrap_or(false)
    }

    /// Returns `id` (from a response): an error if it is out of range or not in flight, so a
    /// confused backend cannot make us reuse a buffer it still owns.
    pub fn release(&mut self, id: u16) -> Result<(), BadId> {
        match self.in_flight.get_mut(usize::from(id)) {
            Some(f) if *f => {
                *f = false;
                self.free.push(id);
                Ok(())
            }
            _ => Err(BadId(id)),
        }
    }

    /// Free ids.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_pool_rejects_bad_and_duplicate_ids() {
        let mut p = IdPool::new(3);
        let a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        assert_eq!((a, b), (0, 1));
        assert!(p.is_in_flight(0));
        assert_eq!(p.release(2), Err(BadId(2))); // never issued
        assert_eq!(p.release(9), Err(BadId(9))); // out of range
        assert_eq!(p.release(a), Ok(()));
        assert_eq!(p.release(a), Err(BadId(a))); // twice
        assert_eq!(p.available(), 2);
        assert!(p.take(2));
        assert!(!p.take(2));
        assert!(!p.take(7));
        assert!(p.take(0));
        assert_eq!(p.alloc(), None);
        assert_eq!(p.release(2), Ok(()));
    }
}
