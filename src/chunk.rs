//! Chunks: one system allocation cut into equal blocks of one class.
//!
//! Every chunk of a typed pool is aligned to [`SEGMENT`] and is at most that
//! large, so the chunk — and through its header, the pool — is found from
//! any block pointer by masking off the low bits. That is what lets a
//! `PoolBox` be one pointer wide.
//!
//! ```text
//!  SEGMENT-aligned
//!  v
//!  +--------------+---------+---------+---------+-----+---------+------+
//!  | ChunkHeader  | pad to  | block 0 | block 1 | ... | block n | tail |
//!  | pool, next,  | block   |         |         |     |         |      |
//!  | size         | align   |         |         |     |         |      |
//!  +--------------+---------+---------+---------+-----+---------+------+
//!  |<- first_block_offset ->|
//! ```

use alloc::vec::Vec;
use core::alloc::Layout;
use core::cell::{Cell, RefCell};
use core::ptr::NonNull;

use crate::budget::Budget;
use crate::pool::Pool;
use crate::{system, Error};

/// log2 of [`SEGMENT`].
const SEGMENT_SHIFT: u32 = 20;

/// Alignment of every typed-pool chunk, and the largest chunk size: 1 MiB.
pub(crate) const SEGMENT: usize = 1 << SEGMENT_SHIFT;

/// Bytes reserved for the header at the start of a chunk (one cache line).
const HEADER_SPACE: usize = 64;

/// The header at the start of every typed-pool chunk.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ChunkHeader {
    /// The pool that owns this chunk. Pools never move while they own chunks.
    pub(crate) pool: NonNull<Pool>,
    /// The pool's next chunk (a singly linked list for release), or null.
    pub(crate) next: *mut ChunkHeader,
    /// Size of this chunk in bytes, for deallocation.
    pub(crate) size: usize,
    /// The pool's next reserved, never-used chunk while this one is on its
    /// spare list, or null.
    pub(crate) spare_next: *mut ChunkHeader,
    /// Scratch count for [`Pool::trim`](crate::pool::Pool): free blocks in
    /// this chunk, or `usize::MAX` for a chunk about to be released.
    pub(crate) scratch: usize,
}

static_assertions::const_assert!(core::mem::size_of::<ChunkHeader>() <= HEADER_SPACE);

/// Offset of the first block in a chunk whose blocks are aligned to `align`.
#[inline]
pub(crate) const fn first_block_offset(align: usize) -> usize {
    if align > HEADER_SPACE {
        align
    } else {
        HEADER_SPACE
    }
}

/// Allocates a chunk of `size` bytes for `pool` and writes its header.
/// `None` if the system allocator refuses.
pub(crate) fn allocate(
    pool: NonNull<Pool>,
    size: usize,
    next: *mut ChunkHeader,
) -> Option<NonNull<ChunkHeader>> {
    debug_assert!(
        (HEADER_SPACE..=SEGMENT).contains(&size),
        "chunk size {size} out of range"
    );
    let layout = Layout::from_size_align(size, SEGMENT).ok()?;
    let base = system::alloc(layout)?.cast::<ChunkHeader>();
    // SAFETY: `base` is a fresh allocation of at least `HEADER_SPACE` bytes
    // aligned to `SEGMENT`, so it is valid and aligned for a `ChunkHeader`.
    unsafe {
        base.write(ChunkHeader {
            pool,
            next,
            size,
            spare_next: core::ptr::null_mut(),
            scratch: 0,
        })
    };
    Some(base)
}

/// The header of the chunk that holds `block`.
///
/// # Safety
///
/// `block` must point into a live chunk made by [`allocate`].
#[inline(always)]
pub(crate) unsafe fn header_of(block: NonNull<u8>) -> NonNull<ChunkHeader> {
    // Masking keeps the pointer's provenance: the header is in the same
    // allocation as the block.
    block
        .map_addr(|a| {
            // SAFETY: a block lies at least `HEADER_SPACE` bytes into a
            // `SEGMENT`-aligned chunk whose base address is non-zero.
            unsafe { core::num::NonZeroUsize::new_unchecked(a.get() & !(SEGMENT - 1)) }
        })
        .cast()
}

/// Frees a chunk and returns the next one in its list.
///
/// # Safety
///
/// `chunk` must come from [`allocate`], not yet be freed, and no block in it
/// may be used afterwards.
pub(crate) unsafe fn release(chunk: NonNull<ChunkHeader>) -> *mut ChunkHeader {
    // SAFETY: the caller guarantees the chunk is live, so its header is readable.
    let ChunkHeader { next, size, .. } = unsafe { chunk.read() };
    // SAFETY: `allocate` made this chunk with exactly this layout (it
    // succeeded then, so it succeeds now), and the caller guarantees it is
    // freed only once.
    unsafe {
        system::dealloc(
            chunk.cast(),
            Layout::from_size_align_unchecked(size, SEGMENT),
        )
    };
    next
}

