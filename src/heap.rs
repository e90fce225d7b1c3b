//! The heap context and routing: the one place that turns a layout into a
//! class or the large path, and allocates, frees and resizes by layout.
//!
//! [`Heap`] owns a manager's pools and its large path; `PoolBox`, checked
//! `Block`s and the `Allocator` implementation are thin facades over the
//! functions here, and so is pass-through mode (every route is the large
//! path, see [`route`]). A typed value's route is a constant of its type.
//! (One free goes around it: a shared manager's, which finds the block's
//! pool from the block and asks only block-or-large of
//! [`side`](crate::size_class::side), in `shared/boxes.rs`.)

use core::alloc::Layout;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::{self, NonNull};

use crate::budget::Budget;
use crate::fill;
use crate::large::{self, HeapKind, HeapRecord};
use crate::pool::UNOWNED;
use crate::pool::{ChunkConfig, Pool};
use crate::size_class::{route, Route, SizeClasses};
use crate::source;
use crate::Error;

/// One manager's heap context: its pools, one per class of `C` (for boxes
/// and collections; checked blocks are in byte stores, see `checked.rs`),
/// at a fixed heap address, and its large path (the [`HeapRecord`], which
/// holds the budget, the chunk map and the registry too).
pub(crate) struct Heap<C: SizeClasses> {
    /// `C::TABLE.len()` pools, allocated in `try_new`, smallest class
    /// first.
    pools: NonNull<Pool>,
    /// Allocated in `try_new`.
    heap_record: NonNull<HeapRecord>,
    /// Invariant in `C`: a manager or box must never be seen with another
    /// class table, or a pooled block would be freed by the wrong route.
    _classes: PhantomData<fn(C) -> C>,
}

// SAFETY: `Heap` owns its pools, chunks and heap record counters outright;
// nothing in it is shared with another `Heap` or tied to a thread, so it may
// move to another thread. It is not `Sync`: the `Cell`s allow no concurrent use.
unsafe impl<C: SizeClasses> Send for Heap<C> {}

impl<C: SizeClasses> Heap<C> {
    /// One empty pool per class of `C`, for a `MemoryManager`.
    ///
    /// # Panics
    ///
    /// If the few hundred bytes of the pools' records cannot be had (as
    /// `Box::new` does, through `handle_alloc_error`).
    pub(crate) fn new(
        config: ChunkConfig,
        budget: Option<usize>,
        name: Option<&'static str>,
    ) -> Self {
        match Heap::try_new(config, budget, name, HeapKind::LOCAL, UNOWNED) {
            Some(heap) => heap,
            None => alloc::alloc::handle_alloc_error(Self::pools_layout()),
        }
    }

    /// The layout of the pools' array.
    fn pools_layout() -> Layout {
        match Layout::array::<Pool>(C::TABLE.len()) {
            Ok(l) => l,
            Err(_) => unreachable!("a class table has at most MAX_CLASSES classes"),
        }
    }

