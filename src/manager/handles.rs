//! The manager's methods over its typed stores (`store/`, `handle/`):
//! `insert`, `get`, `get_mut`, `get_disjoint_mut`, `get_pair_mut`,
//! `remove`, `contains`, `len`, `iter`, `iter_mut`, `values`,
//! `values_mut`, `retain`, `drain`, `reserve_handles`, and the typed views
//! `store` / `store_mut`. (The one file of `manager/` with `unsafe`: a
//! value is reached through its slot, checked, as `store/` states.)
#![allow(unsafe_code)]

use core::any::TypeId;
use core::ptr::NonNull;

use super::MemoryManager;
use crate::handle::{
    find_in, not_ours, value_in, Drain, Handle, Iter, IterMut, Store, StoreMut, Walk,
};
use crate::pool_box::alloc_failed;
use crate::size_class::SizeClasses;
use crate::store::{RawStore, SlotOf, STORE_SHIFT};
use crate::Error;

impl<C: SizeClasses> MemoryManager<C> {
    /// The slot of live handle `h`, checked: the manager's id, then the
    /// slot's tag.
    #[inline(always)]
    fn find<T: 'static>(&self, h: Handle<T>) -> Result<NonNull<u8>, Error> {
        find_in::<T>(self.store_named(h)?, h)
    }

    /// [`find`](Self::find), with the slot's store.
    #[inline(always)]
    fn find_with_store<T: 'static>(&self, h: Handle<T>) -> Result<(&RawStore, NonNull<u8>), Error> {
        let store = self.store_named(h)?;
        Ok((store, find_in::<T>(store, h)?))
    }

    /// The store `h` names, once its manager id is checked.
    #[inline(always)]
    fn store_named<T: 'static>(&self, h: Handle<T>) -> Result<&RawStore, Error> {
        if h.raw.owner != self.blocks().id() {
            return Err(not_ours(self.blocks(), h.raw));
        }
        // SAFETY: the handle carries this manager's current id, so its insert
        // (or `handle_from_bits`, which checks) made it here: its store
        // exists, and is `T`'s (stores are never renumbered or removed).
        let store = unsafe { self.stores().get_unchecked(h.tag() >> STORE_SHIFT) };
        debug_assert!(store.is_of::<T>(), "a handle names its type's store");
        Ok(store)
    }

    /// The store of `T`, made now if need be; a refusal names the manager
    /// and the slot's size.
    fn store_of<T: 'static>(&self) -> Result<&RawStore, Error> {
        self.stores()
            .of::<T>(self.heap().budget())
            .map_err(|e| e.refusing(SlotOf::<T>::SLOT, self.name()))
    }
}

