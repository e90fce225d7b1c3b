//! Checked blocks: the pools and the system-block table behind [`Block`].
//!
//! These are separate from the typed pools so that a `PoolBox` pays nothing
//! for generations. A block here is a slot — (class, chunk record, index) or
//! an entry of the system table — with a 32-bit generation kept outside the
//! user's bytes: even while free, odd while live, moved on by every
//! allocation and free. A handle carries its manager's [`Identity`] id and
//! the generation it was given, so a second free of it — even after the slot
//! was handed out again — sees a newer generation and is refused.
//!
//! A handle is data, never a pointer this module follows: every checked call
//! finds the slot through this manager's own tables, checks it, and computes
//! the block's address (and size) from the table; the handle's address is
//! only compared with it.
//!
//! Metadata stays bounded: a chunk record released by `trim` keeps its
//! generations (so handles into it stay refused) and is reused by the next
//! chunk of its class before the table grows; released records at the end of
//! the table are dropped, their highest generation kept as the class's
//! `floor`, where every slot of a record made later starts — so a handle into
//! a dropped record can never match again. The system table reuses its empty
//! entries and is dropped the same way by a trim when no system block is
//! live. Both
//! count in [`CheckedStats`] and are charged to the budget. A reset keeps
//! the chunks and their records as free capacity and changes the manager's
//! id, so every older handle is refused by its id. A handle that carries this manager's current id but names a slot
//! the tables no longer have is therefore stale, never foreign.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::cell::RefCell;
use core::mem::size_of;
use core::ptr::{self, NonNull};

use crate::block::{NUMBER_BITS, NUMBER_MASK, SYSTEM_SLOT};
use crate::budget::Budget;
use crate::fill;
use crate::identity::Identity;
use crate::pool::ChunkConfig;
use crate::size_class::natural_align;
use crate::system;
use crate::{Block, Error};

/// System blocks up to this size are zeroed by hand rather than by calloc.
const ZERO_BY_HAND: usize = 128 << 10;

/// Metadata bytes a place for a chunk record costs: the record, and its
/// place in the `fresh` and `released` lists (all three grow together, to
/// exactly `records_cap`).
const RECORD_BYTES: usize = size_of::<CheckedChunk>() + 2 * size_of::<u32>();

/// Metadata bytes a place for a system-table entry costs: the entry, and its
/// place in the list of empty entries (both grow together, to exactly
/// `system_cap`).
const SYSTEM_ENTRY_BYTES: usize = size_of::<SystemSlot>() + size_of::<u32>();

/// The capacity a table of `cap` places (`len == cap`) grows to: double,
/// at least 4, at most `max`.
fn grown(cap: usize, max: usize) -> usize {
    cap.saturating_mul(2).clamp(4, max.max(cap + 1))
}

/// The class's (or table's) floor once generations `gens` are dropped: moved
/// forward to the newest of them. Generations wrap, so "newest" is the one
/// furthest ahead of the old floor, counting modulo 2^32, among those less
/// than 2^31 ahead (a slot moves less than that between two floors unless a
/// handle's 2^31-reuse limit is passed anyway); the rest are behind it.
fn floor_after(floor: u32, gens: impl Iterator<Item = u32>) -> u32 {
    let ahead = gens
        .map(|g| g.wrapping_sub(floor))
        .filter(|&d| d < 1 << 31)
        .max()
        .unwrap_or(0);
    floor.wrapping_add(ahead)
}

/// The checked-block state of one manager.
#[derive(Debug)]
pub(crate) struct BlockHeap {
    inner: RefCell<Inner>,
    /// What this manager's handles carry; a new id at each reset.
    identity: Identity,
}

#[derive(Debug)]
struct Inner {
    classes: Vec<CheckedClass>,
    system: Vec<SystemSlot>,
    /// Indices of empty system slots, reused before the table grows.
    system_free: Vec<u32>,
    /// Live system blocks.
    system_live: usize,
    /// Bytes of live system blocks, as asked of the system allocator.
    system_bytes: usize,
    /// Most system blocks live at once.
    system_peak: usize,
    /// System blocks allocated, ever.
    system_allocs: usize,
    /// Places in the system table and its free list (their capacity).
    system_cap: usize,
    /// Generation new system-table entries start at: the highest of the
    /// entries dropped so far.
    system_floor: u32,
}

