//! Handles on a [`SharedManager`]: the typed stores of its central
//! manager, changed under its lock (`insert`, `reserve_handles`) or with
//! `&mut self`, and read from any number of threads at once with no lock
//! (`get`, `iter`, `len`, for `T: Sync`).
//!
//! The reads are sound without the lock because they touch only what the
//! store protocol makes readable from any thread (see `store::RawStore`):
//! a store's length and a slot's tag are atomics that publish the slot and
//! its value; pages never move; the list of stores is published once; and
//! the id a handle is checked against changes only in `reset(&mut self)`.
//! A shared manager's `trim` leaves the stores' pages alone (another thread
//! may be reading them): they go with a reset's reuse or the manager.

use crate::handle::{Drain, Iter, IterMut, Store, StoreMut};
use crate::{Error, Handle, MemoryManager, SharedManager, SizeClasses};

impl<C: SizeClasses> SharedManager<C> {
    /// The central manager, for a read any thread may make without the
    /// lock (see the module).
    fn stores_view(&self) -> Option<&MemoryManager<C>> {
        self.state_if_made().map(|s| &s.central)
    }

    /// The central manager, exclusively.
    fn central_mut(&mut self) -> Option<&mut MemoryManager<C>> {
        let s = *self.state.get_mut();
        // SAFETY: `&mut self`: the state is ours alone. Only the central
        // manager is borrowed mutably (the heaps hold pointers into the
        // state's budget, not into it).
        (!s.is_null()).then(|| unsafe { &mut (*s).central })
    }

