//! Checked blocks: the pools and the system-block table behind [`Block`].
//!
//! These are separate from the typed pools so that a `PoolBox` pays nothing
//! for generations. A block here is identified by (class, chunk, index) or by
//! a slot of the system table, and each has a 32-bit generation kept outside
//! the user's bytes: even while free, odd while live, bumped on every
//! allocation and free. A handle carries the generation it was given, so a
//! second free of it — even after the slot was handed out again — sees a
//! newer generation and is refused. A handle is never dereferenced before it
//! is validated against this manager's own tables.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::cell::RefCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, Ordering};

use crate::budget::Budget;
use crate::fill;
use crate::pool::ChunkConfig;
use crate::size_class::natural_align;
use crate::system;
use crate::{Block, Error};

/// System blocks up to this size are zeroed by hand rather than by calloc.
const ZERO_BY_HAND: usize = 128 << 10;

/// Chunks per class a block location can name (24 bits).
const MAX_CHUNKS: usize = 1 << 24;

/// A fresh manager id. Ids repeat only after 2^32 managers.
pub(crate) fn next_owner_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The checked-block state of one manager.
#[derive(Debug)]
pub(crate) struct BlockHeap {
    inner: RefCell<Inner>,
    owner: u32,
    /// Ids this heap had before each `reset`: their handles are stale, not
    /// foreign.
    retired: Vec<u32>,
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
}

#[derive(Debug)]
struct CheckedClass {
    block_size: usize,
    chunks: Vec<CheckedChunk>,
    /// Free list: `encode(chunk, index)` of the first free block, 0 if empty.
    /// Each free block's first 8 bytes hold the next link.
    free: u64,
    /// The chunk never-used blocks come from; chunks after it were
    /// reserved and are untouched.
    fresh_chunk: usize,
    /// Next never-used index in that chunk.
    fresh: usize,
    /// Blocks in the next chunk.
    next_blocks: usize,
    /// Cap on blocks per chunk.
    max_blocks: usize,
    /// Blocks in the first chunk: the floor when a budget makes the class
    /// grow by less than the next size.
    min_blocks: usize,
    live: usize,
    /// Most blocks live at once, saved before chunks are released; see
    /// [`CheckedClass::peak`].
    peak: usize,
    /// Blocks handed out, ever.
    allocs: usize,
}

#[derive(Debug)]
struct CheckedChunk {
    /// The blocks; dangling once released by a trim.
    base: NonNull<u8>,
    layout: Layout,
    /// Released by a trim: its generations stay (all even), so handles into
    /// it are refused as stale; its memory is gone.
    released: bool,
    /// One generation per block; even = free, odd = live.
    generations: Box<[u32]>,
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

#[inline]
fn encode(chunk: usize, index: usize) -> u64 {
    ((chunk as u64) << 32 | index as u64) + 1
}

#[inline]
fn decode(link: u64) -> (usize, usize) {
    let v = link - 1;
    ((v >> 32) as usize, (v & 0xFFFF_FFFF) as usize)
}

impl CheckedClass {
    fn new(block_size: usize, config: ChunkConfig) -> Self {
        let first = (config.initial / block_size).max(1);
        CheckedClass {
            block_size,
            chunks: Vec::new(),
            free: 0,
            fresh_chunk: 0,
            fresh: 0,
            next_blocks: first,
            max_blocks: (config.max / block_size).max(first).min(u32::MAX as usize),
            min_blocks: first,
            live: 0,
            peak: 0,
            allocs: 0,
        }
    }

    /// Takes a free or never-used block and marks it live: (chunk, index,
    /// address, new generation). One chunk lookup on the fast path.
    #[inline(always)]
    fn take(&mut self, budget: &Budget) -> Result<(usize, usize, NonNull<u8>, u32), Error> {
        if self.free == 0 {
            return self.take_fresh(budget);
        }
        let (chunk, index) = decode(self.free);
        let size = self.block_size;
        let c = &mut self.chunks[chunk];
        let generation = &mut c.generations[index];
        *generation = generation.wrapping_add(1);
        // SAFETY: `index` is in bounds of `generations` (just indexed), i.e.
        // below the chunk's block count, so the block is inside the chunk.
        let block = unsafe { c.base.add(index * size) };
        // SAFETY: a free block's first 8 bytes hold the link written by
        // `free`; blocks are aligned to at least 8. The block's `size` bytes
        // are ours and were filled by `free` (`debug-fill` only).
        unsafe {
            self.free = block.cast::<u64>().read();
            fill::check_freed(block, size);
        }
        Ok((chunk, index, block, *generation))
    }

