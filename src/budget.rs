//! The byte budget: what a manager holds from the system allocator, and the
//! limit on it. Charged only on slow paths (a new chunk, a system
//! allocation), so the allocation fast path never looks at it.
#![deny(unsafe_code)]

use core::cell::Cell;

use crate::Error;

/// Bytes held from the system allocator (chunks of both pool kinds and
/// system allocations) against an optional limit.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Budget {
    /// The limit; `usize::MAX` for none.
    limit: usize,
    /// Bytes held now.
    reserved: Cell<usize>,
}

impl Budget {
    /// A budget of `limit` bytes (`None`: unlimited).
    pub(crate) fn new(limit: Option<usize>) -> Self {
        Budget {
            limit: limit.unwrap_or(usize::MAX),
            reserved: Cell::new(0),
        }
    }

    /// Records `bytes` more held from the system, or refuses with
    /// `BudgetExceeded`.
    #[inline]
    pub(crate) fn charge(&self, bytes: usize) -> Result<(), Error> {
        let reserved = self.reserved.get();
        match reserved.checked_add(bytes) {
            Some(total) if total <= self.limit => {
                self.reserved.set(total);
                Ok(())
            }
            _ => Err(Error::BudgetExceeded {
                requested: bytes,
                reserved,
                budget: self.limit,
            }),
        }
    }

    /// Charges the largest of `preferred`, `preferred / 2`, ... that is at
    /// least `min` and fits (`preferred` itself when there is no budget), so
    /// a pool near its budget still grows by a smaller chunk.
    pub(crate) fn charge_up_to(&self, preferred: usize, min: usize) -> Result<usize, Error> {
        self.charge_up_to_with(preferred, min, |_| 0)
    }

    /// Like [`Budget::charge_up_to`], charging `size + extra(size)` at once
    /// for each candidate `size` (a chunk and the metadata it brings), and
    /// returning the `size` that fitted.
    pub(crate) fn charge_up_to_with(
        &self,
        preferred: usize,
        min: usize,
        extra: impl Fn(usize) -> usize,
    ) -> Result<usize, Error> {
        let mut size = preferred;
        loop {
            match self.charge(size.saturating_add(extra(size))) {
                Ok(()) => return Ok(size),
                Err(e) if size <= min => return Err(e),
                Err(_) => size = (size / 2).max(min),
            }
        }
    }

    /// Records `bytes` given back to the system.
    #[inline]
    pub(crate) fn credit(&self, bytes: usize) {
        debug_assert!(
            bytes <= self.reserved.get(),
            "budget credited more than charged"
        );
        self.reserved.set(self.reserved.get() - bytes);
    }

    /// Bytes held now.
    pub(crate) fn reserved(&self) -> usize {
        self.reserved.get()
    }

    /// The limit, if any.
    pub(crate) fn limit(&self) -> Option<usize> {
        (self.limit != usize::MAX).then_some(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_limit_and_refuses_past_it() {
        let b = Budget::new(Some(100));
        assert_eq!(b.charge(60), Ok(()));
        assert_eq!(
            b.charge(50),
            Err(Error::BudgetExceeded {
                requested: 50,
                reserved: 60,
                budget: 100
            })
        );
        assert_eq!(b.reserved(), 60);
        b.credit(60);
        assert_eq!(b.charge(100), Ok(()));
        assert!(b.charge(usize::MAX).is_err());
    }
}
