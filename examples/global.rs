//! A program running on `memory_mgr::Global`: every `Box`, `Vec`, `String`
//! and `HashMap` below — on the main thread and on four workers — comes from
//! per-thread heaps of size-class pools. Prints the allocator's statistics.
//!
//! Run it with `cargo run --release --example global`.

use std::collections::HashMap;
use std::thread;

use memory_mgr::Global;

#[global_allocator]
static GLOBAL: Global = Global::new();

fn main() {
    let words: Vec<String> = (0..50_000).map(|i| format!("word{}", i % 5_000)).collect();
    let counts: Vec<HashMap<String, usize>> = thread::scope(|s| {
        let workers: Vec<_> = words
            .chunks(words.len() / 4)
            .map(|chunk| {
                s.spawn(move || {
                    let mut m = HashMap::new();
                    for w in chunk {
                        *m.entry(w.clone()).or_insert(0) += 1;
                    }
                    m
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    // The workers' maps are merged and dropped here: their blocks go back
    // to the workers' heaps as remote frees.
    let mut total: HashMap<String, usize> = HashMap::new();
    for m in counts {
        for (k, v) in m {
            *total.entry(k).or_insert(0) += v;
        }
    }
    assert_eq!(total.len(), 5_000);
    assert!(total.values().all(|&v| v == 10));
    drop(words);
    println!("5,000 distinct words counted by 4 threads; the allocator now:");
    println!("{}", GLOBAL.stats());
    let released = GLOBAL.trim();
    println!("trim() gave {released} bytes back to the system");
}
