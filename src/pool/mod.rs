//! The one pool: one size class, an intrusive free list, chunks that grow.
//!
//! This is the raw core behind `PoolBox`, `Block` and the `Allocator`. A
//! [`Pool`] hands out blocks of one size; it knows nothing of types.
//! Allocation pops the free list, freeing pushes it — both O(1), the list
//! unordered. When the list is empty the next never-used block of the
//! newest chunk is handed out (a bump, inline); when that chunk is used up
//! the cold [`refill`](growth::refill) takes a reserved spare chunk or
//! allocates a new one, each new one twice the size of the last up to the
//! cap.
//!
//! Because never-used blocks are only taken when the free list is empty, the
//! blocks ever handed out from the current chunks were all live at once at
//! that moment: their count is the high-water mark of live blocks, known
//! without a single instruction on the fast path.
//!
//! A pool is found from any of its blocks through the chunk header (see
//! [`chunk`]), so pools live at fixed heap addresses inside
//! the heap context (`heap::Heap`) and never move.
//!
//! One file per concern, as mimalloc has one per concept; every `unsafe`
//! block of them argues from the invariant stated once, on [`Pool`]:
//!
//! - this file: the [`Pool`] type, its invariant and accounting identity,
//!   [`Pool::new`], the inline fast paths (`alloc`, the bump, `free`) and the
//!   counters;
//! - [`chunk_header`]: the header at the start of every chunk, and the one
//!   walk and the one unlink of the chunk lists;
//! - [`growth`]: the cold slow path — a spare or new chunk, `reserve`;
//! - [`trim`]: giving memory back — `trim`, `recycle` (and the recycle of an
//!   emptied pool), `release_chunks`;
//! - [`remote`]: frees from other threads (a shared manager's), compiled
//!   with `std` but for the owner's `collect`;
//! - [`check`]: the invariant walker behind `is_consistent`, in a file of
//!   its own but compiled always (the public `MemoryManager::is_consistent`
//!   calls it).

use core::cell::Cell;
use core::num::NonZeroUsize;
use core::ptr::{self, NonNull};

use crate::budget::Budget;
use crate::chunk;
use crate::fill;
use crate::large::HeapRecord;
use crate::size_class::natural_align;
use crate::sync::{Counter, Inbound, RelaxedPtr};
use crate::Error;

mod check;
mod chunk_header;
mod growth;
mod remote;
mod trim;

use chunk_header::{ChunkHeader, Link};
use remote::Remote;
pub(crate) use remote::UNOWNED;

/// The page size the bump checks for blocks other threads freed at (see
/// [`Pool::alloc_never_used`]).
const PAGE: usize = 4096;

/// Chunk sizes a manager's pools grow with, and its byte budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkConfig {
    /// Size of each pool's first chunk.
    pub(crate) initial: usize,
    /// Largest chunk size; chunks double until they reach it.
    pub(crate) max: usize,
}

/// A free block, seen as a free-list node.
#[repr(C)]
struct FreeNode {
    next: *mut FreeNode,
}

