//! `SharedManager`: one manager for many threads — a heap per thread, and
//! boxes that cross threads.
//!
//! Each thread that allocates gets a heap of its own (the same [`Heap`](crate::heap::Heap) a
//! `MemoryManager` has) in a flat table indexed by its thread slot (see
//! `thread.rs`): allocation is a pop from the thread's pool, with no atomic
//! read-modify-write, and so is a free on the thread that owns the block's
//! pool. A block freed on another thread is pushed onto its pool's
//! remote-free list with one compare-and-swap; the owner takes the whole
//! list when its free list is empty, before it hands out a never-used
//! block or asks for another chunk — so a thread that only allocates, fed
//! by one that only frees, reuses its memory and touches no new page. A thread that exits first collects and trims
//! its heap in every shared manager, and frees a heap left with no chunk
//! (see `exit.rs`); then it gives its slot back, and the next thread given
//! that slot takes over what heap is left as it is (no chunk changes
//! hands, so every block other threads hold stays valid).
//!
//! What several threads must share — allocations above the largest class,
//! checked blocks, collections through the `Allocator` implementation, and
//! threads with no slot (more than [`MAX_THREADS`] at once, or a thread's
//! own thread-local destructors after its slot went back) — goes to one
//! central heap, a `MemoryManager` used under a lock.
//!
//! Invariant, relied on by every `unsafe` block of this module and its files:
//! - `State::heaps[t]` is null or the pools of a live heap made for slot
//!   `t`. Only the thread that holds slot `t` (or a `trim` that claimed the
//!   free slot) stores to it: a new heap where it is null, or null where
//!   its heap holds no chunk and nothing on its large path — a heap no
//!   block of which exists — which is then freed once no reader of
//!   `heaps` can hold it (`sync::Readers`: a thread on another slot loads
//!   `heaps[t]` and follows it only while counted in, `State::reading`).
//!   A manager's drop frees the heaps left. The `Cell`s of heap `t` are
//!   touched only by the holder of slot `t`, so never by two threads at
//!   once; other threads touch only its pools' remote-free lists (while
//!   they hold a live block of it) and read its
//!   [`Counter`](crate::sync::Counter)s (while counted in). A `&mut`
//!   operation on the manager touches every heap, holding off the exit
//!   hooks of threads not joined yet (`exit::exclude_exits`).
//! - The central heap is touched only under its heap record's lock.
//! - The state lives at a fixed address from its creation until the
//!   manager is dropped.
//! - `SharedManager::heaps` points to the first of `MAX_THREADS + 1`
//!   entries: [`NO_HEAPS`] (all null, never written) until the state is
//!   made, then the state's `heaps`.

mod boxes;
mod builder;
mod capacity;
#[cfg(feature = "allocator-api2")]
mod collections;
pub(crate) mod exit;
#[cfg(unix)]
mod fork;
mod handles;
mod state;
mod stats;

pub(crate) use boxes::dealloc;
pub use builder::SharedBuilder;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
pub(crate) use state::Config;
use state::{destroy, State};

use crate::manager::{default_leak_report, DEFAULT_INITIAL_CHUNK};
use crate::pool::{ChunkConfig, Pool};
use crate::pool_box::{PoolBox, Shared};
use crate::size_class::SizeClasses;
use crate::source;
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

/// The table of thread heaps of a manager whose state is not made: every
/// entry null, never written (see `SharedManager::my_pools`).
static NO_HEAPS: [AtomicPtr<Pool>; MAX_THREADS + 1] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_THREADS + 1];

