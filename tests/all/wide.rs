//! `WideClasses`: pools from 8 bytes to 64 KiB.

use memory_mgr::{natural_align, MemoryManager, PoolBox, SizeClasses, WideClasses};

use crate::{assert_no_leak, assert_still_works, n, PASS_THROUGH};

#[test]
fn every_wide_class_serves_aligned_blocks() {
    assert_no_leak(|| {
        let mm = MemoryManager::<WideClasses>::with_classes();
        let sizes = WideClasses::TABLE.sizes();
        let step = if cfg!(miri) { 11 } else { 1 };
        for &size in sizes.iter().step_by(step) {
            let b = mm.alloc_block(size).unwrap();
            assert_eq!(b.is_pooled(), !PASS_THROUGH);
            if !PASS_THROUGH {
                assert_eq!(mm.block_size(b).unwrap(), size);
                assert_eq!(
                    mm.block_ptr(b).unwrap().cast::<u8>().as_ptr() as usize % natural_align(size),
                    0
                );
            }
            mm.write(b, size - 8, u64::MAX).unwrap();
            assert_eq!(mm.read::<u64>(b, size - 8), Ok(u64::MAX));
            if size > 8 {
                assert_eq!(mm.read::<u64>(b, 0), Ok(0), "zeroed");
            }
            mm.free(b).unwrap();
        }
        assert_still_works(&mm);
    });
}

/// A page-sized value at page alignment.
#[repr(C, align(4096))]
struct Page([u8; 4096]);

#[test]
fn large_typed_values_stay_in_the_pools() {
    assert_no_leak(|| {
        let mm = MemoryManager::<WideClasses>::with_classes();
        let a = mm.alloc_with(|| [7u8; 5000]);
        let p = mm.alloc_with(|| Page([1; 4096]));
        let v: Vec<PoolBox<'_, [u64; 4000], WideClasses>> = (0..n(20, 3) as u64)
            .map(|i| mm.alloc_with(|| [i; 4000]))
            .collect();
        assert_eq!(PoolBox::as_ptr(&p) as usize % 4096, 0);
        let s = mm.stats();
        if !PASS_THROUGH {
            assert_eq!(s.system.live_boxes, 0, "all pooled");
            let class = |size: usize| WideClasses::TABLE.class_for_size(size).unwrap();
            assert_eq!(s.classes[class(5000)].live_boxes, 1);
            assert_eq!(s.classes[class(32_000)].live_boxes, v.len());
        }
        assert!(a.iter().all(|&x| x == 7));
        assert!(v.iter().enumerate().all(|(i, b)| b[3999] == i as u64));
        drop((a, p, v));
        assert_eq!(mm.stats().live(), 0);
        assert!(mm.is_consistent());
    });
}

#[cfg(feature = "allocator-api2")]
#[test]
fn a_vec_grows_through_the_wide_classes_in_place_where_it_can() {
    use allocator_api2::vec::Vec as AVec;
    assert_no_leak(|| {
        let mm = MemoryManager::<WideClasses>::with_classes();
        let mut v: AVec<u64, &MemoryManager<WideClasses>> = AVec::new_in(&mm);
        // Up to 56 KB (8 KB under Miri): through the wide classes, pooled.
        let top = n(7_000, 1_000) as u64;
        for i in 0..top {
            v.push(i);
        }
        if !PASS_THROUGH {
            assert_eq!(mm.stats().system.live_collections, 0, "still pooled");
        }
        // Element `i` is `i`; compared as one slice (a `memcmp`).
        let all: Vec<u64> = (0..9_000).collect();
        if cfg!(miri) {
            // The same values and the same reserve, copied (`extend` pushed
            // them one at a time, most of this test's time under Miri).
            crate::extend_copy(&mut v, &all[top as usize..]); // 72 KB
        } else {
            v.extend(top..9_000); // 72 KB
        }
        assert_eq!(
            mm.stats().system.live_collections,
            1,
            "past 64 KiB: the system"
        );
        assert!(v[..] == all[..]);
        drop(v);
        assert_eq!(mm.stats().live(), 0);
    });
}
