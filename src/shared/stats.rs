//! A shared manager's figures: statistics, leaks and the consistency
//! check, summed over its thread heaps and the central heap.

use core::sync::atomic::Ordering;

use crate::heap::Heap;
use crate::pool::Pool;
use crate::size_class::SizeClasses;
use crate::stats::{ClassStats, Leaks, Stats};

use super::{Config, SharedManager, State};

impl<C: SizeClasses> SharedManager<C> {
    // ----- statistics ----------------------------------------------------------

    /// What the manager holds: the sum over every thread's heap and the
    /// central heap. Each figure is one the heap had at some moment while
    /// `stats` ran, not a cut across heaps taken at one instant (a block
    /// freed on another thread is counted by the freeing thread, and may be
    /// seen freed a moment before or after its owner's count moves); `peak`
    /// is the sum of the heaps' peaks (an upper bound). Once the threads are
    /// joined, the figures are exact.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// let a = mm.alloc(1u64);
    /// let b = std::thread::scope(|s| s.spawn(|| mm.alloc(2u64)).join().unwrap());
    /// assert_eq!(mm.stats().live(), 2);
    /// assert_eq!(mm.stats().classes[0].live_boxes, 2);
    /// # drop((a, b));
    /// ```
    #[must_use]
    pub fn stats(&self) -> Stats {
        let Some(state) = self.state_if_made() else {
            return empty_stats::<C>(self.config);
        };
        // The rows are allocated before the lock is taken: on a thread with
        // no slot an allocation uses the central heap, and for `Global` that
        // is this lock.
        let rows = alloc::vec::Vec::with_capacity(C::TABLE.len());
        let mut s = state.central(|mm| mm.snapshot_in(rows));
        // Per class: remote frees counted by the freeing threads, and those
        // the owners took back in remote-emptied chunks (no longer live in
        // their `held`); the collection blocks the heaps' pools count, and
        // those freed into other heaps.
        let mut freed_remotely = [(0usize, 0usize); crate::MAX_CLASSES];
        let mut collections = [(0usize, 0usize); crate::MAX_CLASSES];
        let cached;
        {
            // No exit hook moves a heap's chunks to the chunk cache while
            // the heaps and then the cache are read (one could be counted
            // in both); a new heap that takes one from the cache meanwhile
            // is counted once (the cache counts it out before the pool
            // counts it in). The lock first: a reader never waits.
            let _no_exits = super::exit::exclude_exits();
            // Counted among the readers: no heap loaded here is freed before
            // the guard drops (see `sync::Readers`). Only counter reads and
            // sums into memory already allocated happen under it.
            let reading = state.reading();
            for (_, pools) in state.thread_heaps(&reading) {
                s.add(State::<C>::class_stats(pools));
                for class in 0..C::TABLE.len() {
                    // SAFETY: a live heap's pool (invariant; not freed while
                    // we are counted in): counter reads.
                    let pool = unsafe { Heap::<C>::pool_at(pools, class) };
                    freed_remotely[class].0 += pool.remote_out();
                    freed_remotely[class].1 += pool.reclaimed();
                    collections[class].0 += pool.tally();
                    collections[class].1 += pool.tally_out();
                }
            }
            cached = state.chunk_cache.bytes();
        }
        let rows = s.classes.iter_mut().zip(freed_remotely).zip(collections);
        for (class, ((row, (out, back)), (tally, tally_out))) in rows.enumerate() {
            // `Relaxed`: statistics. The freed heaps' figures, and the
            // remote frees counted in no heap.
            let retired = &state.retired[class];
            row.allocs += retired.allocs.load(Ordering::Relaxed);
            row.peak_boxes += retired.peak.load(Ordering::Relaxed);
            let live = row.live_boxes + retired.live.load(Ordering::Relaxed) + back;
            let out = out + state.lost[class].load(Ordering::Relaxed);
            // Saturating: the counts are read at different moments.
            row.live_boxes = live.saturating_sub(out);
            let tally = tally + retired.tally.load(Ordering::Relaxed);
            let tally_out = tally_out + state.lost_tally[class].load(Ordering::Relaxed);
            let collections = tally.saturating_sub(tally_out).min(row.live_boxes);
            row.live_boxes -= collections;
            row.live_collections += collections;
            row.frees = row.allocs.saturating_sub(row.live());
        }
        // The thread heaps' own records (`Relaxed`: a statistic).
        s.system.metadata_bytes += state.heap_bytes.load(Ordering::Relaxed);
        // The empty chunks kept for the next thread heaps (read after the
        // heaps, above).
        s.system.cached_bytes += cached;
        s.name = self.config.name;
        s.budget = self.config.budget;
        s
    }

