//! Statistics: what each pool and the large path hold.
#![deny(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A snapshot of a manager's memory, from [`MemoryManager::stats`].
///
/// `Display` renders it as an aligned table.
///
/// [`MemoryManager::stats`]: crate::MemoryManager::stats
///
/// # Examples
///
/// ```
/// let mm = memory_mgr::MemoryManager::new();
/// let boxes: Vec<_> = (0..10).map(|i| mm.alloc(i as u32)).collect();
/// let s = mm.stats();
/// assert_eq!(s.classes[0].live_boxes, 10); // u32 -> the 8-byte class
/// assert_eq!(s.live(), 10);
/// assert!(s.reserved_bytes() > 0);
/// # drop(boxes);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The manager's name ([`Builder::name`](crate::Builder::name)), if any.
    pub name: Option<&'static str>,
    /// One entry per size class, smallest first.
    pub classes: Vec<ClassStats>,
    /// Allocations served by the system allocator.
    pub system: SystemStats,
    /// The values behind [`Handle`](crate::Handle)s, in their typed stores.
    pub handles: HandleStats,
    /// The manager's byte budget, if it has one.
    pub budget: Option<usize>,
}

/// Figures for one size class: its pool (boxes and collections) and its
/// store of checked blocks together.
///
/// # Examples
///
/// ```
/// let mm = memory_mgr::MemoryManager::new();
/// let _b = mm.alloc([0u8; 64]);
/// let c = &mm.stats().classes[3];
/// assert_eq!((c.block_size, c.live_boxes, c.chunks), (64, 1, 1));
/// assert_eq!(c.free(), c.capacity - 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClassStats {
    /// Block size in bytes.
    pub block_size: usize,
    /// Live `PoolBox` values.
    pub live_boxes: usize,
    /// Live `Block`s.
    pub live_blocks: usize,
    /// Live blocks of collections (the `Allocator` implementation).
    pub live_collections: usize,
    /// Most `PoolBox` values and collection blocks live at once.
    pub peak_boxes: usize,
    /// Most `Block`s live at once.
    pub peak_blocks: usize,
    /// Allocations made in this class, ever (of every kind).
    pub allocs: usize,
    /// Allocations returned, ever (a [`reset`](crate::MemoryManager::reset)
    /// returns all that were live).
    pub frees: usize,
    /// Blocks in all chunks and pages: live, free, and not yet used.
    pub capacity: usize,
    /// Chunks (of the pool) and pages (of the checked blocks' store) taken
    /// from the system allocator.
    pub chunks: usize,
    /// Bytes of those chunks.
    pub reserved_bytes: usize,
    /// Bytes of the record of this class's store of checked blocks (its
    /// pages, each block with a 4-byte tag, count in `chunks`, `capacity`
    /// and `reserved_bytes`). Released by a
    /// [`trim`](crate::MemoryManager::trim) once the store has no page;
    /// kept by a reset. Charged to the budget.
    pub metadata_bytes: usize,
}

impl ClassStats {
    /// Live blocks of every kind.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// assert_eq!(mm.stats().classes[0].live(), 0);
    /// ```
    #[must_use]
    pub fn live(&self) -> usize {
        self.live_boxes + self.live_blocks + self.live_collections
    }

    /// Blocks ready to be handed out without asking the system for memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// drop(mm.alloc(0u64));
    /// assert!(mm.stats().classes[0].free() > 0);
    /// ```
    #[must_use]
    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.live())
    }
}

/// Figures for allocations served by the system allocator.
///
/// # Examples
///
/// ```
/// let mm = memory_mgr::MemoryManager::new();
/// let _big = mm.alloc([0u8; 1000]);
/// let s = mm.stats().system;
/// assert_eq!(s.live_boxes, 1);
/// assert!(s.bytes >= 1000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SystemStats {
    /// Live `PoolBox` values.
    pub live_boxes: usize,
    /// Live `Block`s.
    pub live_blocks: usize,
    /// Live allocations of collections (the `Allocator` implementation).
    pub live_collections: usize,
    /// Most `PoolBox` values live at once.
    pub peak_boxes: usize,
    /// Most `Block`s live at once.
    pub peak_blocks: usize,
    /// Allocations made, ever.
    pub allocs: usize,
    /// Allocations returned, ever.
    pub frees: usize,
    /// Bytes asked of the system allocator for them, their records
    /// included.
    pub bytes: usize,
    /// Bytes of freed allocations kept for reuse by the next allocation of
    /// their size class, as a pool keeps its free blocks (those of at most
    /// 4 MiB, up to 64 MiB in all — checked blocks up to 64 KiB; none in
    /// pass-through mode or with a budget). [`trim`](crate::MemoryManager::trim) gives them back;
    /// [`reset`](crate::MemoryManager::reset) keeps them, as it keeps the
    /// pools' chunks.
    pub cached_bytes: usize,
    /// Bytes of the manager-wide side tables: the checked blocks' list of
    /// stores and their store of large blocks (reused; released by a trim
    /// when no such block is live), the map of chunks by address and the registry
    /// of large allocations the `Allocator` implementation uses; for a
    /// `SharedManager` (and `Global`), also each thread heap's own records
    /// (freed with the heap when its thread exits, or by a trim, once it
    /// holds no chunk). Charged to the budget.
    pub metadata_bytes: usize,
}

