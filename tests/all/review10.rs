//! Tenth review: the finer large classes and their cache (73adb8c), the
//! checked large entries rebuilt from `len` + `align`, the shared
//! manager's table of thread heaps read through a pointer and a
//! thread-local index with no bounds test (7ad1f14), heap records without
//! the large cache's stacks for thread heaps (6af4a95), and the routed
//! `Allocator` requests (0edbc3b). Probes through the public API only;
//! small under Miri where the boundary is still crossed.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use allocator_api2::vec::Vec as AVec;
use memory_mgr::{Error, Global, MemoryManager, SharedBox, SharedManager};

use crate::{all_are, assert_no_leak, grow_to, n, PASS_THROUGH};

/// The end of the fine large classes (32 per doubling), and the largest
/// full size (value, padding, footer) with a large class, the largest a
/// manager's large cache keeps (documented in `large.rs`: `FINE_MAX`,
/// `ROUND_MAX`).
const FINE_MAX: usize = (64 << 10) - 8;
const ROUND_MAX: usize = (4 << 20) - 8;

/// The footer a large allocation carries (documented: "a 632-byte value
/// with its 48-byte footer: 680 bytes").
const FOOTER: usize = 48;

/// Value sizes (bytes, align 1) around the edges the commits move: the
/// largest default class (512), the end of the 8-byte steps (t = 512), a
/// few fine steps, `FINE_MAX` and (natively, and once under Miri)
/// `ROUND_MAX`.
fn edge_sizes() -> Vec<usize> {
    let mut v = vec![513, 520, 632, 633, 640, 700, 705, 712, 713, 1000, 1001];
    // The value whose full size is exactly FINE_MAX, and the next ones.
    let at_fine = FINE_MAX - FOOTER;
    if cfg!(miri) {
        // The same full size twice (a hit), and the first one not kept.
        v.extend([at_fine - 1, at_fine, at_fine + 1]);
    } else {
        v.extend([
            at_fine - 8,
            at_fine - 1,
            at_fine,
            at_fine + 1,
            at_fine + 8,
            at_fine + 9,
        ]);
    }
    // The same at ROUND_MAX (4 MiB: a few under Miri).
    let at_round = ROUND_MAX - FOOTER;
    if cfg!(miri) {
        v.extend([at_round, at_round + 1]);
    } else {
        v.extend([
            at_round - 8,
            at_round - 1,
            at_round,
            at_round + 1,
            at_round + 8,
            at_round + 9,
        ]);
    }
    v
}

/// Whether a slice holds `byte` throughout (the whole of it natively, its
/// two ends and a 64 KiB stretch under Miri for the multi-MiB ones).
fn holds(xs: &[u8], byte: u8) -> bool {
    if cfg!(miri) && xs.len() > 70_000 {
        return xs[0] == byte
            && xs[xs.len() - 1] == byte
            && all_are(&xs[xs.len() - 65_536..], byte);
    }
    all_are(xs, byte)
}

/// The full size the manager charges for a live value of `size` bytes
/// (align 1): measured, in a fresh manager, as `system.bytes`.
fn full_of(size: usize) -> usize {
    let mm = MemoryManager::new();
    let b = mm.alloc_slice_copy(&vec![1u8; size]);
    let s = mm.stats();
    assert_eq!(s.system.live_boxes, 1);
    drop(b);
    s.system.bytes
}

/// The documented example and the class rules seen from outside: a full
/// size is 8 short of a multiple of 16 above 512 bytes, at most 1/32 over
/// the raw size up to `FINE_MAX`, and exact (no class) above `ROUND_MAX`.
#[test]
fn large_full_sizes_follow_the_documented_classes() {
    if PASS_THROUGH {
        return;
    }
    assert_no_leak(|| {
        assert_eq!(full_of(632), 680, "the documented example");
        for size in edge_sizes() {
            let full = full_of(size);
            let raw = size.next_multiple_of(8) + FOOTER;
            assert!(full >= raw, "{size}: {full} < {raw}");
            if raw <= ROUND_MAX {
                assert_eq!((full + 8) % 16, 0, "{size} -> {full}");
                assert!(full <= ROUND_MAX, "{size} -> {full}");
            } else {
                assert_eq!(full, raw, "above ROUND_MAX: no class ({size})");
            }
            if raw <= FINE_MAX {
                assert!((full - raw) * 32 <= raw, "{size}: {raw} -> {full}");
            }
        }
    });
}

