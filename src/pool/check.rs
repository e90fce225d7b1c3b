//! The invariant walker: [`Pool::is_valid`] checks the invariant and the
//! accounting identity stated on [`Pool`], walking every list. Not a test
//! helper: the public `MemoryManager::is_consistent` and
//! `SharedManager::is_consistent` call it, so it is compiled always — in a
//! file of its own, away from the paths it checks.

use alloc::vec::Vec;
use core::ptr::NonNull;

use super::chunk_header::{ChunkHeader, Link};
use super::Pool;

impl Pool {
    /// Checks the pool's invariants by walking the free list: every node is
    /// one of the blocks of one of the pool's chunks, no node repeats, and
    /// free + never-used + live blocks add up to the capacity.
    /// O(chunks log chunks + free log chunks).
    pub(crate) fn is_valid(&self) -> bool {
        // (first block, end of the last) of each chunk.
        let mut chunks = Vec::new();
        for c in self.chunk_list() {
            if chunks.len() == self.chunk_count.get() {
                return false; // more chunks than counted
            }
            // SAFETY: the chunk list holds only live chunks of this pool.
            let header = unsafe { c.as_ref() };
            if header.pool != NonNull::from(self) || header.slot != self.remote.thread_slot {
                return false;
            }
            let blocks = header.blocks as usize * self.block_size;
            if header.first as usize + blocks > header.size {
                return false;
            }
            let first = c.as_ptr().addr() + header.first as usize;
            chunks.push((first, first + blocks));
        }
        if chunks.len() != self.chunk_count.get() {
            return false;
        }
        // By address: a block's chunk is the last one starting at or below
        // it. (Chunks are distinct allocations: no two overlap.)
        chunks.sort_unstable();
        // Every node is one of the `capacity` blocks: so a list of more
        // nodes than that has one twice, and a list of no more has none
        // twice (a node twice, the walk goes round for ever). The count
        // tells both, and ends the walk of a cycle.
        let mut free = 0;
        for n in self.free_list() {
            if free == self.capacity.get() {
                return false; // a node twice
            }
            let addr = n.as_ptr().addr();
            let at = chunks.partition_point(|&(first, _)| first <= addr);
            let inside = at > 0 && {
                let (first, end) = chunks[at - 1];
                addr < end && (addr - first) % self.block_size == 0
            };
            if !inside {
                return false;
            }
            free += 1;
        }
        // Every chunk is on the spare list or the used list, once.
        let mut on_lists = Vec::new();
        let mut spare_blocks = 0;
        for (head, spare) in [(self.spare.get(), true), (self.used.get(), false)] {
            // SAFETY: both lists hold live chunks of this pool, their links
            // unchanged by the walk.
            for c in unsafe { ChunkHeader::list(head, Link::Spare) } {
                if on_lists.len() == chunks.len() {
                    return false; // more than every chunk: one twice, or a cycle
                }
                // SAFETY: as above.
                let (first, blocks) = unsafe { ((*c.as_ptr()).first, (*c.as_ptr()).blocks) };
                if spare {
                    spare_blocks += blocks as usize;
                }
                // (Keyed as `chunks` is: by the first block's address.)
                on_lists.push(c.as_ptr().addr() + first as usize);
            }
        }
        on_lists.sort_unstable();
        let lists_ok = on_lists.len() == chunks.len()
            && on_lists
                .iter()
                .zip(&chunks)
                .all(|(&a, &(first, _))| a == first)
            && spare_blocks == self.spare_blocks.get();
        // The never-used blocks end a whole number of blocks past the next
        // one, and the bump stops at or before their end.
        let (next, end) = (self.never_used.get().addr(), self.never_used_end.get());
        let bump_ok =
            next <= end && (end - next) % self.block_size == 0 && self.bump_limit.get() <= end;
        lists_ok && bump_ok && self.accounting(free)
    }

    /// Whether `free` free blocks, the never-used ones and the live ones add
    /// up to the capacity. (A shared manager's pool counts as live the blocks
    /// other threads freed into it, which the freeing threads counted: it
    /// checks the sum over its heaps instead: see the identity on [`Pool`].)
    fn accounting(&self, free: usize) -> bool {
        !self.remote.owner.is_null()
            || free + self.never_used_left() + self.spare_blocks.get() + self.live()
                == self.capacity.get()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FreeNode, Pool, SMALL};
    use crate::DefaultClasses;
    use alloc::vec::Vec;
    use core::ptr::{self, NonNull};

    #[test]
    fn a_corrupt_free_list_is_refused_and_its_walk_ends() {
        let pools = crate::heap::Heap::<DefaultClasses>::new(SMALL, None, None);
        let pool = pools.get(3); // 64 bytes
        let blocks: Vec<NonNull<u8>> = (0..100).map(|_| pool.alloc().unwrap()).collect();
        for b in &blocks[..10] {
            // SAFETY: each block is live and freed once.
            unsafe { Pool::free(*b) };
        }
        assert!(pool.is_valid());
        // The head is the last block freed; its link the one before.
        let head = blocks[9].cast::<FreeNode>();
        assert_eq!(pool.free.get(), head.as_ptr());
        // SAFETY: a free block's first word is its link (the pool's, read
        // and written here by its owner, the test).
        let link = unsafe { head.as_ref().next };
        // A live block with a null first word, and one 8 bytes into it.
        let live = blocks[20];
        // SAFETY: a live block of 64 bytes, ours.
        unsafe { ptr::write_bytes(live.as_ptr(), 0, 64) };
        let mut outside = FreeNode {
            next: ptr::null_mut(),
        };
        // The tail, the first block freed, links to nothing.
        let tail = blocks[0].cast::<FreeNode>();
        let cases: [(NonNull<FreeNode>, *mut FreeNode, &str); 6] = [
            (head, head.as_ptr(), "a cycle of one"),
            (tail, blocks[5].as_ptr().cast(), "a cycle of six"),
            (head, blocks[5].as_ptr().cast(), "three free blocks skipped"),
            (head, live.as_ptr().cast(), "a live block"),
            (
                head,
                live.as_ptr().wrapping_add(8).cast(),
                "not a block boundary",
            ),
            (head, &raw mut outside, "in no chunk"),
        ];
        for (node, bad, what) in cases {
            // SAFETY: as above (`node` is a free block).
            let kept = unsafe { ptr::replace(&raw mut (*node.as_ptr()).next, bad) };
            assert!(!pool.is_valid(), "{what}");
            // SAFETY: as above.
            unsafe { (*node.as_ptr()).next = kept };
            assert!(pool.is_valid(), "{what}, mended");
        }
        assert_eq!(link, blocks[8].as_ptr().cast());
        for b in &blocks[10..] {
            // SAFETY: each block is live and freed once.
            unsafe { Pool::free(*b) };
        }
        assert!(pool.is_valid());
        assert_eq!(pool.live(), 0);
    }
}
