//! Alignment of every class, of over-aligned types, and of zero-sized types.

use memory_mgr::{natural_align, DefaultClasses, FineClasses, MemoryManager, PoolBox, SizeClasses};

use crate::{n, PASS_THROUGH};

fn addr<T: ?Sized>(b: &PoolBox<'_, T>) -> usize {
    PoolBox::as_ptr(b) as *const u8 as usize
}

#[test]
fn blocks_of_every_class_are_naturally_aligned() {
    let mm = MemoryManager::new();
    for &size in DefaultClasses::SIZES {
        let blocks: Vec<_> = (0..n(100, 5))
            .map(|_| mm.alloc_block(size).unwrap())
            .collect();
        for b in &blocks {
            let align = if PASS_THROUGH { 8 } else { natural_align(size) };
            assert_eq!(
                mm.block_ptr(*b).unwrap().cast::<u8>().as_ptr() as usize % align,
                0,
                "class {size}"
            );
        }
        for b in blocks {
            mm.free(b).unwrap();
        }
    }
    let fine = MemoryManager::<FineClasses>::with_classes();
    for &size in FineClasses::SIZES {
        let b = fine.alloc_block(size).unwrap();
        let align = if PASS_THROUGH { 8 } else { natural_align(size) };
        assert_eq!(
            fine.block_ptr(b).unwrap().cast::<u8>().as_ptr() as usize % align,
            0,
            "fine class {size}"
        );
        fine.free(b).unwrap();
    }
}

#[repr(align(64))]
struct Align64(u8);

#[repr(align(4096))]
struct Align4096(u8);

#[repr(align(16))]
struct Align16(#[allow(dead_code)] [u8; 40]);

#[test]
fn over_aligned_types_are_aligned() {
    let mm = MemoryManager::new();
    let a: Vec<_> = (0..n(200, 5)).map(|i| mm.alloc(Align64(i as u8))).collect();
    for (i, b) in a.iter().enumerate() {
        assert_eq!(addr(b) % 64, 0);
        assert_eq!(b.0, i as u8);
    }
    if !PASS_THROUGH {
        // 1 byte at alignment 64: the 64-byte class.
        assert_eq!(mm.stats().classes[3].live_boxes, a.len());
    }
    let p = mm.alloc(Align4096(9));
    assert_eq!(addr(&p) % 4096, 0);
    assert_eq!(p.0, 9);
    // No default class is aligned to 4096: the system allocator serves it.
    let expect = if PASS_THROUGH { a.len() + 1 } else { 1 };
    assert_eq!(mm.stats().system.live_boxes, expect);
    let q = mm.alloc(Align16([3; 40]));
    assert_eq!(addr(&q) % 16, 0);
    let fine = MemoryManager::<FineClasses>::with_classes();
    let r = fine.alloc(Align16([4; 40]));
    assert_eq!(PoolBox::as_ptr(&r) as usize % 16, 0);
    if !PASS_THROUGH {
        // 40 bytes at alignment 16: the 48-byte class, not the 40-byte one.
        assert_eq!(fine.stats().classes[5].live_boxes, 1);
        assert_eq!(fine.stats().classes[5].block_size, 48);
    }
}

#[test]
fn aligned_blocks_take_a_class_that_can_honour_them() {
    let mm = MemoryManager::new();
    for align in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096] {
        let b = mm.alloc_block_aligned(8, align).unwrap();
        assert_eq!(
            mm.block_ptr(b).unwrap().cast::<u8>().as_ptr() as usize % align,
            0,
            "align {align}"
        );
        assert!(mm.block_size(b).unwrap() >= 8);
        mm.free(b).unwrap();
    }
    assert_eq!(mm.stats().live(), 0);
}

#[derive(Debug, PartialEq)]
struct Zst;

#[test]
fn zero_sized_types_never_allocate() {
    let mm = MemoryManager::new();
    let a = mm.alloc(());
    let b = mm.alloc(Zst);
    let c = mm.alloc([0u64; 0]);
    let d = mm.alloc_slice_copy::<u32>(&[]);
    let e = mm.alloc_slice_fill_with(1000, |_| Zst);
    let f = mm.alloc(Align4096Zst);
    assert_eq!(addr(&f) % 4096, 0);
    assert_eq!(*b, Zst);
    assert_eq!(e.len(), 1000);
    assert_eq!(mm.stats().reserved_bytes(), 0);
    assert_eq!(mm.stats().live(), 0);
    drop((a, b, c, d, e, f));
    assert_eq!(mm.stats().reserved_bytes(), 0);
}

#[repr(align(4096))]
struct Align4096Zst;
