//! Measurements that do not need a timer, for `benches/run.sh`:
//!
//! * `measure pair CONTENDER N` — N alloc+write+free pairs of a 64-byte
//!   payload; run under `valgrind --tool=callgrind` with N and with 0, the
//!   difference over N is instructions per pair.
//! * `measure churn CONTENDER N` — 10,000 live 8-byte objects; N steps,
//!   each allocating one and freeing a pseudo-random live one (the churn
//!   benchmark); instructions per step as for `pair`.
//! * `measure churn-time CONTENDER SIZE N` — the churn with a SIZE-byte
//!   payload (8, 64 or 512; `poolbox`, `slab`, `mimalloc`), timed:
//!   nanoseconds per step, the fastest of 7 runs of N steps.
//! * `measure trees CONTENDER DEPTH RUNS` — binary-trees to DEPTH
//!   (`poolbox`, `mimalloc`, `bumpalo`; the benchmark's shapes, without
//!   the output check; `poolbox-kept`: one manager for all runs;
//!   `poolbox-apart`: the long-lived tree in a manager of its own), the
//!   fastest of RUNS runs in ms.
//! * `measure batch CONTENDER ROUNDS` — ROUNDS rounds of: allocate 10,000
//!   64-byte objects, free them in a fixed random order; prints the fastest
//!   round in µs (the minimum is what a shared, noisy machine disturbs
//!   least).
//! * `measure memory CONTENDER SIZE` — 1,000,000 live objects of SIZE bytes
//!   (8, 24, 64 or 100); prints the resident-set growth per object and, for
//!   our managers, the bytes reserved per object.
//! * `measure scratch CONTENDER N` — N frames of per-frame scratch: 5,000
//!   32-byte values pushed into a `Vec` (allocator-api2's in a manager,
//!   bumpalo's in a `Bump`), the `Vec` dropped, then a reset (`manager`,
//!   `bumpalo`; `manager-noreset` without it). `boxes-manager`,
//!   `boxes-noreset` and `boxes-bumpalo`: the same with each value in a box
//!   of its own, the boxes in the `Vec` (`poolboxes-manager`: the boxes
//!   one-word `PoolBox`es, in an allocator-api2 `Vec` in the same manager). Nanoseconds per frame, the fastest
//!   of 7 runs.
//! * `measure reset SHAPE N` — N frames as above (`SHAPE` `vec`, the frame
//!   of `scratch manager`; `boxes`, that of `scratch boxes-manager`; or
//!   `chunks`: 5,000 32-byte and 4,000 64-byte boxes in pools of 4 KiB
//!   chunks, 104 chunks), timing only the `reset()` after each;
//!   nanoseconds per reset, the fastest of 7 runs. Under callgrind with
//!   `--toggle-collect='*reset_only*'`, the instructions of 7 × N resets.
//! * `measure trim CONTENDER N` — nanoseconds per `trim()` with nothing
//!   to give back (the fastest of 7 runs of N): `manager` (a
//!   `MemoryManager`), `shared` and `wide` (a `SharedManager` with the
//!   default classes and with `WideClasses`, this thread's heap) and
//!   `global` (a `Global`, called directly); each first allocates and
//!   frees a few sizes.
//!
//! Run each in its own process.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;

use memory_mgr::{FineClasses, MemoryManager, SizeClasses};
use mimalloc::MiMalloc;

static MI: MiMalloc = MiMalloc;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