/// The blocks of one class, in chunk records.
#[derive(Debug)]
struct CheckedClass {
    block_size: usize,
    /// Bits of a block's index in its chunk: enough for [`max_blocks`](Self::max_blocks).
    index_bits: u32,
    /// `(1 << index_bits) - 1`.
    index_mask: usize,
    chunks: Vec<CheckedChunk>,
    /// Free list: `link_to(number)` of the first free block, 0 if empty.
    /// Each free block's first 8 bytes hold the next link.
    free: u64,
    /// Records with never-used blocks (reserved, or given memory again after
    /// a trim); the last is the one fresh blocks come from.
    fresh: Vec<u32>,
    /// Records without memory (released by a trim), reused before the table
    /// grows.
    released: Vec<u32>,
    /// Blocks in the next chunk.
    next_blocks: usize,
    /// Cap on blocks per chunk.
    max_blocks: usize,
    /// Blocks in the first chunk: the floor when a budget makes the class
    /// grow by less than the next size.
    min_blocks: usize,
    live: usize,
    /// Blocks ever handed out from the chunks that hold memory now: the sum
    /// of their `used`.
    touched: usize,
    /// Most blocks live at once, saved before chunks are released; see
    /// [`CheckedClass::peak`].
    peak: usize,
    /// Blocks handed out, ever.
    allocs: usize,
    /// Blocks in chunks that hold memory.
    capacity: usize,
    /// Bytes of those chunks.
    reserved: usize,
    /// Bytes of the generations of every record.
    generation_bytes: usize,
    /// Places for records in `chunks`, `fresh` and `released` (their
    /// capacity, reserved together).
    records_cap: usize,
    /// Generation the slots of a new record start at: the highest of the
    /// records dropped so far (even: their blocks were all free).
    floor: u32,
}

/// A chunk record: memory for `blocks` blocks of one class, and a
/// generation per slot.
///
/// Invariant, relied on by every `unsafe` block of this module:
/// - `blocks == 0` exactly when the record holds no memory (released by a
///   trim); `base` then dangles and `used == 0`. Otherwise `base` is a live
///   allocation of `layout` from [`system::alloc`], at least
///   `blocks * block_size` bytes, aligned to the class's natural alignment.
/// - `used <= blocks <= generations.len()`.
/// - Block `i < used` has been handed out since the memory came: its
///   generation is odd while it is live, even while it is free, and a free
///   one is on its class's free list exactly once, its first 8 bytes holding
///   the link. Blocks `used <= i` are not live and not on the list: never
///   handed out since the memory came or since the last reset (a block live
///   at a reset keeps its odd generation, which no handle of the manager's
///   new id carries; taking one moves it to the next odd value). Slots
///   `i >= blocks` have no memory and are not live either.
/// - A generation only moves forward, by one at each allocation and free,
///   so a handle's generation matches its slot again only after 2^32 moves.
#[derive(Debug)]
struct CheckedChunk {
    base: NonNull<u8>,
    layout: Layout,
    blocks: usize,
    used: usize,
    generations: Box<[u32]>,
    /// Scratch count for [`CheckedClass::trim`].
    scratch: usize,
}

#[derive(Debug)]
struct SystemSlot {
    /// The block while live.
    ptr: Option<NonNull<u8>>,
    /// Layout it was allocated with.
    layout: Layout,
    /// Usable size the handle reports.
    len: usize,
    generation: u32,
}

// SAFETY: a `BlockHeap` owns all of its chunks and system blocks outright and
// shares none of them with another heap or thread; moving it to another thread
// moves that ownership. It is not `Sync` (`RefCell`).
unsafe impl Send for BlockHeap {}

/// The free-list link naming the block with slot number `number`.
#[inline(always)]
fn link_to(number: u32) -> u64 {
    u64::from(number) + 1
}

/// The slot number a (non-zero) free-list link names.
#[inline(always)]
fn linked(link: u64) -> u32 {
    (link - 1) as u32
}

/// What a validated handle names: the block's address and usable size, as
/// this manager's tables say.
struct Found {
    ptr: NonNull<u8>,
    len: usize,
}

impl CheckedClass {
    fn new(block_size: usize, config: ChunkConfig) -> Self {
        let first = (config.initial / block_size).max(1);
        let max_blocks = (config.max / block_size).max(first);
        let index_bits = usize::BITS - (max_blocks - 1).leading_zeros();
        CheckedClass {
            block_size,
            index_bits,
            index_mask: (1 << index_bits) - 1,
            chunks: Vec::new(),
            free: 0,
            fresh: Vec::new(),
            released: Vec::new(),
            next_blocks: first,
            max_blocks,
            min_blocks: first,
            live: 0,
            touched: 0,
            peak: 0,
            allocs: 0,
            capacity: 0,
            reserved: 0,
            generation_bytes: 0,
            records_cap: 0,
            floor: 0,
        }
    }

    /// Bytes of the class's side tables: generations and record places.
    fn metadata(&self) -> usize {
        self.generation_bytes + self.records_cap * RECORD_BYTES
    }

    /// The most chunk records the class can have: a block's number
    /// (`chunk << index_bits | index`) must fit in [`NUMBER_BITS`].
    fn max_records(&self) -> usize {
        1 << (NUMBER_BITS - self.index_bits)
    }

    /// The slot number of block `index` of chunk `chunk`.
    #[inline(always)]
    fn number(&self, chunk: usize, index: usize) -> u32 {
        ((chunk << self.index_bits) | index) as u32
    }

    /// (chunk, index) of a slot number (the slot's bits below the class).
    #[inline(always)]
    fn locate(&self, number: u32) -> (usize, usize) {
        let number = number as usize;
        (number >> self.index_bits, number & self.index_mask)
    }

