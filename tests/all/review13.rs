//! Thirteenth review: the cheaper trim (a pool with no chunk returns at
//! once, the chunk map walked only when a chunk is doomed or the map holds
//! storage only, a budget's shared count credited only for bytes
//! released), `is_valid` without sets (sorted chunks, a walk bounded by the
//! capacity), and `Global`'s segments on 2 MiB-aligned regions (whole
//! segments from regions of huge pages, the rest from regions without).
//! Probes through the public API: trims in every state, with budgets,
//! reserves, spare chunks, remote frees and resets, their figures checked
//! against the counting allocator and each other; `is_consistent` on many
//! valid shapes; `Global` at the segment sizes from many threads.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::mpsc;
use std::thread;

use memory_mgr::{DefaultClasses, Global, MemoryManager, SharedManager, SizeClasses, WideClasses};

use crate::{
    all_are, assert_no_leak, assert_still_works, held, n, warm_up, with_limit, PASS_THROUGH,
};

/// A chunk's alignment and the largest chunk: 1 MiB.
const SEGMENT: usize = 1 << 20;

/// A pointer of `Global`'s, sent to the thread that frees it.
#[derive(Clone, Copy)]
struct Sent(*mut u8);
// SAFETY: (test) each allocation is used by one thread at a time.
unsafe impl Send for Sent {}

/// Asserts that this thread holds from the system allocator, since
/// `start`, exactly the bytes `mm` says it reserves.
#[track_caller]
fn assert_held_is_reserved<C: SizeClasses>(mm: &MemoryManager<C>, start: isize, what: &str) {
    let h = held() - start;
    assert_eq!(
        h,
        mm.stats().reserved_bytes() as isize,
        "held vs reserved_bytes: {what}"
    );
}

/// Asserts that a trim gives back exactly what `reserved_bytes` loses.
#[track_caller]
fn trim_exact<C: SizeClasses>(mm: &MemoryManager<C>) -> usize {
    let before = mm.stats().reserved_bytes();
    let released = mm.trim();
    let after = mm.stats().reserved_bytes();
    assert_eq!(before - released, after, "trim's figure");
    assert!(mm.is_consistent());
    released
}

// ----- trims of a MemoryManager in every state -----------------------------

/// An unused manager, and one whose allocations are all live: a trim gives
/// nothing, changes no figure, and the manager keeps working.
#[test]
fn trims_with_nothing_to_give_back_change_nothing() {
    warm_up();
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let start = held();
        for _ in 0..3 {
            assert_eq!(trim_exact(&mm), 0);
            assert_eq!(mm.stats().reserved_bytes(), 0);
        }
        assert_held_is_reserved(&mm, start, "bare");
        // Full chunks of a few classes, all live: nothing to give back.
        let (nl, nb) = (n(300, 40), n(100, 20));
        let mut live = Vec::with_capacity(nl);
        let mut blocks = Vec::with_capacity(nb);
        let with_vecs = held();
        live.extend((0..nl).map(|i| mm.alloc([i as u64; 4])));
        blocks.extend((0..nb).map(|i| mm.alloc_block(1 + i % 300).unwrap()));
        assert_held_is_reserved(&mm, with_vecs, "all live");
        let s0 = mm.stats();
        for _ in 0..3 {
            assert_eq!(trim_exact(&mm), 0);
            let s = mm.stats();
            assert_eq!(s.reserved_bytes(), s0.reserved_bytes());
            assert_eq!(s.live(), s0.live());
            assert_eq!(
                s.classes.iter().map(|c| c.chunks).collect::<Vec<_>>(),
                s0.classes.iter().map(|c| c.chunks).collect::<Vec<_>>()
            );
        }
        drop(s0);
        assert_held_is_reserved(&mm, with_vecs, "all live, trimmed");
        for (i, b) in live.iter().enumerate() {
            assert_eq!(b[3], i as u64);
        }
        drop(live);
        for b in blocks {
            mm.free(b).unwrap();
        }
        assert!(trim_exact(&mm) > 0 || PASS_THROUGH);
        assert_held_is_reserved(&mm, start, "all freed and trimmed");
        assert_still_works(&mm);
        trim_exact(&mm);
        assert_eq!(mm.stats().reserved_bytes(), 0);
        assert_held_is_reserved(&mm, start, "end");
    });
}

