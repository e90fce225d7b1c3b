//! The system fallback: the only caller of `alloc::alloc::{alloc, alloc_zeroed, dealloc}`.
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
use core::ptr::{self, NonNull};

use crate::budget::Budget;
use crate::Error;

/// Allocates `layout` from the global allocator; `None` if it refuses or
/// the size is zero.
#[inline]
pub(crate) fn alloc(layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() == 0 {
        return None;
    }
    // SAFETY: the layout has a non-zero size, the one precondition of `alloc`.
    NonNull::new(unsafe { alloc::alloc::alloc(layout) })
}

/// Like [`alloc`], but the memory is zeroed.
#[inline]
pub(crate) fn alloc_zeroed(layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() == 0 {
        return None;
    }
    // SAFETY: the layout has a non-zero size, the one precondition of `alloc_zeroed`.
    NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) })
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
    unsafe { alloc::alloc::dealloc(ptr.as_ptr(), layout) }
}

/// The manager's record of typed allocations served by the system
/// allocator. It lives at a fixed heap address for the manager's lifetime;
/// every such allocation has a [`Header`] pointing at it and is on its list,
/// so dropping the manager frees them all, leaked ones included.
///
/// It also holds the manager's [`Budget`], which the pools reach through a
/// pointer: both live exactly as long as the manager.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Fallback {
    // The field order is deliberate: counters updated by the same call are
    // not adjacent, so LLVM does not merge two 8-byte updates into one
    // 16-byte load and store — which stalled on store forwarding when the
    // previous call had written them separately (pair/600 B PoolBox spent
    // half of its free in that one load).
    /// Live allocations.
    pub(crate) live: Cell<usize>,
    /// Most recent allocation; a doubly linked list through the headers.
    head: Cell<*mut Header>,
    /// Bytes asked of the system allocator for them, headers included.
    pub(crate) bytes: Cell<usize>,
    /// The manager's byte budget.
    pub(crate) budget: Budget,
    /// Most allocations live at once.
    pub(crate) peak: Cell<usize>,
    /// Allocations made, ever.
    pub(crate) allocs: Cell<usize>,
}

impl Fallback {
    /// No allocations yet; `budget` is the manager's limit in bytes.
    pub(crate) fn new(budget: Option<usize>) -> Self {
        Fallback {
            live: Cell::new(0),
            peak: Cell::new(0),
            allocs: Cell::new(0),
            bytes: Cell::new(0),
            head: Cell::new(ptr::null_mut()),
            budget: Budget::new(budget),
        }
    }
}

/// Written just before every typed system allocation's value.
#[repr(C)]
struct Header {
    fallback: *const Fallback,
    prev: *mut Header,
    next: *mut Header,
    /// Layout of the whole allocation, header included.
    full: Layout,
}

/// The full layout (header + padding + value) and the value's offset in it.
#[inline]
fn with_header(layout: Layout) -> Result<(Layout, usize), Error> {
    let overflow = Error::LayoutOverflow {
        size: layout.size(),
        align: layout.align(),
    };
    let header = Layout::new::<Header>();
    let (full, offset) = header.extend(layout).map_err(|_| overflow)?;
    Ok((full.pad_to_align(), offset))
}

/// Offset of the value in an allocation whose full layout is `full`: the
/// header size rounded up to the value's alignment (`full.align()` is the
/// larger of the header's and the value's).
#[inline]
fn with_header_offset(full: Layout) -> usize {
    core::mem::size_of::<Header>().next_multiple_of(full.align())
}

/// The header of a typed system allocation: the bytes right before the value.
///
/// # Safety
///
/// `value` must be the value pointer of an allocation made by [`alloc_typed`].
#[inline]
unsafe fn header_of(value: NonNull<u8>) -> NonNull<Header> {
    // SAFETY: the header lies in the same allocation, right before the value.
    unsafe { value.sub(core::mem::size_of::<Header>()) }.cast()
}

