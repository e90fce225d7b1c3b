//! A `#[global_allocator]` that calls into a manager while the manager is
//! itself asking the global allocator for memory (an `unsafe impl`, but
//! the crate's own code must stay sound under it): the handle table never
//! holds a borrow across an allocation, and picks a handle's index in the
//! same step that fills it. (Elsewhere the crate's state is in `RefCell`s
//! and `Cell`s: a call that reaches a part being changed panics.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};

use memory_mgr::{Handle, MemoryManager};

struct Reentrant;

thread_local! {
    /// Set: the next allocation inserts into `MM` first (once).
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static MM: RefCell<Option<MemoryManager>> = const { RefCell::new(None) };
    static NESTED: Cell<Option<Handle<String>>> = const { Cell::new(None) };
}

// SAFETY: every request goes to `System` as it is; before that, once when
// armed, the allocation inserts a value into the thread's manager.
unsafe impl GlobalAlloc for Reentrant {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(|a| a.replace(false)) {
            MM.with_borrow(|m| {
                let h = m.as_ref().unwrap().insert(String::from("nested"));
                NESTED.with(|n| n.set(Some(h)));
            });
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: allocated by `System` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Reentrant = Reentrant;

struct Big(String, #[allow(dead_code)] [u64; 20]);

fn with_manager<R>(f: impl FnOnce(&MemoryManager) -> R) -> R {
    MM.with_borrow_mut(|m| *m = Some(MemoryManager::new()));
    let r = MM.with_borrow(|m| f(m.as_ref().unwrap()));
    r
}

#[test]
fn an_insert_while_the_handle_table_grows() {
    let (outer, nested) = with_manager(|mm| {
        // The value's chunk first, so that the armed allocation is the
        // table's. (An allocation the pools make while they are being
        // changed — a new chunk's place in the chunk map — is refused by a
        // `RefCell` panic if the allocator calls the manager: no UB.)
        mm.reserve::<u64>(10).unwrap();
        ARMED.with(|a| a.set(true));
        let outer = mm.insert(7u64); // the first insert grows the table
        (outer, NESTED.with(|n| n.get()).expect("the allocator ran"))
    });
    let mut mm = MM.with_borrow_mut(|m| m.take().unwrap());
    assert_eq!(mm.get(outer), Ok(&7));
    assert_eq!(mm.get(nested).map(String::as_str), Ok("nested"));
    assert_eq!(mm.stats().live(), 2);
    assert_eq!(mm.remove(nested).as_deref(), Ok("nested"));
    assert_eq!(mm.remove(outer), Ok(7));
    assert!(mm.is_consistent());
}

#[test]
fn an_insert_while_a_value_gets_its_chunk() {
    let (outer, nested) = with_manager(|mm| {
        // Room in the table; the `Big` class has no chunk yet.
        mm.reserve_handles::<String>(10).unwrap();
        ARMED.with(|a| a.set(true));
        let outer = mm.insert(Big(String::from("outer"), [0; 20]));
        (outer, NESTED.with(|n| n.get()).expect("the allocator ran"))
    });
    let mut mm = MM.with_borrow_mut(|m| m.take().unwrap());
    let index = |h: &dyn std::fmt::Debug| {
        let d = format!("{h:?}");
        d.split("index: ")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_ne!(index(&outer), index(&nested), "two indices");
    assert_eq!(mm.stats().live(), 2);
    assert_eq!(mm.get(outer).map(|b| b.0.as_str()), Ok("outer"));
    assert_eq!(mm.get(nested).map(String::as_str), Ok("nested"));
    let big = mm.remove(outer).unwrap();
    assert_eq!(big.0, "outer");
    mm.reset(); // drops "nested"
    assert_eq!(mm.stats().live(), 0);
    assert!(mm.is_consistent());
}
