//! The typed views of one store: [`Store`] (shared) and [`StoreMut`]
//! (mutable), which find the store once and then check handles as the
//! manager does.

use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use super::{find_in, value_in, Handle, Iter, IterMut, Walk};
use crate::store::RawStore;
use crate::Error;
#[cfg(doc)] // (for the docs' links)
use crate::MemoryManager;

/// A shared view of one type's store, from [`MemoryManager::store`](crate::MemoryManager::store).
///
/// # Examples
///
/// ```
/// let mm = memory_mgr::MemoryManager::new();
/// let hs: Vec<_> = (0..3u8).map(|i| mm.insert(i)).collect();
/// let store = mm.store::<u8>();
/// assert_eq!(store.get(hs[2]), Ok(&2));
/// assert_eq!(store.len(), 3);
/// ```
pub struct Store<'a, T> {
    /// The manager's stores, to find `T`'s once it exists (an insert may
    /// make it while the view lives); none for a shared manager not used.
    stores: Option<&'a crate::store::Stores>,
    /// `T`'s store, once found.
    store: core::cell::Cell<Option<&'a RawStore>>,
    id: u64,
    /// The manager's, for the error of a handle of another id; none for
    /// the view of a shared manager not yet used.
    not_ours: Option<&'a crate::checked::CheckedBlocks>,
    _values: PhantomData<&'a T>,
}

impl<T> fmt::Debug for Store<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("type", &core::any::type_name::<T>())
            .field("len", &self.store.get().map_or(0, RawStore::live))
            .finish()
    }
}

impl<'a, T: 'static> Store<'a, T> {
    /// `T`'s store, if it exists (looked for again until it does).
    #[inline(always)]
    fn raw(&self) -> Option<&'a RawStore> {
        if let Some(s) = self.store.get() {
            return Some(s);
        }
        let s = self.stores?.find::<T>();
        self.store.set(s);
        s
    }

    /// The view of `T`'s store among `stores`, whose manager's checked
    /// state (the id its handles carry) is `blocks`.
    pub(crate) fn new(
        stores: &'a crate::store::Stores,
        blocks: &'a crate::checked::CheckedBlocks,
    ) -> Self {
        Store {
            stores: Some(stores),
            store: core::cell::Cell::new(stores.find::<T>()),
            id: blocks.id(),
            not_ours: Some(blocks),
            _values: PhantomData,
        }
    }

    /// The view of a manager with no store at all (no handle is its).
    #[cfg(all(feature = "std", not(loom)))] // a shared manager's, before its first use
    pub(crate) fn empty() -> Self {
        Store {
            stores: None,
            store: core::cell::Cell::new(None),
            id: 0,
            not_ours: None,
            _values: PhantomData,
        }
    }

    /// The slot of `h`, checked.
    #[inline(always)]
    fn find(&self, h: Handle<T>) -> Result<NonNull<u8>, Error> {
        if h.raw.owner != self.id {
            return Err(self
                .not_ours
                .map_or(Error::ForeignBlock, |b| b.not_ours(h.raw)));
        }
        find_in::<T>(self.raw().ok_or(Error::Removed)?, h)
    }

    /// The value of `handle`, as [`MemoryManager::get`](crate::MemoryManager::get).
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::get`](crate::MemoryManager::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert(3u8);
    /// assert_eq!(mm.store::<u8>().get(h), Ok(&3));
    /// ```
    #[inline]
    pub fn get(&self, handle: Handle<T>) -> Result<&'a T, Error> {
        let slot = self.find(handle)?;
        // SAFETY: as in `MemoryManager::get`, for the manager's borrow `'a`.
        Ok(unsafe { value_in::<T>(slot).as_ref() })
    }

    /// Whether `handle` names a value of the store.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert(3u8);
    /// assert!(mm.store::<u8>().contains(h));
    /// ```
    #[must_use]
    pub fn contains(&self, handle: Handle<T>) -> bool {
        self.find(handle).is_ok()
    }

    /// Live values.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// mm.insert(3u8);
    /// assert_eq!(mm.store::<u8>().len(), 1);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.raw().map_or(0, RawStore::live)
    }

    /// Whether the store holds no value.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// assert!(mm.store::<u8>().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every value with its handle, as [`MemoryManager::iter`](crate::MemoryManager::iter).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// mm.insert(3u8);
    /// assert_eq!(mm.store::<u8>().iter().count(), 1);
    /// ```
    pub fn iter(&self) -> Iter<'a, T> {
        Iter::new(Walk::new(self.raw(), self.id))
    }
}

