//! A `#[global_allocator]` that calls into a manager while the manager is
//! itself asking the global allocator for memory (an `unsafe impl`, but
//! the crate's own code must stay sound under it): the re-entrancy rule of
//! docs/safety.md — no borrow of a manager's own table is held across a
//! call that can allocate, and a place found before an allocation is looked
//! for again after it. One test per table, each arming the allocator so
//! that its next allocation, the one that table (or list) makes, calls the
//! same manager first; each failed (a panic inside the allocator, a lost
//! chunk, a corrupted record, a leak) before the rule was applied to it.
//!
//! The allocator also counts this thread's net bytes, so that every test
//! can check that the manager gave back all it took once dropped.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

use memory_mgr::{Block, Handle, MemoryManager};
#[cfg(feature = "std")]
use memory_mgr::{SharedBox, SharedManager};

struct Reentrant;

thread_local! {
    /// Set: the next allocation runs `NESTED_CALL` first (once).
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// What the armed allocation does before it allocates.
    static NESTED_CALL: Cell<Option<fn()>> = const { Cell::new(None) };
    /// Set: the next deallocation runs `NESTED_FREE_CALL` first (once).
    static ARMED_FREE: Cell<bool> = const { Cell::new(false) };
    static NESTED_FREE_CALL: Cell<Option<fn()>> = const { Cell::new(None) };
    static NESTED_U64: Cell<Option<Handle<u64>>> = const { Cell::new(None) };
    /// Bytes this thread holds from the allocator.
    static NET: Cell<isize> = const { Cell::new(0) };
    static MM: RefCell<Option<MemoryManager>> = const { RefCell::new(None) };
    static NESTED_HANDLE: Cell<Option<Handle<String>>> = const { Cell::new(None) };
    static NESTED_BIG: Cell<Option<Handle<Big>>> = const { Cell::new(None) };
    static NESTED_BLOCK: Cell<Option<Block>> = const { Cell::new(None) };
    static NESTED_RAW: Cell<Option<NonNull<u8>>> = const { Cell::new(None) };
}