    /// Bytes of a heap's own records: its pools' array and its large
    /// path's record (what a shared manager charges per thread heap).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn own_bytes(large: bool) -> usize {
        Self::pools_layout().size() + HeapRecord::size(large)
    }

    /// One empty pool per class of `C`, of heap kind `kind` (where its
    /// memory comes from, a shared budget) owned by thread slot `thread_slot` (or
    /// [`UNOWNED`]); `None` if its records cannot be had from `kind.source`.
    /// Never panics and never calls the global allocator unless
    /// `kind.source` says so (for `Global`).
    pub(crate) fn try_new(
        config: ChunkConfig,
        budget: Option<usize>,
        name: Option<&'static str>,
        kind: HeapKind,
        thread_slot: u32,
    ) -> Option<Self> {
        let source = kind.source;
        // Freed after the pools (see `drop`).
        let heap_record = HeapRecord::create(budget, name, kind)?;
        let Some(pools) = source::alloc(source, Self::pools_layout()) else {
            // SAFETY: made just above, freed once, here.
            unsafe { HeapRecord::destroy(heap_record) };
            return None;
        };
        let pools = pools.cast::<Pool>();
        let sizes = C::TABLE.sizes();
        for (i, &size) in sizes.iter().enumerate() {
            // SAFETY: `sizes.len()` pools fit in the allocation, each written
            // once.
            unsafe {
                pools.add(i).write(Pool::new(
                    size,
                    config,
                    heap_record,
                    (thread_slot, i, kind.owner),
                ))
            };
        }
        Some(Heap {
            pools,
            heap_record,
            _classes: PhantomData,
        })
    }

    /// Gives up the heap as its pools' address (what a shared manager keeps
    /// per thread); [`Heap::from_raw`] takes it back.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn into_raw(self) -> NonNull<Pool> {
        let pools = self.pools;
        core::mem::forget(self);
        pools
    }

    /// The heap whose pools are at `pools`.
    ///
    /// # Safety
    ///
    /// `pools` must come from [`Heap::into_raw`] of a `Heap<C>`, not taken
    /// back since (each call makes an owner: drop at most one).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) unsafe fn from_raw(pools: NonNull<Pool>) -> Self {
        Heap {
            pools,
            // SAFETY: the first of the heap's live pools (caller).
            heap_record: unsafe { pools.as_ref() }.heap_record_ptr(),
            _classes: PhantomData,
        }
    }

    /// The manager's budget.
    #[inline]
    pub(crate) fn budget(&self) -> &Budget {
        &self.heap_record().budget
    }

    /// Frees every allocation at once: the pools keep their chunks as free
    /// capacity (no call to the system allocator), live typed system
    /// allocations go back to the system, and the large path keeps the
    /// freed ones it kept for reuse. O(pools) when nothing above the
    /// classes is live, plus the chunks used since each pool's last recycle.
    ///
    /// With `debug-fill`, returns the first free block found written after
    /// it was freed, for the caller to panic with when its reset is done.
    #[must_use]
    pub(crate) fn reset(&mut self) -> Option<fill::Written> {
        let mut written = None;
        for pool in self.iter() {
            // SAFETY: `&mut self` comes from `&mut MemoryManager`, so no
            // `PoolBox`, which borrows the manager, exists; a pointer from
            // `PoolBox::into_raw` may not be used after a reset (the contract
            // of `PoolBox::from_raw`).
            let w = unsafe { pool.recycle() };
            written = written.or(w);
        }
        // SAFETY: as above, no typed system allocation is used again.
        unsafe { crate::large::free_all(self.heap_record(), true) };
        written
    }

    /// Frees every chunk and typed system allocation, for drop.
    fn release(&mut self) {
        for pool in self.iter() {
            // SAFETY: `&mut self` in drop: nothing borrows the manager, and
            // nothing of it is used again.
            unsafe { pool.release_chunks() };
        }
        self.heap_record().chunks.clear(self.budget());
        // SAFETY: as above.
        unsafe { crate::large::free_all(self.heap_record(), false) };
    }

    /// The pool of class `class`.
    ///
    /// # Panics
    ///
    /// Panics if `class` is not a class of `C` (a constant check for a
    /// constant class).
    #[inline(always)]
    pub(crate) fn get(&self, class: usize) -> &Pool {
        assert!(class < C::TABLE.len(), "size class out of range");
        // SAFETY: there are `C::TABLE.len()` pools, alive as long as `self`.
        unsafe { Self::pool_at(self.pools, class) }
    }

    /// Pool `class` of the heap whose pools are at `pools` (what
    /// [`Heap::into_raw`] gave), without taking the heap back: a heap's
    /// pools are an array, one per class, smallest first.
    ///
    /// # Safety
    ///
    /// `pools` must be a live `Heap<C>`'s pools, and `class` a class of `C`.
    #[inline(always)]
    pub(crate) unsafe fn pool_at<'a>(pools: NonNull<Pool>, class: usize) -> &'a Pool {
        // SAFETY: the caller's guarantee: pool `class` of the array.
        unsafe { &*pools.as_ptr().add(class) }
    }

    /// The heap record counters.
    #[inline]
    pub(crate) fn heap_record(&self) -> &HeapRecord {
        // SAFETY: the heap record lives as long as `self`.
        unsafe { self.heap_record.as_ref() }
    }

    /// The plain pools, smallest class first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pool> + '_ {
        (0..C::TABLE.len()).map(|c| self.get(c))
    }
}

impl<C: SizeClasses> Drop for Heap<C> {
    fn drop(&mut self) {
        self.release();
        let source = self.heap_record().kind.source;
        let slice = ptr::slice_from_raw_parts_mut(self.pools.as_ptr(), C::TABLE.len());
        // SAFETY: both were allocated from `source` and written in `try_new`,
        // and are dropped and freed only here.
        unsafe {
            ptr::drop_in_place(slice);
            source::dealloc(source, self.pools.cast(), Self::pools_layout());
            HeapRecord::destroy(self.heap_record);
        }
    }
}

