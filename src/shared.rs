//! `SharedManager`: one manager for many threads — a heap per thread, and
//! boxes that cross threads.
//!
//! Each thread that allocates gets a heap of its own (the same [`Heap`] a
//! `MemoryManager` has) in a flat table indexed by its thread slot (see
//! `thread.rs`): allocation is a pop from the thread's pool, with no atomic
//! read-modify-write, and so is a free on the thread that owns the block's
//! pool. A block freed on another thread is pushed onto its pool's
//! remote-free list with one compare-and-swap; the owner takes the whole
//! list when its free list and newest chunk are used up, before it asks for
//! another chunk — so a thread that only allocates, fed by one that only
//! frees, reuses its memory. A thread that exits gives its slot back; the
//! next thread given that slot takes over its heap as it is (no chunk
//! changes hands, so every block other threads hold stays valid).
//!
//! What several threads must share — allocations above the largest class,
//! checked blocks, collections through the `Allocator` implementation, and
//! threads with no slot (more than [`MAX_THREADS`] at once, or a thread's
//! own thread-local destructors after its slot went back) — goes to one
//! central heap, a `MemoryManager` used under a lock.
//!
//! Invariant, relied on by every `unsafe` block here:
//! - `State::heaps[t]` is null or the pools of a heap made for slot `t`;
//!   once set it never changes until the manager is dropped or reset with
//!   `&mut`. The `Cell`s of heap `t` are touched only by the thread that
//!   holds slot `t` (or a `trim` that claimed the free slot), so never by
//!   two threads at once; other threads touch only its pools' remote-free
//!   lists and read its [`Counter`](crate::sync::Counter)s.
//! - The central heap is touched only under its fallback's lock.
//! - The state lives at a fixed address from its creation until the
//!   manager is dropped.

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::budget::SharedBudget;
use crate::heap::{dangling, Heap};
use crate::manager::{default_leak_report, Builder, DEFAULT_INITIAL_CHUNK};
use crate::pool::{ChunkConfig, Pool};
use crate::pool_box::{Kind, PoolBox, Shared, Source};
use crate::size_class::{route, Route, SizeClasses};
use crate::source;
use crate::stats::{ClassStats, Leaks, Stats};
use crate::system::{self, HeapKind};
use crate::thread::{self, MAX_THREADS};
use crate::{DefaultClasses, Error, MemoryManager};

/// An owning pointer into a [`SharedManager`]: a [`PoolBox`] that may be
/// sent to, shared with and dropped on any thread.
///
/// It is one word, like `Box<T>`, and has everything a `PoolBox` has
/// (`Deref`, `Clone`, slices, `str`, [`into_inner`](PoolBox::into_inner),
/// [`leak`](PoolBox::leak), [`into_raw`](PoolBox::into_raw) /
/// [`from_raw`](PoolBox::from_raw), ...). It is `Send` if `T` is, and `Sync`
/// if `T` is. Dropped on the thread whose heap it came from, it goes back to
/// that heap's free list; on any other, onto its pool's remote-free list
/// with one atomic compare-and-swap. From a `static` manager it is a
/// `SharedBox<'static, T>` and can live in any struct.
///
/// # Examples
///
/// ```
/// use memory_mgr::{SharedBox, SharedManager};
///
/// static MM: SharedManager = SharedManager::new();
///
/// let b: SharedBox<'static, [u32; 4]> = MM.alloc([1, 2, 3, 4]);
/// let sum = std::thread::spawn(move || b.iter().sum::<u32>()) // dropped there
///     .join()
///     .unwrap();
/// assert_eq!(sum, 10);
/// ```
pub type SharedBox<'m, T, C = DefaultClasses> = PoolBox<'m, T, C, Shared>;

// SAFETY: a `SharedBox` owns its `T` as a `Box` does, so sending it sends
// the `T`; dropping or cloning it on another thread is what the shared
// manager is made for (a remote free, or an allocation from that thread's
// heap: see `Shared`'s `Kind` methods).
unsafe impl<T: ?Sized + Send, C: SizeClasses> Send for PoolBox<'_, T, C, Shared> {}
// SAFETY: `&SharedBox<T>` gives only `&T` (and clones, made from the cloning
// thread's own heap).
unsafe impl<T: ?Sized + Sync, C: SizeClasses> Sync for PoolBox<'_, T, C, Shared> {}

