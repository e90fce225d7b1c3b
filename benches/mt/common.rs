// Ports of the mimalloc-bench multi-thread workloads, run against whatever
// `#[global_allocator]` the including file sets (one binary per allocator,
// so each contender runs in its own process). Included by
// `benches/mt/{system,global,mimalloc,jemalloc}.rs`.
//
// Usage: `mt_<alloc> WORKLOAD THREADS` prints
// `WORKLOAD THREADS SECONDS PEAK_RSS_KIB`.
//
// Workloads (sizes so that each takes about a second at two threads):
// - `xmalloc`: producer/consumer pairs (mimalloc-bench xmalloc-test):
//   producers allocate batches of 8..=256-byte objects, consumers free them.
// - `larson`: each thread replaces random slots of an array of 1,000
//   objects (16..=512 bytes); every 200,000 steps it hands its array to a
//   new thread and exits (cross-thread frees, thread handoff).
// - `cache-scratch`: each thread frees an 8-byte object the main thread
//   allocated next to the others', then allocates, writes 1,000 times and
//   frees its own, over and over (passive false sharing).
// - `alloc-test`: thread-local allocation of mostly small, sometimes large
//   (to 32 KiB) objects, a window of 100 live (local scaling).
// - `mstress`: rounds of threads that allocate, free half, and hand the
//   other half to the next round's threads, which free them (thread churn
//   with survivors).
// - `glibc-thread`: glibc's bench-malloc-thread: random slots of a
//   1,000-entry array, 8..=256 bytes, freed and refilled.
// - `sh6bench`: batches allocated, then freed in reverse (LIFO), and in
//   order (FIFO), sizes 8..=512.

use std::alloc::{alloc, dealloc, Layout};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

/// A raw allocation that may cross threads.
struct Obj(*mut u8, usize);
// SAFETY: the benchmark owns each allocation and uses it on one thread at a
// time.
unsafe impl Send for Obj {}

#[inline]
fn new_obj(size: usize, tag: u8) -> Obj {
    let layout = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: a non-zero layout.
    let p = unsafe { alloc(layout) };
    assert!(!p.is_null());
    // SAFETY: `size >= 1` bytes were just allocated.
    unsafe { p.write(tag) };
    Obj(p, size)
}

#[inline]
fn free_obj(o: Obj) {
    // SAFETY: allocated by `new_obj` with this layout, freed once.
    unsafe {
        std::hint::black_box(*o.0);
        dealloc(o.0, Layout::from_size_align(o.1, 8).unwrap())
    }
}

fn xmalloc(threads: usize) {
    let pairs = threads.div_ceil(2).max(1);
    let per_producer = 40_000_000 / pairs;
    thread::scope(|s| {
        for p in 0..pairs {
            let (tx, rx) = mpsc::sync_channel::<Vec<Obj>>(64);
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(p as u64);
                let mut batch = Vec::with_capacity(256);
                for i in 0..per_producer {
                    batch.push(new_obj(rng.usize(8..=256), i as u8));
                    if batch.len() == 256 {
                        tx.send(std::mem::replace(&mut batch, Vec::with_capacity(256)))
                            .unwrap();
                    }
                }
                tx.send(batch).unwrap();
            });
            s.spawn(move || {
                for batch in rx {
                    batch.into_iter().for_each(free_obj);
                }
            });
        }
    });
}