impl<C: SizeClasses> core::fmt::Debug for Heap<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The most bytes a reservation may ask for: more than this is more than a
/// 64-bit machine's address space holds (x86-64 and AArch64 map 2^48 bytes
/// at most, user and kernel together); `isize::MAX` on smaller targets.
const MAX_RESERVATION: usize = if usize::BITS >= 64 {
    1 << (48 % usize::BITS)
} else {
    isize::MAX as usize
};

/// Refuses a reservation of `additional` blocks of `block_size` bytes that
/// no system could ever give, before a single chunk is allocated for it:
/// more than `isize::MAX` bytes in all is a `LayoutOverflow` (as
/// `Vec::try_reserve`'s capacity overflow), more than [`MAX_RESERVATION`]
/// an `OutOfMemory`.
fn reservable(additional: usize, block_size: usize, align: usize) -> Result<(), Error> {
    let size = additional.saturating_mul(block_size);
    match additional.checked_mul(block_size) {
        Some(bytes) if bytes <= MAX_RESERVATION => Ok(()),
        Some(bytes) if bytes <= isize::MAX as usize => Err(Error::OutOfMemory { size, align }),
        _ => Err(Error::LayoutOverflow { size, align }),
    }
}

// ----- the dispatcher: the one place that decides pool or large path ------

/// What an allocation is for: the dispatcher's const parameter (as
/// mimalloc funnels every allocation through one function with flags). It
/// decides how a pool block is counted and which large path serves the
/// rest.
pub(crate) type For = u8;

/// A box's (typed values, slices, `Global`'s): a plain pool block, or a
/// typed system allocation found again from its footer.
pub(crate) const BOX: For = 0;

/// A collection's (the `Allocator` implementation): a pool block counted
/// apart from boxes, or a registered system allocation.
pub(crate) const COLLECTION: For = 1;

/// What is asked for: a layout known at run time, or one `T`'s, whose
/// route is a compile-time constant.
pub(crate) trait Request: Copy {
    /// The layout asked for.
    fn layout(self) -> Layout;
    /// Where it goes with class table `C`: the pool-or-large decision,
    /// made here alone (see [`route`]).
    fn route<C: SizeClasses>(self) -> Route;
}

impl Request for Layout {
    #[inline(always)]
    fn layout(self) -> Layout {
        self
    }

    #[inline(always)]
    fn route<C: SizeClasses>(self) -> Route {
        route(C::TABLE, self.size(), self.align())
    }
}

/// A layout routed already (by the caller, for the class table it
/// allocates with): the `Allocator`'s `allocate` routes once for the
/// allocation and its usable size.
#[cfg(feature = "allocator-api2")]
#[derive(Clone, Copy)]
pub(crate) struct Routed {
    layout: Layout,
    route: Route,
}

#[cfg(feature = "allocator-api2")]
impl Routed {
    /// `layout` with its route in class table `C`.
    #[inline(always)]
    pub(crate) fn new<C: SizeClasses>(layout: Layout) -> Self {
        Routed {
            layout,
            route: layout.route::<C>(),
        }
    }

    /// The usable size of an allocation of it: the whole block for a pool
    /// class, exactly the request otherwise.
    #[inline(always)]
    pub(crate) fn usable<C: SizeClasses>(self) -> usize {
        match self.route {
            Route::Pool(class) => C::TABLE.size(class),
            Route::Zero | Route::Large => self.layout.size(),
        }
    }
}

#[cfg(feature = "allocator-api2")]
impl Request for Routed {
    #[inline(always)]
    fn layout(self) -> Layout {
        self.layout
    }

    /// The route it was made with (for the same `C`).
    #[inline(always)]
    fn route<C: SizeClasses>(self) -> Route {
        self.route
    }
}

/// A request for one `T`: its class is a constant of `T`, so its
/// allocation is a pop from a known pool.
pub(crate) struct One<T>(PhantomData<fn() -> T>);

impl<T> One<T> {
    /// The request.
    pub(crate) const NEW: Self = One(PhantomData);
}

impl<T> Clone for One<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for One<T> {}

impl<T> Request for One<T> {
    #[inline(always)]
    fn layout(self) -> Layout {
        Layout::new::<T>()
    }

