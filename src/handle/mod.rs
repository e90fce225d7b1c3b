//! `Handle<T>`: a typed, checked, copyable key to a value the manager owns;
//! the typed views of a store ([`views`]: `Store`, `StoreMut`) and its
//! iterators ([`iter`]). The manager's methods over its stores (`insert`,
//! `get`, `remove`, `iter`, `retain`, …) are in `manager/handles.rs`.
//!
//! A handle carries the manager's id, the slot's index and its tag — the
//! store's number and the slot's generation — 16 bytes; every call checks
//! all of them, so a removed, reset or foreign handle is an `Err`, never
//! undefined behaviour, also after its slot was reused. A handle is made
//! only by an insert of its type into its manager (or checked by
//! `handle_from_bits`), so its store number names its type's store: stores
//! are numbered per manager and never renumbered or removed, and ids are
//! never shared by two managers or by a manager before and after a reset.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::store::{RawStore, SlotOf, STORE_SHIFT};
#[cfg(doc)] // (for the docs' links)
use crate::MemoryManager;
use crate::{Block, Error};

mod iter;
mod views;

pub(crate) use iter::Walk;
pub use iter::{Drain, Iter, IterMut};
pub use views::{Store, StoreMut};

/// A checked key to a `T` owned by a [`MemoryManager`], from
/// [`MemoryManager::insert`](crate::MemoryManager::insert).
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
    pub(crate) raw: Block,
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
    pub(crate) fn index(self) -> u32 {
        self.raw.slot
    }

    /// The store's number and the slot's generation.
    pub(crate) fn tag(self) -> u32 {
        self.raw.generation
    }

    /// A handle of manager id `owner` to slot `index` with `tag`. The
    /// tag's store must be `T`'s store of the manager with that id (`find`
    /// reads the store unchecked).
    #[cfg(feature = "serde")]
    pub(crate) fn from_parts(owner: u64, index: u32, tag: u32) -> Self {
        Self::new(owner, index, tag)
    }

    pub(crate) fn new(owner: u64, index: u32, tag: u32) -> Self {
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

/// The error for a handle of another manager id, out of line: the hot
/// paths keep no copy of the handle for it.
#[cold]
#[inline(never)]
pub(crate) fn not_ours(blocks: &crate::checked::CheckedBlocks, raw: Block) -> Error {
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
pub(crate) fn find_in<T: 'static>(store: &RawStore, h: Handle<T>) -> Result<NonNull<u8>, Error> {
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
pub(crate) fn value_in<T: 'static>(slot: NonNull<u8>) -> NonNull<T> {
    RawStore::value_of(slot, SlotOf::<T>::VALUE).cast()
}
