//! `Handle<T>`: a typed, checked, copyable key to a value the manager owns,
//! and the manager's API over its typed stores (see `store.rs`): `insert`,
//! `get`, `get_mut`, `get_disjoint_mut`, `get_pair_mut`, `remove`,
//! `contains`, `len`, `iter`, `iter_mut`, `values`, `values_mut`, `retain`,
//! `drain`, `reserve_handles`, and the typed views `store` / `store_mut`.
//!
//! A handle carries the manager's id, the slot's index and its tag — the
//! store's number and the slot's generation — 16 bytes; every call checks
//! all of them, so a removed, reset or foreign handle is an `Err`, never
//! undefined behaviour, also after its slot was reused. A handle is made
//! only by an insert of its type into its manager (or checked by
//! `handle_from_bits`), so its store number names its type's store: stores
//! are numbered per manager and never renumbered or removed, and ids are
//! never shared by two managers or by a manager before and after a reset.

use core::any::TypeId;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::iter::FusedIterator;
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::pool_box::alloc_failed;
use crate::size_class::SizeClasses;
use crate::store::{RawStore, SlotOf, STORE_SHIFT};
use crate::{Block, Error, MemoryManager};

/// A checked key to a `T` owned by a [`MemoryManager`], from
/// [`MemoryManager::insert`].
///
/// 16 bytes of plain data — `Copy`, `Eq`, `Ord`, `Hash`, `Send` and `Sync`
/// whatever `T` is — that borrows nothing, so a `World` can own its manager
/// and its handles side by side. Every use goes through the manager and is
/// checked: a handle whose value was removed is [`Error::Removed`] (also
/// after its index holds a new value), one from before a
/// [`reset`](MemoryManager::reset) is [`Error::FreedByReset`], and one of
/// another manager is [`Error::ForeignBlock`].
///
/// # Examples
///
/// ```
/// use memory_mgr::{Error, Handle, MemoryManager};
///
/// struct World {
///     mm: MemoryManager,
///     names: Vec<Handle<String>>,
/// }
///
/// let mut world = World { mm: MemoryManager::new(), names: Vec::new() };
/// let h = world.mm.insert(String::from("ada"));
/// world.names.push(h);
/// world.mm.get_mut(h)?.push_str(" lovelace");
/// assert_eq!(world.mm.get(h)?, "ada lovelace");
/// assert_eq!(world.mm.remove(h)?, "ada lovelace");
/// assert_eq!(world.mm.get(h), Err(Error::Removed));
/// assert_eq!(size_of::<Handle<String>>(), 16);
/// # Ok::<(), Error>(())
/// ```
///
/// The manager owns the value, and is `Send`: a value that is not `Send`
/// cannot go in.
///
/// ```compile_fail
/// let mm = memory_mgr::MemoryManager::new();
/// let h = mm.insert(std::rc::Rc::new(1));
/// ```
///
/// Nor one that borrows (a reset or the manager's drop runs its
/// destructor, later):
///
/// ```compile_fail
/// let mm = memory_mgr::MemoryManager::new();
/// let local = String::from("x");
/// let h = mm.insert(&local);
/// ```
///
/// A reference from [`get`](MemoryManager::get) keeps the value from being
/// removed (or the manager from being reset) while it lives:
///
/// ```compile_fail
/// let mut mm = memory_mgr::MemoryManager::new();
/// let h = mm.insert(String::from("x"));
/// let r = mm.get(h).unwrap();
/// mm.remove(h).unwrap();
/// println!("{r}");
/// ```
///
/// ```compile_fail
/// let mut mm = memory_mgr::MemoryManager::new();
/// let h = mm.insert(1u32);
/// let r = mm.get(h).unwrap();
/// *mm.get_mut(h).unwrap() += 1;
/// println!("{r}");
/// ```
///
/// A handle is invariant in `T`: a `Handle<&'static str>` is not a
/// `Handle<&'a str>` (through which a short borrow could be stored and read
/// back as `'static`).
///
/// ```compile_fail
/// use memory_mgr::{Handle, MemoryManager};
/// fn shorten<'a>(h: Handle<&'static str>) -> Handle<&'a str> {
///     h
/// }
/// ```
///
/// And a handle is typed: it reads only what was put in.
///
/// ```compile_fail
/// let mm = memory_mgr::MemoryManager::new();
/// let h = mm.insert(1u32);
/// let x: &u64 = mm.get(h).unwrap();
/// ```
pub struct Handle<T> {
    raw: Block,
    /// Names the value's type without owning one: `Send`, `Sync` and
    /// `Copy` whatever `T` is (the manager owns the value), and invariant
    /// in `T`: `get_mut` hands out a `&mut T`, so a `Handle<&'static str>`
    /// seen as a `Handle<&'a str>` could store a short borrow where a
    /// `'static` one is read back (as `&mut T` is invariant for the same
    /// reason).
    _value: PhantomData<fn(T) -> T>,
}

