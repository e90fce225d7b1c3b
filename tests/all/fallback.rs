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

/// A freed large value is kept for the next allocation of its layout: the
/// same memory comes back with no call to the system allocator, the stats
/// count it as cached (reserved, not live), and a trim gives it back.
#[test]
fn a_freed_large_value_is_reused_without_a_system_call() {
    if crate::PASS_THROUGH {
        return; // every free goes to the system, for the tools watching it
    }
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let base = crate::held();
        let first = mm.alloc([1u64; 75]); // 600 bytes: above every class
        let at = PoolBox::as_ptr(&first);
        drop(first);
        let s = mm.stats();
        assert_eq!((s.system.live_boxes, s.system.bytes), (0, 0));
        assert!(s.system.cached_bytes >= 600);
        assert_eq!(s.reserved_bytes(), s.system.cached_bytes);
        drop(s);
        let held = crate::held();
        for i in 0..100 {
            let again = mm.alloc([i as u64; 75]);
            assert_eq!(PoolBox::as_ptr(&again), at, "the same memory");
            assert_eq!(again[74], i as u64);
        }
        assert_eq!(crate::held(), held, "no system call");
        // Another layout neither takes it nor disturbs it.
        let other = mm.alloc([0u8; 1000]);
        drop(other);
        assert_eq!(PoolBox::as_ptr(&mm.alloc([0u64; 75])), at);
        let cached = mm.stats().system.cached_bytes;
        assert_eq!(mm.trim(), cached);
        assert_eq!(crate::held(), base, "all given back");
        let s = mm.stats();
        assert_eq!((s.system.cached_bytes, s.reserved_bytes()), (0, 0));
    });
}

/// Freed large values of at most 4 MiB (with their footer, rounded to
/// their class) are kept like a pool's free blocks, in their size class;
/// larger ones go back to the system at once; a trim gives the kept ones
/// back.
#[test]
fn freed_large_values_are_kept_up_to_4_mib_until_a_trim() {
    if crate::PASS_THROUGH {
        return;
    }
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let start = crate::held();
        let v: Vec<_> = (0..100).map(|_| mm.alloc([0u8; 40_000])).collect();
        drop(v);
        let cached = mm.stats().system.cached_bytes;
        assert!((100 * 40_000..=100 * 45_000).contains(&cached), "{cached}");
        assert_eq!(crate::held() - start, cached as isize);
        // Any value of the same class (1/32 wide here) takes one back.
        let other = mm.alloc([1u8; 40_500]);
        assert_eq!(crate::held() - start, cached as isize, "no system call");
        drop(other);
        drop(mm.alloc_slice_copy(&vec![0u8; 5 << 20])); // above 4 MiB: not kept
        assert_eq!(mm.stats().system.cached_bytes, cached);
        assert_eq!(crate::held() - start, cached as isize);
        drop(mm.alloc_slice_copy(&vec![0u8; 3 << 20])); // kept (1/8 classes)
        let more = mm.stats().system.cached_bytes - cached;
        assert!((3 << 20..=(3 << 20) + (3 << 17)).contains(&more), "{more}");
        assert_eq!(crate::held() - start, (cached + more) as isize);
        assert_eq!(mm.trim(), cached + more);
        assert_eq!(crate::held(), start);
    });
}

/// The cache keeps at most 64 MiB: what is freed past it goes back to the
/// system at once. (Natively only: 70 MiB is too much for Miri.)
#[test]
fn the_large_cache_keeps_at_most_64_mib() {
    if crate::PASS_THROUGH || cfg!(miri) {
        return;
    }
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let start = crate::held();
        let size = 3_500_000;
        let v: Vec<_> = (0..20)
            .map(|_| mm.alloc_slice_copy(&vec![7u8; size]))
            .collect();
        let full = mm.stats().system.bytes / 20;
        assert!(full > size && full <= 4 << 20, "{full}");
        drop(v);
        let cached = mm.stats().system.cached_bytes;
        assert_eq!(cached, (64 << 20) / full * full, "as many as fit in 64 MiB");
        assert_eq!(
            crate::held() - start,
            cached as isize,
            "the rest given back"
        );
        // Kept ones serve the next requests of their class.
        let again = mm.alloc_slice_copy(&vec![8u8; size]);
        assert_eq!(mm.stats().system.cached_bytes, cached - full);
        assert!(again.iter().all(|&b| b == 8));
        drop(again);
        assert_eq!(mm.trim(), cached);
        assert_eq!(crate::held(), start);
    });
}

