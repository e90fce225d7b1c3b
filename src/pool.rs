//! Typed pools: one size class, an intrusive free list, chunks that grow.
//!
//! This is the raw core behind `PoolBox`. A [`Pool`] hands out blocks of one
//! size; it knows nothing of types. Allocation pops the free list, freeing
//! pushes it — both O(1), the list unordered. When the list is empty the
//! cold [`refill`] threads the next batch of never-used blocks of the newest
//! chunk (lazily, about 4 KiB at a time, like mimalloc's page extension) or
//! allocates a new chunk, each one twice the size of the last up to the cap.
//!
//! A pool is found from any of its blocks through the chunk header (see
//! [`chunk`](crate::chunk)), so pools live at fixed heap addresses inside
//! [`Pools`] and never move.

use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use crate::chunk::{self, ChunkHeader};
use crate::size_class::{natural_align, SizeClasses};
use crate::system::Fallback;

/// Chunk sizes a manager's pools grow with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkConfig {
    /// Size of each pool's first chunk.
    pub(crate) initial: usize,
    /// Largest chunk size; chunks double until they reach it.
    pub(crate) max: usize,
}

/// How many bytes of fresh blocks one refill threads onto the free list.
const BATCH_BYTES: usize = 4096;

/// A free block, seen as a free-list node.
#[repr(C)]
struct FreeNode {
    next: *mut FreeNode,
}

/// One size class's pool. All mutable state is in `Cell`s: the pool is only
/// ever reached through shared references (from the manager, and from block
/// pointers via chunk headers), never from two threads.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Pool {
    /// Head of the free list, or null. Hot: first field.
    free: Cell<*mut FreeNode>,
    /// Blocks handed out and not yet returned.
    live: Cell<usize>,
    /// Block size in bytes (a multiple of 8).
    block_size: usize,
    /// Offset of the first block in every chunk.
    first_offset: usize,
    /// Next never-used block of the newest chunk.
    fresh: Cell<*mut u8>,
    /// Never-used blocks left in the newest chunk.
    fresh_left: Cell<usize>,
    /// Size of the next chunk to allocate.
    next_chunk_size: Cell<usize>,
    /// Chunk size cap.
    max_chunk_size: usize,
    /// Newest chunk; each header links to the one before.
    chunks: Cell<*mut ChunkHeader>,
    /// Number of chunks.
    chunk_count: Cell<usize>,
    /// Bytes of all chunks.
    reserved: Cell<usize>,
    /// Blocks in all chunks.
    capacity: Cell<usize>,
}

impl Pool {
    /// A pool of `block_size`-byte blocks, with no chunk yet.
    fn new(block_size: usize, config: ChunkConfig) -> Pool {
        let first_offset = chunk::first_block_offset(natural_align(block_size));
        let smallest = first_offset + block_size;
        let initial = config.initial.max(smallest).min(chunk::SEGMENT);
        Pool {
            free: Cell::new(ptr::null_mut()),
            live: Cell::new(0),
            block_size,
            first_offset,
            fresh: Cell::new(ptr::null_mut()),
            fresh_left: Cell::new(0),
            next_chunk_size: Cell::new(initial),
            max_chunk_size: config.max.max(initial).min(chunk::SEGMENT),
            chunks: Cell::new(ptr::null_mut()),
            chunk_count: Cell::new(0),
            reserved: Cell::new(0),
            capacity: Cell::new(0),
        }
    }

    /// Pops a block of `block_size` bytes, aligned to its natural alignment;
    /// `None` when the system allocator refuses a new chunk.
    #[inline(always)]
    pub(crate) fn alloc(&self) -> Option<NonNull<u8>> {
        match NonNull::new(self.free.get()) {
            Some(head) => {
                // SAFETY: every node on the free list is a free block of this
                // pool, inside a live chunk, whose first word holds the link.
                self.free.set(unsafe { (*head.as_ptr()).next });
                self.live.set(self.live.get() + 1);
                Some(head.cast())
            }
            None => NonNull::new(refill(self)),
        }
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
        unsafe { chunk::header_of(block).as_ref().pool.as_ref() }
    }

