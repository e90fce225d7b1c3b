//! `Handle<T>`: a typed, checked, copyable key to a value the manager owns.
//!
//! The manager keeps a table of handles (a [`HandleTable`], like a slotmap's
//! slots): one entry per handle index, with the generation the index is at
//! and the address of the value. The value itself lives in the size-class
//! pools like a box's (above the largest class, in the large path), so the
//! stats, budgets, `reserve`, `trim` and `reset` cover it. A handle carries
//! the manager's id, the index and the generation — 16 bytes — and every
//! call checks all three, so a removed, reset or foreign handle is an
//! `Err`, never undefined behaviour, also after its index was reused.
//!
//! Exactness: an entry's generation only moves forward (odd while live),
//! and an index whose generation would wrap is retired instead of reused,
//! so no (index, generation) pair is ever handed out twice under one id —
//! a handle that matches names the very value `insert` made for it, of its
//! type. A reset clears the table and moves the manager to a new id.
//!
//! The manager owns the values: [`MemoryManager::remove`] moves one out,
//! and a reset or the manager's drop runs the destructors of those still in
//! it. A value with a destructor keeps, at the start of its block, the
//! function that drops and frees it (a [`DropFn`]); its entry says so.

use core::alloc::Layout;
use core::cell::Cell;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::mem::{align_of, needs_drop, offset_of, size_of};
use core::ptr::{self, NonNull};

use crate::budget::Budget;
use crate::heap::{dealloc_handle, Heap};
use crate::pool::grown;
use crate::pool_box::alloc_failed;
use crate::size_class::{route, Route, SizeClasses};
use crate::system::Source;
use crate::table::Table;
use crate::{Block, Error, MemoryManager};

/// A checked key to a `T` owned by a [`MemoryManager`], from
/// [`MemoryManager::insert`].
///
/// 16 bytes of plain data — `Copy`, `Eq`, `Hash`, `Send` and `Sync`
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
            .field("index", &self.raw.slot)
            .field("generation", &self.raw.generation)
            .field("owner", &self.raw.owner)
            .finish()
    }
}

/// What a handle value with a destructor keeps at the start of its block:
/// the function that drops it and frees the block.
type DropFn = unsafe fn(NonNull<u8>);

/// A value with a destructor, as its block holds it: the function that
/// drops it first, where a reset finds it without knowing the type.
#[repr(C)]
struct WithDrop<T> {
    drop: DropFn,
    value: T,
}

/// How a `T` is stored in its block (in table `C`'s pools).
struct Stored<T, C>(PhantomData<(T, C)>);

impl<T, C: SizeClasses> Stored<T, C> {
    /// Whether the block starts with a [`DropFn`].
    const DROPS: bool = needs_drop::<T>();
    /// Where the value starts in its block.
    const OFFSET: usize = if Self::DROPS {
        offset_of!(WithDrop<T>, value)
    } else {
        0
    };
    /// What the block must hold.
    const LAYOUT: Layout = if Self::DROPS {
        Layout::new::<WithDrop<T>>()
    } else {
        Layout::new::<T>()
    };
    /// Whether the value is a large allocation (for the stats).
    const LARGE: bool = matches!(
        route(C::TABLE, Self::LAYOUT.size(), Self::LAYOUT.align()),
        Route::System
    );
    /// Its entry's flags.
    const FLAGS: u32 = if Self::DROPS { DROPS } else { 0 } | if Self::LARGE { LARGE } else { 0 };

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

    /// Drops the `T` in `block` and frees the block: the [`DropFn`] of a
    /// value with a destructor. The block is freed also if the destructor
    /// panics.
    ///
    /// # Safety
    ///
    /// `block` must hold a live `T` as `Stored<T, C>` lays it out, from
    /// [`Heap::alloc_handle`] of a live manager with table `C`, never used
    /// afterwards.
    unsafe fn drop_and_free(block: NonNull<u8>) {
        /// Frees the block on drop, after the value's destructor or while it
        /// unwinds.
        struct Free<T, C: SizeClasses>(NonNull<u8>, PhantomData<(T, C)>);
        impl<T, C: SizeClasses> Drop for Free<T, C> {
            fn drop(&mut self) {
                // SAFETY: the block of `drop_and_free`'s caller, freed once.
                unsafe { dealloc_handle::<C>(self.0, Stored::<T, C>::LAYOUT) }
            }
        }
        let _free = Free::<T, C>(block, PhantomData);
        // SAFETY: the caller's guarantee.
        unsafe { ptr::drop_in_place(Self::value(block).as_ptr()) }
    }
}

