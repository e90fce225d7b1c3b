//! The 8-byte pair (issue 22): N allocate + write + free pairs of an
//! 8-byte payload, written several natural ways, against slab, mimalloc and
//! `Box`. A binary of its own: added to `measure.rs`, its code moved that
//! binary's codegen-unit split and with it how LLVM compiled `measure pair
//! slab` (24 → 47 instructions a pair, the slab's `len` and `next` kept on
//! the stack instead of in registers).
//!
//! * `pair8 run CONTENDER N` — run under `valgrind --tool=callgrind` with two
//!   N, the difference over the difference of N is instructions per pair;
//! * `pair8 time CONTENDER N` — ns per pair, the fastest of 7 runs of N.
//!
//! Run each in its own process.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;

use memory_mgr::MemoryManager;
use mimalloc::MiMalloc;

static MI: MiMalloc = MiMalloc;

/// The pair of `measure pair`, with an 8-byte payload.
#[inline(never)]
fn pair8(contender: &str, n: usize) {
    type P = [u64; 1];
    let payload = |i: usize| -> P { [black_box(i) as u64] };
    /// One `u64` in a struct.
    struct One(#[allow(dead_code)] u64);
    match contender {
        // As criterion's `pair/8` (`[u64; 1]`, a reference to it black-boxed).
        "poolbox" => {
            let mm = MemoryManager::new();
            for i in 0..n {
                black_box(&*mm.alloc(payload(i)));
            }
        }
        // A bare `u64`.
        "poolbox-u64" => {
            let mm = MemoryManager::new();
            for i in 0..n {
                let b = mm.alloc(i as u64);
                black_box(&*b);
                drop(b);
            }
        }
        // Allocated, then written through the box.
        "poolbox-write" => {
            let mm = MemoryManager::new();
            for i in 0..n {
                let mut b = mm.alloc(0u64);
                *b = black_box(i) as u64;
                black_box(&mut *b);
            }
        }
        // A struct of one `u64`; the box itself black-boxed.
        "poolbox-struct" => {
            let mm = MemoryManager::new();
            for i in 0..n {
                black_box(mm.alloc(One(black_box(i) as u64)));
            }
        }
        "sharedbox" => {
            let mm = memory_mgr::SharedManager::new();
            for i in 0..n {
                black_box(&*mm.alloc(payload(i)));
            }
        }
        "allocator" => {
            let mm = MemoryManager::new();
            let b = allocator_api2::boxed::Box::new_in(0u8, &mm); // one chunk
            for i in 0..n {
                black_box(&*allocator_api2::boxed::Box::new_in(payload(i), &mm));
            }
            drop(b);
        }
        "box" => {
            for i in 0..n {
                black_box(&*Box::new(payload(i)));
            }
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
        // Whether LLVM keeps the slab's `len` and `next` in registers here
        // or on the stack changes with the rest of the binary (the
        // codegen-unit split): 19–21 against 42 instructions a pair.
        "slab" => {
            let mut s = slab::Slab::with_capacity(16);
            for i in 0..n {
                let k = s.insert(payload(i));
                black_box(&s[k]);
                s.remove(k);
            }
        }
        "slab-mem" => slab_in_memory(n),
        // Eight bytes, aligned to 1.
        "poolbox-bytes" => {
            let mm = MemoryManager::new();
            for i in 0..n {
                black_box(&*mm.alloc([black_box(i) as u8; 8]));
            }
        }
        "slab-u64" => {
            let mut s = slab::Slab::with_capacity(16);
            for i in 0..n {
                let k = s.insert(i as u64);
                black_box(&s[k]);
                s.remove(k);
            }
        }
        other => panic!("unknown contender {other}"),
    }
}

/// `pair8 slab-mem`: the slab reached through a pointer the loop cannot see
/// into, as criterion's closure captures it (`&mut`), so that its `next`
/// and `len` go through memory on every insert and remove, as a pool's
/// state does (whichever way LLVM compiles the plain `slab` contender).
#[inline(never)]
fn slab_in_memory(n: usize) {
    let mut s = slab::Slab::with_capacity(16);
    for i in 0..n {
        let s = black_box(&mut s);
        let k = s.insert([black_box(i) as u64]);
        black_box(&s[k]);
        s.remove(k);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let n: usize = arg(3).parse().expect("N");
    match arg(1) {
        "run" => pair8(arg(2), n),
        "time" => {
            let best = (0..7)
                .map(|_| {
                    let t = std::time::Instant::now();
                    pair8(arg(2), n);
                    t.elapsed().as_secs_f64() * 1e9 / n as f64
                })
                .fold(f64::INFINITY, f64::min);
            println!("{best:.2}");
        }
        _ => eprintln!("usage: pair8 run|time CONTENDER N"),
    }
}