    /// The allocations still live, per class (see [`MemoryManager::leaks`](crate::MemoryManager::leaks)).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::SharedManager::new();
    /// let b = mm.alloc_block(20)?;
    /// assert_eq!(mm.leaks().total(), 1);
    /// mm.free(b)?;
    /// assert!(mm.leaks().is_empty());
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[must_use]
    pub fn leaks(&self) -> Leaks {
        Leaks::of(&self.stats())
    }

    /// Whether every heap's internal lists agree with its counters (for
    /// tests). `&mut self`: each heap first takes its remote frees.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mm = memory_mgr::SharedManager::new();
    /// drop(mm.alloc(1u8));
    /// assert!(mm.is_consistent());
    /// ```
    #[must_use]
    pub fn is_consistent(&mut self) -> bool {
        let Some(state) = self.state_if_made() else {
            return true;
        };
        // Each pool's lists; then, per class, free + never-used + live
        // blocks over all heaps add up to the capacity, live counting the
        // remote frees once (as `stats` does).
        let classes = C::TABLE.len();
        let mut sums = alloc::vec![(0usize, 0usize, 0usize); classes]; // (free, live, capacity)
        let mut ok = true;
        let mut tally = |pool: &Pool, class: usize, remote_out: usize| {
            pool.collect();
            ok &= pool.is_valid();
            let s = &mut sums[class];
            s.0 += pool.free_blocks();
            // Wrapping: a heap's remote frees may exceed its own live count
            // (they are of other heaps' blocks); the sum is exact. The
            // blocks taken back in emptied chunks left `held` but are still
            // in the freeing threads' `remote_out`.
            s.1 =
                s.1.wrapping_add(pool.live())
                    .wrapping_add(pool.reclaimed())
                    .wrapping_sub(remote_out);
            s.2 += pool.capacity();
        };
        // What the freed heaps left in the state's figures, per class, read
        // with the heaps: an exit hook that frees a heap after the walk
        // folds that heap's figures into them, and read after it they
        // would count it twice. (Allocated before the lock: under it, only
        // deallocation, see `exit.rs`.)
        let mut offsets = alloc::vec![0usize; classes];
        {
            // No exit hook collects a heap meanwhile (see `exit.rs`).
            let _no_exits = super::exit::exclude_exits();
            let reading = state.reading();
            for (_, pools) in state.thread_heaps(&reading) {
                for class in 0..classes {
                    // SAFETY: `&mut self`, as in `reset`: every heap is ours
                    // (exit hooks held off).
                    let pool = unsafe { Heap::<C>::pool_at(pools, class) };
                    tally(pool, class, pool.remote_out());
                }
            }
            for (class, offset) in offsets.iter_mut().enumerate() {
                // `Relaxed`: the exit hooks that write them are held off,
                // and the last one's writes happen before (the lock). The
                // freed heaps' blocks still counted live count with the
                // central heap's: they offset `lost` (wrapping, as the
                // sums).
                let retired_live = state.retired[class].live.load(Ordering::Relaxed);
                let lost = state.lost[class].load(Ordering::Relaxed);
                *offset = lost.wrapping_sub(retired_live);
            }
        }
        let central_ok = state.central(|mm| {
            for (class, pool) in mm.heap().iter().enumerate() {
                tally(pool, class, offsets[class]);
            }
            mm.blocks().is_valid()
        });
        ok && central_ok
            && sums
                .iter()
                .all(|&(free, live, cap)| free.wrapping_add(live) == cap)
    }
}

/// The figures of a manager that has allocated nothing yet.
fn empty_stats<C: SizeClasses>(config: Config) -> Stats {
    Stats {
        name: config.name,
        classes: C::TABLE
            .sizes()
            .iter()
            .map(|&block_size| ClassStats {
                block_size,
                ..ClassStats::default()
            })
            .collect(),
        system: Default::default(),
        handles: Default::default(),
        budget: config.budget,
    }
}