    /// Takes a free or never-used block and marks it live: (slot number,
    /// address, new generation). One chunk lookup on the fast path.
    #[inline(always)]
    fn take(&mut self, budget: &Budget) -> Result<(u32, NonNull<u8>, u32), Error> {
        if self.free == 0 {
            return self.take_fresh(budget);
        }
        let number = linked(self.free);
        let (chunk, index) = self.locate(number);
        let size = self.block_size;
        debug_assert!(chunk < self.chunks.len(), "a free-list link out of range");
        // SAFETY: a free-list link names a free block of a record holding
        // memory (`CheckedChunk` invariant), so `chunk` is in bounds.
        let c = unsafe { self.chunks.get_unchecked_mut(chunk) };
        debug_assert!(index < c.used, "a free-list block that was never used");
        // SAFETY: `index < used <= blocks <= generations.len()` (invariant).
        let generation = unsafe { c.generations.get_unchecked_mut(index) };
        *generation = generation.wrapping_add(1);
        let generation = *generation;
        // SAFETY: a block on the free list has `index < used <= blocks`
        // (`CheckedChunk` invariant), so it is inside the chunk's memory.
        let block = unsafe { c.base.add(index * size) };
        // SAFETY: a free block's first 8 bytes hold the link written by
        // `free`; blocks are aligned to at least 8. The block's `size` bytes
        // are ours and were filled by `free` (`debug-fill` only).
        unsafe {
            self.free = block.cast::<u64>().read();
            fill::check_freed(block, size);
        }
        Ok((number, block, generation))
    }

    /// A never-used block, adding or refilling a chunk if needed.
    #[cold]
    #[inline(never)]
    fn take_fresh(&mut self, budget: &Budget) -> Result<(u32, NonNull<u8>, u32), Error> {
        let chunk = loop {
            match self.fresh.last() {
                Some(&c) if self.chunks[c as usize].used < self.chunks[c as usize].blocks => {
                    break c as usize
                }
                Some(_) => {
                    self.fresh.pop();
                }
                None => self.grow(budget)?,
            }
        };
        let size = self.block_size;
        let c = &mut self.chunks[chunk];
        let index = c.used;
        c.used += 1;
        self.touched += 1;
        // A never-used slot's generation is even, or odd if its block was
        // live at a reset: the next odd value either way.
        let generation = &mut c.generations[index];
        *generation = generation.wrapping_add(1) | 1;
        let generation = *generation;
        // SAFETY: `index < blocks` (checked above), so the block is inside
        // the chunk's memory (`CheckedChunk` invariant).
        let block = unsafe { c.base.add(index * size) };
        Ok((self.number(chunk, index), block, generation))
    }

