//! `PoolBox` behaves like `Box`.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::mem::size_of;

use memory_mgr::{FineClasses, MemoryManager, PoolBox};

fn hash<T: Hash + ?Sized>(t: &T) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

#[test]
fn one_word_with_a_niche_like_box() {
    assert_eq!(size_of::<PoolBox<'_, u64>>(), size_of::<Box<u64>>());
    assert_eq!(
        size_of::<Option<PoolBox<'_, [u8; 100]>>>(),
        size_of::<usize>()
    );
    assert_eq!(size_of::<PoolBox<'_, [u8]>>(), size_of::<Box<[u8]>>());
    assert_eq!(
        size_of::<PoolBox<'_, str, FineClasses>>(),
        size_of::<Box<str>>()
    );
}

#[test]
fn deref_and_std_traits() {
    let mm = MemoryManager::new();
    let mut a = mm.alloc(String::from("abc"));
    a.push('d');
    assert_eq!(a.as_str(), "abcd");
    let r: &String = a.as_ref();
    assert_eq!(r, "abcd");
    let m: &mut String = a.as_mut();
    m.push('e');
    let b: &String = std::borrow::Borrow::borrow(&a);
    assert_eq!(b, "abcde");
    assert_eq!(format!("{a}"), "abcde");
    assert_eq!(format!("{a:?}"), "\"abcde\"");
    assert!(format!("{a:p}").starts_with("0x"));
    assert_eq!(hash(&a), hash(&String::from("abcde")));

    let x = mm.alloc(3);
    let y = mm.alloc(5);
    assert!(x < y);
    assert_eq!(x.cmp(&y), std::cmp::Ordering::Less);
    assert_eq!(x, mm.alloc(3));
    let set: BTreeSet<_> = [mm.alloc(2), mm.alloc(1), mm.alloc(2)]
        .into_iter()
        .collect();
    assert_eq!(set.len(), 2);
    let hs: HashSet<_> = [mm.alloc_str("a"), mm.alloc_str("b"), mm.alloc_str("a")]
        .into_iter()
        .collect();
    assert_eq!(hs.len(), 2);
}

#[test]
fn clone_allocates_in_the_same_manager() {
    let mm = MemoryManager::new();
    let a = mm.alloc([1u32; 10]);
    let b = a.clone();
    assert_eq!(a, b);
    assert_ne!(PoolBox::as_ptr(&a), PoolBox::as_ptr(&b));
    assert_eq!(mm.stats().live(), 2);
    let s = mm.alloc_slice_copy(&[1u8, 2, 3]);
    let t = s.clone();
    assert_eq!(&*t, &[1, 2, 3]);
    let u = mm.alloc_str("hello");
    let v = u.clone();
    assert_eq!(&*v, "hello");
    assert_eq!(mm.stats().live(), 6);
}

#[test]
fn into_raw_from_raw_leak_and_pin() {
    let mm = MemoryManager::new();
    let raw = PoolBox::into_raw(mm.alloc([9u64; 2]));
    // SAFETY: `raw` is a live `[u64; 2]` from this manager.
    unsafe { (*raw)[1] = 10 };
    // SAFETY: from `into_raw`, rebuilt once.
    let back = unsafe { PoolBox::<[u64; 2]>::from_raw(raw) };
    assert_eq!(*back, [9, 10]);
    drop(back);
    assert_eq!(mm.stats().live(), 0);

    let leaked: &mut [u8] = PoolBox::leak(mm.alloc_slice_copy(&[4u8; 7]));
    leaked[6] = 5;
    assert_eq!(leaked, &[4, 4, 4, 4, 4, 4, 5]);
    assert_eq!(mm.stats().live(), 1);

    // An `Unpin` value pins in any manager, as with `Box`.
    let mut pinned = std::pin::Pin::new(mm.alloc(11u32));
    *pinned.as_mut().get_mut() += 1;
    assert_eq!(*pinned, 12);
}

#[test]
fn a_static_manager_pins_any_value() {
    let raw = Box::into_raw(Box::new(MemoryManager::new()));
    {
        // SAFETY: `raw` is live until the `Box::from_raw` below, after every
        // box from it is dropped and this reference is no longer used.
        let mm: &'static MemoryManager = unsafe { &*raw };
        let fut = mm.pin(async { 40 + 2 });
        drop(fut);
        let p = PoolBox::pin_in([0u8; 3], mm);
        assert_eq!(p.len(), 3);
        let q = PoolBox::into_pin(mm.alloc((5u64, std::marker::PhantomPinned)));
        assert_eq!(mm.stats().live(), 2);
        drop((p, q));
        assert_eq!(mm.stats().live(), 0);
    }
    // SAFETY: from `Box::into_raw` above; nothing borrows it any more.
    drop(unsafe { Box::from_raw(raw) });
}

#[test]
fn new_in_and_try_new_in_mirror_box() {
    let mm = MemoryManager::new();
    let a = PoolBox::new_in(7u32, &mm);
    let b = PoolBox::try_new_in(8u32, &mm).unwrap();
    let c = PoolBox::try_new_with_in(|| 9u32, &mm).unwrap();
    assert_eq!(*a + *b + *c, 24);
    assert_eq!(PoolBox::into_inner(a), 7);
}

#[test]
fn a_boxed_iterator_is_an_iterator() {
    let mm = MemoryManager::new();
    let it = mm.alloc(0..5);
    assert_eq!(it.sum::<i32>(), 10);
}

#[test]
fn boxes_from_different_tables_coexist() {
    let a = MemoryManager::new();
    let b = MemoryManager::<FineClasses>::with_classes();
    let x = a.alloc([1u8; 24]);
    let y: PoolBox<'_, [u8; 24], FineClasses> = b.alloc([2u8; 24]);
    assert_eq!(x[0] + y[0], 3);
    drop((x, y));
    assert_eq!(a.stats().live() + b.stats().live(), 0);
}

mod unsize {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use memory_mgr::{unsize_box, MemoryManager, PoolBox};

    use crate::assert_no_leak;

    trait Shape {
        fn area(&self) -> f64;
    }
    struct Square(f64, &'static AtomicUsize);
    impl Shape for Square {
        fn area(&self) -> f64 {
            self.0 * self.0
        }
    }
    impl Drop for Square {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }
    struct Big([u64; 100]);
    impl Shape for Big {
        fn area(&self) -> f64 {
            self.0.iter().sum::<u64>() as f64
        }
    }

    #[test]
    fn a_dyn_box_drops_its_value_and_returns_the_block_to_its_class() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        assert_no_leak(|| {
            let mm = MemoryManager::new();
            let shapes: Vec<PoolBox<'_, dyn Shape>> = vec![
                unsize_box!(mm.alloc(Square(3.0, &DROPS))),
                unsize_box!(mm.alloc(Big([1; 100]))), // 800 bytes: the system
                unsize_box!(mm.alloc(Square(0.5, &DROPS))),
            ];
            let areas: Vec<f64> = shapes.iter().map(|s| s.area()).collect();
            assert_eq!(areas, [9.0, 100.0, 0.25]);
            let s = mm.stats();
            assert_eq!(crate::live_by_kind(&s).0, 3);
            if !crate::PASS_THROUGH {
                assert_eq!((s.classes[1].live_boxes, s.system.live_boxes), (2, 1));
            }
            drop(shapes);
            assert_eq!(DROPS.load(Ordering::Relaxed), 2);
            assert_eq!(mm.stats().live(), 0);
            assert!(mm.is_consistent());
            let slice: PoolBox<'_, [u32]> = unsize_box!(mm.alloc([7u32; 10]));
            assert_eq!((slice.len(), crate::live_by_kind(&mm.stats()).0), (10, 1));
            drop(slice);
            assert_eq!(mm.stats().live(), 0);
        });
    }

    #[cfg(feature = "nightly")]
    #[test]
    fn with_the_nightly_feature_a_box_coerces_like_box() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        let mm = MemoryManager::new();
        let s: PoolBox<'_, dyn Shape> = mm.alloc(Square(2.0, &DROPS));
        assert_eq!(s.area(), 4.0);
        let a: PoolBox<'_, [u8]> = mm.alloc([1u8, 2, 3]);
        assert_eq!(a.len(), 3);
        drop((s, a));
        assert_eq!((DROPS.load(Ordering::Relaxed), mm.stats().live()), (1, 0));
    }
}