    #[inline(always)]
    fn route<C: SizeClasses>(self) -> Route {
        const { route(C::TABLE, size_of::<T>(), align_of::<T>()) }
    }
}

/// Where the dispatcher takes memory from: a manager's heap, a shared
/// manager (this thread's heap, the central heap for what is large), or the
/// manager that made an allocation.
pub(crate) trait Serve<C: SizeClasses> {
    /// A block of pool `class`, for `FOR`.
    fn class<const FOR: For>(&self, class: usize) -> Result<NonNull<u8>, Error>;

    /// A large allocation of `layout` (above every class, or any size in
    /// pass-through mode), for `FOR`.
    fn large<const FOR: For>(&self, layout: Layout) -> Result<NonNull<u8>, Error>;

    /// What a zero-sized request of `layout` gets: by default a dangling
    /// pointer aligned to `layout.align()`.
    #[inline(always)]
    fn zero(&self, layout: Layout) -> NonNull<u8> {
        dangling(layout)
    }
}

/// Where the dispatcher gives memory back to.
pub(crate) trait Release<C: SizeClasses> {
    /// Frees `ptr`, a block of pool `class`.
    ///
    /// # Safety
    ///
    /// `ptr` must be a live block of class `class` of a live manager that
    /// this side frees for, not used afterwards.
    unsafe fn class(&self, ptr: NonNull<u8>, class: usize);

    /// Frees `ptr`, a large allocation of `layout`.
    ///
    /// # Safety
    ///
    /// `ptr` must be a live large allocation of `layout` of a live manager
    /// that this side frees for, not used afterwards.
    unsafe fn large(&self, ptr: NonNull<u8>, layout: Layout);
}

/// The dispatcher: room for `req`, for `FOR`, from `from` — a pool block,
/// a large allocation, or (zero size) what `from` gives for nothing. Every
/// allocation of the crate goes through here.
#[inline(always)]
pub(crate) fn alloc<C: SizeClasses, const FOR: For>(
    from: &impl Serve<C>,
    req: impl Request,
) -> Result<NonNull<u8>, Error> {
    let layout = req.layout();
    match req.route::<C>() {
        Route::Zero => Ok(from.zero(layout)),
        Route::Pool(class) => from.class::<FOR>(class),
        Route::Large => from.large::<FOR>(layout),
    }
}

/// The dispatcher's other half: gives `ptr`, an allocation of `req`, back
/// to `to`, where [`alloc()`] took it (nothing for a zero size).
///
/// # Safety
///
/// `ptr` must be a live allocation of `req`'s layout that `to` frees for
/// (a dangling pointer for a zero size), not used afterwards.
#[inline(always)]
pub(crate) unsafe fn free<C: SizeClasses>(
    to: &impl Release<C>,
    ptr: NonNull<u8>,
    req: impl Request,
) {
    match req.route::<C>() {
        Route::Zero => {}
        // SAFETY: the caller's guarantee, for a block of `class`.
        Route::Pool(class) => unsafe { to.class(ptr, class) },
        // SAFETY: the caller's guarantee, for a large allocation.
        Route::Large => unsafe { to.large(ptr, req.layout()) },
    }
}

/// The resize rule: whether an allocation of `old` can serve `new` where it
/// is — the same pool class, or the same large class (the same allocation,
/// footer in place) — and if so its usable size for `new`.
#[cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))] // `Global`'s
#[inline(always)]
pub(crate) fn in_place<C: SizeClasses>(old: Layout, new: Layout) -> Option<usize> {
    in_place_routed::<C>((old, old.route::<C>()), (new, new.route::<C>()))
}

/// [`in_place`], for layouts whose routes are known.
#[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // the `Allocator` impl's, `Global`'s
#[inline(always)]
pub(crate) fn in_place_routed<C: SizeClasses>(
    (old, from): (Layout, Route),
    (new, to): (Layout, Route),
) -> Option<usize> {
    match (from, to) {
        (Route::Pool(a), Route::Pool(b)) if a == b => Some(C::TABLE.size(b)),
        (Route::Large, Route::Large) if large::same_allocation(old, new) => Some(new.size()),
        _ => None,
    }
}