/// The chunks of one manager's typed pools, by address: how a pointer whose
/// provenance may cover only a value — one handed back through the
/// `Allocator` implementation, which may come from a `&mut` (allocator-api2's
/// `Box::leak` + `Box::from_raw_in`) — is turned into one of the manager's
/// own, which covers the whole chunk: its header, and every byte of the
/// block. Typed boxes never need it: their pointers come from the chunk.
#[derive(Debug)]
pub(crate) struct ChunkMap {
    /// Every live chunk of the manager's typed pools, sorted by address.
    sorted: RefCell<Vec<NonNull<ChunkHeader>>>,
    /// Places reserved in `sorted` (its capacity), charged to the budget.
    cap: Cell<usize>,
    /// Chunks found lately, direct-mapped by `(address >> 20) % CACHE`:
    /// consecutive chunks take consecutive entries, so the chunks a program
    /// works in are found with one load and one compare.
    cache: [Cell<Option<NonNull<ChunkHeader>>>; CACHE],
}

/// Entries of [`ChunkMap`]'s cache.
const CACHE: usize = 64;

impl Default for ChunkMap {
    fn default() -> Self {
        ChunkMap {
            sorted: RefCell::new(Vec::new()),
            cap: Cell::new(0),
            cache: [const { Cell::new(None) }; CACHE],
        }
    }
}

impl ChunkMap {
    /// Makes room for one more chunk, so that [`ChunkMap::insert`] cannot
    /// fail once the chunk is allocated; growth is charged to `budget`.
    pub(crate) fn reserve_one(&self, budget: &Budget) -> Result<(), Error> {
        let mut sorted = self.sorted.borrow_mut();
        let cap = self.cap.get();
        if sorted.len() < cap {
            return Ok(());
        }
        let new_cap = cap.saturating_mul(2).max(8);
        let bytes = (new_cap - cap) * core::mem::size_of::<NonNull<ChunkHeader>>();
        budget.charge(bytes)?;
        let len = sorted.len();
        if sorted.try_reserve_exact(new_cap - len).is_err() {
            budget.credit(bytes);
            return Err(Error::OutOfMemory {
                size: bytes,
                align: core::mem::align_of::<NonNull<ChunkHeader>>(),
            });
        }
        self.cap.set(new_cap);
        Ok(())
    }

    /// Bytes of the map's storage.
    pub(crate) fn bytes(&self) -> usize {
        self.cap.get() * core::mem::size_of::<NonNull<ChunkHeader>>()
    }

    /// Records a new chunk (after [`ChunkMap::reserve_one`]).
    pub(crate) fn insert(&self, chunk: NonNull<ChunkHeader>) {
        let mut sorted = self.sorted.borrow_mut();
        let at = sorted.partition_point(|c| c.addr() < chunk.addr());
        debug_assert!(sorted.len() < sorted.capacity(), "no room reserved");
        sorted.insert(at, chunk);
    }

    /// Forgets every chunk for which `gone` is true, before they are freed;
    /// frees the map's storage if no chunk is left, and returns its bytes.
    pub(crate) fn remove_if(
        &self,
        budget: &Budget,
        mut gone: impl FnMut(NonNull<ChunkHeader>) -> bool,
    ) -> usize {
        self.forget_cached();
        let empty = {
            let mut sorted = self.sorted.borrow_mut();
            sorted.retain(|&c| !gone(c));
            sorted.is_empty()
        };
        if !empty {
            return 0;
        }
        let bytes = self.bytes();
        self.clear(budget);
        bytes
    }

    /// Forgets every chunk and frees the map's storage.
    pub(crate) fn clear(&self, budget: &Budget) {
        self.forget_cached();
        budget.credit(self.bytes());
        self.cap.set(0);
        *self.sorted.borrow_mut() = Vec::new();
    }

    /// The manager's own pointer to the chunk that holds address `addr`, if
    /// one of its chunks does. O(1) for a chunk in the cache, else
    /// O(log chunks).
    #[inline(always)]
    #[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // used by the `Allocator` impl
    pub(crate) fn find(&self, addr: usize) -> Option<NonNull<ChunkHeader>> {
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
    fn find_slow(&self, base: usize) -> Option<NonNull<ChunkHeader>> {
        let sorted = self.sorted.borrow();
        let i = sorted
            .binary_search_by_key(&base, |c| c.addr().get())
            .ok()?;
        let c = sorted[i];
        self.cache[(base >> SEGMENT_SHIFT) % CACHE].set(Some(c));
        Some(c)
    }
}
