//! Remote frees: what threads other than a pool's owner touch, and the
//! owner's side of it.
//!
//! Only a shared manager's pools (the `std` feature, `shared/`) are freed
//! into from other threads; a `MemoryManager`'s are [`UNOWNED`] and never
//! see a remote free. The owner's [`Pool::collect`] is on every pool's slow
//! path (it finds `inbound` empty unless the pool is shared), so it is
//! always compiled; the rest is used by the shared manager alone and is
//! compiled with it.

use core::ptr::NonNull;

use super::chunk_header::{ChunkHeader, Link};
use super::{FreeNode, Pool};
use crate::sync::Inbound;
#[cfg(feature = "std")]
use crate::{fill, source};

/// The part of a [`Pool`] that threads other than its owner read and write,
/// alone on a 128-byte line (two 64-byte cache lines: the adjacent-line
/// prefetcher fetches pairs).
#[repr(C, align(128))]
#[derive(Debug)]
pub(super) struct Remote {
    /// Blocks freed by other threads (a shared manager's remote frees),
    /// taken by the owner when its free list is empty, before it hands out
    /// a never-used block or takes another chunk (a non-empty list sends
    /// the allocation to the slow path: a load the bump makes, on this
    /// line).
    pub(super) inbound: Inbound,
    /// Chunks whose every block a [`reclaim`](Pool::reclaim) found on
    /// `inbound` (remote-emptied chunks, their pages given back to the
    /// system), each as one of its blocks, linked through that block's first
    /// word: the owner takes them back as spare chunks in
    /// [`collect`](Pool::collect).
    pub(super) emptied: Inbound,
    /// The thread slot whose holder owns the pool (see `thread.rs`), or
    /// [`UNOWNED`]: a free on that thread pushes the free list, a free on any
    /// other pushes `inbound`. Fixed when the pool is made.
    pub(super) thread_slot: u32,
    /// The pool's index among its heap's classes.
    pub(super) class: u32,
    /// The shared manager's state the heap belongs to, or null.
    pub(super) owner: *const (),
}

/// [`Remote::thread_slot`] of a pool no thread owns: a `MemoryManager`'s (used by one
/// thread at a time, which frees through the free list directly), or a
/// shared manager's central pools (used under its lock).
pub(crate) const UNOWNED: u32 = u32::MAX - 2;

impl Pool {
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
        if !self.remote.emptied.is_empty() {
            self.take_emptied();
        }
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
}

impl Pool {
    /// Takes back the chunks a [`reclaim`](Pool::reclaim) on another thread
    /// found remote-emptied: each leaves the used list for the front of the
    /// spare list, its blocks never used again. Those blocks were counted
    /// live in `held` (remote frees) and freed in the freeing threads'
    /// `remote_out`: they leave `held` for `reclaimed`. Owner only.
    #[cold]
    #[inline(never)]
    fn take_emptied(&self) {
        /// A chunk's `scratch` while it is being taken back.
        const TAKING: usize = usize::MAX - 1;
        // The blocks handed out from these chunks were all live at once:
        // the peak keeps them once they are spare again.
        self.peak.set(self.peak());
        let mut taken = 0;
        let mut node = self.remote.emptied.take();
        while let Some(n) = NonNull::new(node) {
            // SAFETY: `take` returned a list of blocks pushed by `reclaim`:
            // one free block of each emptied chunk, a live chunk of this pool
            // (its blocks all free, none handed out again), its link visible
            // to us (the `Acquire` of `take`). The scratch word is the
            // owner's, and no trim is under way.
            unsafe {
                node = *n.cast::<*mut u8>().as_ptr();
                (*ChunkHeader::of(n).as_ptr()).scratch = TAKING;
            }
            taken += 1;
        }
        let mut blocks = 0;
        let spare = &self.spare;
        let move_to_spare = |c: NonNull<ChunkHeader>| {
            let h = c.as_ptr();
            // SAFETY: a live chunk of this pool on the used list, whose link
            // `unlink_if` has read; the scratch word and links are the owner's.
            unsafe {
                if (*h).scratch != TAKING {
                    return false;
                }
                (*h).scratch = 0;
                (*h).spare_next = spare.get();
                blocks += (*h).blocks as usize;
            }
            spare.set(h);
            taken -= 1;
            true
        };
        // SAFETY: the used list's head is the pool's, its chunks live chunks
        // of this pool whose links are the owner's. Every emptied chunk is
        // on it: its blocks were all handed out (never-used blocks are never
        // freed), and a recycle, which would move it to the spare list,
        // needs `held` at zero, which the emptied blocks keep above zero.
        unsafe { ChunkHeader::unlink_if(self.used.as_ptr(), Link::Spare, move_to_spare) };
        debug_assert_eq!(taken, 0, "an emptied chunk was not on the used list");
        self.spare_blocks.set(self.spare_blocks.get() + blocks);
        self.set_held(self.held() - blocks);
        self.reclaimed.set(self.reclaimed.get() + blocks);
        if self.used.get().is_null() {
            // Every chunk is spare: no block is handed out, free, remote or
            // never used (those are all in used chunks). `held` is `guard`
            // plus one for every remote free of a block handed out again
            // after it (a remote free never leaves `held`, and a reclaim
            // subtracts each block once): the freeing threads still count
            // those in `remote_out`, so they move to `reclaimed` too, and
            // the pool is as a recycle leaves it, and says so.
            debug_assert!(self.free.get().is_null() && self.never_used_left() == 0);
            debug_assert!(self.held() >= self.guard.get());
            let again = self.held() - self.guard.get();
            self.reclaimed.set(self.reclaimed.get() + again);
            self.set_never_used(core::ptr::null_mut(), 0);
            self.guard.set(1);
            self.set_held(1);
        }
    }
}