impl Stats {
    /// Adds `pools`' figures to the class rows (same table) and `system`'s
    /// to the system row: a shared manager's sum over its heaps.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn add(&mut self, classes: impl Iterator<Item = ClassStats>) {
        for (row, c) in self.classes.iter_mut().zip(classes) {
            row.live_boxes += c.live_boxes;
            row.live_blocks += c.live_blocks;
            row.live_collections += c.live_collections;
            row.peak_boxes += c.peak_boxes;
            row.peak_blocks += c.peak_blocks;
            row.allocs += c.allocs;
            row.frees += c.frees;
            row.capacity += c.capacity;
            row.chunks += c.chunks;
            row.reserved_bytes += c.reserved_bytes;
            row.metadata_bytes += c.metadata_bytes;
        }
    }
}

impl SystemStats {
    /// Live allocations of every kind.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let _b = mm.alloc([0u8; 4000]);
    /// assert_eq!(mm.stats().system.live(), 1);
    /// ```
    #[must_use]
    pub fn live(&self) -> usize {
        self.live_boxes + self.live_blocks + self.live_collections
    }
}

/// Figures for the values behind [`Handle`](crate::Handle)s: a store per
/// type, its values inline in slots on pages of its own.
///
/// # Examples
///
/// ```
/// let mm = memory_mgr::MemoryManager::new();
/// mm.insert(1u64);
/// mm.insert("two");
/// let h = mm.stats().handles;
/// assert_eq!((h.live, h.stores), (2, 2));
/// assert!(h.capacity >= 2 && h.reserved_bytes > 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HandleStats {
    /// Live values, of every type.
    pub live: usize,
    /// Slots on the stores' pages: live, vacant and not yet used.
    pub capacity: usize,
    /// Types with a store.
    pub stores: usize,
    /// Bytes of the stores (pages and records), charged to the budget.
    /// [`trim`](crate::MemoryManager::trim) gives back the pages of a store
    /// with no live value; [`reset`](crate::MemoryManager::reset) keeps
    /// them.
    pub reserved_bytes: usize,
}

impl Stats {
    /// Live allocations of every kind.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let b = mm.alloc_block(5000)?;
    /// assert_eq!(mm.stats().live(), 1);
    /// mm.free(b)?;
    /// assert_eq!(mm.stats().live(), 0);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub fn live(&self) -> usize {
        self.classes.iter().map(ClassStats::live).sum::<usize>()
            + self.system.live()
            + self.handles.live
    }

    /// Bytes held from the system allocator: every chunk, every system
    /// allocation, and the checked blocks' side tables.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let _x = mm.alloc(1u8);
    /// let s = mm.stats();
    /// // One first chunk, and the side table that finds chunks by address.
    /// assert_eq!(s.reserved_bytes(), 16 * 1024 + s.system.metadata_bytes);
    /// assert!(s.system.metadata_bytes <= 64);
    /// ```
    #[must_use]
    pub fn reserved_bytes(&self) -> usize {
        self.classes
            .iter()
            .map(|c| c.reserved_bytes + c.metadata_bytes)
            .sum::<usize>()
            + self.system.bytes
            + self.system.cached_bytes
            + self.system.metadata_bytes
            + self.handles.reserved_bytes
    }

    /// Bytes of the reserved memory that live allocations occupy: live
    /// blocks times their block size, plus every system allocation.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let _a = mm.alloc([0u8; 60]); // a 64-byte block
    /// assert_eq!(mm.stats().used_bytes(), 64);
    /// ```
    #[must_use]
    pub fn used_bytes(&self) -> usize {
        self.classes
            .iter()
            .map(|c| c.live() * c.block_size)
            .sum::<usize>()
            + self.system.bytes
    }

    /// The fraction of reserved bytes in use, from 0 to 1 (1 when nothing
    /// is reserved).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let v: Vec<_> = (0..100).map(|i| mm.alloc(i as u64)).collect();
    /// let u = mm.stats().usage();
    /// assert!(u > 0.0 && u < 1.0);
    /// # drop(v);
    /// ```
    #[must_use]
    pub fn usage(&self) -> f64 {
        let reserved = self.reserved_bytes();
        if reserved == 0 {
            1.0
        } else {
            self.used_bytes() as f64 / reserved as f64
        }
    }

    /// Allocations made, ever, of every kind.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// drop(mm.alloc(1u8));
    /// let s = mm.stats();
    /// assert_eq!((s.allocs(), s.frees()), (1, 1));
    /// ```
    #[must_use]
    pub fn allocs(&self) -> usize {
        self.classes.iter().map(|c| c.allocs).sum::<usize>() + self.system.allocs
    }

    /// Allocations returned, ever, of every kind.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// assert_eq!(mm.stats().frees(), 0);
    /// ```
    #[must_use]
    pub fn frees(&self) -> usize {
        self.classes.iter().map(|c| c.frees).sum::<usize>() + self.system.frees
    }
}

