//! Behaviour of `memory_mgr` through its public API. One test binary, one
//! module per feature. A counting global allocator (per thread) shows that
//! nothing leaks and can be told to refuse memory. With the `self-host`
//! feature it runs on `memory_mgr::Global` rather than the system allocator:
//! the whole suite, its threads and the test harness on this crate.

mod alignment;
mod alloc_free;
mod blocks;
mod collections;
mod drops;
mod fallback;
mod growth;
mod handles;
mod misuse;
mod model;
mod model_core;
mod operations;
mod pool_box;
#[cfg(all(feature = "std", feature = "allocator-api2"))]
mod review10;
#[cfg(all(feature = "std", feature = "allocator-api2"))]
mod review11;
#[cfg(all(feature = "std", feature = "allocator-api2"))]
mod review13;
mod review7;
#[cfg(all(feature = "std", feature = "allocator-api2"))]
mod review8;
#[cfg(feature = "serde")]
mod save;
#[cfg(all(feature = "std", feature = "allocator-api2"))]
mod shared;
#[cfg(feature = "std")]
mod shared_model;
mod soundness;
mod stores;
#[cfg(feature = "std")]
mod third_review;
mod wide;

use std::alloc::{GlobalAlloc, Layout};

#[cfg(not(feature = "self-host"))]
use std::alloc::System as Under;
#[cfg(feature = "self-host")]
#[allow(non_upper_case_globals)]
static Under: memory_mgr::Global = memory_mgr::Global::new();
use std::cell::Cell;

use memory_mgr::{MemoryManager, SizeClasses};

/// Counts the bytes each thread holds from the system allocator, and, when
/// a per-thread limit is set, refuses requests of 1 KiB or more past it
/// (chunks and large allocations; smaller ones — panic messages, the test's
/// own bookkeeping — still succeed).
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static LIMIT: Cell<Option<isize>> = const { Cell::new(None) };
}

fn held() -> isize {
    HELD.with(Cell::get)
}

fn note(delta: isize) {
    let _ = HELD.try_with(|h| h.set(h.get() + delta));
}

fn refuses(size: usize) -> bool {
    // The panic machinery (message, backtrace) must not be refused.
    if std::thread::panicking() {
        return false;
    }
    LIMIT
        .try_with(|l| {
            l.get()
                .is_some_and(|limit| size >= 1024 && held() + size as isize > limit)
        })
        .unwrap_or(false)
}

/// Allocates through `f` unless refused, and counts what it got.
fn counted(layout: Layout, f: impl FnOnce(Layout) -> *mut u8) -> *mut u8 {
    if refuses(layout.size()) {
        return std::ptr::null_mut();
    }
    let p = f(layout);
    if !p.is_null() {
        note(layout.size() as isize);
    }
    p
}

