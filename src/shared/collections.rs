//! A shared manager's collections (its `Allocator` implementation) through
//! the calling thread's heap: a pooled allocation is a pop from this
//! thread's pool, with no lock; a free on the thread that owns the block's
//! pool pushes its free list, on any other its remote-free list (as a
//! `SharedBox`'s). What is large, and what a thread with no heap asks for,
//! goes to the central heap under its lock, as before.
//!
//! The caller's pointer may carry provenance over the value alone (see
//! `alloc_api.rs`), so a free or a resize reaches the block only through the
//! manager's own pointer: for a thread heap's block, the chunk base the
//! lock-free [`segment_map`] holds; for the central
//! heap's, its chunk map and registry, under the lock. A pointer no heap of
//! this manager holds panics, as `MemoryManager`'s allocator does.
//!
//! Collection blocks are counted apart from boxes: the pool they came from
//! counts them in `tally`, and a thread that frees one into another heap's
//! pool counts it in its own pool's `tally_out` (or, with no heap, in the
//! state's `lost_tally`); `stats` subtracts, as it does for remote frees.

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use crate::heap::{self, For, Heap, Release, Request, Serve, COLLECTION};
use crate::pool::Pool;
use crate::size_class::{Route, SizeClasses};
use crate::{segment_map, thread, Error};

use super::{SharedManager, State};

/// The collections side of a shared manager's state: where the dispatcher
/// takes their memory from and gives it back to.
struct Collections<'a, C: SizeClasses>(&'a State<C>);

impl<C: SizeClasses> Serve<C> for Collections<'_, C> {
    #[inline(always)]
    fn class<const FOR: For>(&self, class: usize) -> Result<NonNull<u8>, Error> {
        let state = self.0;
        let pools = match state.my_pools() {
            Some(pools) => pools,
            None => match state.my_pools_slow() {
                Some(pools) => pools,
                // No heap: the central one, under its lock, tallied there.
                None => return state.central(|mm| Serve::class::<COLLECTION>(mm.heap(), class)),
            },
        };
        // SAFETY: this thread's live heap (the module invariant), a class of
        // `C` (from `route`).
        let pool = unsafe { Heap::<C>::pool_at(pools, class) };
        let block = pool.alloc()?;
        pool.count_tally(true);
        Ok(block)
    }

    #[inline]
    fn large<const FOR: For>(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        self.0
            .central(|mm| Serve::large::<COLLECTION>(mm.heap(), layout))
    }
}

impl<C: SizeClasses> Release<C> for Collections<'_, C> {
    #[inline(always)]
    unsafe fn class(&self, ptr: NonNull<u8>, class: usize) {
        let state = self.0;
        match state.own_pooled(ptr, class) {
            // SAFETY: the manager's own pointer to a live block of one of its
            // thread heaps' pools, which the caller gives back.
            Some(own) => unsafe { state.free_pooled(own, class) },
            // Not a thread heap's: the central heap's (or foreign: it panics).
            // SAFETY: the caller's guarantee, for the central heap's block.
            None => state.central(|mm| unsafe { Release::class(mm.heap(), ptr, class) }),
        }
    }

    #[inline]
    unsafe fn large(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's guarantee: a live large allocation of the
        // central heap (the only heap that makes them).
        self.0
            .central(|mm| unsafe { Release::large(mm.heap(), ptr, layout) })
    }
}

impl<C: SizeClasses> State<C> {
    /// The manager's own pointer to the pooled block of class `class` at
    /// `ptr`'s address, if one of this manager's thread heaps holds it;
    /// `None` if none does (the central heap's, or not this manager's at
    /// all).
    ///
    /// # Panics
    ///
    /// Panics if the address is in a thread heap's chunk that is not a
    /// class-`class` chunk of this manager, or past the chunk's end (the
    /// caller broke the contract of `deallocate`, `grow` or `shrink`).
    #[inline]
    fn own_pooled(&self, ptr: NonNull<u8>, class: usize) -> Option<NonNull<u8>> {
        let base = segment_map::find(ptr.addr().get())?;
        if !self.holds(base, ptr, class) {
            // Another manager's chunk, another class's (a layout the block
            // was not allocated with: it would be counted in the wrong
            // class, or resized as a block it is not), or past the end of
            // a chunk (memory that is not a thread heap's shares its
            // segment): not a block this manager's collections were given
            // with this layout.
            heap::foreign_pointer(self.config.name);
        }
        Some(base.with_addr(ptr.addr()))
    }

