//! A manager's list of typed stores ([`Stores`]), and the records any
//! store lives in.

use core::alloc::Layout;
use core::any::TypeId;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use super::{RawStore, MAX_STORES};
use crate::budget::Budget;
use crate::source::{self, Source};
use crate::Error;

/// A record holding `store`, from `source`, charged to `budget` (a byte
/// store's: the checked blocks keep their own list of them).
pub(crate) fn new_record(
    store: RawStore,
    source: Source,
    budget: &Budget,
) -> Result<NonNull<RawStore>, Error> {
    let layout = Layout::new::<RawStore>();
    budget.charge(RawStore::BYTES)?;
    let Some(record) = source::alloc(source, layout) else {
        budget.credit(RawStore::BYTES);
        return Err(Error::OutOfMemory {
            size: layout.size(),
            align: layout.align(),
        });
    };
    let record = record.cast::<RawStore>();
    // SAFETY: a fresh allocation of a `RawStore`'s layout.
    unsafe { record.write(store) };
    Ok(record)
}

/// Frees a record from [`new_record`] with its pages (its values need no
/// drop, or were dropped); returns the bytes freed, for the caller to
/// credit.
///
/// # Safety
///
/// `record` must come from [`new_record`] with this `source`, and be used
/// no more.
pub(crate) unsafe fn free_record(record: NonNull<RawStore>, source: Source) -> usize {
    // SAFETY: the caller's guarantee: a live record, freed once.
    unsafe {
        let pages = record.as_ref().free_pages(0);
        ptr::drop_in_place(record.as_ptr());
        source::dealloc(source, record.cast(), Layout::new::<RawStore>());
        pages + RawStore::BYTES
    }
}

/// A manager's stores, by number: one per type inserted.
///
/// The list is an array of [`MAX_STORES`] pointers, allocated with the
/// first store and never moved, so that a reader on another thread (a
/// shared manager's `get`) can follow it while a store is added under the
/// lock: an entry is written (`Release`) before `count` covers it
/// (`Release`), and a reader loads `count` (`Acquire`) before the entries
/// below it. Stores are only added; they go with the manager.
#[derive(Debug)]
pub(crate) struct Stores {
    /// The array, or null before the first store. (`Acquire`/`Release`:
    /// published once, with its zeroed entries, before `count` moves.)
    list: AtomicPtr<AtomicPtr<RawStore>>,
    /// Stores in the list.
    count: AtomicUsize,
    source: Source,
}

// SAFETY: the stores own their pages and values; the values are `Send`
// (`insert` requires it). Shared across threads (a shared manager), the
// methods follow the protocol stated on `RawStore` and above: additions
// under the manager's lock, reads of published entries from anywhere.
unsafe impl Send for Stores {}
// SAFETY: as above.
unsafe impl Sync for Stores {}

impl Stores {
    /// The list's layout.
    const LIST: Layout = Layout::new::<[AtomicPtr<RawStore>; MAX_STORES]>();

    /// No store yet; memory will come from `source`.
    pub(crate) const fn new(source: Source) -> Self {
        Stores {
            list: AtomicPtr::new(ptr::null_mut()),
            count: AtomicUsize::new(0),
            source,
        }
    }

    /// Stores in the list.
    #[inline(always)]
    fn count(&self) -> usize {
        // `Acquire`: every entry below it is seen written (see the type).
        self.count.load(Ordering::Acquire)
    }

    /// Store number `n`, which exists.
    ///
    /// # Safety
    ///
    /// `n` must be below [`count`](Self::count) as this thread has seen
    /// it: the number of a handle that carries the manager's current id
    /// (made by its insert, after which the thread that made or was given
    /// the handle sees the store, or checked by `handle_from_bits`).
    #[inline(always)]
    pub(crate) unsafe fn get_unchecked(&self, n: u32) -> &RawStore {
        // SAFETY: the caller's guarantee: the list exists and its entry `n`
        // is a live store, written before the handle was made (the handle
        // crossed to this thread by a synchronising send); stores are freed
        // only by `drop` (`&mut`). `Relaxed`: as for `count`'s `Acquire`.
        unsafe {
            let list = self.list.load(Ordering::Relaxed);
            &*(*list.add(n as usize)).load(Ordering::Relaxed)
        }
    }

    /// Store number `n`, if there is one.
    #[inline]
    pub(crate) fn get(&self, n: u32) -> Option<&RawStore> {
        // SAFETY: below `count`, seen with `Acquire`.
        ((n as usize) < self.count()).then(|| unsafe { self.get_unchecked(n) })
    }

