//! Replays a recorded heap trace — a real program's allocations, from
//! `benches/trace_record.rs` — through one allocator, in its own process:
//!
//! ```text
//! cargo run --release -p memory-mgr-bench --example trace_record          # writes target/trace.bin
//! cargo bench -p memory-mgr-bench --bench replay -- CONTENDER [TRACE] [ROUNDS]
//! ```
//!
//! Contenders: `wide` and `default` (`&MemoryManager<WideClasses>` and
//! `&MemoryManager` through the allocator-api2 `Allocator` impl), `global`
//! (`memory_mgr::Global`, as a program's global allocator would call it),
//! `mimalloc` and `glibc` (the system allocator), each through its own interface
//! (`allocate`/`grow`/`shrink`/`deallocate`, or `alloc`/`realloc`/`dealloc`).
//! Every allocation's first byte is written, as the program would. Prints
//! the median time of a round (every event of the trace, then every
//! allocation still live freed) over ROUNDS rounds (default 20), and the
//! peak resident set the rounds added. `benches/replay.sh` runs them all.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;
use std::time::Instant;

use allocator_api2::alloc::Allocator;
use memory_mgr::{MemoryManager, SizeClasses, WideClasses};
use mimalloc::MiMalloc;

enum Event {
    Alloc { id: usize, layout: Layout },
    Free { id: usize },
    Realloc { id: usize, size: usize },
}

fn parse(bytes: &[u8]) -> (Vec<Event>, usize) {
    let mut events = Vec::with_capacity(bytes.len() / 25);
    let mut ids = 0;
    for r in bytes.chunks_exact(25) {
        let word =
            |i: usize| u64::from_le_bytes(r[1 + 8 * i..9 + 8 * i].try_into().unwrap()) as usize;
        let (id, a, b) = (word(0), word(1), word(2));
        ids = ids.max(id + 1);
        events.push(match r[0] {
            0 => Event::Alloc {
                id,
                layout: Layout::from_size_align(a, b).expect("a valid layout"),
            },
            1 => Event::Free { id },
            _ => Event::Realloc { id, size: a },
        });
    }
    (events, ids)
}

/// What the replay needs of an allocator.
trait Heap {
    fn alloc(&self, layout: Layout) -> NonNull<u8>;
    /// # Safety
    /// A live allocation of `layout` from this heap.
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout);
    /// # Safety
    /// A live allocation of `layout` from this heap.
    unsafe fn realloc(&self, ptr: NonNull<u8>, layout: Layout, size: usize) -> NonNull<u8>;
}

struct Global<A>(A);

impl<A: GlobalAlloc> Heap for Global<A> {
    fn alloc(&self, layout: Layout) -> NonNull<u8> {
        // SAFETY: traces hold no zero-sized allocations (the global allocator
        // never sees them).
        NonNull::new(unsafe { self.0.alloc(layout) }).expect("out of memory")
    }
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's guarantee.
        unsafe { self.0.dealloc(ptr.as_ptr(), layout) }
    }
    unsafe fn realloc(&self, ptr: NonNull<u8>, layout: Layout, size: usize) -> NonNull<u8> {
        // SAFETY: the caller's guarantee; the trace's sizes are non-zero.
        NonNull::new(unsafe { self.0.realloc(ptr.as_ptr(), layout, size) }).expect("out of memory")
    }
}