/// A first chunk refused (by the counting allocator): the chunk map's
/// place made for it is storage with no chunk, which the next trim gives
/// back exactly — whichever class asked, the first or the last; nothing
/// leaks, and the manager works once memory is there again.
#[test]
fn a_refused_first_chunk_leaves_map_storage_a_trim_gives_back() {
    if PASS_THROUGH {
        return; // the system allocator serves every value
    }
    warm_up();
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let start = held();
        // The first class (8 bytes), then the last (512), each time bare.
        for round in 0..2 {
            let r = with_limit(0, || {
                if round == 0 {
                    mm.try_alloc(1u8).map(drop)
                } else {
                    mm.try_alloc([1u8; 500]).map(drop)
                }
            });
            assert!(r.is_err(), "a chunk refused");
            let s = mm.stats();
            assert_eq!(s.classes.iter().map(|c| c.chunks).sum::<usize>(), 0);
            let meta = s.reserved_bytes();
            assert!(meta > 0, "the map's place for the chunk");
            drop(s);
            assert_held_is_reserved(&mm, start, "after a refusal");
            assert_eq!(trim_exact(&mm), meta, "round {round}");
            assert_eq!(mm.stats().reserved_bytes(), 0);
            assert_held_is_reserved(&mm, start, "trimmed");
        }
        // One class with a chunk, another refused: the map holds a chunk,
        // a trim gives back nothing while the chunk is live, then all.
        let keep = mm.alloc(7u64);
        let r = with_limit(0, || mm.try_alloc([2u8; 200]).map(drop));
        assert!(r.is_err());
        assert_eq!(trim_exact(&mm), 0);
        assert_eq!(*keep, 7);
        drop(keep);
        assert!(trim_exact(&mm) > 0);
        assert_eq!(mm.stats().reserved_bytes(), 0);
        assert_held_is_reserved(&mm, start, "all trimmed");
        assert_still_works(&mm);
        trim_exact(&mm);
    });
}

/// Fills `mm` (of budget) with 64-byte boxes until one is refused; returns
/// the boxes.
fn fill<C: SizeClasses>(mm: &MemoryManager<C>) -> Vec<memory_mgr::PoolBox<'_, [u8; 64], C>> {
    let mut v = Vec::new();
    while let Ok(b) = mm.try_alloc([v.len() as u8; 64]) {
        v.push(b);
    }
    v
}

/// Under a budget, the number of boxes that fit is the same after every
/// kind of trim: of a bare manager, after refusals of other classes (the
/// map's storage kept or given back), after reserves, resets and partial
/// frees — the budget's figure stays exact.
#[test]
fn a_budgets_room_is_the_same_after_every_kind_of_trim() {
    if PASS_THROUGH {
        return; // no budget is kept
    }
    fn probe<C: SizeClasses>() {
        // (Under Miri a first chunk's worth of boxes, still over 100.)
        let budget = n(256 << 10, 40 << 10);
        let mut mm = MemoryManager::builder()
            .classes::<C>()
            .budget(budget)
            .build()
            .unwrap();
        // A value of another class, freed, then trims.
        assert!(mm.try_alloc([0u8; 300]).is_ok());
        trim_exact(&mm);
        let first = fill(&mm);
        let count = first.len();
        assert!(count > 100, "{count}");
        // Full: refusals of other classes and of reserves (whatever a
        // chunk of another class the rest of the budget still held took
        // is given back by the trim).
        let small = mm.try_alloc(1u8);
        assert!(mm.try_alloc([1u8; 200]).is_err());
        assert!(mm.reserve::<[u8; 120]>(10_000).is_err());
        assert!(mm.reserve_blocks(40, 10_000).is_err());
        drop(small);
        trim_exact(&mm);
        assert!(first.iter().enumerate().all(|(i, b)| b[63] == i as u8));
        drop(first);
        mm.trim();
        assert_eq!(mm.stats().reserved_bytes(), 0);
        for round in 0..4 {
            match round {
                // Spare chunks of a reserve, given back by the trim.
                0 => {
                    mm.reserve::<[u8; 24]>(n(500, 100)).unwrap();
                    mm.reserve_blocks(100, n(200, 30)).unwrap();
                }
                // A reset of live values, then a trim.
                1 => {
                    let v = fill(&mm);
                    assert_eq!(v.len(), count);
                    v.into_iter().for_each(|b| {
                        memory_mgr::PoolBox::leak(b);
                    });
                    mm.reset();
                }
                // Half freed, trimmed (chunks kept), then the rest.
                2 => {
                    let mut v = fill(&mm);
                    assert_eq!(v.len(), count);
                    let mut i = 0;
                    v.retain(|_| {
                        i += 1;
                        i % 2 == 0
                    });
                    assert!(mm.is_consistent());
                    assert!(trim_exact(&mm) < budget);
                    drop(v);
                }
                // Nothing at all.
                _ => {}
            }
            trim_exact(&mm);
            trim_exact(&mm);
            assert_eq!(mm.stats().reserved_bytes(), 0, "round {round}");
            let v = fill(&mm);
            assert_eq!(v.len(), count, "round {round}");
            assert!(mm.is_consistent());
            drop(v);
            trim_exact(&mm);
        }
        assert_eq!(mm.stats().reserved_bytes(), 0);
    }
    probe::<DefaultClasses>();
    // (Natively only: under Miri the same paths over 88 classes.)
    if !cfg!(miri) {
        probe::<WideClasses>();
    }
}

