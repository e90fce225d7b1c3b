//! The few atomics of the core: counters that another thread may read, the
//! remote-free list a pool's owner collects, and a small lock.
//!
//! A `MemoryManager` is used by one thread at a time and pays nothing here:
//! a [`Counter`] is a `Cell<usize>` that another thread may read without a
//! data race (a `Relaxed` load and store compile to the same `mov` as a
//! `Cell`'s), an empty [`Inbound`] list is looked at only on a pool's slow
//! path, and a [`RawLock`] is taken only by the shared manager. Each atomic's
//! ordering is argued where it is used; loom models (`cargo test --lib` with
//! `RUSTFLAGS="--cfg loom"`, see `scripts/loom.sh`) check the protocols where
//! threads meet: [`Inbound`] and [`Readers`] (a heap freed at thread exit
//! against a `stats` reading it) here, the thread registry in `thread.rs`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr};

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering};

/// A count written by one thread (the owner of the structure it is in) and
/// read by any: `get` and `set` are `Relaxed` atomic accesses, never a
/// read-modify-write, so the owner's `+= 1` costs what a `Cell`'s does.
/// A reader on another thread sees some value the count had (no torn
/// read), not necessarily the latest; that is all the statistics promise.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicUsize);

impl Counter {
    /// A counter at `v`.
    pub(crate) const fn new(v: usize) -> Self {
        Counter(AtomicUsize::new(v))
    }

    /// The count. `Relaxed`: nothing else is read through it.
    #[inline(always)]
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the count. Only the owner writes, so a load then a store loses
    /// no update. `Relaxed`: it publishes nothing but itself.
    #[inline(always)]
    pub(crate) fn set(&self, v: usize) {
        self.0.store(v, Ordering::Relaxed)
    }

    /// Sets the count and returns the old one (owner only, as `set`).
    #[inline(always)]
    pub(crate) fn replace(&self, v: usize) -> usize {
        let old = self.get();
        self.set(v);
        old
    }
}

/// A pointer written by one thread (the owner of the structure it is in)
/// and read by any, as [`Counter`] is a count: `Relaxed` atomic loads and
/// stores, which cost what a `Cell`'s do. A reader on another thread sees
/// some value the pointer had (no torn read), not necessarily the latest.
/// (`core`'s atomic under loom too, as `Counter`'s: a statistic, not a
/// protocol a model checks.)
#[derive(Debug)]
pub(crate) struct RelaxedPtr<T>(core::sync::atomic::AtomicPtr<T>);

impl<T> RelaxedPtr<T> {
    /// A pointer cell holding `p`.
    pub(crate) const fn new(p: *mut T) -> Self {
        RelaxedPtr(core::sync::atomic::AtomicPtr::new(p))
    }

