//! Thread exit and exact accounting across threads. One test runs the
//! scenarios one after the other, so that no thread of another test holds a
//! thread slot meanwhile: a `trim` then claims every heap of an exited thread
//! and takes back the blocks other threads freed into it, and the figures
//! are exact.
#![cfg(feature = "std")]

use std::thread;

use memory_mgr::{SharedBox, SharedManager, WideClasses};

const PASS_THROUGH: bool = cfg!(feature = "pass-through");

/// Scales a loop count down under Miri.
fn n(normal: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        normal
    }
}

#[test]
fn thread_exit_scenarios() {
    boxes_made_on_workers_are_dropped_on_the_main_thread();
    a_thousand_short_lived_threads_reuse_slots_and_their_blocks_live_on();
    thread_local_destructors_may_allocate_and_free();
    a_clone_made_on_a_worker_is_taken_back_after_it_exits();
    exited_threads_give_their_memory_back_without_a_trim();
    a_heap_with_live_blocks_stays_until_they_are_freed_then_a_trim_takes_it();
    a_remote_free_racing_the_owners_exit_loses_nothing();
    #[cfg(all(unix, not(miri)))]
    a_fork_child_can_allocate_while_another_thread_held_the_lock();
}

/// `fork` while another thread keeps taking the central lock (large
/// allocations): the child allocates large and small values and exits 0;
/// without the manager's fork handler it could find the lock held by a
/// thread it does not have, and hang.
#[cfg(all(unix, not(miri)))]
fn a_fork_child_can_allocate_while_another_thread_held_the_lock() {
    use std::sync::atomic::{AtomicBool, Ordering};
    extern "C" {
        fn fork() -> i32;
        fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
        fn _exit(code: i32) -> !;
        fn alarm(seconds: u32) -> u32;
    }
    static MM: SharedManager = SharedManager::new();
    static STOP: AtomicBool = AtomicBool::new(false);
    let worker = thread::spawn(|| {
        while !STOP.load(Ordering::Relaxed) {
            drop(MM.alloc([1u8; 4000])); // the central heap, under its lock
        }
    });
    for _ in 0..20 {
        // SAFETY: the child only allocates through the manager (whose fork
        // handler left its lock free) and the system allocator (glibc's
        // own handlers), then leaves with `_exit`.
        let pid = unsafe { fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: in the child; `alarm` ends a hang as a failure.
            unsafe { alarm(10) };
            let big = MM.alloc([2u8; 4000]);
            let small = MM.alloc(3u64);
            let ok = big[3999] == 2 && *small == 3;
            drop((big, small));
            // SAFETY: leaves the child without running the parent's
            // destructors.
            unsafe { _exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(status, 0, "the child failed or hung (status {status:#x})");
    }
    STOP.store(true, Ordering::Relaxed);
    worker.join().unwrap();
}

fn boxes_made_on_workers_are_dropped_on_the_main_thread() {
    let mut mm = SharedManager::new();
    let per = n(2000, 20);
    let boxes: Vec<SharedBox<'_, [u64; 4]>> = thread::scope(|s| {
        let workers: Vec<_> = (0..4u64)
            .map(|w| {
                let mm = &mm;
                s.spawn(move || {
                    (0..per)
                        .map(|i| mm.alloc([w, i as u64, 0, 0]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(boxes.len(), 4 * per);
    for (k, b) in boxes.iter().enumerate() {
        assert_eq!(b[0], (k / per) as u64);
        assert_eq!(b[1], (k % per) as u64);
    }
    assert_eq!(mm.stats().live(), boxes.len());
    drop(boxes);
    // Remote frees: counted at once by the freeing thread (this one), though
    // the blocks wait on the owners' lists. The workers exited, so a trim
    // claims their heaps, collects, and releases every chunk.
    assert_eq!(mm.stats().live(), 0);
    let released = mm.trim();
    assert!(released > 0 || PASS_THROUGH); // (nothing pooled to release)
    assert_eq!(mm.stats().live(), 0);
    assert_eq!(mm.stats().reserved_bytes(), 0);
    assert!(mm.is_consistent());
}

fn a_thousand_short_lived_threads_reuse_slots_and_their_blocks_live_on() {
    static MM: SharedManager = SharedManager::new();
    let threads = n(1000, 12);
    let mut survivors = Vec::new();
    for t in 0..threads {
        let b = thread::spawn(move || {
            let scratch: Vec<_> = (0..20).map(|i| MM.alloc(i as u64 + t as u64)).collect();
            drop(scratch);
            MM.alloc(t as u64) // outlives its thread
        })
        .join()
        .unwrap();
        survivors.push(b);
    }
    for (t, b) in survivors.iter().enumerate() {
        assert_eq!(**b, t as u64);
    }
    // One thread at a time: the same slot, so one heap, one chunk.
    assert_eq!(MM.stats().classes[0].chunks, usize::from(!PASS_THROUGH));
    drop(survivors);
    MM.trim();
    assert_eq!(MM.stats().live(), 0);
    assert_eq!(MM.stats().reserved_bytes(), 0);
}

thread_local! {
    static LATE: Late = const { Late };
}

static TLS_MM: SharedManager = SharedManager::new();

/// Allocates and frees in its destructor, as the thread exits — before or
/// after the thread's slot went back, depending on which thread-local was
/// registered first.
struct Late;

impl Drop for Late {
    fn drop(&mut self) {
        let v: Vec<_> = (0..100).map(|i| TLS_MM.alloc(i as u64)).collect();
        assert_eq!(v.iter().map(|b| **b).sum::<u64>(), 4950);
        drop(v);
        std::mem::forget(TLS_MM.alloc(1u8)); // never freed: counted live
    }
}

fn thread_local_destructors_may_allocate_and_free() {
    let threads = n(20, 2);
    for k in 0..threads {
        thread::spawn(move || {
            if k % 2 == 0 {
                // The slot (and its exit hook) first: `Late` is destroyed
                // first or last, as the platform orders them.
                drop(TLS_MM.alloc(0u64));
                LATE.with(|_| {});
            } else {
                LATE.with(|_| {});
                drop(TLS_MM.alloc(0u64));
            }
        })
        .join()
        .unwrap();
    }
    TLS_MM.trim();
    let s = TLS_MM.stats();
    if !PASS_THROUGH {
        assert_eq!(s.classes[0].live_boxes, threads, "{s}");
    }
    assert_eq!(s.live(), threads, "{s}");
}

fn a_clone_made_on_a_worker_is_taken_back_after_it_exits() {
    let mm = SharedManager::new();
    let s = mm.alloc_str("particles");
    let s2 = thread::scope(|sc| sc.spawn(|| s.clone()).join().unwrap());
    assert_eq!(&*s2, "particles");
    drop((s, s2));
    mm.trim();
    assert_eq!(mm.stats().live(), 0);
}

/// Allocates `per` boxes of each of 13 sizes (8 B to 16 KiB, 13 classes of
/// the wide table) from `mm`, and frees them.
fn churn(mm: &SharedManager<WideClasses>, per: usize) {
    macro_rules! sizes {
        ($($n:literal)*) => {{
            $(
                let v: Vec<_> = (0..per).map(|i| mm.alloc([i as u8; $n])).collect();
                assert!(v.iter().enumerate().all(|(i, b)| b[$n - 1] == i as u8));
                drop(v);
            )*
        }};
    }
    sizes!(8 24 40 72 136 264 520 1032 2056 4104 8200 12300 16384);
}

/// Threads that allocate in 13 classes, free, and exit leave nothing
/// reserved — no chunk and no heap — without a trim: each exit collected
/// and trimmed its heap and freed it. The figures stay exact (allocations
/// of the freed heaps included), and a trim finds nothing left to give.
fn exited_threads_give_their_memory_back_without_a_trim() {
    let mm: SharedManager<WideClasses> = SharedManager::with_classes();
    let (threads, per) = (n(16, 2), n(50, 3));
    let barrier = std::sync::Barrier::new(threads);
    let heap_bytes = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    churn(&mm, per);
                    // Alive together: a heap each, counted with its records.
                    barrier.wait();
                    let live = mm.stats();
                    barrier.wait();
                    live.system.metadata_bytes
                })
            })
            .collect();
        // `join`, not the scope's end: it waits for the thread-local
        // destructors, where the exit hook runs.
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    // Every heap was counted while its thread lived (none with
    // pass-through: every allocation goes to the central heap's large path).
    assert!(
        PASS_THROUGH || heap_bytes.iter().all(|&b| b >= threads * 1000),
        "{heap_bytes:?}"
    );
    // All that stays is the chunk cache's 1.25 MiB at most: empty chunks kept
    // for the next threads' heaps, which a trim gives back.
    let s = mm.stats();
    let cached = s.system.cached_bytes;
    assert!(cached <= 5 << 18, "{s}");
    assert_eq!(s.reserved_bytes(), cached, "{s}");
    assert_eq!(s.live(), 0);
    assert_eq!(s.allocs(), threads * per * 13);
    assert_eq!(s.frees(), s.allocs());
    assert_eq!(mm.trim(), cached, "the exits gave the rest back");
    assert_eq!(mm.stats().reserved_bytes(), 0);
}

/// A thread that exits with blocks live keeps its heap (the blocks stay
/// valid); another thread frees them (remote frees, counted at once); the
/// next thread on that slot adopts the heap, and its exit gives back the
/// pools nothing was freed into from elsewhere (O(chunks), no walk), while
/// the pool the remote frees went to stays, for the next holder, until a
/// `trim` walks it. `live()` is exact at every step; the trim then gives
/// back everything: that pool's chunks, the freeing thread's own heap
/// (its records only) and the chunk cache.
fn a_heap_with_live_blocks_stays_until_they_are_freed_then_a_trim_takes_it() {
    let mut mm: SharedManager<WideClasses> = SharedManager::with_classes();
    let per = n(200, 5);
    let kept: Vec<SharedBox<'_, [u64; 3], WideClasses>> = thread::scope(|s| {
        s.spawn(|| {
            churn(&mm, 2);
            (0..per).map(|i| mm.alloc([i as u64; 3])).collect()
        })
        .join()
        .unwrap()
    });
    let s = mm.stats();
    assert_eq!(s.live(), per);
    assert!(s.classes.iter().map(|c| c.chunks).sum::<usize>() > 0 || PASS_THROUGH);
    assert!(kept.iter().enumerate().all(|(i, b)| b[2] == i as u64));
    let mut kept = kept;
    let rest = kept.split_off(per / 2);
    drop(kept); // remote frees: counted here, waiting on the exited heap's list
    assert_eq!(mm.stats().live(), per - per / 2);
    drop(rest);
    assert_eq!(mm.stats().live(), 0);
    // The next thread is given the lowest free slot: the exited one's (this
    // test runs alone, on one thread). It adopts the heap, uses it, and its
    // exit gives back every pool but the one the remote frees went to.
    let class = mm.classes().class_for_size(24).unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            drop(mm.alloc(1u64));
            assert_eq!(mm.stats().live(), 0);
        })
        .join()
        .unwrap()
    });
    let s = mm.stats();
    assert_eq!(s.live(), 0);
    let chunks = |s: &memory_mgr::Stats| s.classes.iter().map(|c| c.chunks).sum::<usize>();
    assert!(
        PASS_THROUGH || (s.classes[class].chunks > 0 && chunks(&s) == s.classes[class].chunks),
        "{s}"
    );
    let released = mm.trim();
    let s2 = mm.stats();
    assert!(
        released == s.reserved_bytes() || PASS_THROUGH,
        "{released} {s}"
    );
    assert_eq!(
        (s2.reserved_bytes(), s2.live(), chunks(&s2)),
        (0, 0, 0),
        "{s2}"
    );
    assert_eq!(s2.allocs(), 13 * 2 + per + 1);
    assert!(mm.is_consistent());
}

