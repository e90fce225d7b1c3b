//! `&MemoryManager` as an [`allocator_api2`] allocator (cargo feature
//! `allocator-api2`, on by default): `Vec`, `HashMap` (hashbrown),
//! `Box` and friends from `allocator-api2` live in the manager's pools.
//!
//! An allocation takes the class of its layout — the same pools as
//! [`PoolBox`](crate::PoolBox) — or the system fallback above the largest
//! class. `grow` and `shrink` stay in place while the new layout maps to the
//! same class, so a `Vec` growing from 9 to 16 bytes, or shrinking within a
//! class, copies nothing.
//!
//! # Provenance
//!
//! The pointer a caller hands back may carry provenance over the value
//! alone: allocator-api2's own round trips (`Box::leak` then
//! `Box::from_raw_in`, `Vec::leak` then `Vec::from_raw_parts_in`) make it
//! from a `&mut`. So `deallocate`, `grow` and `shrink` never reach memory
//! through it: [`own`] turns its address into the manager's own pointer —
//! through the chunk map for a pooled block, through the registry of
//! allocator-made allocations above the classes — whose provenance covers
//! the whole block and the metadata around it. The address is all that is
//! taken from the caller's pointer.

use core::alloc::Layout;
use core::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator};

use crate::pool::Pool;
use crate::size_class::{route, Route, SizeClasses};
use crate::{system, MemoryManager};

/// The usable size of an allocation of `layout`: the whole block for a pool
/// class, exactly the request otherwise.
#[inline(always)]
fn usable<C: SizeClasses>(layout: Layout) -> usize {
    match route(C::TABLE, layout.size(), layout.align()) {
        Route::Pool(class) => C::TABLE.size(class),
        Route::Zero | Route::System => layout.size(),
    }
}

/// Room for `layout`: a pool block, a registered system allocation, or (zero
/// size) a dangling pointer aligned to `layout.align()`.
#[inline(always)]
fn alloc<C: SizeClasses>(mm: &MemoryManager<C>, layout: Layout) -> Result<NonNull<u8>, AllocError> {
    match route(C::TABLE, layout.size(), layout.align()) {
        Route::Zero => Ok(
            NonNull::new(core::ptr::without_provenance_mut(layout.align()))
                .unwrap_or(NonNull::dangling()),
        ),
        Route::Pool(class) => mm.pool_alloc(class, layout).map_err(|_| AllocError),
        Route::System => {
            system::alloc_registered(mm.pools().fallback(), layout).map_err(|_| AllocError)
        }
    }
}

/// The manager's own pointer to the allocation at `ptr`'s address, served
/// by `route`, with provenance over all of it (see the module docs).
///
/// # Panics
///
/// Panics if `mm` has no such allocation (the caller broke the contract of
/// `deallocate`, `grow` or `shrink`).
#[inline(always)]
fn own<C: SizeClasses>(mm: &MemoryManager<C>, ptr: NonNull<u8>, route: Route) -> NonNull<u8> {
    let fallback = mm.pools().fallback();
    let own = match route {
        // Nothing is ever accessed through a zero-sized allocation.
        Route::Zero => Some(ptr),
        Route::Pool(_) => fallback
            .chunks
            .find(ptr.addr().get())
            .map(|base| base.with_addr(ptr.addr())),
        Route::System => system::registered(fallback, ptr.addr().get()),
    };
    match own {
        Some(p) => p,
        None => foreign_pointer(mm.name()),
    }
}

#[cold]
#[inline(never)]
fn foreign_pointer(name: Option<&str>) -> ! {
    match name {
        Some(name) => panic!("memory_mgr: a pointer manager `{name}`'s allocator did not hand out"),
        None => panic!("memory_mgr: a pointer this manager's allocator did not hand out"),
    }
}

/// Frees the allocation `own` (the manager's own pointer), served by `route`.
///
/// # Safety
///
/// `own` must come from [`own`] for a live allocation of `mm` served by
/// `route`, not used afterwards.
#[inline(always)]
unsafe fn free<C: SizeClasses>(mm: &MemoryManager<C>, own: NonNull<u8>, route: Route) {
    match route {
        Route::Zero => {}
        // SAFETY: a live block of one of `mm`'s pools (caller), through a
        // pointer with provenance over its chunk, header included.
        Route::Pool(_) => unsafe { Pool::free(own) },
        // SAFETY: a live registered allocation of `mm` (caller).
        Route::System => unsafe { system::free_registered(mm.pools().fallback(), own) },
    }
}

// SAFETY:
// - A returned block stays valid until it is deallocated or the manager is
//   dropped; the `&'m MemoryManager` allocator borrows the manager, so every
//   collection using it is dropped first.
// - `&MemoryManager` is `Copy`: every copy is the same manager, so memory
//   from one copy may be freed by another, as the trait requires.
// - `allocate` returns blocks of at least `layout.size()` bytes at
//   `layout.align()` (pool blocks are naturally aligned to their class and
//   the class is chosen for the alignment; larger requests go to the system
//   with the layout itself).
// - `deallocate`/`grow`/`shrink` rely on the caller's guarantee that `ptr`
//   was allocated by this allocator with `layout`, which routes it back to
//   the same pool or the registry; they reach the memory only through the
//   manager's own pointers (module docs), whatever `ptr`'s provenance.
unsafe impl<C: SizeClasses> Allocator for &MemoryManager<C> {
    #[inline(always)]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let ptr = alloc(self, layout)?;
        Ok(NonNull::slice_from_raw_parts(ptr, usable::<C>(layout)))
    }

    #[inline(always)]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        let route = route(C::TABLE, layout.size(), layout.align());
        // SAFETY: the caller guarantees `ptr` is a live allocation of
        // `layout` (so served by `route`) from this manager, not used
        // afterwards.
        unsafe { free(self, own(self, ptr, route), route) }
    }

    #[inline]
    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller's guarantees for `grow` are those of `resize`.
        unsafe { resize(self, ptr, old, new) }
    }

    #[inline]
    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: as in `grow`.
        unsafe { resize(self, ptr, old, new) }
    }
}

/// Grows or shrinks: in place when both layouts map to the same pool class,
/// else allocate, copy `min(old, new)` bytes, free. Either way the pointer
/// returned is the manager's own.
///
/// # Safety
///
/// `ptr` must be a live allocation of `old` from `mm`; on success it must not
/// be used again (unless the same address is returned).
#[inline]
unsafe fn resize<C: SizeClasses>(
    mm: &MemoryManager<C>,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<NonNull<[u8]>, AllocError> {
    let from = route(C::TABLE, old.size(), old.align());
    let to = route(C::TABLE, new.size(), new.align());
    let own = own(mm, ptr, from);
    if let (Route::Pool(a), Route::Pool(b)) = (from, to) {
        if a == b {
            return Ok(NonNull::slice_from_raw_parts(own, C::TABLE.size(b)));
        }
    }
    let fresh = alloc(mm, new)?;
    // SAFETY: both are live, distinct allocations (a new one was just made)
    // of at least `min(old, new)` bytes, reached through pointers with
    // provenance over all of them; the old one is freed once, here.
    unsafe {
        core::ptr::copy_nonoverlapping(own.as_ptr(), fresh.as_ptr(), old.size().min(new.size()));
        free(mm, own, from);
    }
    Ok(NonNull::slice_from_raw_parts(fresh, usable::<C>(new)))
}
