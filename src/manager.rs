//! `MemoryManager`: routes each request to its size-class pool or to the
//! system allocator, and is the safe public API over the raw core.
#![deny(unsafe_code)]

use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::NonNull;

use crate::checked::BlockHeap;
use crate::chunk::SEGMENT;
use crate::heap::Heap;
use crate::pool::ChunkConfig;
use crate::size_class::{ClassTable, SizeClasses};
use crate::stats::{ClassStats, HandleStats, Leaks, Stats, SystemStats};
use crate::store::Stores;
use crate::{Block, DefaultClasses, Error};

/// Default size of each pool's first chunk: 16 KiB.
pub(crate) const DEFAULT_INITIAL_CHUNK: usize = 16 << 10;

/// What a shared manager's `SharedBuilder::on_leak` takes (it is built in
/// a `const` context).
pub(crate) type LeakHook = fn(&Leaks);

/// A manager's leak hook: what [`Builder::on_leak`] was given.
enum Hook {
    /// A function (a shared manager's central heap, which reports nothing).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    Fn(fn(&Leaks)),
    /// Any closure.
    Boxed(alloc::boxed::Box<dyn FnOnce(&Leaks) + Send>),
}
/// Smallest chunk size a [`Builder`] accepts: 4 KiB.
const MIN_CHUNK: usize = 4 << 10;

/// A memory manager: one pool per size class of `C`, plus the system
/// allocator for larger requests.
///
/// A plain value, not a global: make one per subsystem. It is `Send` but not
/// `Sync` — no atomics on the fast path. Dropping it releases every chunk,
/// whatever is still allocated; the [`PoolBox`](crate::PoolBox)es it hands out borrow it, so
/// none can outlive it.
///
/// # Examples
///
/// ```
/// use memory_mgr::{Block, Error, MemoryManager, PoolBox};
///
/// let mm = MemoryManager::new(); // default classes: 8..=512 bytes
/// let p: PoolBox<'_, [u64; 4]> = mm.alloc([1, 2, 3, 4]);
/// let q = mm.try_alloc(7u32)?;
/// assert_eq!(PoolBox::into_inner(q), 7);
///
/// let b: Block = mm.alloc_block(24)?; // 24 bytes -> the 32-byte class
/// assert!(mm.block_size(b)? >= 24);
/// mm.free(b)?;
/// assert!(matches!(mm.free(b), Err(Error::DoubleFree)));
/// # drop(p);
/// # Ok::<(), Error>(())
/// ```
///
/// It is not `Sync` (a compiler error naming `Cell` or `UnsafeCell` inside
/// `MemoryManager` means this): to share one manager between threads use
/// a [`SharedManager`](crate::SharedManager) (`Sync`, a heap per thread),
/// or put the manager — or the `World` that owns it — in a `Mutex`.
///
/// ```compile_fail
/// fn is_sync<T: Sync>() {}
/// is_sync::<memory_mgr::MemoryManager>();
/// ```
///
/// It is invariant in its class table `C`, and so is a [`PoolBox`](crate::PoolBox): two
/// tables whose types differ only by a higher-ranked lifetime are subtypes
/// of each other, and a covariant manager or box could be seen with the
/// other table and free a pooled block by the wrong route.
///
/// ```compile_fail
/// use memory_mgr::{MemoryManager, PoolBox, SizeClasses};
/// struct Tbl<T>(T);
/// impl SizeClasses for Tbl<for<'a> fn(&'a ())> {
///     const SIZES: &'static [usize] = &[8, 16];
/// }
/// impl SizeClasses for Tbl<fn(&'static ())> {
///     const SIZES: &'static [usize] = &[8];
/// }
/// fn coerce<'m>(
///     b: PoolBox<'m, [u8; 16], Tbl<for<'a> fn(&'a ())>>,
/// ) -> PoolBox<'m, [u8; 16], Tbl<fn(&'static ())>> {
///     b // pooled in the 16-byte class, would be freed as a system allocation
/// }
/// ```
///
/// ```compile_fail
/// use memory_mgr::{MemoryManager, SizeClasses};
/// struct Tbl<T>(T);
/// impl SizeClasses for Tbl<for<'a> fn(&'a ())> {
///     const SIZES: &'static [usize] = &[8, 16];
/// }
/// impl SizeClasses for Tbl<fn(&'static ())> {
///     const SIZES: &'static [usize] = &[8];
/// }
/// fn coerce<'m>(
///     mm: &'m MemoryManager<Tbl<for<'a> fn(&'a ())>>,
/// ) -> &'m MemoryManager<Tbl<fn(&'static ())>> {
///     mm
/// }
/// ```
pub struct MemoryManager<C: SizeClasses = DefaultClasses> {
    /// The pools and the large path, at a fixed heap address.
    heap: Heap<C>,
    /// The checks of `Block` handles, and the table of large blocks.
    blocks: BlockHeap,
    /// The values behind [`Handle`](crate::Handle)s: a store per type.
    stores: Stores,
    /// Called on drop when allocations are still live.
    on_leak: Option<Hook>,
    /// The id of the manager whose stores were loaded into this one since
    /// its last reset (see `save.rs`), or 0.
    #[cfg(feature = "serde")]
    pub(crate) loaded_from: Cell<u64>,
    /// `Cell` makes the manager `!Sync`.
    _not_sync: PhantomData<Cell<()>>,
}

