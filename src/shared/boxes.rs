//! The allocation and free paths of a shared manager's boxes: on this
//! thread's heap, a remote free onto another's, the central heap for what
//! is large.

use core::alloc::Layout;
use core::ptr::NonNull;

use crate::heap::{self, For, Heap, One, Request, Serve, BOX};
use crate::large::{self};
use crate::pool::Pool;
use crate::pool_box::{BoxMaker, Kind, Shared};
use crate::size_class::{side, Route, Side, SizeClasses};
use crate::thread::{self};
use crate::Error;

use super::{SharedManager, State};

impl Kind for Shared {
    #[inline(always)]
    unsafe fn dealloc<C: SizeClasses>(ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's guarantee: a live allocation of `layout` of a
        // live shared manager.
        unsafe { dealloc::<C>(ptr, layout) }
    }

    unsafe fn alloc_like<C: SizeClasses>(
        like: NonNull<u8>,
        layout: Layout,
    ) -> Result<NonNull<u8>, Error> {
        // SAFETY: `like` is a live allocation of `layout` of a live shared
        // manager (caller).
        match unsafe { heap::records_of::<C>(like, layout) } {
            // A zero-sized allocation's pointer is dangling and aligned:
            // reuse it (there is no pool or footer to find the manager by).
            None => Ok(like),
            Some(records) => {
                // SAFETY: every heap of a shared manager has its state as
                // `owner`, alive as long as the manager (alive: caller).
                let state = unsafe { &*records.kind.owner.cast::<State<C>>() };
                state.alloc_layout(layout)
            }
        }
    }
}

/// Frees a shared manager's allocation of `layout`, on any thread: a block
/// goes back to its pool's free list on the thread that owns the pool, onto
/// its remote-free list on any other; a large allocation to the central
/// heap, under its lock. A block's pool comes from the block itself (its
/// chunk header), so the layout only has to tell a block from a large
/// allocation: [`side`], one compare, not the class lookup.
///
/// # Safety
///
/// `ptr` must be a live allocation of `layout` from a live shared manager
/// with class table `C` (or `Global`'s), not used afterwards.
#[inline(always)]
pub(crate) unsafe fn dealloc<C: SizeClasses>(ptr: NonNull<u8>, layout: Layout) {
    match side(C::TABLE, layout.size(), layout.align()) {
        Side::Zero => {}
        // SAFETY: the caller's guarantee; `side` agrees with the route the
        // allocation took, so `ptr` is a block.
        Side::Pool => unsafe { free_block::<C>(ptr) },
        // SAFETY: as above, a large allocation.
        Side::Large => unsafe { free_large(ptr, layout) },
    }
}

/// Frees `ptr`, a block of a shared manager, on any thread.
///
/// # Safety
///
/// `ptr` must be a live block of a live shared manager with class table
/// `C` (or `Global`'s), not used afterwards.
#[inline(always)]
unsafe fn free_block<C: SizeClasses>(ptr: NonNull<u8>) {
    // SAFETY: a live block of a live pool (caller).
    let (pool, slot) = unsafe { Pool::of_owned(ptr) };
    if slot == thread::current() {
        // This thread holds the pool's slot: it owns the pool.
        pool.push(ptr);
    } else {
        // Read before the push: once the block is on the list, its owner
        // may collect it, release its chunk and free the heap the pool is
        // in (see `exit.rs`), so the pool is not touched after.
        let (class, owner) = pool.class_and_owner();
        // SAFETY: as above; any thread may push. `pool` is not used after
        // (a local reference, not an argument: nothing asserts it valid
        // past its last use).
        unsafe { Pool::push_remote(NonNull::from(pool), ptr) };
        count_remote_free::<C>(class, owner);
    }
}

/// Counts a remote free into a pool of class `class` of the shared manager
/// whose state is `owner` in the freeing thread's own heap (the pool of the
/// same class), where no other thread writes: the owner of the pool never
/// walks what it collects to count it, and the manager's figures subtract
/// these counts. A thread with no heap makes one; one with no slot counts
/// in the state's shared tally.
#[inline]
fn count_remote_free<C: SizeClasses>(class: usize, owner: *const ()) {
    // SAFETY: a shared manager's pool names its live state (every heap of a
    // shared manager is made with its state as owner); the block just
    // freed was live, so the manager is.
    let state = unsafe { &*owner.cast::<State<C>>() };
    match state.my_pools() {
        // SAFETY: this thread's heap (invariant), `class` one of its classes.
        Some(pools) => unsafe { Heap::<C>::pool_at(pools, class) }.count_remote_out(),
        None => state.count_remote_slow(class),
    }
}

