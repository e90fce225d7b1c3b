//! Side-by-side allocation workloads: memory_mgr against the alternatives.
//!
//! Ids are `workload/bytes/contender`; run each in its own process with
//! `benches/run.sh` (a heap fragmented by one contender skews the next).
//! Contenders marked † never free (bumpalo, typed-arena: reset every 10,000)
//! and `floor` only writes the payload: the part of every figure that is not
//! allocator work.
//!
//! Every payload is fully written (`[i; W]`) and passed through `black_box`.

// The ring lives on the heap on purpose (6 MB would overflow the stack), and
// churn replaces boxes with new ones on purpose: that is what it measures.
#![allow(clippy::useless_vec)]
#![allow(unknown_lints, clippy::replace_box)]

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use memory_mgr::{Block, MemoryManager, PoolBox};
use mimalloc::MiMalloc;

static MI: MiMalloc = MiMalloc;

/// Objects per batch, live objects in churn, allocations between resets.
const BATCH: usize = 10_000;

type G<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

#[inline(always)]
fn payload<const W: usize>(i: usize) -> [u64; W] {
    [black_box(i) as u64; W]
}

/// A seeded shuffled order of `0..n`.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    fastrand::Rng::with_seed(seed).shuffle(&mut v);
    v
}

/// Raw allocation through mimalloc's `GlobalAlloc` value.
struct Mi<T>(std::ptr::NonNull<T>);

impl<T> Mi<T> {
    #[inline(always)]
    fn new(v: T) -> Self {
        // SAFETY: `T` is a non-zero-sized array here; the pointer is checked.
        unsafe {
            let p = MI.alloc(Layout::new::<T>()).cast::<T>();
            let p = std::ptr::NonNull::new(p).expect("mimalloc refused");
            p.write(v);
            Mi(p)
        }
    }
}

impl<T> Drop for Mi<T> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: allocated by `MI` with this layout in `new`, freed once.
        unsafe { MI.dealloc(self.0.as_ptr().cast(), Layout::new::<T>()) }
    }
}

fn configure(g: &mut G<'_>) {
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_millis(1200));
    g.sample_size(20);
}

// ----- pair: alloc one, write it, free it --------------------------------

fn pair<const W: usize>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("pair/{}", W * 8));
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    g.bench_function("poolbox", |b| {
        let mm = MemoryManager::new();
        let mut i = 0;
        b.iter(|| {
            i += 1;
            let x = mm.alloc(payload::<W>(i));
            black_box(&*x);
        })
    });
    g.bench_function("block", |b| {
        let mm = MemoryManager::new();
        let mut i = 0;
        b.iter(|| {
            i += 1;
            let blk: Block = mm.alloc_block(W * 8).unwrap();
            // Checked, as slotmap's insert + index.
            mm.write(blk, 0, payload::<W>(i)).unwrap();
            black_box(blk);
            mm.free(blk).unwrap();
        })
    });
    g.bench_function("box", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            let x = Box::new(payload::<W>(i));
            black_box(&*x);
        })
    });
    g.bench_function("mimalloc", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            let x = Mi::new(payload::<W>(i));
            black_box(x.0);
        })
    });
    g.bench_function("slab", |b| {
        let mut s = slab::Slab::with_capacity(16);
        let mut i = 0;
        b.iter(|| {
            i += 1;
            let k = s.insert(payload::<W>(i));
            black_box(&s[k]);
            s.remove(k);
        })
    });
    g.bench_function("slotmap", |b| {
        let mut s = slotmap::SlotMap::with_capacity(16);
        let mut i = 0;
        b.iter(|| {
            i += 1;
            let k = s.insert(payload::<W>(i));
            black_box(&s[k]);
            s.remove(k);
        })
    });
    g.bench_function("bumpalo†", |b| {
        let mut bump = bumpalo::Bump::new();
        let mut i = 0;
        b.iter(|| {
            i += 1;
            if i % BATCH == 0 {
                bump.reset();
            }
            black_box(&*bump.alloc(payload::<W>(i)));
        })
    });
    g.bench_function("typed_arena†", |b| {
        let mut arena = typed_arena::Arena::with_capacity(BATCH);
        let mut i = 0;
        b.iter(|| {
            i += 1;
            if i % BATCH == 0 {
                arena = typed_arena::Arena::with_capacity(BATCH);
            }
            black_box(&*arena.alloc(payload::<W>(i)));
        })
    });
    g.bench_function("floor†", |b| {
        let mut ring = vec![[0u64; W]; BATCH];
        let mut i = 0;
        b.iter(|| {
            i += 1;
            let slot = &mut ring[i % BATCH];
            *slot = payload::<W>(i);
            black_box(&*slot);
        })
    });
    g.finish();
}