    /// The pointer. `Relaxed`: nothing is read through it by another
    /// thread; the owner reads its own writes.
    #[inline(always)]
    pub(crate) fn get(&self) -> *mut T {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the pointer (owner only). `Relaxed`: it publishes nothing but
    /// itself.
    #[inline(always)]
    pub(crate) fn set(&self, p: *mut T) {
        self.0.store(p, Ordering::Relaxed)
    }
}

/// Blocks freed by threads other than a pool's owner, waiting for the
/// owner: a stack pushed by any thread with one compare-and-swap and taken
/// whole by the owner with one swap (sharded-slab's `TransferStack`,
/// mimalloc's `thread_free`). Each node's first word is its link.
///
/// Every take takes the whole list, never one node: so the ABA problem of a
/// lock-free pop cannot arise — a node a pusher read as the head may be
/// taken and even pushed again meanwhile, and the pusher's compare-and-swap
/// then fails or links to a head that is on the list. The owner takes; so
/// may a shared manager's `trim` on another thread (under the manager's
/// central lock), which pushes back what it does not keep as one chain
/// ([`push_chain`](Self::push_chain)): two takers each get a disjoint part
/// of what was pushed, and nothing is taken twice.
#[derive(Debug)]
pub(crate) struct Inbound {
    head: AtomicPtr<u8>,
}

impl Inbound {
    /// An empty list.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Inbound {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// An empty list.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Inbound {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Pushes `node`.
    ///
    /// # Safety
    ///
    /// `node` must be valid for writes of a pointer at its start, aligned
    /// for one, and be written by no one else until the owner takes it.
    #[inline]
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) unsafe fn push(&self, node: NonNull<u8>) {
        // `Relaxed`: the value is only a guess at the head for the CAS below.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the node is ours to write (caller).
            unsafe { node.cast::<*mut u8>().write(head) };
            // `Release` on success: the link just written (and everything the
            // freeing thread did with the block before, such as dropping the
            // value in it) happens before the owner's `Acquire` swap in
            // `take`, so the owner reads the link and reuses the block only
            // after them. `Relaxed` on failure: nothing is read through the
            // value but the next attempt's link.
            match self.head.compare_exchange_weak(
                head,
                node.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Pushes the chain `head ..= tail`, already linked through each node's
    /// first word (`tail`'s link is overwritten), with one compare-and-swap.
    ///
    /// # Safety
    ///
    /// As [`push`](Self::push), for every node of the chain; following the
    /// links from `head` must reach `tail`.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) unsafe fn push_chain(&self, head: NonNull<u8>, tail: NonNull<u8>) {
        // `Relaxed`: a guess for the CAS, as in `push`.
        let mut now = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the tail is ours to write (caller).
            unsafe { tail.cast::<*mut u8>().write(now) };
            // `Release` on success: the chain's links (and whatever the
            // pushing thread wrote before) happen before the `Acquire` swap
            // of the next take, as in `push`. `Relaxed` on failure.
            match self.head.compare_exchange_weak(
                now,
                head.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(seen) => now = seen,
            }
        }
    }

    /// Whether the list may hold nodes: a hint, for the owner to skip the
    /// swap. `Relaxed`: a node pushed just after is taken next time.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed).is_null()
    }

    /// Takes every node pushed so far: the head of a null-terminated list
    /// linked through each node's first word, or null. The owner, or a
    /// shared manager's `trim` on another thread (see the type).
    #[inline]
    pub(crate) fn take(&self) -> *mut u8 {
        if self.is_empty() {
            return ptr::null_mut();
        }
        // `Acquire`: pairs with each push's `Release` (the pushes form a
        // release sequence on `head`, each CAS a read-modify-write), so every
        // link of the list taken, and every write a freeing thread made to
        // its block before the push, is visible before the owner follows the
        // links and hands the blocks out again.
        self.head.swap(ptr::null_mut(), Ordering::Acquire)
    }

    /// Forgets the nodes (a reset or a release of the owner's chunks, with
    /// exclusive access: no push can be in flight).
    pub(crate) fn clear(&self) {
        // `Relaxed`: exclusive access, no other thread to order with.
        self.head.store(ptr::null_mut(), Ordering::Relaxed);
    }
}

/// A spin lock (test-and-test-and-set, yielding the thread while it waits):
/// what serialises the shared manager's slow paths that touch a structure
/// of several threads (its central heap: large allocations, checked blocks,
/// collections). Never taken by a `MemoryManager`.
#[derive(Debug)]
#[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
pub(crate) struct RawLock {
    locked: AtomicBool,
}

