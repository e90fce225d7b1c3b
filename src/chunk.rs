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
/// `block` must point into a live chunk made by the pool's `ChunkHeader::allocate` (a block,
/// or the chunk's base itself).
#[inline(always)]
pub(crate) unsafe fn base_of(block: NonNull<u8>) -> NonNull<u8> {
    // Masking keeps the pointer's provenance: the header is in the same
    // allocation as the block.
    block.map_addr(|a| {
        // SAFETY: `block` lies in a `SEGMENT`-aligned chunk of at most
        // `SEGMENT` bytes, so the mask gives the chunk's base, a non-zero
        // address.
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

    /// Whether the map holds storage but no chunk (a place reserved for a
    /// chunk that was then refused): storage a trim frees.
    pub(crate) fn holds_storage_only(&self) -> bool {
        self.sorted.len() == 0 && self.bytes() != 0
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

/// Empty chunks a shared manager keeps for its threads' next heaps, up to
/// [`ChunkCache::LIST_MAX`] bytes of each size: a thread that exits gives
/// its heap's empty chunks back (see `shared/exit.rs`), and a thread that
/// starts (on a slot whose heap was freed) takes them again, their pages
/// already in memory, instead of asking the system — so a program that
/// starts short threads over and over neither keeps every exited heap's
/// chunks nor pays a page fault for each page of every new one. (mimalloc
/// keeps a cache of segments for the same reason.)
///
/// One list per chunk size, the powers of two from 16 KiB to [`SEGMENT`]
/// (other sizes go back to the system), each a lock-free
/// [`Inbound`](crate::sync::Inbound) linked through each chunk's first
/// word: a chunk on it is raw memory, no pool's, on no list or map of any
/// pool. Each list holds at most `LIST_MAX` bytes, so the small chunks a
/// new heap starts with are kept first (16 of 16 KiB, 8 of 32 KiB, ..., one
/// of 256 KiB; none larger): 1.25 MiB in all. Taking
/// takes a whole list and pushes back what it does not use (every take
/// takes whole lists, so ABA cannot arise); two threads taking at once may
/// find a list empty for a moment, and then ask the system, as without a
/// cache.
///
/// The cached bytes are charged to the manager's budget (a pool that lets
/// a chunk go charges it again for the cache, or frees it if the budget
/// refuses; one that takes a chunk credits that charge, having charged the
/// chunk itself) and counted in its `stats` (`system.cached_bytes`); `trim`
/// gives them back to the system, as does the manager's drop.
#[cfg(all(feature = "std", not(loom)))]
#[derive(Debug)]
pub(crate) struct ChunkCache {
    /// Chunks of `1 << (MIN_SHIFT + i)` bytes.
    lists: [crate::sync::Inbound; ChunkCache::SIZES],
    /// Bytes on each list, at most [`ChunkCache::LIST_MAX`] (counted before
    /// a push and after a take, so a moment's figure may be high).
    bytes: [core::sync::atomic::AtomicUsize; ChunkCache::SIZES],
}

#[cfg(all(feature = "std", not(loom)))]
impl ChunkCache {
    /// The most bytes kept of one size.
    const LIST_MAX: usize = 256 << 10;
    /// log2 of the smallest size kept.
    const MIN_SHIFT: u32 = 14;
    /// The sizes kept: `1 << MIN_SHIFT` to `SEGMENT`.
    const SIZES: usize = (SEGMENT_SHIFT - Self::MIN_SHIFT + 1) as usize;

    /// The index of the list of chunks of `size` bytes, if that size is
    /// kept.
    fn list(&self, size: usize) -> Option<usize> {
        if !size.is_power_of_two() || !(1 << Self::MIN_SHIFT..=SEGMENT).contains(&size) {
            return None;
        }
        Some((size.trailing_zeros() - Self::MIN_SHIFT) as usize)
    }

    /// Keeps `chunk`, of `size` bytes, if its size is kept and there is
    /// room; `false` if the caller must free it.
    ///
    /// # Safety
    ///
    /// `chunk` must be a chunk of `size` bytes allocated with
    /// [`layout`]`(size)` from the source of the manager this cache is in,
    /// used by no one (its blocks all free, on no list or map of a pool).
    pub(crate) unsafe fn give(&self, chunk: NonNull<u8>, size: usize) -> bool {
        let Some(i) = self.list(size) else {
            return false;
        };
        // `Relaxed`: a bound on a count, the only data (the chunk itself is
        // published by the push).
        let room = self.bytes[i].fetch_update(
            core::sync::atomic::Ordering::Relaxed,
            core::sync::atomic::Ordering::Relaxed,
            |n| (n + size <= Self::LIST_MAX).then_some(n + size),
        );
        if room.is_err() {
            return false;
        }
        // SAFETY: the chunk is ours (caller) and at least `HEADER_SPACE`
        // bytes, aligned: its first word holds the link.
        unsafe { self.lists[i].push(chunk) };
        true
    }

    /// A kept chunk of `size` bytes (its memory as it was left: no header,
    /// contents unspecified), or `None`.
    pub(crate) fn take(&self, size: usize) -> Option<NonNull<u8>> {
        let i = self.list(size)?;
        let list = &self.lists[i];
        let head = NonNull::new(list.take())?;
        // SAFETY: the list holds chunks pushed by `give`, their links
        // visible to us (`take`'s `Acquire`); they are ours until pushed
        // back.
        unsafe {
            let rest = *head.cast::<*mut u8>().as_ptr();
            if let Some(rest) = NonNull::new(rest) {
                let mut tail = rest;
                while let Some(next) = NonNull::new(*tail.cast::<*mut u8>().as_ptr()) {
                    tail = next;
                }
                list.push_chain(rest, tail);
            }
        }
        // `Relaxed`: as in `give`.
        self.bytes[i].fetch_sub(size, core::sync::atomic::Ordering::Relaxed);
        Some(head)
    }

    /// Takes every kept chunk, handing each to `free` with its size;
    /// returns the bytes taken.
    pub(crate) fn drain(&self, mut free: impl FnMut(NonNull<u8>, usize)) -> usize {
        let mut taken = 0;
        for (i, list) in self.lists.iter().enumerate() {
            let size = 1 << (Self::MIN_SHIFT + i as u32);
            let mut node = list.take();
            while let Some(chunk) = NonNull::new(node) {
                // SAFETY: as in `take`; the link is read before the chunk is
                // handed on.
                node = unsafe { *chunk.cast::<*mut u8>().as_ptr() };
                free(chunk, size);
                // `Relaxed`: as in `give`.
                self.bytes[i].fetch_sub(size, core::sync::atomic::Ordering::Relaxed);
                taken += size;
            }
        }
        taken
    }

    /// Bytes kept now.
    pub(crate) fn bytes(&self) -> usize {
        // `Relaxed`: a statistic.
        self.bytes
            .iter()
            .map(|b| b.load(core::sync::atomic::Ordering::Relaxed))
            .sum()
    }
}

#[cfg(all(test, feature = "std", not(loom)))]
mod cache_tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn a_segment_is_a_chunk_alignment() {
        // Else `Global`'s chunks would silently come from the system
        // allocator (see `segments.rs`).
        assert_eq!(crate::segments::SEGMENT, SEGMENT);
    }

    #[test]
    fn the_cache_keeps_power_of_two_chunks_up_to_its_limit_and_gives_them_back() {
        let cache = ChunkCache {
            lists: core::array::from_fn(|_| crate::sync::Inbound::new()),
            bytes: core::array::from_fn(|_| core::sync::atomic::AtomicUsize::new(0)),
        };
        let alloc = |size| crate::source::alloc(Source::Global, layout(size).unwrap()).unwrap();
        let free = |c, size| {
            // SAFETY: (test) allocated above with this layout, freed once.
            unsafe { crate::source::dealloc(Source::Global, c, layout(size).unwrap()) }
        };
        let (a, b) = (alloc(16 << 10), alloc(16 << 10));
        // SAFETY: (test) fresh chunks of these sizes, used by no one.
        unsafe {
            assert!(cache.give(a, 16 << 10));
            assert!(cache.give(b, 16 << 10));
        }
        assert_eq!(cache.bytes(), 32 << 10);
        // Not a size it keeps: refused.
        let odd = alloc(20 << 10);
        // SAFETY: (test) as above.
        assert!(!unsafe { cache.give(odd, 20 << 10) });
        free(odd, 20 << 10);
        // Up to a list's limit, not past it: 256 KiB of 16 KiB chunks (two
        // kept: 14 more), and no 1 MiB chunk at all.
        let more: Vec<_> = (0..15).map(|_| alloc(16 << 10)).collect();
        for (i, &c) in more.iter().enumerate() {
            // SAFETY: (test) as above.
            assert_eq!(unsafe { cache.give(c, 16 << 10) }, i < 14, "chunk {i}");
        }
        free(more[14], 16 << 10);
        assert_eq!(cache.bytes(), 256 << 10);
        let big = alloc(SEGMENT);
        // SAFETY: (test) as above.
        let kept = unsafe { cache.give(big, SEGMENT) };
        assert!(!kept, "1 MiB is past a list's limit");
        free(big, SEGMENT);
        for _ in 0..14 {
            let c = cache.take(16 << 10).unwrap();
            free(c, 16 << 10);
        }
        assert_eq!(cache.bytes(), 32 << 10);
        assert_eq!(cache.take(32 << 10), None);
        let t = cache.take(16 << 10).unwrap();
        assert!(t == a || t == b);
        assert_eq!(cache.bytes(), 16 << 10);
        free(t, 16 << 10);
        let mut drained = 0;
        assert_eq!(
            cache.drain(|c, size| {
                drained += 1;
                free(c, size);
            }),
            16 << 10
        );
        assert_eq!((drained, cache.bytes(), cache.take(16 << 10)), (1, 0, None));
    }
}