// ----- shared managers -----------------------------------------------------

/// A shared manager (default and wide classes, with and without a
/// budget): trims bare, with remote frees (a running owner's heap
/// reclaimed, an exited one's trimmed), interleaved with resets; the
/// released figure is what `reserved_bytes` loses, a second trim gives
/// nothing, and under a budget the room is the same every round.
#[test]
fn shared_trims_with_remote_frees_and_resets() {
    if PASS_THROUGH {
        return;
    }
    fn trim_exact_shared<C: SizeClasses>(sm: &mut SharedManager<C>) -> usize {
        let before = sm.stats().reserved_bytes();
        let released = sm.trim();
        assert_eq!(before - released, sm.stats().reserved_bytes(), "trim");
        assert!(sm.is_consistent());
        released
    }
    fn probe<C: SizeClasses>(mut sm: SharedManager<C>, budget: bool) {
        assert_eq!(trim_exact_shared(&mut sm), 0);
        let mut counts = Vec::new();
        for round in 0..n(3, 2) {
            let count = thread::scope(|s| {
                let (tx, rx) = mpsc::channel();
                let (done_tx, done_rx) = mpsc::channel::<()>();
                let sm2 = &sm;
                let worker = s.spawn(move || {
                    let mut c = 0;
                    let cap = if budget { usize::MAX } else { n(3000, 100) };
                    while c < cap {
                        match sm2.try_alloc([c as u64; 4]) {
                            Ok(b) => tx.send(b).unwrap(),
                            Err(_) => break,
                        }
                        c += 1;
                    }
                    drop(tx);
                    // Stay alive while the main thread frees and trims.
                    done_rx.recv().unwrap();
                    c
                });
                let got: Vec<_> = rx.iter().collect();
                for (i, b) in got.iter().enumerate() {
                    assert_eq!(b[0], i as u64);
                }
                drop(got); // remote frees into the running worker's heap
                           // (`&SharedManager` only: the worker is alive. Its emptied
                           // chunks' pages go back, the chunks stay its heap's and
                           // counted: no exact figure here.)
                let before = sm.stats().reserved_bytes();
                sm.trim();
                assert!(sm.stats().reserved_bytes() <= before);
                assert_eq!(sm.trim(), 0, "a second trim gives nothing");
                done_tx.send(()).unwrap();
                worker.join().unwrap()
            });
            assert!(count > 0);
            counts.push(count);
            trim_exact_shared(&mut sm);
            assert_eq!(trim_exact_shared(&mut sm), 0);
            if round == 1 {
                // A reset of a leaked value, then trims again.
                std::mem::forget(sm.alloc(5u32));
                sm.reset();
                trim_exact_shared(&mut sm);
                assert_eq!(trim_exact_shared(&mut sm), 0);
            }
            let s = sm.stats();
            assert_eq!(s.live(), 0, "{s}");
            assert!(sm.is_consistent());
        }
        assert!(counts.iter().all(|&c| c == counts[0]), "{counts:?}");
        let b = sm.alloc(9u8);
        assert_eq!(*b, 9);
    }
    let budget = 256 << 10;
    // (Under Miri one of the four, the default classes without a budget:
    // the others are the same paths over more classes or more boxes.)
    probe(SharedManager::new(), false);
    if !cfg!(miri) {
        probe(SharedManager::builder().budget(budget).build_shared(), true);
        probe(SharedManager::<WideClasses>::with_classes(), false);
        probe(
            SharedManager::builder()
                .classes::<WideClasses>()
                .budget(budget)
                .build_shared(),
            true,
        );
    }
}