static_assertions::assert_impl_all!(SharedBox<'static, u64>: Send, Sync);
static_assertions::assert_not_impl_any!(SharedBox<'static, core::cell::Cell<u64>>: Sync);
static_assertions::assert_not_impl_any!(SharedBox<'static, *const u8>: Send, Sync);
static_assertions::assert_eq_size!(SharedBox<'static, u64>, usize);
static_assertions::assert_impl_all!(SharedManager: Send, Sync);

impl Kind for Shared {
    #[inline(always)]
    unsafe fn dealloc<C: SizeClasses>(ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's guarantee: a live allocation of `layout` of a
        // live shared manager.
        unsafe { dealloc::<C>(ptr, layout) }
    }

    unsafe fn alloc_like<C: SizeClasses>(
        like: NonNull<u8>,
        layout: Layout,
    ) -> Result<NonNull<u8>, Error> {
        if let Route::Zero = route(C::TABLE, layout.size(), layout.align()) {
            // A zero-sized allocation's pointer is dangling and aligned:
            // reuse it (there is no pool or footer to find the manager by).
            return Ok(like);
        }
        // SAFETY: `like` is a live allocation of `layout` of a live shared
        // manager (caller), not zero-sized, so its pool or footer leads to
        // the manager's fallback records, whose `owner` is its state.
        let state = unsafe { owner_of::<C>(like, layout) };
        state.alloc_layout(layout)
    }
}

/// Frees a shared manager's allocation of `layout`, on any thread.
///
/// # Safety
///
/// `ptr` must be a live allocation of `layout` from a live shared manager
/// with class table `C` (or `Global`'s), not used afterwards.
#[inline(always)]
pub(crate) unsafe fn dealloc<C: SizeClasses>(ptr: NonNull<u8>, layout: Layout) {
    match route(C::TABLE, layout.size(), layout.align()) {
        Route::Zero => {}
        Route::Pool(_) => {
            // SAFETY: a live block of a live pool (caller).
            let pool = unsafe { Pool::of(ptr) };
            if pool.tid() == thread::current() {
                // This thread holds the pool's slot: it owns the pool.
                pool.push(ptr);
            } else {
                // SAFETY: as above; any thread may push.
                unsafe { pool.push_remote(ptr) };
                count_remote_free::<C>(pool);
            }
        }
        // SAFETY: a live large allocation of a live manager (caller).
        Route::System => unsafe { free_large(ptr, layout) },
    }
}

/// Counts a remote free into `pool` in the freeing thread's own heap (the
/// pool of the same class), where no other thread writes: the owner of
/// `pool` never walks what it collects to count it, and the manager's
/// figures subtract these counts. A thread with no heap makes one; one with
/// no slot counts in the state's shared tally.
#[inline]
fn count_remote_free<C: SizeClasses>(pool: &Pool) {
    let (class, owner) = pool.class_and_owner();
    // SAFETY: a shared manager's pool names its live state (every heap of a
    // shared manager is made with its state as owner).
    let state = unsafe { &*owner.cast::<State<C>>() };
    match state.my_pools() {
        // SAFETY: this thread's heap (invariant), `class` one of its classes.
        Some(pools) => unsafe { State::<C>::pool(pools, class) }.count_remote_out(),
        None => state.count_remote_slow(class),
    }
}

/// Frees a large allocation (in the central heap) under the central lock.
///
/// # Safety
///
/// As [`dealloc`], for the large route.
#[inline(never)]
unsafe fn free_large(ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: the caller's guarantee; the footer names the central heap's
    // fallback, which holds its lock.
    unsafe {
        let fallback = system::fallback_of(ptr, layout);
        // (A central heap's fallback has a static lock.)
        let _locked = (*fallback.lock).lock();
        system::free_typed(ptr, layout);
    }
}

/// The state of the shared manager that made `like`, an allocation of
/// `layout`.
///
/// # Safety
///
/// `like` must be a live allocation of `layout` from a live shared manager
/// with class table `C`.
unsafe fn owner_of<'a, C: SizeClasses>(like: NonNull<u8>, layout: Layout) -> &'a State<C> {
    // SAFETY: the caller's guarantee: the pool or the footer is live, and
    // every heap of a shared manager has its state as `owner`, alive as long
    // as the manager.
    unsafe {
        let fallback = match route(C::TABLE, layout.size(), layout.align()) {
            Route::Pool(_) => Pool::of(like).fallback_ptr().as_ref(),
            _ => system::fallback_of(like, layout),
        };
        &*fallback.kind.owner.cast::<State<C>>()
    }
}

/// What a shared manager is built with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    chunks: ChunkConfig,
    budget: Option<usize>,
    name: Option<&'static str>,
    on_leak: Option<fn(&Leaks)>,
    source: source::Source,
    /// Whether the central heap keeps a chunk map (for the `Allocator`).
    map: bool,
}

/// A shared manager's state, made on its first use.
struct State<C: SizeClasses> {
    config: Config,
    /// The limit, and the bytes held by all the heaps.
    budget: SharedBudget,
    /// One more than the highest slot with a heap: where loops over the
    /// heaps stop.
    top: AtomicUsize,
    /// Allocations above every class, checked blocks, collections, and
    /// threads with no slot; used under `central.heap().fallback().lock`.
    central: MemoryManager<C>,
    /// Remote frees per class made by threads with no heap (no slot), to
    /// subtract from the figures like the heaps' `remote_out`.
    lost: [AtomicUsize; crate::MAX_CLASSES],
    /// The pools of each slot's heap, or null.
    heaps: [AtomicPtr<Pool>; MAX_THREADS],
}

impl<C: SizeClasses> State<C> {
    /// Allocates and initialises a state at a fixed address; `None` if the
    /// memory cannot be had.
    fn create(config: Config) -> Option<NonNull<State<C>>> {
        let layout = Layout::new::<State<C>>();
        // Zeroed: every `heaps` entry starts null (a null `AtomicPtr` is
        // all zero bits) and every `lost` count at zero, and the table costs
        // no resident memory until a thread takes a slot.
        let state = source::alloc_zeroed(config.source, layout)?.cast::<State<C>>();
        let s = state.as_ptr();
        let kind = HeapKind {
            source: config.source,
            map: config.map,
            owner: s.cast_const().cast(),
            budget: ptr::null(),
            // `Global` (the only shared manager without a chunk map) keeps
            // large allocations up to 4 MiB for reuse.
            big_cache: !config.map,
            lock: crate::sync::central_lock(!config.map),
        };
        // SAFETY: `state` is a fresh allocation of a `State<C>`; each field
        // but `heaps` and `lost` (already valid, zeroed) is written once. The central
        // heap charges the budget, at its final address.
        unsafe {
            (&raw mut (*s).config).write(config);
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
        }
        Some(state)
    }

    /// The heap kind of a thread's heap.
    fn thread_kind(&self) -> HeapKind {
        HeapKind {
            source: self.config.source,
            map: false,
            owner: ptr::from_ref(self).cast(),
            budget: &raw const self.budget,
            big_cache: false,
            lock: ptr::null(),
        }
    }

    /// The pools of this thread's heap, if it has a slot and the heap
    /// exists: the fast path's one table load.
    #[inline(always)]
    fn my_pools(&self) -> Option<NonNull<Pool>> {
        let cell = self.heaps.get(thread::current() as usize)?;
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
    fn my_pools_slow(&self) -> Option<NonNull<Pool>> {
        let t = thread::register();
        let cell = self.heaps.get(t as usize)?;
        if let Some(pools) = NonNull::new(cell.load(Ordering::Relaxed)) {
            return Some(pools);
        }
        let heap = Heap::<C>::try_new(
            self.config.chunks,
            None,
            self.config.name,
            self.thread_kind(),
            t,
        )?;
        // The allocator has returned (the re-entrancy rule, see `table.rs`):
        // a call it made into this manager on this thread may have made the
        // thread's heap meanwhile. That one stays (its blocks may be live);
        // ours goes, with nothing borrowed.
        // `Relaxed`: only this thread, the slot's holder, stores the entry.
        if let Some(made) = NonNull::new(cell.load(Ordering::Relaxed)) {
            drop(heap);
            return Some(made);
        }
        let pools = heap.into_raw();
        // `Release`: a reader on another thread (`stats`) that loads the
        // pointer with `Acquire` sees the heap initialised.
        cell.store(pools.as_ptr(), Ordering::Release);
        // `Relaxed`: only bounds loops that load each entry with `Acquire`.
        self.top.fetch_max(t as usize + 1, Ordering::Relaxed);
        Some(pools)
    }

    /// Pool `class` of the heap whose pools are at `pools`.
    ///
    /// # Safety
    ///
    /// `pools` must be a live heap's pools, and `class` a class of `C`.
    #[inline(always)]
    unsafe fn pool<'a>(pools: NonNull<Pool>, class: usize) -> &'a Pool {
        // SAFETY: the caller's guarantee; a heap has a plain pool per class
        // first.
        unsafe { &*pools.as_ptr().add(class) }
    }

    /// [`count_remote_free`] for a thread without a heap: makes one, or
    /// counts in `lost` if the thread has no slot.
    #[cold]
    #[inline(never)]
    fn count_remote_slow(&self, class: usize) {
        match self.my_pools_slow() {
            // SAFETY: this thread's heap (invariant), a class of `C`.
            Some(pools) => unsafe { State::<C>::pool(pools, class) }.count_remote_out(),
            // `Relaxed`: a statistic; the read-modify-write loses no count.
            None => drop(self.lost[class].fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// A block of class `class` from this thread's heap (or the central
    /// heap's, if it has none).
    #[inline(always)]
    fn alloc_class(&self, class: usize) -> Result<NonNull<u8>, Error> {
        match self.my_pools() {
            // SAFETY: this thread's live heap (invariant), a class of `C`
            // (from `route`).
            Some(pools) => unsafe { State::<C>::pool(pools, class) }.alloc(),
            None => self.alloc_class_slow(class),
        }
    }

    #[cold]
    #[inline(never)]
    fn alloc_class_slow(&self, class: usize) -> Result<NonNull<u8>, Error> {
        match self.my_pools_slow() {
            // SAFETY: as in `alloc_class`.
            Some(pools) => unsafe { State::<C>::pool(pools, class) }.alloc(),
            None => self.central(|mm| mm.heap().get(class).alloc()),
        }
    }

    /// Room for `layout`, routed at run time.
    #[inline]
    fn alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        match route(C::TABLE, layout.size(), layout.align()) {
            Route::Zero => Ok(dangling(layout)),
            Route::Pool(class) => self.alloc_class(class),
            Route::System => self.alloc_large(layout),
        }
    }

    /// A large allocation, from the central heap.
    #[inline(never)]
    fn alloc_large(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        self.central(|mm| system::alloc_typed(mm.heap().fallback(), layout))
    }

    /// Runs `f` on the central heap under its lock.
    fn central<R>(&self, f: impl FnOnce(&MemoryManager<C>) -> R) -> R {
        // SAFETY: the central heap's lock is a static one (`create`).
        let _locked = unsafe { &*self.central.heap().fallback().lock }.lock();
        f(&self.central)
    }

    /// Each thread heap, with its slot.
    fn thread_heaps(&self) -> impl Iterator<Item = (u32, NonNull<Pool>)> + '_ {
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
    fn class_stats(pools: NonNull<Pool>) -> impl Iterator<Item = ClassStats> {
        (0..C::TABLE.len()).map(move |class| {
            // SAFETY: a live heap's pool (invariant); only its counters and
            // fixed fields are read.
            let pool = unsafe { State::<C>::pool(pools, class) };
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
    fn collect_all(&self) {
        for (_, pools) in self.thread_heaps() {
            for class in 0..C::TABLE.len() {
                // SAFETY: a live heap (invariant), ours alone (caller).
                unsafe { State::<C>::pool(pools, class) }.collect();
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
    unsafe fn trim_heap(pools: NonNull<Pool>) -> usize {
        // SAFETY: the caller holds the slot, so the heap is ours for now;
        // it is given up again (not dropped) at the end.
        let heap = core::mem::ManuallyDrop::new(unsafe { Heap::<C>::from_raw(pools) });
        heap.iter().map(|p| p.trim()).sum::<usize>() + system::trim(heap.fallback())
    }
}

/// A memory manager for many threads: `Send + Sync`, usable as a `static`,
/// handing out [`SharedBox`]es that cross threads.
///
/// Each thread allocates from a heap of its own, with no atomic
/// read-modify-write on the fast path (a pop, as in [`MemoryManager`]); a
/// box dropped on the thread that allocated it goes back the same way, and
/// one dropped on another thread costs that thread one compare-and-swap.
/// When a thread exits, the next thread to start takes over its heap;
/// blocks other threads still hold stay valid throughout.
///
/// Allocations above the largest class, checked [`Block`](crate::Block)s and collections
/// (through the [`Allocator`](allocator_api2::alloc::Allocator)
/// implementation) share one central heap, taken under a lock: `free`,
/// `read` and `write` of a block race safely with each other on any
/// thread, and of two threads freeing one block at once exactly one gets
/// `Ok(())`.
///
/// # Examples
///
/// ```
/// use memory_mgr::SharedManager;
///
/// static PARTICLES: SharedManager = SharedManager::new();
///
/// #[derive(Debug, Clone, Copy, PartialEq)]
/// struct Particle { pos: [f32; 3], vel: [f32; 3] }
///
/// let made: Vec<_> = std::thread::scope(|s| {
///     let workers: Vec<_> = (0..4)
///         .map(|w| s.spawn(move || {
///             (0..100)
///                 .map(|i| PARTICLES.alloc(Particle { pos: [w as f32; 3], vel: [i as f32; 3] }))
///                 .collect::<Vec<_>>()
///         }))
///         .collect();
///     workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
/// });
/// assert_eq!(made.len(), 400);
/// assert_eq!(PARTICLES.stats().live(), 400);
/// drop(made); // freed on this thread: remote frees into the workers' heaps
/// PARTICLES.trim(); // the workers exited: their heaps take the frees back
/// assert_eq!(PARTICLES.stats().live(), 0);
/// ```
pub struct SharedManager<C: SizeClasses = DefaultClasses> {
    /// The state, made on first use (null until then).
    state: AtomicPtr<State<C>>,
    config: Config,
    _classes: PhantomData<fn(C) -> C>,
}

// SAFETY: the state's thread heaps are each touched by the thread that holds
// their slot only, its central heap under its lock only, and its counters
// are atomics (module invariant): any thread may use a `&SharedManager`, and
// moving the manager (which `&mut` or ownership makes exclusive) moves only
// the pointer to its state.
unsafe impl<C: SizeClasses> Send for SharedManager<C> {}
// SAFETY: as above.
unsafe impl<C: SizeClasses> Sync for SharedManager<C> {}

impl<C: SizeClasses> core::panic::UnwindSafe for SharedManager<C> {}
impl<C: SizeClasses> core::panic::RefUnwindSafe for SharedManager<C> {}

impl SharedManager {
    /// A shared manager with the [`DefaultClasses`]. A `const fn`: no
    /// memory is taken until the first allocation, so it can be a `static`.
    ///
    /// # Examples
    ///
    /// ```
    /// static MM: memory_mgr::SharedManager = memory_mgr::SharedManager::new();
    /// let b = MM.alloc(7u64);
    /// assert_eq!(*b, 7);
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        SharedManager::with_classes()
    }

    /// A [`SharedBuilder`]; finish it with
    /// [`build_shared`](SharedBuilder::build_shared) (or
    /// [`try_build_shared`](SharedBuilder::try_build_shared)).
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Leaks, SharedManager};
    ///
    /// fn report(leaks: &Leaks) {
    ///     eprintln!("audio: {} allocations leaked", leaks.total());
    /// }
    ///
    /// static AUDIO: SharedManager = SharedManager::builder()
    ///     .name("audio")
    ///     .budget(1 << 20)
    ///     .on_leak(report)
    ///     .build_shared();
    /// assert_eq!(AUDIO.budget(), Some(1 << 20));
    /// ```
    #[must_use]
    pub const fn builder() -> SharedBuilder {
        SharedBuilder::new()
    }
}

impl Default for SharedManager {
    fn default() -> Self {
        SharedManager::new()
    }
}

/// Configures a [`SharedManager`], as a [`Builder`] does a `MemoryManager`
/// (class table, chunk sizes, byte budget, name), with a leak hook that is
/// a function, `fn(&Leaks)`: [`build_shared`](Self::build_shared) is a
/// `const fn`, so that the manager can be a `static`, and a `static` cannot
/// hold a closure's captures. [`SharedManager::builder`] makes one.
#[derive(Clone, Copy)]
pub struct SharedBuilder<C: SizeClasses = DefaultClasses> {
    inner: Builder<C>,
}

impl<C: SizeClasses> fmt::Debug for SharedBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedBuilder").field(&self.inner).finish()
    }
}

impl SharedBuilder {
    /// The default configuration, as [`Builder::new`]'s.
    #[must_use]
    pub const fn new() -> Self {
        SharedBuilder {
            inner: Builder::new(),
        }
    }
}

impl Default for SharedBuilder {
    fn default() -> Self {
        SharedBuilder::new()
    }
}

impl<C: SizeClasses> SharedBuilder<C> {
    /// Uses the class table `D`, as [`Builder::classes`].
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{FineClasses, SharedManager};
    /// static MM: SharedManager<FineClasses> =
    ///     SharedManager::builder().classes::<FineClasses>().build_shared();
    /// assert_eq!(MM.classes().len(), 32);
    /// ```
    #[must_use]
    pub const fn classes<D: SizeClasses>(self) -> SharedBuilder<D> {
        SharedBuilder {
            inner: self.inner.classes(),
        }
    }

    /// A function called when the manager is dropped with allocations
    /// still live, with what leaked (see [`Builder::on_leak`]). A function
    /// item or a closure that captures nothing; a closure that captures
    /// does not compile (a `static` manager cannot hold its captures).
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Leaks, SharedManager};
    ///
    /// fn report(leaks: &Leaks) {
    ///     eprintln!("jobs: {} allocations leaked", leaks.total());
    /// }
    ///
    /// static JOBS: SharedManager = SharedManager::builder().on_leak(report).build_shared();
    ///
    /// let mm = SharedManager::builder().on_leak(|leaks| assert_eq!(leaks.total(), 1)).build_shared();
    /// let _forgotten = mm.alloc_block(16)?;
    /// drop(mm); // calls the closure
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    ///
    /// A closure that captures is refused ("closures can only be coerced to
    /// `fn` types if they do not capture any variables"):
    ///
    /// ```compile_fail
    /// let subsystem = String::from("audio");
    /// let mm = memory_mgr::SharedManager::builder()
    ///     .on_leak(move |leaks| eprintln!("{subsystem}: {} leaked", leaks.total()))
    ///     .build_shared();
    /// ```
    #[must_use]
    pub const fn on_leak(self, hook: fn(&Leaks)) -> Self {
        SharedBuilder {
            inner: self.inner.on_leak(hook),
        }
    }

    /// A cap on the bytes the manager holds from the system allocator, all
    /// its heaps together, as [`Builder::budget`].
    #[must_use]
    pub const fn budget(self, bytes: usize) -> Self {
        SharedBuilder {
            inner: self.inner.budget(bytes),
        }
    }

    /// A name for the manager, as [`Builder::name`].
    #[must_use]
    pub const fn name(self, name: &'static str) -> Self {
        SharedBuilder {
            inner: self.inner.name(name),
        }
    }

    /// Size of each pool's first chunk, as
    /// [`Builder::initial_chunk_size`].
    #[must_use]
    pub const fn initial_chunk_size(self, bytes: usize) -> Self {
        SharedBuilder {
            inner: self.inner.initial_chunk_size(bytes),
        }
    }

    /// Cap on chunk sizes, as [`Builder::max_chunk_size`].
    #[must_use]
    pub const fn max_chunk_size(self, bytes: usize) -> Self {
        SharedBuilder {
            inner: self.inner.max_chunk_size(bytes),
        }
    }

    /// Builds the [`SharedManager`]: a `const fn`, for a `static`.
    ///
    /// # Panics
    ///
    /// If the chunk sizes are out of range (see [`Builder::build`]'s
    /// errors) — in a `static`, a compile-time error;
    /// [`try_build_shared`](Self::try_build_shared) returns it instead.
    ///
    /// # Examples
    ///
    /// ```
    /// static JOBS: memory_mgr::SharedManager =
    ///     memory_mgr::SharedManager::builder().name("jobs").build_shared();
    /// assert_eq!(JOBS.name(), Some("jobs"));
    /// ```
    #[must_use]
    pub const fn build_shared(self) -> SharedManager<C> {
        self.inner.build_shared()
    }

    /// Builds the [`SharedManager`], or says why the configuration is
    /// wrong.
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, SharedManager};
    /// let bad = SharedManager::builder().initial_chunk_size(100).try_build_shared();
    /// assert!(matches!(bad, Err(Error::InvalidConfig(_))));
    /// ```
    pub fn try_build_shared(self) -> Result<SharedManager<C>, Error> {
        self.inner.try_build_shared()
    }
}

impl<C: SizeClasses> Builder<C> {
    /// Builds a [`SharedManager`]: a `const fn`, for a `static`. (With a
    /// leak hook, [`SharedManager::builder`] is the builder to use: its
    /// [`on_leak`](SharedBuilder::on_leak) takes a function as it is. This
    /// one keeps the hook's own type, so a function must be given to it as
    /// `f as fn(&Leaks)`.)
    ///
    /// # Panics
    ///
    /// If the chunk sizes are out of range (see [`Builder::build`]'s
    /// errors) — in a `static`, a compile-time error;
    /// [`try_build_shared`](Self::try_build_shared) returns it instead.
    ///
    /// # Examples
    ///
    /// ```
    /// static JOBS: memory_mgr::SharedManager =
    ///     memory_mgr::MemoryManager::builder().name("jobs").build_shared();
    /// assert_eq!(JOBS.name(), Some("jobs"));
    /// ```
    #[must_use]
    pub const fn build_shared(self) -> SharedManager<C> {
        match self.shared_config() {
            Ok(config) => SharedManager::with_config(config),
            Err(_) => panic!("memory_mgr: chunk sizes out of range (see Builder::build)"),
        }
    }

    /// Builds a [`SharedManager`], or says why the configuration is wrong.
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let bad = MemoryManager::builder().initial_chunk_size(100).try_build_shared();
    /// assert!(matches!(bad, Err(Error::InvalidConfig(_))));
    /// ```
    pub fn try_build_shared(self) -> Result<SharedManager<C>, Error> {
        self.shared_config().map(SharedManager::with_config)
    }

    const fn shared_config(&self) -> Result<Config, Error> {
        let chunks = match self.chunk_config() {
            Ok(c) => c,
            Err(e) => return Err(e),
        };
        let (budget, name, on_leak) = self.parts();
        Ok(Config {
            chunks,
            budget,
            name,
            on_leak,
            source: source::Source::Global,
            map: true,
        })
    }
}

impl<C: SizeClasses> SharedManager<C> {
    /// A shared manager with the class table `C`.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{SharedManager, WideClasses};
    /// static MM: SharedManager<WideClasses> = SharedManager::with_classes();
    /// assert_eq!(MM.classes().sizes().last(), Some(&65536));
    /// ```
    #[must_use]
    pub const fn with_classes() -> Self {
        SharedManager::with_config(Config {
            chunks: ChunkConfig {
                initial: DEFAULT_INITIAL_CHUNK,
                max: crate::chunk::SEGMENT,
            },
            budget: None,
            name: None,
            on_leak: None,
            source: source::Source::Global,
            map: true,
        })
    }

    pub(crate) const fn with_config(config: Config) -> Self {
        SharedManager {
            state: AtomicPtr::new(ptr::null_mut()),
            config,
            _classes: PhantomData,
        }
    }

    /// `Global`'s configuration: memory from `System`, no chunk map.
    pub(crate) const fn for_global() -> Self {
        let mut m = SharedManager::with_classes();
        m.config.source = source::Source::System;
        m.config.map = false;
        m
    }

    /// The state, if made.
    #[inline(always)]
    fn state_if_made(&self) -> Option<&State<C>> {
        // `Acquire`: pairs with the `Release` of the CAS that published the
        // state, so it is seen initialised.
        let s = self.state.load(Ordering::Acquire);
        // SAFETY: a published state lives until the manager is dropped.
        unsafe { s.as_ref() }
    }

    /// The state, made now if need be.
    #[inline(always)]
    fn state(&self) -> Result<&State<C>, Error> {
        match self.state_if_made() {
            Some(s) => Ok(s),
            None => self.make_state(),
        }
    }

    #[cold]
    #[inline(never)]
    fn make_state(&self) -> Result<&State<C>, Error> {
        let Some(fresh) = State::<C>::create(self.config) else {
            return Err(Error::OutOfMemory {
                size: size_of::<State<C>>(),
                align: align_of::<State<C>>(),
            });
        };
        // `Release` on success: publishes the initialised state (see
        // `state_if_made`). `Acquire` on failure: we use the winner's.
        match self.state.compare_exchange(
            ptr::null_mut(),
            fresh.as_ptr(),
            Ordering::Release,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                #[cfg(unix)]
                fork::install();
                // SAFETY: just published; lives until the manager is dropped.
                Ok(unsafe { fresh.as_ref() })
            }
            Err(winner) => {
                // SAFETY: ours was never shared; the winner's is published.
                unsafe {
                    destroy(fresh);
                    Ok(&*winner)
                }
            }
        }
    }

    /// Room for `layout` (for `Global` and the `Allocator`-free paths).
    #[inline(always)]
    pub(crate) fn alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        self.state()?.alloc_layout(layout)
    }

    /// Room for one `T`, routed at compile time.
    #[inline(always)]
    fn alloc_raw<T>(&self) -> Result<NonNull<T>, Error> {
        match const { route(C::TABLE, size_of::<T>(), align_of::<T>()) } {
            Route::Zero => Ok(NonNull::dangling()),
            Route::Pool(class) => self.state()?.alloc_class(class).map(NonNull::cast),
            Route::System => self
                .state()?
                .alloc_large(Layout::new::<T>())
                .map(NonNull::cast),
        }
    }

    /// The class table this manager uses.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// assert_eq!(mm.classes().sizes(), &[8, 16, 32, 64, 128, 256, 512]);
    /// ```
    #[must_use]
    pub fn classes(&self) -> &'static crate::ClassTable {
        C::TABLE
    }

    /// The name this manager was built with, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::builder().name("ai").try_build_shared()?;
    /// assert_eq!(mm.name(), Some("ai"));
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> Option<&'static str> {
        self.config.name
    }

    /// The byte budget, if any: what all the heaps together may hold.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::builder().budget(4096).try_build_shared()?;
    /// assert_eq!(mm.budget(), Some(4096));
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub fn budget(&self) -> Option<usize> {
        self.config.budget
    }

    /// Runs `f` on the central heap under its lock (making the state if
    /// need be).
    fn central<R>(&self, f: impl FnOnce(&MemoryManager<C>) -> R) -> Result<R, Error> {
        Ok(self.state()?.central(f))
    }

    // ----- checked blocks ----------------------------------------------------

    /// Runs `f` with the manager that holds this manager's checked blocks:
    /// the central one, under its lock (`api.rs` writes the block methods
    /// once over both managers).
    #[inline]
    pub(crate) fn blocks_at<R>(&self, f: impl FnOnce(&MemoryManager<C>) -> R) -> Result<R, Error> {
        self.central(f)
    }

    // ----- capacity ------------------------------------------------------------

    /// Grows this thread's pool for `T` so that `additional` more `T`s need
    /// no new chunk (other threads' heaps are theirs to grow).
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::reserve`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// mm.reserve::<[u8; 64]>(1000)?;
    /// let before = mm.stats().reserved_bytes();
    /// let v: Vec<_> = (0..1000).map(|_| mm.alloc([0u8; 64])).collect();
    /// assert_eq!(mm.stats().reserved_bytes(), before);
    /// # drop(v);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn reserve<T>(&self, additional: usize) -> Result<(), Error> {
        if size_of::<T>() == 0 {
            return Ok(());
        }
        let state = self.state()?;
        match state.my_pools().or_else(|| state.my_pools_slow()) {
            Some(pools) => {
                // SAFETY: this thread's heap (invariant), kept as it is.
                let heap = core::mem::ManuallyDrop::new(unsafe { Heap::<C>::from_raw(pools) });
                heap.reserve(size_of::<T>(), align_of::<T>(), None, additional)
            }
            None => state.central(|mm| mm.reserve::<T>(additional)),
        }
    }

    /// Grows the checked-block pool that serves `size`-byte blocks.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::reserve_blocks`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// mm.reserve_blocks(100, 10)?;
    /// assert!(mm.stats().reserved_bytes() > 0);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn reserve_blocks(&self, size: usize, additional: usize) -> Result<(), Error> {
        self.central(|mm| mm.reserve_blocks(size, additional))?
    }

    /// Gives back to the system every chunk without a live allocation in
    /// this thread's heap, in the heaps of threads that exited (their slots
    /// free, claimed for the moment) and in the central heap; returns the
    /// bytes released. Heaps of running threads are theirs to trim.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| drop((0..1_000).map(|i| mm.alloc(i)).collect::<Vec<_>>()))
    ///         .join() // (a join waits for the thread's exit, slot given back)
    ///         .unwrap();
    /// });
    /// // The worker exited: its heap is trimmed from here.
    /// assert!(mm.trim() > 0);
    /// assert_eq!(mm.stats().reserved_bytes(), 0);
    /// ```
    pub fn trim(&self) -> usize {
        let Some(state) = self.state_if_made() else {
            return 0;
        };
        let me = thread::current();
        let mut released = 0;
        for (t, pools) in state.thread_heaps() {
            if t == me {
                // SAFETY: this thread holds slot `t`; `pools` is heap `t`'s.
                released += unsafe { State::<C>::trim_heap(pools) };
            } else if thread::REGISTRY.claim(t) {
                /// Gives the claimed slot back, also if the trim panics.
                struct Claimed(u32);
                impl Drop for Claimed {
                    fn drop(&mut self) {
                        thread::REGISTRY.release(self.0);
                    }
                }
                let _claimed = Claimed(t);
                // SAFETY: slot `t` was free and is ours until `_claimed` drops.
                released += unsafe { State::<C>::trim_heap(pools) };
            }
        }
        // (Not the stores' pages: another thread may be reading them.)
        released + state.central(|mm| mm.trim_except_stores())
    }

    /// Frees everything at once (see [`MemoryManager::reset`]): every heap
    /// keeps its chunks as free capacity, and every [`Block`](crate::Block) handed out
    /// before becomes stale. `&mut self`: no box and no other thread's use
    /// of the manager can be alive.
    ///
    /// # Panics
    ///
    /// As [`MemoryManager::reset`] (the `debug-fill` check).
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, SharedManager};
    /// let mut mm = SharedManager::new();
    /// let b = mm.alloc_block(8)?;
    /// std::mem::forget(mm.alloc(1u32));
    /// mm.reset();
    /// assert_eq!(mm.stats().live(), 0);
    /// assert_eq!(mm.free(b), Err(Error::FreedByReset));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn reset(&mut self) {
        let Some(state) = self.state_if_made() else {
            return;
        };
        let mut written = None;
        for (_, pools) in state.thread_heaps() {
            // SAFETY: `&mut self`: no other thread uses the manager now (any
            // that did was joined, which orders its writes before ours), so
            // every heap is ours; it is given up again, not dropped.
            let mut heap = core::mem::ManuallyDrop::new(unsafe { Heap::<C>::from_raw(pools) });
            let w = heap.reset();
            written = written.or(w);
            heap.iter().for_each(Pool::clear_remote_out);
        }
        for lost in &state.lost {
            // `Relaxed`: `&mut self`, no other thread to order with.
            lost.store(0, Ordering::Relaxed);
        }
        // SAFETY: `&mut self`: the state is ours alone. Only the central
        // manager is borrowed mutably (not the whole state: the heaps hold
        // pointers to its budget).
        let central = unsafe { &mut (*self.state.load(Ordering::Relaxed)).central };
        central.reset();
        if let Some(w) = written {
            w.panic();
        }
    }

    // ----- statistics ----------------------------------------------------------

    /// What the manager holds: the sum over every thread's heap and the
    /// central heap. Each figure is one the heap had at some moment while
    /// `stats` ran, not a cut across heaps taken at one instant (a block
    /// freed on another thread is counted by the freeing thread, and may be
    /// seen freed a moment before or after its owner's count moves); `peak`
    /// is the sum of the heaps' peaks (an upper bound). Once the threads are
    /// joined, the figures are exact.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// let a = mm.alloc(1u64);
    /// let b = std::thread::scope(|s| s.spawn(|| mm.alloc(2u64)).join().unwrap());
    /// assert_eq!(mm.stats().live(), 2);
    /// assert_eq!(mm.stats().classes[0].live_boxes, 2);
    /// # drop((a, b));
    /// ```
    #[must_use]
    pub fn stats(&self) -> Stats {
        let Some(state) = self.state_if_made() else {
            return empty_stats::<C>(self.config);
        };
        // The rows are allocated before the lock is taken: on a thread with
        // no slot an allocation uses the central heap, and for `Global` that
        // is this lock.
        let rows = alloc::vec::Vec::with_capacity(C::TABLE.len());
        let mut s = state.central(|mm| mm.snapshot_in(rows));
        let mut freed_remotely: [usize; crate::MAX_CLASSES] =
            // `Relaxed`: statistics.
            core::array::from_fn(|c| state.lost[c].load(Ordering::Relaxed));
        for (_, pools) in state.thread_heaps() {
            s.add(State::<C>::class_stats(pools));
            for (class, n) in freed_remotely.iter_mut().enumerate().take(C::TABLE.len()) {
                // SAFETY: a live heap's pool (invariant): a counter read.
                *n += unsafe { State::<C>::pool(pools, class) }.remote_out();
            }
        }
        for (row, n) in s.classes.iter_mut().zip(freed_remotely) {
            // Saturating: the counts are read at different moments.
            row.live_boxes = row.live_boxes.saturating_sub(n);
            row.frees = row.allocs.saturating_sub(row.live());
        }
        s.name = self.config.name;
        s.budget = self.config.budget;
        s
    }

    /// The allocations still live, per class (see [`MemoryManager::leaks`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// let b = mm.alloc_block(20)?;
    /// assert_eq!(mm.leaks().total(), 1);
    /// mm.free(b)?;
    /// assert!(mm.leaks().is_empty());
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub fn leaks(&self) -> Leaks {
        Leaks::of(&self.stats())
    }

    /// Whether every heap's internal lists agree with its counters (for
    /// tests). `&mut self`: each heap first takes its remote frees.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::SharedManager::new();
    /// drop(mm.alloc(1u8));
    /// assert!(mm.is_consistent());
    /// ```
    #[must_use]
    pub fn is_consistent(&mut self) -> bool {
        let Some(state) = self.state_if_made() else {
            return true;
        };
        // Each pool's lists; then, per class, free + never-used + live
        // blocks over all heaps add up to the capacity, live counting the
        // remote frees once (as `stats` does).
        let classes = C::TABLE.len();
        let mut sums = alloc::vec![(0usize, 0usize, 0usize); classes]; // (free, live, capacity)
        let mut ok = true;
        let mut tally = |pool: &Pool, class: usize, remote_out: usize| {
            pool.collect();
            ok &= pool.is_valid();
            let s = &mut sums[class];
            s.0 += pool.free_blocks();
            // Wrapping: a heap's remote frees may exceed its own live count
            // (they are of other heaps' blocks); the sum is exact.
            s.1 = s.1.wrapping_add(pool.live()).wrapping_sub(remote_out);
            s.2 += pool.capacity();
        };
        for (_, pools) in state.thread_heaps() {
            for class in 0..classes {
                // SAFETY: `&mut self`, as in `reset`: every heap is ours.
                let pool = unsafe { State::<C>::pool(pools, class) };
                tally(pool, class, pool.remote_out());
            }
        }
        let central_ok = state.central(|mm| {
            for (class, pool) in mm.heap().iter().enumerate() {
                // `Relaxed`: exclusive access.
                tally(pool, class, state.lost[class].load(Ordering::Relaxed));
            }
            mm.blocks().is_valid()
        });
        ok && central_ok
            && sums
                .iter()
                .all(|&(free, live, cap)| free.wrapping_add(live) == cap)
    }
}

