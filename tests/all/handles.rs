//! Typed `Handle`s: a value store checked like `Block`s, whose values the
//! manager owns and drops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use memory_mgr::{Error, Handle, MemoryManager};

use crate::{assert_no_leak, live_by_kind, n, PASS_THROUGH};

/// Counts its drops in a shared counter.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>, #[allow(dead_code)] u64);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[test]
fn insert_get_get_mut_remove_round_trip() {
    assert_no_leak(|| {
        let mut mm = MemoryManager::new();
        let a = mm.insert(String::from("a"));
        let b = mm.insert(vec![1u32, 2, 3]);
        let c = mm.insert(5u8);
        assert_eq!(mm.get(a).unwrap(), "a");
        mm.get_mut(a).unwrap().push('!');
        mm.get_mut(b).unwrap().push(4);
        *mm.get_mut(c).unwrap() += 1;
        assert!(mm.contains(a) && mm.contains(b) && mm.contains(c));
        assert_eq!(mm.remove(a).unwrap(), "a!");
        assert_eq!(mm.remove(b).unwrap(), [1, 2, 3, 4]);
        assert_eq!(mm.remove(c).unwrap(), 6);
        assert!(!mm.contains(a));
        assert_eq!(mm.stats().live(), 0);
        assert!(mm.is_consistent());
    });
}

#[test]
fn a_removed_handle_is_an_error_also_after_its_slot_is_reused() {
    let mut mm = MemoryManager::new();
    let old = mm.insert(1u64);
    assert_eq!(mm.remove(old), Ok(1));
    let new = mm.insert(2u64); // the slot just freed is reused
    assert_ne!(old, new);
    assert_eq!(mm.get(old), Err(Error::Removed));
    assert_eq!(mm.get_mut(old), Err(Error::Removed));
    assert_eq!(mm.remove(old), Err(Error::Removed));
    assert!(!mm.contains(old));
    assert_eq!(mm.get(new), Ok(&2), "the newer value is untouched");
    // Many reuses of the same slot: every older handle stays stale.
    let mut stale = vec![old];
    let mut live = new;
    for i in 0..n(1000, 60) {
        stale.push(live);
        mm.remove(live).unwrap();
        live = mm.insert(i as u64);
    }
    assert!(stale.iter().all(|&h| mm.get(h) == Err(Error::Removed)));
    assert_eq!(mm.get(live), Ok(&(n(1000, 60) as u64 - 1)));
}

#[test]
fn handles_of_other_managers_and_from_before_a_reset_are_told_apart() {
    let (mut a, b) = (MemoryManager::new(), MemoryManager::new());
    let h = a.insert(3u32);
    assert_eq!(b.get(h), Err(Error::ForeignBlock));
    assert!(!b.contains(h));
    a.reset();
    assert_eq!(a.get(h), Err(Error::FreedByReset));
    assert_eq!(a.remove(h), Err(Error::FreedByReset));
    let again = a.insert(4u32); // the same memory, a new id
    assert_eq!(a.get(h), Err(Error::FreedByReset));
    assert_eq!(a.get(again), Ok(&4));
    drop(a);
    assert_eq!(b.get(again), Err(Error::ForeignBlock));
}

#[test]
fn reset_and_drop_run_the_destructors_of_live_values() {
    assert_no_leak(|| {
        let drops = counter();
        let mut mm = MemoryManager::new();
        let mut kept = Vec::new();
        for i in 0..n(500, 50) {
            kept.push(mm.insert(Counted(drops.clone(), i as u64)));
        }
        // Large ones too, from the system allocator.
        for _ in 0..3 {
            mm.insert(
                [Counted(drops.clone(), 0), Counted(drops.clone(), 1)].map(|c| (c, [0u8; 600])),
            );
        }
        let removed = mm.remove(kept[0]).unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        drop(removed);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        mm.reset();
        assert_eq!(drops.load(Ordering::Relaxed), n(500, 50) + 6);
        assert_eq!(mm.stats().live(), 0);
        assert!(mm.is_consistent());
        // And on drop of the manager, with no leak report: the manager
        // owned the values.
        for i in 0..n(100, 20) {
            mm.insert(Counted(drops.clone(), i as u64));
        }
        mm.insert((Counted(drops.clone(), 0), [0u64; 100]));
        assert!(mm.leaks().is_empty(), "handle values are owned, not leaked");
        drop(mm);
        assert_eq!(drops.load(Ordering::Relaxed), n(500, 50) + n(100, 20) + 7);
    });
}

