//! [`Table`]: the one growable array a manager keeps its own records in —
//! the pools' record tables, the chunk map, the registry of a collection's
//! large allocations, the checked blocks' large-block table — built so that
//! the re-entrancy rule holds by construction.
//!
//! **The rule** (docs/safety.md, "Re-entrancy"): no borrow of a manager's
//! own table is held across a call that can allocate or free. The memory
//! under a table comes from the program's `#[global_allocator]` — the
//! program's own code, which may call back into this very manager (a
//! logging allocator that records into a manager; any `GlobalAlloc` built
//! on one). A table is therefore never borrowed at all: every method is one
//! step that reads or writes entries by value (they are `Copy`) and calls
//! nothing, except [`grow`](Table::grow) and [`free`](Table::free), which
//! allocate and deallocate with nothing held, and re-read the table after
//! the allocator returns. A place a caller found free before it allocated
//! is not relied on after: the step that fills a place looks for room
//! again (and grows again if a nested call took it).

use core::alloc::Layout;
use core::cell::Cell;
use core::mem::size_of;
use core::ptr::{self, NonNull};

use crate::budget::Budget;
use crate::source::{self, Source};
use crate::Error;

/// A growable array of `Copy` entries in memory from `source`, reached only
/// through `&self` and never lent out: entries are read and written by
/// value, so nothing can alias them.
///
/// Invariants: `len <= cap`; `buf` is dangling when `cap == 0`, else an
/// allocation from `source` of `Layout::array::<T>(cap)` whose first `len`
/// entries are initialised; no method holds a reference into `buf`, and
/// only `grow` and `free` call out of the crate (the allocator), with every
/// field consistent before and after the call.
pub(crate) struct Table<T: Copy> {
    buf: Cell<NonNull<T>>,
    len: Cell<usize>,
    cap: Cell<usize>,
    source: Source,
}

impl<T: Copy> core::fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len.get())
            .field("cap", &self.cap.get())
            .finish()
    }
}

impl<T: Copy> Table<T> {
    /// Entries take room (a table of zero-sized entries has no use here).
    const SIZED: () = assert!(size_of::<T>() > 0);

    /// An empty table whose memory will come from `source`.
    pub(crate) const fn new(source: Source) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::SIZED;
        Table {
            buf: Cell::new(NonNull::dangling()),
            len: Cell::new(0),
            cap: Cell::new(0),
            source,
        }
    }

    /// Where the table's memory comes from.
    pub(crate) fn source(&self) -> Source {
        self.source
    }

    /// Entries in use.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len.get()
    }

    /// Places allocated.
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.cap.get()
    }

    /// Bytes of the places allocated.
    pub(crate) fn bytes(&self) -> usize {
        self.cap.get() * size_of::<T>()
    }

    /// Entry `i`, if `i < len`.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Option<T> {
        if i < self.len.get() {
            // SAFETY: `i < len`: an initialised entry (type invariant).
            Some(unsafe { self.buf.get().add(i).read() })
        } else {
            None
        }
    }

    /// Writes entry `i`.
    ///
    /// # Panics
    ///
    /// If `i >= len` (as a slice index does).
    #[inline(always)]
    pub(crate) fn set(&self, i: usize, value: T) {
        assert!(i < self.len.get(), "table index out of bounds");
        // SAFETY: `i < len <= cap`: a place of the allocation.
        unsafe { self.buf.get().add(i).write(value) }
    }

    /// Inserts `value` at `at`, shifting the entries after it, if a place
    /// is free; else gives it back.
    ///
    /// # Panics
    ///
    /// If `at > len`.
    pub(crate) fn insert(&self, at: usize, value: T) -> Result<(), T> {
        let len = self.len.get();
        assert!(at <= len, "table index out of bounds");
        if len == self.cap.get() {
            return Err(value);
        }
        // SAFETY: `at <= len < cap`: entries `at..len` move one place up,
        // within the allocation, and `at` is written.
        unsafe {
            let p = self.buf.get().add(at);
            ptr::copy(p.as_ptr(), p.as_ptr().add(1), len - at);
            p.write(value);
        }
        self.len.set(len + 1);
        Ok(())
    }

    /// Makes the table `n` entries long, the new ones `value`.
    ///
    /// # Panics
    ///
    /// If `n` is past the capacity.
    pub(crate) fn resize_within(&self, n: usize, value: T) {
        assert!(n <= self.cap.get(), "no room for the entries");
        for i in self.len.get()..n {
            // SAFETY: `i < n <= cap`: a place of the allocation.
            unsafe { self.buf.get().add(i).write(value) };
        }
        self.len.set(n);
    }

    /// Keeps the entries for which `keep` is true, in order.
    pub(crate) fn retain(&self, mut keep: impl FnMut(T) -> bool) {
        let mut kept = 0;
        for i in 0..self.len.get() {
            // Each step reads and writes by index: `keep` (crate code, which
            // calls no allocator) could not break the table anyway.
            let e = self.get(i).expect("within len");
            if keep(e) {
                self.set(kept, e);
                kept += 1;
            }
        }
        self.len.set(kept);
    }

    /// The entries, first to last, each read when the iterator reaches it.
    pub(crate) fn iter(&self) -> impl Iterator<Item = T> + '_ {
        let mut i = 0;
        core::iter::from_fn(move || {
            let e = self.get(i)?;
            i += 1;
            Some(e)
        })
    }

    /// The index of the first entry for which `f` is false, the entries
    /// being partitioned (as `slice::partition_point`).
    pub(crate) fn partition_point(&self, mut f: impl FnMut(T) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len.get());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if f(self.get(mid).expect("within len")) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Makes the capacity at least `new_cap`, charging the new places to
    /// `budget`. The new buffer is allocated, and the old one freed, with
    /// no borrow of the table held; in between, one step copies the entries
    /// over — unless a call the allocator made into this manager grew the
    /// table meanwhile to `new_cap` or more, in which case the new buffer
    /// goes back unused. Either way the budget is charged for exactly the
    /// capacity the table has.
    #[cold]
    #[inline(never)]
    pub(crate) fn grow(&self, new_cap: usize, budget: &Budget) -> Result<(), Error> {
        loop {
            let seen = self.cap.get();
            if seen >= new_cap {
                return Ok(());
            }
            let oom = Error::OutOfMemory {
                size: new_cap.saturating_mul(size_of::<T>()),
                align: align_of::<T>(),
            };
            let layout = Layout::array::<T>(new_cap).map_err(|_| oom)?;
            let charged = (new_cap - seen) * size_of::<T>();
            budget.charge(charged)?;
            let Some(new) = source::alloc(self.source, layout) else {
                budget.credit(charged);
                return Err(oom);
            };
            let new = new.cast::<T>();
            // The allocator has returned: look at the table again.
            let now = self.cap.get();
            if now >= new_cap || now < seen {
                // Grown meanwhile enough, or freed meanwhile (a nested trim):
                // ours goes back, and this looks again.
                budget.credit(charged);
                // SAFETY: allocated just above from `source` with `layout`.
                unsafe { source::dealloc(self.source, new.cast(), layout) };
                continue;
            }
            // Grown meanwhile to less: that growth is charged already.
            budget.credit((now - seen) * size_of::<T>());
            let old = self.buf.replace(new);
            let len = self.len.get();
            // SAFETY: `len <= now < new_cap`: the initialised entries of the
            // old buffer fit in the new one; the two are distinct
            // allocations.
            unsafe { ptr::copy_nonoverlapping(old.as_ptr(), new.as_ptr(), len) };
            self.cap.set(new_cap);
            // SAFETY: the old buffer is no longer the table's (`buf` moved
            // on); it was allocated from `source` with `now` places.
            unsafe { self.free_buffer(old, now) };
            return Ok(());
        }
    }

    /// Empties the table and gives its memory back; returns the bytes (for
    /// the caller to credit).
    pub(crate) fn free(&self) -> usize {
        let cap = self.cap.replace(0);
        self.len.set(0);
        let buf = self.buf.replace(NonNull::dangling());
        // SAFETY: the table no longer refers to the buffer, which held
        // `cap` places from `source`; the allocator is called last, with
        // the table empty and consistent.
        unsafe { self.free_buffer(buf, cap) };
        cap * size_of::<T>()
    }

    /// Deallocates a buffer of `cap` places (nothing if `cap` is zero).
    ///
    /// # Safety
    ///
    /// `buf` must be a buffer this table allocated with `cap` places and no
    /// longer refers to.
    unsafe fn free_buffer(&self, buf: NonNull<T>, cap: usize) {
        if cap == 0 {
            return;
        }
        // SAFETY: `grow` allocated it with this layout, which it checked.
        unsafe {
            let layout = Layout::array::<T>(cap).unwrap_unchecked();
            source::dealloc(self.source, buf.cast(), layout);
        }
    }

    /// Exchanges the contents of two tables of one source.
    pub(crate) fn swap(&self, other: &Table<T>) {
        debug_assert!(self.source == other.source);
        self.buf.swap(&other.buf);
        self.len.swap(&other.len);
        self.cap.swap(&other.cap);
    }
}