/// The figures of a manager that has allocated nothing yet.
fn empty_stats<C: SizeClasses>(config: Config) -> Stats {
    Stats {
        name: config.name,
        classes: C::TABLE
            .sizes()
            .iter()
            .map(|&block_size| ClassStats {
                block_size,
                ..ClassStats::default()
            })
            .collect(),
        system: Default::default(),
        handles: Default::default(),
        budget: config.budget,
    }
}

/// Drops a state and frees its memory.
///
/// # Safety
///
/// `state` must come from [`State::create`], not be used afterwards, and no
/// allocation of it may be used afterwards.
unsafe fn destroy<C: SizeClasses>(state: NonNull<State<C>>) {
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
        let _free = Free(state, (*s).config.source);
        for cell in &(*s).heaps {
            if let Some(pools) = NonNull::new(cell.load(Ordering::Relaxed)) {
                drop(Heap::<C>::from_raw(pools));
            }
        }
        ptr::drop_in_place(&raw mut (*s).central);
    }
}

impl<C: SizeClasses> Drop for SharedManager<C> {
    fn drop(&mut self) {
        let Some(state) = NonNull::new(*self.state.get_mut()) else {
            return;
        };
        /// Frees the state when dropped: after the leak report, or while a
        /// panicking leak hook unwinds.
        struct Destroy<C: SizeClasses>(NonNull<State<C>>);
        impl<C: SizeClasses> Drop for Destroy<C> {
            fn drop(&mut self) {
                // SAFETY: made in the manager's drop (`&mut self`: no box
                // borrows the manager), dropped once, after which nothing of
                // the state is used.
                unsafe { destroy(self.0) };
            }
        }
        let destroy = Destroy(state);
        // SAFETY: `&mut self`: the state and every heap are ours alone.
        unsafe { state.as_ref() }.collect_all();
        let leaks = self.leaks();
        if !leaks.is_empty() {
            match self.config.on_leak {
                Some(hook) => hook(&leaks),
                None => default_leak_report(&leaks),
            }
        }
        drop(destroy);
    }
}