/// One handle index's entry in the table.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The value's block while live (dangling for a zero-sized value).
    value: NonNull<u8>,
    /// Even while free, odd while live; moved by each insert and remove.
    generation: u32,
    /// `DROPS` and `LARGE` bits of the live value.
    flags: u32,
}

/// `Entry::flags`: the block starts with a [`DropFn`].
const DROPS: u32 = 1;
/// `Entry::flags`: the value is a large allocation.
const LARGE: u32 = 2;

/// Counts one more (`up`) or one fewer in `count`, if `yes`.
#[inline(always)]
fn bump(count: &Cell<usize>, yes: bool, up: bool) {
    let n = usize::from(yes);
    count.set(if up { count.get() + n } else { count.get() - n });
}

/// Metadata bytes a place in the table costs: the entry, and its place in
/// the list of free indices (both grow together, to exactly `cap`).
const PLACE_BYTES: usize = size_of::<Entry>() + size_of::<u32>();

/// A manager's handles: the entries, by index, and the free indices.
///
/// Invariant, relied on by the `unsafe` blocks of this module:
/// - A live entry (odd generation) holds the block its value was written
///   to by `try_insert::<T>` — a `Stored<T, C>` of the manager's table `C`
///   — and a handle carrying its index and generation (with the manager's
///   current id) was made by that call, for that `T`: a generation only
///   moves forward, and an index whose generation would wrap is retired.
/// - `free` lists each free, unretired index once; `entries` and `free`
///   have room for `cap` places, charged to the budget.
/// - Every entry's generation is at or past `floor`, which is at or past
///   the generation of every entry dropped since the last reset (by a
///   trim); generations stay below `u32::MAX - 1` (retired at it).
/// - `live`, `droppable` and `large` count the live entries, those with
///   `DROPS` and those with `LARGE`.
///
/// All access is through `&self` (`insert` takes `&self`). The entries
/// and free indices are [`Table`]s (the re-entrancy rule, see `table.rs`):
/// read and written by value, one step at a time, never across a call to
/// user code or to the global allocator (the program's code, which may
/// call this manager); only their growth allocates, with nothing borrowed,
/// and `try_fill` takes its index and fills it in one step. `free` grows
/// first, so it always has a place for every entry.
#[derive(Debug)]
pub(crate) struct HandleTable {
    entries: Table<Entry>,
    free: Table<u32>,
    live: Cell<usize>,
    droppable: Cell<usize>,
    large: Cell<usize>,
    /// The generation new entries start at (even): past every generation
    /// of the entries a trim dropped, so that no handle to one of those
    /// matches a new entry at its index.
    floor: Cell<u32>,
}

// SAFETY: the table owns its entries; the values they point to are the
// manager's (whose `Send` impl covers them: `T: Send`). It is not `Sync`
// (`Cell`s).
unsafe impl Send for HandleTable {}

/// The most places a table has: indices are `u32`, and the table's bytes
/// fit in `isize::MAX` (on 32-bit targets that is the tighter limit).
const MAX_PLACES: usize = {
    let by_bytes = isize::MAX as usize / PLACE_BYTES;
    if by_bytes < u32::MAX as usize {
        by_bytes
    } else {
        u32::MAX as usize
    }
};

impl HandleTable {
    /// An empty table, its memory from `source`.
    pub(crate) fn new(source: Source) -> Self {
        HandleTable {
            entries: Table::new(source),
            free: Table::new(source),
            live: Cell::new(0),
            droppable: Cell::new(0),
            large: Cell::new(0),
            floor: Cell::new(0),
        }
    }