#[test]
fn values_without_destructors_are_forgotten_by_a_reset_in_o_chunks() {
    let mut mm = MemoryManager::new();
    let hs: Vec<_> = (0..n(2000, 100)).map(|i| mm.insert([i; 4])).collect();
    assert_eq!(live_by_kind(&mm.stats()).2, n(2000, 100));
    // In the store of `[usize; 4]`, not in a class's pool.
    assert_eq!(mm.len::<[usize; 4]>(), n(2000, 100));
    assert_eq!(
        mm.stats().classes.iter().map(|c| c.live()).sum::<usize>(),
        0
    );
    mm.reset();
    assert!(hs.iter().all(|&h| mm.get(h) == Err(Error::FreedByReset)));
    assert_eq!(mm.stats().live(), 0);
}

#[test]
fn a_panicking_destructor_during_reset_leaves_the_manager_usable() {
    struct Bomb(Arc<AtomicUsize>);
    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.0.fetch_add(1, Ordering::Relaxed) == 2 {
                panic!("bomb");
            }
        }
    }
    // (Not under `assert_no_leak`: the panic's backtrace machinery keeps
    // memory of its own.)
    let drops = counter();
    let mut mm = MemoryManager::new();
    let hs: Vec<_> = (0..10).map(|_| mm.insert(Bomb(drops.clone()))).collect();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mm.reset()));
    assert!(r.is_err());
    assert_eq!(drops.load(Ordering::Relaxed), 3);
    assert!(mm.is_consistent());
    let live = hs.iter().filter(|&&h| mm.contains(h)).count();
    assert_eq!(live, 7, "the values not reached are still there");
    assert_eq!(mm.stats().live(), 7);
    mm.reset();
    assert_eq!(drops.load(Ordering::Relaxed), 10);
    assert!(hs.iter().all(|&h| !mm.contains(h)));
}

#[test]
fn get_disjoint_mut_borrows_distinct_values_and_refuses_duplicates() {
    let mut mm = MemoryManager::new();
    let hs: Vec<_> = (0..4).map(|i| mm.insert(i * 10)).collect();
    {
        let [a, b, c] = mm.get_disjoint_mut([hs[0], hs[2], hs[3]]).unwrap();
        *a += 1;
        *b += 2;
        *c += 3;
    }
    assert_eq!(*mm.get(hs[2]).unwrap(), 22);
    assert_eq!(
        mm.get_disjoint_mut([hs[0], hs[1], hs[0]]).err(),
        Some(Error::DuplicateHandle)
    );
    mm.remove(hs[1]).unwrap();
    assert_eq!(
        mm.get_disjoint_mut([hs[0], hs[1]]).err(),
        Some(Error::Removed)
    );
    let none: [&mut i32; 0] = mm.get_disjoint_mut([]).unwrap();
    assert!(none.is_empty());
}

#[test]
fn handles_are_counted_apart_in_the_stats_and_charged_to_the_budget() {
    let mut mm = MemoryManager::builder().budget(256 << 10).build().unwrap();
    let b = mm.alloc_block(24).unwrap();
    let h = mm.insert([0u64; 3]); // 24 bytes: the 32-byte class, as the block
    let s = mm.stats();
    assert_eq!(live_by_kind(&s), (0, 1, 1, 0));
    if !PASS_THROUGH {
        // The block in the class's pool, the value in its store.
        let row = s.classes[2];
        assert_eq!((row.live_blocks, row.live()), (1, 1));
    }
    assert_eq!((s.handles.live, s.handles.stores), (1, 1));
    let big = mm.insert([0u8; 3000]);
    assert_eq!(live_by_kind(&mm.stats()), (0, 1, 2, 0));
    let s = mm.stats();
    assert_eq!(
        (s.handles.live, s.system.live_boxes),
        (2, 0),
        "a large value is in its store too"
    );
    // The budget covers handle values: insert until refused.
    let mut hs = Vec::new();
    let err = loop {
        match mm.try_insert([0u64; 64]) {
            Ok(h) => hs.push(h),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::BudgetExceeded { .. }), "{err:?}");
    assert!(mm.stats().reserved_bytes() <= 256 << 10);
    for h in hs {
        mm.remove(h).unwrap();
    }
    mm.remove(big).unwrap();
    mm.remove(h).unwrap();
    mm.free(b).unwrap();
    assert_eq!(mm.stats().live(), 0);
    assert!(mm.trim() > 0);
}

