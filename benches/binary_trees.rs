//! binary-trees (the Benchmarks Game program), depth 16, single thread:
//! `PoolBox<Node>` against `Box`, mimalloc, typed-arena and bumpalo. The
//! checks are verified against the reference output on every run. Every
//! contender that frees runs two shapes: check then drop (two walks, the
//! reference program) and `-fused` (one walk that checks and frees).

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use memory_mgr::{MemoryManager, PoolBox};
use mimalloc::MiMalloc;

static MI: MiMalloc = MiMalloc;

const MIN_DEPTH: u32 = 4;
const MAX_DEPTH: u32 = 16;

/// The reference output's checks for depth 16: stretch tree, each
/// (iterations, depth) line, long-lived tree.
fn expected() -> Vec<u64> {
    let mut v = vec![(1 << (MAX_DEPTH + 2)) - 1];
    let mut d = MIN_DEPTH;
    while d <= MAX_DEPTH {
        let iterations = 1u64 << (MAX_DEPTH - d + MIN_DEPTH);
        v.push(iterations * ((1 << (d + 1)) - 1));
        d += 2;
    }
    v.push((1 << (MAX_DEPTH + 1)) - 1);
    v
}

/// Runs the program with `make(depth) -> check of a fresh tree`, and
/// `long_lived` holding one tree across the iterations.
fn run(
    mut tree_check: impl FnMut(u32) -> u64,
    long_lived: impl FnOnce(&mut dyn FnMut()) -> u64,
) -> Vec<u64> {
    let mut out = vec![tree_check(MAX_DEPTH + 1)];
    let mut body = || {
        let mut d = MIN_DEPTH;
        while d <= MAX_DEPTH {
            let iterations = 1u32 << (MAX_DEPTH - d + MIN_DEPTH);
            let mut check = 0;
            for _ in 0..iterations {
                check += tree_check(d);
            }
            out.push(check);
            d += 2;
        }
    };
    let long = long_lived(&mut body);
    out.push(long);
    out
}

// ----- PoolBox ----------------------------------------------------------

struct PNode<'m> {
    left: Option<PoolBox<'m, PNode<'m>>>,
    right: Option<PoolBox<'m, PNode<'m>>>,
}

fn pool_tree(mm: &MemoryManager, depth: u32) -> PoolBox<'_, PNode<'_>> {
    if depth == 0 {
        mm.alloc(PNode {
            left: None,
            right: None,
        })
    } else {
        mm.alloc(PNode {
            left: Some(pool_tree(mm, depth - 1)),
            right: Some(pool_tree(mm, depth - 1)),
        })
    }
}

fn pool_check(n: &PNode<'_>) -> u64 {
    1 + n.left.as_deref().map_or(0, pool_check) + n.right.as_deref().map_or(0, pool_check)
}

/// Checks and frees in one walk: each node is moved out of its block (which
/// is freed) before its children are visited.
fn pool_check_free(n: PoolBox<'_, PNode<'_>>) -> u64 {
    let node = PoolBox::into_inner(n);
    1 + node.left.map_or(0, pool_check_free) + node.right.map_or(0, pool_check_free)
}

// ----- Box --------------------------------------------------------------

struct BNode {
    left: Option<Box<BNode>>,
    right: Option<Box<BNode>>,
}

fn box_tree(depth: u32) -> Box<BNode> {
    if depth == 0 {
        Box::new(BNode {
            left: None,
            right: None,
        })
    } else {
        Box::new(BNode {
            left: Some(box_tree(depth - 1)),
            right: Some(box_tree(depth - 1)),
        })
    }
}

fn box_check(n: &BNode) -> u64 {
    1 + n.left.as_deref().map_or(0, box_check) + n.right.as_deref().map_or(0, box_check)
}

/// Checks and frees in one walk, like `pool_check_free`.
#[allow(clippy::boxed_local)] // freeing the box is what is measured
fn box_check_free(n: Box<BNode>) -> u64 {
    let node = *n;
    1 + node.left.map_or(0, box_check_free) + node.right.map_or(0, box_check_free)
}

// ----- mimalloc (raw) -----------------------------------------------------

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

/// Checks a tree made by `mi_tree` without freeing it.
fn mi_check(n: NonNull<MNode>) -> u64 {
    // SAFETY: `n` is a live node of `mi_tree`.
    let node = unsafe { n.as_ref() };
    1 + node.left.map_or(0, mi_check) + node.right.map_or(0, mi_check)
}

/// Frees a tree made by `mi_tree`, children first (what dropping a `Box`
/// tree does).
fn mi_free(n: NonNull<MNode>) {
    // SAFETY: `n` is a live node of `mi_tree`, read and freed once.
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

/// Checks and frees a tree made by `mi_tree` in one walk.
fn mi_check_free(n: NonNull<MNode>) -> u64 {
    // SAFETY: `n` is a live node of `mi_tree`, read and freed once.
    let node = unsafe { n.read() };
    // SAFETY: as above.
    unsafe { MI.dealloc(n.as_ptr().cast(), Layout::new::<MNode>()) };
    1 + node.left.map_or(0, mi_check_free) + node.right.map_or(0, mi_check_free)
}

// ----- arenas (never free) ------------------------------------------------

struct ANode<'a> {
    left: Option<&'a ANode<'a>>,
    right: Option<&'a ANode<'a>>,
}

