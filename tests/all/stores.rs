//! Typed stores behind handles: iteration, `len`, `retain`, `drain`,
//! `get_pair_mut`, the typed views, handles as bits, `Ord`, stable
//! addresses across inserts, and what a store costs in memory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use memory_mgr::{Error, Handle, MemoryManager};

use crate::n;

#[derive(Debug, PartialEq)]
struct Enemy {
    hp: i32,
}

#[derive(Debug, PartialEq)]
struct Transform {
    pos: [f32; 2],
}

#[test]
fn iteration_gives_every_live_value_once_with_its_handle() {
    let mut mm = MemoryManager::new();
    let count = n(1000, 60);
    let hs: Vec<_> = (0..count)
        .map(|i| mm.insert(Enemy { hp: i as i32 }))
        .collect();
    // Holes: every third removed.
    for h in hs.iter().step_by(3) {
        mm.remove(*h).unwrap();
    }
    mm.insert(Transform { pos: [0.0; 2] }); // another type: another store
    let seen: Vec<(Handle<Enemy>, i32)> = mm.iter::<Enemy>().map(|(h, e)| (h, e.hp)).collect();
    let want: Vec<_> = (0..count)
        .filter(|i| i % 3 != 0)
        .map(|i| (hs[i], i as i32))
        .collect();
    assert_eq!(seen, want, "slot order, live ones only, their own handles");
    assert_eq!(mm.len::<Enemy>(), want.len());
    assert_eq!(mm.len::<Transform>(), 1);
    assert!(mm.is_empty::<u8>());
    for (h, e) in mm.iter_mut::<Enemy>() {
        e.hp = -e.hp;
        let _: Handle<Enemy> = h;
    }
    mm.values_mut::<Enemy>().for_each(|e| e.hp -= 1);
    for (h, hp) in want {
        assert_eq!(mm.get(h).map(|e| e.hp), Ok(-hp - 1));
    }
    assert_eq!(mm.values::<Enemy>().count(), mm.len::<Enemy>());
    assert!(
        mm.iter::<u64>().next().is_none(),
        "no store, nothing to iterate"
    );
    assert!(mm.is_consistent());
}

#[test]
fn a_reference_from_get_survives_inserts_that_add_pages() {
    let mm = MemoryManager::new();
    let first = mm.insert(String::from("first"));
    let r: &String = mm.get(first).unwrap();
    // Many more pages: a store's pages never move.
    let more: Vec<_> = (0..n(5000, 300))
        .map(|i| mm.insert(i.to_string()))
        .collect();
    assert_eq!(r, "first");
    assert_eq!(
        mm.get(more[more.len() - 1]).unwrap(),
        &(more.len() - 1).to_string()
    );
    // And an iterator goes on over what an insert adds meanwhile.
    let mut it = mm.iter::<String>();
    assert_eq!(it.next().map(|(_, s)| s.as_str()), Some("first"));
    let late = mm.insert(String::from("late"));
    assert_eq!(it.last().map(|(h, _)| h), Some(late));
}

#[test]
fn retain_drops_what_it_removes_and_their_handles_go_stale() {
    let drops = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>, u32);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let mut mm = MemoryManager::new();
    let hs: Vec<_> = (0..100)
        .map(|i| mm.insert(Counted(drops.clone(), i)))
        .collect();
    let mut asked = 0;
    mm.retain::<Counted>(|h, c| {
        asked += 1;
        assert_eq!(mm_free_handle_check(h), h);
        c.1 % 10 == 0
    });
    assert_eq!(asked, 100);
    assert_eq!(drops.load(Ordering::Relaxed), 90);
    assert_eq!(mm.len::<Counted>(), 10);
    for (i, &h) in hs.iter().enumerate() {
        assert_eq!(mm.get(h).is_ok(), i % 10 == 0);
        if i % 10 != 0 {
            assert_eq!(mm.get(h).err(), Some(Error::Removed));
        }
    }
    // A panic in `keep` leaves the store sound: what was not reached stays.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        mm.retain::<Counted>(|_, c| {
            assert!(c.1 < 50, "boom");
            false
        })
    }));
    assert!(r.is_err());
    assert_eq!(mm.len::<Counted>(), 5, "values 50..100 step 10 stay");
    assert!(mm.is_consistent());
    drop(mm);
    assert_eq!(drops.load(Ordering::Relaxed), 100);
}