// ----- is_consistent on valid shapes ---------------------------------------

/// Many chunks per class, free lists that cross chunks in scrambled
/// orders, spare chunks, partial trims, resets: every state is consistent
/// (no false refusal), for default and wide classes and checked blocks.
#[test]
fn is_consistent_holds_on_many_valid_shapes() {
    fn probe<C: SizeClasses>() {
        let mut mm = MemoryManager::<C>::with_classes();
        assert!(mm.is_consistent());
        let count = n(6000, 400);
        // (Under Miri the last round only: every shape is made in each.)
        for round in [0, 1, 2] {
            if cfg!(miri) && round != 2 {
                continue;
            }
            let mut v: Vec<Option<_>> =
                (0..count).map(|i| Some(mm.alloc([i as u32; 10]))).collect();
            let blocks: Vec<_> = (0..count / 4)
                .map(|i| mm.alloc_block(8 + (i * 13) % 600).unwrap())
                .collect();
            assert!(mm.is_consistent());
            // Freed in a scrambled order: strides across chunks.
            for stride in [7usize, 3, 5] {
                let mut i = round;
                for _ in 0..count / 4 {
                    i = (i + stride * 131) % count;
                    v[i] = None;
                }
                assert!(mm.is_consistent(), "stride {stride}");
            }
            // A partial trim: the chunks emptied go, the rest stay.
            trim_exact(&mm);
            // Freed again and reallocated: blocks of many chunks on the list.
            for (i, slot) in v.iter_mut().enumerate() {
                if slot.is_none() && i % 2 == 0 {
                    *slot = Some(mm.alloc([7; 10]));
                }
            }
            assert!(mm.is_consistent());
            for (i, b) in blocks.into_iter().enumerate() {
                if i % 3 != 0 {
                    mm.free(b).unwrap();
                }
            }
            assert!(mm.is_consistent());
            // Spare chunks on top of used ones.
            mm.reserve::<[u32; 10]>(count).unwrap();
            mm.reserve::<u8>(n(5000, 300)).unwrap();
            assert!(mm.is_consistent());
            v.iter_mut().step_by(3).for_each(|s| *s = None);
            assert!(mm.is_consistent());
            v.into_iter().flatten().for_each(|b| {
                memory_mgr::PoolBox::leak(b);
            });
            mm.reset();
            assert!(mm.is_consistent());
            // After a reset: blocks handed out again from the spare chunks.
            let w: Vec<_> = (0..count / 2).map(|i| mm.alloc(i as u64)).collect();
            assert!(mm.is_consistent());
            drop(w);
            assert!(mm.is_consistent());
            if round == 2 {
                trim_exact(&mm);
                assert_eq!(mm.stats().reserved_bytes(), 0);
            }
        }
    }
    probe::<DefaultClasses>();
    // (Natively only: under Miri the same code over 88 classes, not 6.)
    if !cfg!(miri) {
        probe::<WideClasses>();
    }
}