    /// Gives memory to a released record, or appends a new record, for a
    /// chunk of the next size; it becomes the one fresh blocks come from.
    /// Charges the budget for the chunk and for any metadata it adds.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, budget: &Budget) -> Result<(), Error> {
        let size = self.block_size;
        let align = natural_align(size);
        let reuse = self.released.last().map(|&r| r as usize);
        if reuse.is_none() && self.chunks.len() >= self.max_records() {
            return Err(Error::OutOfMemory {
                size: self.next_blocks * size,
                align,
            });
        }
        let have = reuse.map_or(0, |r| self.chunks[r].generations.len());
        let records_cap = if reuse.is_none() && self.chunks.len() == self.records_cap {
            grown(self.records_cap, self.max_records())
        } else {
            self.records_cap
        };
        let table_bytes = (records_cap - self.records_cap) * RECORD_BYTES;
        let generation_bytes =
            |bytes: usize| (bytes / size).saturating_sub(have) * size_of::<u32>();
        // The chunk and the metadata it brings are charged at once, so a
        // refusal means neither fits.
        let bytes =
            budget.charge_up_to_with(self.next_blocks * size, self.min_blocks * size, |bytes| {
                generation_bytes(bytes) + table_bytes
            })?;
        let blocks = bytes / size;
        let generation_bytes = generation_bytes(bytes);
        let metadata = generation_bytes + table_bytes;
        let oom = Error::OutOfMemory { size: bytes, align };
        let result = self.install(reuse, bytes, blocks, records_cap, oom);
        if result.is_err() {
            budget.credit(bytes + metadata);
        }
        result?;
        self.capacity += blocks;
        self.reserved += bytes;
        self.generation_bytes += generation_bytes;
        self.records_cap = records_cap;
        self.next_blocks = self.next_blocks.saturating_mul(2).min(self.max_blocks);
        Ok(())
    }

    /// [`grow`](Self::grow) once the budget is charged: allocates the
    /// metadata and the chunk, and fills in the record. On error nothing
    /// changed.
    fn install(
        &mut self,
        reuse: Option<usize>,
        bytes: usize,
        blocks: usize,
        records_cap: usize,
        oom: Error,
    ) -> Result<(), Error> {
        let record = match reuse {
            Some(r) => r,
            None => self.chunks.len(),
        };
        // Room in every table first, so that nothing below can fail after
        // the chunk is allocated (and `trim` can push without allocating):
        // each of the three lists gets exactly `records_cap` places, what
        // the budget was charged for.
        let mut generations = Vec::new();
        if reuse.is_none() {
            let (c, f, r) = (self.chunks.len(), self.fresh.len(), self.released.len());
            self.chunks
                .try_reserve_exact(records_cap - c)
                .map_err(|_| oom)?;
            self.fresh
                .try_reserve_exact(records_cap - f)
                .map_err(|_| oom)?;
            self.released
                .try_reserve_exact(records_cap - r)
                .map_err(|_| oom)?;
            generations.try_reserve_exact(blocks).map_err(|_| oom)?;
        } else if blocks > self.chunks[record].generations.len() {
            generations.try_reserve_exact(blocks).map_err(|_| oom)?;
        }
        let layout =
            Layout::from_size_align(bytes, natural_align(self.block_size)).map_err(|_| oom)?;
        let base = system::alloc(layout).ok_or(oom)?;
        match reuse {
            Some(_) => {
                self.released.pop();
                let c = &mut self.chunks[record];
                if blocks > c.generations.len() {
                    // Slots past the old length had no handle since the
                    // record was made, when `floor` was at most what it is.
                    generations.extend_from_slice(&c.generations);
                    generations.resize(blocks, self.floor);
                    c.generations = generations.into_boxed_slice();
                }
                c.base = base;
                c.layout = layout;
                c.blocks = blocks;
                c.used = 0;
            }
            None => {
                // Above every generation a handle into a dropped record at
                // this index can carry.
                generations.resize(blocks, self.floor);
                self.chunks.push(CheckedChunk {
                    base,
                    layout,
                    blocks,
                    used: 0,
                    generations: generations.into_boxed_slice(),
                    scratch: 0,
                });
            }
        }
        self.fresh.push(record as u32);
        Ok(())
    }

    /// The most blocks live at once. Never-used blocks are taken only when
    /// the free list is empty, so all blocks ever handed out from the chunks
    /// that hold memory were live together at that moment: their count is
    /// the peak, and costs nothing on the fast path.
    fn peak(&self) -> usize {
        self.peak.max(self.touched)
    }

    /// Blocks that can be handed out without a new chunk.
    fn available(&self) -> usize {
        self.capacity - self.live
    }

    /// Releases the memory of every chunk with no live block (its record and
    /// generations stay, for reuse, unless it is at the end of the table);
    /// returns the bytes released, metadata included. O(chunks + free
    /// blocks + the slots of the dropped records), no allocation.
    fn trim(&mut self, budget: &Budget) -> usize {
        self.peak = self.peak();
        // 1. Free blocks per chunk.
        for c in &mut self.chunks {
            c.scratch = 0;
        }
        let mut link = self.free;
        while link != 0 {
            let (chunk, index) = self.locate(linked(link));
            self.chunks[chunk].scratch += 1;
            // SAFETY: a free block's first 8 bytes hold the next link.
            link = unsafe { self.block_ptr(chunk, index).cast::<u64>().read() };
        }
        // A chunk goes when every block it handed out is free again.
        let doomed = |c: &CheckedChunk| c.blocks > 0 && c.scratch == c.used;
        // 2. Unlink the free blocks of those chunks, keeping the order.
        let mut prev: Option<NonNull<u8>> = None;
        let mut link = self.free;
        self.free = 0;
        while link != 0 {
            let (chunk, index) = self.locate(linked(link));
            let block = self.block_ptr(chunk, index);
            // SAFETY: a free block's first 8 bytes hold the next link; its
            // chunk still holds its memory.
            let next = unsafe { block.cast::<u64>().read() };
            if !doomed(&self.chunks[chunk]) {
                match prev {
                    // SAFETY: `p` is a kept free block; its link is ours.
                    Some(p) => unsafe { p.cast::<u64>().write(link) },
                    None => self.free = link,
                }
                prev = Some(block);
            }
            link = next;
        }
        if let Some(p) = prev {
            // SAFETY: the last kept free block; its link is ours.
            unsafe { p.cast::<u64>().write(0) };
        }
        // 3. Release them.
        let mut released = 0;
        for (i, c) in self.chunks.iter_mut().enumerate() {
            if !doomed(c) {
                continue;
            }
            // SAFETY: the chunk holds no live block (each block it handed
            // out is free, and none of them is on the free list any more)
            // and was allocated with `layout`; `blocks = 0` below marks it
            // released, so it is freed once and never read again.
            unsafe { system::dealloc(c.base, c.layout) };
            released += c.layout.size();
            self.capacity -= c.blocks;
            self.touched -= c.used;
            c.base = NonNull::dangling();
            c.blocks = 0;
            c.used = 0;
            // Capacity for every record is reserved when a record is added.
            debug_assert!(self.released.len() < self.released.capacity());
            self.released.push(i as u32);
        }
        let chunks = &self.chunks;
        self.fresh.retain(|&c| chunks[c as usize].blocks > 0);
        self.reserved -= released;
        budget.credit(released);
        // 4. Drop the released records at the end of the table, and the
        // lists' storage once no record is left.
        let mut dropped = 0;
        while self.chunks.last().is_some_and(|c| c.blocks == 0) {
            if let Some(c) = self.chunks.pop() {
                self.floor = floor_after(self.floor, c.generations.iter().copied());
                dropped += c.generations.len() * size_of::<u32>();
            }
        }
        self.generation_bytes -= dropped;
        if self.chunks.is_empty() {
            dropped += self.records_cap * RECORD_BYTES;
            self.records_cap = 0;
            self.chunks = Vec::new();
            self.fresh = Vec::new();
            self.released = Vec::new();
        } else {
            let len = self.chunks.len();
            self.released.retain(|&r| (r as usize) < len);
        }
        budget.credit(dropped);
        released + dropped
    }

    /// Forgets every block at once and keeps every chunk as never-used
    /// capacity (a trim releases it). O(chunks), no call to the system
    /// allocator. The caller gives the heap a new id, so no handle made
    /// before matches again.
    fn recycle(&mut self) {
        self.peak = self.peak();
        self.free = 0;
        self.live = 0;
        self.touched = 0;
        self.fresh.clear();
        for (i, c) in self.chunks.iter_mut().enumerate() {
            if c.blocks > 0 {
                c.used = 0;
                // `fresh` has a place for every record: no allocation.
                self.fresh.push(i as u32);
            }
        }
    }

    /// Address of block `index` of chunk `chunk`.
    ///
    /// # Panics
    ///
    /// Panics if there is no such block in memory.
    #[inline]
    fn block_ptr(&self, chunk: usize, index: usize) -> NonNull<u8> {
        let c = &self.chunks[chunk];
        assert!(index < c.blocks, "block index out of range");
        // SAFETY: `index < blocks`, so the block is inside the chunk's
        // memory (`CheckedChunk` invariant).
        unsafe { c.base.add(index * self.block_size) }
    }
}