// Every operation leaves the pools consistent before anything that can panic
// (user code in `Drop`, `Clone` or an initialiser runs outside them), so a
// manager observed after a caught panic is as good as before it.
impl<C: SizeClasses> core::panic::UnwindSafe for MemoryManager<C> {}
impl<C: SizeClasses> core::panic::RefUnwindSafe for MemoryManager<C> {}

static_assertions::assert_impl_all!(MemoryManager: Send, core::panic::RefUnwindSafe);
static_assertions::assert_not_impl_any!(MemoryManager: Sync);

impl MemoryManager {
    /// A manager with the [`DefaultClasses`] (8, 16, 32, 64, 128, 256 and
    /// 512 bytes). No memory is taken until the first allocation.
    ///
    /// # Panics
    ///
    /// Every manager gets an identity no other manager of the process ever
    /// had, for its [`Block`] handles; after 2^48 managers (2^32 on targets
    /// without 64-bit atomics) there is none left and this panics rather
    /// than reuse one.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// assert_eq!(mm.stats().reserved_bytes(), 0);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        MemoryManager::with_classes()
    }

    /// A [`Builder`] to choose the class table and chunk sizes.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{FineClasses, MemoryManager};
    /// let mm = MemoryManager::builder()
    ///     .classes::<FineClasses>()
    ///     .initial_chunk_size(64 * 1024)
    ///     .build()?;
    /// assert_eq!(mm.block_size(mm.alloc_block(40)?)?, 40);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn builder() -> Builder {
        Builder::new()
    }
}

impl Default for MemoryManager {
    fn default() -> Self {
        MemoryManager::new()
    }
}

impl<C: SizeClasses> MemoryManager<C> {
    /// A manager with the class table `C`, checked at compile time.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{FineClasses, MemoryManager};
    /// let mm = MemoryManager::<FineClasses>::with_classes();
    /// assert_eq!(mm.classes().len(), 32);
    /// ```
    #[must_use]
    pub fn with_classes() -> Self {
        MemoryManager::with_config(
            ChunkConfig {
                initial: DEFAULT_INITIAL_CHUNK,
                max: SEGMENT,
            },
            None,
            None,
            None,
        )
    }

    fn with_config(
        config: ChunkConfig,
        budget: Option<usize>,
        on_leak: Option<Hook>,
        name: Option<&'static str>,
    ) -> Self {
        MemoryManager {
            heap: Heap::new(config, budget, name),
            blocks: BlockHeap::new(C::TABLE.len(), crate::source::Source::Global),
            stores: Stores::new(crate::source::Source::Global),
            on_leak,
            #[cfg(feature = "serde")]
            loaded_from: Cell::new(0),
            _not_sync: PhantomData,
        }
    }

