//! The one pool: one size class, an intrusive free list, chunks that grow.
//!
//! This is the raw core behind `PoolBox`, `Block` and the `Allocator`. A
//! [`Pool`] hands out blocks of one size; it knows nothing of types.
//! Allocation pops the free list, freeing pushes it — both O(1), the list
//! unordered. When the list is empty the next never-used block of the
//! newest chunk is handed out (a bump, inline); when that chunk is used up
//! the cold [`refill`] takes a reserved spare chunk or allocates a new one,
//! each new one twice the size of the last up to the cap.
//!
//! Because never-used blocks are only taken when the free list is empty, the
//! blocks ever handed out from the current chunks were all live at once at
//! that moment: their count is the high-water mark of live blocks, known
//! without a single instruction on the fast path.
//!
//! A pool is found from any of its blocks through the chunk header (see
//! [`chunk`]), so pools live at fixed heap addresses inside
//! the heap context (`heap::Heap`) and never move.

use alloc::vec::Vec;
use core::cell::Cell;

use core::ptr::{self, NonNull};

use crate::budget::Budget;
use crate::chunk::{self, HEADER_SPACE};
use crate::fill;
use crate::size_class::natural_align;
use crate::source;
use crate::sync::{Counter, Inbound};
use crate::system::Fallback;
use crate::Error;

/// Chunk sizes a manager's pools grow with, and its byte budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkConfig {
    /// Size of each pool's first chunk.
    pub(crate) initial: usize,
    /// Largest chunk size; chunks double until they reach it.
    pub(crate) max: usize,
}

/// A free block, seen as a free-list node.
#[repr(C)]
struct FreeNode {
    next: *mut FreeNode,
}

/// The header at the start of every chunk (see [`chunk`] for the layout).
/// Written by [`ChunkHeader::allocate`]; every field but the links and the
/// scratch word is fixed from then on.
#[repr(C)]
#[derive(Debug)]
struct ChunkHeader {
    /// The pool that owns this chunk. Pools never move while they own chunks.
    pool: NonNull<Pool>,
    /// The pool's next chunk (a singly linked list for release), or null.
    next: *mut ChunkHeader,
    /// Size of this chunk in bytes, for deallocation.
    size: usize,
    /// The next chunk on the pool's spare list or used list (whichever this
    /// one is on: every chunk is on exactly one), or null.
    spare_next: *mut ChunkHeader,
    /// Scratch count for [`Pool::trim`]: free blocks in this chunk, or
    /// `usize::MAX` for a chunk about to be released.
    scratch: usize,
    /// Offset of the first block from the chunk's base.
    first: u32,
    /// Blocks in this chunk.
    blocks: u32,
}

static_assertions::const_assert!(core::mem::size_of::<ChunkHeader>() <= HEADER_SPACE);

impl ChunkHeader {
    /// Allocates a chunk of `size` bytes for `pool` from the system and
    /// writes its header; `None` if the system allocator refuses.
    fn allocate(
        pool: NonNull<Pool>,
        source: source::Source,
        size: usize,
        (first, blocks): (usize, usize),
    ) -> Option<NonNull<ChunkHeader>> {
        let base = source::alloc(source, chunk::layout(size)?)?.cast::<ChunkHeader>();
        // SAFETY: `base` is a fresh allocation of at least `HEADER_SPACE`
        // bytes aligned to `SEGMENT`, so it is valid and aligned for a header.
        // `first` and `blocks` fit: a chunk is at most `SEGMENT` bytes.
        unsafe {
            base.write(ChunkHeader {
                pool,
                next: ptr::null_mut(),
                size,
                spare_next: ptr::null_mut(),
                scratch: 0,
                first: first as u32,
                blocks: blocks as u32,
            })
        };
        Some(base)
    }

    /// The header of the chunk that holds `block`.
    ///
    /// # Safety
    ///
    /// `block` must point into a live chunk made by
    /// [`ChunkHeader::allocate`], with provenance over it.
    #[inline(always)]
    unsafe fn of(block: NonNull<u8>) -> NonNull<ChunkHeader> {
        // SAFETY: the caller's guarantee; the chunk's base holds its header.
        unsafe { chunk::base_of(block) }.cast()
    }

    /// Frees a chunk and returns the next one in its list.
    ///
    /// # Safety
    ///
    /// `chunk` must come from [`ChunkHeader::allocate`], not yet be freed,
    /// and no block in it may be used afterwards; `source` must be its pool's.
    unsafe fn release(chunk: NonNull<ChunkHeader>, source: source::Source) -> *mut ChunkHeader {
        // SAFETY: the caller guarantees the chunk is live, so its header is
        // readable.
        let ChunkHeader { next, size, .. } = unsafe { chunk.read() };
        if let Some(layout) = chunk::layout(size) {
            // SAFETY: `allocate` made this chunk from `source` (the pool's,
            // which the caller passes) with exactly this layout, and the
            // caller guarantees it is freed only once.
            unsafe { source::dealloc(source, chunk.cast(), layout) };
        }
        next
    }
}