/// (A handle is plain data: it can be compared, kept, copied.)
fn mm_free_handle_check<T>(h: Handle<T>) -> Handle<T> {
    h
}

#[test]
fn drain_takes_everything_and_dropping_it_early_drops_the_rest() {
    let mut mm = MemoryManager::new();
    let hs: Vec<_> = (0..20).map(|i| mm.insert(i.to_string())).collect();
    let firsts: Vec<(Handle<String>, String)> = mm.drain::<String>().take(5).collect();
    assert_eq!(firsts.len(), 5);
    assert_eq!(firsts[0], (hs[0], "0".to_string()));
    assert_eq!(mm.len::<String>(), 0, "the drain's drop took the rest");
    assert!(hs.iter().all(|&h| mm.get(h) == Err(Error::Removed)));
    // The slots are reused afterwards, with new generations.
    let again = mm.insert(String::from("again"));
    assert!(hs.iter().all(|&h| h != again));
    assert_eq!(mm.get(again).map(String::as_str), Ok("again"));
    assert!(mm.is_consistent());
}

#[test]
fn two_components_at_once_of_any_types() {
    let mut mm = MemoryManager::new();
    let e = mm.insert(Enemy { hp: 3 });
    let t = mm.insert(Transform { pos: [1.0, 2.0] });
    let other = mm.insert(Enemy { hp: 9 });
    {
        let (enemy, transform) = mm.get_pair_mut(e, t).unwrap();
        enemy.hp += 1;
        transform.pos[0] = enemy.hp as f32;
    }
    assert_eq!(mm.get(t).unwrap().pos, [4.0, 2.0]);
    let (a, b) = mm.get_pair_mut(e, other).unwrap();
    std::mem::swap(a, b);
    assert_eq!((mm.get(e).unwrap().hp, mm.get(other).unwrap().hp), (9, 4));
    assert_eq!(mm.get_pair_mut(e, e).err(), Some(Error::DuplicateHandle));
    mm.remove(t).unwrap();
    assert_eq!(mm.get_pair_mut(e, t).err(), Some(Error::Removed));
    let foreign = MemoryManager::new().insert(Transform { pos: [0.0; 2] });
    assert_eq!(mm.get_pair_mut(e, foreign).err(), Some(Error::ForeignBlock));
    // Zero-sized values at once: they overlap nothing.
    let (z1, z2) = (mm.insert(()), mm.insert(()));
    assert!(mm.get_pair_mut(z1, z2).is_ok());
}

#[test]
fn the_typed_views_check_as_the_manager_does() {
    let mut mm = MemoryManager::new();
    let hs: Vec<_> = (0..50u32).map(|i| mm.insert(i)).collect();
    let other_type = mm.insert(1u64);
    let foreign = MemoryManager::new().insert(5u32);
    {
        let store = mm.store::<u32>();
        assert_eq!(store.len(), 50);
        assert_eq!(store.get(hs[7]), Ok(&7));
        assert_eq!(store.get(foreign), Err(Error::ForeignBlock));
        assert_eq!(
            store.iter().map(|(_, v)| *v).sum::<u32>(),
            (0..50).sum::<u32>()
        );
    }
    {
        let mut store = mm.store_mut::<u32>();
        *store.get_mut(hs[7]).unwrap() = 70;
        assert_eq!(store.remove(hs[8]), Ok(8));
        assert_eq!(store.remove(hs[8]), Err(Error::Removed));
        assert_eq!(store.len(), 49);
        store.iter_mut().for_each(|(_, v)| *v += 1);
    }
    assert_eq!(mm.get(hs[7]), Ok(&71));
    assert_eq!(mm.get(other_type), Ok(&1));
    let empty = mm.store::<i8>();
    assert!(empty.is_empty() && empty.iter().next().is_none());
}

