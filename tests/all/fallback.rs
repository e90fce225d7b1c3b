//! Values and blocks above the largest class go to the system allocator
//! transparently.

use memory_mgr::{MemoryManager, PoolBox};

use crate::assert_no_leak;

#[test]
fn large_values_use_the_system_allocator_transparently() {
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let mut big = mm.alloc([7u8; 4000]);
        big[3999] = 1;
        let s = mm.stats();
        assert_eq!(s.system.live_boxes, 1);
        assert!(s.system.bytes >= 4000);
        assert!(s.classes.iter().all(|c| c.live() == 0));
        let copy = big.clone();
        assert_eq!(copy[3999], 1);
        assert_eq!(mm.stats().system.live_boxes, 2);
        let inner = PoolBox::into_inner(copy);
        assert_eq!(inner[0], 7);
        assert_eq!(mm.stats().system.live_boxes, 1);
        drop(big);
        let s = mm.stats();
        assert_eq!((s.system.live_boxes, s.system.bytes), (0, 0));
    });
}

#[test]
fn large_slices_and_strings_use_the_system_allocator() {
    let mm = MemoryManager::new();
    let v = mm.alloc_slice_fill_with(1000, |i| i as u32);
    let text = "x".repeat(3000);
    let s = mm.alloc_str(&text);
    assert_eq!(v[999], 999);
    assert_eq!(&*s, text);
    let s2 = s.clone();
    assert_eq!(*s2, *s);
    assert_eq!(mm.stats().system.live_boxes, 3);
    drop((v, s, s2));
    assert_eq!(mm.stats().live(), 0);
}

#[test]
fn large_blocks_are_checked_like_pooled_ones() {
    let mm = MemoryManager::new();
    let b = mm.alloc_block(10_000).unwrap();
    assert!(!b.is_pooled());
    assert_eq!(mm.block_size(b).unwrap(), 10_000);
    mm.write(b, 9_992, u64::MAX).unwrap();
    assert_eq!(mm.read::<u64>(b, 9_992).unwrap(), u64::MAX);
    assert!(mm.read::<u64>(b, 9_993).is_err());
    assert_eq!(mm.stats().system.live_blocks, 1);
    mm.free(b).unwrap();
    assert_eq!(mm.free(b), Err(memory_mgr::Error::DoubleFree));
    // The table slot is reused with a newer generation.
    let c = mm.alloc_block(20_000).unwrap();
    assert_eq!(mm.free(b), Err(memory_mgr::Error::DoubleFree));
    assert!(mm.is_live(c));
    mm.free(c).unwrap();
    assert_eq!(mm.stats().live(), 0);
}