/// A freed large value is kept exactly when its full size is at most
/// `ROUND_MAX`, `cached_bytes` is its full size, and the next request is
/// served from it exactly when its full size is the same (the same class:
/// the footer in the same place whatever the value's size), values intact
/// and every figure exact (the debug build checks the budget's count
/// against `reserved_bytes` in each `stats`).
#[test]
fn the_large_cache_reuses_exactly_within_a_class_across_sizes() {
    if PASS_THROUGH {
        return;
    }
    // Under Miri without the 4 MiB ones (the other tests cross
    // `ROUND_MAX`): every pair here is allocated twice.
    let sizes: Vec<usize> = edge_sizes()
        .into_iter()
        .filter(|&s| !cfg!(miri) || s < ROUND_MAX - 2 * FOOTER)
        .collect();
    let fulls: Vec<usize> = sizes.iter().map(|&s| full_of(s)).collect();
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        for (i, (&a, &fa)) in sizes.iter().zip(&fulls).enumerate() {
            // The next size (and the same one again) after `a`.
            for (&b, &fb) in [
                (&a, &fa),
                (&sizes[(i + 1) % sizes.len()], &fulls[(i + 1) % sizes.len()]),
            ] {
                let x = mm.alloc_slice_copy(&vec![0xA5u8; a]);
                assert!(holds(&x, 0xA5));
                drop(x);
                let s = mm.stats();
                let kept = fa <= ROUND_MAX;
                assert_eq!(s.system.cached_bytes, if kept { fa } else { 0 }, "{a}");
                assert_eq!(s.system.bytes, 0);
                assert_eq!(s.system.live_boxes, 0);
                let y = mm.alloc_slice_copy(&vec![0x5Au8; b]);
                assert!(holds(&y, 0x5A), "{a} then {b}");
                let s = mm.stats();
                assert_eq!(s.system.bytes, fb, "{a} then {b}");
                let hit = kept && fa == fb;
                assert_eq!(
                    s.system.cached_bytes,
                    if kept && !hit { fa } else { 0 },
                    "{a} ({fa}) then {b} ({fb})"
                );
                drop(y);
                mm.trim();
                let s = mm.stats();
                assert_eq!((s.system.cached_bytes, s.system.bytes), (0, 0));
            }
        }
        assert!(mm.is_consistent());
    });
}

/// Over-aligned large values are never cached (their full layout is not
/// the classes' alignment), stay aligned, and free cleanly; a value of
/// alignment 8 and one of 16 of the same size do not share an allocation.
#[test]
fn over_aligned_large_values_bypass_the_cache() {
    if PASS_THROUGH {
        return;
    }
    #[repr(C, align(64))]
    #[derive(Clone, Copy)]
    struct A64([u8; 640]);
    #[repr(C, align(4096))]
    #[derive(Clone, Copy)]
    struct Page([u8; 4096]);
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        for round in 0..3u8 {
            let a = mm.alloc(A64([round; 640]));
            let p = mm.alloc(Page([round; 4096]));
            assert_eq!((&raw const *a).addr() % 64, 0);
            assert_eq!((&raw const *p).addr() % 4096, 0);
            assert!(all_are(&a.0, round) && all_are(&p.0, round));
            let before = mm.stats().system.cached_bytes;
            drop((a, p));
            assert_eq!(
                mm.stats().system.cached_bytes,
                before,
                "over-aligned: not kept"
            );
            // Same sizes at alignment 8: kept, and not handed to the
            // over-aligned requests of the next round.
            let b = mm.alloc([round as u64; 80]);
            drop(b);
            assert!(mm.stats().system.cached_bytes > before);
            mm.trim();
        }
        assert_eq!(mm.stats().system.live(), 0);
    });
}

