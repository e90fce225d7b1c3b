//! A shared manager's state: its configuration, the table of thread heaps
//! (one per thread slot, made on the thread's first allocation) and the
//! central heap under its lock.

use core::alloc::Layout;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::budget::SharedBudget;
use crate::chunk::{self, ChunkCache};
use crate::heap::{self, Heap, BOX};
use crate::large::{self, HeapKind};
use crate::pool::{ChunkConfig, Pool};
use crate::size_class::SizeClasses;
use crate::source;
use crate::stats::{ClassStats, Leaks};
use crate::sync::ReadGuard;
use crate::thread::{self, MAX_THREADS};
use crate::{Error, MemoryManager};

use super::exit::{self, Link};

/// What a shared manager is built with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(super) chunks: ChunkConfig,
    pub(super) budget: Option<usize>,
    pub(super) name: Option<&'static str>,
    pub(super) on_leak: Option<fn(&Leaks)>,
    pub(super) source: source::Source,
    /// Whether the central heap keeps a chunk map (for the `Allocator`).
    pub(super) map: bool,
}

/// A shared manager's state, made on its first use.
pub(super) struct State<C: SizeClasses> {
    pub(super) config: Config,
    /// The limit, and the bytes held by all the heaps.
    pub(super) budget: SharedBudget,
    /// One more than the highest slot with a heap: where loops over the
    /// heaps stop.
    pub(super) top: AtomicUsize,
    /// Allocations above every class, checked blocks, collections, and
    /// threads with no slot; used under `central.heap().heap_record().lock`.
    pub(super) central: MemoryManager<C>,
    /// Remote frees per class made by threads with no heap (no slot), and
    /// those of freed heaps (their `remote_out`, folded in when they were
    /// freed), to subtract from the figures like the heaps' `remote_out`.
    pub(super) lost: [AtomicUsize; crate::MAX_CLASSES],
    /// Of those, the collection blocks (subtracted like the heaps'
    /// `tally_out`).
    pub(super) lost_tally: [AtomicUsize; crate::MAX_CLASSES],
    /// Per class, the figures of the thread heaps freed so far, folded in
    /// when each was freed (so that the sums over the heaps stay what they
    /// were: see `free_heap_if_empty`).
    pub(super) retired: [Retired; crate::MAX_CLASSES],
    /// Bytes of the live thread heaps' own records (their pools' array and
    /// their large path's record), charged to the budget.
    pub(super) heap_bytes: AtomicUsize,
    /// The state's place on the process-wide list the exit hook walks, and
    /// the readers of `heaps` (see `exit.rs`).
    pub(super) link: Link,
    /// Empty chunks the thread heaps gave back, for the next ones (all
    /// zero bits: empty).
    pub(super) chunk_cache: ChunkCache,
    /// The pools of each slot's heap, or null; one entry more than there
    /// are slots, never written (null): the entry of `thread::heap_index`
    /// for a thread with no slot (see `SharedManager::my_pools`).
    pub(super) heaps: [AtomicPtr<Pool>; MAX_THREADS + 1],
}

/// The figures of a class's pools in the thread heaps freed so far. Every
/// access is `Relaxed`: statistics, each a read-modify-write that loses no
/// count; a `stats` racing a free may count a freed heap's figures twice
/// or not at all for a moment (figures are not a cut across heaps), and
/// once the threads are joined they are exact.
#[derive(Debug, Default)]
pub(super) struct Retired {
    /// Blocks handed out, ever.
    pub(super) allocs: AtomicUsize,
    /// Blocks the heaps still counted live: blocks other threads freed into
    /// them (counted by the freeing threads' `remote_out` or in `lost`).
    pub(super) live: AtomicUsize,
    /// The heaps' peaks (the manager's `peak` is a sum of peaks).
    pub(super) peak: AtomicUsize,
    /// Collection blocks the heaps still counted (`tally`): blocks other
    /// threads freed into them (counted by the freeing threads' `tally_out`
    /// or in `lost_tally`).
    pub(super) tally: AtomicUsize,
}