/// One size class's pool. All mutable state is in `Cell`s and
/// [`Counter`]s: the pool is only ever reached through shared references
/// (from the manager, and from block pointers via chunk headers), and only
/// its owner changes it — another thread only pushes a block on
/// `remote.inbound` (a shared manager's remote free) or reads a counter.
///
/// # Invariant
///
/// Relied on by every `unsafe` block of the `pool` module's files:
///
/// - **Chunks.** Every chunk is a live allocation from
///   [`ChunkHeader::allocate`], its header's `pool` this pool and `slot`
///   this pool's `thread_slot`, with
///   `first + blocks * block_size <= size`. It is on the chunk list
///   (`chunks`, through `next`) once, and on exactly one of the spare list
///   and the used list (`spare` and `used`, through `spare_next`), once.
///   `chunk_count`, `reserved` and `capacity` are the chunk list's chunks,
///   bytes and blocks; `spare_blocks` is the spare list's blocks. The pool
///   does not move while it has a chunk (the headers point at it).
///   `last_blocks` is null (`last_blocks_len` 0) or the first block of one
///   of these chunks, with provenance over all of it, and `last_blocks_len`
///   that chunk's `blocks * block_size`.
/// - **Blocks.** Every block of every chunk is exactly one of:
///   - *live*: handed out, not returned;
///   - *free*: on the free list (`free`, through the block's first word),
///     once;
///   - *remote*: on `remote.inbound`, freed by another thread and not yet
///     collected (a shared manager's pools only), or held for a moment by a
///     [`reclaim`](Pool::reclaim) on another thread;
///   - *emptied*: in a chunk on `remote.emptied` — a chunk still on the
///     used list whose blocks a reclaim found all remote — not yet taken
///     back by the owner (which moves the chunk to the spare list);
///   - *never used*: in a spare chunk, or in the chunk `never_used` points into
///     (which is on the used list) from `never_used` up to `never_used_end`,
///     [`never_used_left`](Pool::never_used_left) of them (`never_used_end`
///     is `never_used` plus a multiple of `block_size`; equal when none is
///     left, both 0 before the first chunk). A used chunk's other blocks were all handed out since it left
///     the spare list. `bump_limit` is at most `never_used_end`, so
///     `never_used` below it is a never-used block.
///
/// # Accounting
///
/// With `held = allocs - frees` (wrapping; [`held`](Self::held)) and
/// `live = held - guard` ([`live`](Self::live); `guard` is 0 or 1), a pool
/// only its owner frees into keeps
///
/// ```text
/// capacity = live + free-list length + never_used_left + spare_blocks
/// ```
///
/// (what `accounting` in [`check`] checks). A shared manager's pool
/// (`remote.owner` not null) still counts in `held` the blocks other threads
/// freed into it (on `inbound`, or on the free list once collected): the
/// freeing thread counts each in its own heap's `remote_out` (a free into
/// the central heap, in the manager's `lost`). So the identity holds per
/// class over all the manager's heaps, each collected first:
///
/// ```text
/// Σ capacity = Σ (live − remote_out + reclaimed) + Σ (free-list length + never_used_left + spare_blocks)
/// ```
///
/// (`reclaimed`: remote frees no longer in the owner's `held`: one for each
/// block it took back in remote-emptied chunks, and, once every chunk came
/// back so, the earlier remote frees of blocks it had handed out again.)
///
/// (what `SharedManager::is_consistent` checks). The blocks handed out
/// from the current chunks, `capacity − never_used_left − spare_blocks`, were
/// all live at once (see [`peak`](Self::peak)).
///
/// # Layout
///
/// `repr(C)`, in the order of use: the first cache line holds every field
/// a fast path touches — the pop and the bump (`free`, `allocs`,
/// `block_size`, `never_used`, `bump_limit`), the push (`frees`), and the
/// `Allocator`'s `tally` and `last_blocks` (its free reads
/// `last_blocks_len` too, the next line's first word). With `tally` and
/// `last_blocks` two and three lines further on, a replay through a
/// `WideClasses` manager spent half its allocation's time on the load of
/// `never_used` and a quarter on `tally`'s line (perf).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Pool {
    /// Head of the free list, or null. Hot: first field.
    free: Cell<*mut FreeNode>,
    /// Blocks handed out, ever.
    allocs: Counter,
    /// Block size in bytes (a multiple of 8).
    block_size: usize,
    /// Blocks returned, ever — a recycle or a release counts every block
    /// still handed out, a reclaim the blocks it took back — less `guard`
    /// (wrapping: a new pool's is `usize::MAX`, -1), so that
    /// `allocs - frees` is [`held`](Self::held), the blocks live plus
    /// `guard`. A free is one count (`allocs` is the only count an
    /// allocation makes): one that brings it to `allocs` finds the pool
    /// empty after more than one chunk's worth of blocks was handed out
    /// since it was last recycled, and recycles it (see
    /// [`emptied`](trim::emptied)).
    frees: Counter,
    /// Next never-used block of the newest chunk. (Read with
    /// `never_used_end` by another thread's statistics, see
    /// [`never_used_left`](Self::never_used_left): not a `Cell`.)
    never_used: RelaxedPtr<u8>,
    /// The address at which the bump stops and the slow path runs: at most
    /// `never_used_end`, so that below it the bump needs no other check; in a
    /// pool other threads free into, also at most the next page boundary
    /// (the next never-used block at or past it is the first of its page,
    /// where the blocks they freed are taken first, see
    /// [`alloc_never_used`](Self::alloc_never_used)). 0
    /// (what [`set_never_used`](Self::set_never_used) leaves) sends the next
    /// bump to the slow path, which sets it again. One compare on the fast
    /// path instead of the count's test and the page test.
    bump_limit: Cell<usize>,
    /// Live blocks that a collection holds (the `Allocator`
    /// implementation's), counted apart from boxes in the stats, off every
    /// box's path.
    tally: Counter,
    /// The first block of the chunk of this pool that the `Allocator`'s
    /// free last found in the chunk map, with provenance over the whole
    /// chunk, or null: a free into the same chunk again turns the caller's
    /// address into the manager's own pointer with one compare (see
    /// [`Pool::own_block`]). Only ever in one of this pool's live chunks:
    /// checked against the chunk's header when set, and nulled before any
    /// chunk leaves the pool (`release_list`, the one way out).
    last_blocks: Cell<*mut u8>,
    /// The bytes of that chunk's blocks (`blocks * block_size`), or 0.
    last_blocks_len: Cell<usize>,
    /// The address past the last never-used block of the newest chunk
    /// (`never_used` when none is left): the bump moves `never_used` only,
    /// and the count left is computed where it is needed
    /// ([`never_used_left`](Self::never_used_left)), off the fast path.
    never_used_end: Counter,
    /// 1 while at most one chunk's blocks have been handed out since the
    /// pool was made or last recycled, else 0: a small pool (one object
    /// allocated and freed, over and over) never takes the cold path.
    guard: Counter,
    /// Offset of the first block in every chunk.
    first_offset: usize,
    /// Chunks with only never-used blocks (reserved, or recycled), linked
    /// through `spare_next`, in the order they are to be used.
    spare: Cell<*mut ChunkHeader>,
    /// Chunks taken off the spare list (or made) since the pool was last
    /// recycled, the newest first, linked through `spare_next`: what a
    /// recycle puts back, so that it costs the chunks used, not all.
    used: Cell<*mut ChunkHeader>,
    /// Blocks in the spare chunks.
    spare_blocks: Counter,
    /// Size of the next chunk to allocate.
    next_chunk_size: Cell<usize>,
    /// Chunk size cap.
    max_chunk_size: usize,
    /// Smallest chunk (the first one's size): the floor when a budget makes
    /// the pool grow by less than the next size.
    min_chunk_size: usize,
    /// Newest chunk; each header links to the one before.
    chunks: Cell<*mut ChunkHeader>,
    /// Number of chunks.
    chunk_count: Counter,
    /// Bytes of all chunks.
    reserved: Counter,
    /// Blocks in all chunks.
    capacity: Counter,
    /// High-water mark of live blocks saved before chunks were released.
    peak: Counter,
    /// Blocks of this class the owner freed into other heaps' pools (see
    /// [`Pool::remote_out`]).
    remote_out: Counter,
    /// Remote frees into this pool that `held` no longer counts: taken
    /// back in remote-emptied chunks (see [`Pool::reclaimed`]).
    reclaimed: Counter,
    /// Collection blocks of this class the owner freed into other heaps'
    /// pools (a shared manager's collections: see [`Pool::tally_out`]).
    tally_out: Counter,
    /// The manager's heap record (budget and chunk map); outlives the
    /// pool.
    heap_record: NonNull<HeapRecord>,
    /// `block_size` is an odd number shifted left by `shift`, and `inverse`
    /// is that odd number's inverse modulo 2^`usize::BITS`: a block's index
    /// from its offset in the chunk, without a division.
    shift: u32,
    /// See `shift`.
    inverse: usize,
    /// Checked [`Block`](crate::Block)s of this class handed out, ever
    /// (they live in the class's byte store, see `checked.rs`; the class's
    /// counts are kept here).
    checked_allocs: Counter,
    /// Most checked blocks of this class live at once.
    checked_peak: Counter,
    /// What other threads touch: on a cache line of its own, so that remote
    /// frees neither slow the owner's fast path nor wait for its writes.
    remote: Remote,
}