/// A shared manager: blocks of several threads' heaps freed on other
/// threads, collected by `is_consistent`; consistent throughout, and after
/// trims and a reset.
#[test]
fn shared_is_consistent_with_remote_frees() {
    fn probe<C: SizeClasses>(mut sm: SharedManager<C>) {
        let count = n(4000, 200);
        // (Under Miri one round of two threads: a trim, then the same
        // again, is what the second round adds.)
        for _ in 0..n(2, 1) {
            let got: Vec<_> = {
                let (tx, rx) = mpsc::channel();
                thread::scope(|s| {
                    for t in 0..n(3, 2) as u64 {
                        let tx = tx.clone();
                        let sm = &sm;
                        s.spawn(move || {
                            let v: Vec<_> = (0..count)
                                .map(|i| sm.alloc([t * 1_000_000 + i as u64; 3]))
                                .collect();
                            // Every other one sent away, the rest freed here
                            // in a scrambled order.
                            let mut keep = Vec::new();
                            for (i, b) in v.into_iter().enumerate() {
                                if i % 2 == 0 {
                                    tx.send(b).unwrap();
                                } else {
                                    keep.push(b);
                                }
                            }
                            let len = keep.len();
                            for k in 0..len {
                                let j = (k * 97) % keep.len();
                                drop(keep.swap_remove(j));
                            }
                        });
                    }
                });
                drop(tx);
                let got = rx.iter().collect();
                drop(rx);
                got
            };
            for b in &got {
                assert!(b[0] % 1_000_000 < count as u64 && b[0] == b[2]);
            }
            // Freed on another thread: remote frees into exited heaps.
            thread::scope(|s| {
                s.spawn(move || {
                    let mut got = got;
                    while !got.is_empty() {
                        let j = (got.len() * 31) % got.len();
                        drop(got.swap_remove(j));
                    }
                });
            });
            assert!(sm.is_consistent());
            let s = sm.stats();
            assert_eq!(s.live(), 0, "{s}");
            sm.trim();
            assert!(sm.is_consistent());
        }
        std::mem::forget(sm.alloc(1u64));
        sm.reset();
        assert!(sm.is_consistent());
        sm.trim();
        assert!(sm.is_consistent());
    }
    probe(SharedManager::new());
    // (Natively only: under Miri the same paths over 88 classes.)
    if !cfg!(miri) {
        probe(SharedManager::<WideClasses>::with_classes());
    }
}

// ----- Global's segments ---------------------------------------------------