// Each workload in a function of its own, so that adding one does not
// change how another is compiled.
#[inline(never)]
fn pair(contender: &str, n: usize) {
    type P = [u64; 8];
    let payload = |i: usize| -> P { [black_box(i) as u64; 8] };
    match contender {
        "poolbox" => {
            let mm = MemoryManager::new();
            for i in 0..n {
                black_box(&*mm.alloc(payload(i)));
            }
        }
        // The same pair through a `SharedManager` (the thread's heap).
        "sharedbox" => {
            let mm = memory_mgr::SharedManager::new();
            for i in 0..n {
                black_box(&*mm.alloc(payload(i)));
            }
        }
        // `Global` as an allocator (called directly, as `Box` would).
        "global" => {
            static G: memory_mgr::Global = memory_mgr::Global::new();
            let layout = Layout::new::<P>();
            for i in 0..n {
                // SAFETY: a non-zero layout, freed with the same one.
                unsafe {
                    let p = G.alloc(layout).cast::<P>();
                    p.write(payload(i));
                    black_box(&*p);
                    G.dealloc(p.cast(), layout);
                }
            }
        }
        // 600 bytes: above the default table's largest class (512).
        "poolbox600" => {
            let mm = MemoryManager::new();
            for i in 0..n {
                black_box(&*mm.alloc([black_box(i) as u64; 75]));
            }
        }
        "box600" => {
            for i in 0..n {
                black_box(&*Box::new([black_box(i) as u64; 75]));
            }
        }
        "block" => {
            let mm = MemoryManager::new();
            for i in 0..n {
                let b = mm.alloc_block(64).unwrap();
                // Checked, as slotmap's insert + index.
                mm.write(b, 0, payload(i)).unwrap();
                black_box(b);
                mm.free(b).unwrap();
            }
        }
        "box" => {
            for i in 0..n {
                black_box(&*Box::new(payload(i)));
            }
        }
        "allocator" => {
            // The allocator-api2 path (what `Vec` and `HashMap` use).
            let mm = MemoryManager::new();
            let b = allocator_api2::boxed::Box::new_in(0u8, &mm); // one chunk
            for i in 0..n {
                black_box(&*allocator_api2::boxed::Box::new_in(payload(i), &mm));
            }
            drop(b);
        }
        // The allocator-api2 path of a `SharedManager` (this thread's heap).
        "shared-allocator" => {
            let sm = memory_mgr::SharedManager::new();
            let b = allocator_api2::boxed::Box::new_in(0u8, &sm); // one chunk
            for i in 0..n {
                black_box(&*allocator_api2::boxed::Box::new_in(payload(i), &sm));
            }
            drop(b);
        }
        "mimalloc" => {
            for i in 0..n {
                // SAFETY: non-zero layout; checked; freed once with it.
                unsafe {
                    let p = MI.alloc(Layout::new::<P>()).cast::<P>();
                    assert!(!p.is_null());
                    p.write(payload(i));
                    black_box(p);
                    MI.dealloc(p.cast(), Layout::new::<P>());
                }
            }
        }
        "slab" => {
            let mut s = slab::Slab::with_capacity(16);
            for i in 0..n {
                let k = s.insert(payload(i));
                black_box(&s[k]);
                s.remove(k);
            }
        }
        "slotmap" => {
            let mut s = slotmap::SlotMap::with_capacity(16);
            for i in 0..n {
                let k = s.insert(payload(i));
                black_box(&s[k]);
                s.remove(k);
            }
        }
        // The two checked calls alone: allocate (zeroed) and free; insert
        // (moving the value in) and remove.
        "block-bare" => {
            let mm = MemoryManager::new();
            for _ in 0..n {
                let b = mm.alloc_block(64).unwrap();
                mm.free(black_box(b)).unwrap();
            }
        }
        "slotmap-bare" => {
            let mut s = slotmap::SlotMap::with_capacity(16);
            for i in 0..n {
                let k = s.insert(payload(i));
                black_box(s.remove(black_box(k)));
            }
        }
        "bumpalo" => {
            let mut b = bumpalo::Bump::new();
            for i in 0..n {
                if i % 10_000 == 0 {
                    b.reset();
                }
                black_box(&*b.alloc(payload(i)));
            }
        }
        "floor" => {
            let mut ring = vec![[0u64; 8]; 16];
            for i in 0..n {
                let slot = &mut ring[i % 16];
                *slot = payload(i);
                black_box(&*slot);
            }
        }
        other => panic!("unknown contender {other}"),
    }
}

fn memory<const N: usize>(contender: &str) {
    const COUNT: usize = 1_000_000;
    let before = rss_bytes();
    let (reserved, held) = match contender {
        "box" => {
            let v: Vec<Box<[u8; N]>> = (0..COUNT).map(|i| Box::new([i as u8; N])).collect();
            let rss = rss_bytes();
            black_box(&v);
            // The Vec of pointers is not the objects' cost.
            (None, rss - before - COUNT * 8)
        }
        "default" => live_in::<_, N>(MemoryManager::new(), before),
        "fine" => live_in::<_, N>(MemoryManager::<FineClasses>::with_classes(), before),
        // Checked blocks: the handles (kept in a `Vec`) are the caller's,
        // not counted; generations and records are.
        "blocks" => {
            let mm = MemoryManager::new();
            let v: Vec<memory_mgr::Block> =
                (0..COUNT).map(|_| mm.alloc_block(N).unwrap()).collect();
            let rss = rss_bytes();
            black_box(&v);
            let handles = COUNT * std::mem::size_of::<memory_mgr::Block>();
            (Some(mm.stats().reserved_bytes()), rss - before - handles)
        }
        other => panic!("unknown contender {other}"),
    };
    let reserved = reserved.map_or("-".to_string(), |r: usize| {
        format!("{:.2}", r as f64 / COUNT as f64)
    });
    println!(
        "memory {contender} {N} rss_per_object {:.2} reserved_per_object {reserved}",
        held as f64 / COUNT as f64
    );

    fn live_in<C: SizeClasses, const N: usize>(
        mm: MemoryManager<C>,
        before: usize,
    ) -> (Option<usize>, usize) {
        let v: Vec<_> = (0..COUNT).map(|i| mm.alloc([i as u8; N])).collect();
        let rss = rss_bytes();
        black_box(&v);
        (Some(mm.stats().reserved_bytes()), rss - before - COUNT * 8)
    }
}

