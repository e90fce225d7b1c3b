//! `fork` in a program with several threads: a child has only the thread
//! that forked, so a central lock another thread held at that moment would
//! stay locked forever in the child. A `pthread_atfork` handler takes every
//! central lock before the fork (so none is held in the middle of an
//! operation) and releases them after it, in the parent and in the child.
//! The locks are static (`sync::CENTRAL_LOCKS`, `sync::STATES_LOCK` — the
//! list of states the exit hook walks, see `exit.rs` —
//! `sync::GLOBAL_LOCKS`), so the handler never touches freed memory, and
//! they are taken in the lock order, `Global`'s last: a
//! thread holding another manager's lock may go on to take `Global`'s (its
//! central heap allocates through the global allocator), never the other
//! way round. The other threads' heaps stay in the child as heaps of exited
//! threads (their slots stay taken).
//!
//! The program's own handlers run on the forking thread while the locks are
//! held: the prepare handlers registered before this one (prepare handlers
//! run in reverse order of registration) and the parent and child handlers
//! registered before it (those run in order). One that allocates from a
//! shared manager — a large value, a checked block, a collection, anything
//! under `Global` that reaches its central heap — would wait forever for a
//! lock its own thread holds. So while the locks are held the forking
//! thread goes through them without taking them (`sync::fork`, where the
//! argument is: no other thread can be in a critical section then, and the
//! forking thread's own run one at a time).
//! Test: tests/fork_prepare.rs.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::sync;

/// Whether the handler is installed.
static INSTALLED: AtomicBool = AtomicBool::new(false);

extern "C" {
    fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> core::ffi::c_int;
}

/// Installs the handler (once per process, when the first shared
/// manager makes its state).
pub(super) fn install() {
    // `Relaxed`: a hint; the exchange below decides.
    if INSTALLED.load(Ordering::Relaxed) {
        return;
    }
    // `AcqRel`: one thread installs it.
    if INSTALLED
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
    {
        // SAFETY: three functions that only take and release static
        // locks and store to a static atomic.
        unsafe { pthread_atfork(Some(prepare), Some(release), Some(child)) };
    }
}

/// Before `fork`: takes every central lock, `Global`'s last, and lets
/// this thread through them until `release`.
unsafe extern "C" fn prepare() {
    sync::fork::take_all();
}

/// After `fork`, in the child (whose only thread is the one that ran
/// `prepare`): forgets the readers of the states' thread heaps (they were
/// on other threads: a thread of the child freeing its heap at exit would
/// wait for them forever), then releases the locks.
unsafe extern "C" fn child() {
    super::exit::forget_readers_in_child();
    // SAFETY: as in `release`.
    unsafe { release() };
}

/// After `fork`, in the parent (and the child, through `child`): releases
/// them.
unsafe extern "C" fn release() {
    // SAFETY: `prepare` took them on this thread: the C library runs
    // the parent or child handlers on the thread that ran the prepare
    // handlers, after them, and keeps its list of handlers locked from
    // the first to the last (glibc, musl), so a handler installed by
    // another thread meanwhile is not run half.
    unsafe { sync::fork::release_all() };
}