#[test]
fn trim_keeps_live_values_and_a_handle_into_a_released_chunk_stays_stale() {
    let mut mm = MemoryManager::new();
    let keep = mm.insert(String::from("keep"));
    let gone: Vec<_> = (0..n(5000, 300)).map(|i| mm.insert(i as u64)).collect();
    for &h in &gone {
        mm.remove(h).unwrap();
    }
    // (Pass-through: the system table stays while `keep` is in it.)
    assert!(mm.trim() > 0 || PASS_THROUGH);
    assert_eq!(mm.get(keep).unwrap(), "keep");
    assert!(gone.iter().all(|&h| mm.get(h) == Err(Error::Removed)));
    let fresh: Vec<_> = (0..n(5000, 300)).map(|i| mm.insert(i as u64)).collect();
    assert!(gone.iter().all(|&h| !mm.contains(h)));
    assert!(fresh.iter().all(|&h| mm.contains(h)));
}

#[test]
fn zero_sized_and_over_aligned_values() {
    #[derive(Debug, PartialEq)]
    #[repr(align(64))]
    struct Line([u8; 64]);
    #[derive(Debug, PartialEq)]
    #[repr(align(4096))]
    struct Page(u8);
    assert_no_leak(|| {
        let mut mm = MemoryManager::new();
        let units: Vec<Handle<()>> = (0..3).map(|_| mm.insert(())).collect();
        assert_ne!(units[0], units[1]);
        let l = mm.insert(Line([7; 64]));
        let p = mm.insert(Page(9));
        assert_eq!(std::ptr::from_ref(mm.get(l).unwrap()) as usize % 64, 0);
        assert_eq!(std::ptr::from_ref(mm.get(p).unwrap()) as usize % 4096, 0);
        assert_eq!(mm.remove(p), Ok(Page(9)));
        assert_eq!(mm.remove(l), Ok(Line([7; 64])));
        assert_eq!(mm.remove(units[1]), Ok(()));
        assert_eq!(mm.remove(units[1]), Err(Error::Removed));
        assert!(mm.contains(units[0]));
    });
}

#[test]
fn a_world_owns_its_manager_and_its_handles() {
    // The shape the issue asked for: no lifetime, handles in a map.
    struct World {
        mm: MemoryManager,
        by_id: HashMap<u32, Handle<[f32; 4]>>,
    }
    fn load() -> World {
        let mm = MemoryManager::new();
        let by_id = (0..100).map(|i| (i, mm.insert([i as f32; 4]))).collect();
        World { mm, by_id }
    }
    let mut w = load(); // returned by value: nothing borrowed
    let h = w.by_id[&7];
    w.mm.get_mut(h).unwrap()[0] = -1.0;
    assert_eq!(w.mm.get(h).unwrap(), &[-1.0, 7.0, 7.0, 7.0]);
    let moved = std::thread::spawn(move || w.mm.get(h).copied())
        .join()
        .unwrap();
    assert_eq!(moved, Ok([-1.0, 7.0, 7.0, 7.0]));
}