/// The heap records of the manager that made `like`, an allocation of
/// `layout` (found from its pool or its footer), or `None` for a zero size.
///
/// # Safety
///
/// `like` must be a live allocation of `layout` made for its route by a
/// live manager with class table `C`; the records live as long as it.
#[inline]
pub(crate) unsafe fn records_of<'a, C: SizeClasses>(
    like: NonNull<u8>,
    layout: Layout,
) -> Option<&'a HeapRecord> {
    // SAFETY: the caller's guarantee: the pool or the footer is live, and so
    // are the records it names.
    unsafe {
        match layout.route::<C>() {
            Route::Zero => None,
            Route::Pool(_) => Some(Pool::of(like).heap_record_ptr().as_ref()),
            Route::Large => Some(large::heap_record_of(like, layout)),
        }
    }
}

impl<C: SizeClasses> Serve<C> for Heap<C> {
    #[inline(always)]
    fn class<const FOR: For>(&self, class: usize) -> Result<NonNull<u8>, Error> {
        let pool = self.get(class);
        let block = pool.alloc()?;
        if FOR == COLLECTION {
            pool.count_tally(true); // a collection's, counted apart from boxes
        }
        Ok(block)
    }

    #[inline(always)]
    fn large<const FOR: For>(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        if FOR == COLLECTION {
            large::alloc_registered(self.heap_record(), layout)
        } else {
            large::alloc_typed(self.heap_record(), layout)
        }
    }
}

impl<C: SizeClasses> Heap<C> {
    /// Room for `layout`, routed at run time: a pool block, a typed system
    /// allocation, or (zero size) a dangling pointer aligned to
    /// `layout.align()`. Freed by [`dealloc`] with the same
    /// layout. Behind slices and the `allocator-api2` implementation.
    #[inline]
    pub(crate) fn alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        alloc::<C, BOX>(self, layout)
    }

    /// Uninitialised room for one `T`: the class is a constant of `T`, so
    /// this is a pop from a known pool. Dangling for a zero-sized `T`.
    #[inline(always)]
    pub(crate) fn alloc_raw<T>(&self) -> Result<NonNull<T>, Error> {
        alloc::<C, BOX>(self, One::<T>::NEW).map(NonNull::cast)
    }

    /// Uninitialised room for `len` elements of `T`; the class is looked up
    /// at run time. Dangling for a zero size.
    #[inline]
    pub(crate) fn alloc_array<T>(&self, len: usize) -> Result<NonNull<T>, Error> {
        self.alloc_layout(array_layout::<T>(len)?)
            .map(NonNull::cast)
    }

    /// Grows what serves `size` bytes at `align` — the pool, or with
    /// `blocks` the byte store of checked blocks — until `additional` more
    /// can be handed out without new memory. The class ignores pass-through
    /// mode, so that an absurd count fails in both modes.
    pub(crate) fn reserve(
        &self,
        size: usize,
        align: usize,
        blocks: Option<&crate::checked::CheckedBlocks>,
        additional: usize,
    ) -> Result<(), Error> {
        let class = C::TABLE.class_for_layout(size, align);
        if let Some(class) = class {
            reservable(additional, C::TABLE.size(class), align)?;
        }
        if cfg!(feature = "pass-through") {
            return Ok(()); // every allocation goes to the system allocator
        }
        let reserved = match (class, blocks) {
            (Some(class), Some(blocks)) => {
                blocks.reserve(class, C::TABLE.size(class), self.budget(), additional)
            }
            (Some(class), None) => self.get(class).reserve(additional),
            (None, _) => return Err(Error::NotPooled { size, align }),
        };
        // A refusal names the manager, and the allocation reserved for.
        reserved.map_err(|e| e.refusing(size, self.heap_record().name))
    }

    /// The class whose byte store serves a checked block of `size` bytes
    /// at `align` (its blocks naturally aligned, as its pool's are), or
    /// `None` for the large path (always in pass-through mode).
    #[inline(always)]
    pub(crate) fn block_class(size: usize, align: usize) -> Option<usize> {
        if cfg!(feature = "pass-through") {
            None
        } else {
            C::TABLE.class_for_layout(size, align)
        }
    }
}

/// The layout of `len` elements of `T`, or the `LayoutOverflow` it is.
#[inline]
pub(crate) fn array_layout<T>(len: usize) -> Result<Layout, Error> {
    Layout::array::<T>(len).map_err(|_| Error::LayoutOverflow {
        size: size_of::<T>().saturating_mul(len),
        align: align_of::<T>(),
    })
}

/// What a zero-sized allocation of `layout` gets: a dangling pointer
/// aligned to `layout.align()`, with no provenance (nothing is ever
/// accessed through it).
#[inline(always)]
pub(crate) fn dangling(layout: Layout) -> NonNull<u8> {
    NonNull::new(ptr::without_provenance_mut(layout.align())).unwrap_or(NonNull::dangling())
}