impl<C: SizeClasses> Heap for &MemoryManager<C> {
    fn alloc(&self, layout: Layout) -> NonNull<u8> {
        self.allocate(layout).expect("out of memory").cast()
    }
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's guarantee.
        unsafe { self.deallocate(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: NonNull<u8>, layout: Layout, size: usize) -> NonNull<u8> {
        let new = Layout::from_size_align(size, layout.align()).expect("a valid layout");
        // SAFETY: the caller's guarantee; `new` has the old alignment.
        let r = unsafe {
            if size >= layout.size() {
                self.grow(ptr, layout, new)
            } else {
                self.shrink(ptr, layout, new)
            }
        };
        r.expect("out of memory").cast()
    }
}

/// One round: every event, then every allocation still live freed.
fn round<H: Heap>(heap: &H, events: &[Event], live: &mut [Option<(NonNull<u8>, Layout)>]) {
    for e in events {
        match *e {
            Event::Alloc { id, layout } => {
                let p = heap.alloc(layout);
                // SAFETY: a fresh allocation of at least one byte.
                unsafe { p.as_ptr().write(id as u8) };
                live[id] = Some((p, layout));
            }
            Event::Free { id } => {
                let (p, layout) = live[id].take().expect("freed once");
                // SAFETY: live, allocated with `layout` by `heap`.
                unsafe { heap.free(p, layout) };
            }
            Event::Realloc { id, size } => {
                let (p, layout) = live[id].take().expect("live");
                // SAFETY: as above.
                let q = unsafe { heap.realloc(p, layout, size) };
                // SAFETY: at least one byte.
                unsafe { q.as_ptr().write(id as u8) };
                live[id] = Some((q, Layout::from_size_align(size, layout.align()).unwrap()));
            }
        }
    }
    for slot in live.iter_mut() {
        if let Some((p, layout)) = slot.take() {
            // SAFETY: live, allocated with `layout` by `heap`.
            unsafe { heap.free(p, layout) };
        }
    }
}

/// One round through checked blocks: every allocation a `Block` (its
/// first byte written, checked), a realloc a new block with the bytes
/// copied and the old one freed; then every block still live freed.
fn round_blocks<C: SizeClasses>(
    mm: &MemoryManager<C>,
    events: &[Event],
    live: &mut [Option<(memory_mgr::Block, usize)>],
) {
    for e in events {
        match *e {
            Event::Alloc { id, layout } => {
                let b = mm
                    .alloc_block_aligned(layout.size(), layout.align())
                    .expect("out of memory");
                mm.write(b, 0, id as u8).expect("a live block");
                live[id] = Some((b, layout.align()));
            }
            Event::Free { id } => {
                let (b, _) = live[id].take().expect("freed once");
                mm.free(b).expect("live");
            }
            Event::Realloc { id, size } => {
                let (old, align) = live[id].take().expect("live");
                let new = mm.alloc_block_aligned(size, align).expect("out of memory");
                let (from, to) = (
                    mm.block_ptr(old).expect("live"),
                    mm.block_ptr(new).expect("live"),
                );
                // SAFETY: two live blocks of this manager (checked above),
                // distinct, the copy within both.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        from.cast::<u8>().as_ptr(),
                        to.cast::<u8>().as_ptr(),
                        from.len().min(to.len()),
                    )
                };
                mm.free(old).expect("live");
                mm.write(new, 0, id as u8).expect("a live block");
                live[id] = Some((new, align));
            }
        }
    }
    for slot in live.iter_mut() {
        if let Some((b, _)) = slot.take() {
            mm.free(b).expect("live");
        }
    }
}

fn run_blocks<C: SizeClasses>(
    name: &str,
    mm: &MemoryManager<C>,
    events: &[Event],
    ids: usize,
    rounds: usize,
) {
    let mut live = vec![None; ids];
    timed(name, rounds, || round_blocks(mm, events, &mut live));
}

fn vm_hwm_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn run<H: Heap>(name: &str, heap: &H, events: &[Event], ids: usize, rounds: usize) {
    let mut live = vec![None; ids];
    timed(name, rounds, || round(heap, events, &mut live));
}

/// Runs `round` `rounds` times and prints the median and fastest times
/// and the peak RSS the runs added.
fn timed(name: &str, rounds: usize, mut round: impl FnMut()) {
    let before = vm_hwm_kib();
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            round();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "replay {name} median_ms {:.3} min_ms {:.3} peak_rss_added_kib {}",
        times[times.len() / 2],
        times[0],
        vm_hwm_kib().saturating_sub(before)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; the contender is the first other word.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(contender) = args.first() else {
        println!(
            "usage: cargo bench -p memory-mgr-bench --bench replay -- wide|default|global|blocks|blocks-wide|mimalloc|glibc [TRACE] [ROUNDS]"
        );
        return;
    };
    // (`cargo bench` runs in benches/; the trace is in the workspace's target/.)
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/trace.bin");
    let path = args.get(1).map_or(default, String::as_str);
    let rounds = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(20);
    let bytes = std::fs::read(path)
        .expect("a trace: run `cargo run --release -p memory-mgr-bench --example trace_record`");
    let (events, ids) = parse(&bytes);
    match contender.as_str() {
        "wide" => run(
            "wide",
            &&MemoryManager::<WideClasses>::with_classes(),
            &events,
            ids,
            rounds,
        ),
        "default" => run("default", &&MemoryManager::new(), &events, ids, rounds),
        "mimalloc" => run("mimalloc", &Global(MiMalloc), &events, ids, rounds),
        "glibc" => run("glibc", &Global(System), &events, ids, rounds),
        "global" => run(
            "global",
            &Global(memory_mgr::Global::new()),
            &events,
            ids,
            rounds,
        ),
        "blocks" => run_blocks("blocks", &MemoryManager::new(), &events, ids, rounds),
        "blocks-wide" => run_blocks(
            "blocks-wide",
            &MemoryManager::<WideClasses>::with_classes(),
            &events,
            ids,
            rounds,
        ),
        other => panic!("unknown contender {other}"),
    }
}