impl<C: SizeClasses> State<C> {
    /// Allocates and initialises a state at a fixed address; `None` if the
    /// memory cannot be had.
    pub(super) fn create(config: Config) -> Option<NonNull<State<C>>> {
        let layout = Layout::new::<State<C>>();
        // Zeroed: every `heaps` entry starts null (a null `AtomicPtr` is
        // all zero bits), every `lost`, `lost_tally`, `retired` and
        // `heap_bytes` count at zero, the chunk cache empty, and the table
        // costs no resident memory until a thread takes a slot.
        let state = source::alloc_zeroed(config.source, layout)?.cast::<State<C>>();
        let s = state.as_ptr();
        let kind = HeapKind {
            source: config.source,
            map: config.map,
            segment_map: false,
            chunk_cache: ptr::null(),
            owner: s.cast_const().cast(),
            budget: ptr::null(),

            large: true,
            lock: crate::sync::central_lock(!config.map),
        };
        // SAFETY: `state` is a fresh allocation of a `State<C>`; each field
        // but `heaps`, `lost`, `lost_tally`, `retired`, `heap_bytes` and `chunk_cache` (already valid,
        // zeroed) is written once. The central heap charges the budget, at
        // its final address. The state goes on the list of states last,
        // whole, at the address it keeps until `destroy`, which takes it
        // off first.
        unsafe {
            (&raw mut (*s).config).write(config);
            (&raw mut (*s).link).write(Link::new(s.cast_const().cast(), Self::collect_slot));
            (&raw mut (*s).budget).write(SharedBudget::new(config.budget));
            (&raw mut (*s).top).write(AtomicUsize::new(0));
            let kind = HeapKind {
                budget: &raw const (*s).budget,
                ..kind
            };
            match MemoryManager::with_kind(config.chunks, config.name, kind) {
                Some(central) => (&raw mut (*s).central).write(central),
                None => {
                    source::dealloc(config.source, state.cast(), layout);
                    return None;
                }
            }
            exit::link(&(*s).link);
        }
        Some(state)
    }

    /// Bytes of a thread heap's own records, charged to the budget while
    /// the heap lives.
    fn heap_size() -> usize {
        // (A thread heap has no large path: the central heap serves it.)
        Heap::<C>::own_bytes(false)
    }

    /// The heap kind of a thread's heap.
    pub(super) fn thread_kind(&self) -> HeapKind {
        HeapKind {
            source: self.config.source,
            map: false,
            segment_map: true,
            chunk_cache: &raw const self.chunk_cache,
            // The state's own pointer (the central heap's, made from the
            // allocation in `create`), not one made from `&self`: a remote
            // free turns it into `&State`, also after `reset` borrowed the
            // central manager mutably, which a pointer derived from a
            // shared reference to the whole state does not outlive (Stacked
            // and Tree Borrows).
            owner: self.central.heap().heap_record().kind.owner,
            budget: &raw const self.budget,

            // Its large allocations go to the central heap: no large cache.
            large: false,
            lock: ptr::null(),
        }
    }

    /// The pools of this thread's heap, if it has a slot and the heap
    /// exists (the same as `SharedManager::my_pools`, for a made state).
    #[inline(always)]
    pub(super) fn my_pools(&self) -> Option<NonNull<Pool>> {
        // SAFETY: `heap_index` is at most `MAX_THREADS`, and the table has
        // `MAX_THREADS + 1` entries (unchecked: the bound's compare and
        // branch were two of the collections' allocation's instructions).
        let cell = unsafe { self.heaps.get_unchecked(thread::heap_index()) };
        // `Relaxed`: this thread holds the slot, so the heap was made by it
        // or by a previous holder whose writes happen before ours (the
        // registry's `Release`/`Acquire` on the slot).
        NonNull::new(cell.load(Ordering::Relaxed))
    }

