//! Thread slots: a small dense number per live thread, handed out by a
//! process-wide registry and given back when the thread exits, so that a
//! shared manager can keep a heap per slot in a flat table.
//!
//! When a thread exits, its `Exit` destructor first runs the shared
//! managers' exit hook (`shared/exit.rs`: each heap at the slot collected,
//! trimmed, and freed if left empty), still holding the slot, then gives
//! the slot back.
//!
//! Ownership is the whole protocol: the thread that holds slot `t` is the
//! only one that touches the `Cell`s of heap `t` of every shared manager. A
//! slot is taken with an `Acquire` read-modify-write and given back with a
//! `Release` one, so everything the previous holder did to heap `t` happens
//! before the next holder (or a `trim` that claims the slot for a moment)
//! touches it. Thread-local storage holds only the number — no pointer that
//! could dangle when a manager is dropped — in a `Cell` without a
//! destructor, readable at any time, even while the thread's other
//! thread-locals are being destroyed.

use core::cell::Cell;
use core::sync::atomic::Ordering;

#[cfg(not(loom))]
use core::sync::atomic::AtomicU64;
#[cfg(loom)]
use loom::sync::atomic::AtomicU64;

/// Most threads that hold a slot at once; a thread beyond them (or one
/// whose slot was given back as it exits) uses the shared manager's locked
/// central heap.
pub(crate) const MAX_THREADS: usize = 1024;

/// The thread has not asked for a slot yet.
pub(crate) const UNSET: u32 = u32::MAX;
/// The thread has none and gets none: its slot was given back as it exits
/// (its thread-locals are being destroyed).
pub(crate) const NONE: u32 = u32::MAX - 1;
/// The thread has none: every slot was taken when it last asked. Its slow
/// path asks again (a slot may have come free since), so a thread born
/// while every slot was taken gets one once another thread exits. (Not
/// `pool::UNOWNED`, which a pool no thread owns has: a thread must never
/// see itself as the owner of those.)
pub(crate) const FULL: u32 = u32::MAX - 3;

/// Which slots are taken: bit `t % 64` of word `t / 64`.
pub(crate) struct Registry {
    words: [AtomicU64; MAX_THREADS / 64],
}

impl Registry {
    /// No slot taken.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Registry {
            words: [const { AtomicU64::new(0) }; MAX_THREADS / 64],
        }
    }

    /// No slot taken.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Registry {
            words: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Takes the lowest free slot (so slots stay dense), or `None` if all
    /// are taken.
    pub(crate) fn acquire(&self) -> Option<u32> {
        for (i, word) in self.words.iter().enumerate() {
            // `Relaxed`: a guess for the CAS, which orders.
            let mut v = word.load(Ordering::Relaxed);
            while v != u64::MAX {
                let bit = (!v).trailing_zeros();
                // `Acquire` on success: pairs with the `Release` of the
                // `release` that freed this bit (other threads' CASes on the
                // word since are read-modify-writes, which continue its
                // release sequence), so the previous holder's writes to the
                // slot's heaps happen before ours. `Relaxed` on failure: the
                // value is only the next guess.
                match word.compare_exchange_weak(
                    v,
                    v | 1 << bit,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(i as u32 * 64 + bit),
                    Err(now) => v = now,
                }
            }
        }
        None
    }

    /// Takes slot `t` if it is free (for a `trim` of the heaps of exited
    /// threads): `true` if the caller now holds it.
    pub(crate) fn claim(&self, t: u32) -> bool {
        let bit = 1u64 << (t % 64);
        // `Acquire`, as in `acquire`; when the bit was already set the
        // read-modify-write changes nothing and the caller gets nothing.
        self.words[t as usize / 64].fetch_or(bit, Ordering::Acquire) & bit == 0
    }

    /// Whether slot `t` is free now (a loom model waits with it: a load,
    /// which loom lets a waiting thread spin on).
    #[cfg(all(test, loom))]
    fn is_free(&self, t: u32) -> bool {
        self.words[t as usize / 64].load(Ordering::Relaxed) & (1 << (t % 64)) == 0
    }

    /// Gives slot `t` back.
    pub(crate) fn release(&self, t: u32) {
        let bit = 1u64 << (t % 64);
        // `Release`: every write the holder made to the slot's heaps happens
        // before the next `Acquire` that takes the bit.
        let old = self.words[t as usize / 64].fetch_and(!bit, Ordering::Release);
        debug_assert!(old & bit != 0, "thread slot {t} released twice");
    }
}