impl BlockHeap {
    /// An empty heap with one class per entry of `sizes`.
    pub(crate) fn new(sizes: &[usize], config: ChunkConfig) -> Self {
        BlockHeap {
            inner: RefCell::new(Inner {
                classes: sizes
                    .iter()
                    .map(|&s| CheckedClass::new(s, config))
                    .collect(),
                system: Vec::new(),
                system_free: Vec::new(),
                system_live: 0,
                system_bytes: 0,
                system_peak: 0,
                system_allocs: 0,
                system_cap: 0,
                system_floor: 0,
            }),
            identity: Identity::new(),
        }
    }

    /// The error for a handle that is not this heap's now: stale if it is
    /// from before a reset of this heap, else foreign.
    #[cold]
    /// The error for a handle that does not carry this heap's current id:
    /// one of this manager's earlier ids means a reset freed the block.
    fn not_ours(&self, b: Block) -> Error {
        if self.identity.is_retired(b.owner) {
            Error::FreedByReset
        } else {
            Error::ForeignBlock
        }
    }

    /// Grows class `class` until `additional` blocks can be handed out
    /// without a new chunk.
    pub(crate) fn reserve(
        &self,
        class: usize,
        additional: usize,
        budget: &Budget,
    ) -> Result<(), Error> {
        let mut inner = self.inner.borrow_mut();
        let cls = &mut inner.classes[class];
        while cls.available() < additional {
            cls.grow(budget)?;
        }
        Ok(())
    }

    /// Releases every chunk with no live block, and the system table if no
    /// system block is live; returns the bytes released.
    pub(crate) fn trim(&self, budget: &Budget) -> usize {
        let mut inner = self.inner.borrow_mut();
        let mut released: usize = inner.classes.iter_mut().map(|c| c.trim(budget)).sum();
        if inner.system_live == 0 && inner.system_cap > 0 {
            // Drop the table, keeping its newest generation as the start of
            // entries made later. O(entries), paid once per entry made.
            inner.system_floor = floor_after(
                inner.system_floor,
                inner.system.iter().map(|s| s.generation),
            );
            let bytes = inner.system_cap * SYSTEM_ENTRY_BYTES;
            budget.credit(bytes);
            released += bytes;
            inner.system_cap = 0;
            inner.system = Vec::new();
            inner.system_free = Vec::new();
        }
        released
    }

    /// Frees every block at once, keeping the chunks as free capacity;
    /// every handle made before becomes stale. O(chunks + system blocks).
    pub(crate) fn reset(&mut self, budget: &Budget) {
        let inner = self.inner.get_mut();
        for cls in &mut inner.classes {
            cls.recycle();
        }
        for slot in inner.system.drain(..) {
            if let Some(ptr) = slot.ptr {
                // SAFETY: a live system block, freed once: its slot is gone.
                unsafe { system::dealloc(ptr, slot.layout) };
                budget.credit(slot.layout.size());
            }
        }
        budget.credit(inner.system_cap * SYSTEM_ENTRY_BYTES);
        inner.system = Vec::new();
        inner.system_free = Vec::new();
        inner.system_live = 0;
        inner.system_bytes = 0;
        inner.system_cap = 0;
        inner.system_floor = 0; // the id changes: no older handle can match
        self.identity.retire();
    }