/// A mutable view of one type's store, from [`MemoryManager::store_mut`](crate::MemoryManager::store_mut).
///
/// # Examples
///
/// ```
/// let mut mm = memory_mgr::MemoryManager::new();
/// let h = mm.insert(1u8);
/// let mut store = mm.store_mut::<u8>();
/// *store.get_mut(h)? += 1;
/// assert_eq!(store.remove(h), Ok(2));
/// # Ok::<(), memory_mgr::Error>(())
/// ```
pub struct StoreMut<'a, T> {
    /// The shared view it adds the mutable methods to.
    view: Store<'a, T>,
    /// Invariant in `T`, as `&mut T` is.
    _values: PhantomData<&'a mut T>,
}

impl<T> fmt::Debug for StoreMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreMut")
            .field("type", &core::any::type_name::<T>())
            .field("len", &self.view.store.get().map_or(0, RawStore::live))
            .finish()
    }
}

impl<'a, T: 'static> StoreMut<'a, T> {
    /// The mutable view over `view` (made from a `&mut` borrow).
    pub(crate) fn new(view: Store<'a, T>) -> Self {
        StoreMut {
            view,
            _values: PhantomData,
        }
    }

    /// As [`Store::empty`].
    #[cfg(all(feature = "std", not(loom)))] // a shared manager's, before its first use
    pub(crate) fn empty() -> Self {
        StoreMut {
            view: Store::empty(),
            _values: PhantomData,
        }
    }

    /// The value of `handle`.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::get`](crate::MemoryManager::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert(3u8);
    /// assert_eq!(mm.store_mut::<u8>().get(h), Ok(&3));
    /// ```
    #[inline]
    pub fn get(&self, handle: Handle<T>) -> Result<&T, Error> {
        // (Shortened to this borrow of the view.)
        self.view.get(handle)
    }

    /// The value of `handle`, mutably.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::get`](crate::MemoryManager::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert(3u8);
    /// *mm.store_mut::<u8>().get_mut(h)? += 1;
    /// assert_eq!(mm.get(h), Ok(&4));
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    pub fn get_mut(&mut self, handle: Handle<T>) -> Result<&mut T, Error> {
        let slot = self.view.find(handle)?;
        // SAFETY: as in `MemoryManager::get_mut`: the view holds the
        // manager's only borrow, and this borrows the view mutably.
        Ok(unsafe { value_in::<T>(slot).as_mut() })
    }

    /// Moves the value of `handle` out, as [`MemoryManager::remove`](crate::MemoryManager::remove).
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::remove`](crate::MemoryManager::remove).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert(3u8);
    /// assert_eq!(mm.store_mut::<u8>().remove(h), Ok(3));
    /// assert!(mm.get(h).is_err());
    /// ```
    #[inline]
    pub fn remove(&mut self, handle: Handle<T>) -> Result<T, Error> {
        let slot = self.view.find(handle)?;
        let store = self.view.raw().expect("found above");
        // SAFETY: as in `MemoryManager::remove`.
        unsafe {
            let v = value_in::<T>(slot).read();
            store.vacate_tagged(slot, handle.index(), handle.tag());
            Ok(v)
        }
    }

    /// Live values.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// mm.insert(3u8);
    /// assert_eq!(mm.store_mut::<u8>().len(), 1);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Whether the store holds no value.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// assert!(mm.store_mut::<u8>().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every value, mutably, with its handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::MemoryManager::new();
    /// mm.insert(3u8);
    /// mm.store_mut::<u8>().iter_mut().for_each(|(_, v)| *v = 9);
    /// assert_eq!(mm.values::<u8>().next(), Some(&9));
    /// ```
    pub fn iter_mut(&mut self) -> IterMut<'_, T> {
        IterMut::new(Walk::new(self.view.raw(), self.view.id))
    }
}