    /// Moves `value` into the manager and returns its handle; any thread
    /// may insert (under the manager's lock), and read it back.
    ///
    /// # Panics
    ///
    /// As [`MemoryManager::insert`].
    ///
    /// # Examples
    ///
    /// ```
    /// static MM: memory_mgr::SharedManager = memory_mgr::SharedManager::new();
    /// let h = std::thread::spawn(|| MM.insert(String::from("from a worker")))
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(MM.get(h)?, "from a worker");
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    pub fn insert<T: Send + 'static>(&self, value: T) -> Handle<T> {
        match self.try_insert(value) {
            Ok(h) => h,
            Err(e) => crate::pool_box::alloc_failed(self.name(), e),
        }
    }

    /// Moves `value` into the manager and returns its handle, or the error
    /// (the value is dropped).
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::try_insert`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// let h = mm.try_insert([1u8; 3])?;
    /// assert_eq!(mm.get(h)?, &[1, 1, 1]);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn try_insert<T: Send + 'static>(&self, value: T) -> Result<Handle<T>, Error> {
        // A refused value is dropped after the lock: its destructor may call
        // this manager (or another sharing the lock).
        match self.central(|mm| mm.insert_or_give_back(value))? {
            Ok(h) => Ok(h),
            Err((e, value)) => {
                drop(value);
                Err(e)
            }
        }
    }

    /// Makes room for `additional` more `T`s behind handles.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::reserve_handles`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// mm.reserve_handles::<u64>(100)?;
    /// let before = mm.stats().reserved_bytes();
    /// for i in 0..100u64 {
    ///     mm.insert(i);
    /// }
    /// assert_eq!(mm.stats().reserved_bytes(), before);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn reserve_handles<T: Send + 'static>(&self, additional: usize) -> Result<(), Error> {
        self.central(|mm| mm.reserve_handles::<T>(additional))?
    }

    /// The value of `handle`, from any thread, with no lock: many threads
    /// read at once (`T: Sync`).
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// let h = mm.insert(7u64);
    /// std::thread::scope(|s| {
    ///     for _ in 0..4 {
    ///         s.spawn(|| assert_eq!(mm.get(h), Ok(&7)));
    ///     }
    /// });
    /// ```
    ///
    /// A value that is not `Sync` cannot be read from two threads:
    ///
    /// ```compile_fail
    /// let mm = memory_mgr::SharedManager::new();
    /// let h = mm.insert(std::cell::Cell::new(1u8));
    /// std::thread::scope(|s| {
    ///     s.spawn(|| mm.get(h).unwrap().set(2));
    ///     s.spawn(|| mm.get(h).unwrap().set(3));
    /// });
    /// ```
    #[inline]
    pub fn get<T: Sync + 'static>(&self, handle: Handle<T>) -> Result<&T, Error> {
        match self.stores_view() {
            Some(mm) => mm.get(handle),
            None => Err(Error::ForeignBlock),
        }
    }

    /// The value of `handle`, mutably.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::SharedManager::new();
    /// let h = mm.insert(vec![1]);
    /// mm.get_mut(h)?.push(2);
    /// assert_eq!(mm.get(h)?.len(), 2);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    pub fn get_mut<T: 'static>(&mut self, handle: Handle<T>) -> Result<&mut T, Error> {
        match self.central_mut() {
            Some(mm) => mm.get_mut(handle),
            None => Err(Error::ForeignBlock),
        }
    }

    /// Mutable references to two values of any types at once.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::get_pair_mut`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::SharedManager::new();
    /// let (a, b) = (mm.insert(1u8), mm.insert(2u16));
    /// let (x, y) = mm.get_pair_mut(a, b)?;
    /// *y += u16::from(*x);
    /// assert_eq!(mm.get(b), Ok(&3));
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn get_pair_mut<A: 'static, B: 'static>(
        &mut self,
        a: Handle<A>,
        b: Handle<B>,
    ) -> Result<(&mut A, &mut B), Error> {
        match self.central_mut() {
            Some(mm) => mm.get_pair_mut(a, b),
            None => Err(Error::ForeignBlock),
        }
    }

    /// Moves the value of `handle` out of the manager.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::remove`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::SharedManager::new();
    /// let h = mm.insert(String::from("x"));
    /// assert_eq!(mm.remove(h)?, "x");
    /// assert!(mm.get(h).is_err());
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    pub fn remove<T: 'static>(&mut self, handle: Handle<T>) -> Result<T, Error> {
        match self.central_mut() {
            Some(mm) => mm.remove(handle),
            None => Err(Error::ForeignBlock),
        }
    }

    /// Whether `handle` names a value of this manager.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// let h = mm.insert(1u8);
    /// assert!(mm.contains(h));
    /// assert!(!memory_mgr::SharedManager::new().contains(h));
    /// ```
    #[must_use]
    pub fn contains<T: 'static>(&self, handle: Handle<T>) -> bool {
        self.stores_view().is_some_and(|mm| mm.contains(handle))
    }

    /// The handle whose bits are `bits`, checked (see
    /// [`MemoryManager::handle_from_bits`]).
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::handle_from_bits`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// let h = mm.insert('a');
    /// assert_eq!(mm.handle_from_bits::<char>(h.to_bits()), Ok(h));
    /// ```
    pub fn handle_from_bits<T: 'static>(&self, bits: u128) -> Result<Handle<T>, Error> {
        match self.stores_view() {
            Some(mm) => mm.handle_from_bits(bits),
            None => Err(Error::ForeignBlock),
        }
    }

    /// How many `T`s the manager holds behind handles.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// std::thread::scope(|s| {
    ///     for _ in 0..3 {
    ///         s.spawn(|| mm.insert(1u32));
    ///     }
    /// });
    /// assert_eq!(mm.len::<u32>(), 3);
    /// ```
    #[must_use]
    pub fn len<T: 'static>(&self) -> usize {
        self.stores_view().map_or(0, MemoryManager::len::<T>)
    }

    /// Whether the manager holds no `T` behind a handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// assert!(mm.is_empty::<u32>());
    /// ```
    #[must_use]
    pub fn is_empty<T: 'static>(&self) -> bool {
        self.len::<T>() == 0
    }

    /// Every `T` with its handle, from any thread, with no lock (`T: Sync`).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// mm.insert(2u64);
    /// mm.insert(3u64);
    /// let total = std::thread::scope(|s| {
    ///     s.spawn(|| mm.iter::<u64>().map(|(_, v)| v).sum::<u64>()).join().unwrap()
    /// });
    /// assert_eq!(total, 5);
    /// ```
    pub fn iter<T: Sync + 'static>(&self) -> Iter<'_, T> {
        match self.stores_view() {
            Some(mm) => mm.iter(),
            None => Iter::empty(),
        }
    }

    /// Every `T`, from any thread (`T: Sync`).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// mm.insert(4i8);
    /// assert_eq!(mm.values::<i8>().copied().collect::<Vec<_>>(), [4]);
    /// ```
    pub fn values<T: Sync + 'static>(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter::<T>().map(|(_, v)| v)
    }

    /// Every `T` with its handle, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::SharedManager::new();
    /// let h = mm.insert(1u8);
    /// mm.iter_mut::<u8>().for_each(|(_, v)| *v += 1);
    /// assert_eq!(mm.get(h), Ok(&2));
    /// ```
    pub fn iter_mut<T: 'static>(&mut self) -> IterMut<'_, T> {
        match self.central_mut() {
            Some(mm) => mm.iter_mut(),
            None => IterMut::empty(),
        }
    }

    /// Every `T`, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::SharedManager::new();
    /// mm.insert(1u8);
    /// mm.values_mut::<u8>().for_each(|v| *v = 9);
    /// assert_eq!(mm.values::<u8>().next(), Some(&9));
    /// ```
    pub fn values_mut<T: 'static>(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.iter_mut::<T>().map(|(_, v)| v)
    }

    /// Keeps the `T`s for which `keep` returns `true` and drops the rest.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::SharedManager::new();
    /// for i in 0..10u32 {
    ///     mm.insert(i);
    /// }
    /// mm.retain::<u32>(|_, v| *v < 4);
    /// assert_eq!(mm.len::<u32>(), 4);
    /// ```
    pub fn retain<T: 'static>(&mut self, keep: impl FnMut(Handle<T>, &mut T) -> bool) {
        if let Some(mm) = self.central_mut() {
            mm.retain(keep);
        }
    }

    /// Takes every `T` out of the manager, with its handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::SharedManager::new();
    /// mm.insert(String::from("a"));
    /// assert_eq!(mm.drain::<String>().count(), 1);
    /// assert!(mm.is_empty::<String>());
    /// ```
    pub fn drain<T: 'static>(&mut self) -> Drain<'_, T> {
        match self.central_mut() {
            Some(mm) => mm.drain(),
            None => Drain::empty(),
        }
    }

    /// A view of `T`'s store for hot loops, from any thread (`T: Sync`).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// let h = mm.insert(5u16);
    /// assert_eq!(mm.store::<u16>().get(h), Ok(&5));
    /// ```
    pub fn store<T: Sync + 'static>(&self) -> Store<'_, T> {
        match self.stores_view() {
            Some(mm) => mm.store(),
            None => Store::empty(),
        }
    }

    /// A mutable view of `T`'s store for hot loops.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::SharedManager::new();
    /// let h = mm.insert(5u16);
    /// *mm.store_mut::<u16>().get_mut(h)? += 1;
    /// assert_eq!(mm.get(h), Ok(&6));
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn store_mut<T: 'static>(&mut self) -> StoreMut<'_, T> {
        match self.central_mut() {
            Some(mm) => mm.store_mut(),
            None => StoreMut::empty(),
        }
    }
}