/// The shared manager's side: remote frees, and the counts and figures they
/// need.
#[cfg(feature = "std")]
impl Pool {
    /// Frees `block` from a thread other than the pool's owner: one push on
    /// the pool at `pool`'s [`Inbound`] list, which the owner collects on
    /// its slow path. The pool's counters are the owner's and stay as they
    /// are.
    ///
    /// The pool comes as a pointer, not `&self`: once the block is on the
    /// list its owner may collect it, release its chunk and free the heap
    /// the pool is in (a shared manager's thread heap freed at exit), while
    /// this call has not returned yet. A `&Pool` argument would be asserted
    /// valid for the whole call (Miri's protectors; LLVM's
    /// `dereferenceable`); only the list, all atomic (an `UnsafeCell`, which
    /// a reference does not pin so), is borrowed across the push.
    ///
    /// # Safety
    ///
    /// `pool` must be a live pool and `block` a live block of it, as for
    /// [`Pool::free`]; any thread may call it. The caller must not touch the
    /// pool afterwards.
    #[inline]
    pub(crate) unsafe fn push_remote(pool: NonNull<Pool>, block: NonNull<u8>) {
        let p = pool.as_ptr();
        // SAFETY: `block` is a block of this live pool its owner gave back
        // (the caller), so the pool and the block's chunk stay until the
        // push publishes it, its `block_size` bytes are ours until then, and
        // its first word (blocks are at least 8 bytes, aligned to 8) holds
        // the link. The field read is a copy; the one reference made is to
        // the list.
        unsafe {
            fill::freed(block, (*p).block_size);
            let inbound: &Inbound = &(*p).remote.inbound;
            inbound.push(block);
        }
    }

    /// Blocks of this class that the pool's owner freed into other heaps'
    /// pools (remote frees it made), counted for the shared manager's
    /// figures.
    #[inline]
    pub(crate) fn remote_out(&self) -> usize {
        self.remote_out.get()
    }

    /// Counts one remote free made by this pool's owner (see
    /// [`remote_out`](Self::remote_out)). Owner only.
    #[inline]
    pub(crate) fn count_remote_out(&self) {
        self.remote_out.set(self.remote_out.get() + 1);
    }

    /// Remote frees into this pool that `held` no longer counts (see
    /// [`reclaim`](Self::reclaim)): one for each block the owner took back
    /// in remote-emptied chunks, and, when every chunk of the pool came back
    /// so, the earlier remote frees of blocks handed out again after them
    /// (`held` counts every remote free, a reclaim each block once). The
    /// freeing threads counted all of them in their `remote_out`.
    #[inline]
    pub(crate) fn reclaimed(&self) -> usize {
        self.reclaimed.get()
    }

    /// Collection blocks of this class that the pool's owner freed into
    /// other heaps' pools: those pools' `tally` still counts them, and a
    /// shared manager's figures subtract these counts (as with
    /// [`remote_out`](Self::remote_out)).
    #[inline]
    pub(crate) fn tally_out(&self) -> usize {
        self.tally_out.get()
    }

    /// Counts one collection block freed into another heap's pool by this
    /// pool's owner (see [`tally_out`](Self::tally_out)). Owner only.
    #[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // the `Allocator` impl's
    #[inline]
    pub(crate) fn count_tally_out(&self) {
        self.tally_out.set(self.tally_out.get() + 1);
    }

    /// Forgets the remote frees counted, both ways (a reset: every block is
    /// free).
    pub(crate) fn clear_remote_out(&self) {
        self.remote_out.set(0);
        self.reclaimed.set(0);
        self.tally_out.set(0);
    }