impl RawLock {
    /// An unlocked lock.
    #[cfg(not(loom))]
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) const fn new() -> Self {
        RawLock {
            locked: AtomicBool::new(false),
        }
    }

    /// An unlocked lock.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        RawLock {
            locked: AtomicBool::new(false),
        }
    }

    /// Takes the lock until the guard is dropped (also by a panic).
    ///
    /// One exception: a thread running `fork`'s handlers while the
    /// manager's own prepare handler holds every central lock on its behalf
    /// (see [`fork`]) goes through without taking it, with a guard that
    /// leaves it held. The fast path — a compare-and-swap that succeeds — is
    /// as before; only a failed one looks at `fork::FORKING`.
    #[inline]
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn lock(&self) -> RawLockGuard<'_> {
        while !self.try_take() {
            #[cfg(all(unix, feature = "std", not(loom)))]
            if fork::held_for_this_thread() {
                return RawLockGuard { lock: None };
            }
            self.wait();
        }
        RawLockGuard { lock: Some(self) }
    }

    /// One attempt to take the lock.
    #[inline(always)]
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    fn try_take(&self) -> bool {
        // `Acquire` on the compare-and-swap that takes it: everything the
        // previous holder did before its `Release` store (the guard's drop)
        // is visible to us. `Relaxed` on failure: it only tells us to wait.
        // (A compare-and-swap rather than a swap: a failed one writes
        // nothing, so the line stays shared while it waits — and loom sees
        // the waiter make no change and lets the holder run.)
        self.locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Waits until the lock looks free (then the caller tries again).
    #[cold]
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    fn wait(&self) {
        #[cfg(loom)]
        yield_now();
        #[cfg(not(loom))]
        {
            let mut spins = 0u32;
            // `Relaxed`: the loads only tell when to retry; the
            // compare-and-swap that follows orders.
            while self.locked.load(Ordering::Relaxed) {
                spins += 1;
                if spins < 64 {
                    core::hint::spin_loop();
                } else {
                    yield_now();
                }
            }
        }
    }
}

impl RawLock {
    /// Takes the lock with no guard (for `fork`'s prepare handler, which
    /// returns holding it). Never goes through as [`lock`](Self::lock) may:
    /// a lock held by anyone, the calling thread included, is waited for.
    #[cfg(all(unix, feature = "std", not(loom)))]
    fn lock_raw(&self) {
        while !self.try_take() {
            self.wait();
        }
    }

    /// Releases a lock taken with [`lock_raw`](Self::lock_raw) (in the
    /// parent after `fork`), or held by a thread that does not exist in a
    /// `fork` child (whose only thread took it in the prepare handler).
    ///
    /// # Safety
    ///
    /// The calling thread must hold the lock (through `lock_raw`).
    #[cfg(all(unix, feature = "std", not(loom)))]
    unsafe fn unlock_raw(&self) {
        // `Release`: as the guard's drop.
        self.locked.store(false, Ordering::Release);
    }
}

/// The central locks of the shared managers: static, so that they are
/// never freed (a `fork` handler takes them all at any moment, see
/// `shared/`). Managers share them round-robin, which is sound because a
/// thread never holds two: a central heap's operations call no other
/// manager — except the global allocator, which is why `Global`'s have an
/// array of their own ([`GLOBAL_LOCKS`]), taken after these. (A global
/// allocator of the program's own built on a non-`Global`
/// `SharedManager` would break that rule: use `Global`.)
#[cfg(all(feature = "std", not(loom)))]
pub(crate) static CENTRAL_LOCKS: [RawLock; 16] = [const { RawLock::new() }; 16];

/// `Global`'s central locks (see [`CENTRAL_LOCKS`]): its operations call
/// only the system allocator.
#[cfg(all(feature = "std", not(loom)))]
pub(crate) static GLOBAL_LOCKS: [RawLock; 4] = [const { RawLock::new() }; 4];

/// The lock of the process-wide list of shared managers' states
/// (`shared/exit.rs`): taken to register and unregister a state, by a
/// thread's exit hook for the whole of its collection, and by a `&mut`
/// operation (`reset`, `is_consistent`, the drop's collection) around its
/// loop over the thread heaps. Static, so that `fork`'s handler can take it
/// (see [`fork`]). Lock order: a central lock of [`CENTRAL_LOCKS`] may be
/// held when it is taken (`Global`'s state is made, and registered, by its
/// first allocation, which may come from another manager's central heap);
/// while it is held only `Global`'s locks ([`GLOBAL_LOCKS`]) may be taken
/// (an exit hook's deallocations through the global allocator).
#[cfg(all(feature = "std", not(loom)))]
pub(crate) static STATES_LOCK: RawLock = RawLock::new();