#[inline(never)]
fn batch(contender: &str, rounds: usize) {
    const N: usize = 10_000;
    type P = [u64; 8];
    let mut x = 42u64;
    let mut order: Vec<usize> = (0..N).collect();
    for i in (1..N).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    let mut best = f64::MAX;
    let mut time = |f: &mut dyn FnMut()| {
        for _ in 0..rounds {
            let t = std::time::Instant::now();
            f();
            best = best.min(t.elapsed().as_secs_f64() * 1e6);
        }
    };
    match contender {
        "poolbox" => {
            let mm = MemoryManager::new();
            let mut held = Vec::with_capacity(N);
            time(&mut || {
                held.extend((0..N).map(|i| Some(mm.alloc([black_box(i) as u64; 8]))));
                black_box(&held);
                for &k in &order {
                    drop(held[k].take());
                }
                held.clear();
            });
        }
        "mimalloc" => {
            let layout = Layout::new::<P>();
            let mut held: Vec<*mut u8> = Vec::with_capacity(N);
            // SAFETY: non-zero layout; every pointer is checked, written
            // within it, and freed once with it.
            time(&mut || unsafe {
                for i in 0..N {
                    let p = MI.alloc(layout);
                    assert!(!p.is_null());
                    p.cast::<P>().write([black_box(i) as u64; 8]);
                    held.push(p);
                }
                black_box(&held);
                for &k in &order {
                    MI.dealloc(held[k], layout);
                }
                held.clear();
            });
        }
        other => panic!("unknown contender {other}"),
    }
    println!("batch {contender} {best:.1}");
}

#[inline(never)]
fn churn(contender: &str, n: usize) {
    const LIVE: usize = 10_000;
    let mut x = 7u64;
    let mut victim = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize % LIVE
    };
    match contender {
        "poolbox" => {
            let mm = MemoryManager::new();
            let mut live: Vec<_> = (0..LIVE).map(|i| mm.alloc(i as u64)).collect();
            for i in 0..n {
                live[victim()] = mm.alloc(black_box(i as u64));
            }
            black_box(&live);
        }
        "slab" => {
            let mut slab = slab::Slab::new();
            let mut live: Vec<_> = (0..LIVE).map(|i| slab.insert(i as u64)).collect();
            for i in 0..n {
                let v = victim();
                let k = slab.insert(black_box(i as u64));
                slab.remove(std::mem::replace(&mut live[v], k));
            }
            black_box(&live);
        }
        "mimalloc" => {
            let layout = Layout::new::<u64>();
            // SAFETY: non-zero layout; every pointer is freed once with it.
            unsafe {
                let mut live: Vec<_> = (0..LIVE).map(|_| MI.alloc(layout)).collect();
                for i in 0..n {
                    let p = MI.alloc(layout);
                    assert!(!p.is_null());
                    p.cast::<u64>().write(black_box(i as u64));
                    MI.dealloc(std::mem::replace(&mut live[victim()], p), layout);
                }
                for p in live {
                    MI.dealloc(p, layout);
                }
            }
        }
        other => panic!("unknown contender {other}"),
    }
}

/// `measure churn-time CONTENDER SIZE N`: the churn above with a SIZE-byte
/// payload (8, 64 or 512), timed: nanoseconds per step (one free of a
/// pseudo-random live object and one allocation, payload written), the
/// fastest of 7 runs of N steps after one untimed warm-up run. The victims
/// are drawn before the clock starts (the same seeded sequence for all).
#[inline(never)]
fn churn_time<const W: usize>(contender: &str, n: usize) -> f64 {
    const LIVE: usize = 10_000;
    let mut x = 7u64;
    let victims: Vec<usize> = (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as usize % LIVE
        })
        .collect();
    let payload = |i: usize| -> [u64; W] { [black_box(i) as u64; W] };
    let mut best = f64::INFINITY;
    let mut time = |f: &mut dyn FnMut()| {
        for run in 0..8 {
            let t = std::time::Instant::now();
            f();
            if run > 0 {
                best = best.min(t.elapsed().as_secs_f64() * 1e9 / n as f64);
            }
        }
    };
    match contender {
        "poolbox" => {
            let mm = MemoryManager::new();
            let mut live: Vec<_> = (0..LIVE).map(|i| mm.alloc(payload(i))).collect();
            time(&mut || {
                for (i, &v) in victims.iter().enumerate() {
                    live[v] = mm.alloc(payload(i));
                }
                black_box(&live);
            });
        }
        "slab" => {
            let mut s = slab::Slab::with_capacity(LIVE);
            let mut keys: Vec<usize> = (0..LIVE).map(|i| s.insert(payload(i))).collect();
            time(&mut || {
                for (i, &v) in victims.iter().enumerate() {
                    s.remove(keys[v]);
                    keys[v] = s.insert(payload(i));
                }
                black_box(&s);
            });
        }
        "mimalloc" => {
            let layout = Layout::new::<[u64; W]>();
            // SAFETY: non-zero layout; every pointer is checked, written
            // within it, and freed once with it.
            unsafe {
                let mut live: Vec<*mut u8> = (0..LIVE)
                    .map(|i| {
                        let p = MI.alloc(layout);
                        assert!(!p.is_null());
                        p.cast::<[u64; W]>().write(payload(i));
                        p
                    })
                    .collect();
                time(&mut || {
                    for (i, &v) in victims.iter().enumerate() {
                        MI.dealloc(live[v], layout);
                        let p = MI.alloc(layout);
                        assert!(!p.is_null());
                        p.cast::<[u64; W]>().write(payload(i));
                        live[v] = p;
                    }
                    black_box(&live);
                });
                for p in live {
                    MI.dealloc(p, layout);
                }
            }
        }
        other => panic!("unknown contender {other}"),
    }
    best
}