    /// Gives back to the system the pages of the chunks whose every block
    /// other threads freed, from any thread, while the owner runs: takes
    /// the remote-free list, finds the chunks all of whose blocks are on it,
    /// gives their pages back (all but the header's and one block's) and
    /// hands them to the owner on `remote.emptied`, to take back as spare
    /// chunks; the other blocks go back on the remote-free list. Returns
    /// the bytes given back. O(blocks on the list).
    ///
    /// What makes it safe while the owner runs: a block on the remote-free
    /// list is in no structure of the owner's (not live, not on its free
    /// list, not never used), so a chunk all of whose blocks were taken is
    /// one the owner reaches only through its chunk lists' links and
    /// fixed header fields, which this leaves alone; and it cannot release
    /// or recycle the chunk meanwhile (its `trim` releases only chunks whose
    /// blocks are all on its own free list, and a recycle needs `held` at
    /// zero, which the remote blocks keep above zero).
    ///
    /// # Safety
    ///
    /// The pool must be a live shared manager's thread-heap pool, alive for
    /// the call, and no other `reclaim` of it may run at once (the manager's
    /// central lock serialises them).
    pub(crate) unsafe fn reclaim(&self) -> usize {
        let taken = self.remote.inbound.take();
        let walk = |head: *mut u8| {
            let mut node = head;
            core::iter::from_fn(move || {
                let n = NonNull::new(node)?;
                // SAFETY: a node of a list we hold (taken, or built below
                // from taken nodes): a free block whose first word is its
                // link, read before the node is yielded (and so before the
                // caller relinks it).
                node = unsafe { *n.cast::<*mut u8>().as_ptr() };
                Some(n)
            })
        };
        // 1. Count the taken blocks of each chunk.
        for n in walk(taken) {
            // SAFETY: a remote block of this pool lies in a live chunk of it;
            // `reclaim` is the header's reclaimer's alone (one at a time).
            unsafe { (*ChunkHeader::of(n).as_ptr()).reclaim += 1 };
        }
        // 2. Split: one block of each chunk whose blocks are all here goes
        // on `emptied` (the chunk marked done), the other blocks of those
        // chunks are dropped, the rest are kept in their order.
        let (mut kept, mut kept_tail) = (core::ptr::null_mut::<u8>(), None::<NonNull<u8>>);
        let mut emptied = core::ptr::null_mut::<u8>();
        for n in walk(taken) {
            // SAFETY: as in 1; `n`'s link was read (the walk), so `n` is ours
            // to relink.
            unsafe {
                let h = ChunkHeader::of(n).as_ptr();
                let count = (*h).reclaim;
                if count == (*h).blocks as usize {
                    (*h).reclaim = usize::MAX;
                    *n.cast::<*mut u8>().as_ptr() = emptied;
                    emptied = n.as_ptr();
                } else if count != usize::MAX {
                    match kept_tail {
                        Some(t) => *t.cast::<*mut u8>().as_ptr() = n.as_ptr(),
                        None => kept = n.as_ptr(),
                    }
                    kept_tail = Some(n);
                }
            }
        }
        // 3. The counts back to 0; the emptied chunks' pages given back.
        let mut released = 0;
        if let Some(t) = kept_tail {
            // SAFETY: the kept chain ends at `t`: its link is ours to end.
            unsafe { *t.cast::<*mut u8>().as_ptr() = core::ptr::null_mut() };
        }
        for n in walk(kept) {
            // SAFETY: as in 1.
            unsafe { (*ChunkHeader::of(n).as_ptr()).reclaim = 0 };
        }
        let mut emptied_tail = None;
        for n in walk(emptied) {
            emptied_tail = Some(n);
            // SAFETY: as in 1. Every block of the chunk is free and ours
            // (all were taken), the owner reaches none of them, and the
            // header and `n` (the link) are kept.
            unsafe {
                let h = ChunkHeader::of(n).as_ptr();
                (*h).reclaim = 0;
                released += source::decommit_around(NonNull::new_unchecked(h).cast(), (*h).size, n);
            }
        }
        // 4. Both lists go back: the owner takes them on its slow path.
        // SAFETY: chains of free blocks of this pool, each node ours until
        // the push publishes it.
        unsafe {
            if let (Some(head), Some(tail)) = (NonNull::new(kept), kept_tail) {
                self.remote.inbound.push_chain(head, tail);
            }
            if let (Some(head), Some(tail)) = (NonNull::new(emptied), emptied_tail) {
                self.remote.emptied.push_chain(head, tail);
            }
        }
        released
    }