    /// Whether the thread heap's chunk at `base` (from the segment map)
    /// holds `ptr`'s address among its blocks and is a class-`class` chunk
    /// of this manager.
    #[inline(always)]
    fn holds(&self, base: NonNull<u8>, ptr: NonNull<u8>, class: usize) -> bool {
        // SAFETY: an entered chunk is a live chunk of a thread heap (the
        // segment map's invariant) whose header holds its size and pool; the
        // pool's class and owner fields are fixed.
        unsafe {
            Pool::chunk_holds(base, ptr.addr().get())
                && Pool::of(base).class_and_owner() == (class, core::ptr::from_ref(self).cast())
        }
    }

    /// Frees `own`, a live block of class `class` of one of this manager's
    /// thread heaps: onto its pool's free list on the thread that owns the
    /// pool, else onto its remote-free list.
    ///
    /// # Safety
    ///
    /// `own` must be the manager's own pointer (from
    /// [`own_pooled`](Self::own_pooled)) to a live collection block of class
    /// `class`, not used afterwards.
    #[inline(always)]
    unsafe fn free_pooled(&self, own: NonNull<u8>, class: usize) {
        // SAFETY: a live block of a live pool (caller), through a pointer
        // with provenance over its chunk.
        let (pool, slot) = unsafe { Pool::of_owned(own) };
        if slot == thread::current() {
            // This thread owns the pool (tally first: the push may recycle
            // the pool, which starts its tally over).
            pool.count_tally(false);
            pool.push(own);
        } else {
            // SAFETY: as above; any thread may push. `pool` is not used
            // after: once the block is on the list its owner may collect
            // it, release its chunk and free the heap (see `exit.rs`); the
            // count below touches this thread's heap only.
            unsafe { Pool::push_remote(NonNull::from(pool), own) };
            self.count_remote_collection_free(class);
        }
    }

    /// Counts a collection block freed into another heap's pool by this
    /// thread: in its own heap (made if need be), or with no slot in
    /// `lost` and `lost_tally`.
    #[inline]
    fn count_remote_collection_free(&self, class: usize) {
        match self.my_pools().or_else(|| self.my_pools_slow()) {
            Some(pools) => {
                // SAFETY: this thread's heap (invariant), a class of `C`.
                let mine = unsafe { Heap::<C>::pool_at(pools, class) };
                mine.count_remote_out();
                mine.count_tally_out();
            }
            None => {
                // `Relaxed`: statistics; the read-modify-writes lose no count.
                self.lost[class].fetch_add(1, Ordering::Relaxed);
                self.lost_tally[class].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Room for a collection's `layout`, routed to `route`: the dispatcher's
    /// (`heap::alloc`) match, for a route already known, so that a resize
    /// routes each layout once.
    #[inline(always)]
    fn allocate(&self, layout: Layout, route: Route) -> Result<NonNull<[u8]>, Error> {
        let (ptr, usable) = match route {
            Route::Zero => (heap::dangling(layout), 0),
            Route::Pool(class) => (
                Serve::class::<COLLECTION>(&Collections(self), class)?,
                C::TABLE.size(class),
            ),
            Route::Large => (
                Serve::large::<COLLECTION>(&Collections(self), layout)?,
                layout.size(),
            ),
        };
        Ok(NonNull::slice_from_raw_parts(ptr, usable))
    }

    /// Grows or shrinks a collection's allocation: in place within its class
    /// (or its large allocation), else allocate, copy, free — the new block
    /// from this thread's heap, the old one freed as `deallocate` frees.
    /// Each layout is routed once.
    ///
    /// # Safety
    ///
    /// `ptr` must be a live allocation of `old` from this manager's
    /// `Allocator`; on success it must not be used again (unless the same
    /// address is returned).
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, Error> {
        let (from, to) = (old.route::<C>(), new.route::<C>());
        // The manager's own pointer: a thread heap's block, or the central
        // heap's allocation (found under its lock; foreign ones panic).
        let pooled = match from {
            Route::Pool(class) => self.own_pooled(ptr, class),
            Route::Zero | Route::Large => None,
        };
        let own =
            pooled.unwrap_or_else(|| self.central(|mm| heap::own(mm.heap(), ptr, Some(old), from)));
        if let Some(usable) = heap::in_place_routed::<C>((old, from), (new, to)) {
            return Ok(NonNull::slice_from_raw_parts(own, usable));
        }
        let fresh = self.allocate(new, to)?;
        // SAFETY: both are live, distinct allocations of at least
        // `min(old, new)` bytes, reached through pointers with provenance
        // over them; the old one is freed once, here, through its own
        // pointer, as `deallocate` frees it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                own.as_ptr(),
                fresh.cast::<u8>().as_ptr(),
                old.size().min(new.size()),
            );
            match (from, pooled) {
                (Route::Pool(class), Some(own)) => self.free_pooled(own, class),
                _ => heap::free::<C>(&Collections(self), own, old),
            }
        }
        Ok(fresh)
    }
}

/// What the `Allocator` implementation for `&SharedManager` calls.
impl<C: SizeClasses> SharedManager<C> {
    /// Room for `layout` for a collection (see the module docs), or `None`
    /// (the `Allocator`'s error says nothing more). Inline: a pop or a bump
    /// from this thread's heap, the block returned in a register; out of
    /// line ([`allocate_collection_slow`](Self::allocate_collection_slow)):
    /// a thread with no heap yet, a large or zero-sized layout, where a
    /// `Result` with an [`Error`] comes back through memory. (With
    /// [`deallocate_collection`](Self::deallocate_collection)'s split, a
    /// 64-byte allocator-api2 `Box` made and dropped: 75 instructions,
    /// 146 when both went through the whole dispatch.)
    #[inline(always)]
    pub(crate) fn allocate_collection(&self, layout: Layout) -> Option<NonNull<[u8]>> {
        if let Route::Pool(class) = layout.route::<C>() {
            if let Some(pools) = self.state_if_made().and_then(State::my_pools) {
                // SAFETY: this thread's live heap (the module invariant), a
                // class of `C` (from `route`).
                let pool = unsafe { Heap::<C>::pool_at(pools, class) };
                // (`None`: the refill failed, as `allocate` would.)
                let block = pool.alloc_or_none()?;
                pool.count_tally(true);
                return Some(NonNull::slice_from_raw_parts(block, C::TABLE.size(class)));
            }
        }
        self.allocate_collection_slow(layout)
    }