impl<C: SizeClasses> fmt::Debug for SharedManager<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::manager::debug_manager(f, "SharedManager", C::TABLE.sizes(), &self.stats())
    }
}

// ----- boxes ------------------------------------------------------------------

impl<'m, C: SizeClasses> Source<'m, C> for &'m SharedManager<C> {
    type Kind = Shared;

    #[inline(always)]
    fn alloc_raw<T>(self) -> Result<NonNull<T>, Error> {
        SharedManager::alloc_raw::<T>(self)
    }

    #[inline]
    fn alloc_array<T>(self, len: usize) -> Result<NonNull<T>, Error> {
        let layout = Layout::array::<T>(len).map_err(|_| Error::LayoutOverflow {
            size: size_of::<T>().saturating_mul(len),
            align: align_of::<T>(),
        })?;
        self.alloc_layout(layout).map(NonNull::cast)
    }
}

impl<C: SizeClasses> SharedManager<C> {
    /// Runs `f` with the central heap (a `MemoryManager` used under the
    /// lock), for the `Allocator` implementation.
    #[cfg(feature = "allocator-api2")]
    pub(crate) fn with_central<R>(
        &self,
        f: impl FnOnce(&MemoryManager<C>) -> R,
    ) -> Result<R, Error> {
        self.central(f)
    }
}