    /// The class index of the pool in its heap, and the shared manager's
    /// state the heap belongs to (null for a `MemoryManager`): what a
    /// remote free needs to count itself in the freeing thread's heap.
    #[inline]
    pub(crate) fn class_and_owner(&self) -> (usize, *const ()) {
        (self.remote.class as usize, self.remote.owner)
    }

    /// The blocks on the free list, never used, and in the spare chunks: with
    /// [`live`](Self::live), what the capacity adds up to (over a shared
    /// manager's heaps, see the identity on [`Pool`]). Owner only.
    pub(crate) fn free_blocks(&self) -> usize {
        self.free_list().count() + self.never_used_left() + self.spare_blocks.get()
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::super::SMALL;
    use super::*;
    use crate::DefaultClasses;
    use alloc::vec::Vec;

    /// Blocks freed "remotely" (pushed on `inbound`) in every chunk but one
    /// of their pool: a reclaim hands those chunks to the owner, who takes
    /// them back as spare chunks, and keeps the other chunk's blocks on the
    /// remote-free list; once that chunk is emptied too, the pool is as a
    /// new one, and its peak stays.
    #[test]
    fn a_reclaim_hands_the_chunks_emptied_remotely_back_to_the_owner() {
        let pools = crate::heap::Heap::<DefaultClasses>::new(SMALL, None, None);
        let pool = pools.get(3); // 64 bytes
                                 // Four chunks, every block handed out (a chunk with never-used
                                 // blocks is never emptied).
        let mut blocks = Vec::new();
        while pool.chunk_count() < 4 || pool.never_used_left() > 0 {
            blocks.push(pool.alloc().unwrap());
        }
        let n = blocks.len();
        let last = blocks[n - 1];
        let in_last = |b: &NonNull<u8>| {
            // SAFETY: live blocks of the pool.
            unsafe { ChunkHeader::of(*b) == ChunkHeader::of(last) }
        };
        let (chunks, capacity) = (pool.chunk_count(), pool.capacity());
        for b in blocks.iter().filter(|b| !in_last(b)) {
            // SAFETY: live blocks, each freed once.
            unsafe { Pool::push_remote(NonNull::from(pool), *b) };
        }
        let early = blocks.iter().filter(|b| !in_last(b)).count();
        // SAFETY: a live pool, no other reclaim.
        unsafe { pool.reclaim() };
        assert!(pool.remote.inbound.is_empty() && !pool.remote.emptied.is_empty());
        assert!(!pool.collect(), "no remote block was left on the list");
        assert_eq!(pool.reclaimed(), early);
        assert_eq!(pool.live(), n - early);
        assert_eq!(
            pool.spare_blocks.get(),
            capacity - pool_blocks_of(pool, last)
        );
        assert_eq!(
            (pool.chunk_count(), pool.capacity(), pool.peak()),
            (chunks, capacity, n)
        );
        assert!(pool.is_valid());
        // Half the last chunk's blocks freed remotely: kept on the list.
        let rest: Vec<_> = blocks.iter().filter(|b| in_last(b)).collect();
        for b in &rest[..rest.len() / 2] {
            // SAFETY: live blocks, each freed once.
            unsafe { Pool::push_remote(NonNull::from(pool), **b) };
        }
        // SAFETY: as above.
        unsafe { pool.reclaim() };
        assert!(!pool.remote.inbound.is_empty() && pool.remote.emptied.is_empty());
        // The rest too: the whole pool is emptied, and new again.
        for b in &rest[rest.len() / 2..] {
            // SAFETY: live blocks, each freed once.
            unsafe { Pool::push_remote(NonNull::from(pool), **b) };
        }
        // SAFETY: as above.
        unsafe { pool.reclaim() };
        assert!(!pool.collect());
        assert_eq!((pool.live(), pool.reclaimed(), pool.peak()), (0, n, n));
        assert_eq!(pool.spare_blocks.get(), capacity);
        assert!(pool.is_valid());
        // The chunks serve again, with none new: the same blocks.
        let again: Vec<_> = (0..n).map(|_| pool.alloc().unwrap()).collect();
        assert_eq!(pool.chunk_count(), chunks);
        let (mut a, mut b) = (again.clone(), blocks.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b);
        for b in again {
            // SAFETY: live, freed once.
            unsafe { Pool::free(b) };
        }
        assert!(pool.is_valid());
    }

    /// The blocks of the chunk that holds `block`.
    fn pool_blocks_of(_pool: &Pool, block: NonNull<u8>) -> usize {
        // SAFETY: a block of a live chunk.
        unsafe { (*ChunkHeader::of(block).as_ptr()).blocks as usize }
    }
}