/// One size class's pool. All mutable state is in `Cell`s: the pool is only
/// ever reached through shared references (from the manager, and from block
/// pointers via chunk headers), never from two threads.
///
/// Invariant, relied on by every `unsafe` block of this module:
/// - Every chunk is a live allocation from [`ChunkHeader::allocate`] on the
///   pool's chunk list once, and on exactly one of the spare and used lists;
///   its header's `pool` is this pool. `first + blocks * block_size <= size`.
/// - Every block of a chunk is live (handed out, not returned), on the free
///   list once (its first word holds the link), never used since the chunk
///   was last put on the spare list (a spare chunk, or the chunk `fresh`
///   points into at or past `fresh`), or — after a recycle — none of these
///   and forgotten until the bump reaches it.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Pool {
    /// Head of the free list, or null. Hot: first field.
    free: Cell<*mut FreeNode>,
    /// Blocks handed out, ever.
    allocs: Counter,
    /// Block size in bytes (a multiple of 8).
    block_size: usize,
    /// Blocks live, plus `guard` (not next to `allocs`: the two counters
    /// would be merged into one vector add, four instructions for two). A
    /// free that brings it to zero finds the pool empty after more than one
    /// chunk's worth of blocks was handed out since it was last recycled,
    /// and recycles it (see [`emptied`]).
    held: Counter,
    /// 1 while at most one chunk's blocks have been handed out since the
    /// pool was made or last recycled, else 0: a small pool (one object
    /// allocated and freed, over and over) never takes the cold path.
    guard: Counter,
    /// Offset of the first block in every chunk.
    first_offset: usize,
    /// Next never-used block of the newest chunk.
    fresh: Cell<*mut u8>,
    /// Never-used blocks left in the newest chunk.
    fresh_left: Counter,
    /// Chunks with only never-used blocks (reserved, or recycled), linked
    /// through `spare_next`, in the order they are to be used.
    spare: Cell<*mut ChunkHeader>,
    /// Chunks taken off the spare list (or made) since the pool was last
    /// recycled, the newest first, linked through `spare_next`: what a
    /// recycle puts back, so that it costs the chunks used, not all.
    used: Cell<*mut ChunkHeader>,
    /// Blocks in the spare chunks.
    spare_blocks: Counter,
    /// Size of the next chunk to allocate.
    next_chunk_size: Cell<usize>,
    /// Chunk size cap.
    max_chunk_size: usize,
    /// Smallest chunk (the first one's size): the floor when a budget makes
    /// the pool grow by less than the next size.
    min_chunk_size: usize,
    /// Newest chunk; each header links to the one before.
    chunks: Cell<*mut ChunkHeader>,
    /// Number of chunks.
    chunk_count: Counter,
    /// Bytes of all chunks.
    reserved: Counter,
    /// Blocks in all chunks.
    capacity: Counter,
    /// High-water mark of live blocks saved before chunks were released.
    peak: Counter,
    /// Blocks of this class the owner freed into other heaps' pools (see
    /// [`Pool::remote_out`]).
    remote_out: Counter,
    /// Live blocks that a collection holds (the `Allocator`
    /// implementation's), counted apart from boxes in the stats, off every
    /// box's path.
    tally: Counter,
    /// The manager's fallback record (budget and chunk map); outlives the
    /// pool.
    fallback: NonNull<Fallback>,
    /// `block_size` is an odd number shifted left by `shift`, and `inverse`
    /// is that odd number's inverse modulo 2^`usize::BITS`: a block's index
    /// from its offset in the chunk, without a division.
    shift: u32,
    /// See `shift`.
    inverse: usize,
    /// Checked [`Block`](crate::Block)s of this class handed out, ever
    /// (they live in the class's byte store, see `checked.rs`; the class's
    /// counts are kept here).
    checked_allocs: Counter,
    /// Most checked blocks of this class live at once.
    checked_peak: Counter,
    /// What other threads touch: on a cache line of its own, so that remote
    /// frees neither slow the owner's fast path nor wait for its writes.
    remote: Remote,
}

/// The part of a [`Pool`] that threads other than its owner read and write,
/// alone on a 128-byte line (two 64-byte cache lines: the adjacent-line
/// prefetcher fetches pairs).
#[repr(C, align(128))]
#[derive(Debug)]
struct Remote {
    /// Blocks freed by other threads (a shared manager's remote frees),
    /// taken by the owner when its free list and newest chunk are used up,
    /// before it takes another chunk.
    inbound: Inbound,
    /// The thread slot whose holder owns the pool (see `thread.rs`), or
    /// [`UNOWNED`]: a free on that thread pushes the free list, a free on any
    /// other pushes `inbound`. Fixed when the pool is made.
    tid: u32,
    /// The pool's index among its heap's classes.
    class: u32,
    /// The shared manager's state the heap belongs to, or null.
    owner: *const (),
}

/// [`Pool::tid`] of a pool no thread owns: a `MemoryManager`'s (used by one
/// thread at a time, which frees through the free list directly), or a
/// shared manager's central pools (used under its lock).
pub(crate) const UNOWNED: u32 = u32::MAX - 2;

/// The inverse of odd `d` modulo 2^`usize::BITS`, by Newton's iteration
/// (each step doubles the correct low bits, from 3).
const fn inverse_of(d: usize) -> usize {
    let mut x = d;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2usize.wrapping_sub(d.wrapping_mul(x)));
        i += 1;
    }
    x
}

impl Pool {
    /// A pool of `block_size`-byte blocks, with no chunk yet.
    pub(crate) fn new(
        block_size: usize,
        config: ChunkConfig,
        fallback: NonNull<Fallback>,
        (tid, class, owner): (u32, usize, *const ()),
    ) -> Pool {
        let align = natural_align(block_size);
        let first_offset = chunk::first_block_offset(align);
        let smallest = first_offset + block_size;
        let initial = config.initial.max(smallest).min(chunk::SEGMENT);
        let max_chunk_size = config.max.max(initial).min(chunk::SEGMENT);
        let shift = block_size.trailing_zeros();
        Pool {
            free: Cell::new(ptr::null_mut()),
            allocs: Counter::new(0),
            held: Counter::new(1),
            guard: Counter::new(1),
            block_size,
            first_offset,
            fresh: Cell::new(ptr::null_mut()),
            fresh_left: Counter::new(0),
            spare: Cell::new(ptr::null_mut()),
            used: Cell::new(ptr::null_mut()),
            spare_blocks: Counter::new(0),
            next_chunk_size: Cell::new(initial),
            max_chunk_size,
            min_chunk_size: initial,
            chunks: Cell::new(ptr::null_mut()),
            chunk_count: Counter::new(0),
            reserved: Counter::new(0),
            capacity: Counter::new(0),
            peak: Counter::new(0),
            remote_out: Counter::new(0),
            tally: Counter::new(0),
            fallback,
            shift,
            inverse: inverse_of(block_size >> shift),
            checked_allocs: Counter::new(0),
            checked_peak: Counter::new(0),
            remote: Remote {
                inbound: Inbound::new(),
                tid,
                class: class as u32,
                owner,
            },
        }
    }

