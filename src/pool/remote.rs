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

use super::{FreeNode, Pool};
#[cfg(feature = "std")]
use crate::fill;
use crate::sync::Inbound;

/// The part of a [`Pool`] that threads other than its owner read and write,
/// alone on a 128-byte line (two 64-byte cache lines: the adjacent-line
/// prefetcher fetches pairs).
#[repr(C, align(128))]
#[derive(Debug)]
pub(super) struct Remote {
    /// Blocks freed by other threads (a shared manager's remote frees),
    /// taken by the owner when its free list and newest chunk are used up,
    /// before it takes another chunk.
    pub(super) inbound: Inbound,
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

/// The shared manager's side: remote frees, and the counts and figures they
/// need.
#[cfg(feature = "std")]
impl Pool {
    /// The thread slot that owns the pool, or [`UNOWNED`].
    #[inline(always)]
    pub(crate) fn thread_slot(&self) -> u32 {
        self.remote.thread_slot
    }

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

    /// Forgets the remote frees counted (a reset: every block is free).
    pub(crate) fn clear_remote_out(&self) {
        self.remote_out.set(0);
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
        self.free_list().count() + self.never_used_left.get() + self.spare_blocks.get()
    }
}