    /// Makes live a place for `value` — a free index, or the next place if
    /// the table has room — and returns its (index, generation); `None` if
    /// the table is full (then [`grow`](Self::grow) and try again). One
    /// step, no allocation.
    #[inline(always)]
    fn try_fill(&self, value: NonNull<u8>, flags: u32) -> Option<(u32, u32)> {
        let (index, generation) = match self.free.pop() {
            Some(i) => {
                let mut e = self.entries.get(i as usize)?;
                debug_assert!(e.generation & 1 == 0, "a free entry");
                e.generation += 1;
                e.value = value;
                e.flags = flags;
                self.entries.set(i as usize, e);
                (i, e.generation)
            }
            None => {
                // The floor is even: the new entry's first live generation.
                let generation = self.floor.get() + 1;
                let entry = Entry {
                    value,
                    generation,
                    flags,
                };
                (self.entries.push(entry).ok()? as u32, generation)
            }
        };
        self.live.set(self.live.get() + 1);
        bump(&self.droppable, flags & DROPS != 0, true);
        bump(&self.large, flags & LARGE != 0, true);
        Some((index, generation))
    }

    /// Room for `additional` more places than the free ones, charged to
    /// `budget`. The tables grow with no borrow held (`Table::grow`): the
    /// global allocator is the program's code, and may call this manager
    /// (then the table is grown again or found grown, and this looks
    /// again).
    #[cold]
    #[inline(never)]
    fn grow(&self, budget: &Budget, additional: usize) -> Result<(), Error> {
        loop {
            let (len, cap) = (self.entries.len(), self.entries.capacity());
            let room = self.free.len() + (cap - len);
            if room >= additional {
                return Ok(());
            }
            let too_many = Error::OutOfMemory {
                size: usize::MAX,
                align: 8,
            };
            let want = len
                .checked_add(additional - room)
                .filter(|&w| w <= MAX_PLACES)
                .ok_or(too_many)?;
            let new_cap = grown(cap, MAX_PLACES).max(want);
            let oom = |e| match e {
                Error::OutOfMemory { .. } => Error::OutOfMemory {
                    size: new_cap * PLACE_BYTES,
                    align: 8,
                },
                e => e,
            };
            self.free.grow(new_cap, budget).map_err(oom)?;
            self.entries.grow(new_cap, budget).map_err(oom)?;
        }
    }

    /// The value of live entry `index` at `generation`.
    #[inline(always)]
    fn find(&self, index: u32, generation: u32) -> Option<NonNull<u8>> {
        debug_assert!(generation & 1 == 1, "a handle's generation is odd");
        match self.entries.get(index as usize) {
            Some(e) if e.generation == generation => Some(e.value),
            _ => None,
        }
    }

    /// The value of live entry `index` at `generation`, and frees the
    /// entry (the caller moves the value out): [`take`](Self::take) after
    /// [`find`](Self::find), with one look-up. `flags` are the entry's (a
    /// constant of the value's type).
    #[inline(always)]
    fn find_and_take(&self, index: u32, generation: u32, flags: u32) -> Option<NonNull<u8>> {
        match self.entries.get(index as usize) {
            Some(e) if e.generation == generation => {
                debug_assert_eq!(e.flags, flags);
                self.free_entry(index, e);
                Some(e.value)
            }
            _ => None,
        }
    }

    /// Frees live entry `index` (its value moved out or dropped by the
    /// caller); returns it as it was.
    #[inline(always)]
    fn take(&self, index: u32) -> Entry {
        let entry = self.entries.get(index as usize).expect("a live entry");
        self.free_entry(index, entry);
        entry
    }

    /// The generation of live entry `index` (which is `e`) moves on, and
    /// the index goes on the free list unless its generation would wrap at
    /// the next insert (then the index is retired for good: 16 bytes per
    /// 2^31 reuses of one index).
    #[inline(always)]
    fn free_entry(&self, index: u32, mut e: Entry) {
        e.generation += 1;
        self.entries.set(index as usize, e);
        if e.generation < u32::MAX - 1 {
            // `free` has a place for every entry (see the type).
            let listed = self.free.push(index);
            debug_assert!(listed.is_ok());
        }
        self.live.set(self.live.get() - 1);
        bump(&self.droppable, e.flags & DROPS != 0, false);
        bump(&self.large, e.flags & LARGE != 0, false);
    }