/// Checked large blocks: zero-sized ones (length 0, allocated as 1 byte)
/// at every alignment the large path serves, freed with the layout
/// rebuilt from `len` and `align`; a block reusing a cached allocation of
/// the same class but a larger size reads zero in every byte, including
/// the ones past the previous block's end.
#[test]
fn checked_large_blocks_rebuild_their_layout_and_come_back_zeroed() {
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        for align in [8usize, 64, 512, 1024, 4096, 1 << 16] {
            for size in [0usize, 1, 513, 4095, 4096, 4097] {
                let b = mm.alloc_block_aligned(size, align).unwrap();
                let got = mm.block_size(b).unwrap();
                assert!(got >= size);
                let ptr = mm.block_ptr(b).unwrap();
                assert_eq!(
                    ptr.cast::<u8>().as_ptr().addr() % align,
                    0,
                    "{size}@{align}"
                );
                if got > 0 {
                    mm.write(b, got - 1, 0xEEu8).unwrap();
                    assert_eq!(mm.read::<u8>(b, got - 1).unwrap(), 0xEE);
                }
                assert!(matches!(
                    mm.read::<u8>(b, got),
                    Err(Error::OutOfBounds { offset, len: 1, size }) if offset == got && size == got
                ));
                mm.free(b).unwrap();
                assert_eq!(mm.free(b), Err(Error::DoubleFree));
            }
        }
        assert_eq!(mm.stats().system.live_blocks, 0);
        if !PASS_THROUGH {
            // 700 and 705 bytes: one large class (full size 760).
            assert_eq!(full_of(700), full_of(705));
            let a = mm.alloc_block(700).unwrap();
            mm.write_bytes(a, 0, &[0xFF; 700]).unwrap();
            mm.trim();
            assert_eq!(mm.stats().system.cached_bytes, 0);
            mm.free(a).unwrap();
            let cached = mm.stats().system.cached_bytes;
            assert_eq!(cached, full_of(700));
            let b = mm.alloc_block(705).unwrap();
            assert_eq!(mm.stats().system.cached_bytes, 0, "the same class: reused");
            let mut bytes = [1u8; 705];
            mm.read_bytes(b, 0, &mut bytes).unwrap();
            assert!(all_are(&bytes, 0), "a reused block is zeroed");
            mm.free(b).unwrap();
        }
        assert!(mm.is_consistent());
    });
}

/// With a budget the cache is off: nothing is kept, and a request that
/// fits after a free is never refused for bytes no one holds.
#[test]
fn a_budgeted_manager_keeps_no_large_allocation() {
    assert_no_leak(|| {
        let budget = 200_000;
        let mm = MemoryManager::builder().budget(budget).build().unwrap();
        for size in [600usize, 30_000, 65_000, 120_000, 30_001] {
            let b = mm.try_alloc_slice_copy(&vec![3u8; size]).unwrap();
            assert!(all_are(&b, 3));
            drop(b);
            assert_eq!(mm.stats().system.cached_bytes, 0);
        }
        // Two of ~95 KB fit together only if nothing is kept.
        let x = mm.try_alloc_slice_copy(&vec![1u8; 95_000]).unwrap();
        let y = mm.try_alloc_slice_copy(&vec![2u8; 95_000]).unwrap();
        assert!(all_are(&x, 1) && all_are(&y, 2));
    });
}

/// The same for a shared manager with a budget: its central heap serves
/// the large values, and `SystemStats::cached_bytes` says none are kept
/// "with a budget". A kept allocation there is charged to the shared
/// budget and refuses a request of another class that fits.
#[test]
fn a_budgeted_shared_manager_keeps_no_large_allocation() {
    let mm = SharedManager::builder().budget(100_000).build_shared();
    let x = mm.try_alloc_slice_copy(&[1u8; 60_000]).unwrap();
    drop(x);
    let cached = mm.stats().system.cached_bytes;
    // 50 KB of another class: fits in the budget once the 60 KB are gone.
    let y = mm.try_alloc_slice_copy(&[2u8; 50_000]);
    assert!(y.is_ok(), "refused ({cached} bytes kept): {:?}", y.err());
    drop(y);
    assert_eq!(mm.stats().system.cached_bytes, 0, "kept under a budget");
}