    /// A manager whose heap is of kind `kind` (a shared manager's central
    /// heap); `None` if its records cannot be had. Its leak report is the
    /// shared manager's, so it makes none of its own.
    #[cfg(all(feature = "std", not(loom)))]
    pub(crate) fn with_kind(
        config: ChunkConfig,
        name: Option<&'static str>,
        kind: crate::system::HeapKind,
    ) -> Option<Self> {
        Some(MemoryManager {
            heap: Heap::try_new(config, None, name, kind, crate::pool::UNOWNED)?,
            blocks: BlockHeap::new(C::TABLE.len(), kind.source),
            stores: Stores::new(kind.source),
            on_leak: Some(Hook::Fn(|_| {})),
            #[cfg(feature = "serde")]
            loaded_from: Cell::new(0),
            _not_sync: PhantomData,
        })
    }

    /// The heap context: pools and large path.
    #[inline(always)]
    pub(crate) fn heap(&self) -> &Heap<C> {
        &self.heap
    }

    /// The checks of blocks, and the id handles carry.
    #[inline(always)]
    pub(crate) fn blocks(&self) -> &BlockHeap {
        &self.blocks
    }

    /// The typed stores behind handles.
    #[inline(always)]
    pub(crate) fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The class table this manager uses.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// assert_eq!(mm.classes().sizes(), &[8, 16, 32, 64, 128, 256, 512]);
    /// ```
    #[inline]
    #[must_use]
    pub fn classes(&self) -> &'static ClassTable {
        C::TABLE
    }

    // ----- checked raw blocks: the core `api.rs` calls ---------------------

    /// Runs `f` with the manager that holds this manager's checked blocks:
    /// itself. (A shared manager's is its central manager, under the lock:
    /// `api.rs` writes the block methods once over both.)
    #[inline(always)]
    pub(crate) fn blocks_at<R>(&self, f: impl FnOnce(&Self) -> R) -> Result<R, Error> {
        Ok(f(self))
    }

    /// A zeroed checked block of at least `size` bytes at `align`.
    #[inline(always)]
    pub(crate) fn checked_alloc(&self, size: usize, align: usize) -> Result<Block, Error> {
        if !align.is_power_of_two() {
            return Err(Error::InvalidAlignment { align });
        }
        match Heap::<C>::block_class(size, align) {
            Some(class) => self.blocks.alloc_pooled(
                class,
                C::TABLE.size(class),
                self.heap.get(class),
                self.heap.budget(),
            ),
            None => self
                .blocks
                .alloc_large(size, align.max(8), self.heap.fallback()),
        }
    }

    /// Frees a checked block, checked.
    #[inline(always)]
    pub(crate) fn checked_free(&self, block: Block) -> Result<(), Error> {
        self.blocks.free(block, self.heap.fallback())
    }

    /// Whether `block` is a live checked block here.
    #[inline]
    pub(crate) fn checked_is_live(&self, block: Block) -> bool {
        self.blocks.is_live(block)
    }

    /// The bytes of live checked block `block`.
    #[inline]
    pub(crate) fn checked_bytes(&self, block: Block) -> Result<NonNull<[u8]>, Error> {
        self.blocks.bytes(block)
    }

    /// Copies bytes of live checked block `block`, from `offset`, to `dst`.
    #[inline]
    pub(crate) fn checked_read(
        &self,
        block: Block,
        offset: usize,
        dst: &mut [u8],
    ) -> Result<(), Error> {
        self.blocks.read_bytes(block, offset, dst)
    }

    /// Copies `src` into live checked block `block` at `offset`.
    #[inline]
    pub(crate) fn checked_write(
        &self,
        block: Block,
        offset: usize,
        src: &[u8],
    ) -> Result<(), Error> {
        self.blocks.write_bytes(block, offset, src)
    }

    // ----- statistics --------------------------------------------------------

    /// A snapshot of what each pool and the system fallback hold.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let a = mm.alloc(1u64);
    /// let b = mm.alloc_block(100)?;
    /// let s = mm.stats();
    /// assert_eq!(s.classes[0].live_boxes, 1);
    /// assert_eq!(s.classes[4].live_blocks, 1); // 128-byte class
    /// assert_eq!(s.live(), 2);
    /// println!("{s}");
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub fn stats(&self) -> Stats {
        let s = self.snapshot();
        debug_assert_eq!(
            self.heap.budget().reserved(),
            s.reserved_bytes(),
            "the budget's count of reserved bytes drifted"
        );
        s
    }

    /// [`stats`](Self::stats) without its consistency check, for `Drop`
    /// (which must not panic on its own account).
    pub(crate) fn snapshot(&self) -> Stats {
        self.snapshot_in(Vec::with_capacity(C::TABLE.len()))
    }

    /// [`snapshot`](Self::snapshot) into `rows`, which has room for one row
    /// per class: no allocation (a shared manager's central heap takes it
    /// under its lock).
    pub(crate) fn snapshot_in(&self, mut rows: Vec<ClassStats>) -> Stats {
        rows.clear();
        rows.extend(self.heap.iter().enumerate().map(|(class, pool)| {
            let blocks = self.blocks.live(class);
            let (capacity, pages, bytes, record) = self.blocks.class_figures(class);
            ClassStats {
                block_size: pool.block_size(),
                live_boxes: pool.live().saturating_sub(pool.tally()),
                live_blocks: blocks,
                live_collections: pool.tally().min(pool.live()),
                peak_boxes: pool.peak(),
                peak_blocks: pool.checked_peak(),
                allocs: pool.allocs() + pool.checked_allocs(),
                frees: pool.frees() + pool.checked_allocs() - blocks,
                capacity: pool.capacity() + capacity,
                chunks: pool.chunk_count() + pages,
                reserved_bytes: pool.reserved() + bytes,
                metadata_bytes: record,
            }
        }));
        let fallback = self.heap.fallback();
        let budget = self.heap.budget();
        let collections = fallback.registered_count().min(fallback.live.get());
        Stats {
            name: self.name(),
            classes: rows,
            system: SystemStats {
                live_boxes: fallback.live.get() - collections,
                live_blocks: fallback.block_live.get(),
                live_collections: collections,
                peak_boxes: fallback.peak.get(),
                peak_blocks: fallback.block_peak.get(),
                allocs: fallback.allocs.get(),
                frees: fallback.allocs.get() - fallback.live.get() - fallback.block_live.get(),
                bytes: fallback.bytes.get(),
                cached_bytes: fallback.cached_bytes(),
                metadata_bytes: self.blocks.metadata() + fallback.table_bytes(),
            },
            handles: HandleStats {
                live: self.stores.live(),
                capacity: self
                    .stores
                    .iter()
                    .map(crate::store::RawStore::capacity)
                    .sum(),
                stores: self.stores.iter().count(),
                reserved_bytes: self.stores.bytes(),
            },
            budget: budget.limit(),
        }
    }

    // ----- operations -------------------------------------------------------

    /// Grows the pool of `T`'s class so that `additional` more `T`s can be
    /// allocated without asking the system allocator for memory — do it
    /// before a game frame or a latency-sensitive phase. Blocks already free
    /// count towards `additional`.
    ///
    /// # Errors
    ///
    /// [`Error::NotPooled`] if `T` is above every class (those values go to
    /// the system allocator one by one); at once, before any memory is asked
    /// for, [`Error::LayoutOverflow`] if `additional` blocks would exceed
    /// `isize::MAX` bytes (as `Vec::try_reserve` fails with a capacity
    /// overflow) and [`Error::OutOfMemory`] if they would exceed 2^48 bytes
    /// (more than a 64-bit machine's address space); [`Error::BudgetExceeded`] or
    /// [`Error::OutOfMemory`] if the chunks cannot be had (chunks added
    /// before the failure stay reserved and usable).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// mm.reserve::<[f32; 16]>(1_000)?;
    /// let chunks = mm.stats().classes[3].chunks; // the 64-byte class
    /// let v: Vec<_> = (0..1_000).map(|_| mm.alloc([0f32; 16])).collect();
    /// assert_eq!(mm.stats().classes[3].chunks, chunks); // no new chunk
    /// # drop(v);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn reserve<T>(&self, additional: usize) -> Result<(), Error> {
        if size_of::<T>() == 0 {
            return Ok(()); // zero-sized values take no memory
        }
        self.heap
            .reserve(size_of::<T>(), align_of::<T>(), None, additional)
    }

    /// Grows the checked-block pool that serves `size`-byte blocks (aligned
    /// to 8) so that `additional` more [`alloc_block`](Self::alloc_block)
    /// calls of that size need no new memory.
    ///
    /// # Errors
    ///
    /// As [`reserve`](Self::reserve).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// mm.reserve_blocks(100, 500)?;
    /// let reserved = mm.stats().reserved_bytes();
    /// let v: Vec<_> = (0..500).map(|_| mm.alloc_block(100)).collect::<Result<_, _>>()?;
    /// assert_eq!(mm.stats().reserved_bytes(), reserved);
    /// # for b in v { mm.free(b)?; }
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn reserve_blocks(&self, size: usize, additional: usize) -> Result<(), Error> {
        self.heap.reserve(size, 8, Some(&self.blocks), additional)
    }

    /// Gives every chunk that holds no live allocation back to the system
    /// allocator (reserved chunks not yet used included) and returns the
    /// number of bytes released. O(chunks + free blocks); live allocations
    /// do not move.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let keep = mm.alloc(1u64);
    /// let v: Vec<_> = (0..5_000).map(|i| mm.alloc(i as u64)).collect();
    /// drop(v);
    /// let before = mm.stats().reserved_bytes();
    /// let released = mm.trim();
    /// assert!(released > 0);
    /// assert_eq!(mm.stats().reserved_bytes(), before - released);
    /// assert_eq!(*keep, 1); // still there
    /// ```
    pub fn trim(&self) -> usize {
        let stores = self.stores.trim();
        self.heap.budget().credit(stores);
        stores + self.trim_except_stores()
    }

    /// [`trim`](Self::trim) but the stores' pages: a shared manager's
    /// central trim, while other threads may be reading its stores.
    pub(crate) fn trim_except_stores(&self) -> usize {
        let budget = self.heap.budget();
        let pooled: usize = self.heap.iter().map(|p| p.trim()).sum();
        pooled + self.blocks.trim(budget) + crate::system::trim(self.heap.fallback())
    }

    /// Frees everything at once, in O(chunks), and keeps the memory: every
    /// chunk stays as free capacity for what is allocated next, with no call
    /// to the system allocator (allocations above the largest class go back
    /// to it); [`trim`](Self::trim) gives the chunks back. The borrow checker
    /// ensures no [`PoolBox`](crate::PoolBox) is alive, and every [`Block`] handed out before
    /// becomes stale — freeing, reading or writing one afterwards is
    /// [`Error::FreedByReset`], never an access to new data. The values
    /// behind [`Handle`](crate::Handle)s are the manager's own: their
    /// destructors run first (O(handles) when any value with a destructor is
    /// live); destructors of leaked boxes do not run. Counters of
    /// allocations and peaks carry on.
    ///
    /// A per-frame scratch manager is the pattern it is made for: allocate
    /// during the frame, `reset` at its end, and the next frame reuses the
    /// same memory.
    ///
    /// # Panics
    ///
    /// If a handle value's destructor panics: the panic goes on, with that
    /// value dropped and the values not reached yet still live (the
    /// manager stays usable; reset again to drop them). With the
    /// `debug-fill` feature, if a freed block was written after it was
    /// freed (a use-after-free in the program), once the reset is done.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager, PoolBox};
    /// let mut mm = MemoryManager::new();
    /// let b = mm.alloc_block(64)?;
    /// PoolBox::leak(mm.alloc([0u8; 100]));
    /// let reserved = mm.stats().reserved_bytes();
    /// mm.reset();
    /// assert_eq!(mm.stats().live(), 0);
    /// assert_eq!(mm.stats().reserved_bytes(), reserved); // kept for reuse
    /// assert_eq!(mm.free(b), Err(Error::FreedByReset));
    /// mm.trim(); // now back to the system
    /// assert_eq!(mm.stats().reserved_bytes(), 0);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn reset(&mut self) {
        self.stores.drop_values();
        let written = self.heap.reset();
        self.blocks.reset();
        self.stores.forget_slots();
        #[cfg(feature = "serde")]
        self.loaded_from.set(0);
        if let Some(w) = written {
            // `debug-fill` found a write after free; the reset is done.
            w.panic();
        }
    }

    /// The allocations still live, per class: what would leak if the
    /// manager were dropped now with raw [`Block`]s not freed (and boxes
    /// given up with [`PoolBox::leak`](crate::PoolBox::leak) or `mem::forget`).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let b = mm.alloc_block(20)?;
    /// let leaks = mm.leaks();
    /// assert_eq!(leaks.total(), 1);
    /// assert_eq!(leaks.classes[2].blocks, 1); // the 32-byte class
    /// mm.free(b)?;
    /// assert!(mm.leaks().is_empty());
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub fn leaks(&self) -> Leaks {
        Leaks::of(&self.snapshot())
    }

    /// The name this manager was built with ([`Builder::name`]), if any: it
    /// titles the stats table and the leak report, and is in every panic
    /// message of the manager.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::builder().name("audio").build()?;
    /// assert_eq!(mm.name(), Some("audio"));
    /// assert_eq!(memory_mgr::MemoryManager::new().name(), None);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> Option<&'static str> {
        self.heap.fallback().name
    }

    /// The byte budget this manager was built with, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::builder().budget(1 << 20).build()?;
    /// assert_eq!(mm.budget(), Some(1 << 20));
    /// assert_eq!(memory_mgr::MemoryManager::new().budget(), None);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub fn budget(&self) -> Option<usize> {
        self.heap.budget().limit()
    }

    /// Checks the typed pools' internal invariants (free lists inside their
    /// chunks, no block listed twice, counts that add up). O(free blocks ×
    /// chunks): for tests and debugging.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let v: Vec<_> = (0..100).map(|i| mm.alloc(i)).collect();
    /// drop(v);
    /// assert!(mm.is_consistent());
    /// ```
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        self.heap.iter().all(|p| p.is_valid()) && self.blocks.is_valid() && self.stores.is_valid()
    }
}

