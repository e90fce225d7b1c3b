// Ports of the mimalloc-bench multi-thread workloads, run against whatever
// `#[global_allocator]` the including file sets (one binary per allocator,
// so each contender runs in its own process). Included by
// `benches/mt/{system,global,mimalloc,jemalloc}.rs`.
//
// Usage: `mt_<alloc> WORKLOAD THREADS` prints
// `WORKLOAD THREADS SECONDS PEAK_RSS_KIB [KEY=VALUE ...]`: seconds of the
// workload, peak RSS of the process (VmHWM), then, for the retention
// workloads, named figures in KiB (`benches/mt_report.py` reads them; the
// first four fields are the same for every workload).
//
// Each including binary defines `report()` (its allocator's own figures
// with `MT_STATS=1`), `reserved_bytes() -> Option<usize>` (bytes the
// allocator holds by its own count: `Global`'s `reserved_bytes`, `None`
// for the others) and `trim() -> bool` (gives free memory back if the
// allocator can be asked to from safe Rust: `Global::trim`; `false` for
// the others). With `MT_SMAPS=FILE` every binary copies its
// `/proc/self/smaps` to FILE at the end (where its resident memory is).
//
// Workloads (sizes so that each takes about a second at two threads; the
// last three, 0.1 to 0.6 s):
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
// - `thread-exit` (retention after thread exit): 400 threads alive at once
//   (each waits for all the others before it exits), THREADS of them at
//   work at a time, each allocating and freeing 50 to 500 objects of each
//   of 13 sizes (8..=512 bytes), a quarter of
//   them live until the thread's end, all freed before it exits; then,
//   with no trim, the RSS the process kept (VmRSS minus VmRSS before the
//   first wave: `exit_kib`) and `Global`'s reserved bytes (`reserved_kib`);
//   then 100 more threads the same way (`exit2_kib`, `reserved2_kib`).
//   `base_kib` is the VmRSS before.
// - `live-builder` (retention behind a live thread): a builder thread
//   allocates 2,000,000 objects of 48 and 56 bytes and sends them to the
//   main thread, then waits on a channel (alive, allocating nothing); the
//   main thread frees them all, trims (`Global::trim`; nothing for the
//   others) and reads VmRSS (`after_kib`, minus `base_kib`, the VmRSS
//   before the build; the report divides it by the peak minus `base_kib`);
//   only then does the builder exit.
// - `thread-churn`: 4,000 short threads in waves of THREADS; each frees
//   the blocks a thread of the previous wave left it, allocates 2,000
//   objects of 8..=512 bytes, frees every other one, sends a half of the
//   rest to its neighbour in the wave (which frees them while their owner
//   may be exiting) and leaves the other half to a thread of the next wave.

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

