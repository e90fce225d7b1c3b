//! Statistics: what each pool and the system fallback hold.
#![deny(unsafe_code)]

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
    /// One entry per size class, smallest first.
    pub classes: Vec<ClassStats>,
    /// Allocations served by the system allocator.
    pub system: SystemStats,
}

/// Figures for one size class: its typed pool and its checked-block pool
/// together.
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
    /// Blocks in all chunks: live, free, and not yet used.
    pub capacity: usize,
    /// Chunks taken from the system allocator.
    pub chunks: usize,
    /// Bytes of those chunks.
    pub reserved_bytes: usize,
}

impl ClassStats {
    /// Live blocks of both kinds.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// assert_eq!(mm.stats().classes[0].live(), 0);
    /// ```
    #[must_use]
    pub fn live(&self) -> usize {
        self.live_boxes + self.live_blocks
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
        self.capacity - self.live()
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
    /// Bytes asked of the system allocator for them, headers included.
    pub bytes: usize,
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
            + self.system.live_boxes
            + self.system.live_blocks
    }

    /// Bytes held from the system allocator: every chunk plus every system
    /// allocation.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let _x = mm.alloc(1u8);
    /// assert_eq!(mm.stats().reserved_bytes(), 16 * 1024); // one first chunk
    /// ```
    #[must_use]
    pub fn reserved_bytes(&self) -> usize {
        self.classes.iter().map(|c| c.reserved_bytes).sum::<usize>() + self.system.bytes
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>6} {:>10} {:>10} {:>10} {:>10} {:>7} {:>12}",
            "class", "boxes", "blocks", "free", "capacity", "chunks", "reserved"
        )?;
        for c in &self.classes {
            writeln!(
                f,
                "{:>6} {:>10} {:>10} {:>10} {:>10} {:>7} {:>12}",
                c.block_size,
                c.live_boxes,
                c.live_blocks,
                c.free(),
                c.capacity,
                c.chunks,
                c.reserved_bytes
            )?;
        }
        writeln!(
            f,
            "{:>6} {:>10} {:>10} {:>10} {:>10} {:>7} {:>12}",
            "system",
            self.system.live_boxes,
            self.system.live_blocks,
            "-",
            "-",
            "-",
            self.system.bytes
        )?;
        write!(
            f,
            "{:>6} {:>21} live {:>37}",
            "total",
            self.live(),
            self.reserved_bytes()
        )
    }
}