impl<C: SizeClasses> fmt::Debug for MemoryManager<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_manager(f, "MemoryManager", C::TABLE.sizes(), &self.stats())
    }
}

/// A manager's `Debug`: its type, name, classes and what it holds.
pub(crate) fn debug_manager(
    f: &mut fmt::Formatter<'_>,
    kind: &str,
    classes: &[usize],
    stats: &Stats,
) -> fmt::Result {
    f.debug_struct(kind)
        .field("name", &stats.name)
        .field("classes", &classes)
        .field("live", &stats.live())
        .field("reserved_bytes", &stats.reserved_bytes())
        .finish_non_exhaustive()
}

impl<C: SizeClasses> Drop for MemoryManager<C> {
    fn drop(&mut self) {
        /// Drops the handle values left when a destructor panics, as `Vec`
        /// drops the rest of its elements (a second panic aborts).
        struct Rest<'a>(&'a mut Stores);
        impl Drop for Rest<'_> {
            fn drop(&mut self) {
                self.0.drop_values();
            }
        }
        let rest = Rest(&mut self.stores);
        rest.0.drop_values();
        core::mem::forget(rest);
        let leaks = self.leaks();
        if leaks.is_empty() {
            return;
        }
        match self.on_leak.take() {
            Some(Hook::Fn(hook)) => hook(&leaks),
            Some(Hook::Boxed(hook)) => hook(&leaks),
            None => default_leak_report(&leaks),
        }
    }
}