static_assertions::assert_eq_size!(Handle<alloc::string::String>, [u64; 2]);
static_assertions::assert_impl_all!(Handle<core::cell::Cell<u8>>: Copy, Send, Sync, Eq, Ord, Hash);

impl<T> Handle<T> {
    /// The handle as 128 bits, for a format of your own; a manager takes it
    /// back, checked, with
    /// [`handle_from_bits`](MemoryManager::handle_from_bits).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let h = mm.insert(7u8);
    /// let bits: u128 = h.to_bits();
    /// assert_eq!(mm.handle_from_bits::<u8>(bits), Ok(h));
    /// assert!(mm.handle_from_bits::<u16>(bits).is_err()); // another type
    /// ```
    #[must_use]
    pub fn to_bits(self) -> u128 {
        (u128::from(self.raw.owner) << 64)
            | (u128::from(self.raw.generation) << 32)
            | u128::from(self.raw.slot)
    }

    /// The slot's index in its store.
    fn index(self) -> u32 {
        self.raw.slot
    }

    /// The store's number and the slot's generation.
    fn tag(self) -> u32 {
        self.raw.generation
    }

    /// A handle of manager id `owner` to slot `index` with `tag`. The
    /// tag's store must be `T`'s store of the manager with that id (`find`
    /// reads the store unchecked).
    #[cfg(feature = "serde")]
    pub(crate) fn from_parts(owner: u64, index: u32, tag: u32) -> Self {
        Self::new(owner, index, tag)
    }

    fn new(owner: u64, index: u32, tag: u32) -> Self {
        Handle {
            raw: Block {
                owner,
                generation: tag,
                slot: index,
            },
            _value: PhantomData,
        }
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Handle<T> {}

impl<T> PartialEq for Handle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<T> Eq for Handle<T> {}

impl<T> PartialOrd for Handle<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// By manager id, then slot index, then tag: handles of one manager sort
/// by their slots (a `BTreeMap` key, a stable order for a save file).
impl<T> Ord for Handle<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.raw.owner, self.raw.slot, self.raw.generation).cmp(&(
            other.raw.owner,
            other.raw.slot,
            other.raw.generation,
        ))
    }
}

impl<T> Hash for Handle<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("type", &core::any::type_name::<T>())
            .field("index", &self.raw.slot)
            .field(
                "generation",
                &(self.raw.generation & ((1 << STORE_SHIFT) - 1)),
            )
            .field("owner", &self.raw.owner)
            .finish()
    }
}

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

/// The error for a handle of another manager id, out of line: the hot
/// paths keep no copy of the handle for it.
#[cold]
#[inline(never)]
fn not_ours(blocks: &crate::checked::BlockHeap, raw: Block) -> Error {
    blocks.not_ours(raw)
}