/// With a budget the cache is off: a kept allocation would count against
/// the budget and could refuse a request that fits.
#[test]
fn a_budgeted_manager_keeps_no_freed_large_value() {
    let mm = MemoryManager::builder().budget(100_000).build().unwrap();
    drop(mm.alloc([0u8; 60_000]));
    assert_eq!(mm.stats().reserved_bytes(), 0);
    mm.free(mm.alloc_block(60_000).unwrap()).unwrap();
}

/// Collections reach the cache through the `Allocator` too: a vector's
/// buffer above every class, freed, comes back for the next one.
#[cfg(feature = "allocator-api2")]
#[test]
fn collections_reuse_freed_large_buffers() {
    if crate::PASS_THROUGH {
        return;
    }
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let mut v = allocator_api2::vec::Vec::<u32, _>::with_capacity_in(1000, &mm);
        v.extend(0..1000);
        let at = v.as_ptr();
        drop(v);
        let held = crate::held();
        let w = allocator_api2::vec::Vec::<u32, _>::with_capacity_in(1000, &mm);
        assert_eq!(w.as_ptr(), at);
        assert_eq!(crate::held(), held);
        drop(w);
        assert_eq!(mm.stats().live(), 0);
    });
}

/// Checked blocks above every class take the same large path as boxes: a
/// freed one is kept and comes back — zeroed again — for the next block of
/// its size, and boxes' and blocks' figures stay apart.
#[test]
fn large_blocks_share_the_large_path_and_start_zeroed_when_reused() {
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let b = mm.alloc_block(2_000).unwrap();
        mm.write(b, 1_992, u64::MAX).unwrap();
        let at = mm.block_ptr(b).unwrap().cast::<u8>();
        mm.free(b).unwrap();
        let held = crate::held();
        let c = mm.alloc_block(2_000).unwrap();
        if !crate::PASS_THROUGH {
            assert_eq!(mm.block_ptr(c).unwrap().cast::<u8>(), at, "reused");
            assert_eq!(crate::held(), held, "no system call");
        }
        assert_eq!(mm.read::<u64>(c, 1_992), Ok(0), "zeroed again");
        let boxed = mm.alloc([0u8; 3_000]);
        let s = mm.stats().system;
        assert_eq!((s.live_boxes, s.live_blocks), (1, 1));
        assert_eq!((s.peak_boxes, s.peak_blocks), (1, 1));
        assert_eq!((s.allocs, s.frees), (3, 1));
        drop(boxed);
        mm.free(c).unwrap();
        let s = mm.stats().system;
        assert_eq!((s.live_boxes, s.live_blocks, s.bytes), (0, 0, 0));
    });
}

/// A collection above every class grows in place while its buffer stays in
/// the same large size class: no copy, the same address.
#[cfg(feature = "allocator-api2")]
#[test]
fn a_large_buffer_grows_in_place_within_its_class() {
    if crate::PASS_THROUGH {
        return;
    }
    let mm = MemoryManager::new();
    let mut v = allocator_api2::vec::Vec::<u8, _>::with_capacity_in(590, &mm);
    v.extend(std::iter::repeat_n(7, 590));
    let at = v.as_ptr();
    v.reserve_exact(10); // 600 bytes: the same class as 590 and a record
    assert_eq!(v.as_ptr(), at);
    assert!(v.iter().all(|&b| b == 7));
    v.reserve_exact(2_000); // another class: moved
    assert_ne!(v.as_ptr(), at);
    assert!(v.iter().all(|&b| b == 7));
}
