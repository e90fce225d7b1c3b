//! `Vec` and `HashMap` living in a manager, through the `allocator-api2`
//! allocator that `&MemoryManager` implements: a per-request scratch
//! manager in a toy server, whose collections grow through the size classes
//! (in place while they fit a class) and into the system fallback, and whose
//! memory is accounted for and released with the manager.
//!
//! Run it with `cargo run --release --example collections`.

use allocator_api2::vec::Vec as AVec;
use hashbrown::HashMap;
use memory_mgr::MemoryManager;

/// Handles one "request": tokenises a text, counts words in a map and keeps
/// the token lengths in a vector, all inside the request's own manager.
fn handle(request: &str) -> (usize, String) {
    let mm = MemoryManager::new();
    let mut lengths: AVec<u16, &MemoryManager> = AVec::new_in(&mm);
    let mut counts = HashMap::new_in(&mm);
    for word in request.split_whitespace() {
        lengths.push(word.len() as u16);
        *counts.entry(word).or_insert(0u32) += 1;
    }
    let (top, n) = counts
        .iter()
        .max_by_key(|(w, n)| (**n, *w))
        .map(|(w, n)| (*w, *n))
        .unwrap_or(("", 0));
    let s = mm.stats();
    println!(
        "  {} words, {} distinct; most frequent {top:?} x{n}; manager: {} live allocations, {} bytes reserved",
        lengths.len(),
        counts.len(),
        s.live(),
        s.reserved_bytes()
    );
    (lengths.len(), top.to_string())
    // `counts`, `lengths`, then `mm` drop here: the borrow checker makes
    // the collections go first.
}

fn main() {
    println!("== a Vec growing one element at a time (reserve_exact) ==");
    let mm = MemoryManager::new();
    let mut v: AVec<u32, &MemoryManager> = AVec::new_in(&mm);
    let mut last = (0usize, std::ptr::null::<u32>());
    for i in 0..20u32 {
        v.reserve_exact(1);
        v.push(i);
        if v.capacity() != last.0 {
            let moved = if v.as_ptr() == last.1 {
                "in place"
            } else {
                "moved"
            };
            let class = mm
                .classes()
                .class_size_for(v.capacity() * 4)
                .map_or("system".to_string(), |c| format!("{c}-byte class"));
            println!(
                "  capacity {:>4} ({:>4} bytes): {class:<15} {moved}",
                v.capacity(),
                v.capacity() * 4
            );
            last = (v.capacity(), v.as_ptr());
        }
    }
    v.truncate(3);
    v.shrink_to_fit();
    println!(
        "  after truncate(3) + shrink_to_fit: capacity {}, {:?}",
        v.capacity(),
        &v[..]
    );
    drop(v);
    println!("  live after drop: {}", mm.stats().live());

    println!("\n== doubling (push): every step is a new class ==");
    let mut v: AVec<u32, &MemoryManager> = AVec::new_in(&mm);
    for i in 0..300u32 {
        v.push(i);
    }
    println!(
        "  300 u32s: capacity {}, {} system bytes",
        v.capacity(),
        mm.stats().system.bytes
    );
    drop(v);

    println!("\n== a HashMap in a manager ==");
    let mut map = HashMap::new_in(&mm);
    for i in 0..10_000u32 {
        map.insert(i, i * i);
    }
    let s = mm.stats();
    println!(
        "  10,000 entries: map[&99] = {}; {} live allocation(s), {} bytes from the system fallback",
        map[&99],
        s.live(),
        s.system.bytes
    );
    map.retain(|k, _| k % 100 == 0);
    map.shrink_to_fit();
    let s = mm.stats();
    println!(
        "  after retain(1%) + shrink_to_fit: {} entries, {} bytes from the system fallback",
        map.len(),
        s.system.bytes
    );
    drop(map);
    assert_eq!(mm.stats().live(), 0);

    println!("\n== one scratch manager per request ==");
    for request in [
        "the quick brown fox jumps over the lazy dog the end",
        "to be or not to be that is the question",
        &"lorem ipsum dolor sit amet ".repeat(200),
    ] {
        handle(request);
    }
}