/// `measure trees CONTENDER DEPTH RUNS`: binary-trees (as in
/// `benches/binary_trees.rs`, check then drop) to DEPTH, each run with a
/// new manager; prints milliseconds of the fastest of RUNS runs. Under
/// callgrind, two depths' difference isolates the per-node work.
#[inline(never)]
fn trees(contender: &str, max_depth: u32, runs: usize) -> f64 {
    use std::ptr::NonNull;
    const MIN_DEPTH: u32 = 4;
    struct PNode<'m> {
        left: Option<memory_mgr::PoolBox<'m, PNode<'m>>>,
        right: Option<memory_mgr::PoolBox<'m, PNode<'m>>>,
    }
    fn pool_tree(mm: &MemoryManager, depth: u32) -> memory_mgr::PoolBox<'_, PNode<'_>> {
        let (left, right) = if depth == 0 {
            (None, None)
        } else {
            (
                Some(pool_tree(mm, depth - 1)),
                Some(pool_tree(mm, depth - 1)),
            )
        };
        mm.alloc(PNode { left, right })
    }
    fn pool_check(n: &PNode<'_>) -> u64 {
        1 + n.left.as_deref().map_or(0, pool_check) + n.right.as_deref().map_or(0, pool_check)
    }
    struct MNode {
        left: Option<NonNull<MNode>>,
        right: Option<NonNull<MNode>>,
    }
    fn mi_tree(depth: u32) -> NonNull<MNode> {
        let node = if depth == 0 {
            MNode {
                left: None,
                right: None,
            }
        } else {
            MNode {
                left: Some(mi_tree(depth - 1)),
                right: Some(mi_tree(depth - 1)),
            }
        };
        // SAFETY: `MNode` is not zero-sized; the pointer is checked.
        unsafe {
            let p = NonNull::new(MI.alloc(Layout::new::<MNode>()).cast::<MNode>()).expect("oom");
            p.write(node);
            p
        }
    }
    fn mi_check(n: NonNull<MNode>) -> u64 {
        // SAFETY: a live node of `mi_tree`.
        let node = unsafe { n.as_ref() };
        1 + node.left.map_or(0, mi_check) + node.right.map_or(0, mi_check)
    }
    fn mi_free(n: NonNull<MNode>) {
        // SAFETY: a live node of `mi_tree`, read and freed once.
        let node = unsafe { n.read() };
        if let Some(l) = node.left {
            mi_free(l);
        }
        if let Some(r) = node.right {
            mi_free(r);
        }
        // SAFETY: as above.
        unsafe { MI.dealloc(n.as_ptr().cast(), Layout::new::<MNode>()) };
    }
    struct ANode<'a> {
        left: Option<&'a ANode<'a>>,
        right: Option<&'a ANode<'a>>,
    }
    fn bump_tree(b: &bumpalo::Bump, depth: u32) -> &ANode<'_> {
        let (left, right) = if depth == 0 {
            (None, None)
        } else {
            (Some(bump_tree(b, depth - 1)), Some(bump_tree(b, depth - 1)))
        };
        b.alloc(ANode { left, right })
    }
    fn arena_check(n: &ANode<'_>) -> u64 {
        1 + n.left.map_or(0, arena_check) + n.right.map_or(0, arena_check)
    }
    // The iterations between the long-lived tree's making and its check:
    // `tc(depth)` makes a tree, checks it and frees it.
    let iterate = |tc: &mut dyn FnMut(u32) -> u64| -> u64 {
        let mut total = 0;
        let mut d = MIN_DEPTH;
        while d <= max_depth {
            for _ in 0..1u32 << (max_depth - d + MIN_DEPTH) {
                total += tc(d);
            }
            d += 2;
        }
        total
    };
    let mut best = f64::INFINITY;
    // `poolbox-kept`: one manager for every run (as mimalloc keeps its
    // pages), to tell the chunks' first touch from the rest.
    // `poolbox-apart`: the long-lived tree in a manager of its own, so
    // that the other's pool empties (and is recycled) after every tree.
    let kept = MemoryManager::new();
    for _ in 0..runs {
        let t = std::time::Instant::now();
        let out = match contender {
            "poolbox" | "poolbox-kept" | "poolbox-apart" => {
                let fresh;
                let mm = if contender != "poolbox-kept" {
                    fresh = MemoryManager::new();
                    &fresh
                } else {
                    &kept
                };
                let mut tc = |d| pool_check(&pool_tree(mm, black_box(d)));
                let first = tc(max_depth + 1);
                let apart = MemoryManager::new();
                let long = pool_tree(
                    if contender == "poolbox-apart" {
                        &apart
                    } else {
                        mm
                    },
                    max_depth,
                );
                let rest = iterate(&mut tc);
                first + rest + pool_check(&long)
            }
            "mimalloc" => {
                let mut tc = |d| {
                    let t = mi_tree(black_box(d));
                    let n = mi_check(t);
                    mi_free(t);
                    n
                };
                let first = tc(max_depth + 1);
                let long = mi_tree(max_depth);
                let rest = iterate(&mut tc);
                let n = mi_check(long);
                mi_free(long);
                first + rest + n
            }
            "bumpalo" => {
                let mut scratch = bumpalo::Bump::new();
                let long_arena = bumpalo::Bump::new();
                let mut tc = |d| {
                    let n = arena_check(bump_tree(&scratch, black_box(d)));
                    scratch.reset();
                    n
                };
                let first = tc(max_depth + 1);
                let long = bump_tree(&long_arena, max_depth);
                let rest = iterate(&mut tc);
                first + rest + arena_check(long)
            }
            other => panic!("unknown contender {other}"),
        };
        black_box(out);
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    best
}