static_assertions::assert_impl_all!(SharedBox<'static, u64>: Send, Sync);
static_assertions::assert_not_impl_any!(SharedBox<'static, core::cell::Cell<u64>>: Sync);
static_assertions::assert_not_impl_any!(SharedBox<'static, *const u8>: Send, Sync);
static_assertions::assert_eq_size!(SharedBox<'static, u64>, usize);
static_assertions::assert_impl_all!(SharedManager: Send, Sync);

/// A memory manager for many threads: `Send + Sync`, usable as a `static`,
/// handing out [`SharedBox`]es that cross threads.
///
/// Each thread allocates from a heap of its own, with no atomic
/// read-modify-write on the fast path (a pop, as in [`MemoryManager`]); a
/// box dropped on the thread that allocated it goes back the same way, and
/// one dropped on another thread costs that thread one compare-and-swap.
/// When a thread exits, its heap takes back the blocks other threads freed
/// into it and gives its empty chunks back to the system, and a heap left
/// empty is freed; a heap with blocks still live stays for the next thread
/// given the slot. Blocks other threads still hold stay valid throughout.
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
///             (0..25)
///                 .map(|i| PARTICLES.alloc(Particle { pos: [w as f32; 3], vel: [i as f32; 3] }))
///                 .collect::<Vec<_>>()
///         }))
///         .collect();
///     workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
/// });
/// assert_eq!(made.len(), 100);
/// assert_eq!(PARTICLES.stats().live(), 100);
/// drop(made); // freed on this thread: remote frees into the workers' heaps
/// PARTICLES.trim(); // the workers exited: their heaps take the frees back
/// assert_eq!(PARTICLES.stats().live(), 0);
/// ```
pub struct SharedManager<C: SizeClasses = DefaultClasses> {
    /// The state, made on first use (null until then).
    state: AtomicPtr<State<C>>,
    /// The state's table of thread heaps, or [`NO_HEAPS`] until the state
    /// is made: an allocation reads its heap through it with no test of
    /// the state (see `my_pools`).
    heaps: AtomicPtr<AtomicPtr<Pool>>,
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
            heaps: AtomicPtr::new(
                ptr::from_ref(&NO_HEAPS)
                    .cast::<AtomicPtr<Pool>>()
                    .cast_mut(),
            ),
            config,
            _classes: PhantomData,
        }
    }

    /// `Global`'s configuration: memory from the system (`System`, and the
    /// segments for chunks and records of 8 KiB to 1 MiB), no chunk map.
    pub(crate) const fn for_global() -> Self {
        let mut m = SharedManager::with_classes();
        m.config.source = source::Source::System;
        m.config.map = false;
        m
    }

    /// The pools of this thread's heap, if the state is made, the thread
    /// has a slot and its heap exists: two loads and a test, with no test
    /// of the state (a manager whose state is not made reads [`NO_HEAPS`])
    /// or of the slot (a thread with none reads the last entry, null).
    #[inline(always)]
    fn my_pools(&self) -> Option<NonNull<Pool>> {
        // `Acquire`: pairs with the `Release` store in `publish_heaps`, so
        // the state's table is seen initialised (zero: every entry null).
        let table = self.heaps.load(Ordering::Acquire);
        // SAFETY: `table` points to `MAX_THREADS + 1` entries alive as long
        // as the manager (invariant), and `heap_index` is at most
        // `MAX_THREADS`.
        let cell = unsafe { &*table.add(thread::heap_index()) };
        // `Relaxed`: as `State::my_pools` (this thread holds the slot, or
        // reads a null that no one writes).
        NonNull::new(cell.load(Ordering::Relaxed))
    }

    /// Points `heaps` to the made state's table.
    fn publish_heaps(&self, state: &State<C>) {
        // `Release`: pairs with the `Acquire` in `my_pools`. Every thread
        // that makes or finds the state stores the same pointer.
        self.heaps
            .store(state.heaps.as_ptr().cast_mut(), Ordering::Release);
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
                let state = unsafe { fresh.as_ref() };
                self.publish_heaps(state);
                Ok(state)
            }
            Err(winner) => {
                // SAFETY: ours was never shared; the winner's is published.
                let state = unsafe {
                    destroy(fresh);
                    &*winner
                };
                // (The winner publishes its table too: the same pointer.)
                self.publish_heaps(state);
                Ok(state)
            }
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
        // Off the list of states before any heap is touched: an exit hook
        // of a thread not joined yet (a scoped thread's runs after the
        // scope) that was collecting one has finished, and none will start.
        // SAFETY: the state lives until `destroy` drops.
        exit::unlink(&unsafe { state.as_ref() }.link);
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
