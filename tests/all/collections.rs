//! `&MemoryManager` as an `allocator_api2` allocator: `Vec` and hashbrown's
//! `HashMap` living in a manager.
#![cfg(feature = "allocator-api2")]

use core::alloc::Layout;

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as AVec;
use memory_mgr::MemoryManager;

use crate::{assert_no_leak, assert_still_works, n, PASS_THROUGH};

#[test]
fn a_vec_grows_through_the_classes_into_the_fallback_and_back() {
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let count = n(10_000, 300);
        let mut v: AVec<u64, &MemoryManager> = AVec::new_in(&mm);
        for i in 0..count as u64 {
            v.push(i * 3);
        }
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
        let s = mm.stats();
        assert_eq!(s.live(), 1, "one buffer");
        assert_eq!(
            s.system.live_collections, 1,
            "{count} u64s are above the largest class"
        );
        v.truncate(10);
        v.shrink_to_fit();
        let s = mm.stats();
        if !PASS_THROUGH {
            assert_eq!(s.system.live_collections, 0);
            assert_eq!(
                s.classes[4].live_collections, 1,
                "80 bytes -> the 128-byte class"
            );
        }
        assert_eq!(&v[..3], &[0, 3, 6]);
        drop(v);
        assert_eq!(mm.stats().live(), 0);
        assert!(mm.is_consistent());
        assert_still_works(&mm);
    });
}

#[test]
fn grow_and_shrink_stay_in_place_within_a_class() {
    let mm = MemoryManager::new();
    let a = &mm;
    let l9 = Layout::from_size_align(9, 1).unwrap();
    let l16 = Layout::from_size_align(16, 1).unwrap();
    let l17 = Layout::from_size_align(17, 1).unwrap();
    let p = a.allocate(l9).unwrap();
    if !PASS_THROUGH {
        assert_eq!(p.len(), 16, "the whole block is usable");
    }
    let base = p.cast::<u8>();
    // SAFETY: 9 bytes of a live allocation.
    unsafe { base.as_ptr().write_bytes(0xAB, 9) };
    // SAFETY: `base` is a live allocation of `l9` from `a`.
    let q = unsafe { a.grow(base, l9, l16) }.unwrap();
    if !PASS_THROUGH {
        assert_eq!(q.cast::<u8>(), base, "same class: in place");
    }
    // SAFETY: `q` is a live allocation of `l16`.
    let r = unsafe { a.grow(q.cast(), l16, l17) }.unwrap();
    if !PASS_THROUGH {
        assert_ne!(r.cast::<u8>(), base, "next class: moved");
    }
    // SAFETY: the first 9 bytes were copied over.
    let bytes = unsafe { core::slice::from_raw_parts(r.cast::<u8>().as_ptr(), 9) };
    assert!(bytes.iter().all(|&b| b == 0xAB));
    // SAFETY: `r` is a live allocation of `l17`.
    let s = unsafe { a.shrink(r.cast(), l17, l9) }.unwrap();
    // SAFETY: as above, then freed once.
    unsafe {
        assert_eq!(*s.cast::<u8>().as_ptr(), 0xAB);
        a.deallocate(s.cast(), l9);
    }
    // Zero-sized and over-aligned requests.
    let z = a.allocate(Layout::from_size_align(0, 64).unwrap()).unwrap();
    assert_eq!(z.cast::<u8>().as_ptr() as usize % 64, 0);
    // SAFETY: a zero-sized allocation of this layout.
    unsafe { a.deallocate(z.cast(), Layout::from_size_align(0, 64).unwrap()) };
    let big = Layout::from_size_align(100, 4096).unwrap();
    let b = a.allocate(big).unwrap();
    assert_eq!(b.cast::<u8>().as_ptr() as usize % 4096, 0);
    // SAFETY: a live allocation of `big`.
    unsafe { a.deallocate(b.cast(), big) };
    assert_eq!(mm.stats().live(), 0);
}

#[test]
fn a_hash_map_lives_in_the_manager() {
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let count = n(10_000, 200) as u32;
        let mut map = hashbrown::HashMap::new_in(&mm);
        for i in 0..count {
            map.insert(i, i.to_string());
        }
        assert_eq!(map.len(), count as usize);
        assert!((0..count).all(|i| map[&i] == i.to_string()));
        for i in (0..count).step_by(2) {
            map.remove(&i);
        }
        map.shrink_to_fit();
        assert_eq!(map.get(&1).map(String::as_str), Some("1"));
        assert_eq!(
            mm.stats().live(),
            1,
            "the table; the strings are on the global heap"
        );
        drop(map);
        assert_eq!(mm.stats().live(), 0);
        assert_still_works(&mm);
    });
}

#[test]
fn a_budget_makes_collections_fail_cleanly() {
    let mm = MemoryManager::builder().budget(64 * 1024).build().unwrap();
    let mut v: AVec<u8, &MemoryManager> = AVec::new_in(&mm);
    assert!(v.try_reserve(1 << 20).is_err());
    v.try_reserve(1000).unwrap();
    v.extend_from_slice(&[1; 1000]);
    assert_eq!(v.iter().map(|&x| x as usize).sum::<usize>(), 1000);
    drop(v);
    assert_eq!(mm.stats().live(), 0);
}

#[test]
fn a_forgotten_collection_is_reported_as_a_leak() {
    let mm = MemoryManager::builder().on_leak(|_| {}).build().unwrap();
    let mut small: AVec<u64, &MemoryManager> = AVec::new_in(&mm);
    small.push(1);
    let mut big: AVec<u8, &MemoryManager> = AVec::with_capacity_in(5000, &mm);
    big.push(1);
    std::mem::forget(small);
    std::mem::forget(big);
    let leaks = mm.leaks();
    assert_eq!(leaks.total(), 2, "{leaks}");
    let pooled: usize = leaks.classes.iter().map(|c| c.collections).sum();
    if !PASS_THROUGH {
        assert_eq!((pooled, leaks.system_collections), (1, 1));
    }
    assert!(leaks.to_string().contains("colls"));
}

/// A block freed through the `Allocator` with a layout of another class
/// (a broken `deallocate` contract) is refused with a panic before any
/// pool is touched — whether or not the wrong pool remembers a chunk of
/// its own — and the manager carries on: the block is still live, freed
/// with its own layout, and a trim then leaves nothing reserved.
#[test]
fn a_free_with_another_class_layout_panics_and_the_manager_carries_on() {
    if PASS_THROUGH {
        return; // the system allocator, not the manager, sees the free
    }
    let mm = MemoryManager::new();
    let (small, big) = (Layout::new::<[u64; 4]>(), Layout::new::<[u64; 8]>());
    let block = (&mm).allocate(small).unwrap().cast::<u8>();
    // First with the wrong pool remembering nothing, then with it
    // remembering a chunk of its own.
    for warm in [false, true] {
        if warm {
            let other = (&mm).allocate(big).unwrap().cast::<u8>();
            // SAFETY: `other` is a live allocation of `big`.
            unsafe { (&mm).deallocate(other, big) };
        }
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: (test) the wrong layout; the allocator panics before
            // it touches the block or a pool.
            unsafe { (&mm).deallocate(block, big) }
        }))
        .expect_err("a free with another class's layout");
        let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(msg.contains("did not hand out"), "{msg}");
        assert_eq!(mm.stats().live(), 1);
        assert!(mm.is_consistent());
    }
    // SAFETY: the block's own layout.
    unsafe { (&mm).deallocate(block, small) };
    assert_eq!(mm.stats().live(), 0);
    assert_still_works(&mm);
    mm.trim();
    assert_eq!(mm.stats().reserved_bytes(), 0);
}
