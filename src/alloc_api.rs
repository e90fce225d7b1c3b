//! `&MemoryManager` as an [`allocator_api2`] allocator (cargo feature
//! `allocator-api2`, on by default): `Vec`, `HashMap` (hashbrown),
//! `Box` and friends from `allocator-api2` live in the manager's pools.
//!
//! An allocation takes the class of its layout — the same pools as
//! [`PoolBox`](crate::PoolBox) — or the system fallback above the largest
//! class. `grow` and `shrink` stay in place while the new layout maps to the
//! same class, so a `Vec` growing from 9 to 16 bytes, or shrinking within a
//! class, copies nothing.

use core::alloc::Layout;
use core::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator};

use crate::pool_box::dealloc;
use crate::size_class::{route, Route, SizeClasses};
use crate::MemoryManager;

/// The usable size of an allocation of `layout`: the whole block for a pool
/// class, exactly the request otherwise.
#[inline]
fn usable<C: SizeClasses>(layout: Layout) -> usize {
    match route(C::TABLE, layout.size(), layout.align()) {
        Route::Pool(class) => C::TABLE.size(class),
        Route::Zero | Route::System => layout.size(),
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
//   the same pool or the system fallback.
unsafe impl<C: SizeClasses> Allocator for &MemoryManager<C> {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let ptr = self.alloc_layout(layout).map_err(|_| AllocError)?;
        Ok(NonNull::slice_from_raw_parts(ptr, usable::<C>(layout)))
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is a live allocation of
        // `layout` from this manager, not used afterwards.
        unsafe { dealloc::<C>(ptr, layout) }
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
/// else allocate, copy `min(old, new)` bytes, free.
///
/// # Safety
///
/// `ptr` must be a live allocation of `old` from `mm`; on success it must not
/// be used again (unless the same pointer is returned).
#[inline]
unsafe fn resize<C: SizeClasses>(
    mm: &MemoryManager<C>,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<NonNull<[u8]>, AllocError> {
    let from = route(C::TABLE, old.size(), old.align());
    let to = route(C::TABLE, new.size(), new.align());
    if let (Route::Pool(a), Route::Pool(b)) = (from, to) {
        if a == b {
            return Ok(NonNull::slice_from_raw_parts(ptr, C::TABLE.size(b)));
        }
    }
    let fresh = mm.alloc_layout(new).map_err(|_| AllocError)?;
    // SAFETY: both are live, distinct allocations (a new one was just made)
    // of at least `min(old, new)` bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.as_ptr(), old.size().min(new.size()));
        dealloc::<C>(ptr, old);
    }
    Ok(NonNull::slice_from_raw_parts(fresh, usable::<C>(new)))
}
