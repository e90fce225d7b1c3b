//! A short tour of every feature of `memory_mgr`, printing what it does.
//!
//! Run it with `cargo run --release --example tour`.

use std::time::Instant;

use memory_mgr::{Error, FineClasses, MemoryManager, PoolBox, SizeClasses};

#[derive(Debug, Clone, PartialEq)]
struct Particle {
    pos: [f32; 3],
    vel: [f32; 3],
    ttl: u32,
}

fn main() -> Result<(), Error> {
    let mm = MemoryManager::new();
    println!("== memory_mgr tour ==");
    println!("size classes: {:?}", mm.classes().sizes());
    if cfg!(feature = "pass-through") {
        println!("(pass-through mode: every allocation goes to the system allocator)");
    }

    // 1. Typed values: PoolBox, like Box.
    println!("\n-- PoolBox<T>: typed values --");
    let mut p = mm.alloc(Particle {
        pos: [0.0; 3],
        vel: [1.0, 2.0, 0.5],
        ttl: 60,
    });
    for _ in 0..10 {
        for i in 0..3 {
            p.pos[i] += p.vel[i];
        }
        p.ttl -= 1;
    }
    println!(
        "particle ({} bytes -> {}-byte class): {:?}",
        std::mem::size_of::<Particle>(),
        mm.classes()
            .class_size_for(std::mem::size_of::<Particle>())
            .unwrap(),
        *p
    );
    let q = p.clone();
    println!(
        "clone lives at {:p}, original at {:p}; equal: {}",
        q,
        p,
        q == p
    );
    println!(
        "size_of::<PoolBox<Particle>>() = {} bytes (one word, like Box)",
        std::mem::size_of::<PoolBox<'_, Particle>>()
    );
    let squares = mm.alloc_slice_fill_with(6, |i| i * i);
    let name = mm.alloc_str("emitter #1");
    println!("slice: {:?}, str: {:?}", &*squares, &*name);
    let big = mm.alloc([0u64; 200]); // 1600 bytes: above the largest class
    println!(
        "a {}-byte array went to the system allocator: {} live system box(es)",
        1600,
        mm.stats().system.live_boxes
    );
    let taken = PoolBox::into_inner(q);
    println!("into_inner moved the value out: ttl {}", taken.ttl);
    drop(big);

    // 2. Raw blocks with checked free.
    println!("\n-- Block: raw bytes, checked --");
    let b = mm.alloc_block(24)?;
    let at = mm.block_ptr(b)?;
    println!(
        "alloc_block(24) -> a {}-byte handle to {} usable bytes at {:?}",
        size_of::<memory_mgr::Block>(),
        mm.block_size(b)?,
        at.cast::<u8>()
    );
    mm.write(b, 0, [1u32, 2, 3])?;
    println!(
        "wrote [1, 2, 3] as u32s, read back {:?}",
        mm.read::<[u32; 3]>(b, 0)?
    );
    println!(
        "write past the end: {:?}",
        mm.write(b, 30, 0u32).unwrap_err()
    );
    mm.free(b)?;
    println!("free(b)        -> Ok(())");
    println!("free(b) again  -> {:?}", mm.free(b).unwrap_err());
    let reused = mm.alloc_block(24)?;
    println!(
        "the slot is handed out again ({}), and the stale handle still gets {:?}",
        if mm.block_ptr(reused)?.cast::<u8>() == at.cast::<u8>() {
            "same address"
        } else {
            "other address"
        },
        mm.free(b).unwrap_err()
    );
    println!(
        "read through the stale handle -> {:?}",
        mm.read::<u8>(b, 0).unwrap_err()
    );
    let other = MemoryManager::new();
    let foreign = other.alloc_block(8)?;
    println!(
        "free of another manager's block -> {:?}",
        mm.free(foreign).unwrap_err()
    );
    println!(
        "alloc_block(usize::MAX) -> {:?}",
        mm.alloc_block(usize::MAX).unwrap_err()
    );
    println!(
        "alloc_block_aligned(8, 3) -> {:?}",
        mm.alloc_block_aligned(8, 3).unwrap_err()
    );
    mm.free(reused)?;

    // 2b. Typed handles: values the manager owns, reached by checked keys.
    println!("\n-- Handle<T>: typed values the manager owns, checked keys --");
    let mut world = MemoryManager::builder().name("world").build()?;
    let ada = world.insert(String::from("ada"));
    let bob = world.insert(String::from("bob"));
    let [a, b] = world.get_disjoint_mut([ada, bob])?;
    std::mem::swap(a, b);
    println!(
        "after a swap through get_disjoint_mut: {:?}, {:?} ({} bytes a handle, Copy, no lifetime)",
        world.get(ada)?,
        world.get(bob)?,
        size_of::<memory_mgr::Handle<String>>()
    );
    println!("remove -> {:?}", world.remove(ada)?);
    println!("get after remove -> {:?}", world.get(ada).unwrap_err());
    world.reset(); // drops "ada" (the value behind `bob`)
    println!("get after reset -> {:?}", world.get(bob).unwrap_err());

    // 2c. Trait objects: unsize_box! is Box's coercion on stable.
    let shown: Vec<PoolBox<'_, dyn std::fmt::Debug>> = vec![
        memory_mgr::unsize_box!(mm.alloc(1u8)),
        memory_mgr::unsize_box!(mm.alloc("two")),
        memory_mgr::unsize_box!(mm.alloc([3.0f32; 2])),
    ];
    println!("PoolBox<dyn Debug> via unsize_box!: {shown:?}");
    drop(shown);

    // 3. Size-class tables.
    println!("\n-- size-class tables --");
    let fine = MemoryManager::<FineClasses>::with_classes();
    for size in [24, 100, 300] {
        println!(
            "{size:>4} bytes: default class {:>3}, fine class {:>3}",
            mm.classes().class_size_for(size).unwrap(),
            fine.classes().class_size_for(size).unwrap()
        );
    }
    println!(
        "fine table: {} classes, <= 11.1% waste above 64 bytes",
        FineClasses::SIZES.len()
    );

    // 4. Speed: a burst of allocations against Box.
    println!("\n-- a burst of 1,000,000 small allocations --");
    let n = 1_000_000;
    let t = Instant::now();
    let v: Vec<_> = (0..n).map(|i| mm.alloc([i as u64; 4])).collect();
    drop(v);
    let pooled = t.elapsed();
    let t = Instant::now();
    let v: Vec<_> = (0..n).map(|i| Box::new([i as u64; 4])).collect();
    drop(v);
    let boxed = t.elapsed();
    println!("PoolBox: {pooled:?}, Box: {boxed:?} (see docs/benchmarks.md for measured ratios)");

    // 5. Statistics.
    println!("\n-- stats(): per class live, peak, counts, use of reserved memory --");
    drop((p, squares, name));
    println!("{}", mm.stats());
    assert_eq!(mm.stats().live(), 0);

    // 6. Operations: trim, budget, reserve, reset, leaks.
    println!("\n-- trim(): give empty chunks back --");
    let before = mm.stats().reserved_bytes();
    let released = mm.trim();
    println!(
        "reserved {before} bytes, trim released {released}, now {}",
        mm.stats().reserved_bytes()
    );

    println!("\n-- a budget of 256 KiB --");
    let budgeted = MemoryManager::builder().budget(256 << 10).build()?;
    let mut held = Vec::new();
    let err = loop {
        match budgeted.try_alloc([0u64; 8]) {
            Ok(b) => held.push(b),
            Err(e) => break e,
        }
    };
    println!("{} 64-byte values fit; the next one: {err}", held.len());
    held.truncate(held.len() / 2);
    println!(
        "after dropping half, try_alloc -> {:?}",
        budgeted.try_alloc([0u64; 8]).map(|_| "Ok")
    );
    drop(held);
    println!("{}", budgeted.stats());

    println!("\n-- reserve(): no system call inside a frame --");
    let mut level = MemoryManager::new();
    level.reserve::<Particle>(10_000)?;
    let class = level
        .classes()
        .class_for_size(std::mem::size_of::<Particle>())
        .unwrap();
    let chunks = level.stats().classes[class].chunks;
    let frame: Vec<_> = (0..10_000)
        .map(|i| {
            level.alloc(Particle {
                pos: [i as f32; 3],
                vel: [0.0; 3],
                ttl: 1,
            })
        })
        .collect();
    println!(
        "10,000 particles after reserve(10,000): chunks {} -> {}",
        chunks,
        level.stats().classes[class].chunks
    );
    drop(frame);

    println!("\n-- reset() and leaks() --");
    let forgotten = level.alloc_block(100)?;
    println!(
        "before reset: {} live allocation(s) would leak: {:?}",
        level.leaks().total(),
        level.leaks().classes[4]
    );
    level.reset();
    println!(
        "after reset: live {}, reserved {} bytes; freeing the old block -> {:?}",
        level.stats().live(),
        level.stats().reserved_bytes(),
        level.free(forgotten).unwrap_err()
    );
    assert!(mm.is_consistent());
    Ok(())
}
