//! Typed pools: one size class, an intrusive free list, chunks that grow.
//!
//! This is the raw core behind `PoolBox`. A [`Pool`] hands out blocks of one
//! size; it knows nothing of types. Allocation pops the free list, freeing
//! pushes it — both O(1), the list unordered. When the list is empty the
//! cold [`refill`] hands out the next never-used block of the newest chunk
//! (a bump), taking a reserved spare chunk or allocating a new one when that
//! chunk is used up, each new one twice the size of the last up to the cap.
//!
//! Because never-used blocks are only taken when the free list is empty, the
//! blocks ever handed out from the current chunks were all live at once at
//! that moment: their count is the high-water mark of live blocks, known
//! without a single instruction on the fast path.
//!
//! A pool is found from any of its blocks through the chunk header (see
//! [`chunk`](crate::chunk)), so pools live at fixed heap addresses inside
//! [`Pools`] and never move.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use crate::budget::Budget;
use crate::chunk::{self, HEADER_SPACE};
use crate::fill;
use crate::size_class::{natural_align, SizeClasses};
use crate::system::{self, Fallback};
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
}

static_assertions::const_assert!(core::mem::size_of::<ChunkHeader>() <= HEADER_SPACE);

impl ChunkHeader {
    /// Allocates a chunk of `size` bytes for `pool` from the system and
    /// writes its header; `None` if the system allocator refuses.
    fn allocate(
        pool: NonNull<Pool>,
        size: usize,
        next: *mut ChunkHeader,
    ) -> Option<NonNull<ChunkHeader>> {
        let base = system::alloc(chunk::layout(size)?)?.cast::<ChunkHeader>();
        // SAFETY: `base` is a fresh allocation of at least `HEADER_SPACE`
        // bytes aligned to `SEGMENT`, so it is valid and aligned for a header.
        unsafe {
            base.write(ChunkHeader {
                pool,
                next,
                size,
                spare_next: ptr::null_mut(),
                scratch: 0,
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
    /// and no block in it may be used afterwards.
    unsafe fn release(chunk: NonNull<ChunkHeader>) -> *mut ChunkHeader {
        // SAFETY: the caller guarantees the chunk is live, so its header is
        // readable.
        let ChunkHeader { next, size, .. } = unsafe { chunk.read() };
        if let Some(layout) = chunk::layout(size) {
            // SAFETY: `allocate` made this chunk with exactly this layout, and
            // the caller guarantees it is freed only once.
            unsafe { system::dealloc(chunk.cast(), layout) };
        }
        next
    }
}

/// One size class's pool. All mutable state is in `Cell`s: the pool is only
/// ever reached through shared references (from the manager, and from block
/// pointers via chunk headers), never from two threads.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Pool {
    /// Head of the free list, or null. Hot: first field.
    free: Cell<*mut FreeNode>,
    /// Blocks handed out, ever.
    allocs: Cell<usize>,
    /// Block size in bytes (a multiple of 8).
    block_size: usize,
    /// Blocks live, plus `guard` (not next to `allocs`: the two counters
    /// would be merged into one vector add, four instructions for two). A
    /// free that brings it to zero finds the pool empty after more than one
    /// chunk's worth of blocks was handed out since it was last recycled,
    /// and recycles it (see [`emptied`]).
    held: Cell<usize>,
    /// 1 while at most one chunk's blocks have been handed out since the
    /// pool was made or last recycled, else 0: a small pool (one object
    /// allocated and freed, over and over) never takes the cold path.
    guard: Cell<usize>,
    /// Offset of the first block in every chunk.
    first_offset: usize,
    /// Next never-used block of the newest chunk.
    fresh: Cell<*mut u8>,
    /// Never-used blocks left in the newest chunk.
    fresh_left: Cell<usize>,
    /// Chunks with only never-used blocks (reserved, or recycled), linked
    /// through `spare_next`, in the order they are to be used.
    spare: Cell<*mut ChunkHeader>,
    /// Chunks taken off the spare list (or made) since the pool was last
    /// recycled, the newest first, linked through `spare_next`: what a
    /// recycle puts back, so that it costs the chunks used, not all.
    used: Cell<*mut ChunkHeader>,
    /// Blocks in the spare chunks.
    spare_blocks: Cell<usize>,
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
    chunk_count: Cell<usize>,
    /// Bytes of all chunks.
    reserved: Cell<usize>,
    /// Blocks in all chunks.
    capacity: Cell<usize>,
    /// High-water mark of live blocks saved before chunks were released.
    peak: Cell<usize>,
    /// The manager's fallback record (budget and chunk map); outlives the
    /// pool.
    fallback: NonNull<Fallback>,
}

impl Pool {
    /// A pool of `block_size`-byte blocks, with no chunk yet.
    fn new(block_size: usize, config: ChunkConfig, fallback: NonNull<Fallback>) -> Pool {
        let first_offset = chunk::first_block_offset(natural_align(block_size));
        let smallest = first_offset + block_size;
        let initial = config.initial.max(smallest).min(chunk::SEGMENT);
        Pool {
            free: Cell::new(ptr::null_mut()),
            allocs: Cell::new(0),
            held: Cell::new(1),
            guard: Cell::new(1),
            block_size,
            first_offset,
            fresh: Cell::new(ptr::null_mut()),
            fresh_left: Cell::new(0),
            spare: Cell::new(ptr::null_mut()),
            used: Cell::new(ptr::null_mut()),
            spare_blocks: Cell::new(0),
            next_chunk_size: Cell::new(initial),
            max_chunk_size: config.max.max(initial).min(chunk::SEGMENT),
            min_chunk_size: initial,
            chunks: Cell::new(ptr::null_mut()),
            chunk_count: Cell::new(0),
            reserved: Cell::new(0),
            capacity: Cell::new(0),
            peak: Cell::new(0),
            fallback,
        }
    }

    /// Pops a block of `block_size` bytes, aligned to its natural alignment;
    /// `None` when the system allocator or the budget refuses a new chunk.
    #[inline(always)]
    pub(crate) fn alloc(&self) -> Option<NonNull<u8>> {
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
        Some(head.cast())
    }

    /// The other half of [`Pool::alloc`], when the free list is empty: the
    /// next never-used block of the newest chunk (a bump), inline — after a
    /// reset or a recycle every allocation comes from here — else the cold
    /// [`refill`]. `#[cold]` only lays it out after the pop, so that the pop
    /// runs straight through; it is still inlined.
    #[cold]
    #[inline(always)]
    fn alloc_fresh(&self) -> Option<NonNull<u8>> {
        let left = self.fresh_left.get();
        if left == 0 {
            return NonNull::new(refill(self));
        }
        let block = self.fresh.get();
        // SAFETY: `fresh_left > 0`, so `block` is a never-used block inside a
        // live chunk and the next one is at most one past its last block.
        self.fresh.set(unsafe { block.add(self.block_size) });
        self.fresh_left.set(left - 1);
        self.count_alloc();
        let block = NonNull::new(block)?;
        // SAFETY: as above, `block_size` bytes that are now ours.
        unsafe { fill::fresh(block, self.block_size) };
        Some(block)
    }

    /// Counts a block handed out.
    #[inline(always)]
    fn count_alloc(&self) {
        self.allocs.set(self.allocs.get() + 1);
        self.held.set(self.held.get() + 1);
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
        // pointer to its pool; pools outlive their chunks and never move.
        unsafe { ChunkHeader::of(block).as_ref().pool.as_ref() }
    }

    #[inline(always)]
    fn push(&self, block: NonNull<u8>) {
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

    /// Why [`Pool::alloc`] just returned `None` for a request of `layout`:
    /// the budget refused a chunk, or the system allocator did (the chunk's
    /// size and alignment are reported; `layout` only if nothing was
    /// recorded).
    #[cold]
    #[inline(never)]
    pub(crate) fn failure(&self, layout: core::alloc::Layout) -> Error {
        self.budget().take_refusal().unwrap_or(Error::OutOfMemory {
            size: layout.size(),
            align: layout.align(),
        })
    }

    /// The manager's name, if it has one.
    pub(crate) fn name(&self) -> Option<&'static str> {
        self.fallback().name
    }

    /// The manager's budget.
    fn budget(&self) -> &Budget {
        &self.fallback().budget
    }

    /// The manager's fallback record.
    fn fallback(&self) -> &Fallback {
        // SAFETY: the fallback is freed only after every pool (see
        // `Pools::drop`).
        unsafe { self.fallback.as_ref() }
    }

    /// Blocks in a chunk of `size` bytes.
    fn blocks_in(&self, size: usize) -> usize {
        (size - self.first_offset) / self.block_size
    }

    /// Allocates a chunk of the next size and links it into the chunk list.
    /// Never panics.
    fn new_chunk(&self) -> Result<NonNull<ChunkHeader>, Error> {
        // Room in the chunk map first (a few bytes, kept if the chunk is
        // refused), so that the budget's refusal is about the chunk.
        let map = &self.fallback().chunks;
        if let Err(e) = map.reserve_one(self.budget()) {
            self.budget().record_refusal(e);
            return Err(e);
        }
        let size = self
            .budget()
            .charge_up_to(self.next_chunk_size.get(), self.min_chunk_size)?;
        let Some(chunk) = ChunkHeader::allocate(NonNull::from(self), size, self.chunks.get())
        else {
            self.budget().credit(size);
            // The chunk's figures, not the value's: that is what was refused.
            let e = Error::OutOfMemory {
                size,
                align: chunk::SEGMENT,
            };
            self.budget().record_refusal(e);
            return Err(e);
        };
        map.insert(chunk.cast());
        self.chunks.set(chunk.as_ptr());
        self.chunk_count.set(self.chunk_count.get() + 1);
        self.reserved.set(self.reserved.get() + size);
        self.capacity
            .set(self.capacity.get() + self.blocks_in(size));
        self.next_chunk_size
            .set(size.saturating_mul(2).min(self.max_chunk_size));
        Ok(chunk)
    }

    /// Makes the next spare chunk, or a new one, the source of never-used
    /// blocks. Never panics.
    fn next_fresh_chunk(&self) -> bool {
        if !self.fresh.get().is_null() {
            // A chunk's never-used blocks ran out since the last recycle:
            // the pool is no longer small (see `guard`).
            self.held.set(self.held.get() - self.guard.replace(0));
        }
        let chunk = match NonNull::new(self.spare.get()) {
            Some(spare) => {
                // SAFETY: the spare list holds live chunks of this pool.
                let header = unsafe { &mut *spare.as_ptr() };
                self.spare.set(header.spare_next);
                header.spare_next = ptr::null_mut();
                self.spare_blocks
                    .set(self.spare_blocks.get() - self.blocks_in(header.size));
                spare
            }
            None => match self.new_chunk() {
                Ok(c) => c,
                Err(_) => return false,
            },
        };
        // SAFETY: the chunk is live and on no list now; its link is the
        // pool's to set.
        unsafe { (*chunk.as_ptr()).spare_next = self.used.get() };
        self.used.set(chunk.as_ptr());
        // SAFETY: the chunk is live; reading its size.
        let size = unsafe { chunk.as_ref() }.size;
        // SAFETY: `first_offset + block_size <= size`, so the first block is
        // inside the chunk.
        self.fresh
            .set(unsafe { chunk.as_ptr().cast::<u8>().add(self.first_offset) });
        self.fresh_left.set(self.blocks_in(size));
        true
    }

    /// Grows the pool until `additional` blocks can be handed out without
    /// asking the system for memory.
    pub(crate) fn reserve(&self, additional: usize) -> Result<(), Error> {
        while self.capacity.get() - self.live() < additional {
            let chunk = self.new_chunk()?;
            // SAFETY: the chunk was just made and is live.
            let header = unsafe { &mut *chunk.as_ptr() };
            header.spare_next = self.spare.get();
            self.spare.set(chunk.as_ptr());
            self.spare_blocks
                .set(self.spare_blocks.get() + self.blocks_in(header.size));
        }
        Ok(())
    }

    /// Blocks handed out and not returned.
    #[inline]
    pub(crate) fn live(&self) -> usize {
        self.held.get() - self.guard.get()
    }

    /// Blocks handed out, ever.
    #[inline]
    pub(crate) fn allocs(&self) -> usize {
        self.allocs.get()
    }

    /// Blocks returned, ever (a reset returns every live one).
    #[inline]
    pub(crate) fn frees(&self) -> usize {
        self.allocs.get() - self.live()
    }

    /// The most blocks that were live at once.
    pub(crate) fn peak(&self) -> usize {
        // Never-used blocks are taken only when the free list is empty, so
        // every block ever handed out from the current chunks was live at
        // that moment; `peak` keeps the figure across released chunks.
        let touched = self.capacity.get() - self.fresh_left.get() - self.spare_blocks.get();
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
            // SAFETY: a live chunk of this pool.
            let h = unsafe { &mut *c.as_ptr() };
            if h.scratch == usize::MAX {
                continue;
            }
            let untouched = if Some(c) == fresh_chunk {
                self.fresh_left.get()
            } else {
                0
            };
            if h.scratch + untouched == self.blocks_in(h.size) {
                h.scratch = usize::MAX;
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
        let me = NonNull::from(self);
        let map_bytes = self.fallback().chunks.remove_if(self.budget(), |c| {
            // SAFETY: the map holds only live chunks of this manager's pools.
            let h = unsafe { c.cast::<ChunkHeader>().as_ref() };
            h.pool == me && h.scratch == usize::MAX
        });
        // 4. Release them.
        let mut released = 0;
        let mut link: *mut *mut ChunkHeader = self.chunks.as_ptr();
        // SAFETY: `link` points either at the pool's list head or at the
        // `next` field of a live chunk header; each chunk is read before it
        // is released and released once.
        unsafe {
            while let Some(c) = NonNull::new(*link) {
                let h = c.as_ptr();
                if (*h).scratch == usize::MAX {
                    let size = (*h).size;
                    *link = ChunkHeader::release(c);
                    released += size;
                    self.chunk_count.set(self.chunk_count.get() - 1);
                    self.reserved.set(self.reserved.get() - size);
                    self.capacity
                        .set(self.capacity.get() - self.blocks_in(size));
                } else {
                    link = &raw mut (*h).next;
                }
            }
        }
        self.budget().credit(released);
        released + map_bytes
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
            chunks.push((c.as_ptr().addr(), header.size));
        }
        if chunks.len() != self.chunk_count.get() {
            return false;
        }
        let mut seen = alloc::collections::BTreeSet::new();
        for n in self.free_list() {
            let addr = n.as_ptr().addr();
            let inside = chunks.iter().any(|&(base, size)| {
                addr >= base + self.first_offset
                    && addr + self.block_size <= base + size
                    && (addr - base - self.first_offset) % self.block_size == 0
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
                Some((here, self.blocks_in(h.size)))
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
            && chunks.iter().all(|(base, _)| on_lists.contains(base))
            && spare_blocks == self.spare_blocks.get();
        lists_ok
            && seen.len() + self.fresh_left.get() + self.spare_blocks.get() + self.live()
                == self.capacity.get()
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
    unsafe fn recycle(&self) -> Option<fill::Written> {
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
                    .set(self.spare_blocks.get() + self.blocks_in(h.size));
            }
            self.spare.set(chunk.as_ptr());
        }
        debug_assert_eq!(self.spare_blocks.get(), self.capacity.get());
        self.free.set(ptr::null_mut());
        self.fresh.set(ptr::null_mut());
        self.fresh_left.set(0);
        self.guard.set(1);
        self.held.set(1);
        written
    }

    /// Frees every chunk; every block still handed out counts as freed.
    ///
    /// # Safety
    ///
    /// No block of this pool may be used afterwards.
    unsafe fn release_chunks(&self) {
        self.peak.set(self.peak());
        let mut c = self.chunks.replace(ptr::null_mut());
        while let Some(chunk) = NonNull::new(c) {
            // SAFETY: the list holds each live chunk once; the caller
            // guarantees no block is used afterwards.
            c = unsafe { ChunkHeader::release(chunk) };
        }
        self.budget().credit(self.reserved.get());
        self.free.set(ptr::null_mut());
        self.fresh.set(ptr::null_mut());
        self.fresh_left.set(0);
        self.spare.set(ptr::null_mut());
        self.used.set(ptr::null_mut());
        self.spare_blocks.set(0);
        self.guard.set(1);
        self.held.set(1);
        self.chunk_count.set(0);
        self.reserved.set(0);
        self.capacity.set(0);
    }
}

/// The slow path of [`Pool::alloc`]: hands out the next never-used block,
/// moving to a spare or new chunk first if the newest one is used up, or
/// returns null if the system allocator or the budget refuses.
///
/// `extern "C"` makes it provably non-unwinding, so callers keep their
/// values in registers across the call instead of preparing for a panic.
#[cold]
#[inline(never)]
extern "C" fn refill(pool: &Pool) -> *mut u8 {
    if pool.fresh_left.get() == 0 && !pool.next_fresh_chunk() {
        return ptr::null_mut();
    }
    let block = pool.fresh.get();
    // SAFETY: `fresh_left > 0`, so `block` is a never-used block inside the
    // newest chunk and the next one is at most one past its last block.
    pool.fresh.set(unsafe { block.add(pool.block_size) });
    pool.fresh_left.set(pool.fresh_left.get() - 1);
    pool.count_alloc();
    // SAFETY: as above, `block_size` bytes that are now ours.
    unsafe { fill::fresh(NonNull::new_unchecked(block), pool.block_size) };
    block
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

/// The pools of one manager, one per class of `C`, at a fixed heap address,
/// plus the fallback counters for typed system allocations.
pub(crate) struct Pools<C: SizeClasses> {
    /// `C::TABLE.len()` pools, from a leaked `Box<[Pool]>`.
    pools: NonNull<Pool>,
    /// From a leaked `Box<Fallback>`.
    fallback: NonNull<Fallback>,
    /// Invariant in `C`: a manager or box must never be seen with another
    /// class table, or a pooled block would be freed by the wrong route.
    _classes: PhantomData<fn(C) -> C>,
}

// SAFETY: `Pools` owns its pools, chunks and fallback counters outright;
// nothing in it is shared with another `Pools` or tied to a thread, so it may
// move to another thread. It is not `Sync`: the `Cell`s allow no concurrent use.
unsafe impl<C: SizeClasses> Send for Pools<C> {}

impl<C: SizeClasses> Pools<C> {
    /// One empty pool per class of `C`.
    pub(crate) fn new(
        config: ChunkConfig,
        budget: Option<usize>,
        name: Option<&'static str>,
    ) -> Self {
        // Freed after the pools (see `drop`).
        let fallback = NonNull::from(Box::leak(Box::new(Fallback::new(budget, name))));
        let pools: Box<[Pool]> = C::TABLE
            .sizes()
            .iter()
            .map(|&s| Pool::new(s, config, fallback))
            .collect();
        debug_assert_eq!(pools.len(), C::TABLE.len());
        Pools {
            pools: NonNull::from(Box::leak(pools)).cast(),
            fallback,
            _classes: PhantomData,
        }
    }

    /// The manager's budget.
    #[inline]
    pub(crate) fn budget(&self) -> &Budget {
        &self.fallback().budget
    }

    /// Frees every allocation at once: the pools keep their chunks as free
    /// capacity (no call to the system allocator), typed system allocations
    /// go back to the system.
    ///
    /// With `debug-fill`, returns the first free block found written after
    /// it was freed, for the caller to panic with when its reset is done.
    #[must_use]
    pub(crate) fn reset(&mut self) -> Option<fill::Written> {
        let mut written = None;
        for pool in self.iter() {
            // SAFETY: `&mut self` comes from `&mut MemoryManager`, so no
            // `PoolBox`, which borrows the manager, exists; a pointer from
            // `PoolBox::into_raw` may not be used after a reset (the contract
            // of `PoolBox::from_raw`).
            let w = unsafe { pool.recycle() };
            written = written.or(w);
        }
        // SAFETY: as above, no typed system allocation is used again.
        unsafe { crate::system::free_all(self.fallback()) };
        written
    }

    /// Frees every chunk and typed system allocation, for drop.
    fn release(&mut self) {
        for pool in self.iter() {
            // SAFETY: `&mut self` in drop: nothing borrows the manager, and
            // nothing of it is used again.
            unsafe { pool.release_chunks() };
        }
        self.fallback().chunks.clear(self.budget());
        // SAFETY: as above.
        unsafe { crate::system::free_all(self.fallback()) };
    }

    /// The pool of class `class`.
    ///
    /// # Panics
    ///
    /// Panics if `class` is not a class of `C` (a constant check for a
    /// constant class).
    #[inline(always)]
    pub(crate) fn get(&self, class: usize) -> &Pool {
        assert!(class < C::TABLE.len(), "size class out of range");
        // SAFETY: there are `C::TABLE.len()` pools, alive as long as `self`.
        unsafe { &*self.pools.as_ptr().add(class) }
    }

    /// The fallback counters.
    #[inline]
    pub(crate) fn fallback(&self) -> &Fallback {
        // SAFETY: the fallback lives as long as `self`.
        unsafe { self.fallback.as_ref() }
    }

    /// All pools, smallest class first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pool> + '_ {
        (0..C::TABLE.len()).map(|c| self.get(c))
    }
}

impl<C: SizeClasses> Drop for Pools<C> {
    fn drop(&mut self) {
        self.release();
        let slice = ptr::slice_from_raw_parts_mut(self.pools.as_ptr(), C::TABLE.len());
        // SAFETY: both come from `Box::leak` in `new` and are freed only here.
        unsafe {
            drop(Box::from_raw(slice));
            drop(Box::from_raw(self.fallback.as_ptr()));
        }
    }
}

impl<C: SizeClasses> core::fmt::Debug for Pools<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
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
        let pools = Pools::<DefaultClasses>::new(SMALL, None, None);
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
        let pools = Pools::<DefaultClasses>::new(SMALL, None, None);
        let pool = pools.get(0);
        while pool.chunk_count() < 5 {
            pool.alloc().unwrap();
        }
        assert_eq!(pool.reserved(), 4096 + 8192 + 16384 + 16384 + 16384);
        assert!(pool.is_valid());
    }

    #[test]
    fn a_freed_block_is_reused_first() {
        let pools = Pools::<DefaultClasses>::new(SMALL, None, None);
        let pool = pools.get(1);
        let a = pool.alloc().unwrap();
        let _b = pool.alloc().unwrap();
        // SAFETY: `a` is live and freed once.
        unsafe { Pool::free(a) };
        assert_eq!(pool.alloc(), Some(a));
    }

    #[test]
    fn a_pool_emptied_after_more_than_a_chunk_is_recycled_in_address_order() {
        let pools = Pools::<DefaultClasses>::new(SMALL, None, None);
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
        let pools = Pools::<DefaultClasses>::new(SMALL, None, None);
        let pool = pools.get(3);
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        // SAFETY: live, freed once each.
        unsafe {
            Pool::free(a);
            Pool::free(b);
        }
        // One chunk's worth at most: no recycle, last freed first out.
        assert_eq!(pool.alloc(), Some(b));
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
        let mut pools = Pools::<DefaultClasses>::new(SMALL, None, None);
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
}
