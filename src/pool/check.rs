//! The invariant walker: [`Pool::is_valid`] checks the invariant and the
//! accounting identity stated on [`Pool`], walking every list. Not a test
//! helper: the public `MemoryManager::is_consistent` and
//! `SharedManager::is_consistent` call it, so it is compiled always — in a
//! file of its own, away from the paths it checks.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::ptr::NonNull;

use super::chunk_header::{ChunkHeader, Link};
use super::Pool;

impl Pool {
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
        let mut seen = BTreeSet::new();
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
            // SAFETY: both lists hold live chunks of this pool, their links
            // unchanged by the walk.
            unsafe { ChunkHeader::list(head, Link::Spare) }.map(|c| {
                // SAFETY: as above.
                (c.as_ptr().addr(), unsafe { (*c.as_ptr()).blocks } as usize)
            })
        };
        let mut on_lists = BTreeSet::new();
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
        // The bump stops at or before the end of the never-used blocks.
        let bump_ok = self.bump_limit.get()
            <= self.never_used.get().addr() + self.never_used_left.get() * self.block_size;
        lists_ok && bump_ok && self.accounting(seen.len())
    }

    /// Whether `free` free blocks, the never-used ones and the live ones add
    /// up to the capacity. (A shared manager's pool counts as live the blocks
    /// other threads freed into it, which the freeing threads counted: it
    /// checks the sum over its heaps instead: see the identity on [`Pool`].)
    fn accounting(&self, free: usize) -> bool {
        !self.remote.owner.is_null()
            || free + self.never_used_left.get() + self.spare_blocks.get() + self.live()
                == self.capacity.get()
    }
}
