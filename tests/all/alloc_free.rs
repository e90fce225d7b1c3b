//! Class routing, class boundaries, data integrity, several managers.

use memory_mgr::{Block, FineClasses, MemoryManager, PoolBox};

use crate::{assert_no_leak, n, PASS_THROUGH};

/// Which class served a typed allocation of `N` bytes, from the stats.
fn class_of_box<const N: usize>(mm: &MemoryManager) -> Option<usize> {
    let b = mm.alloc([0u8; N]);
    let s = mm.stats();
    let class = s.classes.iter().position(|c| c.live_boxes == 1);
    if class.is_none() {
        assert_eq!(s.system.live_boxes, 1, "{N} bytes went nowhere");
    }
    drop(b);
    class
}

#[test]
fn typed_class_boundaries_1_8_9_512_513() {
    let mm = MemoryManager::new();
    let expect = |c: usize| if PASS_THROUGH { None } else { Some(c) };
    assert_eq!(class_of_box::<1>(&mm), expect(0));
    assert_eq!(class_of_box::<8>(&mm), expect(0));
    assert_eq!(class_of_box::<9>(&mm), expect(1));
    assert_eq!(class_of_box::<512>(&mm), expect(6));
    assert_eq!(class_of_box::<513>(&mm), None);
    assert_eq!(mm.stats().live(), 0);
}

#[test]
fn block_class_boundaries_1_8_9_512_513() {
    let mm = MemoryManager::new();
    for (size, block) in [(0, 8), (1, 8), (8, 8), (9, 16), (24, 32), (512, 512)] {
        let b = mm.alloc_block(size).unwrap();
        if PASS_THROUGH {
            assert_eq!(mm.block_size(b).unwrap(), size);
            assert!(!b.is_pooled());
        } else {
            assert_eq!(mm.block_size(b).unwrap(), block, "size {size}");
            assert!(b.is_pooled());
        }
        mm.free(b).unwrap();
    }
    let big = mm.alloc_block(513).unwrap();
    assert_eq!(mm.block_size(big).unwrap(), 513);
    assert!(!big.is_pooled());
    assert_eq!(mm.stats().system.live_blocks, 1);
    mm.free(big).unwrap();
    assert_eq!(mm.stats().live(), 0);
}

#[test]
fn fine_classes_waste_less() {
    let mm = MemoryManager::<FineClasses>::with_classes();
    let b = mm.alloc_block(100).unwrap();
    assert_eq!(
        mm.block_size(b).unwrap(),
        if PASS_THROUGH { 100 } else { 104 }
    );
    mm.free(b).unwrap();
    let x: PoolBox<'_, [u8; 24], FineClasses> = mm.alloc([1; 24]);
    if !PASS_THROUGH {
        assert_eq!(mm.stats().classes[2].live_boxes, 1);
        assert_eq!(mm.stats().classes[2].block_size, 24);
    }
    assert_eq!(x[23], 1);
}

#[test]
fn every_live_block_keeps_its_bytes() {
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut live: Vec<(Block, u8)> = Vec::new();
        let mut boxes: Vec<PoolBox<'_, [u8; 48]>> = Vec::new();
        for step in 0..n(20_000, 300) {
            if live.is_empty() || rng.u8(..) < 150 {
                let size = rng.usize(0..1100);
                let b = mm.alloc_block(size).unwrap();
                let tag = step as u8;
                let fill = vec![tag; mm.block_size(b).unwrap()];
                mm.write_bytes(b, 0, &fill).unwrap();
                live.push((b, tag));
                boxes.push(mm.alloc([tag; 48]));
            } else {
                let (b, tag) = live.swap_remove(rng.usize(..live.len()));
                let mut back = vec![0; mm.block_size(b).unwrap()];
                mm.read_bytes(b, 0, &mut back).unwrap();
                assert!(crate::all_are(&back, tag), "block corrupted");
                mm.free(b).unwrap();
                let bx = boxes.swap_remove(rng.usize(..boxes.len()));
                assert!(crate::all_are(&bx[..], bx[0]), "box corrupted");
            }
        }
        for (b, tag) in live {
            let mut back = vec![0; mm.block_size(b).unwrap()];
            mm.read_bytes(b, 0, &mut back).unwrap();
            assert!(crate::all_are(&back, tag));
            mm.free(b).unwrap();
        }
        assert_eq!(mm.stats().live(), boxes.len());
        drop(boxes);
        assert_eq!(mm.stats().live(), 0);
        assert!(mm.is_consistent());
    });
}