// ----- by layout alone: boxes find their pool or footer from the pointer --

/// A manager's boxes, freed from the pointer alone: a pool block goes back
/// to the pool its chunk names, a typed system allocation to the system.
struct Boxes;

impl<C: SizeClasses> Release<C> for Boxes {
    #[inline(always)]
    unsafe fn class(&self, ptr: NonNull<u8>, _class: usize) {
        // SAFETY: the caller guarantees a live block of a live pool.
        unsafe { Pool::free(ptr) }
    }

    #[inline(always)]
    unsafe fn large(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees a live typed system allocation.
        unsafe { large::free_typed(ptr, layout) }
    }
}

/// Returns an allocation to where [`route`] says it came from.
///
/// # Safety
///
/// `ptr` must be a live allocation of `layout` made for the same route by a
/// manager with class table `C` that is still alive (a dangling pointer for a
/// zero size), and must not be used afterwards.
#[inline(always)]
pub(crate) unsafe fn dealloc<C: SizeClasses>(ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: the caller's guarantee: a box's allocation, freed by pointer.
    unsafe { free::<C>(&Boxes, ptr, layout) }
}

/// The manager that made `like`, as the dispatcher's source: a block from
/// `like`'s own pool, a typed system allocation from its footer's manager,
/// and (zero size) `like` itself, dangling and aligned.
struct Like(NonNull<u8>);

impl<C: SizeClasses> Serve<C> for Like {
    #[inline]
    fn class<const FOR: For>(&self, _class: usize) -> Result<NonNull<u8>, Error> {
        // SAFETY: `like` is a live block of a live pool (`alloc_like`'s
        // caller).
        unsafe { Pool::of(self.0) }.alloc()
    }

    #[inline]
    fn large<const FOR: For>(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        // SAFETY: `like` is a live typed system allocation (`alloc_like`'s
        // caller).
        large::alloc_typed(unsafe { large::heap_record_of(self.0, layout) }, layout)
    }

    #[inline(always)]
    fn zero(&self, _layout: Layout) -> NonNull<u8> {
        // A zero-sized allocation's pointer is dangling and aligned: reuse it.
        self.0
    }
}

/// Allocates room for `layout` from the manager that made `like`, an
/// allocation of the same layout.
///
/// # Safety
///
/// `like` must be a live allocation of `layout` made by a live manager with
/// class table `C`.
#[inline]
pub(crate) unsafe fn alloc_like<C: SizeClasses>(
    like: NonNull<u8>,
    layout: Layout,
) -> Result<NonNull<u8>, Error> {
    alloc::<C, BOX>(&Like(like), layout)
}

/// The name of the manager that made `like`, an allocation of `layout`
/// (for a panic message).
///
/// # Safety
///
/// `like` must be a live allocation of `layout` made by a live manager with
/// class table `C`.
#[cold]
pub(crate) unsafe fn name_of<C: SizeClasses>(
    like: NonNull<u8>,
    layout: Layout,
) -> Option<&'static str> {
    // SAFETY: the caller's guarantee. (Nothing to find for a zero size; a
    // zero-sized allocation never fails anyway.)
    unsafe { records_of::<C>(like, layout) }.and_then(|records| records.name)
}

// ----- the `Allocator` implementation's side ------------------------------

#[cfg(feature = "allocator-api2")]
/// Room for `layout`: a pool block, a registered system allocation, or (zero
/// size) a dangling pointer aligned to `layout.align()`.
#[inline(always)]
pub(crate) fn alloc_registered<C: SizeClasses>(
    heap: &Heap<C>,
    req: impl Request,
) -> Result<NonNull<u8>, Error> {
    alloc::<C, COLLECTION>(heap, req)
}