#[cfg(feature = "allocator-api2")]
#[test]
fn boxes_blocks_handles_and_collections_are_counted_apart() {
    let mm = MemoryManager::new();
    // All in the 32-byte class.
    let _boxed = mm.alloc([0u64; 4]);
    let _block = mm.alloc_block(32).unwrap();
    let _handle = mm.insert([0u64; 4]);
    let mut v = allocator_api2::vec::Vec::<u64, _>::with_capacity_in(4, &mm);
    v.extend([1, 2]);
    assert_eq!(live_by_kind(&mm.stats()), (1, 1, 1, 1));
    if !PASS_THROUGH {
        let row = mm.stats().classes[2];
        let kinds = (row.live_boxes, row.live_blocks, row.live_collections);
        assert_eq!(kinds, (1, 1, 1));
        assert_eq!(mm.stats().handles.live, 1);
    }
    drop(v);
    assert_eq!(live_by_kind(&mm.stats()), (1, 1, 1, 0));
    let big: memory_mgr::PoolBox<'_, [u8; 5000]> = mm.alloc([0; 5000]);
    let mut w = allocator_api2::vec::Vec::<u8, _>::with_capacity_in(5000, &mm);
    w.push(1);
    assert_eq!(live_by_kind(&mm.stats()), (2, 1, 1, 1));
    let sys = mm.stats().system;
    assert!(PASS_THROUGH || (sys.live_boxes, sys.live_collections) == (1, 1));
    drop((big, w));
}

#[test]
fn a_panicking_destructor_while_the_manager_drops_does_not_skip_the_rest() {
    struct Bomb(Arc<AtomicUsize>, bool);
    impl Drop for Bomb {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
            if self.1 {
                panic!("bomb");
            }
        }
    }
    let drops = counter();
    let mm = MemoryManager::new();
    for i in 0..10 {
        mm.insert(Bomb(drops.clone(), i == 3));
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(mm)));
    assert!(r.is_err());
    assert_eq!(
        drops.load(Ordering::Relaxed),
        10,
        "every value dropped, as Vec does"
    );
}

#[test]
fn trim_gives_an_empty_handle_table_back_and_its_handles_stay_stale() {
    let mut mm = MemoryManager::new();
    let old: Vec<Handle<String>> = (0..100).map(|i| mm.insert(i.to_string())).collect();
    for &h in &old {
        mm.remove(h).unwrap();
    }
    let with_pages = mm.stats().handles.reserved_bytes;
    assert!(mm.trim() > 0);
    assert!(
        mm.stats().handles.reserved_bytes < with_pages,
        "the store's pages went back"
    );
    // New values take the same indices again, at newer generations: no old
    // handle matches one, whatever its type.
    let new: Vec<Handle<[usize; 3]>> = (0..100).map(|i| mm.insert([i; 3])).collect();
    assert!(old.iter().all(|&h| mm.get(h) == Err(Error::Removed)));
    assert!(new
        .iter()
        .enumerate()
        .all(|(i, &h)| mm.get(h) == Ok(&[i; 3])));
    // With a value live the table stays.
    let reserved = mm.stats().reserved_bytes();
    mm.trim();
    assert!(mm.stats().reserved_bytes() <= reserved);
    assert!(new.iter().all(|&h| mm.contains(h)));
}

#[test]
fn reset_keeps_the_handle_table_for_the_next_level() {
    let mut mm = MemoryManager::new();
    let level = |mm: &MemoryManager| -> Vec<Handle<String>> {
        (0..n(1000, 50)).map(|i| mm.insert(i.to_string())).collect()
    };
    let first = level(&mm);
    let stats = mm.stats();
    let (reserved, table) = (stats.reserved_bytes(), stats.system.metadata_bytes);
    mm.reset();
    assert_eq!(mm.stats().system.metadata_bytes, table, "the table kept");
    // (Pass-through: the values went back to the system.)
    assert!(
        PASS_THROUGH || mm.stats().reserved_bytes() == reserved,
        "pools kept"
    );
    let second = level(&mm);
    assert_eq!(mm.stats().system.metadata_bytes, table, "no new table");
    assert!(
        PASS_THROUGH || mm.stats().reserved_bytes() == reserved,
        "no new memory"
    );
    assert!(first.iter().all(|&h| mm.get(h) == Err(Error::FreedByReset)));
    assert!(second.iter().all(|&h| mm.contains(h)));
}