    /// A never-used block of the newest chunk, adding a chunk if needed.
    #[cold]
    #[inline(never)]
    fn take_fresh(&mut self, budget: &Budget) -> Result<(usize, usize, NonNull<u8>, u32), Error> {
        // Move past used-up and released chunks to a reserved one, or grow.
        while self.fresh_chunk < self.chunks.len()
            && (self.chunks[self.fresh_chunk].released
                || self.fresh == self.chunks[self.fresh_chunk].generations.len())
        {
            self.fresh_chunk += 1;
            self.fresh = 0;
        }
        if self.fresh_chunk == self.chunks.len() {
            self.grow(budget)?;
        }
        let chunk = self.fresh_chunk;
        let index = self.fresh;
        self.fresh += 1;
        let generation = &mut self.chunks[chunk].generations[index];
        *generation = generation.wrapping_add(1);
        let generation = *generation;
        Ok((chunk, index, self.block_ptr(chunk, index), generation))
    }

    /// Appends a chunk of the next size (used after the ones before it).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, budget: &Budget) -> Result<(), Error> {
        let align = natural_align(self.block_size);
        let oom = Error::OutOfMemory {
            size: self.next_blocks * self.block_size,
            align,
        };
        if self.chunks.len() >= MAX_CHUNKS {
            return Err(oom);
        }
        let size = budget.charge_up_to(
            self.next_blocks * self.block_size,
            self.min_blocks * self.block_size,
        )?;
        let blocks = size / self.block_size;
        let chunk = Layout::from_size_align(size, align)
            .ok()
            .and_then(|layout| Some((layout, system::alloc(layout)?)));
        let Some((layout, base)) = chunk else {
            budget.credit(size);
            return Err(Error::OutOfMemory { size, align });
        };
        self.chunks.push(CheckedChunk {
            base,
            layout,
            released: false,
            generations: alloc::vec![0; blocks].into_boxed_slice(),
        });
        self.next_blocks = self.next_blocks.saturating_mul(2).min(self.max_blocks);
        Ok(())
    }

    /// The most blocks live at once. Never-used blocks are taken only when
    /// the free list is empty, so all blocks ever handed out from the
    /// current chunks were live together at that moment: their count is the
    /// peak, and costs nothing on the fast path.
    fn peak(&self) -> usize {
        let touched: usize = self
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.released)
            .map(|(i, c)| c.generations.len() - self.untouched(i))
            .sum();
        self.peak.max(touched)
    }

    /// Blocks of chunk `i` never handed out: none before the chunk fresh
    /// blocks come from, the rest of that one, all of the reserved ones after.
    fn untouched(&self, i: usize) -> usize {
        let len = self.chunks[i].generations.len();
        match i.cmp(&self.fresh_chunk) {
            core::cmp::Ordering::Less => 0,
            core::cmp::Ordering::Equal => len - self.fresh,
            core::cmp::Ordering::Greater => len,
        }
    }

    /// Blocks that can be handed out without a new chunk.
    fn available(&self) -> usize {
        self.capacity() - self.live
    }

    /// Blocks in chunks not released.
    fn capacity(&self) -> usize {
        self.chunks
            .iter()
            .filter(|c| !c.released)
            .map(|c| c.generations.len())
            .sum()
    }

    /// Releases every chunk with no live block; returns the bytes released.
    /// O(chunks + free blocks).
    fn trim(&mut self, budget: &Budget) -> usize {
        self.peak = self.peak();
        // The free list in order, and free blocks per chunk.
        let mut order = Vec::new();
        let mut free_in = alloc::vec![0usize; self.chunks.len()];
        let mut link = self.free;
        while link != 0 {
            order.push(link);
            let (chunk, index) = decode(link);
            free_in[chunk] += 1;
            // SAFETY: a free block's first 8 bytes hold the next link.
            link = unsafe { self.block_ptr(chunk, index).cast::<u64>().read() };
        }
        let doomed: Vec<bool> = (0..self.chunks.len())
            .map(|i| {
                let c = &self.chunks[i];
                !c.released && free_in[i] + self.untouched(i) == c.generations.len()
            })
            .collect();
        // Relink the free blocks of the chunks that stay, keeping the order.
        let mut head = 0;
        for &link in order.iter().rev() {
            let (chunk, index) = decode(link);
            if doomed[chunk] {
                continue;
            }
            // SAFETY: a free block of a chunk that stays; its first 8 bytes
            // are the link.
            unsafe { self.block_ptr(chunk, index).cast::<u64>().write(head) };
            head = link;
        }
        self.free = head;
        let mut released = 0;
        for (c, _) in self.chunks.iter_mut().zip(&doomed).filter(|(_, d)| **d) {
            // SAFETY: the chunk holds no live block (each block is free or
            // never used), was allocated with `layout`, and is marked
            // released so it is freed once and never read again.
            unsafe { system::dealloc(c.base, c.layout) };
            c.base = NonNull::dangling();
            c.released = true;
            released += c.layout.size();
        }
        budget.credit(released);
        released
    }

    /// Address of block `index` of chunk `chunk`.
    ///
    /// # Panics
    ///
    /// Panics if there is no such block.
    #[inline]
    fn block_ptr(&self, chunk: usize, index: usize) -> NonNull<u8> {
        let c = &self.chunks[chunk];
        assert!(index < c.generations.len(), "block index out of range");
        debug_assert!(!c.released, "a block of a released chunk");
        // SAFETY: `index` is below the chunk's block count, so the block is
        // inside the chunk.
        unsafe { c.base.add(index * self.block_size) }
    }
}

