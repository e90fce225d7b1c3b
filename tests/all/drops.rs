//! Destructors run exactly once, also when a destructor or an initialiser
//! panics, and no block leaks.
//!
//! The panic tests check the manager's own accounting rather than the
//! counting allocator: the panic runtime keeps memory of its own (captured
//! output, backtrace caches) that would look like a leak.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use memory_mgr::{MemoryManager, PoolBox};

use crate::{assert_no_leak, assert_still_works};

#[derive(Clone)]
struct Counted {
    drops: Rc<Cell<usize>>,
    _payload: [u64; 3],
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

fn counted(drops: &Rc<Cell<usize>>) -> Counted {
    Counted {
        drops: drops.clone(),
        _payload: [0; 3],
    }
}

#[test]
fn drop_runs_exactly_once() {
    let mm = MemoryManager::new();
    let drops = Rc::new(Cell::new(0));
    let a = mm.alloc(counted(&drops));
    let b = a.clone();
    drop(a);
    assert_eq!(drops.get(), 1);
    let inner = PoolBox::into_inner(b);
    assert_eq!(drops.get(), 1, "into_inner must not drop the value");
    drop(inner);
    assert_eq!(drops.get(), 2);
    let s = mm.alloc_slice_fill_with(10, |_| counted(&drops));
    let t = s.clone();
    drop(s);
    assert_eq!(drops.get(), 12);
    drop(t);
    assert_eq!(drops.get(), 22);
    let raw = PoolBox::into_raw(mm.alloc(counted(&drops)));
    assert_eq!(drops.get(), 22);
    // SAFETY: `raw` came from `into_raw`, once.
    drop(unsafe { PoolBox::<Counted>::from_raw(raw) });
    assert_eq!(drops.get(), 23);
    let leaked: *mut Counted = PoolBox::leak(mm.alloc(counted(&drops)));
    assert_eq!(drops.get(), 23, "leak never drops");
    assert_eq!(mm.stats().live(), 1);
    // SAFETY: the leaked value is valid and dropped only here (its block is
    // released with the manager), so its `Rc` does not leak under Miri.
    unsafe { std::ptr::drop_in_place(leaked) };
    assert_eq!(drops.get(), 24);
}

#[test]
fn boxed_values_that_own_heap_memory_are_dropped() {
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let v = mm.alloc(vec![String::from("a"); 100]);
        let w = mm.alloc_slice_clone(&[String::from("x"), String::from("y")]);
        assert_eq!(v.len() + w.len(), 102);
    });
}

struct PanicOnDrop(#[allow(dead_code)] [u8; 40]);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("drop panics");
    }
}

#[test]
fn a_panicking_drop_still_returns_the_block() {
    let mm = MemoryManager::new();
    for _ in 0..3 {
        let b = mm.alloc(PanicOnDrop([1; 40]));
        assert_eq!(mm.stats().live(), 1);
        let r = catch_unwind(AssertUnwindSafe(|| drop(b)));
        assert!(r.is_err());
        assert_eq!(mm.stats().live(), 0);
    }
    let big = mm.alloc((PanicOnDrop([2; 40]), [0u8; 600]));
    assert_eq!(mm.stats().system.live_boxes, 1);
    let r = catch_unwind(AssertUnwindSafe(|| drop(big)));
    assert!(r.is_err());
    assert_eq!(mm.stats().live(), 0);
    // Unsized: the block's layout comes from the pointer's metadata (a
    // vtable, a length), read after the value's destructor panicked; the
    // block is back (`live` 0) only if that layout was the value's.
    let dynamic: PoolBox<'_, dyn std::any::Any> =
        memory_mgr::unsize_box!(mm.alloc(PanicOnDrop([3; 40])));
    let r = catch_unwind(AssertUnwindSafe(|| drop(dynamic)));
    assert!(r.is_err());
    let slice = mm.alloc_slice_fill_with(1, |_| PanicOnDrop([4; 40]));
    assert_eq!(slice.len(), 1);
    let r = catch_unwind(AssertUnwindSafe(|| drop(slice)));
    assert!(r.is_err());
    assert_eq!(mm.stats().live(), 0);
    assert!(mm.is_consistent());
    assert_still_works(&mm);
}