/// `Global` (an instance of its own) at the sizes segments serve — exactly
/// 1 MiB (a huge-page region) and 8 KiB .. 1 MiB otherwise, aligned to
/// 1 MiB or not — from several threads at once: distinct, aligned,
/// zeroed where `alloc_zeroed` promises after their memory was written and
/// freed, contents kept through `realloc`; nothing live at the end.
#[test]
#[cfg_attr(
    miri,
    ignore = "segments need mmap: under Miri Global takes its memory from System, whose path review10 and review11 cover"
)]
fn global_at_segment_sizes_from_many_threads() {
    if PASS_THROUGH {
        return;
    }
    static G: Global = Global::new();
    let sizes: &[usize] = &[
        8 << 10,
        (8 << 10) + 8,
        64 << 10,
        (512 << 10) - 48,
        SEGMENT - 48,
        SEGMENT - 8,
        SEGMENT,
        SEGMENT + 8,
    ];
    let aligns: &[usize] = &[8, 4096, SEGMENT];
    let rounds = n(6, 1);
    let threads = n(4, 2);
    // `thread::spawn`, joined: a scoped thread counts as finished before
    // its exit hook gives its heap back, which may refill the cache after
    // the trim below.
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            thread::spawn(move || {
                for r in 0..rounds {
                    let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
                    for (k, &size) in sizes.iter().enumerate() {
                        if cfg!(miri) && size > 64 << 10 && (k + t) % 3 != 0 {
                            continue;
                        }
                        for &align in aligns {
                            let l = Layout::from_size_align(size, align).unwrap();
                            let tag = (t * 31 + r * 7 + k) as u8 | 1;
                            // SAFETY: a non-zero layout; written within it.
                            unsafe {
                                let p = G.alloc_zeroed(l);
                                assert!(!p.is_null());
                                assert_eq!(p.addr() % align, 0);
                                let bytes = std::slice::from_raw_parts(p, size);
                                assert!(all_are(bytes, 0), "{l:?} not zeroed");
                                p.write_bytes(tag, size);
                                live.push((p, l, tag));
                            }
                        }
                    }
                    // Distinct: no two overlap.
                    let mut spans: Vec<(usize, usize)> = live
                        .iter()
                        .map(|&(p, l, _)| (p.addr(), p.addr() + l.size()))
                        .collect();
                    spans.sort_unstable();
                    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0));
                    // Every other one grown or shrunk across 1 MiB.
                    for (i, (p, l, tag)) in live.iter_mut().enumerate() {
                        if i % 2 == 1 {
                            continue;
                        }
                        let new = if l.size() < SEGMENT {
                            SEGMENT
                        } else {
                            SEGMENT / 2
                        };
                        // SAFETY: live, of layout `l`, reallocated once.
                        unsafe {
                            let q = G.realloc(*p, *l, new);
                            assert!(!q.is_null());
                            let kept = l.size().min(new);
                            let bytes = std::slice::from_raw_parts(q, kept);
                            assert!(all_are(bytes, *tag), "{l:?} -> {new}");
                            q.write_bytes(*tag, new);
                            *p = q;
                            *l = Layout::from_size_align(new, l.align()).unwrap();
                        }
                    }
                    for (p, l, tag) in live {
                        // SAFETY: live, of layout `l`, freed once.
                        unsafe {
                            assert!(all_are(std::slice::from_raw_parts(p, l.size()), tag));
                            G.dealloc(p, l);
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(G.stats().live(), 0);
    G.trim();
    assert_eq!(G.stats().system.cached_bytes, 0);
}

/// `Global`: whole segments (exactly 1 MiB) and smaller ones taken and
/// given back over and over, freed on another thread too; every new one
/// reads as zero through `alloc_zeroed`, including the second half of a
/// pair whose first half was written, and `Global` trims to nothing live.
#[test]
#[cfg_attr(
    miri,
    ignore = "segments need mmap: under Miri Global takes its memory from System, whose path review10 and review11 cover"
)]
fn global_full_segments_reused_read_as_zero() {
    if PASS_THROUGH {
        return;
    }
    static G: Global = Global::new();
    let full = Layout::from_size_align(SEGMENT, SEGMENT).unwrap();
    let full8 = Layout::from_size_align(SEGMENT, 8).unwrap();
    let half = Layout::from_size_align(SEGMENT / 2, SEGMENT).unwrap();
    for round in 0..n(8, 2) {
        let mut live = Vec::new();
        for i in 0..n(12, 3) {
            let l = [full, full8, half][(i + round) % 3];
            // SAFETY: a non-zero layout, written within it.
            unsafe {
                let p = G.alloc_zeroed(l);
                assert!(!p.is_null());
                assert!(all_are(std::slice::from_raw_parts(p, l.size()), 0));
                p.write_bytes(0xC3, l.size());
                live.push((Sent(p), l));
            }
        }
        // Half freed here, half on another thread.
        let away: Vec<_> = live.split_off(live.len() / 2);
        for (p, l) in live {
            // SAFETY: live, of layout `l`, freed once.
            unsafe { G.dealloc(p.0, l) };
        }
        thread::spawn(move || {
            for (p, l) in away {
                // SAFETY: as above; `Global` is for any thread.
                unsafe { G.dealloc(p.0, l) };
            }
        })
        .join()
        .unwrap();
        if round % 2 == 1 {
            G.trim();
        }
    }
    assert_eq!(G.stats().live(), 0);
    G.trim();
    assert_eq!(G.stats().system.cached_bytes, 0);
}

/// `Global`'s trim (called as a value): with nothing to give back it gives
/// nothing, twice; with a thread's remote frees it gives back and the
/// figures agree.
#[test]
fn global_trims_in_every_state() {
    if PASS_THROUGH {
        return;
    }
    static G: Global = Global::new();
    G.trim();
    G.trim();
    assert_eq!(G.trim(), 0, "nothing to give back");
    let l = Layout::from_size_align(48, 8).unwrap();
    let count = n(5000, 200);
    // SAFETY: non-zero layouts; each pointer freed once, on another thread.
    let ptrs: Vec<Sent> = (0..count)
        .map(|i| unsafe {
            let p = G.alloc(l);
            assert!(!p.is_null());
            p.write(i as u8);
            Sent(p)
        })
        .collect();
    assert_eq!(G.trim(), 0, "all live");
    let (tx, rx) = mpsc::channel::<()>();
    let (freed_tx, freed_rx) = mpsc::channel::<()>();
    let h = thread::spawn(move || {
        for (i, p) in ptrs.into_iter().enumerate() {
            // SAFETY: as above.
            unsafe {
                assert_eq!(*p.0, i as u8);
                G.dealloc(p.0, l);
            }
        }
        freed_tx.send(()).unwrap();
        rx.recv().unwrap();
    });
    // The freeing thread stays alive until told: our heap is running.
    freed_rx.recv().unwrap();
    assert_eq!(G.stats().live(), 0);
    let before = G.stats().reserved_bytes();
    let released = G.trim();
    assert!(released > 0);
    assert_eq!(before - released, G.stats().reserved_bytes());
    assert_eq!(G.trim(), 0);
    tx.send(()).unwrap();
    h.join().unwrap();
    G.trim();
    assert_eq!(G.trim(), 0);
    assert_eq!(G.stats().live(), 0);
}

/// `Global` with classes in heavy use on several threads at once: their
/// pools grow to whole-segment chunks (the huge-page regions), values
/// intact, freed on other threads, trimmed, and taken again.
#[test]
#[cfg_attr(
    miri,
    ignore = "segments need mmap: under Miri Global takes its memory from System, whose path review10 and review11 cover"
)]
fn global_whole_segment_chunks_from_many_threads() {
    if PASS_THROUGH {
        return;
    }
    static G: Global = Global::new();
    let count = n(60_000, 300);
    let threads = n(3, 2);
    for _round in 0..2 {
        let (tx, rx) = mpsc::channel::<Vec<Sent>>();
        thread::scope(|s| {
            for t in 0..threads {
                let tx = tx.clone();
                s.spawn(move || {
                    let l = Layout::from_size_align(64 + 16 * t, 8).unwrap();
                    // SAFETY: non-zero layouts, written within them; each
                    // pointer freed once, by the thread it is sent to.
                    let v: Vec<Sent> = (0..count)
                        .map(|i| unsafe {
                            let p = G.alloc(l);
                            assert!(!p.is_null());
                            p.cast::<u64>().write(((t << 32) | i) as u64);
                            p.add(l.size() - 1).write(i as u8);
                            Sent(p)
                        })
                        .collect();
                    tx.send(v).unwrap();
                });
            }
        });
        drop(tx);
        let all: Vec<Vec<Sent>> = rx.iter().collect();
        if !cfg!(miri) {
            // Past 1,008 KiB of smaller chunks: whole segments.
            let s = G.stats();
            assert!(s.classes.iter().any(|c| c.reserved_bytes > 2 << 20), "{s}");
        }
        thread::scope(|s| {
            for v in all {
                s.spawn(move || {
                    for (i, &p) in v.iter().enumerate() {
                        // SAFETY: as above.
                        unsafe {
                            let p = p.0;
                            let x = p.cast::<u64>().read();
                            let t = (x >> 32) as usize;
                            assert_eq!(x as u32 as usize, i);
                            let l = Layout::from_size_align(64 + 16 * t, 8).unwrap();
                            assert_eq!(*p.add(l.size() - 1), i as u8);
                            G.dealloc(p, l);
                        }
                    }
                });
            }
        });
        assert_eq!(G.stats().live(), 0);
        G.trim();
    }
}