/// `reset` keeps the kept allocations (and frees the live ones), `trim`
/// gives them back; a reset manager reuses them for requests of their
/// class with any size; dropping the manager frees them.
#[test]
fn reset_keeps_and_trim_releases_kept_large_allocations() {
    if PASS_THROUGH {
        return;
    }
    assert_no_leak(|| {
        let mut mm = MemoryManager::new();
        let kept_sizes = [600usize, 4000, FINE_MAX - FOOTER];
        let fulls: usize = kept_sizes.iter().map(|&s| full_of(s)).sum();
        for &s in &kept_sizes {
            drop(mm.alloc_slice_copy(&vec![9u8; s]));
        }
        // Live ones, big and small, and a checked large block.
        let live = mm.alloc_slice_copy(&vec![4u8; 100_000]);
        core::mem::forget(live);
        let blk = mm.alloc_block(3000).unwrap();
        assert_eq!(mm.stats().system.cached_bytes, fulls);
        mm.reset();
        let s = mm.stats();
        assert_eq!(s.system.cached_bytes, fulls, "a reset keeps them");
        assert_eq!((s.system.bytes, s.system.live()), (0, 0));
        assert_eq!(mm.free(blk), Err(Error::FreedByReset));
        // Reused after the reset, by other sizes of their classes.
        let a = mm.alloc_slice_copy(&vec![5u8; 599]);
        let b = mm.alloc_slice_copy(&vec![6u8; 3999]);
        assert!(all_are(&a, 5) && all_are(&b, 6));
        assert_eq!(mm.stats().system.cached_bytes, full_of(FINE_MAX - FOOTER));
        drop((a, b));
        // A trim gives back at least the kept ones (and the pools' and
        // the block store's pages).
        assert!(mm.trim() >= fulls);
        assert_eq!(mm.stats().system.cached_bytes, 0);
        for &s in &kept_sizes {
            drop(mm.alloc_slice_copy(&vec![9u8; s]));
        }
        assert!(mm.is_consistent());
        // Dropped with kept allocations: freed (assert_no_leak).
    });
}

/// allocator-api2 `Vec`s through `&MemoryManager` growing and shrinking
/// across the pool/large edge, the fine/coarse large classes and
/// `FINE_MAX` (and, natively, `ROUND_MAX`): values intact, the registry
/// and the figures empty at the end.
#[test]
fn vec_grow_and_shrink_across_the_large_edges() {
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        // (Under Miri the growth stops past 512 bytes: the capacities below
        // cross 64 KiB.)
        let top = n(ROUND_MAX + 4096, 2_000);
        let mut v: AVec<u8, &MemoryManager> = AVec::new_in(&mm);
        let mut len = 1;
        while len < top {
            v.resize(len, (len % 251) as u8);
            // (Under Miri in fewer steps: still past every edge up to top.)
            len = if cfg!(miri) {
                len * 2 + 7
            } else {
                len * 3 / 2 + 7
            };
        }
        // Exact capacities at the edges (reserve_exact: in place when the
        // large class is the same); under Miri one past 64 KiB.
        let caps: &[usize] = if cfg!(miri) {
            &[504, 512, 513, 632, 680, 65_481]
        } else {
            &[504, 512, 513, 632, 680, 65_480, 65_481, 65_536]
        };
        for &cap in caps {
            let mut w: AVec<u8, &MemoryManager> = AVec::with_capacity_in(8, &mm);
            w.extend_from_slice(&[7; 8]);
            w.reserve_exact(cap - 8);
            grow_to(&mut w, cap, 7);
            assert!(all_are(&w, 7));
            w.truncate(100);
            w.shrink_to_fit();
            assert!(all_are(&w, 7) && w.len() == 100);
            w.reserve_exact(cap);
            grow_to(&mut w, cap + 100, 8);
            assert!(all_are(&w[..100], 7) && all_are(&w[100..], 8));
        }
        // Shrink the big one back down through every edge.
        let mut l = v.len();
        while l > 1 {
            l = if cfg!(miri) { l / 3 } else { l * 2 / 3 };
            v.truncate(l);
            v.shrink_to_fit();
            assert_eq!(v.capacity(), l);
        }
        drop(v);
        let s = mm.stats();
        assert_eq!(s.live(), 0);
        assert!(mm.is_consistent());
    });
}

/// The same through `&SharedManager` (the central heap's registered large
/// path), on two threads at once.
#[test]
fn shared_vec_grow_and_shrink_across_the_large_edges() {
    let mut mm = SharedManager::new();
    thread::scope(|s| {
        for t in 0..2u8 {
            let mm = &mm;
            s.spawn(move || {
                // Words, not bytes: the same byte sizes (past 64 KiB, and
                // natively 4 MiB) in an eighth of the element writes.
                let mut v: AVec<u64, &SharedManager> = AVec::new_in(mm);
                let top = n(ROUND_MAX + 4096, 70_000) / 8;
                let mut len = 1;
                while len < top {
                    // (Under Miri the writes are a pattern's copies: the same growth.)
                    grow_to(&mut v, len, u64::from(t));
                    len = len * 2 + 1;
                }
                assert!(all_are(&v, u64::from(t)));
                while v.len() > 1 {
                    let l = v.len() / 3;
                    v.truncate(l);
                    v.shrink_to_fit();
                }
                assert!(all_are(&v, u64::from(t)));
            });
        }
    });
    assert_eq!(mm.stats().live(), 0);
    assert!(mm.is_consistent());
    mm.trim();
}