/// Allocates a value of `layout` (non-zero size) behind a header, and
/// records it in `fallback`.
#[inline(never)]
pub(crate) fn alloc_typed(fallback: &Fallback, layout: Layout) -> Result<NonNull<u8>, Error> {
    let (full, offset) = with_header(layout)?;
    fallback.budget.charge(full.size())?;
    let Some(base) = alloc(full) else {
        fallback.budget.credit(full.size());
        return Err(Error::OutOfMemory {
            size: full.size(),
            align: full.align(),
        });
    };
    // SAFETY: `offset + layout.size() <= full.size()`, so the value pointer
    // stays inside the allocation.
    let value = unsafe { base.add(offset) };
    // SAFETY: `value` is the value pointer of this new allocation.
    let header = unsafe { header_of(value) };
    let next = fallback.head.get();
    // SAFETY: `Layout::extend` put the value at `offset`, which is
    // `size_of::<Header>()` rounded up to the value's alignment; both are
    // multiples of 8 and the base is aligned to at least 8, so
    // `value - size_of::<Header>()` is inside the allocation and aligned for
    // a `Header`. `next`, if not null, is the header of another live
    // allocation of this fallback.
    unsafe {
        header.write(Header {
            fallback,
            prev: ptr::null_mut(),
            next,
            full,
        });
        if let Some(next) = NonNull::new(next) {
            (*next.as_ptr()).prev = header.as_ptr();
        }
    }
    fallback.head.set(header.as_ptr());
    fallback.live.set(fallback.live.get() + 1);
    fallback
        .peak
        .set(fallback.peak.get().max(fallback.live.get()));
    fallback.allocs.set(fallback.allocs.get() + 1);
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
    // SAFETY: `alloc_typed` wrote a header holding a valid `*const Fallback`;
    // the caller guarantees the allocation and the manager are alive.
    unsafe { &*(*header_of(value).as_ptr()).fallback }
}

/// Unlinks a header and frees its allocation.
///
/// # Safety
///
/// `header` must be the header of a live allocation of `alloc_typed` for
/// `fallback`.
unsafe fn unlink_and_free(fallback: &Fallback, header: NonNull<Header>) {
    // SAFETY:
    // 1. The caller guarantees a live header; its neighbours on the list are
    //    live headers of the same fallback, so the link updates are in bounds.
    // 2. `alloc_typed` placed the value `offset` bytes after the base, with
    //    `offset = with_header_offset(full)` and the header ending at the
    //    value, so `header + size_of::<Header>() - offset` is that base, and
    //    `full` is the layout it was allocated with. It is unlinked first, so
    //    it is freed exactly once.
    unsafe {
        let Header {
            prev, next, full, ..
        } = header.read();
        match NonNull::new(prev) {
            Some(p) => (*p.as_ptr()).next = next,
            None => fallback.head.set(next),
        }
        if let Some(n) = NonNull::new(next) {
            (*n.as_ptr()).prev = prev;
        }
        fallback.live.set(fallback.live.get() - 1);
        fallback.bytes.set(fallback.bytes.get() - full.size());
        fallback.budget.credit(full.size());
        // The base is `value - offset`, and the header ends at the value:
        // base = header + size_of::<Header>() - offset.
        let offset = with_header_offset(full);
        let base = header
            .cast::<u8>()
            .add(core::mem::size_of::<Header>())
            .sub(offset);
        dealloc(base, full);
    }
}

/// Frees a typed system allocation and forgets it.
///
/// # Safety
///
/// `value` must come from [`alloc_typed`] and not have been freed, and its
/// manager must still be alive. The header keeps the layout.
#[inline(never)]
pub(crate) unsafe fn free_typed(value: NonNull<u8>) {
    // SAFETY: the caller guarantees a live allocation of a live manager.
    unsafe { unlink_and_free(fallback_of(value), header_of(value)) }
}

/// Frees every allocation still recorded in `fallback`.
///
/// # Safety
///
/// None of them may be used afterwards.
pub(crate) unsafe fn free_all(fallback: &Fallback) {
    while let Some(header) = NonNull::new(fallback.head.get()) {
        // SAFETY: the list holds only live headers of this fallback; the
        // caller guarantees none is used again.
        unsafe { unlink_and_free(fallback, header) };
    }
}