#[test]
fn handles_go_to_bits_and_back_checked() {
    let mut mm = MemoryManager::new();
    let h = mm.insert(Enemy { hp: 1 });
    let bits = h.to_bits();
    assert_eq!(mm.handle_from_bits::<Enemy>(bits), Ok(h));
    assert_eq!(
        mm.handle_from_bits::<Transform>(bits).err(),
        Some(Error::NotAHandle),
        "another type's store"
    );
    assert_eq!(
        mm.handle_from_bits::<Enemy>(bits ^ 2).err(),
        Some(Error::NotAHandle),
        "a slot past the store"
    );
    assert_eq!(
        MemoryManager::new().handle_from_bits::<Enemy>(bits).err(),
        Some(Error::ForeignBlock)
    );
    mm.remove(h).unwrap();
    assert_eq!(
        mm.handle_from_bits::<Enemy>(bits).err(),
        Some(Error::NotAHandle)
    );
    let h2 = mm.insert(Enemy { hp: 2 });
    mm.reset();
    assert_eq!(
        mm.handle_from_bits::<Enemy>(h2.to_bits()).err(),
        Some(Error::FreedByReset)
    );
    // Made-up bits never reach memory.
    for x in 0..n(2000, 100) as u128 {
        let bits = x.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
        assert!(mm.handle_from_bits::<Enemy>(bits).is_err());
    }
}

#[test]
fn handles_order_by_slot_and_key_a_btree_map() {
    let mm = MemoryManager::new();
    let hs: Vec<_> = (0..10).map(|i| mm.insert(i)).collect();
    let mut sorted = hs.clone();
    sorted.reverse();
    sorted.sort();
    assert_eq!(sorted, hs);
    let names: BTreeMap<Handle<i32>, &str> = hs.iter().map(|&h| (h, "x")).collect();
    assert_eq!(names.len(), 10);
}

#[test]
fn stores_are_charged_counted_trimmed_and_kept_by_a_reset() {
    let mut mm = MemoryManager::builder().budget(1 << 20).build().unwrap();
    let hs: Vec<_> = (0..n(1000, 100))
        .map(|i| mm.insert([i as u64; 2]))
        .collect();
    let s = mm.stats();
    assert_eq!((s.handles.live, s.handles.stores), (hs.len(), 1));
    assert!(s.handles.capacity >= hs.len());
    assert!(s.handles.reserved_bytes >= hs.len() * 24);
    assert!(format!("{s}").contains("stores"), "{s}");
    mm.reset();
    let kept = mm.stats();
    assert_eq!(kept.handles.live, 0);
    assert_eq!(
        kept.handles.reserved_bytes, s.handles.reserved_bytes,
        "pages kept"
    );
    // Refilled without a new page.
    let again: Vec<_> = (0..hs.len()).map(|i| mm.insert([i as u64; 2])).collect();
    assert_eq!(mm.stats().handles.reserved_bytes, s.handles.reserved_bytes);
    for h in again {
        mm.remove(h).unwrap();
    }
    let released = mm.trim();
    assert!(released >= s.handles.capacity * 24, "{released}");
    assert!(hs.iter().all(|&h| mm.get(h) == Err(Error::FreedByReset)));
    // The budget refuses a page it cannot hold.
    let mut small = MemoryManager::builder().budget(4096).build().unwrap();
    let mut kept = Vec::new();
    let err = loop {
        match small.try_insert([0u8; 64]) {
            Ok(h) => kept.push(h),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, Error::BudgetExceeded { size: 72, .. }),
        "{err:?}"
    );
    assert_eq!(small.len::<[u8; 64]>(), kept.len());
    small.remove(kept[0]).unwrap();
    assert!(
        small.try_insert([1u8; 64]).is_ok(),
        "a vacant slot needs no page"
    );
}

#[test]
fn over_aligned_and_zero_sized_values_keep_their_alignment() {
    #[repr(align(64))]
    struct Line([u8; 64]);
    let mm = MemoryManager::new();
    let hs: Vec<_> = (0..40).map(|i| mm.insert(Line([i; 64]))).collect();
    for (i, &h) in hs.iter().enumerate() {
        let v = mm.get(h).unwrap();
        assert_eq!((v as *const Line).addr() % 64, 0);
        assert_eq!(v.0[63], i as u8);
    }
    let z: Vec<_> = (0..40).map(|_| mm.insert(())).collect();
    assert!(z.iter().all(|&h| mm.get(h) == Ok(&())));
    assert_eq!(mm.len::<()>(), 40);
}