impl<T: Copy> Drop for Table<T> {
    fn drop(&mut self) {
        self.free();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_go_in_and_out_by_value_and_growth_keeps_them() {
        let budget = Budget::new(None, ptr::null());
        let t = Table::<u32>::new(Source::Global);
        assert_eq!(t.insert(0, 1), Err(1), "no room before a growth");
        t.grow(2, &budget).unwrap();
        assert_eq!(t.insert(0, 1), Ok(()));
        assert_eq!(t.insert(1, 3), Ok(()));
        assert_eq!(t.insert(2, 4), Err(4));
        t.grow(8, &budget).unwrap();
        assert_eq!(budget.reserved(), 8 * 4);
        t.insert(1, 2).unwrap();
        assert_eq!(t.iter().collect::<alloc::vec::Vec<_>>(), [1, 2, 3]);
        assert_eq!(t.partition_point(|e| e < 3), 2);
        t.retain(|e| e != 2);
        assert_eq!(t.iter().collect::<alloc::vec::Vec<_>>(), [1, 3]);
        t.retain(|e| e != 3);
        t.resize_within(4, 9);
        assert_eq!(t.iter().collect::<alloc::vec::Vec<_>>(), [1, 9, 9, 9]);
        t.set(0, 5);
        assert_eq!((t.get(0), t.get(4), t.get(3)), (Some(5), None, Some(9)));
        assert_eq!(t.free(), 32);
        budget.credit(32);
        assert_eq!((t.len(), t.capacity(), budget.reserved()), (0, 0, 0));
    }

    #[test]
    fn a_refused_growth_charges_nothing() {
        let budget = Budget::new(Some(16), ptr::null());
        let t = Table::<u64>::new(Source::Global);
        t.grow(2, &budget).unwrap();
        assert!(matches!(
            t.grow(4, &budget),
            Err(Error::BudgetExceeded { .. })
        ));
        assert_eq!((t.capacity(), budget.reserved()), (2, 16));
        assert!(t
            .grow(usize::MAX / 4, &Budget::new(None, ptr::null()))
            .is_err());
        assert_eq!(t.capacity(), 2);
    }
}