#[test]
fn a_panicking_initialiser_leaks_nothing_and_drops_what_was_made() {
    let mm = MemoryManager::new();
    let drops = Rc::new(Cell::new(0));
    let r = catch_unwind(AssertUnwindSafe(|| {
        mm.alloc_slice_fill_with(8, |i| {
            if i == 5 {
                panic!("init panics");
            }
            counted(&drops)
        })
    }));
    assert!(r.is_err());
    assert_eq!(drops.get(), 5, "the five made elements are dropped once");
    assert_eq!(mm.stats().live(), 0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        mm.alloc_with(|| -> [u8; 100] { panic!("with panics") })
    }));
    assert!(r.is_err());
    assert_eq!(mm.stats().live(), 0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        mm.alloc_with(|| -> [u8; 5000] { panic!("with panics") })
    }));
    assert!(r.is_err());
    assert_eq!(mm.stats().live(), 0);
    assert!(mm.is_consistent());
    assert_still_works(&mm);
}

#[derive(Debug)]
struct PanicOnClone(u32);

impl Clone for PanicOnClone {
    fn clone(&self) -> Self {
        if self.0 == 2 {
            panic!("clone panics");
        }
        PanicOnClone(self.0)
    }
}

#[test]
fn a_panicking_clone_leaks_nothing() {
    let mm = MemoryManager::new();
    let one = mm.alloc(PanicOnClone(2));
    assert!(catch_unwind(AssertUnwindSafe(|| one.clone())).is_err());
    let many = mm.alloc_slice_fill_with(4, |i| PanicOnClone(i as u32));
    assert!(catch_unwind(AssertUnwindSafe(|| many.clone())).is_err());
    assert_eq!(mm.stats().live(), 2);
    drop((one, many));
    assert_eq!(mm.stats().live(), 0);
    assert!(mm.is_consistent());
}

/// A value whose drop counts, `N` words large: 1 is passed in registers
/// (the slow path takes it along), 8 is not (it stays with the caller),
/// 100 is above every class (the system allocation).
struct Words<const N: usize> {
    drops: Rc<Cell<usize>>,
    _payload: [u64; N],
}

impl<const N: usize> Drop for Words<N> {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

/// `alloc(value)` with room for `value` refused (a budget of one byte):
/// a panic with the error's message, the value dropped exactly once (not
/// moved into any block) — whichever shape `alloc`'s slow path has for
/// the value's size — and the manager still answering, with nothing live.
#[test]
fn a_refused_alloc_panics_and_drops_the_value_once() {
    fn refused<T>(alloc: impl FnOnce() -> T, drops: &Rc<Cell<usize>>) {
        let before = drops.get();
        let panic = catch_unwind(AssertUnwindSafe(|| drop(alloc()))).unwrap_err();
        let text = panic.downcast_ref::<String>().unwrap();
        assert!(text.contains("allocation failed"), "{text}");
        assert!(text.contains("budget exceeded"), "{text}");
        assert_eq!(drops.get(), before + 1, "the refused value is dropped once");
    }
    // Each shape through `alloc` of manager `$m`, then the manager still
    // answering with nothing live.
    macro_rules! each_shape {
        ($m:expr, $drops:expr) => {{
            let m = &$m;
            let d = || $drops.clone();
            refused(
                || {
                    m.alloc(Words::<0> {
                        drops: d(),
                        _payload: [],
                    })
                },
                &$drops,
            );
            refused(
                || {
                    m.alloc(Words::<8> {
                        drops: d(),
                        _payload: [0; 8],
                    })
                },
                &$drops,
            );
            refused(
                || {
                    m.alloc(Words::<100> {
                        drops: d(),
                        _payload: [0; 100],
                    })
                },
                &$drops,
            );
            assert_eq!(m.stats().live(), 0);
            assert!(m.try_alloc(1u8).is_err(), "still refused, as a typed error");
        }};
    }
    let drops = Rc::new(Cell::new(0));
    let mm = MemoryManager::builder().budget(1).build().unwrap();
    each_shape!(mm, drops);
    let value = Words::<0> {
        drops: drops.clone(),
        _payload: [],
    };
    refused(|| PoolBox::new_in(value, &mm), &drops);
    #[cfg(feature = "std")]
    each_shape!(
        memory_mgr::SharedManager::builder()
            .budget(1)
            .build_shared(),
        drops
    );
    assert_eq!(drops.get(), if cfg!(feature = "std") { 7 } else { 4 });
}