    #[inline(always)]
    fn push(&self, block: NonNull<u8>) {
        let node = block.cast::<FreeNode>();
        // SAFETY: `block` is a block of this pool that its owner gave back, so
        // its first word (blocks are at least 8 bytes, aligned to 8) is ours
        // to use as the link.
        unsafe {
            node.write(FreeNode {
                next: self.free.get(),
            })
        };
        self.free.set(node.as_ptr());
        self.live.set(self.live.get() - 1);
    }

    /// Adds a chunk; `false` if the system allocator refuses. Never panics.
    fn grow(&self) -> bool {
        let size = self.next_chunk_size.get();
        let Some(chunk) = chunk::allocate(NonNull::from(self), size, self.chunks.get()) else {
            return false;
        };
        let blocks = (size - self.first_offset) / self.block_size;
        self.chunks.set(chunk.as_ptr());
        self.chunk_count.set(self.chunk_count.get() + 1);
        self.reserved.set(self.reserved.get() + size);
        self.capacity.set(self.capacity.get() + blocks);
        // SAFETY: `first_offset + block_size <= size`, so the first block is
        // inside the new chunk.
        self.fresh
            .set(unsafe { chunk.as_ptr().cast::<u8>().add(self.first_offset) });
        self.fresh_left.set(blocks);
        self.next_chunk_size
            .set(size.saturating_mul(2).min(self.max_chunk_size));
        true
    }