#[test]
fn boxes_of_many_types_do_not_overlap() {
    let mm = MemoryManager::new();
    let a: Vec<_> = (0..n(1000, 50)).map(|i| mm.alloc(i as u64)).collect();
    let b: Vec<_> = (0..n(1000, 50)).map(|i| mm.alloc([i as u32; 5])).collect();
    let mut ranges: Vec<(usize, usize)> = a
        .iter()
        .map(|x| (PoolBox::as_ptr(x) as usize, 8))
        .chain(b.iter().map(|x| (PoolBox::as_ptr(x) as usize, 20)))
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "overlap");
    }
    for (i, x) in a.iter().enumerate() {
        assert_eq!(**x, i as u64);
    }
    for (i, x) in b.iter().enumerate() {
        assert_eq!(**x, [i as u32; 5]);
    }
}

#[test]
fn managers_are_independent() {
    let m1 = MemoryManager::new();
    let m2 = MemoryManager::new();
    let x = m1.alloc(1u64);
    let y = m2.alloc(2u64);
    let b1 = m1.alloc_block(16).unwrap();
    assert_eq!(m1.stats().live(), 2);
    assert_eq!(m2.stats().live(), 1);
    drop(y);
    assert_eq!(m2.stats().live(), 0);
    assert_eq!(m1.stats().live(), 2);
    assert_eq!(*x, 1);
    m1.free(b1).unwrap();
}

#[test]
fn a_manager_can_move_to_another_thread() {
    let mm = MemoryManager::new();
    let b = mm.alloc_block(32).unwrap();
    mm.write(b, 0, 99u32).unwrap();
    let mm = std::thread::spawn(move || {
        assert_eq!(mm.read::<u32>(b, 0).unwrap(), 99);
        let x = mm.alloc(5u8);
        assert_eq!(*x, 5);
        drop(x);
        mm
    })
    .join()
    .unwrap();
    mm.free(b).unwrap();
    assert_eq!(mm.stats().live(), 0);
}

#[test]
fn dropping_the_manager_releases_everything_still_allocated() {
    thread_local!(static REPORTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });
    fn hook(leaks: &memory_mgr::Leaks) {
        REPORTED.with(|r| r.set(leaks.total()));
    }
    assert_no_leak(|| {
        // The hook replaces the debug-build report on stderr, whose captured
        // output would count as memory held by this thread.
        let mm = MemoryManager::builder().on_leak(hook).build().unwrap();
        for i in 0..n(5000, 100) {
            std::mem::forget(mm.alloc([i as u8; 40]));
            let _ = mm.alloc_block(i % 700).unwrap();
            PoolBox::leak(mm.alloc_slice_copy(&[0u32; 300]));
        }
        assert!(mm.stats().reserved_bytes() > 0);
        assert_eq!(mm.leaks().total(), 3 * n(5000, 100));
        drop(mm);
    });
    assert_eq!(REPORTED.with(|r| r.get()), 3 * n(5000, 100));
}

#[test]
fn stats_table_shows_the_classes_in_use_and_the_alternate_form_all() {
    let mm = MemoryManager::new();
    let _a = mm.alloc(1u64);
    let _b = mm.alloc_block(100).unwrap(); // the 128-byte class
    let row = |text: &str, size: usize| text.lines().any(|l| l.starts_with(&format!("{size:>6} ")));
    let text = mm.stats().to_string();
    let all = format!("{:#}", mm.stats());
    for size in [8, 16, 32, 64, 128, 256, 512] {
        // (In pass-through mode every allocation goes to the system.)
        let used = !PASS_THROUGH && (size == 8 || size == 128);
        assert_eq!(row(&text, size), used, "{size}: {text}");
        assert!(row(&all, size), "{size}: {all}");
    }
    for t in [&text, &all] {
        assert!(t.contains("system") && t.contains("total"), "{t}");
        assert!(t.lines().all(|l| l.len() <= 100), "{t}");
    }
}