/// Prints a leak report in debug builds with `std`; nothing otherwise.
///
/// Never panics: `eprintln!` panics when stderr is closed (a closed pipe),
/// so the report is written with `writeln!` and a failed write ignored — a
/// drop must not end the program on its own account.
pub(crate) fn default_leak_report(leaks: &Leaks) {
    #[cfg(all(debug_assertions, feature = "std"))]
    {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "memory_mgr: {} dropped with live allocations (freed now):\n{leaks}",
            leaks
                .name
                .map_or("manager".into(), |n| alloc::format!("manager `{n}`"))
        );
    }
    let _ = leaks;
}

/// Configures a [`MemoryManager`]: class table, chunk sizes, byte budget
/// and leak hook.
///
/// # Examples
///
/// ```
/// use memory_mgr::{Error, MemoryManager};
/// let mm = MemoryManager::builder()
///     .initial_chunk_size(4096)
///     .max_chunk_size(256 * 1024)
///     .build()?;
/// # drop(mm);
/// assert!(matches!(
///     MemoryManager::builder().max_chunk_size(1 << 30).build(),
///     Err(Error::InvalidConfig(_))
/// ));
/// # Ok::<(), Error>(())
/// ```
///
/// `H` is the type of the leak hook ([`on_leak`](Builder::on_leak)): a
/// function by default, any closure once set.
#[derive(Clone, Copy)]
pub struct Builder<C: SizeClasses = DefaultClasses, H = fn(&Leaks)> {
    initial: usize,
    max: usize,
    budget: Option<usize>,
    on_leak: Option<H>,
    name: Option<&'static str>,
    _classes: PhantomData<fn(C) -> C>,
}