// ----- batch: alloc 10,000, then free them LIFO, FIFO or shuffled ----------

#[derive(Clone, Copy)]
enum Order {
    Lifo,
    Fifo,
    Random,
}

impl Order {
    fn name(self) -> &'static str {
        match self {
            Order::Lifo => "batch-lifo",
            Order::Fifo => "batch-fifo",
            Order::Random => "batch-random",
        }
    }

    fn sequence(self) -> Vec<usize> {
        match self {
            Order::Lifo => (0..BATCH).rev().collect(),
            Order::Fifo => (0..BATCH).collect(),
            Order::Random => shuffled(BATCH, 42),
        }
    }
}

fn batch<const W: usize>(c: &mut Criterion, order: Order) {
    let mut g = c.benchmark_group(format!("{}/{}", order.name(), W * 8));
    configure(&mut g);
    g.throughput(Throughput::Elements(BATCH as u64));
    let seq = order.sequence();
    g.bench_function("poolbox", |b| {
        let mm = MemoryManager::new();
        let mut held: Vec<Option<PoolBox<'_, [u64; W]>>> = Vec::with_capacity(BATCH);
        b.iter(|| {
            for i in 0..BATCH {
                held.push(Some(mm.alloc(payload::<W>(i))));
            }
            black_box(&held);
            for &k in &seq {
                drop(held[k].take());
            }
            held.clear();
        })
    });
    g.bench_function("block", |b| {
        let mm = MemoryManager::new();
        let mut held: Vec<Block> = Vec::with_capacity(BATCH);
        b.iter(|| {
            for i in 0..BATCH {
                let blk = mm.alloc_block(W * 8).unwrap();
                mm.write(blk, 0, payload::<W>(i)).unwrap();
                held.push(blk);
            }
            black_box(&held);
            for &k in &seq {
                mm.free(held[k]).unwrap();
            }
            held.clear();
        })
    });
    g.bench_function("box", |b| {
        let mut held: Vec<Option<Box<[u64; W]>>> = Vec::with_capacity(BATCH);
        b.iter(|| {
            for i in 0..BATCH {
                held.push(Some(Box::new(payload::<W>(i))));
            }
            black_box(&held);
            for &k in &seq {
                drop(held[k].take());
            }
            held.clear();
        })
    });
    g.bench_function("mimalloc", |b| {
        let mut held: Vec<Option<Mi<[u64; W]>>> = Vec::with_capacity(BATCH);
        b.iter(|| {
            for i in 0..BATCH {
                held.push(Some(Mi::new(payload::<W>(i))));
            }
            black_box(&held);
            for &k in &seq {
                drop(held[k].take());
            }
            held.clear();
        })
    });
    g.bench_function("slab", |b| {
        let mut s = slab::Slab::with_capacity(BATCH);
        let mut keys = Vec::with_capacity(BATCH);
        b.iter(|| {
            for i in 0..BATCH {
                keys.push(s.insert(payload::<W>(i)));
            }
            black_box(&s);
            for &k in &seq {
                s.remove(keys[k]);
            }
            keys.clear();
        })
    });
    g.bench_function("slotmap", |b| {
        let mut s = slotmap::SlotMap::with_capacity(BATCH);
        let mut keys = Vec::with_capacity(BATCH);
        b.iter(|| {
            for i in 0..BATCH {
                keys.push(s.insert(payload::<W>(i)));
            }
            black_box(&s);
            for &k in &seq {
                s.remove(keys[k]);
            }
            keys.clear();
        })
    });
    g.bench_function("bumpalo†", |b| {
        let mut bump = bumpalo::Bump::new();
        b.iter(|| {
            for i in 0..BATCH {
                black_box(&*bump.alloc(payload::<W>(i)));
            }
            bump.reset();
        })
    });
    g.bench_function("floor†", |b| {
        let mut ring = vec![[0u64; W]; BATCH];
        b.iter(|| {
            for (i, slot) in ring.iter_mut().enumerate() {
                *slot = payload::<W>(i);
                black_box(&*slot);
            }
        })
    });
    g.finish();
}