fn larson(threads: usize) {
    const SLOTS: usize = 1_000;
    const STEPS: usize = 200_000;
    let rounds = 100;
    fn step(mut slots: Vec<Obj>, seed: u64) -> Vec<Obj> {
        let mut rng = fastrand::Rng::with_seed(seed);
        if slots.is_empty() {
            slots = (0..SLOTS).map(|_| new_obj(rng.usize(16..=512), 1)).collect();
        }
        for _ in 0..STEPS {
            let i = rng.usize(..SLOTS);
            let fresh = new_obj(rng.usize(16..=512), 2);
            free_obj(std::mem::replace(&mut slots[i], fresh));
        }
        slots
    }
    let mut arrays: Vec<Vec<Obj>> = (0..threads).map(|_| Vec::new()).collect();
    for r in 0..rounds {
        // Each array goes to a new thread; the old one has exited.
        arrays = thread::scope(|s| {
            let hs: Vec<_> = arrays
                .into_iter()
                .enumerate()
                .map(|(t, a)| s.spawn(move || step(a, (r * 64 + t) as u64)))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
    }
    arrays.into_iter().flatten().for_each(free_obj);
}

fn cache_scratch(threads: usize) {
    let allocs = 4_000_000;
    let first: Vec<Obj> = (0..threads).map(|t| new_obj(8, t as u8)).collect();
    thread::scope(|s| {
        for o in first {
            s.spawn(move || {
                free_obj(o);
                for _ in 0..allocs {
                    let o = new_obj(8, 0);
                    for k in 0..1_000u32 {
                        // SAFETY: 8 bytes of ours.
                        unsafe { std::ptr::write_volatile(o.0.cast::<u32>(), k) };
                    }
                    free_obj(o);
                }
            });
        }
    });
}

fn alloc_test(threads: usize) {
    let per_thread = 400_000_000 / threads.max(1);
    thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t as u64 + 99);
                let mut window: std::collections::VecDeque<Obj> =
                    std::collections::VecDeque::with_capacity(128);
                for _ in 0..per_thread / 4 {
                    // Mostly small; one in 64 up to 32 KiB.
                    let size = if rng.u8(..64) == 0 {
                        rng.usize(512..=32 << 10)
                    } else {
                        8 << rng.u32(0..5).min(rng.u32(0..5))
                    };
                    window.push_back(new_obj(size, 3));
                    if window.len() > 100 {
                        free_obj(window.pop_front().unwrap());
                    }
                }
                window.into_iter().for_each(free_obj);
            });
        }
    });
}

fn mstress(threads: usize) {
    let rounds = 250;
    let per_thread = 80_000 / threads.max(1);
    let mut survivors: Vec<Vec<Obj>> = (0..threads).map(|_| Vec::new()).collect();
    for r in 0..rounds {
        survivors = thread::scope(|s| {
            let hs: Vec<_> = survivors
                .into_iter()
                .enumerate()
                .map(|(t, old)| {
                    s.spawn(move || {
                        old.into_iter().for_each(free_obj); // another thread's blocks
                        let mut rng = fastrand::Rng::with_seed((r * 64 + t) as u64);
                        let mut mine: Vec<Obj> = (0..per_thread)
                            .map(|_| new_obj(rng.usize(8..=1024), 4))
                            .collect();
                        let keep = mine.split_off(per_thread / 2);
                        mine.into_iter().for_each(free_obj);
                        keep
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
    }
    survivors.into_iter().flatten().for_each(free_obj);
}

fn glibc_thread(threads: usize) {
    let per_thread = 200_000_000 / threads.max(1);
    thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t as u64 + 7);
                let mut slots: Vec<Option<Obj>> = (0..1_000).map(|_| None).collect();
                for _ in 0..per_thread {
                    let i = rng.usize(..slots.len());
                    match slots[i].take() {
                        Some(o) => free_obj(o),
                        None => slots[i] = Some(new_obj(rng.usize(8..=256), 5)),
                    }
                }
                slots.into_iter().flatten().for_each(free_obj);
            });
        }
    });
}

fn sh6bench(threads: usize) {
    let rounds = 10_000 / threads.max(1);
    thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t as u64 + 13);
                for _ in 0..rounds {
                    let batch: Vec<Obj> = (0..5_000).map(|_| new_obj(rng.usize(8..=512), 6)).collect();
                    batch.into_iter().rev().for_each(free_obj); // LIFO
                    let batch: Vec<Obj> = (0..5_000).map(|_| new_obj(rng.usize(8..=512), 7)).collect();
                    batch.into_iter().for_each(free_obj); // FIFO
                }
            });
        }
    });
}

fn peak_rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let workload = args.get(1).map(String::as_str).unwrap_or("");
    let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(2);
    let run: fn(usize) = match workload {
        "xmalloc" => xmalloc,
        "larson" => larson,
        "cache-scratch" => cache_scratch,
        "alloc-test" => alloc_test,
        "mstress" => mstress,
        "glibc-thread" => glibc_thread,
        "sh6bench" => sh6bench,
        _ => {
            eprintln!("usage: {} xmalloc|larson|cache-scratch|alloc-test|mstress|glibc-thread|sh6bench THREADS", args[0]);
            std::process::exit(2);
        }
    };
    let t = Instant::now();
    run(threads);
    let secs = t.elapsed().as_secs_f64();
    println!("{workload} {threads} {secs:.3} {}", peak_rss_kib());
    if std::env::var_os("MT_STATS").is_some() {
        report();
    }
}