/// The lock of the table of `Global`'s segments (`segments.rs`): every
/// access to the table is under it. Lock order: innermost — it may be
/// taken with any other lock held (a central heap's chunk is allocated
/// under its central lock), and nothing is taken, and nothing allocates,
/// while it is held (the system calls made under it do not allocate).
/// Static, so that `fork`'s handler can take it, last (see [`fork`]).
#[cfg(all(feature = "std", not(loom)))]
pub(crate) static SEGMENTS_LOCK: RawLock = RawLock::new();

/// A central lock for a new shared manager (`global`: for `Global`).
#[cfg(all(feature = "std", not(loom)))]
pub(crate) fn central_lock(global: bool) -> &'static RawLock {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // `Relaxed`: only spreads managers over the locks.
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    if global {
        &GLOBAL_LOCKS[n % GLOBAL_LOCKS.len()]
    } else {
        &CENTRAL_LOCKS[n % CENTRAL_LOCKS.len()]
    }
}

/// The central locks across `fork` (the `pthread_atfork` handlers are in
/// `shared/`): [`take_all`](fork::take_all) before it,
/// [`release_all`](fork::release_all) after it, and, in between, the
/// forking thread's own way through them.
///
/// Between the manager's prepare handler and its parent or child handler,
/// the forking thread runs the other handlers: the prepare handlers
/// registered before the manager's (prepare handlers run in reverse order
/// of registration) and the parent or child handlers registered before it
/// (those run in order). Such a handler may allocate — glibc's malloc takes
/// its own locks after every handler, so this is legal C — and an
/// allocation that takes a central lock (a large value, a checked block, a
/// collection, or anything under `Global` that reaches its central heap)
/// would spin forever on a lock its own thread holds: `fork` never
/// returned. So while the forking thread holds every lock, `FORKING`
/// names it, and [`RawLock::lock`] lets it through without taking the lock
/// (a guard that releases nothing).
///
/// Why that is sound — the invariant: **`FORKING` names a thread only while
/// that thread holds every central lock through `lock_raw`** (it is set
/// after the last is taken and cleared before the first is released).
/// - No other thread is in a critical section of any central lock then:
///   each would hold its lock, which the forking thread has taken.
/// - The forking thread's own critical sections run one at a time, in
///   program order, as any thread's do; everything earlier holders did is
///   visible to it through `lock_raw`'s `Acquire`. Two could overlap only
///   if one were nested in the other on the same lock, which outside a
///   fork would deadlock on itself: the crate never does that (a central
///   heap calls only the system allocator, or, for a non-`Global` manager,
///   the global allocator, whose locks if it is `Global` are apart in
///   [`GLOBAL_LOCKS`]; see [`CENTRAL_LOCKS`] for the one misuse).
/// - The guards of the critical sections let through release nothing: the
///   locks stay held until [`release_all`](fork::release_all).
///
/// Why `FORKING` is set only after every lock is taken, not before: set
/// first, the prepare handler's own wait for a lock another thread holds
/// would go through, as the forking thread's, and the handlers, then
/// `fork`, would run while that thread is in its critical section. For the
/// same reason `lock_raw` never goes through, whatever `FORKING` says. (A
/// `fork` called from inside a critical section — by a global allocator
/// the central heap calls — waits for itself in `take_all`, as it always
/// did, rather than go on and release a lock the section holds.)
#[cfg(all(unix, feature = "std", not(loom)))]
pub(crate) mod fork {
    use core::sync::atomic::{AtomicUsize, Ordering};

    use super::{CENTRAL_LOCKS, GLOBAL_LOCKS, SEGMENTS_LOCK, STATES_LOCK};
    use crate::thread;

