//! Growth across many chunks, geometric chunk sizes, a million live blocks.

use memory_mgr::{MemoryManager, PoolBox};

use crate::{assert_no_leak, n, PASS_THROUGH};

#[test]
fn a_million_live_boxes_across_many_chunks() {
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        // Under Miri 2,100: more than the first chunk's 2,040 blocks, so the
        // pool still grows a second chunk (2,000 fitted in one).
        let count = n(1_000_000, 2_100);
        let boxes: Vec<PoolBox<'_, u64>> = (0..count as u64).map(|i| mm.alloc(i)).collect();
        let s = mm.stats();
        if !PASS_THROUGH {
            let c = s.classes[0];
            assert_eq!(c.live_boxes, count);
            assert!(c.capacity >= count);
            if !cfg!(miri) {
                // 8 MB of 8-byte blocks: 16 KiB, 32 KiB, ... 1 MiB, then 1 MiB chunks.
                assert!(c.chunks >= 8, "{c:?}");
                assert!(c.chunks <= 16, "growth is geometric: {c:?}");
                // Per-object overhead: under 9 bytes per 8-byte object.
                assert!(
                    c.reserved_bytes * 100 <= count * 9 * 100 + 2 * (1 << 20) * 100,
                    "{c:?}"
                );
            }
        }
        for (i, b) in boxes.iter().enumerate() {
            assert_eq!(**b, i as u64);
        }
        drop(boxes);
        assert_eq!(mm.stats().live(), 0);
        assert!(mm.is_consistent());
    });
}

#[test]
fn chunk_sizes_double_up_to_the_cap() {
    if PASS_THROUGH {
        return;
    }
    let mm = MemoryManager::builder()
        .initial_chunk_size(4096)
        .max_chunk_size(16384)
        .build()
        .unwrap();
    let mut held = Vec::new();
    let mut reserved = vec![];
    // Stats every 8th allocation (a chunk holds more than 8 blocks here, so
    // no step is missed): under Miri a `stats()` per allocation took 30 s.
    while mm.stats().classes[3].chunks < 5 {
        held.extend((0..8).map(|_| mm.alloc([0u8; 64])));
        let r = mm.stats().classes[3].reserved_bytes;
        if reserved.last() != Some(&r) {
            reserved.push(r);
        }
    }
    let steps: Vec<_> = reserved.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(steps, [8192, 16384, 16384, 16384]);
}

#[test]
fn freed_blocks_are_reused_before_the_pool_grows() {
    if PASS_THROUGH {
        return;
    }
    let mm = MemoryManager::new();
    // Under Miri 3 rounds: every round after the first reuses the blocks.
    for _ in 0..n(100, 3) {
        let v: Vec<_> = (0..1000).map(|i| mm.alloc([i as u8; 30])).collect();
        drop(v);
    }
    let s = mm.stats().classes[2];
    assert_eq!(s.live_boxes, 0);
    assert!(s.capacity < 2000, "{s:?}");
}
