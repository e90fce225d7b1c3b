//! `&MemoryManager` as an [`allocator_api2`] allocator (cargo feature
//! `allocator-api2`, on by default): `Vec`, `HashMap` (hashbrown),
//! `Box` and friends from `allocator-api2` live in the manager's pools.
//!
//! An allocation takes the class of its layout — the same pools as
//! [`PoolBox`](crate::PoolBox) — or the large path above the largest
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
//! through it: `heap::own` turns its address into the manager's own pointer —
//! through the chunk its pool remembers or the chunk map for a pooled
//! block, through the registry of allocator-made allocations above the
//! classes — whose provenance covers the whole block and the metadata
//! around it. The address is all that is taken from the caller's pointer.
//! A pooled block whose chunk is not its layout's pool's (a free with
//! another class's layout) panics, as an address of no chunk does.

use core::alloc::Layout;
use core::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator};

use crate::heap;
use crate::size_class::SizeClasses;
use crate::MemoryManager;

/// `grow` and `shrink`, both `$resize(self, ptr, old, new)`: every resize
/// of these allocators is one rule (in place within a class, else move).
macro_rules! grow_and_shrink {
    ($resize:expr) => {
        #[inline]
        unsafe fn grow(
            &self,
            ptr: NonNull<u8>,
            old: Layout,
            new: Layout,
        ) -> Result<NonNull<[u8]>, AllocError> {
            // SAFETY: the caller's guarantees for `grow` are those of the
            // resize (a live allocation of `old` from this allocator).
            unsafe { $resize(self, ptr, old, new) }
        }

        #[inline]
        unsafe fn shrink(
            &self,
            ptr: NonNull<u8>,
            old: Layout,
            new: Layout,
        ) -> Result<NonNull<[u8]>, AllocError> {
            // SAFETY: as in `grow`.
            unsafe { $resize(self, ptr, old, new) }
        }
    };
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
#[cfg_attr(docsrs, doc(cfg(feature = "allocator-api2")))]
unsafe impl<C: SizeClasses> Allocator for &MemoryManager<C> {
    #[inline(always)]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // Routed once, for the allocation and its usable size.
        let req = heap::Routed::new::<C>(layout);
        let ptr = heap::alloc_registered_or_none(self.heap(), req).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(ptr, req.usable::<C>()))
    }

    #[inline(always)]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is a live allocation of
        // `layout` from this manager, not used afterwards.
        unsafe { heap::deallocate(self.heap(), ptr, layout) }
    }

    grow_and_shrink!(
        |mm: &Self, ptr, old, new| heap::resize(mm.heap(), ptr, old, new).map_err(|_| AllocError)
    );
}

// SAFETY: as for `&MemoryManager`, for the shared manager's heaps: a
// pooled allocation comes from the calling thread's heap (or, with no heap,
// the central one), a large one from the central heap under its lock, each
// valid until deallocated or the manager dropped (the `&SharedManager`
// borrows it); every copy of the reference is the same manager, so any
// copy, on any thread, may free or resize: a block goes back to its own
// pool, reached through the manager's own pointer (the segment map's for a
// thread heap's chunk, the central heap's maps under its lock), whatever
// `ptr`'s provenance. See `shared/collections.rs`.
#[cfg(all(feature = "std", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "std", feature = "allocator-api2"))))]
unsafe impl<C: SizeClasses> Allocator for &crate::SharedManager<C> {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.allocate_collection(layout).ok_or(AllocError)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's guarantee.
        unsafe { self.deallocate_collection(ptr, layout) }
    }

    grow_and_shrink!(|sm: &Self, ptr, old, new| sm
        .resize_collection(ptr, old, new)
        .map_err(|_| AllocError));
}