// The fast paths' fields in the first line (see "Layout" above; the pool
// is aligned to the `Remote`'s 128 bytes).
static_assertions::const_assert!(core::mem::offset_of!(Pool, last_blocks) + 8 <= 64);

/// The inverse of odd `d` modulo 2^`usize::BITS`, by Newton's iteration
/// (each step doubles the correct low bits, from 3).
const fn inverse_of(d: usize) -> usize {
    let mut x = d;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2usize.wrapping_sub(d.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// [`growth::refill`] behind a call the compiler knows cannot unwind: an
/// `extern "C"` function aborts the process rather than unwind out of it.
/// So an inlined [`Pool::alloc`] needs no unwinding path for its cold call,
/// and its callers keep less for one: the 64-byte `PoolBox` pair is one
/// instruction shorter (31; 32 without it, with `frees` counted). Nothing
/// in `refill` unwinds: it returns its errors (only a broken internal
/// assertion would panic, and then aborts), and the system allocator it
/// calls must not unwind (`GlobalAlloc`'s contract).
#[cold]
#[inline(never)]
#[allow(improper_ctypes_definitions)] // called from Rust only, for its no-unwind
extern "C" fn refill(pool: &Pool) -> Result<NonNull<u8>, Error> {
    growth::refill(pool)
}

/// [`refill`] for a caller that wants only the block (`Global`, whose
/// errors are a null pointer; the `Allocator`s, whose error says
/// nothing): an `Option` comes back in a register, where
/// a `Result` with an [`Error`] comes back through memory, and an inlined
/// [`Pool::alloc_or_none`] keeps its fast path's block in a register too
/// (`Global`'s pair: see `Pool::alloc_or_none`).
#[cold]
#[inline(never)]
#[cfg_attr(
    not(any(feature = "std", feature = "allocator-api2")),
    allow(dead_code)
)] // `Global`'s and the `Allocator`s'
extern "C" fn refill_or_none(pool: &Pool) -> Option<NonNull<u8>> {
    growth::refill(pool).ok()
}