fn arena_check(n: &ANode<'_>) -> u64 {
    1 + n.left.map_or(0, arena_check) + n.right.map_or(0, arena_check)
}

fn bump_tree(b: &bumpalo::Bump, depth: u32) -> &ANode<'_> {
    if depth == 0 {
        b.alloc(ANode {
            left: None,
            right: None,
        })
    } else {
        let (l, r) = (bump_tree(b, depth - 1), bump_tree(b, depth - 1));
        b.alloc(ANode {
            left: Some(l),
            right: Some(r),
        })
    }
}

fn typed_tree<'a>(a: &'a typed_arena::Arena<ANode<'a>>, depth: u32) -> &'a ANode<'a> {
    if depth == 0 {
        a.alloc(ANode {
            left: None,
            right: None,
        })
    } else {
        let (l, r) = (typed_tree(a, depth - 1), typed_tree(a, depth - 1));
        a.alloc(ANode {
            left: Some(l),
            right: Some(r),
        })
    }
}

fn binary_trees(c: &mut Criterion) {
    let expect = expected();
    let mut g = c.benchmark_group("binary-trees/16");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    // The reference program's shape: check a tree by reference, then drop
    // it (a second walk that frees every node).
    g.bench_function("poolbox", |b| {
        b.iter(|| {
            let mm = MemoryManager::new();
            let out = run(
                |d| pool_check(&pool_tree(&mm, black_box(d))),
                |body| {
                    let long = pool_tree(&mm, MAX_DEPTH);
                    body();
                    pool_check(&long)
                },
            );
            assert_eq!(out, expect);
        })
    });
    g.bench_function("box", |b| {
        b.iter(|| {
            let out = run(
                |d| box_check(&box_tree(black_box(d))),
                |body| {
                    let long = box_tree(MAX_DEPTH);
                    body();
                    box_check(&long)
                },
            );
            assert_eq!(out, expect);
        })
    });
    g.bench_function("mimalloc", |b| {
        b.iter(|| {
            let out = run(
                |d| {
                    let t = mi_tree(black_box(d));
                    let n = mi_check(t);
                    mi_free(t);
                    n
                },
                |body| {
                    let long = mi_tree(MAX_DEPTH);
                    body();
                    let n = mi_check(long);
                    mi_free(long);
                    n
                },
            );
            assert_eq!(out, expect);
        })
    });
    // One walk: the check moves each node out of its allocation, frees it,
    // then visits the children.
    g.bench_function("poolbox-fused", |b| {
        b.iter(|| {
            let mm = MemoryManager::new();
            let out = run(
                |d| pool_check_free(pool_tree(&mm, black_box(d))),
                |body| {
                    let long = pool_tree(&mm, MAX_DEPTH);
                    body();
                    pool_check_free(long)
                },
            );
            assert_eq!(out, expect);
        })
    });
    g.bench_function("box-fused", |b| {
        b.iter(|| {
            let out = run(
                |d| box_check_free(box_tree(black_box(d))),
                |body| {
                    let long = box_tree(MAX_DEPTH);
                    body();
                    box_check_free(long)
                },
            );
            assert_eq!(out, expect);
        })
    });
    g.bench_function("mimalloc-fused", |b| {
        b.iter(|| {
            let out = run(
                |d| mi_check_free(mi_tree(black_box(d))),
                |body| {
                    let long = mi_tree(MAX_DEPTH);
                    body();
                    mi_check_free(long)
                },
            );
            assert_eq!(out, expect);
        })
    });
    g.bench_function("bumpalo†", |b| {
        b.iter(|| {
            let mut scratch = bumpalo::Bump::new();
            let long_arena = bumpalo::Bump::new();
            let out = run(
                |d| {
                    let n = arena_check(bump_tree(&scratch, black_box(d)));
                    scratch.reset();
                    n
                },
                |body| {
                    let long = bump_tree(&long_arena, MAX_DEPTH);
                    body();
                    arena_check(long)
                },
            );
            assert_eq!(out, expect);
        })
    });
    g.bench_function("typed_arena†", |b| {
        b.iter(|| {
            let long_arena = typed_arena::Arena::new();
            let out = run(
                |d| {
                    let scratch = typed_arena::Arena::new();
                    arena_check(typed_tree(&scratch, black_box(d)))
                },
                |body| {
                    let long = typed_tree(&long_arena, MAX_DEPTH);
                    body();
                    arena_check(long)
                },
            );
            assert_eq!(out, expect);
        })
    });
    g.finish();
}

criterion_group!(benches, binary_trees);
criterion_main!(benches);
