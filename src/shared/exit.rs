//! Memory that comes back by itself: when a thread exits, each shared
//! manager's heap at its slot takes its remote frees and gives its empty
//! chunks back, and a heap left with no chunk is freed itself.
//!
//! **The list of states.** Every shared manager's state is on a
//! process-wide, intrusive, doubly linked list ([`Link`], one in each
//! state), under [`STATES_LOCK`]: [`State::create`](super::State::create)
//! links it when made, [`destroy`](super::state::destroy) (and a manager's
//! drop, before it touches a heap) unlinks it. Intrusive, with a static
//! lock: registering allocates nothing, so `Global`'s state registers
//! while it is being made by its own first allocation.
//!
//! **The exit hook** ([`collect`], called by `thread.rs`'s `Exit` before the
//! slot goes back): under the lock, for each state on the list that has a
//! heap at slot `t` — the exiting thread still holds `t`, so the heap is
//! its own — collect and trim it (`State::trim_heap`), then free it if it
//! has no chunk left (`State::free_heap_if_empty`). A heap with live blocks
//! stays for the next holder of the slot, as before. The newest states are
//! first on the list, so `Global` (made by the program's first allocation)
//! is usually last: the other managers' chunks go back through the global
//! allocator into `Global`'s heap `t` before it is collected itself.
//!
//! **While the lock is held, only deallocation.** A trim and the free of a
//! heap call out only to give memory back to the heap's source (the system
//! allocator, or the global allocator). No deallocation path makes a
//! shared manager's state (a state is made only by an allocation, through
//! `SharedManager::state`) or unlinks one (only a manager's drop and
//! `destroy` do), so none takes the lock again on this thread. (A remote
//! free into `Global` during the hook may make `Global`'s heap `t` again
//! from the system allocator — a heap, not a state; it stays for the next
//! holder of the slot.) The lock is taken after any central lock and
//! before `Global`'s (see [`STATES_LOCK`]), and is in `fork`'s handlers.
//!
//! **Why a `&mut` operation takes the lock too.** `&mut SharedManager`
//! used to mean that no other thread touches any heap: every thread that
//! used the manager was joined. A scoped thread is counted finished when
//! its closure returns, before its thread-local destructors run — so its
//! exit hook may still be trimming its heap. `reset`, `is_consistent` and
//! the drop's collection hold the lock around their loops over the
//! thread heaps (and the drop unlinks the state first), so they and the
//! hook never touch a heap at once.

use core::cell::Cell;
use core::ptr;

use crate::sync::{RawLockGuard, Readers, STATES_LOCK};
use crate::thread::MAX_THREADS;

/// A state's place on the list of states, and what the exit hook and a
/// `fork` child need of it without knowing its class table.
pub(super) struct Link {
    /// The neighbours on the list; read and written only under
    /// [`STATES_LOCK`].
    prev: Cell<*const Link>,
    next: Cell<*const Link>,
    /// Whether the link is on the list (under the lock).
    linked: Cell<bool>,
    /// The state this link is in.
    state: *const (),
    /// Collects the state's heap at a slot: `State::<C>::collect_slot`.
    on_exit: unsafe fn(*const (), u32),
    /// The state's readers of `heaps` (see [`Readers`]).
    pub(super) readers: Readers,
}

impl Link {
    /// A link, not on the list yet, for the state at `state`, whose heap at
    /// a slot `on_exit` collects.
    pub(super) const fn new(state: *const (), on_exit: unsafe fn(*const (), u32)) -> Self {
        Link {
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            linked: Cell::new(false),
            state,
            on_exit,
            readers: Readers::new(),
        }
    }
}

/// The first link on the list (the newest state), or null; read and
/// written only under [`STATES_LOCK`].
struct Head(Cell<*const Link>);

// SAFETY: the cell is read and written only under `STATES_LOCK` (whose
// `Acquire`/`Release` order the accesses), so never by two threads at once.
unsafe impl Sync for Head {}

static HEAD: Head = Head(Cell::new(ptr::null()));

/// Takes [`STATES_LOCK`].
fn lock() -> RawLockGuard<'static> {
    STATES_LOCK.lock()
}

/// Puts `link` first on the list.
///
/// # Safety
///
/// `link` must stay at its address, alive, until [`unlink`] takes it off.
pub(super) unsafe fn link(link: &Link) {
    // The thread module runs `collect` at each thread's exit from now on.
    crate::thread::set_exit_hook(collect);
    let _locked = lock();
    debug_assert!(!link.linked.get());
    let head = HEAD.0.get();
    link.prev.set(ptr::null());
    link.next.set(head);
    // SAFETY: a link on the list is alive until unlinked (`link`'s
    // contract), which takes this lock; we hold it.
    if let Some(h) = unsafe { head.as_ref() } {
        h.prev.set(link);
    }
    HEAD.0.set(link);
    link.linked.set(true);
}

/// Takes `link` off the list, if it is on it. After it returns, no exit
/// hook is using the state (a hook holds the lock for the whole of its
/// collection) or will.
pub(super) fn unlink(link: &Link) {
    let _locked = lock();
    if !link.linked.replace(false) {
        return;
    }
    let (prev, next) = (link.prev.get(), link.next.get());
    // SAFETY: the neighbours are on the list, alive (`link`'s contract),
    // and we hold the lock.
    unsafe {
        match prev.as_ref() {
            Some(p) => p.next.set(next),
            None => HEAD.0.set(next),
        }
        if let Some(n) = next.as_ref() {
            n.prev.set(prev);
        }
    }
}

/// Holds [`STATES_LOCK`]: no exit hook is collecting any heap meanwhile
/// (for a `&mut` operation's loop over the thread heaps).
pub(super) fn exclude_exits() -> RawLockGuard<'static> {
    lock()
}

/// The exit hook: the calling thread, which holds slot `t` and is exiting,
/// collects and trims its heap in every shared manager, and frees the
/// heaps left empty. Called by `thread.rs` before the slot goes back.
pub(crate) fn collect(t: u32) {
    if t as usize >= MAX_THREADS {
        return;
    }
    let _locked = lock();
    let mut at = HEAD.0.get();
    // SAFETY: every link on the list is alive and stays on it while we hold
    // the lock (`link`'s contract; unlinking takes the lock).
    while let Some(l) = unsafe { at.as_ref() } {
        // SAFETY: `on_exit` is `State::<C>::collect_slot` of the state `l`
        // is in (`Link::new`'s caller), alive while linked; this thread
        // holds slot `t`.
        unsafe { (l.on_exit)(l.state, t) };
        at = l.next.get();
    }
}

/// In a `fork` child (its only thread holding the lock, from the prepare
/// handler): forgets the readers of every state, which were on threads the
/// child does not have.
#[cfg(unix)]
pub(super) fn forget_readers_in_child() {
    let mut at = HEAD.0.get();
    // SAFETY: as in `collect`: the prepare handler took the lock for this
    // thread, and the child has no other.
    while let Some(l) = unsafe { at.as_ref() } {
        l.readers.forget_all();
        at = l.next.get();
    }
}