impl fmt::Display for Stats {
    /// The manager's name as a title (if it has one), then one row per class
    /// in use — every class with the alternate form `{:#}` — one for the
    /// system allocator, and a total row; 95 columns. Live allocations are
    /// counted apart by kind (boxes, blocks, handles, collections); figures
    /// in blocks unless the header says bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.name {
            writeln!(f, "{name}")?;
        }
        let row = |f: &mut fmt::Formatter<'_>, cells: [&dyn fmt::Display; 12]| {
            writeln!(
                f,
                "{:>6} {:>7} {:>7} {:>7} {:>6} {:>7} {:>8} {:>6} {:>9} {:>9} {:>4} {:>10}",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                cells[4],
                cells[5],
                cells[6],
                cells[7],
                cells[8],
                cells[9],
                cells[10],
                cells[11]
            )
        };
        row(
            f,
            [
                &"class",
                &"boxes",
                &"blocks",
                &"handles",
                &"colls",
                &"peak",
                &"capacity",
                &"chunks",
                &"allocs",
                &"frees",
                &"use",
                &"reserved B",
            ],
        )?;
        let pct = |used: usize, of: usize| -> String {
            if of == 0 {
                "-".into()
            } else {
                alloc::format!("{:.0}%", 100.0 * used as f64 / of as f64)
            }
        };
        let all = f.alternate();
        let shown = |c: &&ClassStats| all || c.allocs + c.capacity + c.metadata_bytes > 0;
        for c in self.classes.iter().filter(shown) {
            row(
                f,
                [
                    &c.block_size,
                    &c.live_boxes,
                    &c.live_blocks,
                    &"-",
                    &c.live_collections,
                    &(c.peak_boxes + c.peak_blocks),
                    &c.capacity,
                    &c.chunks,
                    &c.allocs,
                    &c.frees,
                    &pct(c.live() * c.block_size, c.reserved_bytes),
                    &(c.reserved_bytes + c.metadata_bytes),
                ],
            )?;
        }
        let h = &self.handles;
        if all || h.stores > 0 {
            row(
                f,
                [
                    &"stores",
                    &"-",
                    &"-",
                    &h.live,
                    &"-",
                    &"-",
                    &h.capacity,
                    &h.stores,
                    &"-",
                    &"-",
                    &"-",
                    &h.reserved_bytes,
                ],
            )?;
        }
        let s = &self.system;
        row(
            f,
            [
                &"system",
                &s.live_boxes,
                &s.live_blocks,
                &"-",
                &s.live_collections,
                &(s.peak_boxes + s.peak_blocks),
                &"-",
                &"-",
                &s.allocs,
                &s.frees,
                &"-",
                &(s.bytes + s.metadata_bytes),
            ],
        )?;
        write!(
            f,
            "{:>6} {:>7} {:>7} {:>7} {:>6} {:>7} {:>8} {:>6} {:>9} {:>9} {:>4} {:>10}",
            "total",
            self.classes.iter().map(|c| c.live_boxes).sum::<usize>() + s.live_boxes,
            self.classes.iter().map(|c| c.live_blocks).sum::<usize>() + s.live_blocks,
            self.handles.live,
            self.classes
                .iter()
                .map(|c| c.live_collections)
                .sum::<usize>()
                + s.live_collections,
            "",
            "",
            "",
            self.allocs(),
            self.frees(),
            pct(self.used_bytes(), self.reserved_bytes()),
            self.reserved_bytes()
        )?;
        if let Some(b) = self.budget {
            let reserved = self.reserved_bytes();
            write!(
                f,
                "\nbudget {b} bytes: {reserved} reserved ({})",
                pct(reserved, b)
            )?;
        }
        Ok(())
    }
}