/// The handle workload: 10,000 live `[u64; 4]` values; each step removes a
/// random one and inserts a new one in its place, reads four random values
/// and writes one — through checked keys. Prints nanoseconds per step (the
/// fastest of 7 runs of `n` steps is the caller's).
#[inline(never)]
fn handles(contender: &str, n: usize) -> f64 {
    const LIVE: usize = 10_000;
    let mut x = 11u64;
    let mut pick = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize % LIVE
    };
    let value = |i: usize| [i as u64, 1, 2, 3];
    match contender {
        "handle" => {
            let mut mm = MemoryManager::new();
            let mut keys: Vec<_> = (0..LIVE).map(|i| mm.insert(value(i))).collect();
            let t = std::time::Instant::now();
            let mut sum = 0;
            for i in 0..n {
                let v = pick();
                mm.remove(keys[v]).unwrap();
                keys[v] = mm.insert(black_box(value(i)));
                for _ in 0..4 {
                    sum += mm.get(keys[pick()]).unwrap()[0];
                }
                mm.get_mut(keys[pick()]).unwrap()[1] += 1;
            }
            black_box(sum);
            t.elapsed().as_secs_f64() * 1e9 / n as f64
        }
        "slotmap" => {
            let mut s = slotmap::SlotMap::new();
            let mut keys: Vec<_> = (0..LIVE).map(|i| s.insert(value(i))).collect();
            let t = std::time::Instant::now();
            let mut sum = 0;
            for i in 0..n {
                let v = pick();
                s.remove(keys[v]).unwrap();
                keys[v] = s.insert(black_box(value(i)));
                for _ in 0..4 {
                    sum += s.get(keys[pick()]).unwrap()[0];
                }
                s.get_mut(keys[pick()]).unwrap()[1] += 1;
            }
            black_box(sum);
            t.elapsed().as_secs_f64() * 1e9 / n as f64
        }
        other => panic!("unknown contender {other}"),
    }
}

/// `measure iterate CONTENDER N`: N passes over 10,000 live `[u64; 4]`
/// (a quarter of the inserted removed again, so the store has holes), each
/// pass adding one to every value through `values_mut`; nanoseconds per
/// value, the fastest of 7 runs.
fn iterate(contender: &str, n: usize) -> f64 {
    const LIVE: usize = 10_000;
    let holes = |i: usize| i % 4 == 1;
    match contender {
        "handle" => {
            let mut mm = MemoryManager::new();
            let hs: Vec<_> = (0..LIVE + LIVE / 3)
                .map(|i| mm.insert([i as u64; 4]))
                .collect();
            for (i, &h) in hs.iter().enumerate() {
                if holes(i) {
                    mm.remove(h).unwrap();
                }
            }
            let t = std::time::Instant::now();
            for _ in 0..n {
                for v in mm.values_mut::<[u64; 4]>() {
                    v[0] += 1;
                }
                black_box(&mut mm);
            }
            t.elapsed().as_secs_f64() * 1e9 / (n * mm.len::<[u64; 4]>()).max(1) as f64
        }
        "slotmap" => {
            let mut s = slotmap::SlotMap::new();
            let ks: Vec<_> = (0..LIVE + LIVE / 3)
                .map(|i| s.insert([i as u64; 4]))
                .collect();
            for (i, &k) in ks.iter().enumerate() {
                if holes(i) {
                    s.remove(k).unwrap();
                }
            }
            let t = std::time::Instant::now();
            for _ in 0..n {
                for v in s.values_mut() {
                    v[0] += 1;
                }
                black_box(&mut s);
            }
            t.elapsed().as_secs_f64() * 1e9 / (n * s.len()).max(1) as f64
        }
        other => panic!("unknown contender {other}"),
    }
}

/// An entity of the simulation frame: moves, and may have an AI component
/// (`K`: the key type of the contender's store of `Ai`s).
#[derive(Clone, Copy)]
struct Entity<K> {
    pos: [f32; 2],
    vel: [f32; 2],
    ai: Option<K>,
}

#[derive(Clone, Copy)]
struct Ai {
    goal: [f32; 2],
    timer: u32,
}

