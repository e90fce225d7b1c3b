//! `fork` when `pthread_atfork` handlers registered before the first shared
//! manager allocate from one (issue 20, item 3).
//!
//! Prepare handlers run in reverse order of registration, so such a prepare
//! handler runs after the manager's own, which has taken every central
//! lock (and such parent and child handlers run before the manager's, which
//! release them): a large value, a checked block or a `Global` allocation
//! above its largest class in that handler used to spin forever on a lock
//! held by its own thread, and `fork` never returned. The allocations must
//! go through (the forking thread owns every lock then), and the child must
//! find the locks free.
//!
//! Its own test binary: the handler must be registered before any shared
//! manager of the process makes its state, and stays registered for every
//! later `fork` of the process.
#![cfg(all(unix, feature = "std"))]

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use memory_mgr::{Global, SharedManager};

extern "C" {
    fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> i32;
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(code: i32) -> !;
    fn alarm(seconds: u32) -> u32;
}

static MM: SharedManager = SharedManager::new();
/// Not the program's global allocator: called directly, for its own locks
/// (`sync::GLOBAL_LOCKS`).
static GLOBAL: Global = Global::new();

/// Above `Global`'s largest class (64 KiB): its central heap, under its lock.
const GLOBAL_LARGE: Layout = match Layout::from_size_align(128 << 10, 8) {
    Ok(l) => l,
    Err(_) => panic!(),
};

/// Whether the handlers allocate (only once the managers have their state:
/// the first would register the manager's handler, and glibc's list of
/// handlers is locked while they run).
static ARMED: AtomicBool = AtomicBool::new(false);
/// Runs of the prepare handler that allocated and read back what they
/// wrote.
static PREPARED: AtomicU32 = AtomicU32::new(0);
/// The same for the parent handler.
static PARENTED: AtomicU32 = AtomicU32::new(0);
/// The same for the child handler (in the child's copy: the child checks).
static CHILDED: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" fn allocating_prepare() {
    allocate_in_handler(&PREPARED);
}

unsafe extern "C" fn allocating_parent() {
    allocate_in_handler(&PARENTED);
}

unsafe extern "C" fn allocating_child() {
    // SAFETY: in the child, before anything can hang (the first child
    // handler to run: registered before the manager's); `alarm` ends a hang
    // as a failure instead of leaving a spinning orphan behind the test.
    unsafe { alarm(10) };
    allocate_in_handler(&CHILDED);
}

/// What the earlier-registered handlers do: allocate and free a value
/// larger than the largest class (the central heap), a checked block (the
/// central heap), and a large `Global` allocation, then count a run in
/// `done`. Never panics (it is called from C): a failure is only not
/// counted.
fn allocate_in_handler(done: &AtomicU32) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    let big = MM.alloc([5u8; 4096]);
    let mut ok = big[4095] == 5;
    drop(big);
    match MM.alloc_block(100) {
        Ok(block) => ok &= MM.free(block).is_ok(),
        Err(_) => ok = false,
    }
    // SAFETY: a non-zero layout, freed with the same one.
    unsafe {
        let p = GLOBAL.alloc(GLOBAL_LARGE);
        if p.is_null() {
            ok = false;
        } else {
            p.write(9);
            ok &= p.read() == 9;
            GLOBAL.dealloc(p, GLOBAL_LARGE);
        }
    }
    if ok {
        done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Forks; the child allocates from both managers (central heaps and
/// pools) and exits 0 if all went well. Returns the child's wait status.
fn fork_and_wait() -> i32 {
    // SAFETY: the child only allocates through the managers (whose fork
    // handler left their locks free) and leaves with `_exit`.
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: in the child; `alarm` ends a hang as a failure.
        unsafe { alarm(10) };
        let big = MM.alloc([2u8; 4096]);
        let small = MM.alloc(3u64);
        // The child handler ran in this process, before `fork` returned.
        let mut ok = CHILDED.load(Ordering::Relaxed) == 1;
        ok &= big[4095] == 2 && *small == 3;
        drop((big, small));
        match MM.alloc_block(100) {
            Ok(block) => ok &= MM.free(block).is_ok(),
            Err(_) => ok = false,
        }
        // SAFETY: a non-zero layout, freed with the same one.
        unsafe {
            let p = GLOBAL.alloc(GLOBAL_LARGE);
            ok &= !p.is_null();
            if !p.is_null() {
                GLOBAL.dealloc(p, GLOBAL_LARGE);
            }
        }
        // SAFETY: leaves the child without running the parent's
        // destructors.
        unsafe { _exit(if ok { 0 } else { 1 }) };
    }
    let mut status = -1;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { waitpid(pid, &mut status, 0) }, pid);
    status
}

#[test]
#[cfg_attr(miri, ignore)] // Miri cannot fork
fn fork_returns_when_an_earlier_prepare_handler_allocates() {
    // Registered before any shared manager has made its state (the first
    // one registers the manager's handlers): the prepare handler runs after
    // the manager's, the parent and child handlers before the manager's.
    // SAFETY: `extern "C"` functions that do not unwind.
    let registered = unsafe {
        pthread_atfork(
            Some(allocating_prepare),
            Some(allocating_parent),
            Some(allocating_child),
        )
    };
    assert_eq!(registered, 0);
    // The managers make their state (and the first registers its handler).
    drop(MM.alloc([1u8; 4096]));
    // SAFETY: a non-zero layout, freed with the same one.
    unsafe {
        let p = GLOBAL.alloc(GLOBAL_LARGE);
        assert!(!p.is_null());
        GLOBAL.dealloc(p, GLOBAL_LARGE);
    }
    ARMED.store(true, Ordering::Relaxed);

    // The forks run on a helper thread, so that a hang fails the test
    // instead of hanging it: a guard, not a timing assertion.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let statuses: Vec<i32> = (0..3).map(|_| fork_and_wait()).collect();
        let _ = tx.send(statuses);
    });
    let statuses = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("fork did not return in 20 s: a handler's allocation deadlocked");
    assert_eq!(statuses, [0; 3], "a child failed or hung (wait statuses)");
    assert_eq!(PREPARED.load(Ordering::Relaxed), 3);
    assert_eq!(PARENTED.load(Ordering::Relaxed), 3);
    // After the forks the parent's locks are free again.
    drop(MM.alloc([4u8; 4096]));
    let block = MM.alloc_block(100).unwrap();
    MM.free(block).unwrap();
}