/// # Handles
///
/// Values the manager owns, reached through checked [`Handle`]s: a store
/// per type, its values inline in slots as a slotmap keeps them, on pages
/// that never move (charged to the budget and counted in the stats;
/// `reserve_handles`, `trim` and `reset` cover them).
impl<C: SizeClasses> MemoryManager<C> {
    /// Moves `value` into the manager and returns its handle.
    ///
    /// # Panics
    ///
    /// If the allocation fails (as [`alloc`](Self::alloc)); the message
    /// names the manager. [`try_insert`](Self::try_insert) returns the error
    /// instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert([1.0f32, 2.0, 3.0]);
    /// assert_eq!(mm.get(h)?[1], 2.0);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    pub fn insert<T: Send + 'static>(&self, value: T) -> Handle<T> {
        match self.try_insert(value) {
            Ok(h) => h,
            Err(e) => alloc_failed(self.name(), e),
        }
    }

    /// Moves `value` into the manager and returns its handle, or the error
    /// (the value is dropped).
    ///
    /// `T: Send` because the manager is `Send` and owns the value; `'static`
    /// because a reset or the manager's drop may run its destructor.
    ///
    /// # Errors
    ///
    /// [`Error::BudgetExceeded`] or [`Error::OutOfMemory`] if the store
    /// needs a page it cannot have; [`Error::TooManyTypes`] for a 257th
    /// type.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let mm = MemoryManager::builder().budget(4096).build()?;
    /// assert!(matches!(mm.try_insert([0u8; 400]), Err(Error::BudgetExceeded { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn try_insert<T: Send + 'static>(&self, value: T) -> Result<Handle<T>, Error> {
        self.insert_or_give_back(value).map_err(|(e, _)| e)
    }

    /// [`try_insert`](Self::try_insert), giving the value back with the
    /// error (a shared manager drops it after its lock).
    #[inline]
    pub(crate) fn insert_or_give_back<T: Send + 'static>(
        &self,
        value: T,
    ) -> Result<Handle<T>, (Error, T)> {
        let store = match self.store_of::<T>() {
            Ok(store) => store,
            Err(e) => return Err((e, value)),
        };
        let (slot, index, tag) = match store.take(self.heap().budget()) {
            Ok(t) => t,
            Err(e) => return Err((e.refusing(SlotOf::<T>::SLOT, self.name()), value)),
        };
        // SAFETY: a slot of `T`'s store, taken for this value: its value
        // place is ours to write.
        unsafe { value_in::<T>(slot).write(value) };
        store.make_live(slot, tag);
        Ok(Handle::new(self.blocks().id(), index, tag))
    }

    /// Makes room in `T`'s store so that `additional` more
    /// [`insert`](Self::insert)s of a `T` need no new memory.
    ///
    /// # Errors
    ///
    /// [`Error::BudgetExceeded`] or [`Error::OutOfMemory`] if the pages
    /// cannot be had (those added before stay).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// mm.reserve_handles::<String>(100)?;
    /// let reserved = mm.stats().reserved_bytes();
    /// let names: Vec<_> = (0..100).map(|i| mm.insert(i.to_string())).collect();
    /// assert_eq!(mm.stats().reserved_bytes(), reserved);
    /// # drop(names);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn reserve_handles<T: Send + 'static>(&self, additional: usize) -> Result<(), Error> {
        self.store_of::<T>()?
            .reserve(self.heap().budget(), additional)
            .map_err(|e| e.refusing(SlotOf::<T>::SLOT, self.name()))
    }

    /// The value of `handle`.
    ///
    /// # Errors
    ///
    /// [`Error::Removed`] if it was removed, [`Error::FreedByReset`] if a
    /// reset dropped it, [`Error::ForeignBlock`] if another manager made
    /// the handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let (a, b) = (MemoryManager::new(), MemoryManager::new());
    /// let h = a.insert(7u64);
    /// assert_eq!(a.get(h), Ok(&7));
    /// assert_eq!(b.get(h), Err(Error::ForeignBlock));
    /// ```
    #[inline]
    pub fn get<T: 'static>(&self, handle: Handle<T>) -> Result<&T, Error> {
        let slot = self.find(handle)?;
        // SAFETY: the slot is live (checked), so it holds the `T` its insert
        // wrote (`RawStore` invariant); its page never moves, and the value
        // stays while `&self` is borrowed: removing, resetting and dropping
        // need `&mut`, and an insert takes only vacant slots.
        Ok(unsafe { value_in::<T>(slot).as_ref() })
    }

    /// The value of `handle`, mutably.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert(vec![1, 2]);
    /// mm.get_mut(h)?.push(3);
    /// assert_eq!(mm.get(h)?.len(), 3);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    pub fn get_mut<T: 'static>(&mut self, handle: Handle<T>) -> Result<&mut T, Error> {
        let slot = self.find(handle)?;
        // SAFETY: as in `get`; `&mut self` makes this the only reference to
        // any value of the manager.
        Ok(unsafe { value_in::<T>(slot).as_mut() })
    }

    /// Mutable references to the values of `N` distinct handles at once.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateHandle`] if a handle is given twice, else as
    /// [`get`](Self::get) for the first handle that fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let mut mm = MemoryManager::new();
    /// let (a, b) = (mm.insert(1), mm.insert(2));
    /// let [x, y] = mm.get_disjoint_mut([a, b])?;
    /// std::mem::swap(x, y);
    /// assert_eq!((mm.get(a)?, mm.get(b)?), (&2, &1));
    /// assert!(matches!(mm.get_disjoint_mut([a, a]), Err(Error::DuplicateHandle)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn get_disjoint_mut<T: 'static, const N: usize>(
        &mut self,
        handles: [Handle<T>; N],
    ) -> Result<[&mut T; N], Error> {
        let mut values = [NonNull::<T>::dangling(); N];
        for (i, h) in handles.iter().enumerate() {
            let slot = self.find(*h)?;
            if handles[..i].iter().any(|o| o.index() == h.index()) {
                return Err(Error::DuplicateHandle);
            }
            values[i] = value_in::<T>(slot);
        }
        // SAFETY: each is a live `T` of this manager (as in `get`), in
        // distinct slots (checked), so no two references overlap (a
        // zero-sized value overlaps nothing); `&mut self` excludes every
        // other reference for their lifetime.
        Ok(values.map(|mut v| unsafe { v.as_mut() }))
    }

    /// Mutable references to two values of any types at once — an entity
    /// and its transform.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateHandle`] if both name the same value, else as
    /// [`get`](Self::get) for the first handle that fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// struct Body { pos: [f32; 2] }
    /// struct Ai { target: [f32; 2] }
    /// let mut mm = MemoryManager::new();
    /// let (body, ai) = (mm.insert(Body { pos: [0.0; 2] }), mm.insert(Ai { target: [3.0, 4.0] }));
    /// let (b, a) = mm.get_pair_mut(body, ai)?;
    /// b.pos = a.target;
    /// assert_eq!(mm.get(body)?.pos, [3.0, 4.0]);
    /// let n = mm.insert(1u8);
    /// assert_eq!(mm.get_pair_mut(n, n).err(), Some(Error::DuplicateHandle));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn get_pair_mut<A: 'static, B: 'static>(
        &mut self,
        a: Handle<A>,
        b: Handle<B>,
    ) -> Result<(&mut A, &mut B), Error> {
        let (sa, sb) = (self.find(a)?, self.find(b)?);
        if sa == sb && TypeId::of::<A>() == TypeId::of::<B>() {
            return Err(Error::DuplicateHandle);
        }
        // SAFETY: two live values of this manager (as in `get`): in two
        // slots of one store, or in two stores, whose pages are distinct
        // allocations (zero-sized values overlap nothing); `&mut self`
        // excludes every other reference for their lifetime.
        unsafe { Ok((value_in::<A>(sa).as_mut(), value_in::<B>(sb).as_mut())) }
    }

    /// Moves the value of `handle` out of the manager; the handle is stale
    /// from then on (also once its slot holds another value).
    ///
    /// # Errors
    ///
    /// [`Error::Removed`] if it was removed already, else as
    /// [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let mut mm = MemoryManager::new();
    /// let h = mm.insert(String::from("gone"));
    /// assert_eq!(mm.remove(h)?, "gone");
    /// let again = mm.insert(String::from("new")); // may reuse the slot
    /// assert_eq!(mm.remove(h), Err(Error::Removed));
    /// assert_eq!(mm.get(again)?, "new");
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn remove<T: 'static>(&mut self, handle: Handle<T>) -> Result<T, Error> {
        let (store, slot) = self.find_with_store(handle)?;
        // SAFETY: the slot is live and holds a `T` (as in `get`), with no
        // reference to it (`&mut self`): moved out once, then vacated; its
        // tag is the handle's (checked).
        unsafe {
            let v = value_in::<T>(slot).read();
            store.vacate_tagged(slot, handle.index(), handle.tag());
            Ok(v)
        }
    }

    /// Whether `handle` names a value of this manager.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert('x');
    /// assert!(mm.contains(h));
    /// mm.remove(h)?;
    /// assert!(!mm.contains(h));
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn contains<T: 'static>(&self, handle: Handle<T>) -> bool {
        self.find(handle).is_ok()
    }

    /// The handle whose [`to_bits`](Handle::to_bits) are `bits`, if they
    /// name a live `T` of this manager: the checked way back from a format
    /// of your own.
    ///
    /// # Errors
    ///
    /// [`Error::NotAHandle`] if the bits name no live `T` here (another
    /// type's store, a removed value, made-up bits); as [`get`](Self::get)
    /// for another manager's or a reset one's.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let mm = MemoryManager::new();
    /// let h = mm.insert(String::from("saved"));
    /// let back = mm.handle_from_bits::<String>(h.to_bits())?;
    /// assert_eq!(mm.get(back)?, "saved");
    /// assert_eq!(mm.handle_from_bits::<String>(12345), Err(Error::ForeignBlock));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn handle_from_bits<T: 'static>(&self, bits: u128) -> Result<Handle<T>, Error> {
        let h = Handle::<T>::new((bits >> 64) as u64, bits as u32, (bits >> 32) as u32);
        if h.raw.owner != self.blocks().id() {
            return Err(self.blocks().not_ours(h.raw));
        }
        match self.stores().get(h.tag() >> STORE_SHIFT) {
            // Odd tags only: `find_in` takes an equal tag for a live one.
            Some(store) if store.is_of::<T>() && h.tag() & 1 == 1 => {
                find_in::<T>(store, h).map_err(|_| Error::NotAHandle)?;
                Ok(h)
            }
            _ => Err(Error::NotAHandle),
        }
    }

    /// How many `T`s the manager holds behind handles.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// mm.insert(1u32);
    /// mm.insert(2u32);
    /// mm.insert("other type");
    /// assert_eq!(mm.len::<u32>(), 2);
    /// assert_eq!(mm.len::<f64>(), 0);
    /// ```
    #[must_use]
    pub fn len<T: 'static>(&self) -> usize {
        self.stores().find::<T>().map_or(0, RawStore::live)
    }

    /// Whether the manager holds no `T` behind a handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// assert!(mm.is_empty::<u32>());
    /// let h = mm.insert(1u32);
    /// assert!(!mm.is_empty::<u32>());
    /// mm.remove(h)?;
    /// assert!(mm.is_empty::<u32>());
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub fn is_empty<T: 'static>(&self) -> bool {
        self.len::<T>() == 0
    }

    /// Every `T` behind a handle, with its handle, in slot order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let a = mm.insert(10u32);
    /// mm.insert(20u32);
    /// let total: u32 = mm.iter::<u32>().map(|(_, v)| v).sum();
    /// assert_eq!(total, 30);
    /// assert_eq!(mm.iter::<u32>().next(), Some((a, &10)));
    /// ```
    pub fn iter<T: 'static>(&self) -> Iter<'_, T> {
        Iter::new(Walk::new(self.stores().find::<T>(), self.blocks().id()))
    }

    /// Every `T` behind a handle, mutably, with its handle: a system
    /// updating its components.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert([1.0f32, 0.0]);
    /// for (_, pos) in mm.iter_mut::<[f32; 2]>() {
    ///     pos[1] += 0.5;
    /// }
    /// assert_eq!(mm.get(h)?, &[1.0, 0.5]);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn iter_mut<T: 'static>(&mut self) -> IterMut<'_, T> {
        IterMut::new(Walk::new(self.stores().find::<T>(), self.blocks().id()))
    }

    /// Every `T` behind a handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// mm.insert(String::from("a"));
    /// assert_eq!(mm.values::<String>().collect::<Vec<_>>(), ["a"]);
    /// ```
    pub fn values<T: 'static>(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter::<T>().map(|(_, v)| v)
    }

    /// Every `T` behind a handle, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// mm.insert(1u64);
    /// mm.values_mut::<u64>().for_each(|v| *v *= 10);
    /// assert_eq!(mm.values::<u64>().sum::<u64>(), 10);
    /// ```
    pub fn values_mut<T: 'static>(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.iter_mut::<T>().map(|(_, v)| v)
    }

    /// Keeps the `T`s for which `keep` returns `true`, and drops the rest
    /// (their handles stale from then on): despawning.
    ///
    /// If `keep` or a destructor panics, the values not reached yet stay,
    /// and the one being dropped is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// let hs: Vec<_> = (0..10u32).map(|i| mm.insert(i)).collect();
    /// mm.retain::<u32>(|_, v| *v % 2 == 0);
    /// assert_eq!(mm.len::<u32>(), 5);
    /// assert!(mm.get(hs[1]).is_err());
    /// ```
    ///
    /// A reference from [`get`](Self::get) or an iterator keeps the store
    /// from being changed while it lives:
    ///
    /// ```compile_fail
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert(1u32);
    /// let r = mm.get(h).unwrap();
    /// mm.retain::<u32>(|_, _| false);
    /// println!("{r}");
    /// ```
    ///
    /// ```compile_fail
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert(1u32);
    /// for (_, v) in mm.iter::<u32>() {
    ///     mm.remove(h).unwrap();
    ///     println!("{v}");
    /// }
    /// ```
    pub fn retain<T: 'static>(&mut self, mut keep: impl FnMut(Handle<T>, &mut T) -> bool) {
        let Some(store) = self.stores().find::<T>() else {
            return;
        };
        let id = self.blocks().id();
        let mut walk = Walk::new(Some(store), id);
        while let Some((index, tag, slot)) = walk.next_live() {
            let v = value_in::<T>(slot);
            // SAFETY: a live `T` (as in `get`), the only reference to it
            // (`&mut self`), for the call only.
            if !keep(Handle::new(id, index, tag), unsafe { &mut *v.as_ptr() }) {
                // SAFETY: live, unreferenced: vacated first, then dropped
                // once (a panicking destructor leaves the store sound).
                unsafe {
                    let gone = v.read();
                    store.vacate(slot, index);
                    drop(gone);
                }
            }
        }
    }

    /// Takes every `T` out of the manager, with its handle (stale from then
    /// on). The values the iterator has not given when it is dropped are
    /// dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// mm.insert(String::from("a"));
    /// mm.insert(String::from("b"));
    /// let all: Vec<String> = mm.drain::<String>().map(|(_, s)| s).collect();
    /// assert_eq!(all, ["a", "b"]);
    /// assert_eq!(mm.len::<String>(), 0);
    /// ```
    pub fn drain<T: 'static>(&mut self) -> Drain<'_, T> {
        Drain::new(Walk::new(self.stores().find::<T>(), self.blocks().id()))
    }

    /// A view of `T`'s store, for hot loops: `get`, `iter`, `len` with no
    /// per-call look-up of the type's store.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let hs: Vec<_> = (0..100u32).map(|i| mm.insert(i)).collect();
    /// let store = mm.store::<u32>();
    /// let sum: u32 = hs.iter().map(|&h| *store.get(h).unwrap()).sum();
    /// assert_eq!(sum, 4950);
    /// ```
    pub fn store<T: 'static>(&self) -> Store<'_, T> {
        Store::new(self.stores(), self.blocks())
    }

    /// A mutable view of `T`'s store, for hot loops: `get`, `get_mut`,
    /// `iter_mut`, `remove`, with no per-call look-up of the type's store.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// let hs: Vec<_> = (0..100u32).map(|i| mm.insert(i)).collect();
    /// let mut store = mm.store_mut::<u32>();
    /// for &h in &hs {
    ///     *store.get_mut(h)? += 1;
    /// }
    /// assert_eq!(store.remove(hs[0])?, 1);
    /// assert_eq!(mm.len::<u32>(), 99);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn store_mut<T: 'static>(&mut self) -> StoreMut<'_, T> {
        StoreMut::new(self.store())
    }
}