#[derive(Clone, Copy)]
struct Particle {
    pos: [f32; 2],
    vel: [f32; 2],
    life: u32,
}

/// `measure frame CONTENDER N`: N frames of a small simulation written with
/// iteration — 2,000 entities (every fourth with an AI component) and
/// 2,000 particles; a frame moves every entity, updates every AI, moves
/// and ages every particle, despawns the dead ones (`retain`) and spawns as
/// many, and despawns the 200 oldest entities (with their AI) and spawns
/// 200. Nanoseconds per frame, the fastest of 7 runs.
fn frame(contender: &str, n: usize) -> f64 {
    const ENTITIES: usize = 2_000;
    const PARTICLES: usize = 2_000;
    const TURNOVER: usize = 200;
    let mut x = 7u64;
    let mut rng = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as u32
    };
    let particle = |r: u32| Particle {
        pos: [0.0, 0.0],
        vel: [(r % 7) as f32, (r % 5) as f32],
        life: 1 + r % 60,
    };
    let entity = |i: usize| ([i as f32, 0.0], [1.0, (i % 3) as f32]);
    match contender {
        "handle" => {
            use memory_mgr::Handle;
            let mut mm = MemoryManager::new();
            let mut order = std::collections::VecDeque::new();
            let spawn = |mm: &mut MemoryManager, i: usize| -> Handle<Entity<Handle<Ai>>> {
                let ai = (i % 4 == 0).then(|| {
                    mm.insert(Ai {
                        goal: [0.0, 0.0],
                        timer: 0,
                    })
                });
                let (pos, vel) = entity(i);
                mm.insert(Entity { pos, vel, ai })
            };
            for i in 0..ENTITIES {
                order.push_back(spawn(&mut mm, i));
            }
            for _ in 0..PARTICLES {
                mm.insert(particle(rng()));
            }
            let t = std::time::Instant::now();
            for f in 0..n {
                for e in mm.values_mut::<Entity<Handle<Ai>>>() {
                    e.pos[0] += e.vel[0];
                    e.pos[1] += e.vel[1];
                }
                for a in mm.values_mut::<Ai>() {
                    a.timer = a.timer.wrapping_add(1);
                    a.goal[0] += 0.5;
                }
                let mut dead = 0;
                mm.retain::<Particle>(|_, p| {
                    p.pos[0] += p.vel[0];
                    p.pos[1] += p.vel[1];
                    p.life -= 1;
                    dead += (p.life == 0) as usize;
                    p.life > 0
                });
                for _ in 0..dead {
                    mm.insert(particle(rng()));
                }
                for i in 0..TURNOVER {
                    let old = order.pop_front().unwrap();
                    if let Some(ai) = mm.remove(old).unwrap().ai {
                        mm.remove(ai).unwrap();
                    }
                    order.push_back(spawn(&mut mm, f * TURNOVER + i));
                }
                black_box(&mut mm);
            }
            t.elapsed().as_secs_f64() * 1e9 / n as f64
        }
        "slotmap" => {
            use slotmap::{DefaultKey, SlotMap};
            let mut entities: SlotMap<DefaultKey, Entity<DefaultKey>> = SlotMap::new();
            let mut ais: SlotMap<DefaultKey, Ai> = SlotMap::new();
            let mut particles: SlotMap<DefaultKey, Particle> = SlotMap::new();
            let mut order = std::collections::VecDeque::new();
            let spawn = |entities: &mut SlotMap<DefaultKey, Entity<DefaultKey>>,
                         ais: &mut SlotMap<DefaultKey, Ai>,
                         i: usize| {
                let ai = (i % 4 == 0).then(|| {
                    ais.insert(Ai {
                        goal: [0.0, 0.0],
                        timer: 0,
                    })
                });
                let (pos, vel) = entity(i);
                entities.insert(Entity { pos, vel, ai })
            };
            for i in 0..ENTITIES {
                order.push_back(spawn(&mut entities, &mut ais, i));
            }
            for _ in 0..PARTICLES {
                particles.insert(particle(rng()));
            }
            let t = std::time::Instant::now();
            for f in 0..n {
                for e in entities.values_mut() {
                    e.pos[0] += e.vel[0];
                    e.pos[1] += e.vel[1];
                }
                for a in ais.values_mut() {
                    a.timer = a.timer.wrapping_add(1);
                    a.goal[0] += 0.5;
                }
                let mut dead = 0;
                particles.retain(|_, p| {
                    p.pos[0] += p.vel[0];
                    p.pos[1] += p.vel[1];
                    p.life -= 1;
                    dead += (p.life == 0) as usize;
                    p.life > 0
                });
                for _ in 0..dead {
                    particles.insert(particle(rng()));
                }
                for i in 0..TURNOVER {
                    let old = order.pop_front().unwrap();
                    if let Some(ai) = entities.remove(old).unwrap().ai {
                        ais.remove(ai).unwrap();
                    }
                    order.push_back(spawn(&mut entities, &mut ais, f * TURNOVER + i));
                }
                black_box((&mut entities, &mut ais, &mut particles));
            }
            t.elapsed().as_secs_f64() * 1e9 / n as f64
        }
        other => panic!("unknown contender {other}"),
    }
}

