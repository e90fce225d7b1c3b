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
        Source::System => crate::segments::alloc(layout).or_else(|| {
            // SAFETY: as above.
            NonNull::new(unsafe { std::alloc::GlobalAlloc::alloc(&std::alloc::System, layout) })
        }),
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
        // (A segment reads as zero: see `segments.rs`.)
        Source::System => crate::segments::alloc(layout).or_else(|| {
            // SAFETY: as above.
            NonNull::new(unsafe {
                std::alloc::GlobalAlloc::alloc_zeroed(&std::alloc::System, layout)
            })
        }),
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
        // SAFETY: as above, by `System` or (a chunk's layout) the segments.
        Source::System => unsafe {
            if !crate::segments::free(ptr, layout) {
                std::alloc::GlobalAlloc::dealloc(&std::alloc::System, ptr.as_ptr(), layout)
            }
        },
    }
}

/// The size of a page for [`decommit_around`]: 4 KiB. (Where pages are
/// larger the system refuses the unaligned range and nothing is given back.)
#[cfg(feature = "std")]
const PAGE: usize = 4096;

/// Gives back to the system the pages of the `size` bytes at `base`, but
/// the first (a chunk's header) and those holding the word at `keep`: their
/// bytes read as zero when next touched. Returns the bytes given back (0
/// where the system has no such call, or under Miri).
///
/// # Safety
///
/// The `size` bytes at `base` must be ours (an allocation, or a part of
/// one, from [`alloc()`]), and none of them but the first page's and the
/// word at `keep` may hold anything anyone reads before writing it.
#[cfg(feature = "std")]
pub(crate) unsafe fn decommit_around(base: NonNull<u8>, size: usize, keep: NonNull<u8>) -> usize {
    let start = base.as_ptr().addr();
    let end = (start + size) & !(PAGE - 1);
    let first = (start + PAGE) & !(PAGE - 1);
    let keep_lo = keep.as_ptr().addr() & !(PAGE - 1);
    let keep_hi = (keep.as_ptr().addr() + 8 + PAGE - 1) & !(PAGE - 1);
    let mut given = 0;
    for (lo, hi) in [(first, keep_lo.min(end)), (keep_hi.max(first), end)] {
        if lo < hi {
            // SAFETY: `[lo, hi)` lies within the caller's `size` bytes, past
            // the first page and clear of `keep`'s word: bytes no one reads
            // before writing them (the caller).
            given += unsafe { advise_free(base.as_ptr().with_addr(lo), hi - lo) };
        }
    }
    given
}

/// `madvise(MADV_DONTNEED)`: the pages' memory goes back to the system and
/// reads as zero when next touched. Returns `len`, or 0 if refused.
///
/// # Safety
///
/// `[ptr, ptr + len)` must be page-aligned memory of ours whose contents no
/// one needs.
#[cfg(all(feature = "std", target_os = "linux", not(miri)))]
unsafe fn advise_free(ptr: *mut u8, len: usize) -> usize {
    extern "C" {
        fn madvise(
            addr: *mut core::ffi::c_void,
            len: usize,
            advice: core::ffi::c_int,
        ) -> core::ffi::c_int;
    }
    /// Linux's `MADV_DONTNEED`.
    const MADV_DONTNEED: core::ffi::c_int = 4;
    // SAFETY: the caller's guarantee; the call changes only those pages'
    // contents (to zero), which no one needs.
    if unsafe { madvise(ptr.cast(), len, MADV_DONTNEED) } == 0 {
        len
    } else {
        0
    }
}

/// Elsewhere (and under Miri) nothing is given back.
///
/// # Safety
///
/// None needed; the signature matches the Linux one.
#[cfg(all(feature = "std", not(all(target_os = "linux", not(miri)))))]
unsafe fn advise_free(_ptr: *mut u8, _len: usize) -> usize {
    0
}