    /// Where the blocks of a chunk of `size` bytes start, and how many
    /// there are: after the header, aligned to the blocks' natural
    /// alignment.
    fn geometry(&self, size: usize) -> (usize, usize) {
        (
            self.first_offset,
            (size - self.first_offset) / self.block_size,
        )
    }

    /// Pops a block of `block_size` bytes, aligned to its natural alignment;
    /// the error says why a new chunk could not be had (the budget, or the
    /// system allocator, with the chunk's own figures).
    #[inline(always)]
    pub(crate) fn alloc(&self) -> Result<NonNull<u8>, Error> {
        let Some(head) = NonNull::new(self.free.get()) else {
            return self.alloc_fresh();
        };
        // SAFETY: every node on the free list is a free block of this pool,
        // inside a live chunk, whose first word holds the link.
        self.free.set(unsafe { (*head.as_ptr()).next });
        self.count_alloc();
        // SAFETY: a free block of `block_size` bytes, now ours, filled when it
        // was freed (both calls compile to nothing without the `debug-fill`
        // feature).
        unsafe {
            fill::check_freed(head.cast(), self.block_size);
            fill::fresh(head.cast(), self.block_size);
        }
        Ok(head.cast())
    }

    /// The other half of [`Pool::alloc`], when the free list is empty: the
    /// next never-used block of the newest chunk (a bump), inline — after a
    /// reset or a recycle every allocation comes from here — else the cold
    /// [`refill`]. `#[cold]` only lays it out after the pop, so that the pop
    /// runs straight through; it is still inlined.
    #[cold]
    #[inline(always)]
    fn alloc_fresh(&self) -> Result<NonNull<u8>, Error> {
        let left = self.fresh_left.get();
        if left == 0 {
            return refill(self);
        }
        let block = self.fresh.get();
        // SAFETY: `fresh_left > 0`, so `block` is a never-used block inside a
        // live chunk (not null) and the next one is at most one past its
        // last block.
        let block = unsafe {
            self.fresh.set(block.add(self.block_size));
            NonNull::new_unchecked(block)
        };
        self.fresh_left.set(left - 1);
        self.count_alloc();
        // SAFETY: as above, `block_size` bytes that are now ours.
        unsafe { fill::fresh(block, self.block_size) };
        Ok(block)
    }

    /// Counts a block handed out.
    #[inline(always)]
    fn count_alloc(&self) {
        self.allocs.set(self.allocs.get() + 1);
        self.held.set(self.held.get() + 1);
    }

    /// Counts a checked block of this class handed out, `live` of them
    /// live now.
    #[inline(always)]
    pub(crate) fn count_checked(&self, live: usize) {
        self.checked_allocs.set(self.checked_allocs.get() + 1);
        self.checked_peak.set(self.checked_peak.get().max(live));
    }

    /// Checked blocks of this class handed out, ever.
    pub(crate) fn checked_allocs(&self) -> usize {
        self.checked_allocs.get()
    }

    /// Most checked blocks of this class live at once.
    pub(crate) fn checked_peak(&self) -> usize {
        self.checked_peak.get()
    }

    /// Live blocks of this pool that a collection holds.
    pub(crate) fn tally(&self) -> usize {
        self.tally.get()
    }

    /// Counts one more (`up`) or one fewer block in [`tally`](Self::tally).
    #[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // the `Allocator` impl's
    #[inline(always)]
    pub(crate) fn count_tally(&self, up: bool) {
        let t = self.tally.get();
        self.tally.set(if up { t + 1 } else { t.saturating_sub(1) });
    }

    /// Returns a block to the pool that owns it.
    ///
    /// # Safety
    ///
    /// `block` must come from [`Pool::alloc`] of a pool that is still alive,
    /// and must not have been freed since; nothing may use it afterwards.
    #[inline(always)]
    pub(crate) unsafe fn free(block: NonNull<u8>) {
        // SAFETY: the caller guarantees `block` is a live block of a live pool.
        unsafe { Pool::of(block) }.push(block);
    }

    /// The pool that owns `block`.
    ///
    /// # Safety
    ///
    /// `block` must be a block of a pool that is still alive.
    #[inline(always)]
    pub(crate) unsafe fn of<'a>(block: NonNull<u8>) -> &'a Pool {
        // SAFETY: `block` lies in a live chunk (caller), whose header holds a
        // pointer to its pool; pools outlive their chunks and never move. A
        // raw read of the one field, no reference to the header: the owner
        // may be writing the header's scratch word meanwhile (`trim`).
        unsafe { (*ptr::addr_of!((*ChunkHeader::of(block).as_ptr()).pool)).as_ref() }
    }

    /// The thread slot that owns the pool, or [`UNOWNED`].
    #[inline(always)]
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn tid(&self) -> u32 {
        self.remote.tid
    }

