//! The byte budget: what a manager holds from the system allocator, and the
//! limit on it. Charged only on slow paths (a new chunk, a system
//! allocation), so the allocation fast path never looks at it.
//!
//! A shared manager's heaps (one per thread, and its central one) each keep
//! a [`Budget`] of their own for their figures, and charge one
//! [`SharedBudget`] — an atomic count with the limit — for the limit.

use core::sync::atomic::Ordering;

#[cfg(not(loom))]
use core::sync::atomic::AtomicUsize;
#[cfg(loom)]
use loom::sync::atomic::AtomicUsize;

use crate::sync::Counter;
use crate::Error;

/// The limit and the bytes held, for all the heaps of a shared manager:
/// charged with a compare-and-swap loop, on slow paths only.
#[derive(Debug)]
pub(crate) struct SharedBudget {
    /// The limit; `usize::MAX` for none.
    limit: usize,
    /// Bytes held now by all the heaps.
    reserved: AtomicUsize,
}

impl SharedBudget {
    /// A budget of `limit` bytes (`None`: unlimited).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn new(limit: Option<usize>) -> Self {
        SharedBudget {
            limit: limit.unwrap_or(usize::MAX),
            reserved: AtomicUsize::new(0),
        }
    }

    /// Records `bytes` more held, or refuses if the total would pass the
    /// limit: two threads racing for the last bytes cannot both get them.
    pub(crate) fn charge(&self, bytes: usize) -> Result<(), Error> {
        // `Relaxed` throughout: the count is the only data, and a
        // read-modify-write always works on the latest value, so no charge
        // is lost and the limit holds; nothing else is published through it.
        self.reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                r.checked_add(bytes).filter(|&t| t <= self.limit)
            })
            .map(drop)
            .map_err(|reserved| Error::BudgetExceeded {
                size: 0,
                requested: bytes,
                reserved,
                budget: self.limit,
                manager: None,
            })
    }

    /// Records `bytes` given back.
    pub(crate) fn credit(&self, bytes: usize) {
        // `Relaxed`: as in `charge`.
        self.reserved.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The limit, if any.
    pub(crate) fn limit(&self) -> Option<usize> {
        (self.limit != usize::MAX).then_some(self.limit)
    }
}

/// Bytes held from the system allocator (chunks of both pool kinds and
/// system allocations) against an optional limit.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Budget {
    /// The limit; `usize::MAX` for none.
    limit: usize,
    /// Bytes held now (by this heap).
    reserved: Counter,
    /// The shared manager's budget this heap charges as well, which holds
    /// the limit; or null.
    shared: *const SharedBudget,
}

impl Budget {
    /// A budget of `limit` bytes (`None`: unlimited).
    ///
    /// With `shared` not null, `limit` is ignored: the shared budget holds
    /// it, and `shared` must outlive the budget.
    pub(crate) fn new(limit: Option<usize>, shared: *const SharedBudget) -> Self {
        Budget {
            limit: if shared.is_null() {
                limit.unwrap_or(usize::MAX)
            } else {
                usize::MAX
            },
            reserved: Counter::new(0),
            shared,
        }
    }

    /// The shared budget, if any.
    #[inline]
    pub(crate) fn shared(&self) -> Option<&SharedBudget> {
        // SAFETY: a shared budget outlives every heap that charges it
        // (`Budget::new`'s contract).
        unsafe { self.shared.as_ref() }
    }

    /// Records `bytes` more held from the system, or refuses with
    /// `BudgetExceeded`.
    #[inline]
    pub(crate) fn charge(&self, bytes: usize) -> Result<(), Error> {
        let reserved = self.reserved.get();
        if let Some(shared) = self.shared() {
            shared.charge(bytes)?;
            self.reserved.set(reserved + bytes);
            return Ok(());
        }
        match reserved.checked_add(bytes) {
            Some(total) if total <= self.limit => {
                self.reserved.set(total);
                Ok(())
            }
            _ => Err(Error::BudgetExceeded {
                size: 0,
                requested: bytes,
                reserved,
                budget: self.limit,
                manager: None,
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
        // (Not for nothing: a trim credits every pool's release, most of
        // them 0, and the shared count's atomic subtraction was most of a
        // shared trim's time.)
        if let Some(shared) = self.shared().filter(|_| bytes != 0) {
            shared.credit(bytes);
        }
    }

    /// Bytes held now.
    pub(crate) fn reserved(&self) -> usize {
        self.reserved.get()
    }

    /// The limit, if any.
    pub(crate) fn limit(&self) -> Option<usize> {
        match self.shared() {
            Some(shared) => shared.limit(),
            None => (self.limit != usize::MAX).then_some(self.limit),
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Two threads charge 60 bytes each against a 100-byte budget: exactly
    /// one gets them; after a credit, the count is back.
    #[test]
    fn two_charges_racing_for_the_last_bytes_cannot_both_win() {
        loom::model(|| {
            let b = Arc::new(SharedBudget::new(Some(100)));
            let t = {
                let b = b.clone();
                loom::thread::spawn(move || b.charge(60).is_ok())
            };
            let here = b.charge(60).is_ok();
            let there = t.join().unwrap();
            assert!(here ^ there);
            b.credit(60);
            assert_eq!(b.reserved.load(Ordering::Relaxed), 0);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_limit_and_refuses_past_it() {
        let b = Budget::new(Some(100), core::ptr::null());
        assert_eq!(b.charge(60), Ok(()));
        assert_eq!(
            b.charge(50),
            Err(Error::BudgetExceeded {
                size: 0,
                requested: 50,
                reserved: 60,
                budget: 100,
                manager: None,
            })
        );
        assert_eq!(b.reserved(), 60);
        b.credit(60);
        assert_eq!(b.charge(100), Ok(()));
        assert!(b.charge(usize::MAX).is_err());
    }
}