    /// The store of `T`, if it has one.
    #[inline(always)]
    pub(crate) fn find<T: 'static>(&self) -> Option<&RawStore> {
        let id = TypeId::of::<T>();
        let count = self.count();
        let list = self.list.load(Ordering::Relaxed);
        for n in 0..count {
            // SAFETY: `n < count`, seen with `Acquire`: a published entry of
            // the list, a live store (see `get_unchecked`).
            let s = unsafe { &*(*list.add(n)).load(Ordering::Relaxed) };
            if s.type_id == id {
                return Some(s);
            }
        }
        None
    }

    /// The store of `T`, made now if need be (its record, and the list
    /// with the first store, charged to `budget`). Under the manager's
    /// lock (or on its one thread).
    #[inline]
    pub(crate) fn of<T: 'static>(&self, budget: &Budget) -> Result<&RawStore, Error> {
        match self.find::<T>() {
            Some(s) => Ok(s),
            None => self.make::<T>(budget),
        }
    }

    #[cold]
    #[inline(never)]
    fn make<T: 'static>(&self, budget: &Budget) -> Result<&RawStore, Error> {
        if self.list.load(Ordering::Relaxed).is_null() {
            budget.charge(Self::LIST.size())?;
            let Some(list) = source::alloc_zeroed(self.source, Self::LIST) else {
                budget.credit(Self::LIST.size());
                return Err(Error::OutOfMemory {
                    size: Self::LIST.size(),
                    align: Self::LIST.align(),
                });
            };
            // The allocator may have made the list meanwhile (a call into
            // this manager: the re-entrancy rule).
            if self.list.load(Ordering::Relaxed).is_null() {
                // `Release`: the zeroed entries (null pointers) first.
                self.list.store(list.as_ptr().cast(), Ordering::Release);
            } else {
                budget.credit(Self::LIST.size());
                // SAFETY: allocated above with this layout, never shared.
                unsafe { source::dealloc(self.source, list, Self::LIST) };
            }
        }
        let layout = Layout::new::<RawStore>();
        budget.charge(RawStore::BYTES)?;
        let Some(record) = source::alloc(self.source, layout) else {
            budget.credit(RawStore::BYTES);
            return Err(Error::OutOfMemory {
                size: layout.size(),
                align: layout.align(),
            });
        };
        let record = record.cast::<RawStore>();
        // The allocator has returned: a call it made may have made the
        // store meanwhile.
        let give_back = |budget: &Budget| {
            budget.credit(RawStore::BYTES);
            // SAFETY: allocated above, never written or shared.
            unsafe { source::dealloc(self.source, record.cast(), layout) };
        };
        if let Some(s) = self.find::<T>() {
            give_back(budget);
            return Ok(s);
        }
        let number = self.count.load(Ordering::Relaxed);
        if number == MAX_STORES {
            give_back(budget);
            return Err(Error::TooManyTypes { max: MAX_STORES });
        }
        // SAFETY: a fresh allocation of a `RawStore`'s layout; the list
        // exists (made above) with room for entry `number`, which no reader
        // looks at until `count` covers it.
        unsafe {
            record.write(RawStore::new::<T>(number as u32, self.source));
            let list = self.list.load(Ordering::Relaxed);
            (*list.add(number)).store(record.as_ptr(), Ordering::Relaxed);
        }
        // `Release`: publishes the entry and the record (see the type).
        self.count.store(number + 1, Ordering::Release);
        // SAFETY: written just above; freed only by `drop`.
        Ok(unsafe { record.as_ref() })
    }

    /// Every store, by number.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &RawStore> + '_ {
        // SAFETY: each number below `count`, seen with `Acquire`.
        (0..self.count() as u32).map(move |n| unsafe { self.get_unchecked(n) })
    }

    /// Live values over every store.
    pub(crate) fn live(&self) -> usize {
        self.iter().map(RawStore::live).sum()
    }

    /// Bytes of the pages, the records and the list: what the budget is
    /// charged for them.
    pub(crate) fn bytes(&self) -> usize {
        let list = if self.list.load(Ordering::Relaxed).is_null() {
            0
        } else {
            Self::LIST.size()
        };
        self.iter()
            .map(|s| s.bytes() + RawStore::BYTES)
            .sum::<usize>()
            + list
    }

    /// Drops every live value, store by store. `&mut self`: the stores are
    /// the manager's, borrowed mutably, so no reference to a value exists
    /// (they borrow the manager).
    pub(crate) fn drop_values(&mut self) {
        for s in self.iter() {
            // SAFETY: no reference to a value exists (`&mut self`).
            unsafe { s.drop_values() };
        }
    }

    /// [`RawStore::forget_slots`] on every store (a reset).
    pub(crate) fn forget_slots(&mut self) {
        self.iter().for_each(RawStore::forget_slots);
    }

    /// Gives back the pages of every store with no live value; returns
    /// the bytes. Only where no other thread can be reading a store: a
    /// `MemoryManager`'s (not `Sync`).
    pub(crate) fn trim(&self) -> usize {
        self.iter().map(RawStore::trim).sum()
    }

    /// Whether every store is consistent.
    pub(crate) fn is_valid(&self) -> bool {
        self.iter()
            .enumerate()
            .all(|(n, s)| s.number as usize == n && s.is_valid())
    }
}

impl Drop for Stores {
    /// Frees every page and record (the values were dropped by the
    /// manager's drop), then the list.
    fn drop(&mut self) {
        let list = *self.list.get_mut();
        let count = *self.count.get_mut();
        for n in 0..count {
            // SAFETY: a live record of the list (`n < count`), freed once:
            // its pages, then the record.
            unsafe {
                let s = (*list.add(n)).load(Ordering::Relaxed);
                (*s).free_pages(0);
                ptr::drop_in_place(s);
                source::dealloc(
                    self.source,
                    NonNull::new_unchecked(s).cast(),
                    Layout::new::<RawStore>(),
                );
            }
        }
        if let Some(list) = NonNull::new(list) {
            // SAFETY: allocated by `make` with this layout, freed once.
            unsafe { source::dealloc(self.source, list.cast(), Self::LIST) };
        }
    }
}