    /// Frees `block` from a thread other than the pool's owner: one push on
    /// the pool's [`Inbound`] list, which the owner collects on its slow
    /// path. The pool's counters are the owner's and stay as they are.
    ///
    /// # Safety
    ///
    /// As [`Pool::free`]; any thread may call it.
    #[inline]
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) unsafe fn push_remote(&self, block: NonNull<u8>) {
        // SAFETY: `block` is a block of this pool its owner gave back (the
        // caller), so its `block_size` bytes are ours until the push below
        // publishes it, and its first word (blocks are at least 8 bytes,
        // aligned to 8) holds the link.
        unsafe {
            fill::freed(block, self.block_size);
            self.remote.inbound.push(block);
        }
    }

    /// Takes the blocks other threads freed into this pool onto the free
    /// list (before what is there); `true` if there were any. Owner only.
    /// O(1) when the free list is empty — the slow path's case: the list
    /// taken becomes the free list, unwalked (walking it would wait on each
    /// block's line, just written by the freeing thread, one after the
    /// other). The blocks are not counted here: each freeing thread counted
    /// its remote frees in its own heap (`remote_out`), so the pool's `held`
    /// keeps counting them live, and a shared manager's figures subtract
    /// the freeing threads' counts.
    pub(crate) fn collect(&self) -> bool {
        let head = self.remote.inbound.take().cast::<FreeNode>();
        let Some(head) = NonNull::new(head) else {
            return false;
        };
        if !self.free.get().is_null() {
            let mut tail = head;
            // SAFETY: `take` returned a list of blocks of this pool pushed by
            // `push_remote`, each linked through its first word, the links
            // visible to us (its `Acquire`); the blocks are free and ours now.
            unsafe {
                while let Some(next) = NonNull::new(tail.as_ref().next) {
                    tail = next;
                }
                (*tail.as_ptr()).next = self.free.get();
            }
        }
        self.free.set(head.as_ptr());
        true
    }

    /// Blocks of this class that the pool's owner freed into other heaps'
    /// pools (remote frees it made), counted for the shared manager's
    /// figures.
    #[inline]
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn remote_out(&self) -> usize {
        self.remote_out.get()
    }

    /// Counts one remote free made by this pool's owner (see
    /// [`remote_out`](Self::remote_out)). Owner only.
    #[inline]
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn count_remote_out(&self) {
        self.remote_out.set(self.remote_out.get() + 1);
    }

    /// Forgets the remote frees counted (a reset: every block is free).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn clear_remote_out(&self) {
        self.remote_out.set(0);
    }

    /// The class index of the pool in its heap, and the shared manager's
    /// state the heap belongs to (null for a `MemoryManager`): what a
    /// remote free needs to count itself in the freeing thread's heap.
    #[inline]
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn class_and_owner(&self) -> (usize, *const ()) {
        (self.remote.class as usize, self.remote.owner)
    }

    #[inline(always)]
    pub(crate) fn push(&self, block: NonNull<u8>) {
        let node = block.cast::<FreeNode>();
        // SAFETY: `block` is a block of this pool that its owner gave back, so
        // its `block_size` bytes are ours, and its first word (blocks are at
        // least 8 bytes, aligned to 8) is ours to use as the link.
        unsafe {
            fill::freed(block, self.block_size);
            node.write(FreeNode {
                next: self.free.get(),
            })
        };
        self.free.set(node.as_ptr());
        let held = self.held.get() - 1;
        self.held.set(held);
        if held == 0 {
            emptied(self);
        }
    }

    /// The manager's name, if it has one.
    pub(crate) fn name(&self) -> Option<&'static str> {
        self.fallback().name
    }

    /// The manager's fallback record, as a pointer.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn fallback_ptr(&self) -> NonNull<Fallback> {
        self.fallback
    }

    /// The manager's budget.
    fn budget(&self) -> &Budget {
        &self.fallback().budget
    }

    /// The manager's fallback record.
    fn fallback(&self) -> &Fallback {
        // SAFETY: the fallback is freed only after every pool (see
        // `Heap::drop`).
        unsafe { self.fallback.as_ref() }
    }

    /// Allocates a chunk of the next size and links it into the chunk list.
    /// Never panics.
    ///
    /// The system allocator may call this manager (the re-entrancy rule,
    /// see `table.rs`): the chunk is entered in the record table or chunk
    /// map, and linked, only after it returns, from what the pool holds
    /// then.
    fn new_chunk(&self) -> Result<NonNull<ChunkHeader>, Error> {
        // Room in the chunk map (or the record table) first — a few bytes,
        // kept if the chunk is refused — so that the budget's refusal is
        // about the chunk.
        let fallback = self.fallback();
        let mapped = fallback.kind.map;
        if mapped {
            fallback.chunks.reserve_one(&fallback.budget)?;
        }
        let size = self
            .budget()
            .charge_up_to(self.next_chunk_size.get(), self.min_chunk_size)?;
        let geometry = self.geometry(size);
        let source = fallback.kind.source;
        let Some(chunk) = ChunkHeader::allocate(NonNull::from(self), source, size, geometry) else {
            self.budget().credit(size);
            // The chunk's figures, not the value's: that is what was refused.
            return Err(Error::OutOfMemory {
                size,
                align: chunk::SEGMENT,
            });
        };
        let entered = if mapped {
            fallback.chunks.insert(chunk.cast(), &fallback.budget)
        } else {
            Ok(())
        };
        if let Err(e) = entered {
            // SAFETY: made just above, on no list, no block handed out.
            unsafe { ChunkHeader::release(chunk, source) };
            self.budget().credit(size);
            return Err(e);
        }
        // SAFETY: the chunk is live and on no list; its link is ours.
        unsafe { (*chunk.as_ptr()).next = self.chunks.get() };
        self.chunks.set(chunk.as_ptr());
        self.chunk_count.set(self.chunk_count.get() + 1);
        self.reserved.set(self.reserved.get() + size);
        self.capacity.set(self.capacity.get() + geometry.1);
        self.next_chunk_size
            .set(size.saturating_mul(2).min(self.max_chunk_size));
        Ok(chunk)
    }

    /// Puts a new chunk on the spare list.
    fn add_spare(&self, chunk: NonNull<ChunkHeader>) {
        // SAFETY: the chunk was just made and is live, on no list.
        let header = unsafe { &mut *chunk.as_ptr() };
        header.spare_next = self.spare.get();
        self.spare.set(chunk.as_ptr());
        self.spare_blocks
            .set(self.spare_blocks.get() + header.blocks as usize);
    }

    /// Makes the next spare chunk, or a new one, the source of never-used
    /// blocks. Never panics.
    fn next_fresh_chunk(&self) -> Result<(), Error> {
        if self.spare.get().is_null() {
            self.add_spare(self.new_chunk()?);
            if self.fresh_left.get() > 0 {
                // A call the system allocator made into this manager moved
                // the pool to a chunk of its own meanwhile (the re-entrancy
                // rule): that one's blocks first, ours stays spare.
                return Ok(());
            }
        }
        if !self.fresh.get().is_null() {
            // A chunk's never-used blocks ran out since the last recycle:
            // the pool is no longer small (see `guard`).
            self.held.set(self.held.get() - self.guard.replace(0));
        }
        let chunk = NonNull::new(self.spare.get()).expect("a spare chunk, made above if need be");
        {
            // SAFETY: the spare list holds live chunks of this pool.
            let header = unsafe { &mut *chunk.as_ptr() };
            self.spare.set(header.spare_next);
            header.spare_next = ptr::null_mut();
            self.spare_blocks
                .set(self.spare_blocks.get() - header.blocks as usize);
        }
        // SAFETY: the chunk is live and on no list now; its link is the
        // pool's to set.
        unsafe { (*chunk.as_ptr()).spare_next = self.used.get() };
        self.used.set(chunk.as_ptr());
        // SAFETY: the chunk is live; reading its geometry.
        let (first, blocks) = unsafe { ((*chunk.as_ptr()).first, (*chunk.as_ptr()).blocks) };
        // SAFETY: `first + blocks * block_size <= size` (`Pool` invariant),
        // so the first block is inside the chunk, or one past its end.
        self.fresh
            .set(unsafe { chunk.as_ptr().cast::<u8>().add(first as usize) });
        self.fresh_left.set(blocks as usize);
        Ok(())
    }

    /// Grows the pool until `additional` blocks can be handed out without
    /// asking the system for memory.
    pub(crate) fn reserve(&self, additional: usize) -> Result<(), Error> {
        while self.free_up_to(additional) < additional {
            self.add_spare(self.new_chunk()?);
        }
        Ok(())
    }

    /// The blocks that can be handed out without a new chunk, counted up
    /// to `enough`. O(1) for a pool only its owner frees into (the
    /// capacity less the live blocks, exactly); a shared manager's pool
    /// keeps counting live the blocks other threads freed into it (they
    /// count them, see `remote_out`), so when that figure falls short its
    /// free blocks are counted instead — the remote frees taken first, the
    /// free list walked no further than `enough`.
    fn free_up_to(&self, enough: usize) -> usize {
        // (Saturating: with remote frees, after a trim `live` may pass the
        // capacity.)
        let free = self.capacity.get().saturating_sub(self.live());
        if free >= enough || self.remote.owner.is_null() {
            return free;
        }
        self.collect();
        let listed = self.free_list().take(enough).count();
        free.max(listed + self.fresh_left.get() + self.spare_blocks.get())
    }

    /// Blocks handed out and not returned.
    #[inline]
    pub(crate) fn live(&self) -> usize {
        // Saturating: read from another thread (a shared manager's
        // `stats`), the two counters may be of different moments.
        self.held.get().saturating_sub(self.guard.get())
    }

    /// Blocks handed out, ever.
    #[inline]
    pub(crate) fn allocs(&self) -> usize {
        self.allocs.get()
    }

    /// Blocks returned, ever (a reset returns every live one).
    #[inline]
    pub(crate) fn frees(&self) -> usize {
        self.allocs.get().saturating_sub(self.live())
    }

    /// The most blocks that were live at once.
    pub(crate) fn peak(&self) -> usize {
        // Never-used blocks are taken only when the free list is empty, so
        // every block ever handed out from the current chunks was live at
        // that moment; `peak` keeps the figure across released chunks.
        // (Saturating, as in `live`.)
        let touched = self
            .capacity
            .get()
            .saturating_sub(self.fresh_left.get())
            .saturating_sub(self.spare_blocks.get());
        self.peak.get().max(touched)
    }

    /// Block size in bytes.
    #[inline]
    pub(crate) fn block_size(&self) -> usize {
        self.block_size
    }

    /// Blocks in all chunks (live, free, and never used).
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.get()
    }

    /// Number of chunks.
    #[inline]
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunk_count.get()
    }

    /// Bytes of all chunks.
    #[inline]
    pub(crate) fn reserved(&self) -> usize {
        self.reserved.get()
    }

    /// The chunks, newest first.
    fn chunk_list(&self) -> impl Iterator<Item = NonNull<ChunkHeader>> + '_ {
        let mut c = self.chunks.get();
        core::iter::from_fn(move || {
            let chunk = NonNull::new(c)?;
            // SAFETY: the chunk list holds only live chunks of this pool.
            c = unsafe { chunk.as_ref() }.next;
            Some(chunk)
        })
    }

    /// The free list, head first.
    fn free_list(&self) -> impl Iterator<Item = NonNull<FreeNode>> + '_ {
        let mut node = self.free.get();
        core::iter::from_fn(move || {
            let n = NonNull::new(node)?;
            // SAFETY: every node on the free list is a free block of a live
            // chunk whose first word holds the link.
            node = unsafe { n.as_ref() }.next;
            Some(n)
        })
    }

    /// Releases every chunk with no live block (spare chunks included) and
    /// returns the bytes given back. O(chunks + free blocks).
    pub(crate) fn trim(&self) -> usize {
        self.collect();
        self.peak.set(self.peak());
        // 1. Count free blocks per chunk, in the headers' scratch words.
        for c in self.chunk_list() {
            // SAFETY: a live chunk of this pool; nothing else holds a
            // reference to its header now.
            unsafe { (*c.as_ptr()).scratch = 0 };
        }
        for n in self.free_list() {
            // SAFETY: a free block lies in a live chunk of this pool.
            unsafe { (*ChunkHeader::of(n.cast()).as_ptr()).scratch += 1 };
        }
        // 2. Mark the chunks whose blocks are all free or never used.
        let fresh_chunk = if self.fresh_left.get() > 0 {
            // SAFETY: `fresh` points at a never-used block of a live chunk.
            Some(unsafe { ChunkHeader::of(NonNull::new_unchecked(self.fresh.get())) })
        } else {
            None
        };
        let mut spare = self.spare.get();
        while let Some(s) = NonNull::new(spare) {
            // SAFETY: the spare list holds live chunks of this pool; they
            // hold no block ever handed out, so all are released.
            unsafe {
                spare = (*s.as_ptr()).spare_next;
                (*s.as_ptr()).scratch = usize::MAX;
            }
        }
        for c in self.chunk_list() {
            // SAFETY: a live chunk of this pool, its fields read and written
            // in place (no `&mut` to a header another thread may be reading
            // the pool pointer of, for a remote free).
            let (scratch, blocks) = unsafe { ((*c.as_ptr()).scratch, (*c.as_ptr()).blocks) };
            if scratch == usize::MAX {
                continue;
            }
            let untouched = if Some(c) == fresh_chunk {
                self.fresh_left.get()
            } else {
                0
            };
            if scratch + untouched == blocks as usize {
                // SAFETY: as above.
                unsafe { (*c.as_ptr()).scratch = usize::MAX };
            }
        }
        // 3. Unlink the free blocks of those chunks, keeping the order.
        let mut prev: Option<NonNull<FreeNode>> = None;
        let mut node = self.free.get();
        while let Some(n) = NonNull::new(node) {
            // SAFETY: `n` is on the free list, so its link word is valid and
            // its chunk is live.
            let (next, doomed) = unsafe {
                (
                    n.as_ref().next,
                    ChunkHeader::of(n.cast()).as_ref().scratch == usize::MAX,
                )
            };
            if doomed {
                match prev {
                    // SAFETY: `p` is a kept free block; its link is ours.
                    Some(p) => unsafe { (*p.as_ptr()).next = next },
                    None => self.free.set(next),
                }
            } else {
                prev = Some(n);
            }
            node = next;
        }
        if fresh_chunk.is_some_and(|c| {
            // SAFETY: a live chunk of this pool.
            unsafe { c.as_ref() }.scratch == usize::MAX
        }) {
            self.fresh.set(ptr::null_mut());
            self.fresh_left.set(0);
        }
        self.spare.set(ptr::null_mut());
        self.spare_blocks.set(0);
        // The used list keeps the chunks that stay.
        let mut link: *mut *mut ChunkHeader = self.used.as_ptr();
        // SAFETY: `link` points at the used list's head or at the link of a
        // live chunk on it; chunks are only unlinked here, none released yet.
        unsafe {
            while let Some(c) = NonNull::new(*link) {
                if (*c.as_ptr()).scratch == usize::MAX {
                    *link = (*c.as_ptr()).spare_next;
                } else {
                    link = &raw mut (*c.as_ptr()).spare_next;
                }
            }
        }
        // 4. Unlink them onto a list of their own, the pool's figures
        // following; then, the pool consistent without them, release them
        // (the system allocator may call this manager: the re-entrancy rule).
        let mut released = 0;
        let mut doomed: *mut ChunkHeader = ptr::null_mut();
        let mut link: *mut *mut ChunkHeader = self.chunks.as_ptr();
        // SAFETY: `link` points either at the pool's list head or at the
        // `next` field of a live chunk header; each doomed chunk moves from
        // the pool's list to `doomed` once.
        unsafe {
            while let Some(c) = NonNull::new(*link) {
                let h = c.as_ptr();
                if (*h).scratch == usize::MAX {
                    let (size, blocks) = ((*h).size, (*h).blocks as usize);
                    *link = (*h).next;
                    (*h).next = doomed;
                    doomed = h;
                    released += size;
                    self.chunk_count.set(self.chunk_count.get() - 1);
                    self.reserved.set(self.reserved.get() - size);
                    self.capacity.set(self.capacity.get() - blocks);
                } else {
                    link = &raw mut (*h).next;
                }
            }
        }
        // The chunk map forgets them now that the pool is consistent
        // without them (its storage may be freed: the allocator may call
        // this manager).
        let me = NonNull::from(self);
        let map_bytes = self.fallback().chunks.remove_if(self.budget(), |c| {
            // SAFETY: the map holds only live chunks of this manager's pools
            // (the doomed ones still allocated, on `doomed`).
            let h = unsafe { c.cast::<ChunkHeader>().as_ref() };
            h.pool == me && h.scratch == usize::MAX
        });
        self.budget().credit(released);
        self.release_list(doomed);
        released + map_bytes
    }

    /// Frees the chunks of a list linked through `next` (taken off the
    /// pool, whose figures no longer count them).
    fn release_list(&self, mut c: *mut ChunkHeader) {
        let source = self.fallback().kind.source;
        while let Some(chunk) = NonNull::new(c) {
            // SAFETY: the list holds live chunks of this pool that nothing
            // refers to any more, each once.
            c = unsafe { ChunkHeader::release(chunk, source) };
        }
    }

    /// Checks the pool's invariants by walking the free list: every node is
    /// a block boundary inside one of the pool's chunks, no node repeats, and
    /// free + never-used + live blocks add up to the capacity.
    /// O(free × chunks).
    pub(crate) fn is_valid(&self) -> bool {
        let mut chunks = Vec::new();
        for c in self.chunk_list() {
            // SAFETY: the chunk list holds only live chunks of this pool.
            let header = unsafe { c.as_ref() };
            if header.pool != NonNull::from(self) {
                return false;
            }
            if header.first as usize + header.blocks as usize * self.block_size > header.size {
                return false;
            }
            chunks.push((c.as_ptr().addr(), header.size, header.first as usize));
        }
        if chunks.len() != self.chunk_count.get() {
            return false;
        }
        let mut seen = alloc::collections::BTreeSet::new();
        for n in self.free_list() {
            let addr = n.as_ptr().addr();
            let inside = chunks.iter().any(|&(base, size, first)| {
                addr >= base + first
                    && addr + self.block_size <= base + size
                    && (addr - base - first) % self.block_size == 0
            });
            if !inside || !seen.insert(addr) {
                return false;
            }
        }
        // Every chunk is on the spare list or the used list, once.
        let list = |head: *mut ChunkHeader| {
            let mut c = head;
            core::iter::from_fn(move || {
                // SAFETY: both lists hold live chunks of this pool.
                let h = unsafe { NonNull::new(c)?.as_ref() };
                let here = c.addr();
                c = h.spare_next;
                Some((here, h.blocks as usize))
            })
        };
        let mut on_lists = alloc::collections::BTreeSet::new();
        let mut spare_blocks = 0;
        for (addr, blocks) in list(self.spare.get()) {
            spare_blocks += blocks;
            on_lists.insert(addr);
        }
        let mut used = list(self.used.get());
        let lists_ok = used.all(|(addr, _)| on_lists.insert(addr))
            && on_lists.len() == chunks.len()
            && chunks.iter().all(|(base, _, _)| on_lists.contains(base))
            && spare_blocks == self.spare_blocks.get();
        lists_ok && self.accounting(seen.len())
    }

    /// Whether `free` free blocks, the never-used ones and the live ones add
    /// up to the capacity. (A shared manager's pool counts as live the blocks
    /// other threads freed into it, which the freeing threads counted: it
    /// checks the sum over its heaps instead, see `is_valid_lists`.)
    fn accounting(&self, free: usize) -> bool {
        !self.remote.owner.is_null()
            || free + self.fresh_left.get() + self.spare_blocks.get() + self.live()
                == self.capacity.get()
    }

    /// The blocks on the free list, never used, and in the spare chunks: with
    /// [`live`](Self::live), what the capacity adds up to. Owner only.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // used by the shared manager
    pub(crate) fn free_blocks(&self) -> usize {
        self.free_list().count() + self.fresh_left.get() + self.spare_blocks.get()
    }

    /// Forgets every block at once and keeps every chunk as never-used
    /// capacity: the chunks used since the last recycle go back to the front
    /// of the spare list, in the order they were first used (a trim releases
    /// them). Every block still handed out counts as freed. O(chunks used
    /// since the last recycle), no call to the system allocator.
    ///
    /// With `debug-fill`, first looks for a free block written after it was
    /// freed (the bump that hands the blocks out again does not check), and
    /// returns it for the caller to panic with once everything is in order.
    ///
    /// # Safety
    ///
    /// No block of this pool handed out before may be used afterwards.
    #[must_use]
    pub(crate) unsafe fn recycle(&self) -> Option<fill::Written> {
        let written = if cfg!(feature = "debug-fill") {
            self.free_list().find_map(|n| {
                // SAFETY: a free block of this pool, filled when it was freed.
                unsafe { fill::written(n.cast(), self.block_size) }
            })
        } else {
            None
        };
        self.peak.set(self.peak());
        let mut c = self.used.replace(ptr::null_mut());
        while let Some(chunk) = NonNull::new(c) {
            // SAFETY: the used list holds live chunks of this pool; each moves
            // to the spare list (the newest used goes first, so the oldest
            // ends up in front).
            unsafe {
                let h = &mut *chunk.as_ptr();
                c = h.spare_next;
                h.spare_next = self.spare.get();
                self.spare_blocks
                    .set(self.spare_blocks.get() + h.blocks as usize);
            }
            self.spare.set(chunk.as_ptr());
        }
        debug_assert_eq!(self.spare_blocks.get(), self.capacity.get());
        // Every block is free and counted so (the caller's guarantee, or
        // `held` reached zero, which a block pushed by another thread and
        // not yet collected would keep above zero): no remote free is on
        // the list or in flight.
        self.remote.inbound.clear();
        self.free.set(ptr::null_mut());
        self.fresh.set(ptr::null_mut());
        self.fresh_left.set(0);
        self.guard.set(1);
        self.held.set(1);
        self.tally.set(0);
        written
    }

    /// Frees every chunk; every block still handed out counts as freed.
    ///
    /// # Safety
    ///
    /// No block of this pool may be used afterwards.
    pub(crate) unsafe fn release_chunks(&self) {
        self.peak.set(self.peak());
        let chunks = self.chunks.replace(ptr::null_mut());
        self.budget().credit(self.reserved.get());
        self.remote.inbound.clear();
        self.free.set(ptr::null_mut());
        self.fresh.set(ptr::null_mut());
        self.fresh_left.set(0);
        self.spare.set(ptr::null_mut());
        self.used.set(ptr::null_mut());
        self.spare_blocks.set(0);
        self.guard.set(1);
        self.held.set(1);
        self.tally.set(0);
        self.chunk_count.set(0);
        self.reserved.set(0);
        self.capacity.set(0);
        // The pool is empty and consistent: the chunks go last (the
        // caller guarantees no block is used afterwards).
        self.release_list(chunks);
    }
}