/// A pool grown to large chunks and trimmed bare starts again at the
/// first chunk size; a bare pool trimmed keeps starting there.
#[test]
fn a_pool_trimmed_bare_starts_again_at_the_first_chunk_size() {
    if PASS_THROUGH {
        return;
    }
    let mm = MemoryManager::new();
    let class = 3; // 64 bytes
    let first = {
        let b = mm.alloc([0u8; 64]);
        let r = mm.stats().classes[class].reserved_bytes;
        drop(b);
        r
    };
    for _ in 0..n(3, 2) {
        // (16 + 32 + 64 KiB chunks, at least.)
        let v: Vec<_> = (0..n(20_000, 1200))
            .map(|i| mm.alloc([i as u8; 64]))
            .collect();
        let s = mm.stats();
        assert!(s.classes[class].chunks >= 3, "grown: {s}");
        drop(v);
        trim_exact(&mm);
        trim_exact(&mm); // bare: the early return
        assert_eq!(mm.stats().classes[class].chunks, 0);
        let b = mm.alloc([1u8; 64]);
        assert_eq!(mm.stats().classes[class].reserved_bytes, first);
        drop(b);
        trim_exact(&mm);
    }
}

/// `is_consistent` with chunks of one or a few blocks (the widest classes,
/// small chunks) and odd class sizes: many chunks, scrambled frees.
#[test]
fn is_consistent_with_chunks_of_few_blocks() {
    struct Odd;
    impl SizeClasses for Odd {
        const SIZES: &'static [usize] = &[24, 40, 136, 1000, 4608];
    }
    fn probe<C: SizeClasses, const N: usize>(initial: usize, count: usize) {
        let mm = MemoryManager::builder()
            .classes::<C>()
            .initial_chunk_size(initial)
            .max_chunk_size(initial)
            .build()
            .unwrap();
        let mut v: Vec<Option<_>> = (0..count).map(|i| Some(mm.alloc([i as u8; N]))).collect();
        assert!(mm.is_consistent());
        let chunks: usize = mm.stats().classes.iter().map(|c| c.chunks).sum();
        assert!(chunks >= 2 || PASS_THROUGH, "{chunks}");
        for k in 0..count {
            v[(k * 7) % count] = None;
            // (Under Miri every 25th: each check walks every chunk.)
            if k % n(5, 25) == 0 {
                assert!(mm.is_consistent(), "{k}");
            }
        }
        assert!(mm.is_consistent());
        trim_exact(&mm);
        assert_eq!(
            mm.stats().reserved_bytes() - mm.stats().system.metadata_bytes,
            0
        );
    }
    probe::<WideClasses, 40_000>(64 << 10, n(200, 24));
    probe::<WideClasses, 5000>(16 << 10, n(200, 24));
    probe::<Odd, 4100>(16 << 10, n(200, 24));
    probe::<Odd, 130>(16 << 10, n(600, 130));
}

