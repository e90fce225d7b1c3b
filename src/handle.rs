//! `Handle<T>`: a typed, checked, copyable key to a value the manager owns.
//!
//! A handle is a [`Block`] with a type: the value lives in a block of the
//! manager's checked pools (or its system table, above the largest class),
//! named by the same 16 bytes — manager id, slot, generation — and checked
//! the same way on every call, so a removed, reset or foreign handle is an
//! `Err`, never undefined behaviour, also after its slot was reused. The
//! manager owns the value: [`MemoryManager::remove`] moves it out, and a
//! reset or the manager's drop runs the destructors of the values still in
//! it.
//!
//! Every value carries its `TypeId`, checked on each access (see
//! [`Stored`]). A value with a destructor keeps, at the start of its block,
//! the function that drops it (a [`DropFn`]), and its slot's generation is
//! *tagged* (see `pool::live_after`): that is how a reset finds and drops
//! values whose type it does not know.

use core::alloc::Layout;
use core::any::TypeId;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::mem::{align_of, needs_drop, offset_of, size_of};
use core::ptr::{self, NonNull};

use crate::checked::{DropFn, Found};
use crate::pool::{DROP_VALUE, VALUE};
use crate::pool_box::alloc_failed;
use crate::size_class::SizeClasses;
use crate::{Block, Error, MemoryManager};

/// A checked key to a `T` owned by a [`MemoryManager`], from
/// [`MemoryManager::insert`].
///
/// 16 bytes of plain data — `Copy`, `Eq`, `Hash`, `Send` and `Sync`
/// whatever `T` is — that borrows nothing, so a `World` can own its manager
/// and its handles side by side. Every use goes through the manager and is
/// checked: a handle whose value was removed is [`Error::Removed`] (also
/// after its slot holds a new value), one from before a
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
static_assertions::assert_impl_all!(Handle<core::cell::Cell<u8>>: Copy, Send, Sync, Eq, Hash);

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

impl<T> Hash for Handle<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("type", &core::any::type_name::<T>())
            .field("slot", &self.raw.slot)
            .field("generation", &self.raw.generation)
            .field("owner", &self.raw.owner)
            .finish()
    }
}

/// A value without a destructor, as its block holds it: its type first.
#[repr(C)]
struct Plain<T> {
    ty: TypeId,
    value: T,
}

/// A value with a destructor: the function that drops it, its type, the
/// value. The function is at the start of the block, where a reset finds
/// it (`checked::DropFn`); the type is at the same offset for every `T`.
#[repr(C)]
struct WithDrop<T> {
    drop: DropFn,
    ty: TypeId,
    value: T,
}

/// How a `T` is stored in its block.
///
/// Every value carries its `TypeId`, checked on every access: a slot's
/// generation is 32 bits, so a handle kept while its slot is reused 2^29
/// times would match again, and the slot may then hold a value of another
/// type of the same size class. The generation's kind bits (see
/// `pool::live_after`) keep such a handle from ever matching a `Block` or
/// a value of the other kind; the type check covers the rest, so a stale
/// handle reads only a `T` — the wrong one at worst, never another type.
struct Stored<T>(PhantomData<T>);