    /// Runs the destructor of every live value that has one (each frees its
    /// block), and frees its entry; the values without one stay (a reset
    /// forgets them, a drop releases their chunks). A panicking destructor
    /// leaves the table consistent: its entry and block freed, the values
    /// not yet reached still live. O(1) when no such value is live, else
    /// O(entries).
    ///
    /// `&mut self`: the table is its manager's, which is borrowed mutably,
    /// so no reference to a value exists (they borrow the manager).
    pub(crate) fn drop_values(&mut self) {
        let mut index = 0;
        while self.droppable.get() > 0 {
            let Some(e) = self.entries.get(index) else {
                break;
            };
            if e.generation & 1 == 1 && e.flags & DROPS != 0 {
                let e = self.take(index as u32);
                // SAFETY: a live entry with `DROPS` holds a block that
                // starts with its value's `DropFn` (invariant), unreferenced
                // (`&mut self`); its entry is freed, so it is dropped once.
                // The destructor of a `T: 'static` value cannot reach the
                // manager, which is borrowed mutably.
                unsafe { (e.value.cast::<DropFn>().read())(e.value) };
            }
            index += 1;
        }
    }

    /// Forgets every entry (the manager's reset has dropped the values with
    /// destructors and freed every block) and keeps the table's room for
    /// what is inserted next, as the pools keep their chunks; the manager
    /// moves to a new id, so every handle made before is stale, and the
    /// generations start again.
    pub(crate) fn reset(&mut self) {
        self.entries.clear();
        self.free.clear();
        for count in [&self.live, &self.droppable, &self.large] {
            count.set(0);
        }
        self.floor.set(0);
    }

    /// Gives the table back to the system if no handle is live; returns the
    /// bytes released. Handles to the dropped entries stay stale: an index
    /// past the end is not found, and new entries start at the floor, past
    /// every generation dropped (all even: no entry is live). Kept instead
    /// when the floor would come within 2^16 of the end of the generations,
    /// so that new entries always have room to move. O(entries).
    pub(crate) fn trim(&self, budget: &Budget) -> usize {
        if self.live.get() > 0 || self.metadata() == 0 {
            return 0;
        }
        let newest = self.entries.iter().map(|e| e.generation).max().unwrap_or(0);
        let floor = newest.max(self.floor.get());
        if floor >= u32::MAX - (1 << 16) {
            return 0;
        }
        debug_assert!(floor % 2 == 0, "a free entry's generation is even");
        self.floor.set(floor);
        let bytes = self.entries.free() + self.free.free();
        budget.credit(bytes);
        bytes
    }

    /// Bytes of the table (its capacity, charged to the budget).
    pub(crate) fn metadata(&self) -> usize {
        self.entries.bytes() + self.free.bytes()
    }

    /// Live values above the largest class.
    pub(crate) fn large(&self) -> usize {
        self.large.get()
    }
}

impl<C: SizeClasses> MemoryManager<C> {
    /// The block of live handle `handle`, checked: the manager's id, then
    /// the entry's generation.
    #[inline(always)]
    fn find<T>(&self, handle: Handle<T>) -> Result<NonNull<u8>, Error> {
        if handle.raw.owner != self.blocks().id() {
            return Err(self.blocks().not_ours(handle.raw));
        }
        self.handles()
            .find(handle.raw.slot, handle.raw.generation)
            .ok_or(Error::Removed)
    }
}