// SAFETY: delegates to `Under` (the system allocator, or `Global`), only adding bookkeeping that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        review7::on_alloc();
        // SAFETY: forwarded with the caller's guarantees.
        counted(layout, |l| unsafe { Under.alloc(l) })
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        review7::on_alloc();
        // SAFETY: forwarded with the caller's guarantees.
        counted(layout, |l| unsafe { Under.alloc_zeroed(l) })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        review7::on_dealloc();
        note(-(layout.size() as isize));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { Under.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() && refuses(new_size - layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { Under.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and asserts that it gave back every byte it took from the
/// system allocator on this thread.
#[track_caller]
fn assert_no_leak<R>(f: impl FnOnce() -> R) -> R {
    let before = held();
    let r = f();
    assert_eq!(held() - before, 0, "bytes leaked");
    r
}

/// Runs `f` while this thread may hold at most `extra` more bytes.
fn with_limit<R>(extra: usize, f: impl FnOnce() -> R) -> R {
    LIMIT.with(|l| l.set(Some(held() + extra as isize)));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    LIMIT.with(|l| l.set(None));
    r.unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Whether every element of `xs` is `value`, compared a slice at a time
/// against a pattern on the stack: for bytes and integers a `memcmp`,
/// which Miri runs as one step, where an element-by-element `all` cost it
/// a minute for 400 KB (the same check; it allocates nothing, so it is
/// safe under [`with_limit`]).
fn all_are<T: Copy + PartialEq>(xs: &[T], value: T) -> bool {
    let pattern = [value; 256];
    xs.chunks(pattern.len()).all(|c| c == &pattern[..c.len()])
}

/// `v.extend_from_slice(xs)`: a `reserve` of `xs.len()`, then the copies,
/// as allocator-api2's `extend_from_slice` does; under Miri one copy (a
/// step for it) where that pushes one element at a time.
#[cfg(feature = "allocator-api2")]
fn extend_copy<T: Copy, A: allocator_api2::alloc::Allocator>(
    v: &mut allocator_api2::vec::Vec<T, A>,
    xs: &[T],
) {
    if !cfg!(miri) {
        v.extend_from_slice(xs);
        return;
    }
    v.reserve(xs.len());
    // SAFETY: `reserve` made room for `xs.len()` elements past `v.len()`,
    // written before `set_len` counts them; `xs` is not `v`'s buffer.
    unsafe {
        let end = v.as_mut_ptr().add(v.len());
        std::ptr::copy_nonoverlapping(xs.as_ptr(), end, xs.len());
        v.set_len(v.len() + xs.len());
    }
}

/// `v.resize(len, value)` for a `v` that grows: a `reserve` of the
/// difference, then the writes, as `resize` does; under Miri the writes are
/// copies of a pattern on the stack, 256 elements a step, where `resize`
/// writes one element at a time (11 s for 64 KiB of bytes).
#[cfg(all(feature = "std", feature = "allocator-api2"))]
fn grow_to<T: Copy, A: allocator_api2::alloc::Allocator>(
    v: &mut allocator_api2::vec::Vec<T, A>,
    len: usize,
    value: T,
) {
    if !cfg!(miri) {
        v.resize(len, value);
        return;
    }
    v.reserve(len - v.len());
    let pattern = [value; 256];
    while v.len() < len {
        let k = (len - v.len()).min(pattern.len());
        extend_copy(v, &pattern[..k]);
    }
}

/// Uses a throwaway manager once on this thread, so that the allocations
/// of the first use (thread-locals, identities) are made before a test
/// compares the counting allocator with `reserved_bytes`.
#[cfg(all(feature = "std", feature = "allocator-api2"))]
fn warm_up() {
    let mm = MemoryManager::new();
    drop(mm.alloc_slice_copy(&[0u8; 700]));
    drop(mm.alloc(0u64));
    mm.free(mm.alloc_block(700).unwrap()).unwrap();
    mm.free(mm.alloc_block(7).unwrap()).unwrap();
    drop(allocator_api2::vec::Vec::<u8, _>::with_capacity_in(
        700, &mm,
    ));
    drop(allocator_api2::vec::Vec::<u8, _>::with_capacity_in(7, &mm));
}

/// Scales a loop count down under Miri.
fn n(normal: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        normal
    }
}

const PASS_THROUGH: bool = cfg!(feature = "pass-through");

/// Live (boxes, blocks, handles, collections) over every class and the
/// system row: the same in pooled and pass-through mode.
fn live_by_kind(s: &memory_mgr::Stats) -> (usize, usize, usize, usize) {
    let (mut b, mut k, h, mut c) = (
        s.system.live_boxes,
        s.system.live_blocks,
        s.handles.live,
        s.system.live_collections,
    );
    for row in &s.classes {
        b += row.live_boxes;
        k += row.live_blocks;
        c += row.live_collections;
    }
    (b, k, h, c)
}

/// Shows that `mm` still works after an error: `cycles` alloc/free cycles of
/// boxes and blocks of every class, then the counts balance.
#[track_caller]
fn assert_still_works<C: SizeClasses>(mm: &MemoryManager<C>) {
    let live_before = mm.stats().live();
    // Under Miri 31 cycles: the sizes `i * 37 % 1100` still reach the same
    // rows as 50 did (zero, the 16- to 512-byte classes, the system).
    for i in 0..n(10_000, 31) {
        let b = mm.alloc([i as u64; 4]);
        assert_eq!(b[3], i as u64);
        let size = (i * 37) % 1100;
        let blk = mm.alloc_block(size).expect("alloc_block after an error");
        assert!(mm.block_size(blk).unwrap() >= size);
        if mm.block_size(blk).unwrap() > 0 {
            mm.write(blk, mm.block_size(blk).unwrap() - 1, i as u8)
                .unwrap();
        }
        mm.free(blk).unwrap();
    }
    assert_eq!(mm.stats().live(), live_before);
    assert!(mm.is_consistent());
}