// ----- the shared manager's table of thread heaps --------------------------

/// A manager made by many threads at once (the window between the state's
/// CAS and `publish_heaps`): every thread allocates at once, boxes and a
/// large value and a collection; all values intact and the figures exact.
#[test]
fn a_state_made_by_many_threads_at_once_serves_all_of_them() {
    let rounds = n(200, 2);
    let threads = n(8, 3);
    for _ in 0..rounds {
        let mut mm = SharedManager::new();
        let barrier = Barrier::new(threads);
        let boxes: Vec<Vec<SharedBox<'_, [u64; 4]>>> = thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (mm, barrier) = (&mm, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        let v: Vec<_> = (0..4).map(|i| mm.alloc([t as u64 * 100 + i; 4])).collect();
                        let big = mm.alloc_slice_copy(&[t as u8; 600]);
                        let mut c: AVec<u64, &SharedManager> = AVec::new_in(mm);
                        c.extend(0..100);
                        assert!(all_are(&big, t as u8));
                        assert!(c.iter().copied().eq(0..100));
                        v
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (t, v) in boxes.iter().enumerate() {
            for (i, b) in v.iter().enumerate() {
                assert_eq!(**b, [t as u64 * 100 + i as u64; 4]);
            }
        }
        assert_eq!(mm.stats().live(), threads * 4);
        drop(boxes);
        assert_eq!(mm.stats().live(), 0);
        assert!(mm.is_consistent());
    }
}

/// A manager moved after its first use (its table pointer goes with it,
/// its state stays put), swapped with another one, and sent to another
/// thread: each allocation lands in the manager it was asked of.
#[test]
fn a_manager_moved_and_swapped_after_first_use_keeps_its_heaps() {
    let a = SharedManager::new();
    drop(a.alloc(1u64));
    let a = Box::new(a);
    {
        let x = a.alloc(2u64);
        assert_eq!((*x, a.stats().live()), (2, 1));
    }
    let mut a = *a;
    let mut b = SharedManager::new();
    drop(b.alloc([0u8; 40]));
    core::mem::swap(&mut a, &mut b);
    {
        let x = a.alloc([1u8; 40]); // the former `b`
        let y = b.alloc(3u64); // the former `a`
        let sa = a.stats();
        let sb = b.stats();
        assert_eq!((sa.live(), sb.live()), (1, 1));
        if !PASS_THROUGH {
            // (Pass-through: no pool serves anything.)
            assert_eq!(sa.classes.iter().map(|c| c.allocs).sum::<usize>(), 2);
            assert_eq!(sb.classes.iter().map(|c| c.allocs).sum::<usize>(), 3);
        }
        assert_eq!((x[39], *y), (1, 3));
    }
    let a = thread::spawn(move || {
        let x = a.alloc(4u64);
        assert_eq!(*x, 4);
        drop(x);
        a
    })
    .join()
    .unwrap();
    let x = a.alloc(5u64);
    assert_eq!((*x, a.stats().live()), (5, 1));
    drop(x);
    let (mut a, mut b) = (a, b);
    assert!(a.is_consistent() && b.is_consistent());
}

/// A thread's heap freed when it exits and made again by the next thread
/// (which gets the slot back): `metadata_bytes` goes up by one heap's
/// records and back down, the same each time, and the new thread's
/// allocations work (the table entry was nulled, not left dangling).
#[test]
fn heaps_freed_at_exit_are_made_again() {
    if PASS_THROUGH {
        return; // no thread heap is made: everything goes to the system
    }
    let mm = Arc::new(SharedManager::new());
    drop(mm.alloc(0u64)); // the state, and this thread's heap
    let base = mm.stats().system.metadata_bytes;
    let mut deltas = Vec::new();
    for round in 0..n(20, 3) as u64 {
        let m = Arc::clone(&mm);
        let delta = thread::spawn(move || {
            let v: Vec<_> = (0..10u64).map(|i| m.alloc([i + round; 3])).collect();
            let d = m.stats().system.metadata_bytes - base;
            assert!(v
                .iter()
                .enumerate()
                .all(|(i, b)| **b == [i as u64 + round; 3]));
            d
        })
        .join()
        .unwrap();
        deltas.push(delta);
        // Joined (TLS destructors ran): the heap went back.
        let s = mm.stats();
        assert_eq!(s.system.metadata_bytes, base, "round {round}");
        assert_eq!(s.live(), 0);
    }
    assert!(deltas.windows(2).all(|w| w[0] == w[1]), "{deltas:?}");
    assert!(deltas[0] > 0);
}