/// [`Pool::alloc_fast`]'s slow path: none (inlined away).
#[inline(always)]
extern "C" fn no_refill(_: &Pool) -> Option<NonNull<u8>> {
    None
}

/// What [`Pool::alloc_with`] returns: a block, or why there is none.
trait Allocated {
    /// `block`, handed out.
    fn block(block: NonNull<u8>) -> Self;
}

impl Allocated for Result<NonNull<u8>, Error> {
    #[inline(always)]
    fn block(block: NonNull<u8>) -> Self {
        Ok(block)
    }
}

impl Allocated for Option<NonNull<u8>> {
    #[inline(always)]
    fn block(block: NonNull<u8>) -> Self {
        Some(block)
    }
}

impl Pool {
    /// A pool of `block_size`-byte blocks, with no chunk yet.
    pub(crate) fn new(
        block_size: usize,
        config: ChunkConfig,
        heap_record: NonNull<HeapRecord>,
        (thread_slot, class, owner): (u32, usize, *const ()),
    ) -> Pool {
        let align = natural_align(block_size);
        let first_offset = chunk::first_block_offset(align);
        let smallest = first_offset + block_size;
        let initial = config.initial.max(smallest).min(chunk::SEGMENT);
        let max_chunk_size = config.max.max(initial).min(chunk::SEGMENT);
        let shift = block_size.trailing_zeros();
        Pool {
            free: Cell::new(ptr::null_mut()),
            allocs: Counter::new(0),
            frees: Counter::new(usize::MAX), // held 1: allocs 0, less 1
            guard: Counter::new(1),
            block_size,
            first_offset,
            never_used: RelaxedPtr::new(ptr::null_mut()),
            never_used_end: Counter::new(0),
            bump_limit: Cell::new(0),
            spare: Cell::new(ptr::null_mut()),
            used: Cell::new(ptr::null_mut()),
            spare_blocks: Counter::new(0),
            next_chunk_size: Cell::new(initial),
            max_chunk_size,
            min_chunk_size: initial,
            chunks: Cell::new(ptr::null_mut()),
            chunk_count: Counter::new(0),
            reserved: Counter::new(0),
            capacity: Counter::new(0),
            peak: Counter::new(0),
            remote_out: Counter::new(0),
            reclaimed: Counter::new(0),
            tally_out: Counter::new(0),
            tally: Counter::new(0),
            last_blocks: Cell::new(ptr::null_mut()),
            last_blocks_len: Cell::new(0),
            heap_record,
            shift,
            inverse: inverse_of(block_size >> shift),
            checked_allocs: Counter::new(0),
            checked_peak: Counter::new(0),
            remote: Remote {
                inbound: Inbound::new(),
                emptied: Inbound::new(),
                thread_slot,
                class: class as u32,
                owner,
            },
        }
    }

    /// Pops a block of `block_size` bytes, aligned to its natural alignment;
    /// the error says why a new chunk could not be had (the budget, or the
    /// system allocator, with the chunk's own figures).
    #[inline(always)]
    pub(crate) fn alloc(&self) -> Result<NonNull<u8>, Error> {
        self.alloc_with(refill)
    }