/// Frees a large allocation (in the central heap) under the central lock.
///
/// # Safety
///
/// As [`dealloc`], for the large route.
#[inline(never)]
unsafe fn free_large(ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: the caller's guarantee; the footer names the central heap's
    // heap record, which holds its lock.
    unsafe {
        let heap_record = large::heap_record_of(ptr, layout);
        // (A central heap's heap record has a static lock.)
        let _locked = (*heap_record.lock).lock();
        large::free_typed(ptr, layout);
    }
}

// ----- boxes ------------------------------------------------------------------

impl<'m, C: SizeClasses> BoxMaker<'m, C> for &'m SharedManager<C> {
    type Kind = Shared;

    #[inline(always)]
    fn alloc_raw<T>(self) -> Result<NonNull<T>, Error> {
        SharedManager::alloc_raw::<T>(self)
    }

    #[inline(always)]
    fn alloc_fast<T>(self) -> Option<NonNull<T>> {
        match One::<T>::NEW.route::<C>() {
            Route::Pool(class) => {
                let pools = self.my_pools()?;
                // SAFETY: this thread's live heap of this manager (module
                // invariant), a class of `C` (from `route`).
                let pool = unsafe { Heap::<C>::pool_at(pools, class) };
                pool.alloc_fast().map(NonNull::cast)
            }
            Route::Zero => Some(NonNull::dangling()),
            Route::Large => None,
        }
    }

    #[inline]
    fn alloc_array<T>(self, len: usize) -> Result<NonNull<T>, Error> {
        self.alloc_layout(heap::array_layout::<T>(len)?)
            .map(NonNull::cast)
    }
}

impl<C: SizeClasses> SharedManager<C> {
    /// Room for `layout` (for `Global` and the `Allocator`-free paths).
    #[inline(always)]
    pub(crate) fn alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        heap::alloc::<C, BOX>(self, layout)
    }

    /// Room for `layout`, or `None` where [`alloc_layout`](Self::alloc_layout)
    /// says why: `Global`'s allocation, whose errors are a null pointer.
    /// The dispatch of `heap::alloc`, with every call out of line returning
    /// an `Option` — in a register, where a `Result` with an [`Error`]
    /// comes back through memory — so that the fast path (this thread's
    /// pool: a pop or a bump) keeps the block in a register: `Global`'s
    /// 64-byte pair 38 instructions instead of 44.
    #[inline(always)]
    pub(crate) fn alloc_or_none(&self, layout: Layout) -> Option<NonNull<u8>> {
        match layout.route::<C>() {
            Route::Pool(class) => match self.my_pools() {
                // SAFETY: this thread's live heap of this manager (module
                // invariant), a class of `C` (from `route`).
                Some(pools) => unsafe { Heap::<C>::pool_at(pools, class) }.alloc_or_none(),
                None => self.alloc_or_none_slow(layout),
            },
            Route::Zero => Some(heap::dangling(layout)),
            Route::Large => self.alloc_or_none_slow(layout),
        }
    }

    /// [`alloc_or_none`](Self::alloc_or_none)'s calls out: the whole
    /// dispatch again, out of line.
    #[cold]
    #[inline(never)]
    fn alloc_or_none_slow(&self, layout: Layout) -> Option<NonNull<u8>> {
        self.alloc_layout(layout).ok()
    }

    /// A block of class `class` when this thread has no heap in the table
    /// (or the state is not made): made now, or the central heap's.
    #[cold]
    #[inline(never)]
    fn alloc_class_slow(&self, class: usize) -> Result<NonNull<u8>, Error> {
        self.state()?.alloc_class_slow(class)
    }

    /// Room for one `T`, routed at compile time.
    #[inline(always)]
    fn alloc_raw<T>(&self) -> Result<NonNull<T>, Error> {
        heap::alloc::<C, BOX>(self, One::<T>::NEW).map(NonNull::cast)
    }
}

/// A shared manager as the dispatcher's source: this thread's heap for a
/// block, the central heap for a large allocation (its state made first,
/// if need be).
impl<C: SizeClasses> Serve<C> for SharedManager<C> {
    #[inline(always)]
    fn class<const FOR: For>(&self, class: usize) -> Result<NonNull<u8>, Error> {
        match self.my_pools() {
            // SAFETY: this thread's live heap of this manager (module
            // invariant), a class of `C` (from `route`).
            Some(pools) => unsafe { Heap::<C>::pool_at(pools, class) }.alloc(),
            None => self.alloc_class_slow(class),
        }
    }

    #[inline(always)]
    fn large<const FOR: For>(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        self.state()?.alloc_large(layout)
    }
}

/// A shared manager's made state as the dispatcher's source.
impl<C: SizeClasses> Serve<C> for State<C> {
    #[inline(always)]
    fn class<const FOR: For>(&self, class: usize) -> Result<NonNull<u8>, Error> {
        self.alloc_class(class)
    }

    #[inline(always)]
    fn large<const FOR: For>(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        self.alloc_large(layout)
    }
}