impl<C: SizeClasses, H> fmt::Debug for Builder<C, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("classes", &C::TABLE.sizes())
            .field("initial_chunk_size", &self.initial)
            .field("max_chunk_size", &self.max)
            .field("budget", &self.budget)
            .field("name", &self.name)
            .field("on_leak", &self.on_leak.as_ref().map(|_| "set"))
            .finish()
    }
}

impl Builder {
    /// The default configuration: [`DefaultClasses`], first chunks of
    /// 16 KiB, doubling up to 1 MiB.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::Builder::new().build()?;
    /// # drop(mm);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Builder {
            initial: DEFAULT_INITIAL_CHUNK,
            max: SEGMENT,
            budget: None,
            on_leak: None,
            name: None,
            _classes: PhantomData,
        }
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl<C: SizeClasses, H: Copy> Builder<C, H> {
    /// Uses the class table `D`. (Before [`on_leak`](Builder::on_leak) is
    /// given a closure that is not `Copy`: these two are `const`, so they
    /// take a builder with nothing to drop.)
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{FineClasses, MemoryManager};
    /// let mm = MemoryManager::builder().classes::<FineClasses>().build()?;
    /// assert_eq!(mm.classes().len(), 32);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn classes<D: SizeClasses>(self) -> Builder<D, H> {
        let Builder {
            initial,
            max,
            budget,
            on_leak,
            name,
            ..
        } = self;
        Builder {
            initial,
            max,
            budget,
            on_leak,
            name,
            _classes: PhantomData,
        }
    }

    /// A hook called when the manager is dropped with allocations still
    /// live (raw [`Block`]s never freed, leaked boxes), with what leaked: a
    /// function, or a closure that captures what it needs (the subsystem's
    /// name, a logger). Without one, debug builds print the report to
    /// stderr; release builds say nothing. Dropping never panics on its own
    /// account. Values behind [`Handle`](crate::Handle)s are the manager's
    /// own, dropped with it, not leaks.
    ///
    /// A [`SharedManager`](crate::SharedManager) is built in a `const`
    /// context (to be a `static`), so its builder,
    /// [`SharedManager::builder`](crate::SharedManager::builder), takes a
    /// function (`fn(&Leaks)`: a function item, or a closure that captures
    /// nothing) — see [`SharedBuilder::on_leak`](crate::SharedBuilder::on_leak).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use memory_mgr::{Leaks, MemoryManager};
    ///
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let sink = log.clone();
    /// let subsystem = String::from("audio");
    /// let mm = MemoryManager::builder()
    ///     .on_leak(move |leaks: &Leaks| {
    ///         sink.lock().unwrap().push(format!("{subsystem}: {} leaked", leaks.total()));
    ///     })
    ///     .build()?;
    /// let _forgotten = mm.alloc_block(16)?;
    /// drop(mm); // calls the closure
    /// assert_eq!(log.lock().unwrap()[0], "audio: 1 leaked");
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn on_leak<F: FnOnce(&Leaks) + Send + 'static>(self, hook: F) -> Builder<C, F> {
        let Builder {
            initial,
            max,
            budget,
            name,
            ..
        } = self;
        Builder {
            initial,
            max,
            budget,
            on_leak: Some(hook),
            name,
            _classes: PhantomData,
        }
    }
}

