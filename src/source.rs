//! Where a manager's memory comes from — the only caller of
//! `alloc::alloc::{alloc, alloc_zeroed, dealloc}` (and of
//! `std::alloc::System`, for `Global`): the layer every chunk, page, table
//! and large allocation is taken from, as mimalloc's `prim` layer is its.
//!
//! Contract: [`alloc()`] and [`alloc_zeroed`] take any layout (a zero size
//! is refused with `None` rather than being undefined behaviour) and return
//! memory that [`dealloc`] gives back with the same layout. "Global" means
//! the program's global allocator, so a `#[global_allocator]` (mimalloc, a
//! counting allocator in tests) sits under every chunk and large block —
//! and may call back into the manager asking it for memory (the
//! re-entrancy rule, see `table.rs`).

use core::alloc::Layout;
use core::ptr::NonNull;

/// Where a manager's memory comes from: the program's global allocator
/// (every manager but [`Global`](crate::Global)), or `std`'s `System`
/// allocator directly — for `Global`, which *is* the global allocator and
/// must never call back into itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `alloc::alloc`: the `#[global_allocator]`.
    Global,
    /// `std::alloc::System`.
    #[cfg(feature = "std")]
    System,
}

/// Allocates `layout` from `source`; `None` if it refuses or the size is
/// zero.
#[inline]
pub(crate) fn alloc(source: Source, layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() == 0 {
        return None;
    }
    match source {
        // SAFETY: the layout has a non-zero size, the one precondition.
        Source::Global => NonNull::new(unsafe { alloc::alloc::alloc(layout) }),
        #[cfg(feature = "std")]
        Source::System => {
            // SAFETY: as above.
            NonNull::new(unsafe { std::alloc::GlobalAlloc::alloc(&std::alloc::System, layout) })
        }
    }
}

/// Like [`alloc()`], but the memory is zeroed.
#[inline]
pub(crate) fn alloc_zeroed(source: Source, layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() == 0 {
        return None;
    }
    match source {
        // SAFETY: the layout has a non-zero size, the one precondition.
        Source::Global => NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) }),
        #[cfg(feature = "std")]
        Source::System => {
            // SAFETY: as above.
            NonNull::new(unsafe {
                std::alloc::GlobalAlloc::alloc_zeroed(&std::alloc::System, layout)
            })
        }
    }
}

/// Returns memory to `source`.
///
/// # Safety
///
/// `ptr` must come from [`alloc()`] or [`alloc_zeroed`] with this same
/// `source` and `layout` and must not have been deallocated since.
#[inline]
pub(crate) unsafe fn dealloc(source: Source, ptr: NonNull<u8>, layout: Layout) {
    match source {
        // SAFETY: the caller guarantees `ptr` was allocated by the global
        // allocator with `layout` and is still live.
        Source::Global => unsafe { alloc::alloc::dealloc(ptr.as_ptr(), layout) },
        #[cfg(feature = "std")]
        // SAFETY: as above, by `System`.
        Source::System => unsafe {
            std::alloc::GlobalAlloc::dealloc(&std::alloc::System, ptr.as_ptr(), layout)
        },
    }
}