    /// The pools of this thread's heap, taking a slot and making the heap
    /// if need be; `None` if the thread has no slot or the heap cannot be
    /// made (then the central heap serves it).
    #[cold]
    #[inline(never)]
    pub(super) fn my_pools_slow(&self) -> Option<NonNull<Pool>> {
        let t = thread::register();
        let cell = self.heaps.get(t as usize)?;
        if let Some(pools) = NonNull::new(cell.load(Ordering::Relaxed)) {
            return Some(pools);
        }
        // The heap's own records are charged first: refused, the thread
        // uses the central heap (as when they cannot be had).
        self.budget.charge(Self::heap_size()).ok()?;
        let Some(heap) = Heap::<C>::try_new(
            self.config.chunks,
            None,
            self.config.name,
            self.thread_kind(),
            t,
        ) else {
            self.budget.credit(Self::heap_size());
            return None;
        };
        // The allocator has returned (the re-entrancy rule, see `table.rs`):
        // a call it made into this manager on this thread may have made the
        // thread's heap meanwhile. That one stays (its blocks may be live);
        // ours goes, with nothing borrowed.
        // `Relaxed`: only this thread, the slot's holder, stores the entry.
        if let Some(made) = NonNull::new(cell.load(Ordering::Relaxed)) {
            drop(heap);
            self.budget.credit(Self::heap_size());
            return Some(made);
        }
        // `Relaxed`: a statistic (see `Retired`).
        self.heap_bytes
            .fetch_add(Self::heap_size(), Ordering::Relaxed);
        let pools = heap.into_raw();
        // `Release`: a reader on another thread (`stats`) that loads the
        // pointer with `Acquire` sees the heap initialised.
        cell.store(pools.as_ptr(), Ordering::Release);
        // `Relaxed`: only bounds loops that load each entry with `Acquire`.
        self.top.fetch_max(t as usize + 1, Ordering::Relaxed);
        Some(pools)
    }