#[cfg(all(feature = "std", not(loom)))]
mod tls {
    use super::*;

    /// The process-wide registry.
    pub(crate) static REGISTRY: Registry = Registry::new();

    std::thread_local! {
        /// This thread's slot, [`UNSET`] or [`NONE`]. No destructor, so it is
        /// readable while the thread's other thread-locals are destroyed.
        static SLOT: Cell<u32> = const { Cell::new(UNSET) };
        /// The slot as an index into a table of `MAX_THREADS + 1` entries:
        /// the slot if the thread holds one, else `MAX_THREADS` (the last
        /// entry, never written: null). Always at most `MAX_THREADS`, so a
        /// shared manager's allocation finds its thread heap with one load
        /// and no bounds test (see `SharedManager::my_pools`). Written with
        /// `SLOT`, by `set` only.
        static HEAP_INDEX: Cell<u32> = const { Cell::new(MAX_THREADS as u32) };
        /// Gives the slot back when the thread exits.
        static EXIT: Exit = const { Exit };
    }

    /// Its destructor runs when the thread exits.
    struct Exit;

    /// Sets this thread's slot (and [`HEAP_INDEX`] with it).
    fn set(t: u32) {
        SLOT.with(|s| s.set(t));
        let index = if (t as usize) < MAX_THREADS {
            t
        } else {
            MAX_THREADS as u32
        };
        HEAP_INDEX.with(|i| i.set(index));
    }

    /// This thread's slot as an index into a table of `MAX_THREADS + 1`
    /// entries: the slot, or `MAX_THREADS` if it holds none. Never more
    /// than `MAX_THREADS`.
    #[inline(always)]
    pub(crate) fn heap_index() -> usize {
        HEAP_INDEX.with(Cell::get) as usize
    }

    impl Drop for Exit {
        fn drop(&mut self) {
            let t = SLOT.with(Cell::get);
            if (t as usize) < MAX_THREADS {
                // Still holding the slot: each shared manager's heap here is
                // collected, trimmed, and freed if left empty (a free on
                // this thread meanwhile is still a local one).
                if let Some(hook) = ON_EXIT.get() {
                    hook(t);
                }
                set(NONE);
                REGISTRY.release(t);
            } else {
                set(NONE);
            }
        }
    }

    /// What a thread's exit runs while it still holds its slot: the shared
    /// managers' exit hook (`shared::exit::collect`), which `shared`
    /// registers when it makes its first state — so that this module
    /// imports nothing of the modules that use it.
    static ON_EXIT: std::sync::OnceLock<fn(u32)> = std::sync::OnceLock::new();

    /// Registers the exit hook (once; later calls change nothing). Never
    /// allocates.
    pub(crate) fn set_exit_hook(hook: fn(u32)) {
        let _ = ON_EXIT.set(hook);
    }

    /// This thread's slot, [`UNSET`] if it has none yet, or [`NONE`].
    #[inline(always)]
    pub(crate) fn current() -> u32 {
        SLOT.with(Cell::get)
    }

    /// An identity of the calling thread, never 0: the address of its
    /// [`SLOT`]. Distinct among the threads alive at once (each has its
    /// own thread-locals, at its own address, for as long as it lives); an
    /// exited thread's may be reused by a later one. Reading it allocates
    /// nothing and registers no destructor (`SLOT` is const-initialised
    /// and has none), as every allocation's read of the slot; it is
    /// readable at any time, in a `fork` handler too. (For `sync::fork`:
    /// which thread holds the central locks for a `fork`.)
    #[cfg(unix)]
    #[inline]
    pub(crate) fn id() -> usize {
        SLOT.with(|s| core::ptr::from_ref(s).addr())
    }