    /// The [`thread::id`] of the thread that holds every central lock for
    /// `fork` (see the module), or 0 (no thread's id).
    ///
    /// Every access is `Relaxed`: the value publishes no data (what the
    /// locks guard is published by their own `Acquire`/`Release`), and a
    /// thread only ever asks whether it names *itself*:
    /// - The only stores are of the storing thread's own id, or 0. A thread
    ///   sees its own store (coherence: it is sequenced before its loads),
    ///   and no other store can come between while it holds every lock
    ///   (another thread stores only once it holds them).
    /// - A thread cannot read another's store as its own id: ids of live
    ///   threads differ. A thread that reuses the address of an exited
    ///   thread's id got that memory after it was freed, which happens
    ///   after the exited thread's last clear, so (coherence) it reads that
    ///   clear or something newer, never the stale id.
    /// - One forking thread's clear is not overwritten after a later
    ///   forking thread's set: the clear is sequenced before its `Release`
    ///   unlocks, the set after the next thread's `Acquire` locks, so the
    ///   clear happens before the set and precedes it in the modification
    ///   order.
    static FORKING: AtomicUsize = AtomicUsize::new(0);

    /// Before `fork`: takes every central lock, then the states' list's
    /// ([`STATES_LOCK`]), then `Global`'s, then the segments' (the lock
    /// order, see `segments.rs`), then names the calling thread their
    /// holder.
    pub(crate) fn take_all() {
        let states = core::slice::from_ref(&STATES_LOCK);
        let segments = core::slice::from_ref(&SEGMENTS_LOCK);
        for lock in CENTRAL_LOCKS
            .iter()
            .chain(states)
            .chain(&GLOBAL_LOCKS)
            .chain(segments)
        {
            lock.lock_raw();
        }
        // `Relaxed`: see `FORKING`. After every `lock_raw` (the invariant).
        FORKING.store(thread::id(), Ordering::Relaxed);
    }

    /// After `fork`, in the parent and in the child (whose only thread is
    /// the one that ran [`take_all`], with the same thread-local addresses:
    /// the address space is a copy): stops naming it, then releases every
    /// lock.
    ///
    /// # Safety
    ///
    /// The calling thread must hold every lock through [`take_all`].
    pub(crate) unsafe fn release_all() {
        debug_assert_eq!(FORKING.load(Ordering::Relaxed), thread::id());
        // `Relaxed`: see `FORKING`. Before any `unlock_raw` (the invariant).
        FORKING.store(0, Ordering::Relaxed);
        let states = core::slice::from_ref(&STATES_LOCK);
        let segments = core::slice::from_ref(&SEGMENTS_LOCK);
        for lock in segments
            .iter()
            .chain(&GLOBAL_LOCKS)
            .chain(states)
            .chain(&CENTRAL_LOCKS)
        {
            // SAFETY: taken by this thread in `take_all` (caller).
            unsafe { lock.unlock_raw() };
        }
    }

    /// Whether the calling thread holds every central lock for `fork` (so
    /// a lock it finds taken is held for it). Looked at only after a failed
    /// compare-and-swap.
    #[cold]
    #[inline(never)]
    pub(super) fn held_for_this_thread() -> bool {
        // `Relaxed`: see `FORKING`. 0 is no thread's id, and is checked
        // first so that an ordinary wait reads no thread-local.
        let forking = FORKING.load(Ordering::Relaxed);
        forking != 0 && forking == thread::id()
    }
}