/// Thread-local destructors that allocate and free after the thread's
/// slot went back (`HEAP_INDEX` = `MAX_THREADS`: the null last entry), and
/// before it (slot still held): values intact, and the figures exact once
/// the threads are gone.
#[test]
fn thread_local_destructors_allocate_before_and_after_the_slot_goes() {
    static MM: SharedManager = SharedManager::new();
    static DONE: AtomicUsize = AtomicUsize::new(0);
    struct Late(Option<SharedBox<'static, [u64; 4]>>);
    impl Drop for Late {
        fn drop(&mut self) {
            let b = MM.alloc([7u64; 4]);
            let big = MM.alloc_slice_copy(&[9u8; 3000]);
            let mut c: AVec<u32, &SharedManager> = AVec::new_in(&MM);
            c.extend(0..300);
            assert_eq!(*b, [7; 4]);
            assert!(all_are(&big, 9));
            assert!(c.iter().copied().eq(0..300));
            // A box of the thread's own heap, freed now.
            if let Some(own) = self.0.take() {
                assert_eq!(*own, [1; 4]);
            }
            DONE.fetch_add(1, Ordering::Relaxed);
        }
    }
    thread_local! {
        static EARLY: std::cell::RefCell<Late> = const { std::cell::RefCell::new(Late(None)) };
        static AFTER: std::cell::RefCell<Late> = const { std::cell::RefCell::new(Late(None)) };
    }
    let threads = n(4, 2);
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            thread::spawn(|| {
                // Registered before the thread's slot (its destructor runs
                // after the slot's), then one registered after it.
                EARLY.with(|_| ());
                let own = MM.alloc([1u64; 4]);
                EARLY.with(|e| e.borrow_mut().0 = Some(own));
                AFTER.with(|a| a.borrow_mut().0 = Some(MM.alloc([1u64; 4])));
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(DONE.load(Ordering::Relaxed), threads * 2);
    let s = MM.stats();
    assert_eq!(s.live(), 0, "{s}");
    MM.trim();
    assert_eq!(MM.stats().live(), 0);
}

/// More threads than slots alive at once (natively): those without one use
/// the central heap through the table's null last entry; every value is
/// intact and the figures exact once they are joined. Under Miri, a few
/// threads (the index paths are the same).
#[test]
fn more_threads_than_slots_at_once() {
    let threads = n(1100, 3);
    let mut mm = SharedManager::new();
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        for t in 0..threads {
            let (mm, barrier) = (&mm, &barrier);
            thread::Builder::new()
                .stack_size(256 << 10)
                .spawn_scoped(s, move || {
                    let a = mm.alloc(t as u64);
                    let big = mm.alloc_slice_copy(&[t as u8; 700]);
                    // Every thread holds its values at once.
                    barrier.wait();
                    let b = mm.alloc([t as u32; 5]);
                    assert_eq!((*a, *b), (t as u64, [t as u32; 5]));
                    assert!(all_are(&big, t as u8));
                    barrier.wait();
                    if t % 2 == 0 {
                        drop((a, b, big));
                        return; // exits: its slot comes free
                    }
                    // The others go on while half the slots come free: a
                    // thread that found none (`FULL`) takes one now, and
                    // frees what the central heap gave it from its heap.
                    for round in 0..n(20, 2) {
                        let c = mm.alloc([round as u8; 24]);
                        assert_eq!(*c, [round as u8; 24]);
                        thread::yield_now();
                    }
                    assert_eq!((*a, *b), (t as u64, [t as u32; 5]));
                    drop((a, b, big));
                })
                .unwrap();
        }
    });
    let s = mm.stats();
    assert_eq!(s.live(), 0, "{s}");
    assert!(mm.is_consistent());
}

/// `Global` (its own instance) from several threads at once: allocations,
/// in-place and moving reallocations across the large edges up to and past
/// `ROUND_MAX` (`Global` keeps up to 4 MiB), frees on other threads; values
/// intact, nothing live at the end, and a trim empties every cache.
#[test]
fn global_from_many_threads_across_the_large_edges() {
    if PASS_THROUGH {
        return;
    }
    static G: Global = Global::new();
    struct Sent(*mut u8, Layout);
    // SAFETY: (test) each allocation is used by one thread at a time.
    unsafe impl Send for Sent {}
    let sizes: Vec<usize> = if cfg!(miri) {
        vec![
            8,
            600,
            65_536,
            65_537,
            ROUND_MAX - FOOTER,
            ROUND_MAX - FOOTER + 1,
        ]
    } else {
        vec![
            8,
            600,
            4096,
            65_536,
            65_537,
            100_000,
            1 << 20,
            ROUND_MAX - FOOTER - 8,
            ROUND_MAX - FOOTER,
            ROUND_MAX - FOOTER + 1,
            ROUND_MAX + 100,
            8 << 20,
        ]
    };
    let threads = n(6, 2);
    let (tx, rx) = std::sync::mpsc::channel::<Sent>();
    // `thread::spawn`, joined below: a scoped thread counts as joined before
    // its exit hook has given its heap back (which may refill the chunk
    // cache after the trim).
    let sizes = Arc::new(sizes);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let tx = tx.clone();
            let sizes = Arc::clone(&sizes);
            thread::spawn(move || {
                let byte = t as u8 + 1;
                for round in 0..n(3, 1) {
                    for w in sizes.windows(2) {
                        let (a, b) = if round % 2 == 0 {
                            (w[0], w[1])
                        } else {
                            (w[1], w[0])
                        };
                        let l = Layout::from_size_align(a, 8).unwrap();
                        // SAFETY: non-zero layouts; each pointer freed once
                        // with the layout it has then.
                        unsafe {
                            let p = G.alloc(l);
                            assert!(!p.is_null());
                            p.write_bytes(byte, a);
                            let q = G.realloc(p, l, b);
                            assert!(!q.is_null());
                            let kept = core::slice::from_raw_parts(q, a.min(b));
                            assert!(holds(kept, byte), "{a} -> {b}");
                            q.write_bytes(byte, b);
                            // One byte more: in place or not, intact.
                            let r = G.realloc(q, Layout::from_size_align(b, 8).unwrap(), b + 1);
                            assert!(!r.is_null());
                            assert!(holds(core::slice::from_raw_parts(r, b), byte));
                            tx.send(Sent(r, Layout::from_size_align(b + 1, 8).unwrap()))
                                .unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    drop(tx);
    // Freed on this thread (remote frees and the central heap's lock).
    for Sent(p, l) in rx {
        // SAFETY: from `G`, of layout `l`, sent once.
        unsafe { G.dealloc(p, l) };
    }
    for w in workers {
        w.join().unwrap();
    }
    let s = G.stats();
    assert_eq!(s.live(), 0, "{s}");
    assert!(s.system.cached_bytes <= 64 << 20);
    G.trim();
    assert_eq!(G.stats().system.cached_bytes, 0);
}

/// `fork` after the state is made and this thread's heap published: the
/// child allocates through the published table (its thread heap), the
/// central heap (large) and a collection, then exits; the parent goes on.
#[cfg(all(unix, not(miri)))]
#[test]
fn fork_after_publication_serves_the_child() {
    extern "C" {
        fn fork() -> i32;
        fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
        fn _exit(code: i32) -> !;
    }
    static MM: SharedManager = SharedManager::new();
    let keep = MM.alloc(11u64);
    let big = MM.alloc_slice_copy(&[3u8; 5000]);
    // SAFETY: the child only allocates from `MM` (its own heap, and the
    // central heap, whose lock the fork handler released) and exits.
    let pid = unsafe { fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let a = MM.alloc(12u64);
            let b = MM.alloc_slice_copy(&[4u8; 5000]);
            let mut c: AVec<u64, &SharedManager> = AVec::new_in(&MM);
            c.extend(0..1000);
            *a == 12 && *keep == 11 && all_are(&b, 4) && all_are(&big, 3) && c[999] == 999
        }))
        .unwrap_or(false);
        // SAFETY: ends the child at once.
        unsafe { _exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: our child.
    assert_eq!(unsafe { waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(status, 0, "the child failed");
    assert_eq!((*keep, big[4999]), (11, 3));
    let a = MM.alloc(13u64);
    assert_eq!(*a, 13);
}