    /// [`allocate_collection`](Self::allocate_collection)'s slow path: the
    /// whole dispatch (the state made, the thread's heap made, the central
    /// heap, the pool's refill).
    #[cold]
    #[inline(never)]
    fn allocate_collection_slow(&self, layout: Layout) -> Option<NonNull<[u8]>> {
        self.state()
            .and_then(|state| state.allocate(layout, layout.route::<C>()))
            .ok()
    }

    /// Frees a collection's allocation. Inline: a block of this thread's
    /// heap, found through the segment map, pushed on its pool's free list;
    /// out of line ([`deallocate_collection_slow`](Self::deallocate_collection_slow)):
    /// another thread's block (a remote free), the central heap's, a large
    /// one, and a foreign pointer (which panics there).
    ///
    /// # Safety
    ///
    /// `ptr` must be a live allocation of `layout` from this manager's
    /// `Allocator`, not used afterwards.
    #[inline(always)]
    pub(crate) unsafe fn deallocate_collection(&self, ptr: NonNull<u8>, layout: Layout) {
        if let (Route::Pool(class), Some(state)) = (layout.route::<C>(), self.state_if_made()) {
            if let Some(base) = segment_map::find(ptr.addr().get()) {
                if state.holds(base, ptr, class) {
                    let own = base.with_addr(ptr.addr());
                    // SAFETY: `base` is a live chunk of one of the manager's
                    // thread heaps, with provenance over it (`holds`); its
                    // header read from `base` itself, which `holds` read
                    // too (the loads shared).
                    let (pool, slot) = unsafe { Pool::of_owned(base) };
                    if slot == thread::current() {
                        // As `State::free_pooled`, on the owner's thread.
                        pool.count_tally(false);
                        pool.push(own);
                        return;
                    }
                }
            }
        }
        // SAFETY: the caller's guarantee.
        unsafe { self.deallocate_collection_slow(ptr, layout) }
    }

    /// [`deallocate_collection`](Self::deallocate_collection)'s slow path:
    /// the whole dispatch.
    ///
    /// # Safety
    ///
    /// As [`deallocate_collection`](Self::deallocate_collection).
    #[inline(never)]
    unsafe fn deallocate_collection_slow(&self, ptr: NonNull<u8>, layout: Layout) {
        // (With no state, nothing was allocated: a pointer given back is
        // zero-sized, or foreign and refused — the state is made to look.)
        if let Ok(state) = self.state() {
            // SAFETY: the caller's guarantee.
            unsafe { heap::free::<C>(&Collections(state), ptr, layout) }
        }
    }

    /// Grows or shrinks a collection's allocation.
    ///
    /// # Safety
    ///
    /// `ptr` must be a live allocation of `old` from this manager's
    /// `Allocator`; on success it must not be used again (unless the same
    /// address is returned).
    #[inline]
    pub(crate) unsafe fn resize_collection(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, Error> {
        // SAFETY: the caller's guarantee (a live allocation means the state
        // was made; `state` finds it).
        unsafe { self.state()?.resize(ptr, old, new) }
    }
}