/// The readers of a table of pointers whose entries a thread may null and
/// then free (a shared manager's thread heaps: `shared/exit.rs`): a count
/// of the threads between [`enter`](Readers::enter) and the drop of its
/// guard, and [`retire`](Readers::retire), which nulls an entry and waits
/// until no reader can still hold what it pointed to. Readers never wait;
/// only a retiring thread does, for the readers already in.
///
/// The argument (checked by the loom model
/// `a_reader_never_sees_a_retired_entry_freed` below): a reader increments
/// the count, then a `SeqCst` fence, then loads entries; a retiring thread
/// stores null, then a `SeqCst` fence, then loads the count until it reads
/// 0. The two fences are ordered one way or the other in the single total
/// order of `SeqCst` operations:
/// - the reader's first: the retiring thread's load of the count (after its
///   fence) sees the increment or a later value (the fence-fence rule of
///   C++20 [atomics.order]); each reader's increment is sequenced before its
///   decrement, so a count of 0 read then means every reader counted by it
///   has decremented — and the `Acquire` load that reads 0 synchronises
///   with each such `Release` decrement (later read-modify-writes continue
///   their release sequences), so everything the reader did through the
///   entry happens before the caller frees it;
/// - the retiring thread's first: the reader's loads of entries (after its
///   fence) see the null or a later store (a new pointer, to something else
///   alive), never the retired pointer.
///
/// The entries' other stores and loads keep their own orderings (a new
/// entry is published with `Release` and loaded with `Acquire`).
#[derive(Debug)]
#[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
pub(crate) struct Readers {
    count: ReadersCount,
}

#[cfg(not(loom))]
type ReadersCount = AtomicUsize;
#[cfg(loom)]
type ReadersCount = loom::sync::atomic::AtomicUsize;

#[cfg(not(loom))]
use core::sync::atomic::fence;
#[cfg(loom)]
use loom::sync::atomic::fence;

#[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
impl Readers {
    /// No reader.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Readers {
            count: AtomicUsize::new(0),
        }
    }

    /// No reader.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Readers {
            count: ReadersCount::new(0),
        }
    }

    /// Counts the caller in until the guard drops: entries loaded in
    /// between are not freed before then. Never waits.
    #[inline]
    pub(crate) fn enter(&self) -> ReadGuard<'_> {
        // `Relaxed`: the fence after it orders it before the loads of the
        // entries (see the type's argument); the count publishes nothing.
        self.count.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        ReadGuard { readers: self }
    }

    /// Nulls `entry`, then waits until every reader that may have loaded
    /// its old value has left; returns the old value, which no reader holds
    /// any more. The caller must be the only thread that stores to `entry`
    /// (a slot's holder).
    pub(crate) fn retire<T>(&self, entry: &AtomicPtr<T>) -> *mut T {
        // `Relaxed` swap: the fence after it orders it before the count's
        // loads (the type's argument); only the caller stores to the entry,
        // so the value it returns is the one readers may hold.
        let old = entry.swap(ptr::null_mut(), Ordering::Relaxed);
        fence(Ordering::SeqCst);
        // `Acquire`: reading 0 synchronises with every counted reader's
        // `Release` decrement (the type's argument).
        while self.count.load(Ordering::Acquire) != 0 {
            yield_now();
        }
        old
    }

    /// Forgets every reader: in a `fork` child, whose only thread is not
    /// reading (readers on the other threads, which the child does not
    /// have, would otherwise be waited for forever).
    #[cfg(all(unix, feature = "std", not(loom)))]
    pub(crate) fn forget_all(&self) {
        // `Relaxed`: one thread; nothing to order with.
        self.count.store(0, Ordering::Relaxed);
    }
}

/// A reader counted in [`Readers`]; leaves on drop (also by a panic).
#[derive(Debug)]
#[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
pub(crate) struct ReadGuard<'a> {
    readers: &'a Readers,
}

impl Drop for ReadGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // `Release`: every read the reader made through an entry happens
        // before a retiring thread's `Acquire` load that reads the count
        // this makes (or a later one).
        self.readers.count.fetch_sub(1, Ordering::Release);
    }
}

/// Gives the processor to another thread (with `std`), else a spin hint.
#[inline]
#[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
fn yield_now() {
    #[cfg(loom)]
    loom::hint::spin_loop();
    #[cfg(all(not(loom), feature = "std"))]
    std::thread::yield_now();
    #[cfg(all(not(loom), not(feature = "std")))]
    core::hint::spin_loop();
}