/// # Handles
///
/// Values the manager owns, reached through checked [`Handle`]s: a
/// slotmap-like store in the same pools as everything else (stats,
/// budgets, `reserve_handles`, `trim` and `reset` cover them).
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
        let heap: &Heap<C> = self.heap();
        let table = self.handles();
        let block = heap.alloc_handle(Stored::<T, C>::LAYOUT)?;
        // SAFETY: the block is ours, at least `LAYOUT` and aligned to it.
        unsafe {
            if Stored::<T, C>::DROPS {
                block
                    .cast::<DropFn>()
                    .write(Stored::<T, C>::drop_and_free as DropFn);
            }
            Stored::<T, C>::value(block).write(value);
        }
        let (index, generation) = loop {
            if let Some(place) = table.try_fill(block, Stored::<T, C>::FLAGS) {
                break place;
            }
            if let Err(e) = table.grow(heap.budget(), 1) {
                // SAFETY: the block holds the value just written, in no
                // entry: moved back out once, the block freed once.
                let value = unsafe {
                    let value = Stored::<T, C>::value(block).read();
                    dealloc_handle::<C>(block, Stored::<T, C>::LAYOUT);
                    value
                };
                drop(value);
                return Err(e.refusing(Stored::<T, C>::LAYOUT.size(), self.name()));
            }
        };
        Ok(Handle {
            raw: Block {
                owner: self.blocks().id(),
                generation,
                slot: index,
            },
            _value: PhantomData,
        })
    }

    /// Grows the pool that holds `T` values behind handles, and the table
    /// of handles, so that `additional` more [`insert`](Self::insert)s of a
    /// `T` need no new memory (a value with a destructor takes a word more
    /// than `T`, so its class may differ from a `PoolBox<T>`'s: this
    /// reserves the right one).
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
        let layout = Stored::<T, C>::LAYOUT;
        if layout.size() > 0 {
            self.heap()
                .reserve(layout.size(), layout.align(), false, additional)?;
        }
        self.handles()
            .grow(self.heap().budget(), additional)
            .map_err(|e| e.refusing(layout.size(), self.name()))
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
        let block = self.find(handle)?;
        // SAFETY: the handle is live (checked), so the block holds the `T`
        // its insert wrote (`HandleTable` invariant); it stays there while
        // `&self` is borrowed: removing, resetting and dropping need `&mut`.
        Ok(unsafe { Stored::<T, C>::value(block).as_ref() })
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
        let block = self.find(handle)?;
        // SAFETY: as in `get`; `&mut self` makes this the only reference to
        // any value of the manager.
        Ok(unsafe { Stored::<T, C>::value(block).as_mut() })
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
            let block = self.find(*h)?;
            if handles[..i].iter().any(|o| o.raw.slot == h.raw.slot) {
                return Err(Error::DuplicateHandle);
            }
            // SAFETY: as in `get`.
            values[i] = unsafe { Stored::<T, C>::value(block) };
        }
        // SAFETY: each is a live `T` of this manager (as in `get`), of
        // distinct live entries (checked), each with its own block (or a
        // zero-sized value, which overlaps nothing), so no two references
        // overlap; `&mut self` excludes every other reference for their
        // lifetime.
        Ok(values.map(|mut v| unsafe { v.as_mut() }))
    }

    /// Moves the value of `handle` out of the manager; the handle is stale
    /// from then on (also once its index holds another value).
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
    /// let again = mm.insert(String::from("new")); // may reuse the index
    /// assert_eq!(mm.remove(h), Err(Error::Removed));
    /// assert_eq!(mm.get(again)?, "new");
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn remove<T: 'static>(&mut self, handle: Handle<T>) -> Result<T, Error> {
        if handle.raw.owner != self.blocks().id() {
            return Err(self.blocks().not_ours(handle.raw));
        }
        let block = self
            .handles()
            .find_and_take(
                handle.raw.slot,
                handle.raw.generation,
                Stored::<T, C>::FLAGS,
            )
            .ok_or(Error::Removed)?;
        // SAFETY: the block held the live `T` (as in `get`), whose entry is
        // now freed: it is moved out once, and the block freed once, with
        // nothing in between, and not used again.
        unsafe {
            let value = Stored::<T, C>::value(block).read();
            dealloc_handle::<C>(block, Stored::<T, C>::LAYOUT);
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
    use super::*;
    use alloc::string::String;

    /// An index whose generation would wrap is retired, not reused: no
    /// (index, generation) pair is handed out twice under one id.
    #[test]
    fn an_index_about_to_wrap_is_retired() {
        let mut mm = MemoryManager::new();
        let old = mm.insert(String::from("old"));
        mm.remove(old).unwrap();
        // As if index 0 had been reused 2^31 - 2 times.
        let table = &mm.handles().entries;
        table.set(
            0,
            Entry {
                generation: u32::MAX - 3,
                ..table.get(0).unwrap()
            },
        );
        let last = mm.insert(String::from("last")); // generation MAX - 2
        assert_eq!(last.raw.generation, u32::MAX - 2);
        mm.remove(last).unwrap(); // MAX - 1: retired
        let next = mm.insert([1u8; 3]);
        assert_ne!(next.raw.slot, last.raw.slot, "a fresh index");
        assert_eq!(mm.get(last), Err(Error::Removed));
        assert_eq!(mm.get(next), Ok(&[1, 1, 1]));
        assert_eq!(mm.handles().free.len(), 0);
    }
}