    /// `boxes::count_remote_free` for a thread without a heap: makes one, or
    /// counts in `lost` if the thread has no slot.
    #[cold]
    #[inline(never)]
    pub(super) fn count_remote_slow(&self, class: usize) {
        match self.my_pools_slow() {
            // SAFETY: this thread's heap (invariant), a class of `C`.
            Some(pools) => unsafe { Heap::<C>::pool_at(pools, class) }.count_remote_out(),
            // `Relaxed`: a statistic; the read-modify-write loses no count.
            None => drop(self.lost[class].fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// A block of class `class` from this thread's heap (or the central
    /// heap's, if it has none).
    #[inline(always)]
    pub(super) fn alloc_class(&self, class: usize) -> Result<NonNull<u8>, Error> {
        match self.my_pools() {
            // SAFETY: this thread's live heap (invariant), a class of `C`
            // (from `route`).
            Some(pools) => unsafe { Heap::<C>::pool_at(pools, class) }.alloc(),
            None => self.alloc_class_slow(class),
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn alloc_class_slow(&self, class: usize) -> Result<NonNull<u8>, Error> {
        match self.my_pools_slow() {
            // SAFETY: as in `alloc_class`.
            Some(pools) => unsafe { Heap::<C>::pool_at(pools, class) }.alloc(),
            None => self.central(|mm| mm.heap().get(class).alloc()),
        }
    }

    /// Room for `layout`, routed at run time.
    #[inline]
    pub(super) fn alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        heap::alloc::<C, BOX>(self, layout)
    }

    /// A large allocation, from the central heap.
    #[inline(never)]
    pub(super) fn alloc_large(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        self.central(|mm| large::alloc_typed(mm.heap().heap_record(), layout))
    }

    /// Runs `f` on the central heap under its lock.
    pub(super) fn central<R>(&self, f: impl FnOnce(&MemoryManager<C>) -> R) -> R {
        // SAFETY: the central heap's lock is a static one (`create`).
        let _locked = unsafe { &*self.central.heap().heap_record().lock }.lock();
        f(&self.central)
    }

    /// Counts the caller among the readers of `heaps` until the guard
    /// drops: a heap loaded meanwhile is not freed before (see
    /// `sync::Readers`). Nothing done under it may allocate or wait.
    pub(super) fn reading(&self) -> ReadGuard<'_> {
        self.link.readers.enter()
    }

    /// Each thread heap, with its slot: for a reader counted in (`_in`),
    /// whose heaps are not freed while it reads them.
    pub(super) fn thread_heaps<'a>(
        &'a self,
        _in: &'a ReadGuard<'_>,
    ) -> impl Iterator<Item = (u32, NonNull<Pool>)> + 'a {
        // `Relaxed`: an upper bound of the slots to look at; a heap made
        // after it was read is left out, as one made after the loop would be.
        let top = self.top.load(Ordering::Relaxed).min(MAX_THREADS);
        self.heaps[..top]
            .iter()
            .enumerate()
            .filter_map(|(t, cell)| {
                // `Acquire`: pairs with the `Release` store that published the
                // heap, so its fields are seen initialised.
                NonNull::new(cell.load(Ordering::Acquire)).map(|p| (t as u32, p))
            })
    }

    /// The figures of a thread heap's pools: only their counters, which
    /// another thread may read.
    pub(super) fn class_stats(pools: NonNull<Pool>) -> impl Iterator<Item = ClassStats> {
        (0..C::TABLE.len()).map(move |class| {
            // SAFETY: a live heap's pool (invariant); only its counters and
            // fixed fields are read.
            let pool = unsafe { Heap::<C>::pool_at(pools, class) };
            ClassStats {
                block_size: pool.block_size(),
                // Counted live by the owner, freed by other threads (they
                // subtract in `stats`).
                live_boxes: pool.live(),
                peak_boxes: pool.peak(),
                allocs: pool.allocs(),
                frees: pool.frees(),
                capacity: pool.capacity(),
                chunks: pool.chunk_count(),
                reserved_bytes: pool.reserved(),
                ..ClassStats::default()
            }
        })
    }

    /// Takes every heap's remote frees onto its free list, so that the
    /// figures are exact. Exclusive access only (`&mut` to the manager).
    pub(super) fn collect_all(&self) {
        {
            // No exit hook collects a heap meanwhile (see `exit.rs`).
            let _no_exits = exit::exclude_exits();
            let reading = self.reading();
            for (_, pools) in self.thread_heaps(&reading) {
                for class in 0..C::TABLE.len() {
                    // SAFETY: a live heap (invariant), ours alone (caller:
                    // no other thread uses the manager; exit hooks are
                    // held off).
                    unsafe { Heap::<C>::pool_at(pools, class) }.collect();
                }
            }
        }
        self.central(|mm| {
            for p in mm.heap().iter() {
                p.collect();
            }
        });
    }

    /// Trims the heap of slot `t`, which the caller holds (or claimed).
    ///
    /// # Safety
    ///
    /// The calling thread must hold slot `t` for the duration, and
    /// `pools` must be heap `t`'s.
    pub(super) unsafe fn trim_heap(pools: NonNull<Pool>) -> usize {
        // SAFETY: the caller holds the slot, so the heap is ours for now;
        // it is given up again (not dropped) at the end.
        let heap = ManuallyDrop::new(unsafe { Heap::<C>::from_raw(pools) });
        heap.iter().map(|p| p.trim()).sum::<usize>() + large::trim(heap.heap_record())
    }

    /// What a thread's exit gives back of its heap: every chunk of each
    /// pool with no block live or owed ([`Pool::release_if_empty`]: O(its
    /// chunks), no walk of its free list — a `trim`'s walk, a cache miss a
    /// free block, made exits of short threads several times slower). A
    /// pool with a block live, or one that other threads freed into, stays
    /// as it is for the next holder of the slot (or a `trim`).
    ///
    /// # Safety
    ///
    /// As [`trim_heap`](Self::trim_heap).
    unsafe fn release_empty_pools(pools: NonNull<Pool>) -> usize {
        // SAFETY: as in `trim_heap`.
        let heap = ManuallyDrop::new(unsafe { Heap::<C>::from_raw(pools) });
        heap.iter().map(Pool::release_if_empty).sum()
    }

    /// Trims the heap of slot `t` (if any), and frees it if it is left
    /// empty; returns the bytes released.
    ///
    /// # Safety
    ///
    /// The calling thread must hold slot `t` (or have claimed it) for the
    /// duration, with nothing of heap `t` borrowed.
    pub(super) unsafe fn trim_slot(&self, t: u32) -> usize {
        // `Relaxed`: we hold slot `t`, and only a holder of slot `t` stores
        // the entry; the last store was ours, or a previous holder's, whose
        // writes happen before ours (the registry's `Release`/`Acquire`).
        let Some(pools) = NonNull::new(self.heaps[t as usize].load(Ordering::Relaxed)) else {
            return 0;
        };
        // SAFETY: the caller holds slot `t`; `pools` is heap `t`'s.
        unsafe { Self::trim_heap(pools) + self.free_heap_if_empty(t, pools) }
    }

    /// The exit hook's work on this state (see `exit.rs`), for the thread
    /// holding slot `t` as it exits: its empty pools' chunks go back
    /// ([`release_empty_pools`](Self::release_empty_pools)), and the heap
    /// is freed if that leaves it empty.
    ///
    /// # Safety
    ///
    /// `state` must be a live `State<C>`, and the calling thread hold slot
    /// `t` (`exit::collect`'s caller: the exiting thread, its slot not given
    /// back yet).
    unsafe fn collect_slot(state: *const (), t: u32) {
        // SAFETY: the caller's guarantee; `t` is a slot (below
        // `MAX_THREADS`: `exit::collect`).
        unsafe {
            let state = &*state.cast::<State<C>>();
            // `Relaxed`: as in `trim_slot`.
            if let Some(pools) = NonNull::new(state.heaps[t as usize].load(Ordering::Relaxed)) {
                Self::release_empty_pools(pools);
                state.free_heap_if_empty(t, pools);
            }
        }
    }

    /// Frees heap `t` if it holds nothing: no chunk in any pool and nothing
    /// on its large path (its budget at zero). Then no block of it exists
    /// — none live, none free, none on a remote-free list (a block is
    /// pushed there only while live, so its chunk stays) — so nothing but a
    /// reader of `heaps` can reach it. Its figures are folded into the
    /// state's (`retired`, `lost`), so that `stats` keeps the sums over the
    /// heaps it had; the entry is nulled, and the heap is freed once no
    /// reader can hold it (`sync::Readers::retire`). Returns the bytes of
    /// the heap's records, or 0 if it stays.
    ///
    /// # Safety
    ///
    /// The calling thread must hold slot `t`, with nothing of heap `t`
    /// borrowed, and `pools` be heap `t`'s.
    unsafe fn free_heap_if_empty(&self, t: u32, pools: NonNull<Pool>) -> usize {
        // SAFETY: the caller holds slot `t`: the heap is ours for now.
        let heap = ManuallyDrop::new(unsafe { Heap::<C>::from_raw(pools) });
        if heap.budget().reserved() != 0 || heap.iter().any(|p| p.chunk_count() != 0) {
            return 0;
        }
        for (class, pool) in heap.iter().enumerate() {
            let r = &self.retired[class];
            // `Relaxed`: statistics (see `Retired`).
            r.allocs.fetch_add(pool.allocs(), Ordering::Relaxed);
            // (Blocks taken back in remote-emptied chunks left `held` but
            // are still in the freeing threads' counts: `stats` adds them
            // back, as it does a live heap's `reclaimed`.)
            r.live
                .fetch_add(pool.live() + pool.reclaimed(), Ordering::Relaxed);
            r.peak.fetch_add(pool.peak(), Ordering::Relaxed);
            r.tally.fetch_add(pool.tally(), Ordering::Relaxed);
            self.lost[class].fetch_add(pool.remote_out(), Ordering::Relaxed);
            self.lost_tally[class].fetch_add(pool.tally_out(), Ordering::Relaxed);
        }
        let old = self.link.readers.retire(&self.heaps[t as usize]);
        debug_assert_eq!(old, pools.as_ptr());
        // The entry is null and no reader holds the heap: it is ours alone,
        // dropped once (its memory goes back to its source: a deallocation
        // only, with nothing of the manager borrowed).
        drop(ManuallyDrop::into_inner(heap));
        // `Relaxed`: a statistic (see `Retired`).
        self.heap_bytes
            .fetch_sub(Self::heap_size(), Ordering::Relaxed);
        self.budget.credit(Self::heap_size());
        Self::heap_size()
    }
}

impl<C: SizeClasses> State<C> {
    /// Frees `chunk`, `size` bytes taken from the chunk cache, to the
    /// source.
    ///
    /// # Safety
    ///
    /// `chunk` must come from the cache's `take` or `drain`: a chunk of
    /// `size` bytes allocated from this state's source, used by no one.
    pub(super) unsafe fn free_cached(&self, chunk: NonNull<u8>, size: usize) {
        // (Charged to the shared budget while kept.)
        self.budget.credit(size);
        if let Some(layout) = chunk::layout(size) {
            // SAFETY: the caller's guarantee: allocated from this source
            // with this layout (`ChunkHeader::allocate`), freed once.
            unsafe { source::dealloc(self.config.source, chunk, layout) };
        }
    }