// SAFETY: every request goes to `System` as it is; before that, once when
// armed, the allocation runs the nested call (which allocates in turn).
unsafe impl GlobalAlloc for Reentrant {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(|a| a.replace(false)) {
            if let Some(f) = NESTED_CALL.with(|n| n.get()) {
                f();
            }
        }
        NET.with(|n| n.set(n.get() + layout.size() as isize));
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED_FREE.with(|a| a.replace(false)) {
            if let Some(f) = NESTED_FREE_CALL.with(|n| n.get()) {
                f();
            }
        }
        NET.with(|n| n.set(n.get() - layout.size() as isize));
        // SAFETY: allocated by `System` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Reentrant = Reentrant;

/// Makes the thread's manager, runs `f` on it, and returns the manager
/// (taken out of the thread-local) with `f`'s result.
fn with_manager<R>(f: impl FnOnce(&MemoryManager) -> R) -> (MemoryManager, R) {
    MM.with_borrow_mut(|m| *m = Some(MemoryManager::new()));
    let r = MM.with_borrow(|m| f(m.as_ref().unwrap()));
    (MM.with_borrow_mut(|m| m.take().unwrap()), r)
}

/// Arms the allocator: its next allocation on this thread runs `nested`.
fn arm(nested: fn()) {
    NESTED_CALL.with(|n| n.set(Some(nested)));
    ARMED.with(|a| a.set(true));
}

/// Whether every allocation goes straight to the system allocator.
const PASS_THROUGH: bool = cfg!(feature = "pass-through");

/// Arms the allocator: its next deallocation on this thread runs `nested`.
fn arm_free(nested: fn()) {
    NESTED_FREE_CALL.with(|n| n.set(Some(nested)));
    ARMED_FREE.with(|a| a.set(true));
}

/// Whether the allocator ran the nested call on a free (and disarms it).
fn fired_free() -> bool {
    !ARMED_FREE.with(|a| a.replace(false))
}

fn nested_trim() {
    MM.with_borrow(|m| {
        m.as_ref().unwrap().trim();
    });
}

fn nested_insert_u64() {
    MM.with_borrow(|m| {
        let h = m.as_ref().unwrap().insert(0xABCD_u64);
        NESTED_U64.with(|n| n.set(Some(h)));
    });
}

/// Whether the allocator ran the nested call (and disarms it).
fn fired() -> bool {
    !ARMED.with(|a| a.replace(false))
}

/// The thread's net bytes from the allocator.
fn net() -> isize {
    NET.with(|n| n.get())
}

fn nested_insert() {
    MM.with_borrow(|m| {
        let h = m.as_ref().unwrap().insert(String::from("nested"));
        NESTED_HANDLE.with(|n| n.set(Some(h)));
    });
}

fn nested_insert_big() {
    MM.with_borrow(|m| {
        let h = m
            .as_ref()
            .unwrap()
            .insert(Big(String::from("nested"), [1; 20]));
        NESTED_BIG.with(|n| n.set(Some(h)));
    });
}

fn nested_block_24() {
    MM.with_borrow(|m| {
        let mm = m.as_ref().unwrap();
        let b = mm.alloc_block(24).unwrap();
        mm.write(b, 0, 0xABCD_u64).unwrap();
        NESTED_BLOCK.with(|n| n.set(Some(b)));
    });
}

fn nested_large_block() {
    MM.with_borrow(|m| {
        let mm = m.as_ref().unwrap();
        let b = mm.alloc_block(100_000).unwrap();
        mm.write(b, 99_992, 0xABCD_u64).unwrap();
        NESTED_BLOCK.with(|n| n.set(Some(b)));
    });
}

#[test]
fn an_insert_while_the_handle_table_grows() {
    let before = net();
    let (mut mm, (outer, nested)) = with_manager(|mm| {
        // The value's chunk first, so that the armed allocation is the
        // table's.
        mm.reserve::<u64>(10).unwrap();
        arm(nested_insert);
        let outer = mm.insert(7u64); // the first insert grows the table
        assert!(fired());
        (outer, NESTED_HANDLE.with(|n| n.get()).unwrap())
    });
    assert_eq!(mm.get(outer), Ok(&7));
    assert_eq!(mm.get(nested).map(String::as_str), Ok("nested"));
    assert_eq!(mm.stats().live(), 2);
    assert_eq!(mm.remove(nested).as_deref(), Ok("nested"));
    assert_eq!(mm.remove(outer), Ok(7));
    assert!(mm.is_consistent());
    drop(mm);
    assert_eq!(net(), before, "everything given back");
}

struct Big(String, #[allow(dead_code)] [u64; 20]);

#[test]
fn an_insert_while_a_value_gets_its_chunk() {
    let before = net();
    let (mut mm, (outer, nested)) = with_manager(|mm| {
        // Room in the table and in the chunk map; the `Big` class has no
        // chunk yet: the armed allocation is its chunk, and the nested call
        // needs one of the same class. (Before the rule, the outer chunk
        // was linked to the list as it was before the allocation, dropping
        // the nested call's chunk, and the pool's never-used blocks moved
        // to the outer chunk, losing the rest of the nested one's.)
        mm.reserve_handles::<u64>(10).unwrap();
        let name = String::from("outer");
        arm(nested_insert_big);
        let outer = mm.insert(Big(name, [0; 20]));
        assert!(fired());
        (outer, NESTED_BIG.with(|n| n.get()).unwrap())
    });
    assert!(mm.is_consistent(), "every chunk on the pool's lists");
    assert_eq!(mm.stats().live(), 2);
    assert_eq!(mm.get(outer).map(|b| b.0.as_str()), Ok("outer"));
    assert_eq!(mm.get(nested).map(|b| b.0.as_str()), Ok("nested"));
    let big = mm.remove(outer).unwrap();
    assert_eq!(big.0, "outer");
    drop(big);
    mm.reset(); // drops "nested"
    assert_eq!(mm.stats().live(), 0);
    assert!(mm.is_consistent());
    drop(mm);
    assert_eq!(net(), before, "no chunk lost");
}

#[test]
fn an_insert_while_the_chunk_map_grows() {
    let before = net();
    let (mut mm, (outer, nested)) = with_manager(|mm| {
        // The first chunk of the manager: the armed allocation is the
        // chunk map's first places. (Before the rule: a `RefCell` panic
        // inside the global allocator.)
        arm(nested_insert);
        let outer = mm.insert(5u32);
        assert!(fired());
        (outer, NESTED_HANDLE.with(|n| n.get()).unwrap())
    });
    assert!(mm.is_consistent());
    assert_eq!(mm.get(outer), Ok(&5));
    assert_eq!(mm.remove(nested).as_deref(), Ok("nested"));
    assert_eq!(mm.stats().live(), 1);
    drop(mm);
    assert_eq!(net(), before);
}

#[test]
fn a_block_while_the_record_table_grows() {
    let before = net();
    let (mm, (outer, nested)) = with_manager(|mm| {
        // The 32-byte class of checked blocks has no chunk: its record
        // table grows first, and that is the armed allocation. (Before the
        // rule the nested block's record went into the old buffer, the
        // outer growth installed an uninitialised one, and a checked write
        // to the nested block segfaulted.)
        arm(nested_block_24);
        let outer = mm.alloc_block(24).unwrap();
        assert!(fired());
        (outer, NESTED_BLOCK.with(|n| n.get()).unwrap())
    });
    assert!(mm.is_consistent());
    mm.write(outer, 0, 1u64).unwrap();
    assert_eq!(mm.read::<u64>(nested, 0), Ok(0xABCD));
    assert_eq!(mm.read::<u64>(outer, 0), Ok(1));
    assert_eq!(mm.stats().live(), 2);
    mm.free(nested).unwrap();
    mm.free(outer).unwrap();
    assert!(mm.free(nested).is_err());
    mm.trim();
    assert!(mm.is_consistent());
    drop(mm);
    assert_eq!(net(), before);
}

#[test]
fn a_large_block_while_the_large_block_table_grows() {
    let before = net();
    let (mm, (outer, nested)) = with_manager(|mm| {
        // A block above every class: the table of large blocks grows
        // first. (Before the rule: a `RefCell` panic inside the global
        // allocator; and the index taken before the allocation was filled
        // after it, over the nested call's entry.)
        arm(nested_large_block);
        let outer = mm.alloc_block(100_000).unwrap();
        assert!(fired());
        (outer, NESTED_BLOCK.with(|n| n.get()).unwrap())
    });
    assert_ne!(outer, nested);
    mm.write(outer, 0, 1u64).unwrap();
    assert_eq!(mm.read::<u64>(nested, 99_992), Ok(0xABCD));
    assert_eq!(mm.read::<u64>(outer, 0), Ok(1));
    assert_eq!(mm.stats().live(), 2);
    mm.free(outer).unwrap();
    mm.free(nested).unwrap();
    assert!(mm.is_consistent());
    drop(mm);
    assert_eq!(net(), before);
}

#[cfg(feature = "allocator-api2")]
#[test]
fn a_collection_while_the_registry_grows() {
    use allocator_api2::alloc::Allocator;

    fn nested_large_collection() {
        MM.with_borrow(|m| {
            let mm = m.as_ref().unwrap();
            let p = mm.allocate(Layout::new::<[u64; 8192]>()).unwrap();
            NESTED_RAW.with(|n| n.set(Some(p.cast())));
        });
    }

    let before = net();
    let layout = Layout::new::<[u64; 8192]>();
    let (mm, (outer, nested)) = with_manager(|mm| {
        // A collection's allocation above every class: the registry of
        // such allocations grows first. (Before the rule: a `RefCell`
        // panic inside the global allocator.)
        arm(nested_large_collection);
        let outer = mm.allocate(layout).unwrap();
        assert!(fired());
        (outer.cast::<u8>(), NESTED_RAW.with(|n| n.get()).unwrap())
    });
    assert_ne!(outer, nested);
    assert_eq!(mm.stats().live(), 2);
    // SAFETY: both allocated above from `mm` with `layout`, freed once.
    unsafe {
        (&mm).deallocate(nested, layout);
        (&mm).deallocate(outer, layout);
    }
    assert_eq!(mm.stats().live(), 0);
    assert!(mm.is_consistent());
    mm.trim();
    drop(mm);
    assert_eq!(net(), before);
}

#[cfg(feature = "std")]
static SHARED: SharedManager = SharedManager::new();

#[cfg(feature = "std")]
thread_local! {
    static NESTED_SHARED: Cell<Option<NonNull<u64>>> = const { Cell::new(None) };
}

#[cfg(feature = "std")]
#[test]
fn a_shared_box_while_the_threads_heap_is_made() {
    fn nested_shared_box() {
        let b = SHARED.alloc(41u64);
        NESTED_SHARED.with(|n| n.set(Some(NonNull::new(SharedBox::into_raw(b)).unwrap())));
    }
    if PASS_THROUGH {
        // No thread heaps: every allocation goes through the central lock,
        // and an allocator that calls the same shared manager there waits
        // for itself (see docs/safety.md, "Re-entrancy").
        return;
    }
    // A new thread, whose first allocation makes its heap: the armed
    // allocation is the heap's. (Before the rule the nested call's heap was
    // overwritten in the table and its box lost from the figures.)
    drop(SHARED.alloc(0u64)); // the manager's state, made here
    let (outer, nested) = std::thread::spawn(|| {
        arm(nested_shared_box);
        let outer = SHARED.alloc(42u64);
        assert!(fired());
        let nested = NESTED_SHARED.with(|n| n.get()).unwrap();
        assert_eq!(SHARED.stats().live(), 2, "both boxes counted");
        (
            SendPtr(SharedBox::into_raw(outer)),
            SendPtr(nested.as_ptr()),
        )
    })
    .join()
    .unwrap();
    // SAFETY: both from `SharedBox::into_raw` of `SHARED`'s boxes, each
    // taken back once.
    let (outer, nested): (SharedBox<'static, u64>, SharedBox<'static, u64>) =
        unsafe { (SharedBox::from_raw(outer.0), SharedBox::from_raw(nested.0)) };
    assert_eq!((*outer, *nested), (42, 41));
    drop((outer, nested));
    assert_eq!(SHARED.stats().live(), 0);
}

/// A raw pointer sent to the joining thread (the box it came from is).
#[cfg(feature = "std")]
struct SendPtr(*mut u64);
// SAFETY: it stands for a `SharedBox<u64>`, which is `Send`.
#[cfg(feature = "std")]
unsafe impl Send for SendPtr {}

/// A store's trim frees its pages while an insert, called from the
/// allocator's `dealloc`, puts a value in the same store: the pages are
/// taken off the store before any is freed. (Before: the loop freed a page
/// the nested value was on — a use after free, found by the third review.)
#[test]
fn an_insert_while_a_store_frees_its_pages() {
    let before = net();
    let (mm, h) = with_manager(|mm| {
        mm.reserve_handles::<u64>(20).unwrap(); // two pages, no value
        arm_free(nested_insert_u64);
        mm.trim();
        assert!(fired_free());
        NESTED_U64.with(|n| n.get()).expect("the nested insert ran")
    });
    assert_eq!(mm.get(h), Ok(&0xABCD));
    assert!(mm.is_consistent());
    drop(mm);
    assert_eq!(net(), before);
}

/// A table grows while a trim, called from the allocator, frees it: the
/// growth looks again. (Before: an overflow in the budget's arithmetic,
/// a panic in debug builds.)
#[test]
fn a_table_grows_while_a_nested_trim_frees_it() {
    if PASS_THROUGH {
        return; // no chunk, no record table
    }
    let before = net();
    let (mm, ()) = with_manager(|mm| {
        // Four empty chunks of the checked 32-byte class: its record table
        // (four places) is full, and the next chunk grows it.
        while mm.stats().classes[2].chunks < 4 {
            let cap = mm.stats().classes[2].capacity;
            mm.reserve_blocks(24, cap + 1).unwrap();
        }
        let cap = mm.stats().classes[2].capacity;
        arm(nested_trim);
        mm.reserve_blocks(24, cap + 1).unwrap();
        assert!(fired());
        assert!(mm.is_consistent());
    });
    drop(mm);
    assert_eq!(net(), before);
}

/// A pool's trim frees the chunk map's storage while a trim, called from
/// the allocator's `dealloc`, walks the same pool: the chunks are off the
/// pool's lists by then. (Before: the nested trim rewrote the marks of the
/// chunks being released, and the outer kept an empty chunk whose blocks
/// were on no list.)
#[test]
fn a_trim_while_a_trim_frees_the_chunk_map() {
    if PASS_THROUGH {
        return; // no chunk, no chunk map
    }
    let before = net();
    let (mm, ()) = with_manager(|mm| {
        drop((0..1000u64).map(|i| mm.alloc(i)).collect::<Vec<_>>());
        arm_free(nested_trim);
        mm.trim();
        assert!(fired_free());
        assert!(mm.is_consistent());
        assert_eq!(
            mm.stats().classes[0].chunks,
            0,
            "every empty chunk released"
        );
    });
    drop(mm);
    assert_eq!(net(), before);
}

#[cfg(feature = "serde")]
#[test]
fn an_insert_while_a_load_adds_a_page() {
    fn nested_insert_u32() {
        MM.with_borrow(|m| {
            m.as_ref().unwrap().insert(777u32);
        });
    }
    let (mm, ()) = with_manager(|mm| {
        // 17 saved slots: the 17th needs the second page, the armed
        // allocation, in which a nested insert takes slot 16 first.
        let slots: Vec<String> = (0..17).map(|i| format!("[{i},1,{i}]")).collect();
        let json = format!("[5,0,[{}]]", slots.join(","));
        mm.reserve_handles::<u32>(16).unwrap();
        arm(nested_insert_u32);
        let r = mm.load_store::<u32, _>(&mut serde_json::Deserializer::from_str(&json));
        assert!(fired());
        // (Before: the saved slot 16 went to index 17, and the saved
        // handle to slot 16 named the nested value with no error.)
        assert!(r.is_err(), "the load says the store changed under it");
        assert!(mm.is_consistent());
        let h = mm
            .load_with(|| serde_json::from_str::<Handle<u32>>("[5,3,1]"))
            .unwrap();
        assert_eq!(mm.get(h), Ok(&3), "the slots loaded before stay right");
    });
    drop(mm);
}
