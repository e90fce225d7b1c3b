//! A minimal alloc+free loop for profilers: `pair_probe MODE N`.
fn main() {
    let mm = memory_mgr::MemoryManager::new();
    let block = std::env::args().nth(1).as_deref() == Some("block");
    let n: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(1_000_000);
    for i in 0..n {
        if block {
            let b = mm.alloc_block(64).unwrap();
            // SAFETY: live, 64 bytes, aligned to 64.
            unsafe { b.as_ptr().cast::<[u64; 8]>().write([i as u64; 8]) };
            std::hint::black_box(b.as_ptr());
            mm.free(b).unwrap();
        } else {
            let b = mm.alloc([i as u64; 8]);
            std::hint::black_box(&*b);
        }
    }
}