/// A million live 8-byte values cost no more than slotmap's 16 bytes a
/// value (plus its growth's slack, the same doubling).
#[test]
#[cfg_attr(miri, ignore)]
fn a_million_small_values_take_sixteen_bytes_and_a_bit_each() {
    let mm = MemoryManager::new();
    let count = 1_000_000;
    let hs: Vec<_> = (0..count).map(|i| mm.insert(i as u64)).collect();
    let bytes = mm.stats().handles.reserved_bytes;
    let per = bytes as f64 / count as f64;
    // 16-byte slots on pages of 16 << p: 1,048,560 slots for a million.
    assert!(
        per <= 16.0 * 1_048_576.0 / 1e6 + 0.01,
        "{per:.2} bytes a value"
    );
    assert_eq!(mm.get(hs[count - 1]), Ok(&(count as u64 - 1)));
}

/// A shared manager's stores: inserts from many threads at once, reads
/// from many threads at once with no lock while others insert, and the
/// structural changes with `&mut`.
#[cfg(feature = "std")]
#[test]
fn a_shared_manager_stores_values_every_thread_reads() {
    use memory_mgr::SharedManager;
    let mut mm = SharedManager::new();
    let per = n(500, 20);
    let first: Vec<Handle<String>> = (0..per).map(|i| mm.insert(i.to_string())).collect();
    let made: Vec<Vec<Handle<String>>> = std::thread::scope(|s| {
        let mm = &mm;
        let first = &first;
        // Readers check the first values while writers insert more.
        let readers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(move || {
                    for _ in 0..n(5, 2) {
                        for (i, &h) in first.iter().enumerate() {
                            assert_eq!(mm.get(h).map(String::as_str), Ok(i.to_string().as_str()));
                        }
                        assert!(mm.iter::<String>().count() >= per);
                    }
                })
            })
            .collect();
        let writers: Vec<_> = (0..2)
            .map(|w| {
                s.spawn(move || {
                    (0..per)
                        .map(|i| mm.insert(format!("{w}:{i}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        readers.into_iter().for_each(|r| r.join().unwrap());
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(mm.len::<String>(), 3 * per);
    for (w, hs) in made.iter().enumerate() {
        for (i, &h) in hs.iter().enumerate() {
            assert_eq!(
                mm.get(h).map(String::as_str),
                Ok(format!("{w}:{i}").as_str())
            );
        }
    }
    // Exclusive access: despawn, take, two at once.
    mm.retain::<String>(|_, s| !s.starts_with("0:"));
    assert_eq!(mm.len::<String>(), 2 * per);
    assert_eq!(mm.get(made[0][0]).err(), Some(Error::Removed));
    let n_ = mm.insert(1u32);
    let (a, b) = mm.get_pair_mut(first[0], n_).unwrap();
    a.push('!');
    *b += 1;
    assert_eq!(mm.remove(first[0]).as_deref(), Ok("0!"));
    assert_eq!(mm.drain::<u32>().map(|(_, v)| v).collect::<Vec<_>>(), [2]);
    // Another manager's handle, or one from before a reset.
    let other = SharedManager::new();
    assert_eq!(other.get(first[1]).err(), Some(Error::ForeignBlock));
    mm.reset();
    assert_eq!(mm.get(first[1]).err(), Some(Error::FreedByReset));
    assert_eq!(mm.stats().handles.live, 0);
}

/// A `World` that owns a shared manager and its handles is an engine
/// resource: `Send + Sync`.
#[cfg(feature = "std")]
#[test]
fn a_world_owning_a_shared_manager_is_send_and_sync() {
    struct World {
        mm: memory_mgr::SharedManager,
        enemies: Vec<Handle<Enemy>>,
    }
    fn resource<R: Send + Sync + 'static>(r: R) -> R {
        r
    }
    let w = resource(World {
        mm: memory_mgr::SharedManager::new(),
        enemies: Vec::new(),
    });
    let mut w = w;
    let h = w.mm.insert(Enemy { hp: 5 });
    w.enemies.push(h);
    let w = std::sync::Arc::new(w);
    let hp = std::thread::scope(|s| {
        s.spawn(|| w.mm.get(w.enemies[0]).map(|e| e.hp))
            .join()
            .unwrap()
    });
    assert_eq!(hp, Ok(5));
    // A shared manager's trim leaves its stores' pages (other threads may
    // be reading them).
    let before = w.mm.stats().handles.reserved_bytes;
    w.mm.trim();
    assert_eq!(w.mm.stats().handles.reserved_bytes, before);
}

/// The third review's findings in the typed stores, each failing before
/// its fix.
mod review {
    use super::*;

    /// A handle can be made from bits with the even generation of a vacant
    /// slot: it names nothing. (Before: `get` read the moved-out value and
    /// `remove` dropped it twice — undefined behaviour from safe code.)
    #[test]
    fn a_handle_with_a_vacant_slots_generation_names_nothing() {
        let mut mm = MemoryManager::new();
        let h = mm.insert(String::from("x"));
        drop(mm.remove(h).unwrap());
        let even = h.to_bits() + (1 << 32); // the slot's vacant generation
        assert_eq!(
            mm.handle_from_bits::<String>(even).err(),
            Some(Error::NotAHandle)
        );
        let retired_like = (h.to_bits() & !(0xFF_FFFF << 32)) | ((0xFF_FFFE_u128) << 32);
        assert!(mm.handle_from_bits::<String>(retired_like).is_err());
        assert!(mm.is_consistent());
        assert_eq!(mm.len::<String>(), 0);
    }

    /// A view or an iterator made before the first value of its type sees
    /// the values inserted after (a view) or stays ended once it ended (an
    /// iterator: fused). (Before: the view answered `Removed` for a live
    /// handle, and an ended iterator gave values again.)
    #[test]
    fn views_made_before_the_store_exists_see_it() {
        let mm = MemoryManager::new();
        let view = mm.store::<u32>();
        let mut it = mm.iter::<u32>();
        assert_eq!(it.next(), None);
        let h = mm.insert(5u32);
        assert_eq!(view.get(h), Ok(&5));
        assert_eq!(view.len(), 1);
        assert_eq!(it.next(), None, "fused");
        let mut it = mm.iter::<u32>();
        assert!(it.next().is_some());
        assert_eq!(it.next(), None);
        mm.insert(6u32);
        assert_eq!(it.next(), None, "fused after an insert");
    }

    #[cfg(feature = "std")]
    mod shared {
        use super::*;
        use memory_mgr::SharedManager;

        struct CallsBack(&'static SharedManager, #[allow(dead_code)] [u8; 8192]);
        impl Drop for CallsBack {
            fn drop(&mut self) {
                let b = self.0.alloc_block(8).unwrap();
                self.0.free(b).unwrap();
            }
        }

        /// A refused insert drops the value after the central lock: its
        /// destructor may use the manager. (Before: it spun on the lock its
        /// own thread held.)
        #[test]
        fn a_refused_insert_drops_the_value_after_the_lock() {
            static MM: SharedManager = SharedManager::builder().budget(1 << 16).build_shared();
            let mm: &'static SharedManager = &MM;
            let (tx, rx) = std::sync::mpsc::channel();
            let t = std::thread::spawn(move || {
                let r = mm.try_insert(CallsBack(mm, [0; 8192]));
                tx.send(matches!(r, Err(Error::BudgetExceeded { .. })))
                    .unwrap();
            });
            // (A guard against a hang, not a timing assertion.)
            let refused = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("try_insert returned");
            assert!(refused);
            t.join().unwrap();
        }

        struct PanicOnDrop(#[allow(dead_code)] Vec<u8>, bool);
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                if self.1 {
                    std::panic::resume_unwind(Box::new("value's destructor"));
                }
            }
        }

        /// A value's destructor that panics in a shared manager's drop
        /// leaves no memory behind. (Before: the state, 9.4 KB, leaked.)
        #[test]
        fn a_panicking_value_in_a_dropped_shared_manager_leaks_nothing() {
            drop(SharedManager::new().alloc(1u8)); // this thread's slot
            let before = crate::held();
            let mm = SharedManager::new();
            mm.insert(PanicOnDrop(vec![1; 10], true));
            mm.insert(PanicOnDrop(vec![0; 10], false));
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(mm)));
            assert!(r.is_err());
            drop(r);
            assert_eq!(crate::held() - before, 0);
        }
    }
}