    /// Gives every chunk of the cache back to the source; the bytes.
    pub(super) fn empty_chunk_cache(&self) -> usize {
        self.chunk_cache.drain(|c, size| {
            // SAFETY: a chunk the cache held, ours now.
            unsafe { self.free_cached(c, size) }
        })
    }

    /// Gives back the pages of the remote-emptied chunks of heap `t`, whose
    /// slot another running thread holds (see [`Pool::reclaim`]): under the
    /// central lock (reclaims run one at a time), counted among the readers
    /// of `heaps` (so the heap is not freed meanwhile: its owner may exit).
    /// The lock is taken first: a reader never waits while counted in.
    pub(super) fn reclaim_slot(&self, t: u32) -> usize {
        self.central(|_| {
            let _reading = self.reading();
            // `Acquire`: as in `thread_heaps`.
            let Some(pools) = NonNull::new(self.heaps[t as usize].load(Ordering::Acquire)) else {
                return 0;
            };
            (0..C::TABLE.len())
                .map(|class| {
                    // SAFETY: a live thread heap's pool (invariant; not freed
                    // while we are counted in), one reclaim at a time (the
                    // central lock); a reclaim allocates nothing and waits
                    // for nothing.
                    unsafe { Heap::<C>::pool_at(pools, class).reclaim() }
                })
                .sum()
        })
    }
}

/// Drops a state and frees its memory.
///
/// # Safety
///
/// `state` must come from [`State::create`], not be used afterwards, and no
/// allocation of it may be used afterwards.
pub(super) unsafe fn destroy<C: SizeClasses>(state: NonNull<State<C>>) {
    /// Frees the state's memory when dropped: after its parts, or while a
    /// handle value's destructor unwinds out of the central manager's drop.
    struct Free<C: SizeClasses>(NonNull<State<C>>, source::Source);
    impl<C: SizeClasses> Drop for Free<C> {
        fn drop(&mut self) {
            // SAFETY: the state `destroy` was given, its parts dropped (or
            // dropping, their own drop glue finishing as the panic goes
            // on), freed once.
            unsafe { source::dealloc(self.1, self.0.cast(), Layout::new::<State<C>>()) };
        }
    }
    // SAFETY: the caller's guarantee.
    unsafe {
        let s = state.as_ptr();
        // Off the list first: no exit hook touches the state from here on
        // (one that was collecting it has finished: `unlink` waits for it).
        exit::unlink(&(*s).link);
        let _free = Free(state, (*s).config.source);
        for cell in &(*s).heaps {
            if let Some(pools) = NonNull::new(cell.load(Ordering::Relaxed)) {
                drop(Heap::<C>::from_raw(pools));
            }
        }
        // The heaps gave their chunks to the cache (what fit): back to
        // the source now.
        (*s).chunk_cache.drain(|c, size| (*s).free_cached(c, size));
        ptr::drop_in_place(&raw mut (*s).central);
    }
}