    /// Blocks handed out and not returned.
    #[inline]
    pub(crate) fn live(&self) -> usize {
        self.live.get()
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

    /// Checks the pool's invariants by walking the free list: every node is
    /// a block boundary inside one of the pool's chunks, no node repeats, and
    /// free + fresh + live blocks add up to the capacity. O(free × chunks).
    pub(crate) fn is_valid(&self) -> bool {
        let mut chunks = Vec::new();
        let mut c = self.chunks.get();
        while let Some(h) = NonNull::new(c) {
            // SAFETY: the chunk list holds only live chunks of this pool.
            let header = unsafe { h.as_ref() };
            if header.pool != NonNull::from(self) {
                return false;
            }
            chunks.push((h.as_ptr() as usize, header.size));
            c = header.next;
        }
        if chunks.len() != self.chunk_count.get() {
            return false;
        }
        let mut seen = std::collections::HashSet::new();
        let mut node = self.free.get();
        while !node.is_null() {
            let addr = node as usize;
            let inside = chunks.iter().any(|&(base, size)| {
                addr >= base + self.first_offset
                    && addr + self.block_size <= base + size
                    && (addr - base - self.first_offset) % self.block_size == 0
            });
            if !inside || !seen.insert(addr) {
                return false;
            }
            // SAFETY: `node` was just checked to be a block of a live chunk.
            node = unsafe { (*node).next };
        }
        seen.len() + self.fresh_left.get() + self.live.get() == self.capacity.get()
    }

    /// Frees every chunk. Blocks still handed out become dangling.
    ///
    /// # Safety
    ///
    /// No block of this pool may be used afterwards.
    unsafe fn release_chunks(&self) {
        let mut c = self.chunks.replace(ptr::null_mut());
        while let Some(chunk) = NonNull::new(c) {
            // SAFETY: the list holds each live chunk once; the caller
            // guarantees no block is used afterwards.
            c = unsafe { chunk::release(chunk) };
        }
        self.free.set(ptr::null_mut());
        self.fresh.set(ptr::null_mut());
        self.fresh_left.set(0);
        self.live.set(0);
        self.chunk_count.set(0);
        self.reserved.set(0);
        self.capacity.set(0);
    }
}

/// The slow path of [`Pool::alloc`]: threads a batch of fresh blocks, adding
/// a chunk first if the newest one is used up, and returns the first block
/// (counted live), or null if the system allocator refuses.
///
/// `extern "C"` makes it provably non-unwinding, so callers keep their
/// values in registers across the call instead of preparing for a panic.
#[cold]
#[inline(never)]
extern "C" fn refill(pool: &Pool) -> *mut u8 {
    if pool.fresh_left.get() == 0 && !pool.grow() {
        return ptr::null_mut();
    }
    let size = pool.block_size;
    let n = pool.fresh_left.get().min((BATCH_BYTES / size).max(1));
    let first = pool.fresh.get();
    // Thread blocks 1..n onto the free list, in address order.
    let mut link = pool.free.get();
    let mut i = n;
    while i > 1 {
        i -= 1;
        // SAFETY: blocks 0..n of the fresh region lie inside the newest chunk
        // (`n <= fresh_left`), are aligned for a `FreeNode`, and are unused.
        let block = unsafe { first.add(i * size) }.cast::<FreeNode>();
        // SAFETY: as above.
        unsafe { block.write(FreeNode { next: link }) };
        link = block;
    }
    pool.free.set(link);
    // SAFETY: `n <= fresh_left`, so this is at most one past the last block.
    pool.fresh.set(unsafe { first.add(n * size) });
    pool.fresh_left.set(pool.fresh_left.get() - n);
    pool.live.set(pool.live.get() + 1);
    first
}

/// The pools of one manager, one per class of `C`, at a fixed heap address,
/// plus the fallback counters for typed system allocations.
pub(crate) struct Pools<C: SizeClasses> {
    /// `C::TABLE.len()` pools, from a leaked `Box<[Pool]>`.
    pools: NonNull<Pool>,
    /// From a leaked `Box<Fallback>`.
    fallback: NonNull<Fallback>,
    _classes: PhantomData<C>,
}

// SAFETY: `Pools` owns its pools, chunks and fallback counters outright;
// nothing in it is shared with another `Pools` or tied to a thread, so it may
// move to another thread. It is not `Sync`: the `Cell`s allow no concurrent use.
unsafe impl<C: SizeClasses> Send for Pools<C> {}

impl<C: SizeClasses> Pools<C> {
    /// One empty pool per class of `C`.
    pub(crate) fn new(config: ChunkConfig) -> Self {
        let pools: Box<[Pool]> = C::TABLE
            .sizes()
            .iter()
            .map(|&s| Pool::new(s, config))
            .collect();
        debug_assert_eq!(pools.len(), C::TABLE.len());
        Pools {
            // `Box::into_raw` never returns null.
            pools: NonNull::from(Box::leak(pools)).cast(),
            fallback: NonNull::from(Box::leak(Box::default())),
            _classes: PhantomData,
        }
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
        for pool in self.iter() {
            // SAFETY: the manager is being dropped, so no `PoolBox` borrowing
            // it exists and no block is used again.
            unsafe { pool.release_chunks() };
        }
        // SAFETY: as above, no typed system allocation is used again.
        unsafe { crate::system::free_all(self.fallback()) };
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
        let pools = Pools::<DefaultClasses>::new(SMALL);
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
        let pools = Pools::<DefaultClasses>::new(SMALL);
        let pool = pools.get(0);
        while pool.chunk_count() < 5 {
            pool.alloc().unwrap();
        }
        assert_eq!(pool.reserved(), 4096 + 8192 + 16384 + 16384 + 16384);
        assert!(pool.is_valid());
    }

    #[test]
    fn a_freed_block_is_reused_first() {
        let pools = Pools::<DefaultClasses>::new(SMALL);
        let pool = pools.get(1);
        let a = pool.alloc().unwrap();
        let _b = pool.alloc().unwrap();
        // SAFETY: `a` is live and freed once.
        unsafe { Pool::free(a) };
        assert_eq!(pool.alloc(), Some(a));
    }
}
