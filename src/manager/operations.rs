//! A manager's operations: statistics, reserve, trim, reset, leaks, its
//! name and budget, and the consistency check.
#![deny(unsafe_code)]

use alloc::vec::Vec;
use core::mem::{align_of, size_of};

use super::MemoryManager;
use crate::size_class::SizeClasses;
use crate::stats::{ClassStats, HandleStats, Leaks, Stats, SystemStats};
use crate::Error;
#[cfg(doc)] // (for the docs' links)
use crate::{Block, Builder};

impl<C: SizeClasses> MemoryManager<C> {
    // ----- statistics --------------------------------------------------------

    /// A snapshot of what each pool and the large path hold.
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
        let heap_record = self.heap.heap_record();
        let budget = self.heap.budget();
        let collections = heap_record.registered_count().min(heap_record.live.get());
        Stats {
            name: self.name(),
            classes: rows,
            system: SystemStats {
                live_boxes: heap_record.live.get() - collections,
                live_blocks: heap_record.block_live.get(),
                live_collections: collections,
                peak_boxes: heap_record.peak.get(),
                peak_blocks: heap_record.block_peak.get(),
                allocs: heap_record.allocs.get(),
                frees: heap_record.allocs.get()
                    - heap_record.live.get()
                    - heap_record.block_live.get(),
                bytes: heap_record.bytes.get(),
                cached_bytes: heap_record.cached_bytes(),
                metadata_bytes: self.blocks.metadata() + heap_record.table_bytes(),
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
    /// let v: Vec<_> = (0..3_000).map(|i| mm.alloc(i as u64)).collect();
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
        pooled + self.blocks.trim(budget) + crate::large::trim(self.heap.heap_record())
    }

    /// Frees everything at once and keeps the memory: every chunk stays as
    /// free capacity for what is allocated next, with no call to the system
    /// allocator (live allocations above the largest class go back to it;
    /// the freed ones kept for reuse stay, as the chunks do);
    /// [`trim`](Self::trim) gives them back. It costs what there is to
    /// forget: O(1) for a pool that handed out nothing since it was last
    /// recycled (by a reset, or when emptied), else the chunks it used
    /// since; the live allocations above the classes (with any, a walk of
    /// the kept ones too). The borrow checker ensures no
    /// [`PoolBox`](crate::PoolBox) is alive, and every [`Block`] handed out
    /// before becomes stale — freeing, reading or writing one afterwards is
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
        self.heap.heap_record().name
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