#[cfg(feature = "allocator-api2")]
/// The manager's own pointer to the allocation at `ptr`'s address, served
/// by `route`, with provenance over all of it (see the module docs). For a
/// resize, `resized` is the layout the caller says the allocation has,
/// checked against a large one's footer (a free needs no check there: the
/// footer says what to free).
///
/// # Panics
///
/// Panics if `heap` has no such allocation — none at that address, one of
/// another class, or (`resized`) a large one of another large class (the
/// caller broke the contract of `deallocate`, `grow` or `shrink`).
#[inline(always)]
pub(crate) fn own<C: SizeClasses>(
    heap: &Heap<C>,
    ptr: NonNull<u8>,
    resized: Option<Layout>,
    route: Route,
) -> NonNull<u8> {
    let own = match route {
        // Nothing is ever accessed through a zero-sized allocation.
        Route::Zero => Some(ptr),
        Route::Pool(class) => match heap.get(class).own_block(ptr.addr()) {
            Some(own) => return own,
            None => own_in_map(heap, ptr, class),
        },
        Route::Large => large::registered(heap.heap_record(), ptr.addr().get(), resized),
    };
    match own {
        Some(p) => p,
        None => foreign_pointer(heap.heap_record().name),
    }
}

#[cfg(feature = "allocator-api2")]
/// [`own`] for a block of pool `class` outside the chunk the pool
/// remembers: the chunk map's lookup, and the chunk remembered for the
/// next free if it is the pool's. `None` if the address is among the
/// blocks of no chunk of `heap`'s pool `class`.
#[inline(never)]
fn own_in_map<C: SizeClasses>(
    heap: &Heap<C>,
    ptr: NonNull<u8>,
    class: usize,
) -> Option<NonNull<u8>> {
    let base = heap.heap_record().chunks.find(ptr.addr().get())?;
    // SAFETY: the chunk map holds the bases of this manager's live chunks,
    // with provenance over them.
    unsafe { heap.get(class).remember_chunk(base, ptr.addr()) }
}

#[cfg(feature = "allocator-api2")]
#[cold]
#[inline(never)]
pub(crate) fn foreign_pointer(name: Option<&str>) -> ! {
    match name {
        Some(name) => panic!("memory_mgr: a pointer manager `{name}`'s allocator did not hand out"),
        None => panic!("memory_mgr: a pointer this manager's allocator did not hand out"),
    }
}

#[cfg(feature = "allocator-api2")]
/// Frees the allocation `own` (the manager's own pointer), served by `route`.
///
/// # Safety
///
/// `own` must come from [`own`] (or from its first step, the pool's
/// [`own_block`](Pool::own_block)) for a live allocation of `heap` served
/// by `route`, not used afterwards.
#[inline(always)]
unsafe fn free_registered<C: SizeClasses>(heap: &Heap<C>, own: NonNull<u8>, route: Route) {
    match route {
        Route::Zero => {}
        Route::Pool(class) => {
            // The block's pool is pool `class` of `heap`: `own` found it in
            // a chunk of that pool. No load of the chunk's header on the
            // way to the push.
            let pool = heap.get(class);
            pool.count_tally(false);
            pool.push(own);
        }
        Route::Large => {
            // SAFETY: a live registered allocation of `heap` (caller), whose
            // value `own` points at.
            let freed = unsafe { large::free_registered(heap.heap_record(), own.addr().get()) };
            debug_assert!(freed, "not a registered allocation");
        }
    }
}

#[cfg(feature = "allocator-api2")]
/// A heap's collections, freed through the manager's own pointer (the
/// caller's gives only the address).
impl<C: SizeClasses> Release<C> for Heap<C> {
    #[inline(always)]
    unsafe fn class(&self, ptr: NonNull<u8>, class: usize) {
        let route = Route::Pool(class);
        // SAFETY: the caller's guarantee; `own` gives the manager's own
        // pointer to the same block.
        unsafe { free_registered(self, own(self, ptr, None, route), route) }
    }

    #[inline(always)]
    unsafe fn large(&self, ptr: NonNull<u8>, _layout: Layout) {
        let heap_record = self.heap_record();
        // One lookup of the registry, which finds and removes the
        // allocation at `ptr`'s address (where `own` and then the free
        // looked it up twice); an address it does not hold panics, with
        // nothing changed, as `own` does.
        // SAFETY: the caller's guarantee: a live registered allocation.
        if !unsafe { large::free_registered(heap_record, ptr.addr().get()) } {
            foreign_pointer(heap_record.name);
        }
    }
}