/// A block freed on one thread while the thread that owns its heap exits:
/// the owner's exit hook may collect it, release its chunk and free the
/// heap right after the push, so the remote free must not touch the pool
/// after it (Miri checks; it flagged a `&Pool` held across the push in a
/// probe). Whichever side wins, nothing is lost: after a trim, nothing is
/// live or reserved. (Here, among the scenarios run one after the other:
/// in the suite, another test's thread could take the exited owner's
/// thread slot before the trim, and a trim leaves a heap whose slot a live
/// thread holds to that thread — seen once in CI, under load.)
fn a_remote_free_racing_the_owners_exit_loses_nothing() {
    let mm = SharedManager::new();
    for round in 0..n(50, 3) {
        thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel();
            let (ack, acked) = std::sync::mpsc::channel();
            let mm = &mm;
            let owner = s.spawn(move || {
                let b = mm.alloc([round as u64; 4]);
                tx.send(b).unwrap();
                // Exits once the freer has the block: its exit hook races
                // the free below.
                acked.recv().unwrap();
            });
            let freer = s.spawn(move || {
                let b = rx.recv().unwrap();
                assert_eq!(b[3], round as u64);
                ack.send(()).unwrap();
                drop(b);
            });
            owner.join().unwrap();
            freer.join().unwrap();
        });
        assert_eq!(mm.stats().live(), 0);
    }
    mm.trim();
    let st = mm.stats();
    assert_eq!((st.live(), st.reserved_bytes()), (0, 0), "{st}");
    assert_eq!(st.allocs(), n(50, 3));
}