/// The slot of live handle `h` in `store` (its type's), checked by tag.
///
/// Equal tags mean a live slot because a handle's tag is odd (a live
/// generation) wherever a handle could name a slot: an insert and the
/// iterators make handles from live tags, `handle_from_bits` refuses an
/// even tag, and a handle deserialized stale (even) has index `u32::MAX`,
/// which no slot has (`add_page` stops below it).
#[inline(always)]
fn find_in<T: 'static>(store: &RawStore, h: Handle<T>) -> Result<NonNull<u8>, Error> {
    let slot = store
        .slot(h.index(), SlotOf::<T>::SLOT)
        .ok_or(Error::Removed)?;
    // SAFETY: a slot below `len`.
    if unsafe { RawStore::tag(slot) } != h.tag() {
        return Err(Error::Removed);
    }
    debug_assert!(h.tag() & 1 == 1, "a handle that names a slot is live");
    Ok(slot)
}

/// The value in `slot` of a store of `T`.
#[inline(always)]
fn value_in<T: 'static>(slot: NonNull<u8>) -> NonNull<T> {
    RawStore::value_of(slot, SlotOf::<T>::VALUE).cast()
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
    /// mm.reserve_handles::<String>(1000)?;
    /// let reserved = mm.stats().reserved_bytes();
    /// let names: Vec<_> = (0..1000).map(|i| mm.insert(i.to_string())).collect();
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
        Iter {
            raw: Walk::new(self.stores().find::<T>(), self.blocks().id()),
            _values: PhantomData,
        }
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
        IterMut {
            raw: Walk::new(self.stores().find::<T>(), self.blocks().id()),
            _values: PhantomData,
        }
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
        Drain {
            raw: Walk::new(self.stores().find::<T>(), self.blocks().id()),
            _values: PhantomData,
        }
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
        Store {
            stores: Some(self.stores()),
            store: core::cell::Cell::new(self.stores().find::<T>()),
            id: self.blocks().id(),
            not_ours: Some(self.blocks()),
            _values: PhantomData,
        }
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
        StoreMut {
            view: self.store(),
            _values: PhantomData,
        }
    }
}

/// A shared view of one type's store, from [`MemoryManager::store`].
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
    not_ours: Option<&'a crate::checked::BlockHeap>,
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

    /// The value of `handle`, as [`MemoryManager::get`].
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::get`].
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

    /// Every value with its handle, as [`MemoryManager::iter`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// mm.insert(3u8);
    /// assert_eq!(mm.store::<u8>().iter().count(), 1);
    /// ```
    pub fn iter(&self) -> Iter<'a, T> {
        Iter {
            raw: Walk::new(self.raw(), self.id),
            _values: PhantomData,
        }
    }
}

/// A mutable view of one type's store, from [`MemoryManager::store_mut`].
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

impl<T: 'static> StoreMut<'_, T> {
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
    /// As [`MemoryManager::get`].
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
    /// As [`MemoryManager::get`].
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

    /// Moves the value of `handle` out, as [`MemoryManager::remove`].
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::remove`].
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
        IterMut {
            raw: Walk::new(self.view.raw(), self.view.id),
            _values: PhantomData,
        }
    }
}

/// A walk over a store's live slots, a page's run at a time.
///
/// The run's slots are read between calls: its page stays live, because a
/// store's pages are given back only by a trim of a store with no live
/// value, and a walk stops inside a run only to hand out a live value,
/// whose store then keeps at least that one until the walk's borrow of the
/// manager ends (removing needs `&mut`; a drain's borrow is `&mut`).
struct Walk<'a> {
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
    fn new(store: Option<&'a RawStore>, id: u64) -> Self {
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
    fn next_live(&mut self) -> Option<(u32, u32, NonNull<u8>)> {
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

/// The `T`s behind handles, with their handles: [`MemoryManager::iter`].
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

/// The `T`s behind handles, mutably: [`MemoryManager::iter_mut`].
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

/// The `T`s taken out of the manager: [`MemoryManager::drain`].
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