#[cfg(feature = "allocator-api2")]
/// Frees an allocation of `layout` made by `heap`'s allocator, reached
/// through the manager's own pointer (the caller's gives only the address).
/// Inline: a block in the chunk its pool remembers (the pool's own pointer
/// to it, the tally, the push), and the large path's call; a block
/// elsewhere is [`deallocate_in_map`], out of line, so that the fast path
/// keeps nothing across a call (the trace replay's free through a
/// `WideClasses` manager: 45 instructions a call before, 41 after).
///
/// # Safety
///
/// `ptr` must be a live allocation of `layout` from `heap`'s allocator, not
/// used afterwards.
#[inline(always)]
pub(crate) unsafe fn deallocate<C: SizeClasses>(heap: &Heap<C>, ptr: NonNull<u8>, layout: Layout) {
    match layout.route::<C>() {
        Route::Zero => {}
        Route::Pool(class) => {
            let pool = heap.get(class);
            match pool.own_block(ptr.addr()) {
                // SAFETY: the manager's own pointer to the live block the
                // caller gives back, of pool `class` (`own_block`).
                Some(own) => unsafe { free_registered(heap, own, Route::Pool(class)) },
                // SAFETY: the caller's guarantee, for a block of `class`.
                None => unsafe { deallocate_in_map(heap, ptr, class) },
            }
        }
        // SAFETY: the caller's guarantee, for a large allocation.
        Route::Large => unsafe { Release::large(heap, ptr, layout) },
    }
}

#[cfg(feature = "allocator-api2")]
/// [`deallocate`] for a block outside the chunk its pool remembers: found
/// through the chunk map (or a panic, as [`own`]'s), then freed.
///
/// # Safety
///
/// As [`deallocate`], for a block of class `class`.
#[inline(never)]
unsafe fn deallocate_in_map<C: SizeClasses>(heap: &Heap<C>, ptr: NonNull<u8>, class: usize) {
    // SAFETY: the caller's guarantee.
    unsafe { Release::class(heap, ptr, class) }
}

#[cfg(feature = "allocator-api2")]
/// [`alloc_registered`] for the `Allocator`'s `allocate`, whose error says
/// nothing: `None` where `alloc_registered` says why. A pool's pop or bump
/// inline, returning the block in a register; the rest out of line
/// ([`alloc_registered_slow`]), where a `Result` with an [`Error`] comes
/// back through memory (the trace replay's allocation through a
/// `WideClasses` manager: 40 instructions a call before, 38 after).
#[inline(always)]
pub(crate) fn alloc_registered_or_none<C: SizeClasses>(
    heap: &Heap<C>,
    req: Routed,
) -> Option<NonNull<u8>> {
    match req.route {
        Route::Pool(class) => {
            let pool = heap.get(class);
            let block = pool.alloc_or_none()?;
            pool.count_tally(true); // a collection's, counted apart from boxes
            Some(block)
        }
        Route::Zero => Some(dangling(req.layout)),
        Route::Large => alloc_registered_slow(heap, req.layout),
    }
}

#[cfg(feature = "allocator-api2")]
/// [`alloc_registered_or_none`]'s large path (given the layout alone: the
/// route, passed, was stored on the stack on the fast path too).
#[inline(never)]
fn alloc_registered_slow<C: SizeClasses>(heap: &Heap<C>, layout: Layout) -> Option<NonNull<u8>> {
    alloc_registered(heap, layout).ok()
}

#[cfg(feature = "allocator-api2")]
/// Grows or shrinks: in place when [`in_place`] says so, else allocate,
/// copy `min(old, new)` bytes, free. Either way the pointer returned is the
/// manager's own.
///
/// # Safety
///
/// `ptr` must be a live allocation of `old` from `heap`'s allocator; on success it must not
/// be used again (unless the same address is returned).
#[inline]
pub(crate) unsafe fn resize<C: SizeClasses>(
    heap: &Heap<C>,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<NonNull<[u8]>, Error> {
    let from = old.route::<C>();
    let own = own(heap, ptr, Some(old), from);
    let to = Routed::new::<C>(new);
    if let Some(usable) = in_place_routed::<C>((old, from), (new, to.route)) {
        // (A large one keeps its footer in place: the registry keys it by
        // the unchanged address.)
        return Ok(NonNull::slice_from_raw_parts(own, usable));
    }
    let fresh = alloc_registered(heap, to)?;
    // SAFETY: both are live, distinct allocations (a new one was just made)
    // of at least `min(old, new)` bytes, reached through pointers with
    // provenance over all of them; the old one is freed once, here.
    unsafe {
        core::ptr::copy_nonoverlapping(own.as_ptr(), fresh.as_ptr(), old.size().min(new.size()));
        free_registered(heap, own, from);
    }
    Ok(NonNull::slice_from_raw_parts(fresh, to.usable::<C>()))
}
