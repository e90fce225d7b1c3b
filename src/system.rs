//! The system fallback: the only caller of `std::alloc::{alloc, alloc_zeroed, dealloc}`.
//!
//! Contract: [`alloc`] and [`alloc_zeroed`] take any layout (a zero size is
//! refused with `None` rather than being undefined behaviour) and return
//! memory that [`dealloc`] gives back with the same layout. "System" means
//! the program's global allocator, so a `#[global_allocator]` (mimalloc, a
//! counting allocator in tests) sits under every chunk and large block.
//!
//! Typed allocations too large for any class (or every typed allocation in
//! pass-through mode) get a one-word header in front of the value that points
//! at the manager's [`Fallback`] counters, so a `PoolBox` of one word can find
//! them when it is dropped or cloned.

use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::NonNull;

use crate::Error;

/// Allocates `layout` from the global allocator; `None` if it refuses or
/// the size is zero.
#[inline]
pub(crate) fn alloc(layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() == 0 {
        return None;
    }
    // SAFETY: the layout has a non-zero size, the one precondition of `alloc`.
    NonNull::new(unsafe { std::alloc::alloc(layout) })
}

/// Like [`alloc`], but the memory is zeroed.
#[inline]
pub(crate) fn alloc_zeroed(layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() == 0 {
        return None;
    }
    // SAFETY: the layout has a non-zero size, the one precondition of `alloc_zeroed`.
    NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
}

/// Returns memory to the global allocator.
///
/// # Safety
///
/// `ptr` must come from [`alloc`] or [`alloc_zeroed`] with this same
/// `layout` and must not have been deallocated since.
#[inline]
pub(crate) unsafe fn dealloc(ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: the caller guarantees `ptr` was allocated by the global
    // allocator with `layout` and is still live.
    unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
}

/// The manager's counters for typed allocations served by the system
/// allocator. It lives at a fixed heap address for the manager's lifetime,
/// and every such allocation's header points at it.
#[derive(Debug, Default)]
pub(crate) struct Fallback {
    /// Live allocations.
    pub(crate) live: Cell<usize>,
    /// Bytes asked of the system allocator for them, headers included.
    pub(crate) bytes: Cell<usize>,
}

/// Size of the header: one pointer to the [`Fallback`].
const HEADER: usize = core::mem::size_of::<*const Fallback>();

/// The full layout (header + padding + value) and the value's offset in it.
#[inline]
fn with_header(layout: Layout) -> Result<(Layout, usize), Error> {
    let offset = layout.align().max(HEADER);
    let overflow = Error::LayoutOverflow {
        size: layout.size(),
        align: layout.align(),
    };
    let size = layout.size().checked_add(offset).ok_or(overflow)?;
    // `offset` is a power of two: the larger of two powers of two.
    let full = Layout::from_size_align(size, offset).map_err(|_| overflow)?;
    Ok((full, offset))
}

/// Allocates a value of `layout` (non-zero size) behind a header pointing at
/// `fallback`, and counts it there.
#[inline(never)]
pub(crate) fn alloc_typed(fallback: &Fallback, layout: Layout) -> Result<NonNull<u8>, Error> {
    let (full, offset) = with_header(layout)?;
    let base = alloc(full).ok_or(Error::OutOfMemory {
        size: full.size(),
        align: full.align(),
    })?;
    // SAFETY: `offset < full.size()` because the layout's size is non-zero,
    // so the value pointer stays inside the allocation.
    let value = unsafe { base.add(offset) };
    // SAFETY: `offset >= HEADER` and `offset` is a multiple of the pointer
    // alignment, so the header word `value - HEADER` lies inside the
    // allocation, before the value, and is aligned for a pointer.
    unsafe {
        value
            .sub(HEADER)
            .cast::<*const Fallback>()
            .write(fallback as *const Fallback);
    }
    fallback.live.set(fallback.live.get() + 1);
    fallback.bytes.set(fallback.bytes.get() + full.size());
    Ok(value)
}

/// The [`Fallback`] a typed system allocation belongs to.
///
/// # Safety
///
/// `value` must come from [`alloc_typed`] and not have been freed, and the
/// manager that owns the `Fallback` must still be alive.
#[inline]
pub(crate) unsafe fn fallback_of<'a>(value: NonNull<u8>) -> &'a Fallback {
    // SAFETY: `alloc_typed` wrote a valid `*const Fallback` at `value - HEADER`;
    // the caller guarantees the allocation and the manager are alive.
    unsafe { &*value.sub(HEADER).cast::<*const Fallback>().read() }
}

/// Frees a typed system allocation and uncounts it.
///
/// # Safety
///
/// `value` must come from [`alloc_typed`] with this same `layout`, must not
/// have been freed, and its manager must still be alive.
#[inline(never)]
pub(crate) unsafe fn free_typed(value: NonNull<u8>, layout: Layout) {
    // The same computation succeeded when the value was allocated.
    let Ok((full, offset)) = with_header(layout) else {
        unreachable!("layout was accepted at allocation")
    };
    // SAFETY: the caller guarantees `value` is a live allocation of `alloc_typed`.
    let fallback = unsafe { fallback_of(value) };
    fallback.live.set(fallback.live.get() - 1);
    fallback.bytes.set(fallback.bytes.get() - full.size());
    // SAFETY: `value - offset` is the base `alloc_typed` got from `alloc(full)`,
    // and the caller guarantees it has not been freed.
    unsafe { dealloc(value.sub(offset), full) }
}