    /// Allocates a zeroed block of class `class`, whose block size is `size`
    /// (passed in so that it is a constant where the class is).
    #[inline(always)]
    pub(crate) fn alloc_pooled(
        &self,
        class: usize,
        size: usize,
        budget: &Budget,
    ) -> Result<Block, Error> {
        let mut inner = self.inner.borrow_mut();
        let cls = &mut inner.classes[class];
        debug_assert_eq!(cls.block_size, size, "class {class} has another block size");
        let (number, ptr, generation) = cls.take(budget)?;
        debug_assert!(generation % 2 == 1, "a free block had a live generation");
        cls.live += 1;
        cls.allocs += 1;
        // SAFETY: the block is `size` bytes inside a live chunk and now ours.
        unsafe { ptr.write_bytes(0, size) };
        Ok(Block {
            ptr,
            len: size,
            owner: self.identity.id(),
            generation,
            slot: ((class as u32) << NUMBER_BITS) | number,
        })
    }

    /// Allocates a zeroed block of `size` bytes at `align` from the system
    /// allocator (`layout` rounded up to at least one byte).
    #[inline(never)]
    pub(crate) fn alloc_system(
        &self,
        size: usize,
        align: usize,
        budget: &Budget,
    ) -> Result<Block, Error> {
        let layout = Layout::from_size_align(size.max(1), align)
            .map_err(|_| Error::LayoutOverflow { size, align })?;
        // A full table grows: metadata, charged with the block.
        let (cap, new_cap) = {
            let inner = self.inner.borrow();
            let cap = inner.system_cap;
            let full = inner.system_free.is_empty() && inner.system.len() == cap;
            let max = (SYSTEM_SLOT - 1) as usize;
            (
                cap,
                if full && cap < max {
                    grown(cap, max)
                } else {
                    cap
                },
            )
        };
        let metadata = (new_cap - cap) * SYSTEM_ENTRY_BYTES;
        budget.charge(layout.size().saturating_add(metadata))?;
        let block = self.alloc_system_charged(size, layout, new_cap);
        if block.is_err() {
            // The table keeps the places it got before the failure, charged.
            let grew = self.inner.borrow().system_cap == new_cap;
            budget.credit(layout.size() + if grew { 0 } else { metadata });
        }
        block
    }

    /// [`alloc_system`](Self::alloc_system) once the budget is charged for
    /// the block and for a table of `new_cap` places.
    fn alloc_system_charged(
        &self,
        size: usize,
        layout: Layout,
        new_cap: usize,
    ) -> Result<Block, Error> {
        let align = layout.align();
        let oom = Error::OutOfMemory {
            size: layout.size(),
            align,
        };
        let mut inner = self.inner.borrow_mut();
        let index = match inner.system_free.last() {
            Some(&i) => i as usize,
            None if inner.system.len() < new_cap => {
                // Exactly the places charged for, in the table and in its
                // free list (so that `free` can push without allocating).
                let (len, free_len) = (inner.system.len(), inner.system_free.len());
                inner
                    .system
                    .try_reserve_exact(new_cap - len)
                    .map_err(|_| oom)?;
                inner
                    .system_free
                    .try_reserve_exact(new_cap - free_len)
                    .map_err(|_| oom)?;
                inner.system_cap = new_cap;
                inner.system.len()
            }
            None => return Err(oom),
        };
        // glibc's calloc skips its per-thread cache, so below the mmap threshold
        // malloc + memset is several times faster; above it, calloc's fresh
        // zero pages cost nothing.
        let ptr = if layout.size() <= ZERO_BY_HAND {
            // `black_box` hides the allocation from LLVM, which would
            // otherwise fuse malloc + memset back into calloc (measured:
            // pair/600 B blocks spent 30% of their time in calloc's slow path).
            let p = core::hint::black_box(system::alloc(layout).ok_or(oom)?);
            // SAFETY: `p` is a fresh allocation of `layout.size()` bytes.
            unsafe { p.write_bytes(0, layout.size()) };
            p
        } else {
            system::alloc_zeroed(layout).ok_or(oom)?
        };
        if index == inner.system.len() {
            let generation = inner.system_floor;
            inner.system.push(SystemSlot {
                ptr: None,
                layout,
                len: 0,
                generation,
            });
        } else {
            inner.system_free.pop();
        }
        let slot = &mut inner.system[index];
        slot.generation = slot.generation.wrapping_add(1);
        slot.ptr = Some(ptr);
        slot.layout = layout;
        slot.len = size;
        let generation = slot.generation;
        inner.system_live += 1;
        inner.system_peak = inner.system_peak.max(inner.system_live);
        inner.system_allocs += 1;
        inner.system_bytes += layout.size();
        Ok(Block {
            ptr,
            len: size,
            owner: self.identity.id(),
            generation,
            slot: SYSTEM_SLOT | index as u32,
        })
    }