impl<T: 'static> Stored<T> {
    /// Whether the block starts with a [`DropFn`] (and the slot is tagged).
    const TAGGED: bool = needs_drop::<T>();
    /// What the slot holds, as its generation says.
    const KIND: u32 = if Self::TAGGED { DROP_VALUE } else { VALUE };
    /// Where the value's `TypeId` is in its block: the same for every type
    /// of its kind.
    const TY_OFFSET: usize = if Self::TAGGED {
        offset_of!(WithDrop<T>, ty)
    } else {
        offset_of!(Plain<T>, ty)
    };
    /// Where the value starts in its block.
    const OFFSET: usize = if Self::TAGGED {
        offset_of!(WithDrop<T>, value)
    } else {
        offset_of!(Plain<T>, value)
    };
    /// What the block must hold.
    const LAYOUT: Layout = if Self::TAGGED {
        Layout::new::<WithDrop<T>>()
    } else {
        Layout::new::<Plain<T>>()
    };

    /// Whether `block` holds a `T`.
    ///
    /// # Safety
    ///
    /// `block` must be the block of a live slot of kind `KIND`.
    #[inline(always)]
    unsafe fn holds(block: NonNull<u8>) -> bool {
        // SAFETY: every value of this kind has its `TypeId` at
        // `TY_OFFSET`, written when it was inserted (the caller's
        // guarantee); unaligned reads need no more.
        unsafe { block.add(Self::TY_OFFSET).cast::<TypeId>().read() == TypeId::of::<T>() }
    }

    /// The class that serves it in table `C`, if any: a constant.
    const fn class<C: SizeClasses>() -> Option<usize> {
        if cfg!(feature = "pass-through") {
            None
        } else {
            C::TABLE.class_for_layout(Self::LAYOUT.size(), Self::LAYOUT.align())
        }
    }

    /// The value in `block`.
    ///
    /// # Safety
    ///
    /// `block` must be a block of at least `LAYOUT`, aligned to it.
    #[inline(always)]
    unsafe fn value(block: NonNull<u8>) -> NonNull<T> {
        // SAFETY: `OFFSET` is inside `LAYOUT` (caller).
        unsafe { block.add(Self::OFFSET).cast() }
    }

    /// Drops the `T` in `block`: the [`DropFn`] of a tagged block.
    ///
    /// # Safety
    ///
    /// `block` must hold a live `T` as `Stored<T>` lays it out, never used
    /// afterwards.
    unsafe fn drop_in(block: NonNull<u8>) {
        // SAFETY: the caller's guarantee.
        unsafe { ptr::drop_in_place(Self::value(block).as_ptr()) }
    }
}

impl<C: SizeClasses> MemoryManager<C> {
    /// Finds live handle value `handle`: its class's pool is a constant of
    /// `T`; the slot's generation must match and its value be a `T`.
    #[inline(always)]
    fn find<T: 'static>(&self, handle: Handle<T>) -> Result<Found<'_>, Error> {
        let (blocks, heap) = (self.blocks(), self.heap());
        let found = match const { Stored::<T>::class::<C>() } {
            Some(class) => blocks.find_value(
                Some(heap.checked_pool(class)),
                C::TABLE.size(class),
                handle.raw,
            ),
            None => blocks.find_value(None, 0, handle.raw),
        };
        match found {
            // SAFETY: the slot is live with the handle's generation, whose
            // kind is `T`'s (only `try_insert::<T>` made it).
            Some(found) if unsafe { Stored::<T>::holds(found.ptr) } => Ok(found),
            _ => Err(blocks.handle_error(heap.checked(), handle.raw)),
        }
    }
}