    /// [`Pool::alloc`] for a caller that wants only the block: `None`
    /// where `alloc` says why. (`Global`'s allocation returns a null
    /// pointer for every error; with this its fast path keeps the block in
    /// a register: its 64-byte pair took 44 instructions, 7 of them to
    /// store a `Result` on the stack and read it back. The `Allocator`s
    /// use it for the same reason.)
    #[cfg_attr(
        not(any(feature = "std", feature = "allocator-api2")),
        allow(dead_code)
    )] // `Global`'s and the `Allocator`s'
    #[inline(always)]
    pub(crate) fn alloc_or_none(&self) -> Option<NonNull<u8>> {
        self.alloc_with(refill_or_none)
    }

    /// A pop or a bump, or `None` where [`Pool::alloc`] would refill: the
    /// fast path alone, for a caller whose slow path is its own (a box
    /// constructor that panics: `alloc`'s, which keeps the whole
    /// allocation, the value and the panic out of line).
    #[inline(always)]
    pub(crate) fn alloc_fast(&self) -> Option<NonNull<u8>> {
        self.alloc_with(no_refill)
    }

    /// The allocation, written once for all: a pop, else a bump, else
    /// `slow` (the refill, out of line).
    #[inline(always)]
    fn alloc_with<R: Allocated>(&self, slow: extern "C" fn(&Pool) -> R) -> R {
        let Some(head) = NonNull::new(self.free.get()) else {
            return self.alloc_never_used(slow);
        };
        // SAFETY: every node on the free list is a free block of this pool,
        // inside a live chunk, whose first word holds the link.
        self.free.set(unsafe { (*head.as_ptr()).next });
        self.count_alloc();
        // SAFETY: a free block of `block_size` bytes, now ours, filled when it
        // was freed (both calls compile to nothing without the `debug-fill`
        // feature).
        unsafe {
            fill::check_freed(head.cast(), self.block_size);
            fill::fresh(head.cast(), self.block_size);
        }
        R::block(head.cast())
    }

    /// The other half of [`Pool::alloc`], when the free list is empty: the
    /// next never-used block of the newest chunk (a bump), inline — after a
    /// reset or a recycle every allocation comes from here — else the cold
    /// [`refill`](growth::refill): when the chunk is used up, or when the
    /// block would be the first of a page and other threads freed blocks
    /// into the pool (those first: a never-used block there touches a page
    /// no one has touched; taking them kept `Global`'s peak RSS on larson at
    /// 2 threads 4.7–4.9 MB instead of 5.2–5.8, and costs binary-trees 0.2%
    /// more instructions; checking at every block rather than at a page's
    /// first made xmalloc at 2 threads 0.85 s instead of 0.80). `#[cold]` only lays it out
    /// after the pop, so that the pop runs straight through; it is still
    /// inlined.
    #[cold]
    #[inline(always)]
    fn alloc_never_used<R: Allocated>(&self, slow: extern "C" fn(&Pool) -> R) -> R {
        // At the limit: the newest chunk's never-used blocks are used up,
        // or (in a pool other threads free into) the next one is the first
        // of its page (of 4 KiB), which would touch a page no one has
        // touched: blocks other threads freed, if any, come first. (Checked
        // at a page's first block only, so that a thread fed a few blocks
        // at a time by another does not take the cold path for each of
        // them.) The slow path sees which, and sets the next limit.
        let block = self.never_used.get();
        if block.addr() >= self.bump_limit.get() {
            return slow(self);
        }
        // SAFETY: below `bump_limit`, so below `never_used_end` (the
        // field's invariant: the limit is at most the end of the
        // never-used blocks): a never-used block is left, and `block` is
        // the next one (read just now).
        R::block(unsafe { self.bump_at(block) })
    }

    /// Makes `block` the next never-used block with `left` of them from it
    /// on (null and 0: none), and the bump limit 0, so that the next bump
    /// goes through the slow path, which sets the limit for them. Every
    /// change of the never-used blocks but the bump's goes through here.
    pub(super) fn set_never_used(&self, block: *mut u8, left: usize) {
        self.never_used.set(block);
        self.never_used_end
            .set(block.addr() + left * self.block_size);
        self.bump_limit.set(0);
    }

    /// Never-used blocks left in the newest chunk: from `never_used` to
    /// `never_used_end`, over the block size. Off the fast path: the slow
    /// path, trims, checks and statistics. Read by another thread (a shared
    /// manager's `stats`, through [`peak`](Self::peak)) the two may be of
    /// different moments, across a change of chunk: the figure is then
    /// some count below a chunk's blocks (0 if `never_used` reads past the
    /// end), as `held` clamps its two counts.
    pub(super) fn never_used_left(&self) -> usize {
        let (end, next) = (self.never_used_end.get(), self.never_used.get().addr());
        end.saturating_sub(next) / self.block_size
    }

    /// The bump limit for the never-used blocks as they are now (see
    /// `bump_limit`): their end, or in a pool other threads free into the
    /// next page boundary after `never_used` (the first block at or past it
    /// is the next to start a page), if sooner.
    pub(super) fn next_bump_limit(&self) -> usize {
        let at = self.never_used.get().addr();
        let end = self.never_used_end.get();
        if self.remote.thread_slot == UNOWNED {
            return end;
        }
        // The next page boundary after `at`: the first block at or past it
        // is the first to start in its page (its offset there is below
        // `size`, the block before it having started before the boundary),
        // and the blocks before it start in `at`'s page, past `at`, so
        // none of them does. No division.
        end.min((at | (PAGE - 1)) + 1)
    }

    /// Hands out the next never-used block of the newest chunk: the bump,
    /// for [`refill`](growth::refill) (after it found a chunk).
    ///
    /// # Safety
    ///
    /// A never-used block must be left (`never_used < never_used_end`).
    #[inline(always)]
    unsafe fn bump(&self) -> NonNull<u8> {
        // SAFETY: the caller's guarantee; `never_used` is the next block.
        unsafe { self.bump_at(self.never_used.get()) }
    }

    /// [`bump`](Self::bump) with `never_used` already read: `block` (an
    /// atomic load, which the compiler does not merge with another: the
    /// inline bump read it twice, one instruction more on each).
    ///
    /// # Safety
    ///
    /// As [`bump`](Self::bump), and `block` must be `never_used`'s value.
    #[inline(always)]
    unsafe fn bump_at(&self, block: *mut u8) -> NonNull<u8> {
        // SAFETY: a never-used block is left (the caller), so `block` is one,
        // inside a live chunk (not null), and the next one is at most one
        // past its last block.
        let block = unsafe {
            self.never_used.set(block.add(self.block_size));
            NonNull::new_unchecked(block)
        };
        self.count_alloc();
        // SAFETY: as above, `block_size` bytes that are now ours.
        unsafe { fill::fresh(block, self.block_size) };
        block
    }

    /// Counts a block handed out: `allocs` only (`held` follows).
    #[inline(always)]
    fn count_alloc(&self) {
        self.allocs.set(self.allocs.get() + 1);
    }

    /// Blocks live, plus `guard`: `allocs - frees`. Read from another
    /// thread (a shared manager's `stats`) the two counts may be of
    /// different moments: a difference that wrapped below zero reads as 0.
    #[inline(always)]
    pub(crate) fn held(&self) -> usize {
        let held = self.allocs.get().wrapping_sub(self.frees.get());
        if held > isize::MAX as usize {
            0
        } else {
            held
        }
    }

    /// Makes [`held`](Self::held) `held`, through `frees` (owner only).
    #[inline(always)]
    pub(crate) fn set_held(&self, held: usize) {
        self.frees.set(self.allocs.get().wrapping_sub(held));
    }

    /// Counts a checked block of this class handed out, `live` of them
    /// live now.
    #[inline(always)]
    pub(crate) fn count_checked(&self, live: usize) {
        self.checked_allocs.set(self.checked_allocs.get() + 1);
        self.checked_peak.set(self.checked_peak.get().max(live));
    }

    /// Checked blocks of this class handed out, ever.
    pub(crate) fn checked_allocs(&self) -> usize {
        self.checked_allocs.get()
    }

    /// Most checked blocks of this class live at once.
    pub(crate) fn checked_peak(&self) -> usize {
        self.checked_peak.get()
    }

    /// Live blocks of this pool that a collection holds.
    pub(crate) fn tally(&self) -> usize {
        self.tally.get()
    }

    /// Counts one more (`up`) or one fewer block in [`tally`](Self::tally).
    #[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // the `Allocator` impl's
    #[inline(always)]
    pub(crate) fn count_tally(&self, up: bool) {
        let t = self.tally.get();
        // Wrapping: a collection frees only blocks it holds, which the
        // tally counts (a caller that breaks `deallocate`'s contract can
        // skew the stats, which clamp it to `live`, and nothing else).
        debug_assert!(up || t > 0, "a collection block freed twice");
        self.tally.set(if up {
            t.wrapping_add(1)
        } else {
            t.wrapping_sub(1)
        });
    }

    /// The manager's own pointer to the block at `addr` if it lies among
    /// the blocks of the chunk this pool remembers ([`Pool::remember_chunk`]),
    /// else `None`. For the `Allocator`'s free, whose caller's pointer may
    /// cover only the value (see `alloc_api.rs`).
    #[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // the `Allocator` impl's
    #[inline(always)]
    pub(crate) fn own_block(&self, addr: NonZeroUsize) -> Option<NonNull<u8>> {
        let blocks = self.last_blocks.get();
        // Null with a length of 0 matches no address.
        if addr.get().wrapping_sub(blocks.addr()) < self.last_blocks_len.get() {
            // `blocks` is the first block of one of this pool's live chunks
            // (the field's invariant) and `addr` lies among its blocks: the
            // same allocation, whose provenance the pointer carries.
            NonNull::new(blocks.with_addr(addr.get()))
        } else {
            None
        }
    }

    /// The manager's own pointer to the block at `addr`, which the chunk
    /// map says is in the chunk at `base` — if the chunk is this pool's and
    /// `addr` lies among its blocks; the chunk is then remembered for
    /// [`Pool::own_block`]. `None` if the chunk is another pool's (the
    /// caller freed with a layout its block was not allocated with) or
    /// `addr` lies in the chunk's header or past its last block (an
    /// allocation that is not the pool's, sharing the chunk's `SEGMENT`).
    ///
    /// # Safety
    ///
    /// `base` must be the base of a live chunk of this manager, with
    /// provenance over all of it.
    #[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // the `Allocator` impl's
    #[inline]
    pub(crate) unsafe fn remember_chunk(
        &self,
        base: NonNull<u8>,
        addr: NonZeroUsize,
    ) -> Option<NonNull<u8>> {
        let h = base.cast::<ChunkHeader>().as_ptr();
        // SAFETY: a live chunk's header (caller): its fixed fields, read raw
        // (as in `Pool::of`: the owner may write its scratch word).
        let (pool, first, blocks) = unsafe {
            (
                *ptr::addr_of!((*h).pool),
                *ptr::addr_of!((*h).first),
                *ptr::addr_of!((*h).blocks),
            )
        };
        if pool != NonNull::from(self) {
            return None;
        }
        // SAFETY: `first` is within the chunk (`Pool` invariant:
        // `first + blocks * block_size <= size`).
        let start = unsafe { base.as_ptr().add(first as usize) };
        let len = blocks as usize * self.block_size;
        if addr.get().wrapping_sub(start.addr()) >= len {
            return None;
        }
        self.last_blocks.set(start);
        self.last_blocks_len.set(len);
        self.own_block(addr)
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
    /// `block` must be a block of a pool that is still alive, or the base
    /// of one of its chunks (both lead to the same header).
    #[inline(always)]
    pub(crate) unsafe fn of<'a>(block: NonNull<u8>) -> &'a Pool {
        // SAFETY: `block` lies in a live chunk (caller), whose header holds a
        // pointer to its pool; pools outlive their chunks and never move. A
        // raw read of the one field, no reference to the header: the owner
        // may be writing the header's scratch word meanwhile (`trim`).
        unsafe { (*ptr::addr_of!((*ChunkHeader::of(block).as_ptr()).pool)).as_ref() }
    }

    /// The pool of `block` and the thread slot that owns it, both from the
    /// block's chunk header (one line): what a shared manager's free needs
    /// to tell its own block from another thread's before it touches the
    /// pool — the owner test on the header's line rather than on the pool's
    /// remote line, a load that does not wait for the pool pointer.
    ///
    /// # Safety
    ///
    /// As for [`Pool::of`].
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // the shared manager's
    #[inline(always)]
    pub(crate) unsafe fn of_owned<'a>(block: NonNull<u8>) -> (&'a Pool, u32) {
        // SAFETY: as in `Pool::of`: two fixed fields of a live chunk's
        // header, read raw.
        unsafe {
            let h = ChunkHeader::of(block).as_ptr();
            (
                (*ptr::addr_of!((*h).pool)).as_ref(),
                *ptr::addr_of!((*h).slot),
            )
        }
    }

    /// Whether `addr` lies within the chunk whose base is `base` (which
    /// may share its [`SEGMENT`](chunk::SEGMENT)-sized stretch of addresses
    /// with memory that is not the pool's, past the chunk's end).
    ///
    /// # Safety
    ///
    /// `base` must be the base of a live chunk, with provenance over its
    /// header.
    #[cfg_attr(
        not(all(feature = "allocator-api2", feature = "std")),
        allow(dead_code)
    )] // the `Allocator` impl's
    #[inline(always)]
    pub(crate) unsafe fn chunk_holds(base: NonNull<u8>, addr: usize) -> bool {
        // SAFETY: a live chunk's header (caller), its fixed `size` read in
        // place.
        let size = unsafe { (*base.cast::<ChunkHeader>().as_ptr()).size };
        addr.wrapping_sub(base.as_ptr().addr()) < size
    }

    /// Returns `block`, a block of this pool, to the free list (the
    /// owner's free); recycles the pool if it is now empty after real use.
    #[inline(always)]
    pub(crate) fn push(&self, block: NonNull<u8>) {
        let node = block.cast::<FreeNode>();
        // SAFETY: `block` is a block of this pool that its owner gave back, so
        // its `block_size` bytes are ours, and its first word (blocks are at
        // least 8 bytes, aligned to 8) is ours to use as the link.
        unsafe {
            fill::freed(block, self.block_size);
            node.write(FreeNode {
                next: self.free.get(),
            })
        };
        self.free.set(node.as_ptr());
        // `held` one fewer; zero when `frees` reaches `allocs`.
        let frees = self.frees.get().wrapping_add(1);
        self.frees.set(frees);
        if frees == self.allocs.get() {
            trim::emptied(self);
        }
    }

    /// The manager's name, if it has one.
    pub(crate) fn name(&self) -> Option<&'static str> {
        self.heap_record().name
    }

    /// The manager's heap record, as a pointer.
    pub(crate) fn heap_record_ptr(&self) -> NonNull<HeapRecord> {
        self.heap_record
    }

    /// The manager's budget.
    fn budget(&self) -> &Budget {
        &self.heap_record().budget
    }

    /// The manager's heap record.
    fn heap_record(&self) -> &HeapRecord {
        // SAFETY: the heap record is freed only after every pool (see
        // `Heap::drop`).
        unsafe { self.heap_record.as_ref() }
    }

    /// Blocks handed out and not returned.
    #[inline]
    pub(crate) fn live(&self) -> usize {
        // Saturating: read from another thread (a shared manager's
        // `stats`), the two counters may be of different moments.
        self.held().saturating_sub(self.guard.get())
    }

    /// Blocks handed out, ever.
    #[inline]
    pub(crate) fn allocs(&self) -> usize {
        self.allocs.get()
    }

    /// Blocks returned, ever (a reset returns every live one).
    #[inline]
    pub(crate) fn frees(&self) -> usize {
        self.allocs.get().saturating_sub(self.live())
    }

    /// The most blocks that were live at once.
    pub(crate) fn peak(&self) -> usize {
        // Never-used blocks are taken only when the free list is empty, so
        // every block ever handed out from the current chunks was live at
        // that moment; `peak` keeps the figure across released chunks.
        // (Saturating, as in `live`.)
        let touched = self
            .capacity
            .get()
            .saturating_sub(self.never_used_left())
            .saturating_sub(self.spare_blocks.get());
        self.peak.get().max(touched)
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

    /// The chunks, newest first.
    fn chunk_list(&self) -> impl Iterator<Item = NonNull<ChunkHeader>> + '_ {
        // SAFETY: the chunk list holds live chunks of this pool (the
        // invariant); a chunk leaves it (to be released) only in `trim` and
        // `release_chunks`, while no walk of it is under way.
        unsafe { ChunkHeader::list(self.chunks.get(), Link::Next) }
    }

    /// The free list, head first.
    fn free_list(&self) -> impl Iterator<Item = NonNull<FreeNode>> + '_ {
        let mut node = self.free.get();
        core::iter::from_fn(move || {
            let n = NonNull::new(node)?;
            // SAFETY: every node on the free list is a free block of a live
            // chunk whose first word holds the link.
            node = unsafe { n.as_ref() }.next;
            Some(n)
        })
    }
}