// ----- churn: 10,000 live; each step frees a random one and allocates ------

fn churn<const W: usize>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("churn/{}", W * 8));
    configure(&mut g);
    g.throughput(Throughput::Elements(BATCH as u64));
    let victims: Vec<usize> = {
        let mut rng = fastrand::Rng::with_seed(7);
        (0..BATCH).map(|_| rng.usize(..BATCH)).collect()
    };
    g.bench_function("poolbox", |b| {
        let mm = MemoryManager::new();
        let mut live: Vec<PoolBox<'_, [u64; W]>> =
            (0..BATCH).map(|i| mm.alloc(payload::<W>(i))).collect();
        b.iter(|| {
            for (i, &v) in victims.iter().enumerate() {
                live[v] = mm.alloc(payload::<W>(i));
            }
            black_box(&live);
        })
    });
    g.bench_function("block", |b| {
        let mm = MemoryManager::new();
        let mut live: Vec<Block> = (0..BATCH).map(|_| mm.alloc_block(W * 8).unwrap()).collect();
        b.iter(|| {
            for (i, &v) in victims.iter().enumerate() {
                mm.free(live[v]).unwrap();
                let blk = mm.alloc_block(W * 8).unwrap();
                mm.write(blk, 0, payload::<W>(i)).unwrap();
                live[v] = blk;
            }
            black_box(&live);
        })
    });
    g.bench_function("box", |b| {
        let mut live: Vec<Box<[u64; W]>> = (0..BATCH).map(|i| Box::new(payload::<W>(i))).collect();
        b.iter(|| {
            for (i, &v) in victims.iter().enumerate() {
                live[v] = Box::new(payload::<W>(i));
            }
            black_box(&live);
        })
    });
    g.bench_function("mimalloc", |b| {
        let mut live: Vec<Mi<[u64; W]>> = (0..BATCH).map(|i| Mi::new(payload::<W>(i))).collect();
        b.iter(|| {
            for (i, &v) in victims.iter().enumerate() {
                live[v] = Mi::new(payload::<W>(i));
            }
            black_box(&live);
        })
    });
    g.bench_function("slab", |b| {
        let mut s = slab::Slab::with_capacity(BATCH);
        let mut keys: Vec<usize> = (0..BATCH).map(|i| s.insert(payload::<W>(i))).collect();
        b.iter(|| {
            for (i, &v) in victims.iter().enumerate() {
                s.remove(keys[v]);
                keys[v] = s.insert(payload::<W>(i));
            }
            black_box(&s);
        })
    });
    g.bench_function("slotmap", |b| {
        let mut s = slotmap::SlotMap::with_capacity(BATCH);
        let mut keys: Vec<_> = (0..BATCH).map(|i| s.insert(payload::<W>(i))).collect();
        b.iter(|| {
            for (i, &v) in victims.iter().enumerate() {
                s.remove(keys[v]);
                keys[v] = s.insert(payload::<W>(i));
            }
            black_box(&s);
        })
    });
    g.finish();
}

// ----- mixed sizes through the raw Block API --------------------------------

