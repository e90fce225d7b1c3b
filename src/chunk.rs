//! Chunks as raw memory: their size and alignment, finding a chunk's base
//! from a block, and the map from an address to the chunk that holds it.
//! (The pool allocates them from the system and writes their header.)
//!
//! Every chunk of a pool is aligned to [`SEGMENT`] and is at most that
//! large, so the chunk — and through its header, the pool — is found from
//! any block pointer by masking off the low bits. That is what lets a
//! `PoolBox` be one pointer wide. What a chunk holds (its header, its
//! blocks, its free list) is the pool's business: see
//! [`pool`](crate::pool).
//!
//! ```text
//!  SEGMENT-aligned
//!  v
//!  +--------------+---------+---------+---------+-----+---------+------+
//!  | header       | pad to  | block 0 | block 1 | ... | block n | tail |
//!  | (the pool's) | block   |         |         |     |         |      |
//!  |              | align   |         |         |     |         |      |
//!  +--------------+---------+---------+---------+-----+---------+------+
//!  |<- first_block_offset ->|
//! ```

use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::NonNull;

use crate::budget::Budget;
use crate::source::Source;
use crate::table::Table;
use crate::Error;

/// log2 of [`SEGMENT`].
const SEGMENT_SHIFT: u32 = 20;

/// Alignment of every chunk, and the largest chunk size: 1 MiB.
pub(crate) const SEGMENT: usize = 1 << SEGMENT_SHIFT;

/// Bytes reserved for the header at the start of a chunk (one cache line).
pub(crate) const HEADER_SPACE: usize = 64;

/// Offset of the first block in a chunk whose blocks are aligned to `align`.
#[inline]
pub(crate) const fn first_block_offset(align: usize) -> usize {
    if align > HEADER_SPACE {
        align
    } else {
        HEADER_SPACE
    }
}

/// The layout of a chunk of `size` bytes: aligned to [`SEGMENT`]. (`None`
/// cannot happen for a size up to `SEGMENT`.)
#[inline]
pub(crate) fn layout(size: usize) -> Option<Layout> {
    debug_assert!(
        (HEADER_SPACE..=SEGMENT).contains(&size),
        "chunk size {size} out of range"
    );
    Layout::from_size_align(size, SEGMENT).ok()
}

/// The base of the chunk that holds `block`, with `block`'s provenance.
///
/// # Safety
///
/// `block` must point into a live chunk made by the pool's `ChunkHeader::allocate`, past its
/// header.
#[inline(always)]
pub(crate) unsafe fn base_of(block: NonNull<u8>) -> NonNull<u8> {
    // Masking keeps the pointer's provenance: the header is in the same
    // allocation as the block.
    block.map_addr(|a| {
        // SAFETY: a block lies at least `HEADER_SPACE` bytes into a
        // `SEGMENT`-aligned chunk whose base address is non-zero.
        unsafe { core::num::NonZeroUsize::new_unchecked(a.get() & !(SEGMENT - 1)) }
    })
}

/// The chunks of one manager's pools, by address: how a pointer whose
/// provenance may cover only a value — one handed back through the
/// `Allocator` implementation, which may come from a `&mut` (allocator-api2's
/// `Box::leak` + `Box::from_raw_in`) — is turned into one of the manager's
/// own, which covers the whole chunk: its header, and every byte of the
/// block. Typed boxes never need it: their pointers come from the chunk.
#[derive(Debug)]
pub(crate) struct ChunkMap {
    /// The base of every live chunk of the manager's pools, sorted by
    /// address; its places are charged to the budget. A [`Table`]: grown
    /// with nothing borrowed (the re-entrancy rule, see `table.rs`).
    sorted: Table<NonNull<u8>>,
    /// Chunks found lately, direct-mapped by `(address >> 20) % CACHE`:
    /// consecutive chunks take consecutive entries, so the chunks a program
    /// works in are found with one load and one compare.
    cache: [Cell<Option<NonNull<u8>>>; CACHE],
}

/// Entries of [`ChunkMap`]'s cache.
const CACHE: usize = 64;

impl ChunkMap {
    /// An empty map whose places come from `source`.
    pub(crate) const fn new(source: Source) -> Self {
        ChunkMap {
            sorted: Table::new(source),
            cache: [const { Cell::new(None) }; CACHE],
        }
    }

    /// Makes room for one more chunk, so that [`ChunkMap::insert`] is
    /// unlikely to need any once the chunk is allocated; growth is charged
    /// to `budget`.
    pub(crate) fn reserve_one(&self, budget: &Budget) -> Result<(), Error> {
        let (len, cap) = (self.sorted.len(), self.sorted.capacity());
        if len < cap {
            return Ok(());
        }
        self.sorted.grow(cap.saturating_mul(2).max(8), budget)
    }

    /// Bytes of the map's storage.
    pub(crate) fn bytes(&self) -> usize {
        self.sorted.bytes()
    }

    /// Records a new chunk; grows the map if a call the system allocator
    /// made into this manager took the place [`ChunkMap::reserve_one`]
    /// made (the re-entrancy rule).
    pub(crate) fn insert(&self, chunk: NonNull<u8>, budget: &Budget) -> Result<(), Error> {
        loop {
            let at = self.sorted.partition_point(|c| c.addr() < chunk.addr());
            if self.sorted.insert(at, chunk).is_ok() {
                return Ok(());
            }
            self.reserve_one(budget)?;
        }
    }

    /// Forgets every chunk for which `gone` is true, before they are freed;
    /// frees the map's storage if no chunk is left, and returns its bytes.
    pub(crate) fn remove_if(
        &self,
        budget: &Budget,
        gone: impl FnMut(NonNull<u8>) -> bool,
    ) -> usize {
        self.forget_cached();
        let mut gone = gone;
        self.sorted.retain(|c| !gone(c));
        if self.sorted.len() != 0 {
            return 0;
        }
        let bytes = self.bytes();
        self.clear(budget);
        bytes
    }

    /// Forgets every chunk and frees the map's storage.
    pub(crate) fn clear(&self, budget: &Budget) {
        self.forget_cached();
        budget.credit(self.sorted.free());
    }

    /// The manager's own pointer to the base of the chunk that holds address
    /// `addr`, if one of its chunks does. O(1) for a chunk in the cache,
    /// else O(log chunks).
    #[inline(always)]
    #[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // used by the `Allocator` impl
    pub(crate) fn find(&self, addr: usize) -> Option<NonNull<u8>> {
        let base = addr & !(SEGMENT - 1);
        match self.cache[(base >> SEGMENT_SHIFT) % CACHE].get() {
            Some(c) if c.addr().get() == base => Some(c),
            _ => self.find_slow(base),
        }
    }

    /// Empties the cache (before chunks leave the map).
    fn forget_cached(&self) {
        for e in &self.cache {
            e.set(None);
        }
    }

    /// [`ChunkMap::find`] when the chunk is not in the cache.
    #[cold]
    #[inline(never)]
    #[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // used by the `Allocator` impl
    fn find_slow(&self, base: usize) -> Option<NonNull<u8>> {
        let i = self.sorted.partition_point(|c| c.addr().get() < base);
        let c = self.sorted.get(i).filter(|c| c.addr().get() == base)?;
        self.cache[(base >> SEGMENT_SHIFT) % CACHE].set(Some(c));
        Some(c)
    }
}