/// The chunk sizes of the pool tests: small, so that a few hundred blocks
/// take several chunks.
#[cfg(test)]
const SMALL: ChunkConfig = ChunkConfig {
    initial: 4096,
    max: 16384,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DefaultClasses;
    use alloc::vec::Vec;

    #[test]
    fn alloc_and_free_keep_the_pool_valid() {
        let pools = crate::heap::Heap::<DefaultClasses>::new(SMALL, None, None);
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
    fn a_freed_block_is_reused_first() {
        let pools = crate::heap::Heap::<DefaultClasses>::new(SMALL, None, None);
        let pool = pools.get(1);
        let a = pool.alloc().unwrap();
        let _b = pool.alloc().unwrap();
        // SAFETY: `a` is live and freed once.
        unsafe { Pool::free(a) };
        assert_eq!(pool.alloc(), Ok(a));
    }

    #[test]
    fn the_never_used_blocks_are_counted_from_their_end() {
        // The bump moves `never_used` alone; the count left comes from the
        // distance to `never_used_end`: for the power-of-two sizes of the
        // default table and the odd multiples of 8 of the fine one.
        fn check<C: crate::SizeClasses>() {
            let pools = crate::heap::Heap::<C>::new(SMALL, None, None);
            for class in 0..C::SIZES.len() {
                let pool = pools.get(class);
                assert_eq!(pool.never_used_left(), 0, "class {class}");
                let first = pool.alloc().unwrap();
                let left = pool.never_used_left();
                assert_eq!(left, pool.capacity.get() - 1, "class {class}");
                let second = pool.alloc().unwrap();
                assert_eq!(pool.never_used_left(), left - 1, "class {class}");
                assert_eq!(
                    second.as_ptr().addr() - first.as_ptr().addr(),
                    pool.block_size
                );
                assert!(pool.is_valid(), "class {class}");
                // Freed blocks go to the free list: the never-used count
                // stays.
                // SAFETY: both are live and freed once.
                unsafe { (Pool::free(first), Pool::free(second)) };
                assert_eq!(pool.never_used_left(), left - 1, "class {class}");
                assert!(pool.is_valid(), "class {class}");
            }
        }
        check::<DefaultClasses>();
        check::<crate::FineClasses>();
    }

    #[test]
    fn the_inverse_turns_an_offset_into_an_index_for_every_class_size() {
        // Pure integer arithmetic, which Miri computes exactly as the native
        // runs do (there, and in each feature configuration of CI, every
        // multiple of 8 up to the largest class: 8,192 sizes, 23 s under
        // Miri). Under Miri: every size up to 1 KiB (the odd parts 1 to 127
        // and the powers of two), then every 37th multiple of 8 (an odd
        // stride, so the odd parts keep changing) and the largest class:
        // 347 sizes, each with the same five indices up to the segment's end.
        let sizes: Vec<usize> = if cfg!(miri) {
            (8..=1024)
                .step_by(8)
                .chain((8 * 37 * 4..crate::MAX_CLASS_SIZE).step_by(8 * 37))
                .chain([crate::MAX_CLASS_SIZE])
                .collect()
        } else {
            (8..=crate::MAX_CLASS_SIZE).step_by(8).collect()
        };
        for size in sizes {
            let shift = size.trailing_zeros();
            let inverse = inverse_of(size >> shift);
            assert_eq!((size >> shift).wrapping_mul(inverse), 1, "size {size}");
            for index in [0, 1, 2, 1000, (chunk::SEGMENT / size).max(3) - 1] {
                assert_eq!(((index * size) >> shift).wrapping_mul(inverse), index);
            }
        }
    }
}