impl<C: SizeClasses, H> Builder<C, H> {
    /// A cap on the bytes the manager holds from the system allocator:
    /// every chunk of every pool plus every allocation above the largest
    /// class (headers included). Past it the `try_` calls and
    /// [`alloc_block`](MemoryManager::alloc_block) return
    /// [`Error::BudgetExceeded`] and the infallible calls panic with that
    /// message; nothing is allocated by the refused call. Only growth is
    /// checked, so the fast path pays nothing. Default: no budget.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let mm = MemoryManager::builder().budget(64 * 1024).build()?;
    /// let big = mm.alloc_block(40_000)?;
    /// assert!(matches!(mm.alloc_block(40_000), Err(Error::BudgetExceeded { .. })));
    /// mm.free(big)?;
    /// assert!(mm.alloc_block(40_000).is_ok()); // room again
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub const fn budget(mut self, bytes: usize) -> Self {
        self.budget = Some(bytes);
        self
    }

    /// A name for the manager — the subsystem it serves: it titles the
    /// stats table and the leak report, and every panic message of the
    /// manager says it, so a report from one of several managers says
    /// which.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::builder().name("particles").build()?;
    /// let _p = mm.alloc(1u32);
    /// assert!(mm.stats().to_string().starts_with("particles"));
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn name(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// Size of each pool's first chunk, in bytes (4 KiB to 1 MiB; default
    /// 16 KiB). A class whose block does not fit gets a larger first chunk.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::builder().initial_chunk_size(64 << 10).build()?;
    /// # drop(mm);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn initial_chunk_size(mut self, bytes: usize) -> Self {
        self.initial = bytes;
        self
    }