    /// This thread's slot, taken now if it has none yet (or found every
    /// slot taken when it last asked: [`FULL`]); [`FULL`] if every slot is
    /// taken, [`NONE`] if the thread is exiting. Never allocates itself; the
    /// registration of the exit hook may (on some platforms `std` keeps a
    /// list), and such an allocation by a global allocator finds the slot
    /// already set, so it never comes back here.
    #[cold]
    #[inline(never)]
    pub(crate) fn register() -> u32 {
        let t = current();
        if t != UNSET && t != FULL {
            return t;
        }
        let Some(t) = REGISTRY.acquire() else {
            set(FULL);
            return FULL;
        };
        set(t);
        if EXIT.try_with(|_| ()).is_err() {
            // The thread's thread-locals are being destroyed: no exit hook
            // can be registered, so the slot goes back now.
            set(NONE);
            REGISTRY.release(t);
            return NONE;
        }
        t
    }
}

#[cfg(all(unix, feature = "std", not(loom)))]
pub(crate) use tls::id;
#[cfg(all(feature = "std", not(loom)))]
pub(crate) use tls::{current, heap_index, register, set_exit_hook, REGISTRY};

#[cfg(all(test, feature = "std", not(loom)))]
mod tests {
    use super::*;

    /// A thread that found every slot taken asks again on its slow path,
    /// and gets one once a slot is free (it used to stay slotless, on the
    /// central heap, for life).
    #[test]
    fn a_thread_that_found_every_slot_taken_gets_one_once_one_is_free() {
        std::thread::spawn(|| {
            let mut taken = alloc::vec::Vec::new();
            while let Some(t) = REGISTRY.acquire() {
                taken.push(t);
            }
            assert_eq!(register(), FULL);
            assert_eq!(current(), FULL);
            assert!(FULL as usize >= MAX_THREADS && FULL != crate::pool::UNOWNED);
            REGISTRY.release(taken.pop().expect("some slot was free"));
            let mine = register();
            assert!((mine as usize) < MAX_THREADS, "a slot now");
            assert_eq!(current(), mine);
            for t in taken {
                REGISTRY.release(t);
            }
        })
        .join()
        .unwrap();
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::Inbound;
    use alloc::boxed::Box;
    use core::ptr::NonNull;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    /// The owner of slot 0 writes its heap and exits (gives the slot back)
    /// while another thread frees a block into the heap's remote-free list;
    /// a thread started before either, waiting for slot 0, takes it over:
    /// loom checks that it sees the old owner's heap writes (the registry's
    /// `Release`/`Acquire`, not the thread start: it was spawned first) and
    /// the freeing thread's block payload (the list's), and that the block
    /// is taken exactly once.
    #[test]
    fn the_next_holder_of_a_slot_adopts_the_heap_and_its_remote_frees() {
        #[repr(C)]
        struct Node {
            link: *mut u8,
            payload: UnsafeCell<u64>,
        }
        struct Sent(NonNull<u8>);
        // SAFETY (test): the node is handed from one thread to the next.
        unsafe impl Send for Sent {}
        loom::model(|| {
            let reg = Arc::new(Registry::new());
            // Heap 0: owner-only state, and its remote-free list.
            let heap = Arc::new((UnsafeCell::new(0u64), Inbound::new()));
            assert_eq!(reg.acquire(), Some(0)); // this thread owns heap 0
            let next = {
                let (reg, heap) = (reg.clone(), heap.clone());
                loom::thread::spawn(move || {
                    while !reg.is_free(0) {
                        loom::thread::yield_now();
                    }
                    assert!(reg.claim(0));
                    // SAFETY (test): loom checks the old owner's write
                    // happens before this read.
                    let seen = heap.0.with(|v| unsafe { *v });
                    let got = NonNull::new(heap.1.take()).map(|n| {
                        // SAFETY (test): taken from the list: ours now.
                        let node = unsafe { Box::from_raw(n.cast::<Node>().as_ptr()) };
                        // SAFETY (test): loom checks the push published it.
                        node.payload.with(|p| unsafe { *p })
                    });
                    reg.release(0);
                    (seen, got)
                })
            };
            let node = Sent(
                NonNull::from(Box::leak(Box::new(Node {
                    link: core::ptr::null_mut(),
                    payload: UnsafeCell::new(0),
                })))
                .cast(),
            );
            let freer = {
                let heap = heap.clone();
                loom::thread::spawn(move || {
                    let n = node;
                    // SAFETY (test): the node is ours until pushed.
                    unsafe {
                        (*n.0.cast::<Node>().as_ptr()).payload.with_mut(|p| *p = 7);
                        heap.1.push(n.0);
                    }
                })
            };
            // The owner's last write to its heap, then its exit.
            // SAFETY (test): this thread holds slot 0.
            heap.0.with_mut(|v| unsafe { *v = 1 });
            reg.release(0);
            let (seen, got) = next.join().unwrap();
            freer.join().unwrap();
            assert_eq!(seen, 1);
            let rest = NonNull::new(heap.1.take()).map(|n| {
                // SAFETY (test): as above.
                let node = unsafe { Box::from_raw(n.cast::<Node>().as_ptr()) };
                // SAFETY (test): every thread is joined.
                node.payload.with(|p| unsafe { *p })
            });
            assert_eq!(got.xor(rest), Some(7)); // taken exactly once
        });
    }

    /// A `trim` claims slot 0 while a new thread takes the lowest free
    /// slot: they never hold slot 0 at once (loom checks their accesses to
    /// heap 0 never race).
    #[test]
    fn a_trim_claim_and_a_new_thread_never_share_a_slot() {
        loom::model(|| {
            let reg = Arc::new(Registry::new());
            let heaps = Arc::new([UnsafeCell::new(0u32), UnsafeCell::new(0u32)]);
            let starter = {
                let (reg, heaps) = (reg.clone(), heaps.clone());
                loom::thread::spawn(move || {
                    let t = reg.acquire().unwrap();
                    // SAFETY (test): loom checks this access is exclusive.
                    heaps[t as usize].with_mut(|h| unsafe { *h += 1 });
                    reg.release(t);
                })
            };
            if reg.claim(0) {
                // SAFETY (test): as above.
                heaps[0].with_mut(|h| unsafe { *h += 10 });
                reg.release(0);
            }
            starter.join().unwrap();
        });
    }

    /// Two threads take a slot, touch the heap state it guards, and give it
    /// back; they end up with the same slot only one after the other, and
    /// loom checks that their accesses to the state never race.
    #[test]
    fn a_slot_passes_its_heap_from_one_holder_to_the_next() {
        loom::model(|| {
            let reg = Arc::new(Registry::new());
            let heaps = Arc::new([UnsafeCell::new(0u32), UnsafeCell::new(0u32)]);
            let run = |reg: Arc<Registry>, heaps: Arc<[UnsafeCell<u32>; 2]>| {
                move || {
                    let t = reg.acquire().unwrap();
                    // SAFETY (test): loom checks this access is exclusive.
                    heaps[t as usize].with_mut(|h| unsafe { *h += 1 });
                    reg.release(t);
                }
            };
            let a = loom::thread::spawn(run(reg.clone(), heaps.clone()));
            run(reg.clone(), heaps.clone())();
            a.join().unwrap();
            // SAFETY (test): both threads are joined; no access is left.
            let total: u32 = heaps.iter().map(|h| h.with(|v| unsafe { *v })).sum();
            assert_eq!(total, 2);
            // A trim claims a slot nobody holds, and not one somebody does.
            assert!(reg.claim(0));
            assert!(!reg.claim(0));
            reg.release(0);
        });
    }
}