/// The slow path of [`Pool::alloc`]: hands out the next never-used block,
/// moving to a spare or new chunk first if the newest one is used up, or
/// says why the system allocator or the budget refused one.
#[cold]
#[inline(never)]
fn refill(pool: &Pool) -> Result<NonNull<u8>, Error> {
    if pool.fresh_left.get() == 0 {
        // Blocks other threads freed come before another chunk: a thread
        // that only allocates, fed by one that only frees, reuses its blocks.
        if pool.collect() && !pool.free.get().is_null() {
            return pool.alloc();
        }
        pool.next_fresh_chunk()
            .map_err(|e| e.refusing(pool.block_size, pool.name()))?;
    }
    let block = pool.fresh.get();
    // SAFETY: `fresh_left > 0`, so `block` is a never-used block inside the
    // newest chunk and the next one is at most one past its last block.
    pool.fresh.set(unsafe { block.add(pool.block_size) });
    pool.fresh_left.set(pool.fresh_left.get() - 1);
    pool.count_alloc();
    // SAFETY: as above: not null, and `block_size` bytes that are now ours.
    unsafe {
        let block = NonNull::new_unchecked(block);
        fill::fresh(block, pool.block_size);
        Ok(block)
    }
}

/// The cold half of [`Pool::free`]: the last live block of a pool that
/// handed out more than one chunk's worth since it was last recycled was
/// just freed. Every block is free, so the pool is recycled: its free list —
/// blocks in the order the program freed them, scattered over its chunks —
/// is dropped, and the next allocations take never-used blocks again, one
/// after the other in address order, as they did the first time. A program
/// that allocates a batch (a tree, a frame's objects, a parsed document) and
/// frees all of it then reuses memory as an arena would. O(chunks), no call
/// to the system allocator.
#[cold]
#[inline(never)]
fn emptied(pool: &Pool) {
    // SAFETY: no block of the pool is live (`held` is 0 with `guard` 0), so
    // none handed out before may be used again.
    if let Some(written) = unsafe { pool.recycle() } {
        // (The pool is recycled already: it carries on after the panic.)
        written.panic();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DefaultClasses;

    const SMALL: ChunkConfig = ChunkConfig {
        initial: 4096,
        max: 16384,
    };

    #[test]
    fn alloc_and_free_keep_the_pool_valid() {
        let pools = crate::heap::Heap::<DefaultClasses>::new(SMALL, None, None);
        let pool = pools.get(3); // 64 bytes
        let n = if cfg!(miri) { 300 } else { 3000 };
        let blocks: Vec<_> = (0..n).map(|_| pool.alloc().unwrap()).collect();
        assert!(pool.is_valid());
        assert_eq!(pool.live(), n);
        for b in &blocks {
            assert_eq!(b.as_ptr() as usize % 64, 0);
            // SAFETY: `b` came from the pool above and is live.
            assert!(core::ptr::eq(unsafe { Pool::of(*b) }, pool));
        }
        for b in blocks.iter().step_by(2) {
            // SAFETY: each block is freed once.
            unsafe { Pool::free(*b) };
        }
        assert!(pool.is_valid());
        assert_eq!(pool.live(), n - n.div_ceil(2));
        for b in blocks.iter().skip(1).step_by(2) {
            // SAFETY: each block is freed once.
            unsafe { Pool::free(*b) };
        }
        assert!(pool.is_valid());
        assert_eq!(pool.live(), 0);
    }

    #[test]
    fn chunks_grow_geometrically_up_to_the_cap() {
        let pools = crate::heap::Heap::<DefaultClasses>::new(SMALL, None, None);
        let pool = pools.get(0);
        while pool.chunk_count() < 5 {
            pool.alloc().unwrap();
        }
        assert_eq!(pool.reserved(), 4096 + 8192 + 16384 + 16384 + 16384);
        assert!(pool.is_valid());
    }

    #[test]
    fn a_freed_block_is_reused_first() {
        let pools = crate::heap::Heap::<DefaultClasses>::new(SMALL, None, None);
        let pool = pools.get(1);
        let a = pool.alloc().unwrap();
        let _b = pool.alloc().unwrap();
        // SAFETY: `a` is live and freed once.
        unsafe { Pool::free(a) };
        assert_eq!(pool.alloc(), Ok(a));
    }

    #[test]
    fn a_pool_emptied_after_more_than_a_chunk_is_recycled_in_address_order() {
        let pools = crate::heap::Heap::<DefaultClasses>::new(SMALL, None, None);
        let pool = pools.get(3); // 64 bytes: 62 blocks in the first chunk
        let first: Vec<_> = (0..200).map(|_| pool.alloc().unwrap()).collect();
        let (chunks, reserved) = (pool.chunk_count(), pool.reserved());
        // Freed in a scattered order: the free list would hand them out so.
        for i in (0..200).map(|i| (i * 37) % 200) {
            // SAFETY: live, freed once (37 is prime to 200).
            unsafe { Pool::free(first[i]) };
        }
        assert!(pool.is_valid());
        assert_eq!((pool.live(), pool.frees(), pool.peak()), (0, 200, 200));
        // Recycled: the same blocks again, one after the other from the
        // first chunk, and no chunk allocated or released.
        let again: Vec<_> = (0..200).map(|_| pool.alloc().unwrap()).collect();
        assert_eq!(again, first);
        assert_eq!((pool.chunk_count(), pool.reserved()), (chunks, reserved));
        assert!(pool.is_valid());
        assert_eq!((pool.live(), pool.allocs(), pool.peak()), (200, 400, 200));
        for b in again {
            // SAFETY: live, freed once.
            unsafe { Pool::free(b) };
        }
    }

    #[test]
    fn a_small_pool_emptied_keeps_its_free_list() {
        let pools = crate::heap::Heap::<DefaultClasses>::new(SMALL, None, None);
        let pool = pools.get(3);
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        // SAFETY: live, freed once each.
        unsafe {
            Pool::free(a);
            Pool::free(b);
        }
        // One chunk's worth at most: no recycle, last freed first out.
        assert_eq!(pool.alloc(), Ok(b));
        assert_eq!(pool.live(), 1);
    }

    #[test]
    fn a_recycle_puts_back_the_chunks_used_since_the_last_in_their_order() {
        /// Allocates `n` blocks, frees them in order, returns them.
        fn batch(pool: &Pool, n: usize) -> Vec<NonNull<u8>> {
            let v: Vec<_> = (0..n).map(|_| pool.alloc().unwrap()).collect();
            for b in &v {
                // SAFETY: live, freed once.
                unsafe { Pool::free(*b) };
            }
            v
        }
        let mut pools = crate::heap::Heap::<DefaultClasses>::new(SMALL, None, None);
        // A big batch makes many chunks; emptied, it is recycled.
        let big = batch(pools.get(3), 2000); // 62 blocks in the first chunk
        let chunks = pools.get(3).chunk_count();
        assert!(chunks > 5 && pools.get(3).is_valid());
        // Small batches (just over the first chunk) recycle only the two
        // chunks they used, and keep the order the big batch had.
        for _ in 0..3 {
            assert_eq!(batch(pools.get(3), 100), big[..100]);
            assert!(pools.get(3).is_valid());
        }
        assert_eq!(batch(pools.get(3), 2000), big);
        // Reset and trim keep the lists whole.
        let _live = pools.get(3).alloc().unwrap();
        assert!(pools.reset().is_none());
        let pool = pools.get(3);
        assert!(pool.is_valid());
        assert_eq!(batch(pool, 100), big[..100]);
        assert!(pool.trim() > 0 && pool.is_valid());
        assert_eq!(pool.chunk_count(), 0);
    }

    #[test]
    fn the_inverse_turns_an_offset_into_an_index_for_every_class_size() {
        for size in (8..=crate::MAX_CLASS_SIZE).step_by(8) {
            let shift = size.trailing_zeros();
            let inverse = inverse_of(size >> shift);
            assert_eq!((size >> shift).wrapping_mul(inverse), 1, "size {size}");
            for index in [0, 1, 2, 1000, (chunk::SEGMENT / size).max(3) - 1] {
                assert_eq!(((index * size) >> shift).wrapping_mul(inverse), index);
            }
        }
    }
}