    /// Cap on chunk sizes, in bytes (at least the initial size, at most
    /// 1 MiB; default 1 MiB). Chunks double from the initial size up to it.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::builder().max_chunk_size(64 << 10).build()?;
    /// # drop(mm);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub const fn max_chunk_size(mut self, bytes: usize) -> Self {
        self.max = bytes;
        self
    }

    /// Builds the manager.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if a chunk size is out of range.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, MemoryManager};
    /// let r = MemoryManager::builder().initial_chunk_size(100).build();
    /// assert!(matches!(r, Err(Error::InvalidConfig(_))));
    /// ```
    pub fn build(self) -> Result<MemoryManager<C>, Error>
    where
        H: FnOnce(&Leaks) + Send + 'static,
    {
        let config = self.chunk_config()?;
        let hook = self.on_leak.map(|h| Hook::Boxed(alloc::boxed::Box::new(h)));
        Ok(MemoryManager::with_config(
            config,
            self.budget,
            hook,
            self.name,
        ))
    }

    /// The chunk sizes, checked.
    pub(crate) const fn chunk_config(&self) -> Result<ChunkConfig, Error> {
        if self.initial < MIN_CHUNK || self.initial > SEGMENT {
            return Err(Error::InvalidConfig(
                "initial chunk size must be 4 KiB to 1 MiB",
            ));
        }
        if self.max < self.initial || self.max > SEGMENT {
            return Err(Error::InvalidConfig(
                "max chunk size must be at least the initial size and at most 1 MiB",
            ));
        }
        Ok(ChunkConfig {
            initial: self.initial,
            max: self.max,
        })
    }
}

impl<C: SizeClasses> Builder<C> {
    /// The budget, the name and the leak hook set.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) const fn parts(&self) -> (Option<usize>, Option<&'static str>, Option<LeakHook>) {
        (self.budget, self.name, self.on_leak)
    }
}
