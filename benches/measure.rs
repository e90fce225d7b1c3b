//! Measurements that do not need a timer, for `benches/run.sh`:
//!
//! * `measure pair CONTENDER N` — N alloc+write+free pairs of a 64-byte
//!   payload; run under `valgrind --tool=callgrind` with N and with 0, the
//!   difference over N is instructions per pair.
//! * `measure churn CONTENDER N` — 10,000 live 8-byte objects; N steps,
//!   each allocating one and freeing a pseudo-random live one (the churn
//!   benchmark); instructions per step as for `pair`.
//! * `measure batch CONTENDER ROUNDS` — ROUNDS rounds of: allocate 10,000
//!   64-byte objects, free them in a fixed random order; prints the fastest
//!   round in µs (the minimum is what a shared, noisy machine disturbs
//!   least).
//! * `measure memory CONTENDER SIZE` — 1,000,000 live objects of SIZE bytes
//!   (8, 24, 64 or 100); prints the resident-set growth per object and, for
//!   our managers, the bytes reserved per object.
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
        "churn" => churn(arg(2), arg(3).parse().expect("N")),
        // Nanoseconds per step of the handle workload: the fastest of 7 runs.
        "handles" => {
            let n: usize = arg(3).parse().expect("N");
            let best = (0..7)
                .map(|_| handles(arg(2), n))
                .fold(f64::INFINITY, f64::min);
            println!("{best:.2}");
        }
        "iterate" => {
            let n: usize = arg(3).parse().expect("N");
            let best = (0..7)
                .map(|_| iterate(arg(2), n))
                .fold(f64::INFINITY, f64::min);
            println!("{best:.3}");
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