    /// Finds the block `b` names in this heap's tables: checks that it was
    /// made by this heap since its last reset, that its slot is still in the
    /// generation it was handed out in, and that the handle agrees with the
    /// table; returns the address and size from the table. `stale` is the
    /// error for a handle whose slot has moved on.
    #[inline]
    fn validate(&self, inner: &Inner, b: Block, stale: Error) -> Result<Found, Error> {
        if b.owner != self.identity.id() {
            return Err(self.not_ours(b));
        }
        let found = if b.slot & SYSTEM_SLOT != 0 {
            // Our id: an entry the table no longer has was dropped.
            let slot = inner
                .system
                .get((b.slot & !SYSTEM_SLOT) as usize)
                .ok_or(stale)?;
            if slot.generation != b.generation {
                return Err(stale);
            }
            let ptr = slot.ptr.ok_or(Error::ForeignBlock)?;
            Found { ptr, len: slot.len }
        } else {
            let cls = inner
                .classes
                .get((b.slot >> NUMBER_BITS) as usize)
                .ok_or(Error::ForeignBlock)?;
            let (chunk, index) = cls.locate(b.slot & NUMBER_MASK);
            // Our id: a slot the tables no longer have was dropped by a trim.
            let c = cls.chunks.get(chunk).ok_or(stale)?;
            let generation = *c.generations.get(index).ok_or(stale)?;
            if generation != b.generation {
                return Err(stale);
            }
            if generation % 2 == 0 || index >= c.used {
                return Err(Error::ForeignBlock);
            }
            Found {
                ptr: cls.block_ptr(chunk, index),
                len: cls.block_size,
            }
        };
        if found.ptr != b.ptr || found.len != b.len {
            return Err(Error::ForeignBlock);
        }
        Ok(found)
    }

    /// Frees `b` if it is a live block of this heap.
    #[inline(always)]
    pub(crate) fn free(&self, b: Block, budget: &Budget) -> Result<(), Error> {
        if b.owner != self.identity.id() {
            return Err(self.not_ours(b));
        }
        if b.slot & SYSTEM_SLOT != 0 {
            return self.free_system(b, budget);
        }
        let mut inner = self.inner.borrow_mut();
        let cls = inner
            .classes
            .get_mut((b.slot >> NUMBER_BITS) as usize)
            .ok_or(Error::ForeignBlock)?;
        let (chunk, index) = cls.locate(b.slot & NUMBER_MASK);
        let (size, head) = (cls.block_size, cls.free);
        // Our id: a slot the tables no longer have was dropped by a trim.
        let c = cls.chunks.get_mut(chunk).ok_or(Error::DoubleFree)?;
        let generation = c.generations.get_mut(index).ok_or(Error::DoubleFree)?;
        if *generation != b.generation {
            return Err(Error::DoubleFree);
        }
        // Handles are made only by `alloc_pooled`, with the odd generation of
        // a live block; generations only move forward, so a matching one is
        // odd and the block live.
        debug_assert!(*generation % 2 == 1 && index < c.used);
        // SAFETY: the slot's generation is odd, so the block is live and
        // `index < used <= blocks` (`CheckedChunk` invariant): it is inside
        // the chunk's memory. The address is computed here, from the table;
        // the handle's is only compared with it.
        let ptr = unsafe { c.base.add(index * size) };
        if ptr != b.ptr {
            return Err(Error::ForeignBlock);
        }
        *generation = generation.wrapping_add(1);
        // SAFETY: the block was live (odd generation) and is free now, so its
        // `size` bytes are ours: its first 8 (blocks are aligned to 8) take the
        // free-list link and (`debug-fill`) the rest the freed pattern.
        unsafe {
            fill::freed(ptr, size);
            ptr.cast::<u64>().write(head);
        }
        cls.free = link_to(b.slot & NUMBER_MASK);
        cls.live -= 1;
        Ok(())
    }

    /// The system-block half of [`free`](Self::free).
    #[inline(never)]
    fn free_system(&self, b: Block, budget: &Budget) -> Result<(), Error> {
        let mut inner = self.inner.borrow_mut();
        self.validate(&inner, b, Error::DoubleFree)?;
        let index = (b.slot & !SYSTEM_SLOT) as usize;
        let slot = &mut inner.system[index];
        let layout = slot.layout;
        let ptr = slot.ptr.take();
        slot.generation = slot.generation.wrapping_add(1);
        if let Some(ptr) = ptr {
            // SAFETY: the slot held this live allocation made with `layout`;
            // it is now emptied, so it is freed once.
            unsafe { system::dealloc(ptr, layout) };
        }
        // Capacity for every entry's index is reserved when the entry is made.
        debug_assert!(inner.system_free.len() < inner.system_free.capacity());
        inner.system_free.push(index as u32);
        inner.system_live -= 1;
        inner.system_bytes -= layout.size();
        budget.credit(layout.size());
        Ok(())
    }