fn mixed(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixed/1-1024");
    configure(&mut g);
    g.throughput(Throughput::Elements(BATCH as u64));
    // Skewed towards small sizes: size = 1 + 1023 * u^3.
    let mut rng = fastrand::Rng::with_seed(11);
    let sizes: Vec<usize> = (0..BATCH)
        .map(|_| {
            let u = rng.f64();
            1 + (1023.0 * u * u * u) as usize
        })
        .collect();
    let victims: Vec<usize> = (0..BATCH).map(|_| rng.usize(..1000)).collect();
    g.bench_function("block", |b| {
        let mm = MemoryManager::new();
        let mut live: Vec<Block> = sizes[..1000]
            .iter()
            .map(|&s| mm.alloc_block(s).unwrap())
            .collect();
        b.iter(|| {
            for (&v, &s) in victims.iter().zip(&sizes) {
                mm.free(live[v]).unwrap();
                let blk = mm.alloc_block(s).unwrap();
                let bytes = mm.block_ptr(blk).unwrap().cast::<u8>();
                // SAFETY: live and at least `s` bytes.
                unsafe { bytes.as_ptr().write_bytes(v as u8, s) };
                live[v] = blk;
            }
            black_box(&live);
        })
    });
    g.bench_function("box", |b| {
        let mut live: Vec<Box<[u8]>> = sizes[..1000]
            .iter()
            .map(|&s| vec![0u8; s].into_boxed_slice())
            .collect();
        b.iter(|| {
            for (&v, &s) in victims.iter().zip(&sizes) {
                drop(std::mem::take(&mut live[v]));
                let mut x = Vec::<u8>::with_capacity(s);
                // SAFETY: capacity `s`, every byte written before `set_len`.
                unsafe {
                    x.as_mut_ptr().write_bytes(v as u8, s);
                    x.set_len(s);
                }
                live[v] = x.into_boxed_slice();
            }
            black_box(&live);
        })
    });
    g.bench_function("mimalloc", |b| {
        let alloc = |s: usize| {
            let l = Layout::from_size_align(s, 8).unwrap();
            // SAFETY: non-zero size.
            (unsafe { MI.alloc(l) }, l)
        };
        let mut live: Vec<(*mut u8, Layout)> = sizes[..1000].iter().map(|&s| alloc(s)).collect();
        b.iter(|| {
            for (&v, &s) in victims.iter().zip(&sizes) {
                let (p, l) = live[v];
                // SAFETY: allocated by `MI` with `l`, freed once.
                unsafe { MI.dealloc(p, l) };
                let (q, m) = alloc(s);
                // SAFETY: `q` holds `s` bytes.
                unsafe { q.write_bytes(v as u8, s) };
                live[v] = (q, m);
            }
            black_box(&live);
        });
        for (p, l) in live {
            // SAFETY: as above.
            unsafe { MI.dealloc(p, l) };
        }
    });
    g.finish();
}

// ----- scratch: a frame of allocations, then everything freed at once ----

/// Objects allocated in one frame of the scratch workload.
const FRAME: usize = 5_000;

/// A per-frame scratch pattern: `FRAME` 32-byte objects allocated, kept to
/// the end of the frame, then all freed at once — `reset` for the managers
/// and bumpalo, dropping a reused vector of boxes for the system allocator.
fn scratch(c: &mut Criterion) {
    let mut g = c.benchmark_group("scratch/32");
    configure(&mut g);
    g.throughput(Throughput::Elements(FRAME as u64));
    g.bench_function("poolbox", |b| {
        let mut mm = MemoryManager::new();
        b.iter(|| {
            for i in 0..FRAME {
                black_box(PoolBox::leak(mm.alloc(payload::<4>(i))));
            }
            mm.reset();
        });
    });
    g.bench_function("box", |b| {
        let mut v: Vec<Box<[u64; 4]>> = Vec::with_capacity(FRAME);
        b.iter(|| {
            for i in 0..FRAME {
                v.push(Box::new(payload::<4>(i)));
                black_box(v.last());
            }
            v.clear();
        });
    });
    g.bench_function("mimalloc", |b| {
        let mut v: Vec<Mi<[u64; 4]>> = Vec::with_capacity(FRAME);
        b.iter(|| {
            for i in 0..FRAME {
                v.push(Mi::new(payload::<4>(i)));
                black_box(v.last());
            }
            v.clear();
        });
    });
    g.bench_function("bumpalo†", |b| {
        let mut bump = bumpalo::Bump::new();
        b.iter(|| {
            for i in 0..FRAME {
                black_box(bump.alloc(payload::<4>(i)));
            }
            bump.reset();
        });
    });
    g.finish();
}

