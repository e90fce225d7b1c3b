//! The cold slow path: when the free list is empty and either other threads
//! freed blocks into the pool or the newest chunk is used up — the blocks
//! other threads freed, else the next spare chunk, else a new one
//! from the system (each twice the last, up to the cap, within the budget);
//! then the bump of the fast path hands out its first block. And
//! [`Pool::reserve`], which makes spare chunks ahead.

use core::ptr::{self, NonNull};

use super::chunk_header::ChunkHeader;
use super::Pool;
use crate::chunk;
use crate::Error;

/// The slow path of [`Pool::alloc`]: hands out the next never-used block,
/// moving to a spare or new chunk first if the newest one is used up, or
/// says why the system allocator or the budget refused one.
#[cold]
#[inline(never)]
pub(super) fn refill(pool: &Pool) -> Result<NonNull<u8>, Error> {
    // Blocks other threads freed come before never-used blocks and another
    // chunk: a thread that only allocates, fed by one that only frees,
    // reuses its blocks, and touches no new memory while it can. (At a
    // page's first block, with never-used blocks left, only if some were
    // freed: the list is looked at before it is taken.)
    let used_up = pool.never_used.get().addr() == pool.never_used_end.get();
    if (used_up || !pool.remote.inbound.is_empty()) && pool.collect() && !pool.free.get().is_null()
    {
        return pool.alloc();
    }
    if used_up {
        pool.next_never_used_chunk()
            .map_err(|e| e.refusing(pool.block_size, pool.name()))?;
    }
    pool.bump_limit.set(pool.next_bump_limit());
    // SAFETY: a never-used block is left: one was, or `next_never_used_chunk` just
    // gave the pool a chunk's never-used blocks (a chunk holds at least
    // one block: `Pool::new` makes the smallest chunk fit one).
    Ok(unsafe { pool.bump() })
}

impl Pool {
    /// Where the blocks of a chunk of `size` bytes start, and how many
    /// there are: after the header, aligned to the blocks' natural
    /// alignment.
    fn geometry(&self, size: usize) -> (usize, usize) {
        (
            self.first_offset,
            (size - self.first_offset) / self.block_size,
        )
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
        let heap_record = self.heap_record();
        let mapped = heap_record.kind.map;
        if mapped {
            heap_record.chunks.reserve_one(&heap_record.budget)?;
        }
        let size = self
            .budget()
            .charge_up_to(self.next_chunk_size.get(), self.min_chunk_size)?;
        let geometry = self.geometry(size);
        let source = heap_record.kind.source;
        // A shared manager's thread heap takes an empty chunk its threads
        // gave back, if one of this size is kept (its pages in memory).
        #[cfg(all(feature = "std", not(loom)))]
        // SAFETY: a heap kind's chunk cache is null or the manager's, which
        // outlives its heaps' pools.
        let cached = unsafe { heap_record.kind.chunk_cache.as_ref() }.and_then(|c| c.take(size));
        // (A kept chunk was charged to the shared budget when kept; this
        // pool charged it again above.)
        #[cfg(all(feature = "std", not(loom)))]
        if let (Some(_), Some(shared)) = (cached, self.budget().shared()) {
            shared.credit(size);
        }
        #[cfg(not(all(feature = "std", not(loom))))]
        let cached = None;
        let Some(chunk) =
            ChunkHeader::allocate(NonNull::from(self), source, size, geometry, cached)
        else {
            self.budget().credit(size);
            // The chunk's figures, not the value's: that is what was refused.
            return Err(Error::OutOfMemory {
                size,
                align: chunk::SEGMENT,
            });
        };
        let entered = if mapped {
            heap_record.chunks.insert(chunk.cast(), &heap_record.budget)
        } else {
            Ok(())
        };
        // A shared manager's thread heap enters it in the segment map
        // (allocating a leaf from the system allocator, never the global
        // one); past 2^48, or with no leaf, the chunk is refused.
        #[cfg(all(feature = "std", not(loom)))]
        let entered = entered.and_then(|()| {
            if !heap_record.kind.segment_map || crate::segment_map::insert(chunk.cast()) {
                Ok(())
            } else {
                Err(Error::OutOfMemory {
                    size,
                    align: chunk::SEGMENT,
                })
            }
        });
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
    fn next_never_used_chunk(&self) -> Result<(), Error> {
        if self.spare.get().is_null() {
            self.add_spare(self.new_chunk()?);
            if self.never_used_left() > 0 {
                // A call the system allocator made into this manager moved
                // the pool to a chunk of its own meanwhile (the re-entrancy
                // rule): that one's blocks first, ours stays spare.
                return Ok(());
            }
        }
        if !self.never_used.get().is_null() {
            // A chunk's never-used blocks ran out since the last recycle:
            // the pool is no longer small (see `guard`).
            self.set_held(self.held() - self.guard.replace(0));
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
        self.set_never_used(
            unsafe { chunk.as_ptr().cast::<u8>().add(first as usize) },
            blocks as usize,
        );
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
        free.max(listed + self.never_used_left() + self.spare_blocks.get())
    }
}

#[cfg(test)]
mod tests {
    use super::super::SMALL;
    use crate::DefaultClasses;

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
}