/// Holds a [`RawLock`]; unlocks on drop. `None` for the guard of a thread
/// that went through a lock held for it by `fork`'s prepare handler (see
/// [`fork`]): the handler releases it, not the guard. (An `Option` of a
/// reference is one word, as the reference; the drop's test of it is one
/// predictable branch beside a store that the next holder's
/// compare-and-swap will wait on anyway.)
#[derive(Debug)]
#[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
pub(crate) struct RawLockGuard<'a> {
    lock: Option<&'a RawLock>,
}

impl Drop for RawLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(lock) = self.lock {
            // `Release`: everything done under the lock happens before the
            // next holder's `Acquire` compare-and-swap.
            lock.locked.store(false, Ordering::Release);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    /// A block as the remote-free list sees it: the link first, then a
    /// payload the freeing thread writes before the push (as a dropped
    /// value's destructor would) and the owner reads after the take.
    #[repr(C)]
    struct Node {
        link: *mut u8,
        payload: UnsafeCell<u64>,
    }

    fn node(v: u64) -> NonNull<u8> {
        let b = Box::new(Node {
            link: ptr::null_mut(),
            payload: UnsafeCell::new(v),
        });
        NonNull::from(Box::leak(b)).cast()
    }

    /// Walks a taken list: the payloads, each node freed.
    fn drain(mut head: *mut u8) -> Vec<u64> {
        let mut seen = Vec::new();
        while let Some(n) = NonNull::new(head) {
            // SAFETY (test): a node of ours, taken from the list.
            let node = unsafe { Box::from_raw(n.cast::<Node>().as_ptr()) };
            head = node.link;
            // Loom checks this read happens after the pusher's write.
            seen.push(node.payload.with(|p| unsafe { *p }));
        }
        seen
    }

    /// Two threads push while the owner takes: every node is taken exactly
    /// once, and its payload and link are seen as written.
    #[test]
    fn pushes_racing_a_take_lose_nothing_and_publish_their_writes() {
        loom::model(|| {
            let list = Arc::new(Inbound::new());
            let pushers: Vec<_> = (1..=2u64)
                .map(|v| {
                    let list = list.clone();
                    loom::thread::spawn(move || {
                        let n = node(0);
                        // SAFETY (test): the node is ours until pushed.
                        unsafe {
                            (*n.cast::<Node>().as_ptr()).payload.with_mut(|p| *p = v);
                            list.push(n);
                        }
                    })
                })
                .collect();
            let mut seen = drain(list.take());
            for p in pushers {
                p.join().unwrap();
            }
            seen.extend(drain(list.take()));
            seen.sort();
            assert_eq!(seen, [1, 2]);
        });
    }

