//! The iterators over a store's live values: [`Iter`], [`IterMut`] and
//! [`Drain`], each a [`Walk`] over the store's pages, a run at a time.

use core::fmt;
use core::iter::FusedIterator;
use core::marker::PhantomData;
use core::ptr::NonNull;

use super::{value_in, Handle};
use crate::store::RawStore;
#[cfg(doc)] // (for the docs' links)
use crate::MemoryManager;

/// A walk over a store's live slots, a page's run at a time.
///
/// The run's slots are read between calls: its page stays live, because a
/// trim gives back only the pages past a store's last live value (with
/// their slots), and a walk stops inside a run only to hand out a live
/// value, whose page, and every page before it, then stay until the walk's
/// borrow of the manager ends (removing needs `&mut`; a drain's borrow is
/// `&mut`).
pub(crate) struct Walk<'a> {
    store: Option<&'a RawStore>,
    id: u64,
    /// One past the current run's last slot: where the next run starts.
    end: u32,
    /// The next slot, if `left > 0`.
    next: NonNull<u8>,
    /// Slots left in the current run.
    left: u32,
    /// Bytes of a slot.
    size: usize,
    /// Whether the walk has ended: it stays ended (a slot an insert adds
    /// later is not seen: the iterators are fused).
    done: bool,
}

impl<'a> Walk<'a> {
    /// A walk over `store` (none: an empty walk), whose handles carry `id`.
    #[inline]
    pub(crate) fn new(store: Option<&'a RawStore>, id: u64) -> Self {
        Walk {
            store,
            id,
            end: 0,
            next: NonNull::dangling(),
            left: 0,
            size: store.map_or(0, RawStore::slot_size),
            done: false,
        }
    }

    /// The next live slot: (index, tag, slot).
    #[inline(always)]
    pub(crate) fn next_live(&mut self) -> Option<(u32, u32, NonNull<u8>)> {
        loop {
            while self.left > 0 {
                let slot = self.next;
                // SAFETY: `left > 0`: the next slot of a run below `len` on
                // a live page (see the type); one past the run at most.
                self.next = unsafe { slot.add(self.size) };
                self.left -= 1;
                // SAFETY: a slot below `len`.
                let tag = unsafe { RawStore::tag(slot) };
                if tag & 1 == 1 {
                    return Some((self.end - self.left - 1, tag, slot));
                }
            }
            let run = match self.store {
                Some(s) if !self.done => s.run(self.end),
                _ => None,
            };
            let Some((next, left)) = run else {
                self.done = true;
                return None;
            };
            (self.next, self.left) = (next, left as u32);
            self.end += left as u32;
        }
    }

    /// Slots not walked yet, an upper bound of the live ones left.
    fn remaining(&self) -> usize {
        self.store.map_or(0, |s| {
            (s.len() + self.left as usize)
                .saturating_sub(self.end as usize)
                .min(s.live())
        })
    }
}

/// The `T`s behind handles, with their handles: [`MemoryManager::iter`](crate::MemoryManager::iter).
///
/// # Examples
///
/// ```
/// let mm = memory_mgr::MemoryManager::new();
/// let h = mm.insert('a');
/// let mut it: memory_mgr::handles::Iter<'_, char> = mm.iter();
/// assert_eq!(it.next(), Some((h, &'a')));
/// assert_eq!(it.next(), None);
/// ```
pub struct Iter<'a, T> {
    raw: Walk<'a>,
    _values: PhantomData<&'a T>,
}

impl<T> Iter<'_, T> {
    /// The iterator of `walk`.
    pub(crate) fn new(walk: Walk<'_>) -> Iter<'_, T> {
        Iter {
            raw: walk,
            _values: PhantomData,
        }
    }

    /// An iterator over nothing.
    #[cfg(all(feature = "std", not(loom)))] // a shared manager's, before its first use
    pub(crate) fn empty() -> Self {
        Iter {
            raw: Walk::new(None, 0),
            _values: PhantomData,
        }
    }
}

