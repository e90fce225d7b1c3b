//! A shared manager's capacity: reserve, trim and reset across its heaps.

use core::mem::{align_of, size_of};
use core::sync::atomic::Ordering;

use crate::heap::Heap;
use crate::pool::Pool;
use crate::size_class::SizeClasses;
use crate::thread::{self};
use crate::Error;

use super::SharedManager;

impl<C: SizeClasses> SharedManager<C> {
    // ----- capacity ------------------------------------------------------------

    /// Grows this thread's pool for `T` so that `additional` more `T`s need
    /// no new chunk (other threads' heaps are theirs to grow).
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::reserve`](crate::MemoryManager::reserve).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// mm.reserve::<[u8; 64]>(300)?;
    /// let before = mm.stats().reserved_bytes();
    /// let v: Vec<_> = (0..300).map(|_| mm.alloc([0u8; 64])).collect();
    /// assert_eq!(mm.stats().reserved_bytes(), before);
    /// # drop(v);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn reserve<T>(&self, additional: usize) -> Result<(), Error> {
        if size_of::<T>() == 0 {
            return Ok(());
        }
        let state = self.state()?;
        match state.my_pools().or_else(|| state.my_pools_slow()) {
            Some(pools) => {
                // SAFETY: this thread's heap (invariant), kept as it is.
                let heap = core::mem::ManuallyDrop::new(unsafe { Heap::<C>::from_raw(pools) });
                heap.reserve(size_of::<T>(), align_of::<T>(), None, additional)
            }
            None => state.central(|mm| mm.reserve::<T>(additional)),
        }
    }

    /// Grows the checked-block pool that serves `size`-byte blocks.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::reserve_blocks`](crate::MemoryManager::reserve_blocks).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// mm.reserve_blocks(100, 10)?;
    /// assert!(mm.stats().reserved_bytes() > 0);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    pub fn reserve_blocks(&self, size: usize, additional: usize) -> Result<(), Error> {
        self.central(|mm| mm.reserve_blocks(size, additional))?
    }

    /// Gives back to the system every chunk without a live allocation in
    /// this thread's heap, in the heaps of threads that exited (their slots
    /// free, claimed for the moment) and in the central heap, and frees
    /// those thread heaps left with no chunk (a heap's own records); returns
    /// the bytes released. In the heaps of other running threads it gives
    /// back the pages of every chunk whose blocks were all freed on other
    /// threads (the chunk stays its heap's, as spare capacity, and the
    /// owner takes it back on its next slow path; on Linux, where
    /// `madvise` gives pages back).
    ///
    /// A thread that exits does as much for its own heaps by itself: what
    /// is left for a trim is what other threads freed since, and the heaps
    /// of threads that exited with blocks live.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// let kept = std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         drop((0..100).map(|i| mm.alloc(i)).collect::<Vec<_>>());
    ///         mm.alloc(7u64) // outlives the thread: its heap stays
    ///     })
    ///     .join() // (a join waits for the thread's exit, slot given back)
    ///     .unwrap()
    /// });
    /// assert!(mm.stats().reserved_bytes() > 0);
    /// drop(kept); // a remote free into the exited thread's heap
    /// // The worker exited: its heap is trimmed, and freed, from here.
    /// assert!(mm.trim() > 0);
    /// assert_eq!(mm.stats().reserved_bytes(), 0);
    /// ```
    pub fn trim(&self) -> usize {
        let Some(state) = self.state_if_made() else {
            return 0;
        };
        let me = thread::current();
        let mut released = 0;
        let cached = state.chunk_cache.bytes();
        // `Relaxed`: an upper bound of the slots to look at (a heap made
        // after it was read is its thread's to trim).
        let top = state.top.load(Ordering::Relaxed).min(thread::MAX_THREADS) as u32;
        for t in 0..top {
            // `Relaxed`: a hint only, never followed: heap `t` is loaded
            // again, and used, only once slot `t` is ours (`trim_slot`):
            // until then its holder may free it.
            if state.heaps[t as usize].load(Ordering::Relaxed).is_null() {
                continue;
            }
            if t == me {
                // SAFETY: this thread holds slot `t`, and nothing of its
                // heap is borrowed (this is no allocation path).
                released += unsafe { state.trim_slot(t) };
            } else if thread::REGISTRY.claim(t) {
                /// Gives the claimed slot back, also if the trim panics.
                struct Claimed(u32);
                impl Drop for Claimed {
                    fn drop(&mut self) {
                        thread::REGISTRY.release(self.0);
                    }
                }
                let _claimed = Claimed(t);
                // SAFETY: slot `t` was free and is ours until `_claimed`
                // drops; nothing of its heap is borrowed.
                released += unsafe { state.trim_slot(t) };
            } else {
                // Another running thread's heap: only the chunks other
                // threads emptied in it (see `State::reclaim_slot`).
                released += state.reclaim_slot(t);
            }
        }
        // (Not the stores' pages: another thread may be reading them.) The
        // chunks the heaps' trims gave to the chunk cache were counted as
        // released: they are, now, with the rest of the cache.
        let released = released.saturating_sub(state.chunk_cache.bytes().saturating_sub(cached));
        released + state.central(|mm| mm.trim_except_stores()) + state.empty_chunk_cache()
    }

    /// Frees everything at once (see [`MemoryManager::reset`](crate::MemoryManager::reset)): every heap
    /// keeps its chunks as free capacity, and every [`Block`](crate::Block) handed out
    /// before becomes stale. `&mut self`: no box and no other thread's use
    /// of the manager can be alive.
    ///
    /// # Panics
    ///
    /// As [`MemoryManager::reset`](crate::MemoryManager::reset) (the `debug-fill` check).
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{Error, SharedManager};
    /// let mut mm = SharedManager::new();
    /// let b = mm.alloc_block(8)?;
    /// std::mem::forget(mm.alloc(1u32));
    /// mm.reset();
    /// assert_eq!(mm.stats().live(), 0);
    /// assert_eq!(mm.free(b), Err(Error::FreedByReset));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn reset(&mut self) {
        let Some(state) = self.state_if_made() else {
            return;
        };
        let mut written = None;
        {
            // No exit hook collects a heap meanwhile: a scoped thread counts
            // as joined before its thread-local destructors run (see
            // `exit.rs`).
            let _no_exits = super::exit::exclude_exits();
            let reading = state.reading();
            for (_, pools) in state.thread_heaps(&reading) {
                // SAFETY: `&mut self`: no other thread uses the manager now
                // (any that did was joined, which orders its writes before
                // ours; its exit hook is held off), so every heap is ours; it
                // is given up again, not dropped. A reset of a thread heap
                // calls out to nothing (no large allocation is in one).
                let mut heap = core::mem::ManuallyDrop::new(unsafe { Heap::<C>::from_raw(pools) });
                let w = heap.reset();
                written = written.or(w);
                heap.iter().for_each(Pool::clear_remote_out);
            }
        }
        for ((lost, lost_tally), retired) in
            state.lost.iter().zip(&state.lost_tally).zip(&state.retired)
        {
            // `Relaxed`: as below.
            lost_tally.store(0, Ordering::Relaxed);
            // `Relaxed`: `&mut self`, no other thread to order with. Every
            // block is free: no remote free is left to subtract, and no
            // freed heap's block counts live.
            lost.store(0, Ordering::Relaxed);
            retired.live.store(0, Ordering::Relaxed);
            retired.tally.store(0, Ordering::Relaxed);
        }
        // SAFETY: `&mut self`: the state is ours alone. Only the central
        // manager is borrowed mutably (not the whole state: the heaps hold
        // pointers to its budget).
        let central = unsafe { &mut (*self.state.load(Ordering::Relaxed)).central };
        central.reset();
        if let Some(w) = written {
            w.panic();
        }
    }
}
