//! `Global`: the whole program on memory_mgr, as its `#[global_allocator]`.
//!
//! A [`SharedManager`] with classes of its own (8 bytes to 64 KiB in pools:
//! 8..=64 in 8s, then four a doubling — 80, 96, 112, 128, 160, ...; the
//! system allocator above), whose chunks, large allocations and own
//! records come from the system directly — never from the global
//! allocator, which is itself: on Linux, chunks and anything of 8 KiB to
//! 1 MiB from `mmap`ed segments of its own whose pages go back when freed,
//! the rest from `std::alloc::System`. Allocation and free are a thread-local load
//! and a pop or a push; a block freed by another thread goes back with one
//! compare-and-swap. It never panics (a refusal is a null pointer; with
//! `debug-fill`, a write after free found on reuse panics, which aborts),
//! and a thread's thread-local destructors may allocate after its heap went
//! back (they use the central heap).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use crate::shared::{self, SharedManager};
use crate::size_class::GlobalClasses;
use crate::Stats;

/// A global allocator on memory_mgr: `#[global_allocator] static GLOBAL:
/// memory_mgr::Global = memory_mgr::Global::new();` runs every `Box`, `Vec`,
/// `String` and `HashMap` of the program on per-thread heaps of size-class
/// pools.
///
/// With the `pass-through` feature every call goes straight to the system
/// allocator (for Miri, AddressSanitizer and valgrind).
///
/// # Examples
///
/// ```
/// use memory_mgr::Global;
///
/// #[global_allocator]
/// static GLOBAL: Global = Global::new();
///
/// let v: Vec<u64> = (0..1000).collect();
/// let s = GLOBAL.stats();
/// assert!(s.allocs() > 0);
/// println!("{s}");
/// # drop(v);
/// ```
pub struct Global {
    inner: SharedManager<GlobalClasses>,
}

impl Global {
    /// The global allocator; nothing is allocated until the first call.
    ///
    /// # Examples
    ///
    /// ```
    /// static G: memory_mgr::Global = memory_mgr::Global::new();
    /// # let _ = &G;
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Global {
            inner: SharedManager::for_global(),
        }
    }

    /// What the program holds through this allocator: every thread's heap
    /// and the large allocations (see [`SharedManager::stats`]). Building
    /// the table allocates, through this allocator, like any other code.
    ///
    /// # Examples
    ///
    /// ```
    /// static G: memory_mgr::Global = memory_mgr::Global::new();
    /// use std::alloc::{GlobalAlloc, Layout};
    /// let layout = Layout::new::<[u8; 40]>();
    /// // SAFETY: a non-zero layout, freed with the same one.
    /// unsafe {
    ///     let p = G.alloc(layout);
    ///     assert_eq!(G.stats().live(), 1);
    ///     G.dealloc(p, layout);
    /// }
    /// ```
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Gives back to the system the chunks without a live allocation of the
    /// calling thread's heap, of the heaps of exited threads and of the
    /// central heap, and frees the thread heaps left empty; returns the
    /// bytes released. (A thread that exits does as much for its own heap.)
    ///
    /// # Examples
    ///
    /// ```
    /// static G: memory_mgr::Global = memory_mgr::Global::new();
    /// use std::alloc::{GlobalAlloc, Layout};
    /// let layout = Layout::new::<u64>();
    /// // SAFETY: a non-zero layout, freed with the same one.
    /// unsafe { G.dealloc(G.alloc(layout), layout) };
    /// assert!(G.trim() > 0);
    /// ```
    pub fn trim(&self) -> usize {
        self.inner.trim()
    }
}

impl Default for Global {
    fn default() -> Self {
        Global::new()
    }
}

impl core::fmt::Debug for Global {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Global").finish_non_exhaustive()
    }
}

// SAFETY:
// - `alloc` returns null or a block of at least `layout.size()` bytes
//   aligned to `layout.align()` (a class is chosen for both; the large path
//   allocates the layout itself), live until `dealloc`: chunks are never
//   released while a block in them is live, and the manager is never
//   dropped (`reset` needs `&mut`, which a `static` never gives).
// - `dealloc` and `realloc` rely on the caller's guarantee that `ptr` came
//   from this allocator with `layout`, which routes it back to the same pool
//   or footer.
// - No method panics or unwinds (but `debug-fill`'s write-after-free
//   check, which aborts): every error becomes a null pointer, and nothing
//   on these paths calls the global allocator (the memory comes from
//   `System` or the segments' `mmap`).
unsafe impl GlobalAlloc for Global {
    // `always`: the body is the whole fast path (and `__rust_alloc`, a
    // global allocator's one caller, takes it in); with `#[inline]` alone
    // LLVM kept it out of line in the trace replay, its `Result` passed
    // through the stack (54.4M instructions a round against 49.5M inline).
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if cfg!(feature = "pass-through") {
            // SAFETY: the caller's guarantee (a non-zero size).
            return unsafe { std::alloc::System.alloc(layout) };
        }
        match self.inner.alloc_or_none(layout) {
            Some(p) => p.as_ptr(),
            None => ptr::null_mut(),
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if cfg!(feature = "pass-through") {
            // SAFETY: the caller's guarantee.
            return unsafe { std::alloc::System.dealloc(ptr, layout) };
        }
        // SAFETY: the caller's guarantee: a live allocation of `layout` from
        // this allocator (not null), not used afterwards.
        unsafe { shared::dealloc::<GlobalClasses>(NonNull::new_unchecked(ptr), layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if cfg!(feature = "pass-through") {
            // SAFETY: the caller's guarantee (a non-zero size).
            return unsafe { std::alloc::System.alloc_zeroed(layout) };
        }
        // SAFETY: as `alloc`.
        let p = unsafe { self.alloc(layout) };
        if !p.is_null() {
            // SAFETY: a fresh allocation of `layout.size()` bytes.
            unsafe { p.write_bytes(0, layout.size()) };
        }
        p
    }

    /// In place when the new size has the same class (or the same large
    /// class); else a new allocation, a copy and a free.
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if cfg!(feature = "pass-through") {
            // SAFETY: the caller's guarantee.
            return unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: the caller guarantees `new_size`, rounded up to the
        // alignment, does not overflow `isize`, so the layout is valid.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // The heap's resize rule: the same class, or the same large class.
        if crate::heap::in_place::<GlobalClasses>(layout, new).is_some() {
            return ptr;
        }
        // SAFETY: `new` has a non-zero size (the caller's guarantee).
        let fresh = unsafe { self.alloc(new) };
        if !fresh.is_null() {
            // SAFETY: both are live and distinct, each at least
            // `min(old, new)` bytes; the old one is freed once, here.
            unsafe {
                ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        fresh
    }
}