impl<'a, T: 'static> Iterator for Iter<'a, T> {
    type Item = (Handle<T>, &'a T);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (index, tag, slot) = self.raw.next_live()?;
        // SAFETY: a live `T` (as in `MemoryManager::get`), for the
        // manager's shared borrow `'a`.
        Some((Handle::new(self.raw.id, index, tag), unsafe {
            value_in::<T>(slot).as_ref()
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // No upper bound: an `insert(&self)` meanwhile may add values.
        (0, None)
    }
}

impl<T: 'static> FusedIterator for Iter<'_, T> {}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("next", &(self.raw.end - self.raw.left))
            .finish()
    }
}

/// The `T`s behind handles, mutably: [`MemoryManager::iter_mut`](crate::MemoryManager::iter_mut).
///
/// # Examples
///
/// ```
/// let mut mm = memory_mgr::MemoryManager::new();
/// let h = mm.insert(1u32);
/// let it: memory_mgr::handles::IterMut<'_, u32> = mm.iter_mut();
/// it.for_each(|(_, v)| *v *= 5);
/// assert_eq!(mm.get(h), Ok(&5));
/// ```
pub struct IterMut<'a, T> {
    raw: Walk<'a>,
    _values: PhantomData<&'a mut T>,
}

impl<T> IterMut<'_, T> {
    /// The iterator of `walk`.
    pub(crate) fn new(walk: Walk<'_>) -> IterMut<'_, T> {
        IterMut {
            raw: walk,
            _values: PhantomData,
        }
    }

    /// An iterator over nothing.
    #[cfg(all(feature = "std", not(loom)))] // a shared manager's, before its first use
    pub(crate) fn empty() -> Self {
        IterMut {
            raw: Walk::new(None, 0),
            _values: PhantomData,
        }
    }
}

impl<'a, T: 'static> Iterator for IterMut<'a, T> {
    type Item = (Handle<T>, &'a mut T);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (index, tag, slot) = self.raw.next_live()?;
        // SAFETY: a live `T` (as in `MemoryManager::get_mut`); each slot is
        // given once, and the manager is borrowed mutably for `'a`.
        Some((Handle::new(self.raw.id, index, tag), unsafe {
            value_in::<T>(slot).as_mut()
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.raw.remaining()))
    }
}

impl<T: 'static> FusedIterator for IterMut<'_, T> {}

impl<T> fmt::Debug for IterMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterMut")
            .field("next", &(self.raw.end - self.raw.left))
            .finish()
    }
}

/// The `T`s taken out of the manager: [`MemoryManager::drain`](crate::MemoryManager::drain).
///
/// # Examples
///
/// ```
/// let mut mm = memory_mgr::MemoryManager::new();
/// mm.insert(String::from("a"));
/// let mut d: memory_mgr::handles::Drain<'_, String> = mm.drain();
/// assert_eq!(d.next().map(|(_, s)| s), Some(String::from("a")));
/// drop(d);
/// assert!(mm.is_empty::<String>());
/// ```
pub struct Drain<'a, T: 'static> {
    raw: Walk<'a>,
    _values: PhantomData<&'a mut T>,
}

impl<T: 'static> Drain<'_, T> {
    /// The iterator of `walk`.
    pub(crate) fn new(walk: Walk<'_>) -> Drain<'_, T> {
        Drain {
            raw: walk,
            _values: PhantomData,
        }
    }

    /// An iterator over nothing.
    #[cfg(all(feature = "std", not(loom)))] // a shared manager's, before its first use
    pub(crate) fn empty() -> Self {
        Drain {
            raw: Walk::new(None, 0),
            _values: PhantomData,
        }
    }
}

impl<T: 'static> Iterator for Drain<'_, T> {
    type Item = (Handle<T>, T);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (index, tag, slot) = self.raw.next_live()?;
        let store = self.raw.store?;
        // SAFETY: a live `T`, unreferenced (the manager is borrowed
        // mutably): moved out once, then its slot vacated.
        let v = unsafe {
            let v = value_in::<T>(slot).read();
            store.vacate(slot, index);
            v
        };
        Some((Handle::new(self.raw.id, index, tag), v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.raw.remaining()))
    }
}

impl<T: 'static> FusedIterator for Drain<'_, T> {}

impl<T: 'static> Drop for Drain<'_, T> {
    fn drop(&mut self) {
        self.for_each(drop);
    }
}

impl<T> fmt::Debug for Drain<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("next", &(self.raw.end - self.raw.left))
            .finish()
    }
}