fn pairs(c: &mut Criterion) {
    pair::<1>(c);
    pair::<8>(c);
    pair::<32>(c);
    pair::<64>(c);
    pair::<75>(c);
}

fn batches(c: &mut Criterion) {
    for order in [Order::Lifo, Order::Fifo, Order::Random] {
        batch::<1>(c, order);
        batch::<8>(c, order);
        batch::<32>(c, order);
        batch::<64>(c, order);
        batch::<75>(c, order);
    }
}

fn churns(c: &mut Criterion) {
    churn::<1>(c);
    churn::<8>(c);
    churn::<32>(c);
    churn::<64>(c);
    churn::<75>(c);
}

// ----- handles: a slotmap workload through checked keys ---------------------

/// 10,000 live `[u64; 4]` values; each step removes a random one, inserts a
/// new one in its place, reads four random values and writes one.
fn handles(c: &mut Criterion) {
    const LIVE: usize = 10_000;
    const STEPS: usize = 1_000;
    let mut g = c.benchmark_group("handles/32");
    configure(&mut g);
    g.throughput(Throughput::Elements(STEPS as u64));
    let mut rng = fastrand::Rng::with_seed(5);
    let picks: Vec<[usize; 6]> = (0..STEPS)
        .map(|_| core::array::from_fn(|_| rng.usize(..LIVE)))
        .collect();
    g.bench_function("handle", |b| {
        let mut mm = MemoryManager::new();
        let mut keys: Vec<_> = (0..LIVE).map(|i| mm.insert(payload::<4>(i))).collect();
        b.iter(|| {
            let mut sum = 0;
            for (i, p) in picks.iter().enumerate() {
                mm.remove(keys[p[0]]).unwrap();
                keys[p[0]] = mm.insert(payload::<4>(i));
                for &r in &p[1..5] {
                    sum += mm.get(keys[r]).unwrap()[0];
                }
                mm.get_mut(keys[p[5]]).unwrap()[1] += 1;
            }
            black_box(sum)
        })
    });
    g.bench_function("slotmap", |b| {
        let mut s = slotmap::SlotMap::with_capacity(LIVE);
        let mut keys: Vec<_> = (0..LIVE).map(|i| s.insert(payload::<4>(i))).collect();
        b.iter(|| {
            let mut sum = 0;
            for (i, p) in picks.iter().enumerate() {
                s.remove(keys[p[0]]).unwrap();
                keys[p[0]] = s.insert(payload::<4>(i));
                for &r in &p[1..5] {
                    sum += s.get(keys[r]).unwrap()[0];
                }
                s.get_mut(keys[p[5]]).unwrap()[1] += 1;
            }
            black_box(sum)
        })
    });
    g.finish();
}

/// Every live value of a store, updated: 10,000 live `[u64; 4]` (with a
/// quarter of the slots vacant), a pass adding one to each through
/// `values_mut`.
fn iterate(c: &mut Criterion) {
    const LIVE: usize = 10_000;
    let mut g = c.benchmark_group("iterate/32");
    configure(&mut g);
    g.throughput(Throughput::Elements(LIVE as u64));
    g.bench_function("handle", |b| {
        let mut mm = MemoryManager::new();
        let hs: Vec<_> = (0..LIVE + LIVE / 3)
            .map(|i| mm.insert(payload::<4>(i)))
            .collect();
        for h in hs.iter().skip(1).step_by(4) {
            mm.remove(*h).unwrap();
        }
        b.iter(|| {
            for v in mm.values_mut::<[u64; 4]>() {
                v[0] += 1;
            }
        })
    });
    g.bench_function("slotmap", |b| {
        let mut s = slotmap::SlotMap::new();
        let ks: Vec<_> = (0..LIVE + LIVE / 3)
            .map(|i| s.insert(payload::<4>(i)))
            .collect();
        for k in ks.iter().skip(1).step_by(4) {
            s.remove(*k).unwrap();
        }
        b.iter(|| {
            for v in s.values_mut() {
                v[0] += 1;
            }
        })
    });
    g.finish();
}

criterion_group!(benches, pairs, batches, churns, mixed, scratch, handles, iterate);
criterion_main!(benches);