    /// Whether `b` is a live block of this heap.
    #[inline]
    pub(crate) fn is_live(&self, b: Block) -> bool {
        let inner = self.inner.borrow();
        self.validate(&inner, b, Error::UseAfterFree).is_ok()
    }

    /// Checks that `len` bytes at `offset` lie inside live block `b`, and
    /// returns their address, computed from this heap's tables.
    #[inline]
    fn access(&self, b: Block, offset: usize, len: usize) -> Result<NonNull<u8>, Error> {
        let inner = self.inner.borrow();
        let found = self.validate(&inner, b, Error::UseAfterFree)?;
        match offset.checked_add(len) {
            Some(end) if end <= found.len => {
                // SAFETY: `offset <= found.len`, inside (or one past) the live
                // block the table names.
                Ok(unsafe { found.ptr.add(offset) })
            }
            _ => Err(Error::OutOfBounds {
                offset,
                len,
                size: found.len,
            }),
        }
    }

    /// Copies `src` into live block `b` at `offset`.
    #[inline]
    pub(crate) fn write_bytes(&self, b: Block, offset: usize, src: &[u8]) -> Result<(), Error> {
        let dst = self.access(b, offset, src.len())?;
        // SAFETY: `access` checked that `src.len()` bytes at `dst` are inside a
        // live block. `copy` allows overlap, in case `unsafe` code made `src`
        // from this very block.
        unsafe { ptr::copy(src.as_ptr(), dst.as_ptr(), src.len()) };
        Ok(())
    }

    /// Copies bytes of live block `b` at `offset` into `dst`.
    #[inline]
    pub(crate) fn read_bytes(&self, b: Block, offset: usize, dst: &mut [u8]) -> Result<(), Error> {
        let src = self.access(b, offset, dst.len())?;
        // SAFETY: as in `write_bytes`; the block's bytes are initialised
        // because every block starts zeroed.
        unsafe { ptr::copy(src.as_ptr(), dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Per-class and system figures for [`MemoryManager::stats`](crate::MemoryManager::stats).
    /// O(classes): every figure is kept as it changes.
    pub(crate) fn class_stats(&self) -> CheckedStats {
        let inner = self.inner.borrow();
        CheckedStats {
            classes: inner
                .classes
                .iter()
                .map(|c| CheckedClassStats {
                    live: c.live,
                    peak: c.peak(),
                    allocs: c.allocs,
                    capacity: c.capacity,
                    chunks: c.chunks.len() - c.released.len(),
                    reserved_bytes: c.reserved,
                    metadata_bytes: c.metadata(),
                })
                .collect(),
            system_live: inner.system_live,
            system_peak: inner.system_peak,
            system_allocs: inner.system_allocs,
            system_bytes: inner.system_bytes,
            system_metadata: inner.system_cap * SYSTEM_ENTRY_BYTES,
        }
    }
}

/// Figures of one checked class.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckedClassStats {
    pub(crate) live: usize,
    pub(crate) peak: usize,
    pub(crate) allocs: usize,
    pub(crate) capacity: usize,
    pub(crate) chunks: usize,
    pub(crate) reserved_bytes: usize,
    pub(crate) metadata_bytes: usize,
}

/// Figures of a [`BlockHeap`].
#[derive(Debug, Clone)]
pub(crate) struct CheckedStats {
    pub(crate) classes: Vec<CheckedClassStats>,
    pub(crate) system_live: usize,
    pub(crate) system_peak: usize,
    pub(crate) system_allocs: usize,
    pub(crate) system_bytes: usize,
    pub(crate) system_metadata: usize,
}

impl Drop for BlockHeap {
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        for cls in &inner.classes {
            for c in cls.chunks.iter().filter(|c| c.blocks > 0) {
                // SAFETY: each chunk holding memory was allocated with its
                // `layout` and is freed once, here; handles to it are checked
                // against tables that die with it.
                unsafe { system::dealloc(c.base, c.layout) };
            }
        }
        for slot in &inner.system {
            if let Some(ptr) = slot.ptr {
                // SAFETY: a live system block, freed once, here.
                unsafe { system::dealloc(ptr, slot.layout) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_moves_to_the_newest_generation_across_the_wrap() {
        assert_eq!(floor_after(0, [2, 7, 4].into_iter()), 7);
        assert_eq!(floor_after(10, [2, 4].into_iter()), 10, "behind it");
        assert_eq!(floor_after(10, core::iter::empty()), 10);
        // Near the wrap: 1 (wrapped) is newer than u32::MAX - 1.
        let f = u32::MAX - 3;
        assert_eq!(
            floor_after(f, [u32::MAX - 1, 0, 1, u32::MAX].into_iter()),
            1
        );
        assert_eq!(floor_after(f, [u32::MAX - 2].into_iter()), u32::MAX - 2);
    }
}