/// A `/proc/self/status` figure in KiB (`VmRSS:`, `VmHWM:`), 0 if absent.
fn status_kib(key: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn rss_kib() -> usize {
    status_kib("VmRSS:")
}

fn peak_rss_kib() -> usize {
    status_kib("VmHWM:")
}

/// ` KEY=VALUE` in KiB of the allocator's reserved bytes, or nothing.
fn reserved_field(key: &str) -> String {
    reserved_bytes().map_or_else(String::new, |b| format!(" {key}={}", b >> 10))
}

/// One `thread-exit` thread: 13 sizes, 50 to 500 of
/// each, a quarter kept until the end, all freed before returning.
fn exit_thread_work(seed: u64) {
    const SIZES: [usize; 13] = [8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 320, 384, 512];
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut kept = Vec::new();
    let mut window = Vec::with_capacity(64);
    for (k, &size) in SIZES.iter().enumerate() {
        for i in 0..rng.usize(50..=500) {
            let o = new_obj(size, k as u8);
            if i % 4 == 0 {
                kept.push(o);
            } else {
                window.push(o);
                if window.len() == 64 {
                    window.drain(..).for_each(free_obj);
                }
            }
        }
    }
    window.into_iter().for_each(free_obj);
    kept.into_iter().for_each(free_obj);
}

/// `count` threads of `exit_thread_work`, all alive at once (each waits
/// for the others before it exits, as the 400 threads did), of
/// which `threads` run their work at a time (the rest wait their turn).
fn exit_waves(count: usize, threads: usize, seed: u64) {
    let threads = threads.max(1);
    let done = std::sync::Barrier::new(count);
    let turn = std::sync::Mutex::new(0usize);
    let turns = std::sync::Condvar::new();
    thread::scope(|s| {
        let handles: Vec<_> = (0..count)
            .map(|t| {
                let (done, turn, turns) = (&done, &turn, &turns);
                s.spawn(move || {
                    // Wait until fewer than `threads` are at work.
                    let mut busy =
                        turns.wait_while(turn.lock().unwrap(), |b| *b >= threads).unwrap();
                    *busy += 1;
                    drop(busy);
                    exit_thread_work(seed + t as u64);
                    *turn.lock().unwrap() -= 1;
                    turns.notify_one();
                    done.wait();
                })
            })
            .collect();
        // Joined one by one: a join waits for the thread's exit (its
        // thread-local destructors, where an allocator's exit hook runs),
        // the scope's end only for its closure.
        for h in handles {
            h.join().unwrap();
        }
    });
}

fn thread_exit(threads: usize) -> String {
    let base = rss_kib();
    exit_waves(400, threads, 1_000);
    let exit = rss_kib().saturating_sub(base);
    let reserved = reserved_field("reserved_kib");
    exit_waves(100, threads, 5_000);
    let exit2 = rss_kib().saturating_sub(base);
    let reserved2 = reserved_field("reserved2_kib");
    format!(" base_kib={base} exit_kib={exit}{reserved} exit2_kib={exit2}{reserved2}")
}

fn live_builder(_threads: usize) -> String {
    const OBJECTS: usize = 2_000_000;
    let base = rss_kib();
    let (objs_tx, objs_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let builder = thread::spawn(move || {
        let mut small: Vec<Box<[u64; 6]>> = Vec::with_capacity(OBJECTS / 2);
        let mut large: Vec<Box<[u64; 7]>> = Vec::with_capacity(OBJECTS / 2);
        for i in 0..OBJECTS / 2 {
            let i = i as u64;
            small.push(Box::new([i; 6]));
            large.push(Box::new([i; 7]));
        }
        objs_tx.send((small, large)).unwrap();
        // Alive, allocating nothing, until the main thread has measured.
        let _ = exit_rx.recv();
    });
    let (small, large) = objs_rx.recv().unwrap();
    std::hint::black_box((&small, &large));
    drop(small);
    drop(large);
    let trimmed = trim();
    let after = rss_kib().saturating_sub(base);
    let reserved = reserved_field("reserved_kib");
    exit_tx.send(()).unwrap();
    builder.join().unwrap();
    format!(
        " base_kib={base} after_kib={after}{reserved} trim={}",
        u8::from(trimmed)
    )
}

fn thread_churn(threads: usize) {
    const THREADS_IN_ALL: usize = 4_000;
    const PER_THREAD: usize = 2_000;
    let threads = threads.max(1);
    let mut carry: Vec<Vec<Obj>> = (0..threads).map(|_| Vec::new()).collect();
    for wave in 0..THREADS_IN_ALL / threads {
        // Thread `t` sends to thread `t + 1` of the wave (itself when alone).
        let (txs, rxs): (Vec<_>, Vec<_>) =
            (0..threads).map(|_| mpsc::sync_channel::<Vec<Obj>>(1)).unzip();
        let mut rxs: Vec<_> = rxs.into_iter().map(Some).collect();
        rxs.rotate_right(1);
        // A thread of this wave frees what the previous wave's next thread left.
        carry.rotate_left(1);
        carry = thread::scope(|s| {
            let hs: Vec<_> = carry
                .into_iter()
                .zip(txs)
                .zip(rxs.iter_mut().map(|r| r.take().unwrap()))
                .enumerate()
                .map(|(t, ((old, tx), rx))| {
                    s.spawn(move || {
                        old.into_iter().for_each(free_obj);
                        let mut rng = fastrand::Rng::with_seed((wave * 64 + t) as u64);
                        let mut mine = Vec::with_capacity(PER_THREAD / 2);
                        for i in 0..PER_THREAD {
                            let o = new_obj(rng.usize(8..=512), 8);
                            if i % 2 == 0 {
                                free_obj(o);
                            } else {
                                mine.push(o);
                            }
                        }
                        let keep = mine.split_off(mine.len() / 2);
                        tx.send(mine).unwrap();
                        rx.recv().unwrap().into_iter().for_each(free_obj);
                        keep
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
    }
    carry.into_iter().flatten().for_each(free_obj);
}

/// `collections` and `collections-shared`: each thread, round after round,
/// builds 1,000 small vectors (1..=32 `u32`s pushed one at a time, so each
/// grows through a few sizes) in an outer vector, then hands the outer
/// vector to the next thread, which drops it (remote frees) while it builds
/// its own — in allocator `a`: the global allocator
/// (`allocator_api2::alloc::Global`), or a `SharedManager`'s collections.
fn collections_in<A>(threads: usize, a: A)
where
    A: allocator_api2::alloc::Allocator + Copy + Send + Sync,
{
    use allocator_api2::vec::Vec as AVec;
    const ROUNDS: usize = 1_000;
    let threads = threads.max(1);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| mpsc::sync_channel::<AVec<AVec<u32, A>, A>>(2))
        .unzip();
    let mut rxs: Vec<_> = rxs.into_iter().map(Some).collect();
    rxs.rotate_right(1);
    thread::scope(|s| {
        for (t, (tx, rx)) in txs.into_iter().zip(rxs.iter_mut().map(|r| r.take().unwrap())).enumerate() {
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t as u64);
                let mut sum = 0u64;
                for _ in 0..ROUNDS {
                    let mut outer = AVec::new_in(a);
                    for _ in 0..1_000 {
                        let mut v = AVec::new_in(a);
                        for i in 0..rng.u32(1..=32) {
                            v.push(i);
                        }
                        outer.push(v);
                    }
                    // Handed on; the neighbour's last one is dropped here.
                    if tx.send(outer).is_err() {
                        break;
                    }
                    if let Ok(got) = rx.try_recv() {
                        sum += got.iter().map(|v| u64::from(v[v.len() - 1])).sum::<u64>();
                    }
                }
                drop(tx);
                while let Ok(got) = rx.recv() {
                    sum += got.len() as u64;
                }
                std::hint::black_box(sum);
            });
        }
    });
}

/// A shared manager for `collections-shared`.
static COLLECTIONS: memory_mgr::SharedManager = memory_mgr::SharedManager::new();

/// A workload without figures of its own.
fn plain(run: fn(usize)) -> impl Fn(usize) -> String {
    move |threads| {
        run(threads);
        String::new()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let workload = args.get(1).map(String::as_str).unwrap_or("");
    let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(2);
    let run: Box<dyn Fn(usize) -> String> = match workload {
        "xmalloc" => Box::new(plain(xmalloc)),
        "larson" => Box::new(plain(larson)),
        "cache-scratch" => Box::new(plain(cache_scratch)),
        "alloc-test" => Box::new(plain(alloc_test)),
        "mstress" => Box::new(plain(mstress)),
        "glibc-thread" => Box::new(plain(glibc_thread)),
        "sh6bench" => Box::new(plain(sh6bench)),
        "thread-exit" => Box::new(thread_exit),
        "live-builder" => Box::new(live_builder),
        "thread-churn" => Box::new(plain(thread_churn)),
        "collections" => Box::new(plain(|t| collections_in(t, allocator_api2::alloc::Global))),
        "collections-shared" => Box::new(plain(|t| collections_in(t, &COLLECTIONS))),
        _ => {
            eprintln!(
                "usage: {} xmalloc|larson|cache-scratch|alloc-test|mstress|glibc-thread|\
                 sh6bench|thread-exit|live-builder|thread-churn|collections|\
                 collections-shared THREADS",
                args[0]
            );
            std::process::exit(2);
        }
    };
    let t = Instant::now();
    let extra = run(threads);
    let secs = t.elapsed().as_secs_f64();
    println!("{workload} {threads} {secs:.3} {}{extra}", peak_rss_kib());
    if let Some(f) = std::env::var_os("MT_SMAPS") {
        std::fs::copy("/proc/self/smaps", f).unwrap();
    }
    if std::env::var_os("MT_STATS").is_some() {
        report();
    }
}