/// `fork` in a program with several threads: a child has only the thread
/// that forked, so a central lock another thread held at that moment would
/// stay locked forever in the child. A `pthread_atfork` handler takes every
/// central lock before the fork (so none is held in the middle of an
/// operation) and releases them after it, in the parent and in the child.
/// The locks are static (`sync::CENTRAL_LOCKS`, `sync::GLOBAL_LOCKS`), so
/// the handler never touches freed memory, and `Global`'s are taken last: a
/// thread holding another manager's lock may go on to take `Global`'s (its
/// central heap allocates through the global allocator), never the other
/// way round. The other threads' heaps stay in the child as heaps of exited
/// threads (their slots stay taken).
///
/// The program's own handlers run on the forking thread while the locks are
/// held: the prepare handlers registered before this one (prepare handlers
/// run in reverse order of registration) and the parent and child handlers
/// registered before it (those run in order). One that allocates from a
/// shared manager — a large value, a checked block, a collection, anything
/// under `Global` that reaches its central heap — would wait forever for a
/// lock its own thread holds. So while the locks are held the forking
/// thread goes through them without taking them (`sync::fork`, where the
/// argument is: no other thread can be in a critical section then, and the
/// forking thread's own run one at a time).
/// Test: tests/fork_prepare.rs.
mod handles;

#[cfg(unix)]
mod fork {
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
            unsafe { pthread_atfork(Some(prepare), Some(release), Some(release)) };
        }
    }

    /// Before `fork`: takes every central lock, `Global`'s last, and lets
    /// this thread through them until `release`.
    unsafe extern "C" fn prepare() {
        sync::fork::take_all();
    }

    /// After `fork`, in the parent and in the child (whose only thread is
    /// the one that ran `prepare`): releases them.
    unsafe extern "C" fn release() {
        // SAFETY: `prepare` took them on this thread: the C library runs
        // the parent or child handlers on the thread that ran the prepare
        // handlers, after them, and keeps its list of handlers locked from
        // the first to the last (glibc, musl), so a handler installed by
        // another thread meanwhile is not run half.
        unsafe { sync::fork::release_all() };
    }
}