    /// A shared manager's `reclaim` (another thread's trim) meets the owner
    /// and a remote free: the trim takes the list, moves the node of an
    /// "emptied chunk" (payload 1) to a second list after writing it (as it
    /// resets the chunk's count) and pushes the rest back as one chain,
    /// while a thread pushes and the owner takes both lists. Every node is
    /// taken exactly once, and the owner sees the trim's write.
    #[test]
    fn a_reclaim_racing_pushes_and_takes_loses_nothing_and_publishes_its_writes() {
        loom::model(|| {
            let lists = Arc::new((Inbound::new(), Inbound::new()));
            let pusher = {
                let lists = lists.clone();
                loom::thread::spawn(move || {
                    for v in [1, 2] {
                        let n = node(0);
                        // SAFETY (test): the node is ours until pushed.
                        unsafe {
                            (*n.cast::<Node>().as_ptr()).payload.with_mut(|p| *p = v);
                            lists.0.push(n);
                        }
                    }
                })
            };
            let trim = {
                let lists = lists.clone();
                loom::thread::spawn(move || {
                    let mut node = lists.0.take();
                    let (mut kept, mut tail) = (ptr::null_mut::<u8>(), None::<NonNull<u8>>);
                    while let Some(n) = NonNull::new(node) {
                        let n = n.cast::<Node>();
                        // SAFETY (test): a node taken: ours to read and
                        // relink (its link read first).
                        unsafe {
                            node = (*n.as_ptr()).link;
                            let payload = &(*n.as_ptr()).payload;
                            if payload.with(|p| *p) == 1 {
                                payload.with_mut(|p| *p = 10);
                                lists.1.push(n.cast());
                            } else {
                                match tail {
                                    Some(t) => {
                                        (*t.cast::<Node>().as_ptr()).link = n.as_ptr().cast()
                                    }
                                    None => kept = n.as_ptr().cast(),
                                }
                                tail = Some(n.cast());
                            }
                        }
                    }
                    if let (Some(head), Some(tail)) = (NonNull::new(kept), tail) {
                        // SAFETY (test): a chain of our nodes, head to tail.
                        unsafe { lists.0.push_chain(head, tail) };
                    }
                })
            };
            let mut seen = drain(lists.0.take());
            seen.extend(drain(lists.1.take()));
            pusher.join().unwrap();
            trim.join().unwrap();
            seen.extend(drain(lists.0.take()));
            seen.extend(drain(lists.1.take()));
            seen.sort();
            // Node 1 is seen as pushed (taken before the trim) or as the trim
            // wrote it; node 2 as pushed; each once.
            assert!(seen == [1, 2] || seen == [2, 10], "{seen:?}");
        });
    }

    /// A reader (a `stats` on another thread) loads a table entry and
    /// reads what it points to while the entry's holder retires it and
    /// frees it (a thread heap freed at exit): loom checks that the
    /// reader's reads happen before the freer's write-and-free, or that the
    /// reader sees null — in every interleaving, with two readers.
    #[test]
    fn a_reader_never_sees_a_retired_entry_freed() {
        struct Heap {
            value: UnsafeCell<u64>,
        }
        loom::model(|| {
            let shared = Arc::new((
                Readers::new(),
                AtomicPtr::new(Box::into_raw(Box::new(Heap {
                    value: UnsafeCell::new(7),
                }))),
            ));
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let shared = shared.clone();
                    loom::thread::spawn(move || {
                        let _in = shared.0.enter();
                        let p = shared.1.load(Ordering::Acquire);
                        // SAFETY (test): not freed while we are counted in,
                        // unless retired before we loaded it (then null):
                        // what loom checks.
                        unsafe { p.as_ref() }.map(|h| h.value.with(|v| unsafe { *v }))
                    })
                })
                .collect();
            let old = shared.0.retire(&shared.1);
            // SAFETY (test): retired: no reader holds it. The write stands
            // for the free: loom checks it against the readers' reads (a
            // causality violation if one could still be reading); the
            // memory itself is freed once they are joined.
            let freed = unsafe { Box::from_raw(old) };
            freed.value.with_mut(|v| unsafe { *v = 0 });
            for r in readers {
                let seen = r.join().unwrap();
                assert!(seen.is_none() || seen == Some(7));
            }
            drop(freed);
            assert!(shared.1.load(Ordering::Relaxed).is_null());
        });
    }

    /// The lock excludes: two threads increment a counter under it.
    #[test]
    fn the_lock_serialises_its_holders() {
        loom::model(|| {
            let lock = Arc::new((RawLock::new(), UnsafeCell::new(0u32)));
            let t = {
                let lock = lock.clone();
                loom::thread::spawn(move || {
                    let _g = lock.0.lock();
                    lock.1.with_mut(|v| unsafe { *v += 1 });
                })
            };
            {
                let _g = lock.0.lock();
                lock.1.with_mut(|v| unsafe { *v += 1 });
            }
            t.join().unwrap();
            assert_eq!(lock.1.with(|v| unsafe { *v }), 2);
        });
    }
}
