//! A program on `memory_mgr::Global`: this test binary's every allocation —
//! the harness, `Vec`s, `String`s, `HashMap`s, thread-locals — goes through
//! it. Thousands of threads started and joined, blocks that outlive their
//! thread, thread-local destructors that allocate.
//!
//! Not under Miri: a `Box` retags its pointer to the value's bytes, and a
//! free that masks the pointer to reach its chunk header is then out of
//! bounds for that tag (Miri runs `Global` through its `GlobalAlloc` methods
//! in tests/all/shared.rs instead).
#![cfg(all(feature = "std", not(miri)))]

use std::collections::HashMap;
use std::thread;

use memory_mgr::Global;

const PASS_THROUGH: bool = cfg!(feature = "pass-through");

#[global_allocator]
static GLOBAL: Global = Global::new();

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[test]
fn a_program_runs_on_global() {
    // Thousands of short-lived threads, each leaving a value behind.
    let mut kept = Vec::new();
    for t in 0..2_000 {
        let s = thread::spawn(move || {
            SCRATCH.with(|s| s.borrow_mut().push(format!("scratch {t}"))); // freed at exit
            let m: HashMap<u32, String> = (0..20).map(|i| (i, format!("{t}-{i}"))).collect();
            m[&7].clone()
        })
        .join()
        .unwrap();
        kept.push(s);
    }
    for (t, s) in kept.iter().enumerate() {
        assert_eq!(s, &format!("{t}-7"));
    }
    drop(kept);

    // Many threads at once, passing vectors around.
    let chunks: Vec<Vec<u64>> = thread::scope(|s| {
        let hs: Vec<_> = (0..16u64)
            .map(|t| s.spawn(move || (0..10_000).map(|i| i * t).collect::<Vec<u64>>()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: u64 = chunks.iter().map(|c| c.iter().sum::<u64>()).sum();
    assert_eq!(total, (0..16u64).map(|t| t * 49_995_000).sum());
    drop(chunks);

    // Reallocation in place within a class, and across classes.
    let mut v: Vec<u8> = Vec::with_capacity(100);
    let p = v.as_ptr();
    v.extend(0..100);
    v.reserve_exact(4); // 104 bytes: the same class
    if PASS_THROUGH {
        return; // straight to the system allocator: nothing of ours to see
    }
    assert_eq!(v.as_ptr(), p);
    v.extend(0..200);
    assert_eq!(v.len(), 300);

    let s = GLOBAL.stats();
    assert!(s.allocs() > 10_000, "{s}");
    // Slots are reused: far fewer chunks than threads.
    let chunks: usize = s.classes.iter().map(|c| c.chunks).sum();
    assert!(chunks < 2_000, "{chunks} chunks");
    GLOBAL.trim();
}