/// A shared manager whose first chunk is refused (by the counting
/// allocator, or by a budget smaller than a chunk): a trim gives back
/// what the refusal left (records, a map's place), twice is nothing,
/// nothing leaks, and with memory again it works.
#[test]
fn shared_refused_first_chunk_then_trims() {
    if PASS_THROUGH {
        return;
    }
    fn probe<C: SizeClasses>(sm: &SharedManager<C>, limited: bool) {
        let r = if limited {
            with_limit(0, || sm.try_alloc([3u8; 100]).map(drop))
        } else {
            sm.try_alloc([3u8; 100]).map(drop)
        };
        assert!(r.is_err());
        let before = sm.stats().reserved_bytes();
        let released = sm.trim();
        assert_eq!(before - released, sm.stats().reserved_bytes());
        assert_eq!(sm.stats().reserved_bytes(), 0);
        assert_eq!(sm.trim(), 0);
    }
    assert_no_leak(|| {
        let sm = SharedManager::new();
        probe(&sm, true);
        let b = sm.alloc([4u8; 100]);
        assert_eq!(b[99], 4);
        drop(b);
        sm.trim();
        assert_eq!(sm.stats().reserved_bytes(), 0);
        let sm = SharedManager::<WideClasses>::with_classes();
        probe(&sm, true);
        drop(sm);
        let sm = SharedManager::builder().budget(4096).build_shared();
        probe(&sm, false);
        let sm = SharedManager::builder()
            .classes::<WideClasses>()
            .budget(4096)
            .build_shared();
        probe(&sm, false);
    });
}