/// # Handles
///
/// Values the manager owns, reached through checked [`Handle`]s: a
/// slotmap-like store in the same pools as everything else (stats,
/// budgets, `reserve_blocks`, `trim` and `reset` cover them).
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
    /// As [`alloc_block`](Self::alloc_block): [`Error::OutOfMemory`],
    /// [`Error::BudgetExceeded`].
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let mm = MemoryManager::builder().budget(4096).build()?;
    /// assert!(matches!(mm.try_insert([0u8; 100]), Err(Error::BudgetExceeded { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn try_insert<T: Send + 'static>(&self, value: T) -> Result<Handle<T>, Error> {
        let (kind, layout) = (Stored::<T>::KIND, Stored::<T>::LAYOUT);
        let blocks = self.blocks();
        let heap = self.heap();
        // SAFETY: the `DropFn` of a tagged block, and the value, are
        // written below, before any other call to the manager.
        let (raw, block) = unsafe {
            match const { Stored::<T>::class::<C>() } {
                Some(class) => blocks.alloc_value(heap.checked_pool(class), class, kind),
                None => blocks.alloc_system_value(
                    layout.size(),
                    layout.align().max(8),
                    heap.fallback(),
                    kind,
                ),
            }
        }?;
        // SAFETY: the block is ours, at least `layout` and aligned to it.
        unsafe {
            if Stored::<T>::TAGGED {
                block.cast::<DropFn>().write(Stored::<T>::drop_in as DropFn);
            }
            block
                .add(Stored::<T>::TY_OFFSET)
                .cast::<TypeId>()
                .write(TypeId::of::<T>());
            Stored::<T>::value(block).write(value);
        }
        Ok(Handle {
            raw,
            _value: PhantomData,
        })
    }

    /// Grows the pool that holds `T` values behind handles so that
    /// `additional` more [`insert`](Self::insert)s of a `T` need no new
    /// memory (a value with a destructor takes a word more than `T`, so
    /// its class may differ from a `PoolBox<T>`'s: this reserves the right
    /// one).
    ///
    /// # Errors
    ///
    /// As [`reserve`](Self::reserve): [`Error::NotPooled`] if such values
    /// are above every class.
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
        let layout = Stored::<T>::LAYOUT;
        self.heap()
            .reserve(layout.size(), layout.align(), true, additional)
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
        let block = self.find(handle)?.ptr;
        // SAFETY: the handle is live (checked), so the block holds its `T`
        // (only `try_insert::<T>` makes a `Handle<T>`); it stays there while
        // `&self` is borrowed: removing, resetting and dropping need `&mut`.
        Ok(unsafe { Stored::<T>::value(block).as_ref() })
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
        let block = self.find(handle)?.ptr;
        // SAFETY: as in `get`; `&mut self` makes this the only reference to
        // any value of the manager.
        Ok(unsafe { Stored::<T>::value(block).as_mut() })
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
            let block = self.find(*h)?.ptr;
            // SAFETY: as in `get`.
            let value = unsafe { Stored::<T>::value(block) };
            if values[..i].contains(&value) {
                return Err(Error::DuplicateHandle);
            }
            values[i] = value;
        }
        // SAFETY: each is a live `T` of this manager (as in `get`), at
        // distinct blocks (checked), so no two references overlap; `&mut
        // self` excludes every other reference for their lifetime.
        Ok(values.map(|mut v| unsafe { v.as_mut() }))
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
        let found = self.find(handle)?;
        // SAFETY: the block holds the live `T` (as in `get`); it is moved
        // out, and the block freed with nothing in between and not used
        // again.
        unsafe {
            let value = Stored::<T>::value(found.ptr).read();
            self.blocks().free_value(
                found,
                handle.raw,
                self.heap().fallback(),
                Stored::<T>::TAGGED,
            );
            Ok(value)
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
}

const _: () = assert!(size_of::<DropFn>() == size_of::<usize>() && align_of::<DropFn>() <= 8);

#[cfg(test)]
mod tests {
    use crate::pool::{live_after, BLOCK, DROP_VALUE, VALUE};

    #[test]
    fn live_generations_say_what_the_slot_holds() {
        for old in [0u32, 1, 2, 6, 7, 8, u32::MAX - 1, u32::MAX] {
            for kind in [BLOCK, VALUE, DROP_VALUE] {
                let g = live_after(old, kind);
                assert_eq!(g & 7, kind, "{old} {kind}");
                assert!((1..=8).contains(&g.wrapping_sub(old)), "{old} {kind}");
            }
        }
    }

    /// The review's case: a handle kept while its slot is reused 2^29
    /// times matches the slot again (32-bit generations), now holding a
    /// value of another type of the same class. Its `TypeId` refuses it.
    #[cfg(not(feature = "pass-through"))]
    #[test]
    fn a_stale_handle_that_matches_again_never_reads_another_type() {
        use crate::block::NUMBER_MASK;
        use crate::{Error, MemoryManager};
        let mut mm = MemoryManager::new();
        let stale = mm.insert::<&'static str>("hello");
        mm.remove(stale).unwrap();
        // As if the slot had been reused 2^29 times: its next value gets
        // the stale handle's generation.
        let class = (stale.raw.slot >> crate::block::NUMBER_BITS) as usize;
        let number = stale.raw.slot & NUMBER_MASK;
        // SAFETY: the slot was handed out; its chunk is live.
        unsafe {
            mm.heap()
                .checked_pool(class)
                .set_generation(number, stale.raw.generation.wrapping_sub(1));
        }
        let other = mm.insert([0xdead_usize, 5]);
        assert_eq!(
            (other.raw.slot, other.raw.generation),
            (stale.raw.slot, stale.raw.generation),
            "the same slot and generation"
        );
        assert_eq!(mm.get(stale), Err(Error::Removed));
        assert_eq!(mm.get_mut(stale), Err(Error::Removed));
        assert_eq!(mm.remove(stale), Err(Error::Removed));
        assert!(!mm.contains(stale));
        assert_eq!(mm.get(other), Ok(&[0xdead, 5]));
    }
}