/// What was still allocated, from [`MemoryManager::leaks`](crate::MemoryManager::leaks) and the leak
/// hook: raw [`Block`](crate::Block)s never freed and boxes given up with
/// [`PoolBox::leak`](crate::PoolBox::leak) or `mem::forget`.
///
/// # Examples
///
/// ```
/// let mm = memory_mgr::MemoryManager::new();
/// let _b = mm.alloc_block(3000)?;
/// let leaks = mm.leaks();
/// assert_eq!((leaks.system_blocks, leaks.total()), (1, 1));
/// println!("{leaks}");
/// # Ok::<(), memory_mgr::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Leaks {
    /// The manager's name ([`Builder::name`](crate::Builder::name)), if any.
    pub name: Option<&'static str>,
    /// Per size class, smallest first.
    pub classes: Vec<ClassLeaks>,
    /// Boxes above the largest class.
    pub system_boxes: usize,
    /// Blocks above the largest class.
    pub system_blocks: usize,
    /// Collections' allocations above the largest class (a `Vec` given up
    /// with `mem::forget` or `Vec::leak`).
    pub system_collections: usize,
}

/// Live allocations of one size class, in a [`Leaks`] report.
///
/// # Examples
///
/// ```
/// let mm = memory_mgr::MemoryManager::new();
/// let _b = mm.alloc_block(8)?;
/// let c = mm.leaks().classes[0];
/// assert_eq!((c.block_size, c.boxes, c.blocks), (8, 0, 1));
/// # Ok::<(), memory_mgr::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClassLeaks {
    /// Block size of the class.
    pub block_size: usize,
    /// `PoolBox` values never dropped.
    pub boxes: usize,
    /// `Block`s never freed.
    pub blocks: usize,
    /// Blocks of collections never freed (`mem::forget`, `Vec::leak`).
    pub collections: usize,
}

impl Leaks {
    /// The live allocations of `s`.
    pub(crate) fn of(s: &Stats) -> Leaks {
        Leaks {
            name: s.name,
            classes: s
                .classes
                .iter()
                .map(|c| ClassLeaks {
                    block_size: c.block_size,
                    boxes: c.live_boxes,
                    blocks: c.live_blocks,
                    collections: c.live_collections,
                })
                .collect(),
            system_boxes: s.system.live_boxes,
            system_blocks: s.system.live_blocks,
            system_collections: s.system.live_collections,
        }
    }
}

impl Leaks {
    /// Every allocation counted.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(memory_mgr::MemoryManager::new().leaks().total(), 0);
    /// ```
    #[must_use]
    pub fn total(&self) -> usize {
        self.classes
            .iter()
            .map(|c| c.boxes + c.blocks + c.collections)
            .sum::<usize>()
            + self.system_boxes
            + self.system_blocks
            + self.system_collections
    }

    /// Whether nothing is live.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(memory_mgr::MemoryManager::new().leaks().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

impl fmt::Display for Leaks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.name {
            writeln!(f, "{name}: leaked")?;
        }
        write!(
            f,
            "{:>6} {:>9} {:>9} {:>9}",
            "class", "boxes", "blocks", "colls"
        )?;
        for c in self
            .classes
            .iter()
            .filter(|c| c.boxes + c.blocks + c.collections > 0)
        {
            write!(
                f,
                "\n{:>6} {:>9} {:>9} {:>9}",
                c.block_size, c.boxes, c.blocks, c.collections
            )?;
        }
        if self.system_boxes + self.system_blocks + self.system_collections > 0 {
            write!(
                f,
                "\n{:>6} {:>9} {:>9} {:>9}",
                "system", self.system_boxes, self.system_blocks, self.system_collections
            )?;
        }
        write!(f, "\n{:>6} {:>29}", "total", self.total())
    }
}