/// What a validated handle refers to.
enum Slot {
    Pooled,
    System(usize),
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
            }),
            owner: next_owner_id(),
            retired: Vec::new(),
        }
    }

    /// The error for a handle that is not this heap's now: stale if it is
    /// from before a reset of this heap, else foreign.
    #[cold]
    fn not_ours(&self, b: Block, stale: Error) -> Error {
        if self.retired.contains(&b.owner) {
            stale
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

    /// Releases every chunk with no live block; returns the bytes released.
    pub(crate) fn trim(&self, budget: &Budget) -> usize {
        let mut inner = self.inner.borrow_mut();
        inner.classes.iter_mut().map(|c| c.trim(budget)).sum()
    }

    /// Frees every block at once; every handle made before becomes stale.
    /// O(chunks + system blocks).
    pub(crate) fn reset(&mut self, budget: &Budget) {
        let inner = self.inner.get_mut();
        for cls in &mut inner.classes {
            cls.peak = cls.peak();
            for c in cls.chunks.drain(..) {
                if !c.released {
                    // SAFETY: a live chunk allocated with its layout, freed
                    // once: it leaves the table here, and every handle into
                    // it is refused from now on (the heap's id changes).
                    unsafe { system::dealloc(c.base, c.layout) };
                    budget.credit(c.layout.size());
                }
            }
            cls.free = 0;
            cls.fresh_chunk = 0;
            cls.fresh = 0;
            cls.live = 0;
        }
        for slot in inner.system.drain(..) {
            if let Some(ptr) = slot.ptr {
                // SAFETY: a live system block, freed once: its slot is gone.
                unsafe { system::dealloc(ptr, slot.layout) };
                budget.credit(slot.layout.size());
            }
        }
        inner.system_free.clear();
        inner.system_live = 0;
        inner.system_bytes = 0;
        self.retired.push(self.owner);
        self.owner = next_owner_id();
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
        let (chunk, index, ptr, generation) = cls.take(budget)?;
        debug_assert!(generation % 2 == 1, "a free block had a live generation");
        cls.live += 1;
        cls.allocs += 1;
        // SAFETY: the block is `size` bytes inside a live chunk and now ours.
        unsafe { ptr.write_bytes(0, size) };
        Ok(Block {
            ptr,
            len: size,
            owner: self.owner,
            generation,
            location: ((class as u32) << 24) | chunk as u32,
            index: index as u32,
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
        budget.charge(layout.size())?;
        let block = self.alloc_system_charged(size, layout);
        if block.is_err() {
            budget.credit(layout.size());
        }
        block
    }

    /// [`alloc_system`](Self::alloc_system) once the budget is charged.
    fn alloc_system_charged(&self, size: usize, layout: Layout) -> Result<Block, Error> {
        let align = layout.align();
        let oom = Error::OutOfMemory {
            size: layout.size(),
            align,
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
        let mut inner = self.inner.borrow_mut();
        let index = match inner.system_free.pop() {
            Some(i) => i as usize,
            None if inner.system.len() < u32::MAX as usize => {
                inner.system.push(SystemSlot {
                    ptr: None,
                    layout,
                    len: 0,
                    generation: 0,
                });
                inner.system.len() - 1
            }
            None => {
                // SAFETY: just allocated with `layout`, handed to no one.
                unsafe { system::dealloc(ptr, layout) };
                return Err(Error::OutOfMemory {
                    size: layout.size(),
                    align,
                });
            }
        };
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
            owner: self.owner,
            generation,
            location: Block::SYSTEM,
            index: index as u32,
        })
    }

    /// Finds what `b` names, checking it was made by this heap and that its
    /// slot is still in the generation it was handed out in.
    /// `stale` is the error for a handle whose slot has moved on.
    #[inline]
    fn validate(&self, inner: &Inner, b: Block, stale: Error) -> Result<Slot, Error> {
        if b.owner != self.owner {
            return Err(self.not_ours(b, stale));
        }
        let index = b.index as usize;
        if b.location == Block::SYSTEM {
            let slot = inner.system.get(index).ok_or(Error::ForeignBlock)?;
            if slot.generation != b.generation {
                return Err(stale);
            }
            if slot.ptr != Some(b.ptr) || slot.len != b.len {
                return Err(Error::ForeignBlock);
            }
            return Ok(Slot::System(index));
        }
        let (class, chunk, index) = b.pooled_location();
        let cls = inner.classes.get(class).ok_or(Error::ForeignBlock)?;
        let c = cls.chunks.get(chunk).ok_or(Error::ForeignBlock)?;
        let generation = *c.generations.get(index).ok_or(Error::ForeignBlock)?;
        if generation != b.generation {
            return Err(stale);
        }
        debug_assert_eq!(
            cls.block_ptr(chunk, index),
            b.ptr,
            "handle address mismatch"
        );
        debug_assert_eq!(cls.block_size, b.len, "handle size mismatch");
        Ok(Slot::Pooled)
    }

    /// Frees `b` if it is a live block of this heap.
    #[inline(always)]
    pub(crate) fn free(&self, b: Block, budget: &Budget) -> Result<(), Error> {
        if b.owner != self.owner {
            return Err(self.not_ours(b, Error::DoubleFree));
        }
        if b.location == Block::SYSTEM {
            return self.free_system(b, budget);
        }
        let mut inner = self.inner.borrow_mut();
        let (class, chunk, index) = b.pooled_location();
        let cls = inner.classes.get_mut(class).ok_or(Error::ForeignBlock)?;
        let generation = cls
            .chunks
            .get_mut(chunk)
            .and_then(|c| c.generations.get_mut(index))
            .ok_or(Error::ForeignBlock)?;
        if *generation != b.generation {
            return Err(Error::DoubleFree);
        }
        *generation = generation.wrapping_add(1);
        debug_assert_eq!(
            cls.block_ptr(chunk, index),
            b.ptr,
            "handle address mismatch"
        );
        // SAFETY: the handle's owner, location and generation match a live
        // block of this heap, and handles cannot be forged, so `b.ptr` is that
        // block's address (checked in debug builds). It is free now, so its
        // first 8 bytes (blocks are aligned to 8) take the free-list link,
        // and (`debug-fill`) its other bytes the freed pattern.
        unsafe {
            fill::freed(b.ptr, cls.block_size);
            b.ptr.cast::<u64>().write(cls.free);
        }
        cls.free = encode(chunk, index);
        cls.live -= 1;
        Ok(())
    }

    /// The system-block half of [`free`](Self::free).
    #[inline(never)]
    fn free_system(&self, b: Block, budget: &Budget) -> Result<(), Error> {
        let mut inner = self.inner.borrow_mut();
        let Slot::System(index) = self.validate(&inner, b, Error::DoubleFree)? else {
            unreachable!("checked by the caller")
        };
        let slot = &mut inner.system[index];
        let layout = slot.layout;
        let ptr = slot.ptr.take();
        slot.generation = slot.generation.wrapping_add(1);
        if let Some(ptr) = ptr {
            // SAFETY: the slot held this live allocation made with `layout`;
            // it is now emptied, so it is freed once.
            unsafe { system::dealloc(ptr, layout) };
        }
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

    /// Checks that `len` bytes at `offset` lie inside live block `b`.
    #[inline]
    fn access(&self, b: Block, offset: usize, len: usize) -> Result<NonNull<u8>, Error> {
        let inner = self.inner.borrow();
        self.validate(&inner, b, Error::UseAfterFree)?;
        match offset.checked_add(len) {
            Some(end) if end <= b.len => {
                // SAFETY: `offset <= b.len`, inside (or one past) the live block.
                Ok(unsafe { b.ptr.add(offset) })
            }
            _ => Err(Error::OutOfBounds {
                offset,
                len,
                size: b.len,
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
                    capacity: c.capacity(),
                    chunks: c.chunks.iter().filter(|k| !k.released).count(),
                    reserved_bytes: c
                        .chunks
                        .iter()
                        .filter(|k| !k.released)
                        .map(|k| k.layout.size())
                        .sum(),
                })
                .collect(),
            system_live: inner.system_live,
            system_peak: inner.system_peak,
            system_allocs: inner.system_allocs,
            system_bytes: inner.system_bytes,
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
}

/// Figures of a [`BlockHeap`].
#[derive(Debug, Clone)]
pub(crate) struct CheckedStats {
    pub(crate) classes: Vec<CheckedClassStats>,
    pub(crate) system_live: usize,
    pub(crate) system_peak: usize,
    pub(crate) system_allocs: usize,
    pub(crate) system_bytes: usize,
}

impl Drop for BlockHeap {
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        for cls in &inner.classes {
            for c in cls.chunks.iter().filter(|c| !c.released) {
                // SAFETY: each chunk was allocated with its `layout` and is
                // freed once, here; handles to it are checked against tables
                // that die with it.
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
