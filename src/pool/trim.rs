//! Giving memory back, and starting over: [`Pool::trim`] releases the
//! chunks with no live block, [`Pool::recycle`] forgets every block and
//! keeps the chunks (a reset, or a pool emptied after real use:
//! [`emptied`]), [`Pool::release_chunks`] frees them all (drop).

use core::ptr::{self, NonNull};

use super::chunk_header::{ChunkHeader, Link};
use super::{FreeNode, Pool};
use crate::fill;

impl Pool {
    /// Releases every chunk with no live block (spare chunks included) and
    /// returns the bytes given back. O(chunks + free blocks).
    pub(crate) fn trim(&self) -> usize {
        self.collect();
        if self.chunk_count.get() == 0 && !self.heap_record().chunks.holds_storage_only() {
            // Nothing to release: what the rest would do to a pool with no
            // chunk (most of a shared manager's classes, in every heap a
            // trim visits), and no chunk map's storage left to free.
            self.next_chunk_size.set(self.min_chunk_size);
            return 0;
        }
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
        let never_used_chunk = if self.never_used_left() > 0 {
            // SAFETY: `never_used` points at a never-used block of a live chunk.
            Some(unsafe { ChunkHeader::of(NonNull::new_unchecked(self.never_used.get())) })
        } else {
            None
        };
        // SAFETY: the spare list holds live chunks of this pool, its links
        // unchanged by the walk.
        for s in unsafe { ChunkHeader::list(self.spare.get(), Link::Spare) } {
            // SAFETY: a spare chunk of this pool: it holds no block ever
            // handed out, so it is released.
            unsafe { (*s.as_ptr()).scratch = usize::MAX };
        }
        for c in self.chunk_list() {
            // SAFETY: a live chunk of this pool, its fields read and written
            // in place (no `&mut` to a header another thread may be reading
            // the pool pointer of, for a remote free).
            let (scratch, blocks) = unsafe { ((*c.as_ptr()).scratch, (*c.as_ptr()).blocks) };
            if scratch == usize::MAX {
                continue;
            }
            let untouched = if Some(c) == never_used_chunk {
                self.never_used_left()
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
            // its chunk is live. The scratch word is read in place, with no
            // reference to the header: a reclaim on another thread may be
            // writing the header's `reclaim` word meanwhile.
            let (next, doomed) = unsafe {
                (
                    n.as_ref().next,
                    (*ChunkHeader::of(n.cast()).as_ptr()).scratch == usize::MAX,
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
        if never_used_chunk.is_some_and(|c| {
            // SAFETY: a live chunk of this pool, read in place (as above:
            // a reclaim may be writing its `reclaim` word).
            unsafe { (*c.as_ptr()).scratch == usize::MAX }
        }) {
            self.set_never_used(ptr::null_mut(), 0);
        }
        self.spare.set(ptr::null_mut());
        self.spare_blocks.set(0);
        // The used list keeps the chunks that stay.
        let is_doomed = |c: NonNull<ChunkHeader>| {
            // SAFETY: a live chunk of this pool.
            unsafe { (*c.as_ptr()).scratch == usize::MAX }
        };
        // SAFETY: the used list's head is the pool's, its chunks live chunks
        // of this pool whose links are the owner's; chunks are only unlinked
        // here, none released yet.
        unsafe { ChunkHeader::unlink_if(self.used.as_ptr(), Link::Spare, is_doomed) };
        // 4. Unlink them onto a list of their own, the pool's figures
        // following; then, the pool consistent without them, release them
        // (the system allocator may call this manager: the re-entrancy rule).
        let mut released = 0;
        let mut doomed: *mut ChunkHeader = ptr::null_mut();
        let take = |c: NonNull<ChunkHeader>| {
            if !is_doomed(c) {
                return false;
            }
            let h = c.as_ptr();
            // SAFETY: a live chunk of this pool whose link `unlink_if` has
            // read: it is ours to relink, onto `doomed`, once.
            let (size, blocks) = unsafe {
                (*h).next = doomed;
                ((*h).size, (*h).blocks as usize)
            };
            doomed = h;
            released += size;
            self.chunk_count.set(self.chunk_count.get() - 1);
            self.reserved.set(self.reserved.get() - size);
            self.capacity.set(self.capacity.get() - blocks);
            true
        };
        // SAFETY: the chunk list's head is the pool's, its chunks live chunks
        // of this pool whose links are the owner's; each doomed chunk moves
        // from the pool's list to `doomed` once.
        unsafe { ChunkHeader::unlink_if(self.chunks.as_ptr(), Link::Next, take) };
        // The chunk map forgets them now that the pool is consistent
        // without them (its storage may be freed: the allocator may call
        // this manager). With none doomed it has nothing to forget: the
        // call (its cache emptied, every chunk of the heap's header read)
        // for every class was over half of a shared trim's time. It still
        // runs on a map with storage and no chunk (a `reserve_one` for a
        // chunk that was then refused), whose storage it frees.
        let me = NonNull::from(self);
        let map = &self.heap_record().chunks;
        let map_bytes = if doomed.is_null() && !map.holds_storage_only() {
            0
        } else {
            map.remove_if(self.budget(), |c| {
                // SAFETY: the map holds only live chunks of this manager's
                // pools (the doomed ones still allocated, on `doomed`).
                let h = unsafe { c.cast::<ChunkHeader>().as_ref() };
                h.pool == me && h.scratch == usize::MAX
            })
        };
        self.budget().credit(released);
        if self.chunk_count.get() == 0 {
            // Bare again: the next chunk is the first size, as a new pool's
            // (a thread heap adopted after its owner's exit trimmed it, or a
            // class used in bursts, starts small instead of at the size its
            // last burst grew to).
            self.next_chunk_size.set(self.min_chunk_size);
        }
        self.release_list(doomed);
        released + map_bytes
    }

    /// Frees the chunks of a list linked through `next` (taken off the
    /// Frees the chunks of a list linked through `next` (taken off the
    /// pool, whose figures no longer count them).
    fn release_list(&self, list: *mut ChunkHeader) {
        // The remembered chunk may be one of these.
        self.last_blocks.set(ptr::null_mut());
        self.last_blocks_len.set(0);
        let kind = self.heap_record().kind;
        let source = kind.source;
        // SAFETY: the list holds live chunks of this pool that nothing refers
        // to any more, each once; the walk reads a chunk's link before it
        // yields the chunk, so the loop may free it.
        for chunk in unsafe { ChunkHeader::list(list, Link::Next) } {
            #[cfg(all(feature = "std", not(loom)))]
            {
                if kind.segment_map {
                    crate::segment_map::remove(chunk.cast());
                }
                // A shared manager's thread heap keeps it for the next
                // heaps, if its cache has room.
                // SAFETY: a heap kind's chunk cache is null or the
                // manager's, alive while its heaps' pools are.
                if let Some(cache) = unsafe { kind.chunk_cache.as_ref() } {
                    // SAFETY: a live chunk's header: its fixed size.
                    let size = unsafe { (*chunk.as_ptr()).size };
                    // Kept chunks count against the manager's budget as
                    // the pools' do (the pool credited this one's bytes):
                    // charged again here, to the shared budget (no heap's:
                    // another heap takes it), or the chunk goes back to the
                    // system.
                    let shared = self.budget().shared();
                    if shared.is_none_or(|b| b.charge(size).is_ok()) {
                        // SAFETY: the chunk was allocated with its size's
                        // layout from this source and is no one's now (its
                        // blocks all free, off every list and map).
                        if unsafe { cache.give(chunk.cast(), size) } {
                            continue;
                        }
                        if let Some(b) = shared {
                            b.credit(size);
                        }
                    }
                }
            }
            // SAFETY: as above: released once, and none of its blocks is
            // used again.
            unsafe { ChunkHeader::release(chunk, source) };
        }
    }

    /// Forgets every block at once and keeps every chunk as never-used
    /// capacity: the chunks used since the last recycle go back to the front
    /// of the spare list, in the order they were first used (a trim releases
    /// them). Every block still handed out counts as freed. O(chunks used
    /// since the last recycle), no call to the system allocator; O(1) if
    /// none was.
    ///
    /// With `debug-fill`, first looks for a free block written after it was
    /// freed (the bump that hands the blocks out again does not check), and
    /// returns it for the caller to panic with once everything is in order.
    ///
    /// # Safety
    ///
    /// No block of this pool handed out before may be used afterwards.
    #[must_use]
    #[inline]
    pub(crate) unsafe fn recycle(&self) -> Option<fill::Written> {
        if self.used.get().is_null() {
            // No chunk has left the spare list since the pool was made, last
            // recycled or last trimmed bare, and every block is handed out of
            // a used chunk: none is free, remote or live now, every chunk is
            // spare. `held` is `guard` but in a shared manager's pool whose
            // owner collected the blocks other threads freed and then
            // trimmed away every chunk: it still counts those remote frees
            // (as `tally` counts the collection blocks among them), which a
            // recycle forgets with every block, as `forget_blocks` does.
            debug_assert!(self.free.get().is_null() && self.never_used_left() == 0);
            debug_assert_eq!(self.spare_blocks.get(), self.capacity.get());
            self.guard.set(1);
            self.set_held(1);
            self.tally.set(0);
            return None;
        }
        // SAFETY: the caller's guarantee.
        unsafe { self.recycle_used() }
    }

    /// [`recycle`](Self::recycle) of a pool with a used chunk, out of line.
    ///
    /// # Safety
    ///
    /// As [`recycle`](Self::recycle).
    #[must_use]
    #[inline(never)]
    unsafe fn recycle_used(&self) -> Option<fill::Written> {
        let written = if cfg!(feature = "debug-fill") {
            self.free_list().find_map(|n| {
                // SAFETY: a free block of this pool, filled when it was freed.
                unsafe { fill::written(n.cast(), self.block_size) }
            })
        } else {
            None
        };
        self.peak.set(self.peak());
        let used = self.used.replace(ptr::null_mut());
        // SAFETY: the used list held live chunks of this pool; the walk reads
        // a chunk's link before it yields the chunk, so the loop may relink
        // it.
        for chunk in unsafe { ChunkHeader::list(used, Link::Spare) } {
            // SAFETY: a live chunk of this pool, off the used list: it moves
            // to the spare list (the newest used goes first, so the oldest
            // ends up in front).
            let blocks = unsafe {
                (*chunk.as_ptr()).spare_next = self.spare.get();
                (*chunk.as_ptr()).blocks as usize
            };
            self.spare_blocks.set(self.spare_blocks.get() + blocks);
            self.spare.set(chunk.as_ptr());
        }
        debug_assert_eq!(self.spare_blocks.get(), self.capacity.get());
        // SAFETY: every chunk is spare, so every block is never used; no
        // block handed out before is used again (the caller's guarantee, or
        // `held` reached zero, which a block pushed by another thread and
        // not yet collected would keep above zero: no remote free is on the
        // inbound list or in flight).
        unsafe { self.forget_blocks() };
        written
    }

    /// Frees every chunk if no block of the pool is live or owed — `held`
    /// is `guard`: none handed out and not freed, none freed by another
    /// thread and counted in its `remote_out` (so none on the inbound list,
    /// and no chunk emptied by a reclaim) — and returns the bytes; else
    /// does nothing and returns 0. O(chunks): no walk of the free list or
    /// of the inbound list (what a thread's exit uses). Owner only; a
    /// pool of a heap without a chunk map (a shared manager's thread heap:
    /// the map would keep the chunks' entries).
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // the shared manager's
    pub(crate) fn release_if_empty(&self) -> usize {
        debug_assert!(!self.heap_record().kind.map);
        let bytes = self.reserved.get();
        if bytes == 0 || self.held() != self.guard.get() {
            return 0;
        }
        // (The tally stays, as in `emptied`: collection blocks other threads
        // freed into the pool and counted in their `tally_out`.)
        let tally = self.tally.get();
        // SAFETY: no block of the pool is live (`held` is `guard`), so none
        // is used afterwards, and none is on its way to the inbound list (a
        // remote free is of a live block).
        unsafe { self.release_chunks() };
        self.tally.set(tally);
        self.next_chunk_size.set(self.min_chunk_size);
        bytes
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
        // SAFETY: no block is used afterwards (the caller), and the chunks
        // are taken off every list just below.
        unsafe { self.forget_blocks() };
        self.spare.set(ptr::null_mut());
        self.used.set(ptr::null_mut());
        self.spare_blocks.set(0);
        self.chunk_count.set(0);
        self.reserved.set(0);
        self.capacity.set(0);
        // The pool is empty and consistent: the chunks go last (the
        // caller guarantees no block is used afterwards).
        self.release_list(chunks);
    }

    /// Forgets every block: none is live, free, remote or never used any
    /// more, and the counts start over as a new pool's (`guard` 1); the
    /// chunks stay where they are. What [`recycle`](Self::recycle) and
    /// [`release_chunks`](Self::release_chunks) both reset, written once.
    ///
    /// # Safety
    ///
    /// No block of this pool handed out before may be used afterwards, no
    /// remote free may be in flight, and before the pool is used again its
    /// chunks must all be spare (`recycle`) or gone (`release_chunks`).
    unsafe fn forget_blocks(&self) {
        self.remote.inbound.clear();
        self.remote.emptied.clear();
        self.free.set(ptr::null_mut());
        self.set_never_used(ptr::null_mut(), 0);
        self.guard.set(1);
        self.set_held(1);
        self.tally.set(0);
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
pub(super) fn emptied(pool: &Pool) {
    // A shared manager's collection blocks freed into this pool by other
    // threads (all taken back in emptied chunks, or `held` would not be 0)
    // are still in `tally`, as they are in the freeing threads' `tally_out`:
    // the tally stays. (Otherwise it is 0: no block is live.)
    let tally = pool.tally.get();
    // SAFETY: no block of the pool is live (`held` is 0 with `guard` 0), so
    // none handed out before may be used again.
    let written = unsafe { pool.recycle() };
    pool.tally.set(tally);
    if let Some(written) = written {
        // (The pool is recycled already: it carries on after the panic.)
        written.panic();
    }
}

#[cfg(test)]
mod tests {
    use super::super::SMALL;
    use super::*;
    use crate::DefaultClasses;
    use alloc::vec::Vec;

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
        // A big batch makes many chunks; emptied, it is recycled. (Under
        // Miri 500 blocks, four chunks, still twice the two the small
        // batches use: 2,000 allocations and frees twice were most of 9 s.)
        let (count, min_chunks) = if cfg!(miri) { (500, 4) } else { (2000, 6) };
        let big = batch(pools.get(3), count); // 62 blocks in the first chunk
        let chunks = pools.get(3).chunk_count();
        assert!(chunks >= min_chunks && pools.get(3).is_valid());
        // Small batches (just over the first chunk) recycle only the two
        // chunks they used, and keep the order the big batch had.
        for _ in 0..3 {
            assert_eq!(batch(pools.get(3), 100), big[..100]);
            assert!(pools.get(3).is_valid());
        }
        assert_eq!(batch(pools.get(3), count), big);
        // Reset and trim keep the lists whole.
        let _live = pools.get(3).alloc().unwrap();
        assert!(pools.reset().is_none());
        let pool = pools.get(3);
        assert!(pool.is_valid());
        assert_eq!(batch(pool, 100), big[..100]);
        assert!(pool.trim() > 0 && pool.is_valid());
        assert_eq!(pool.chunk_count(), 0);
    }

    /// A reset frees the live allocations above the classes and keeps the
    /// freed ones the large path kept for reuse, as the pools keep their
    /// chunks, whatever their order on the large path's list.
    #[test]
    fn a_reset_keeps_the_large_allocations_kept_for_reuse() {
        if cfg!(feature = "pass-through") {
            return; // nothing is kept
        }
        let mut mm = crate::MemoryManager::new();
        // Nothing live: the kept ones stay, the reset walks nothing.
        drop(mm.alloc([1u64; 75])); // 600 bytes: above every class
        let kept = mm.stats().system.cached_bytes;
        assert!(kept > 0);
        mm.reset();
        assert_eq!(mm.stats().system.cached_bytes, kept);
        // Live ones before, between and after kept ones on the list (of
        // boxes, a checked block and a collection's buffer).
        crate::PoolBox::leak(mm.alloc([2u8; 2000]));
        drop(mm.alloc([3u8; 3000]));
        let _block = mm.alloc_block(4000).unwrap();
        drop(mm.alloc([4u8; 5000]));
        #[cfg(feature = "allocator-api2")]
        core::mem::forget(allocator_api2::vec::Vec::<u8, _>::with_capacity_in(
            6000, &mm,
        ));
        let kept = mm.stats().system.cached_bytes;
        mm.reset();
        let s = mm.stats();
        assert_eq!(
            (s.live(), s.system.bytes, s.system.cached_bytes),
            (0, 0, kept)
        );
        assert!(mm.is_consistent());
        // They serve the next allocations, then a trim gives them back.
        for _ in 0..2 {
            let a = mm.alloc([5u64; 75]);
            let b = mm.alloc([6u8; 3000]);
            assert_eq!((a[74], b[2999]), (5, 6));
            assert!(mm.stats().system.cached_bytes < kept);
            drop((a, b));
            mm.reset();
            assert_eq!(mm.stats().system.cached_bytes, kept);
        }
        assert!(mm.trim() >= kept);
        assert_eq!(mm.stats().reserved_bytes(), 0);
    }
}