/// Values in one frame of the scratch workload.
const SCRATCH: usize = 5_000;

/// One frame of scratch in `mm`: `SCRATCH` 32-byte values pushed into a
/// `Vec` (or, with `BOXES`, each in a box of its own, the boxes in the
/// `Vec`), then dropped.
#[inline(never)]
fn scratch_frame<const BOXES: bool>(mm: &MemoryManager) {
    type V = [u64; 4];
    if BOXES {
        let mut v = allocator_api2::vec::Vec::new_in(mm);
        for i in 0..SCRATCH {
            v.push(allocator_api2::boxed::Box::new_in(
                [black_box(i) as u64; 4],
                mm,
            ));
        }
        black_box(&v);
    } else {
        let mut v: allocator_api2::vec::Vec<V, _> = allocator_api2::vec::Vec::new_in(mm);
        for i in 0..SCRATCH {
            v.push([black_box(i) as u64; 4]);
        }
        black_box(&v);
    }
}

/// `measure scratch CONTENDER N`: nanoseconds per frame (see the top).
fn scratch(contender: &str, n: usize) -> f64 {
    let t = std::time::Instant::now();
    match contender {
        "poolboxes-manager" => {
            let mut mm = MemoryManager::new();
            let t = std::time::Instant::now();
            for _ in 0..n {
                {
                    let mm = &mm;
                    let mut v = allocator_api2::vec::Vec::new_in(mm);
                    for i in 0..SCRATCH {
                        v.push(mm.alloc([black_box(i) as u64; 4]));
                    }
                    black_box(&v);
                }
                mm.reset();
                black_box(&mut mm);
            }
            return t.elapsed().as_secs_f64() * 1e9 / n as f64;
        }
        "manager" | "manager-noreset" | "boxes-manager" | "boxes-noreset" => {
            let boxes = contender.starts_with("boxes");
            let reset = !contender.ends_with("noreset");
            let mut mm = MemoryManager::new();
            let t = std::time::Instant::now();
            for _ in 0..n {
                if boxes {
                    scratch_frame::<true>(&mm);
                } else {
                    scratch_frame::<false>(&mm);
                }
                if reset {
                    mm.reset();
                }
                black_box(&mut mm);
            }
            return t.elapsed().as_secs_f64() * 1e9 / n as f64;
        }
        "bumpalo" => {
            let mut bump = bumpalo::Bump::new();
            for _ in 0..n {
                {
                    let mut v = bumpalo::collections::Vec::new_in(&bump);
                    for i in 0..SCRATCH {
                        v.push([black_box(i) as u64; 4]);
                    }
                    black_box(&v);
                }
                bump.reset();
            }
        }
        "boxes-bumpalo" => {
            let mut bump = bumpalo::Bump::new();
            for _ in 0..n {
                {
                    let mut v = bumpalo::collections::Vec::new_in(&bump);
                    for i in 0..SCRATCH {
                        v.push(bumpalo::boxed::Box::new_in([black_box(i) as u64; 4], &bump));
                    }
                    black_box(&v);
                }
                bump.reset();
            }
        }
        other => panic!("unknown contender {other}"),
    }
    t.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// The reset measured by `measure reset` (out of line, for callgrind's
/// `--toggle-collect`).
#[inline(never)]
fn reset_only(mm: &mut MemoryManager) {
    mm.reset();
}

/// `measure reset SHAPE N`: nanoseconds per `reset()` of a manager whose
/// values are all gone (see the top).
fn reset(shape: &str, n: usize) -> f64 {
    let (mut mm, frame): (MemoryManager, fn(&MemoryManager)) = match shape {
        "vec" => (MemoryManager::new(), scratch_frame::<false>),
        "boxes" => (MemoryManager::new(), scratch_frame::<true>),
        "chunks" => (
            MemoryManager::builder()
                .initial_chunk_size(4096)
                .max_chunk_size(4096)
                .build()
                .unwrap(),
            |mm| {
                let a: Vec<_> = (0..5_000)
                    .map(|i| mm.alloc([black_box(i) as u64; 4]))
                    .collect();
                let b: Vec<_> = (0..4_000)
                    .map(|i| mm.alloc([black_box(i) as u64; 8]))
                    .collect();
                black_box((&a, &b));
            },
        ),
        other => panic!("unknown shape {other}"),
    };
    let mut total = std::time::Duration::ZERO;
    for _ in 0..n {
        frame(&mm);
        let t = std::time::Instant::now();
        reset_only(&mut mm);
        total += t.elapsed();
    }
    total.as_secs_f64() * 1e9 / n as f64
}

/// Nanoseconds per `trim()` that finds nothing to give back: the fastest
/// of 7 runs of `n`.
fn trim(contender: &str, n: usize) -> f64 {
    use memory_mgr::{Global, SharedManager, WideClasses};
    fn time(n: usize, trim: impl Fn() -> usize) -> f64 {
        trim();
        (0..7)
            .map(|_| {
                let t = std::time::Instant::now();
                for _ in 0..n {
                    black_box(trim());
                }
                t.elapsed().as_secs_f64() * 1e9 / n as f64
            })
            .fold(f64::INFINITY, f64::min)
    }
    let sizes = [8usize, 64, 200, 500];
    match contender {
        "manager" => {
            let mm = MemoryManager::new();
            let kept: Vec<_> = sizes.iter().map(|&s| mm.alloc_block(s).unwrap()).collect();
            let ns = time(n, || mm.trim());
            for b in kept {
                mm.free(b).unwrap();
            }
            ns
        }
        "shared" => {
            let mm = SharedManager::new();
            let kept: Vec<_> = sizes.iter().map(|&s| mm.alloc_block(s).unwrap()).collect();
            let ns = time(n, || mm.trim());
            for b in kept {
                mm.free(b).unwrap();
            }
            ns
        }
        "wide" => {
            let mm = SharedManager::<WideClasses>::with_classes();
            let kept: Vec<_> = sizes.iter().map(|&s| mm.alloc_block(s).unwrap()).collect();
            let ns = time(n, || mm.trim());
            for b in kept {
                mm.free(b).unwrap();
            }
            ns
        }
        "global" => {
            static G: Global = Global::new();
            let layouts: Vec<Layout> = sizes
                .iter()
                .map(|&s| Layout::from_size_align(s, 8).unwrap())
                .collect();
            // SAFETY: non-zero layouts; each kept block is freed below with
            // its own layout.
            let kept: Vec<*mut u8> = layouts.iter().map(|&l| unsafe { G.alloc(l) }).collect();
            let ns = time(n, || G.trim());
            for (p, l) in kept.into_iter().zip(layouts) {
                // SAFETY: allocated above with `l`, freed once.
                unsafe { G.dealloc(p, l) };
            }
            ns
        }
        other => panic!("unknown contender {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(1) {
        "pair" => pair(arg(2), arg(3).parse().expect("N")),
        // Nanoseconds per pair: the fastest of 7 runs of N pairs (a quick
        // probe; the criterion benchmarks are the reference).
        "pair-time" => {
            let n: usize = arg(3).parse().expect("N");
            let best = (0..7)
                .map(|_| {
                    let t = std::time::Instant::now();
                    pair(arg(2), n);
                    t.elapsed().as_secs_f64() * 1e9 / n as f64
                })
                .fold(f64::INFINITY, f64::min);
            println!("{best:.2}");
        }
        "trim" => println!("{:.1}", trim(arg(2), arg(3).parse().expect("N"))),
        "churn" => churn(arg(2), arg(3).parse().expect("N")),
        "trees" => {
            let depth: u32 = arg(3).parse().expect("DEPTH");
            let runs: usize = arg(4).parse().expect("RUNS");
            println!("{:.2}", trees(arg(2), depth, runs));
        }
        "churn-time" => {
            let n: usize = arg(4).parse().expect("N");
            let ns = match arg(3) {
                "8" => churn_time::<1>(arg(2), n),
                "64" => churn_time::<8>(arg(2), n),
                "512" => churn_time::<64>(arg(2), n),
                s => panic!("size {s}: use 8, 64 or 512"),
            };
            println!("{ns:.2}");
        }
        // Nanoseconds per step of the handle workload: the fastest of 7 runs.
        "handles" => {
            let n: usize = arg(3).parse().expect("N");
            let best = (0..7)
                .map(|_| handles(arg(2), n))
                .fold(f64::INFINITY, f64::min);
            println!("{best:.2}");
        }
        "frame" => {
            let n: usize = arg(3).parse().expect("N");
            let best = (0..7)
                .map(|_| frame(arg(2), n))
                .fold(f64::INFINITY, f64::min);
            println!("{best:.0}");
        }
        "iterate" => {
            let n: usize = arg(3).parse().expect("N");
            let best = (0..7)
                .map(|_| iterate(arg(2), n))
                .fold(f64::INFINITY, f64::min);
            println!("{best:.3}");
        }
        "scratch" => {
            let n: usize = arg(3).parse().expect("N");
            let best = (0..7)
                .map(|_| scratch(arg(2), n))
                .fold(f64::INFINITY, f64::min);
            println!("{best:.0}");
        }
        "reset" => {
            let n: usize = arg(3).parse().expect("N");
            let best = (0..7)
                .map(|_| reset(arg(2), n))
                .fold(f64::INFINITY, f64::min);
            println!("{best:.0}");
        }
        "batch" => batch(arg(2), arg(3).parse().expect("ROUNDS")),
        "memory" => match arg(3) {
            "8" => memory::<8>(arg(2)),
            "24" => memory::<24>(arg(2)),
            "64" => memory::<64>(arg(2)),
            "100" => memory::<100>(arg(2)),
            s => panic!("size {s}: use 8, 24, 64 or 100"),
        },
        _ => eprintln!("usage: measure pair|churn CONTENDER N | measure batch CONTENDER ROUNDS | measure memory box|default|fine|blocks SIZE"),
    }
}
