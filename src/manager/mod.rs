//! `MemoryManager`: a plain value that owns one pool per size class, its
//! checked blocks and its typed stores — the safe public API over the raw
//! core (`heap.rs`, which decides pool or large path; `checked.rs`;
//! `store/`). The API is cut by what it serves: the box constructors and
//! the checked-block methods are written once for both managers in
//! `api.rs`; here, [`handles`] (typed stores), [`blocks`] (the checked
//! core `api.rs` calls), [`operations`] (stats, reserve, trim, reset,
//! leaks) and [`builder`].
#![deny(unsafe_code)]

mod blocks;
mod builder;
mod handles;
mod operations;

pub use builder::Builder;

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;

use crate::checked::CheckedBlocks;
use crate::chunk::SEGMENT;
use crate::heap::Heap;
use crate::pool::ChunkConfig;
use crate::size_class::{ClassTable, SizeClasses};
use crate::stats::{Leaks, Stats};
use crate::store::Stores;
#[cfg(doc)] // (for the docs' links)
use crate::Block;
use crate::DefaultClasses;

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
    blocks: CheckedBlocks,
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
            blocks: CheckedBlocks::new(C::TABLE.len(), crate::source::Source::Global),
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
        kind: crate::large::HeapKind,
    ) -> Option<Self> {
        Some(MemoryManager {
            heap: Heap::try_new(config, None, name, kind, crate::pool::UNOWNED)?,
            blocks: CheckedBlocks::new(C::TABLE.len(), kind.source),
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
    pub(crate) fn blocks(&self) -> &CheckedBlocks {
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
