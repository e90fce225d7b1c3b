//! The large path: allocations above the largest class (or aligned beyond
//! every class), for boxes, checked blocks and collections alike, each a
//! system allocation of its own (from [`source`](crate::source)), and the
//! heap's shared record, [`HeapRecord`] (budget, chunk map, registry, name,
//! lock).
//!
//! Typed allocations too large for any class (or every typed allocation in
//! pass-through mode) get a [`Footer`] after the value that points at the
//! manager's [`HeapRecord`] counters, so a `PoolBox` of one word can find them
//! when it is dropped or cloned (its layout, known to the box, says where
//! the footer is).
//!
//! A freed one of at most 4 MiB is kept for reuse (see [`Cache`]), as the
//! pools keep their free blocks: the next allocation of its large class
//! takes it back without a call to the system allocator, and without
//! touching the list every allocation is on. A trim gives them back (a
//! reset keeps them, as the pools keep their chunks).

use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::{self, NonNull};

use crate::budget::Budget;
use crate::chunk::ChunkMap;
use crate::source::{alloc, alloc_zeroed, dealloc, Source};
use crate::sync::{Counter, RawLock};
use crate::table::Table;
use crate::Error;

/// How a heap is set up: a `MemoryManager`'s, or one of a shared manager's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeapKind {
    /// Where chunks, large allocations and the heap's own records come from.
    pub(crate) source: Source,
    /// Whether the pools' chunks are entered in the chunk map (needed by the
    /// `Allocator` implementation only; a shared manager's per-thread heaps
    /// and `Global` have none, so nothing of theirs is a `RefCell` another
    /// thread could read).
    pub(crate) map: bool,
    /// Whether the pools' chunks are entered in the process-wide
    /// [`segment_map`](crate::segment_map), read without a lock (a shared
    /// manager's thread heaps: its collections free on any thread).
    #[cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))]
    pub(crate) segment_map: bool,
    /// The shared manager's cache of empty chunks its thread heaps give
    /// back and take (see [`ChunkCache`](crate::chunk::ChunkCache)), or
    /// null.
    #[cfg(all(feature = "std", not(loom)))]
    pub(crate) chunk_cache: *const crate::chunk::ChunkCache,
    /// The shared manager's state the heap belongs to (for a `SharedBox`'s
    /// clone), or null.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) owner: *const (),
    /// The shared budget the heap charges, or null for its own.
    pub(crate) budget: *const crate::budget::SharedBudget,
    /// Whether the heap serves allocations above the classes, so its
    /// record carries the large cache's stacks (a shared manager's thread
    /// heaps do not: the central heap serves those).
    pub(crate) large: bool,
    /// A central heap's lock (static), or null.
    pub(crate) lock: *const RawLock,
}

impl HeapKind {
    /// A `MemoryManager`'s heap.
    pub(crate) const LOCAL: HeapKind = HeapKind {
        source: Source::Global,
        map: true,
        segment_map: false,
        #[cfg(all(feature = "std", not(loom)))]
        chunk_cache: core::ptr::null(),
        owner: ptr::null(),
        budget: ptr::null(),
        large: true,
        lock: ptr::null(),
    };
}

/// The manager's large path: its record of the allocations served by the
/// system allocator (boxes, checked blocks and collections above every
/// class). It lives at a fixed heap address for the manager's lifetime.
///
/// It also holds the manager's [`Budget`], which the pools reach through a
/// pointer: both live exactly as long as the manager.
///
/// Invariant, relied on by every `unsafe` block of this module:
/// - Every allocation made by [`alloc_with_footer`] for this record and not
///   yet freed is on the list from `head` (through `Footer::prev`/`next`)
///   exactly once; its footer lies `full.size() - size_of::<Footer>()`
///   bytes after its base, which is where [`footer_of`] finds it from the
///   value and the layout it was made for, and points back here.
/// - Such an allocation is either live (its owner may use the value) or
///   kept: on exactly one stack of the cache — the one of its large class,
///   whose allocations all have its full layout — and used by no one.
/// - `live`/`block_live` count the live ones, `bytes` their full sizes,
///   `cache.bytes` the kept ones'; the budget is charged for all of them.
/// - The registry maps the value address of every live allocation the
///   `Allocator` made to its footer, and nothing else.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct HeapRecord {
    // The field order is deliberate: counters updated by the same call are
    // not adjacent, so LLVM does not merge two 8-byte updates into one
    // 16-byte load and store — which stalled on store forwarding when the
    // previous call had written them separately (pair/600 B PoolBox spent
    // half of its free in that one load).
    /// Live allocations of boxes and collections.
    pub(crate) live: Counter,
    /// Most recent allocation; a doubly linked list through the footers.
    head: Cell<*mut Footer>,
    /// Bytes asked of the system allocator for them, footers included.
    pub(crate) bytes: Counter,
    /// The manager's byte budget.
    pub(crate) budget: Budget,
    /// Most allocations of boxes and collections live at once.
    pub(crate) peak: Counter,
    /// Allocations made, ever (of both kinds).
    pub(crate) allocs: Counter,
    /// Live allocations of checked blocks.
    pub(crate) block_live: Counter,
    /// Most allocations of checked blocks live at once.
    pub(crate) block_peak: Counter,
    /// The typed pools' chunks by address (see [`ChunkMap`]).
    pub(crate) chunks: ChunkMap,
    /// The manager's name, for messages (see `Builder::name`).
    pub(crate) name: Option<&'static str>,
    /// Freed allocations kept for reuse.
    cache: Cache,
    /// The footers of the allocations made through the `Allocator`
    /// implementation, by value address: how a pointer handed back there,
    /// whose provenance may cover only the value, is turned into one of the
    /// manager's own (see [`registered`]).
    registry: Registry,
    /// Where the memory comes from, and the rest of the heap's kind.
    pub(crate) kind: HeapKind,
    /// For a shared manager's central heap (whose heap record this is): the
    /// lock taken around every use of it, one of the static locks of
    /// `sync.rs` (never freed, so a `fork` handler may take it at any
    /// time); null for any other heap.
    pub(crate) lock: *const RawLock,
}

impl HeapRecord {
    /// The layout of a heap record of `kind` with its cache's stacks after
    /// it (if the heap has a large path), and their offset.
    fn layout(large: bool) -> (Layout, usize) {
        let record = Layout::new::<HeapRecord>();
        let stacks = if large { CLASSES } else { 0 };
        match Layout::array::<Cell<*mut Footer>>(stacks).and_then(|a| record.extend(a)) {
            Ok((layout, offset)) => (layout.pad_to_align(), offset),
            Err(_) => unreachable!("a fixed, small layout"),
        }
    }

    /// Bytes of a heap record, its stacks included if the heap has a
    /// large path (`large`: [`HeapKind::large`]).
    pub(crate) fn size(large: bool) -> usize {
        Self::layout(large).0.size()
    }

    /// A heap record with no allocations yet, its memory from
    /// `kind.source`; `None` if that cannot be had. `budget` is the
    /// manager's limit in bytes. Freed with [`destroy`](Self::destroy).
    pub(crate) fn create(
        budget: Option<usize>,
        name: Option<&'static str>,
        kind: HeapKind,
    ) -> Option<NonNull<HeapRecord>> {
        let (layout, offset) = Self::layout(kind.large);
        let record = alloc(kind.source, layout)?;
        let len = if kind.large { CLASSES } else { 0 };
        // SAFETY: a fresh allocation of `layout`: the record at its start,
        // `len` cells at `offset` (`Layout::extend`), each written once.
        unsafe {
            let stacks = record.add(offset).cast::<Cell<*mut Footer>>();
            for i in 0..len {
                stacks.add(i).write(Cell::new(ptr::null_mut()));
            }
            let record = record.cast::<HeapRecord>();
            record.write(HeapRecord::new(budget, name, kind, (stacks, len)));
            Some(record)
        }
    }

    /// Drops and frees a heap record of [`create`](Self::create).
    ///
    /// # Safety
    ///
    /// `record` must come from `create`, be freed once, and not be used
    /// afterwards.
    pub(crate) unsafe fn destroy(record: NonNull<HeapRecord>) {
        // SAFETY: the caller's guarantee; the record was made by `create`
        // with its kind's layout (the cells need no drop).
        unsafe {
            let kind = (*record.as_ptr()).kind;
            ptr::drop_in_place(record.as_ptr());
            dealloc(kind.source, record.cast(), Self::layout(kind.large).0);
        }
    }

    /// No allocations yet; `budget` is the manager's limit in bytes; the
    /// cache's stacks are `stacks` (see [`Cache`]).
    fn new(
        budget: Option<usize>,
        name: Option<&'static str>,
        kind: HeapKind,
        (stacks, len): (NonNull<Cell<*mut Footer>>, usize),
    ) -> Self {
        let budget = Budget::new(budget, kind.budget);
        // With a limit — the manager's own or a shared manager's, which its
        // central heap charges — nothing is kept: a kept allocation would
        // count against the limit and could refuse a request that fits.
        // (The shared budget is made before its heaps: `State::create`.)
        let on = budget.limit().is_none() && !cfg!(feature = "pass-through");
        HeapRecord {
            live: Counter::new(0),
            peak: Counter::new(0),
            block_live: Counter::new(0),
            block_peak: Counter::new(0),
            allocs: Counter::new(0),
            bytes: Counter::new(0),
            head: Cell::new(ptr::null_mut()),
            budget,
            chunks: ChunkMap::new(kind.source),
            name,
            cache: Cache {
                stacks,
                len,
                bytes: Counter::new(0),
                on,
            },
            registry: Registry::new(kind.source),
            kind,
            lock: kind.lock,
        }
    }

    /// Bytes of the freed allocations kept for reuse (still charged to the
    /// budget).
    pub(crate) fn cached_bytes(&self) -> usize {
        self.cache.bytes.get()
    }

    /// Bytes of the manager-wide side tables: the chunk map and the registry.
    pub(crate) fn table_bytes(&self) -> usize {
        self.chunks.bytes() + self.registry.bytes()
    }

    /// Live allocations the `Allocator` implementation made here (counted
    /// among `live`): a collection's memory above the largest class.
    pub(crate) fn registered_count(&self) -> usize {
        self.registry.len()
    }
}

/// One place of the [`Registry`]: a value's address and its footer.
type Place = Option<(usize, NonNull<Footer>)>;

/// An open-addressing hash table (linear probing, backward-shift deletion)
/// from a value's address to its footer. Its storage is allocated fallibly
/// and charged to the budget, and counted in the statistics. A [`Table`]:
/// every method is one step with no call out, but `reserve_one`, which
/// allocates and frees with nothing borrowed (the re-entrancy rule, see
/// `table.rs`).
#[derive(Debug)]
struct Registry {
    /// A power of two of places, or none; at most 3/4 used.
    places: Table<Place>,
    /// Places used.
    len: Cell<usize>,
}

#[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // used by the `Allocator` impl
impl Registry {
    /// An empty registry whose places come from `source`.
    const fn new(source: Source) -> Self {
        Registry {
            places: Table::new(source),
            len: Cell::new(0),
        }
    }

    /// Bytes of storage.
    fn bytes(&self) -> usize {
        self.places.bytes()
    }

    /// Entries.
    fn len(&self) -> usize {
        self.len.get()
    }

    /// The home place of `addr` in a table of `n` (a power of two) places.
    #[inline]
    fn home(addr: usize, n: usize) -> usize {
        // Fibonacci hashing: the high bits of the product, then the mask.
        ((addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & (n - 1)
    }

    /// Whether one more entry fits under the 3/4 load.
    #[inline(always)]
    fn has_room(&self) -> bool {
        (self.len.get() + 1) * 4 <= self.places.len() * 3
    }

    /// Makes room for one more entry, charging growth to `budget`: inline,
    /// the test that there is room (every allocation of the `Allocator`
    /// above the classes makes it; out of line, with its `Result` returned
    /// through memory, it was 50 instructions an allocation).
    #[inline(always)]
    fn reserve_one(&self, budget: &Budget) -> Result<(), Error> {
        if self.has_room() {
            Ok(())
        } else {
            self.grow(budget)
        }
    }

    /// [`reserve_one`](Self::reserve_one)'s growth. The bigger table is
    /// allocated with nothing borrowed; the entries move into it in one
    /// step if the registry is still the size it was (a call the allocator
    /// made into this manager may have grown it: then this looks again),
    /// and the old places are freed last.
    #[cold]
    #[inline(never)]
    fn grow(&self, budget: &Budget) -> Result<(), Error> {
        while !self.has_room() {
            let n = self.places.len();
            let new_n = n.saturating_mul(2).max(16);
            let grow = (new_n - n) * core::mem::size_of::<Place>();
            budget.charge(grow)?;
            // Charged above as the difference: the old places go below.
            let new = Table::new(self.places.source());
            if let Err(e) = new.grow(new_n, &Budget::new(None, ptr::null())) {
                budget.credit(grow);
                return Err(e);
            }
            new.resize_within(new_n, None);
            if self.places.len() == n {
                for (addr, footer) in self.places.iter().flatten() {
                    let mut i = Registry::home(addr, new_n);
                    while new.get(i).is_some_and(|p| p.is_some()) {
                        i = (i + 1) & (new_n - 1);
                    }
                    new.set(i, Some((addr, footer)));
                }
                self.places.swap(&new);
            } else {
                budget.credit(grow); // grown meanwhile: ours goes
            }
            drop(new); // the old places (or, unused, the new), nothing held
        }
        Ok(())
    }

    /// The place holding `addr`, if any.
    fn find(&self, addr: usize) -> Option<usize> {
        let n = self.places.len();
        if n == 0 {
            return None;
        }
        let mut i = Registry::home(addr, n);
        loop {
            match self.places.get(i)? {
                None => return None,
                Some((a, _)) if a == addr => return Some(i),
                Some(_) => i = (i + 1) & (n - 1),
            }
        }
    }

    /// Adds an entry if there is room for it (see
    /// [`reserve_one`](Self::reserve_one)); one step.
    fn insert(&self, addr: usize, footer: NonNull<Footer>) -> bool {
        if !self.has_room() {
            return false;
        }
        let n = self.places.len();
        let mut i = Registry::home(addr, n);
        while self.places.get(i).is_some_and(|p| p.is_some()) {
            i = (i + 1) & (n - 1);
        }
        self.places.set(i, Some((addr, footer)));
        self.len.set(self.len.get() + 1);
        true
    }

    /// The footer registered for `addr`.
    fn get(&self, addr: usize) -> Option<NonNull<Footer>> {
        let i = self.find(addr)?;
        self.places.get(i).flatten().map(|(_, f)| f)
    }

    /// Removes and returns the footer registered for `addr`.
    fn remove(&self, addr: usize) -> Option<NonNull<Footer>> {
        let mut hole = self.find(addr)?;
        let (_, footer) = self.places.get(hole).flatten()?;
        self.places.set(hole, None);
        self.len.set(self.len.get() - 1);
        // Shift back the entries after the hole that may not stay behind it.
        let n = self.places.len();
        let mut i = hole;
        loop {
            i = (i + 1) & (n - 1);
            let Some(Some((a, f))) = self.places.get(i) else {
                break;
            };
            let home = Registry::home(a, n);
            // `a` may move into the hole unless its home lies cyclically in
            // (hole, i].
            let stays = if hole <= i {
                hole < home && home <= i
            } else {
                hole < home || home <= i
            };
            if !stays {
                self.places.set(hole, Some((a, f)));
                self.places.set(i, None);
                hole = i;
            }
        }
        Some(footer)
    }

    /// Forgets every entry and frees the storage; returns its bytes.
    fn clear(&self) -> usize {
        self.len.set(0);
        self.places.free()
    }
}

/// Written right after every typed system allocation's value (a footer,
/// not a header: a header in front of an over-aligned value would need
/// padding up to the value's alignment — 4 KiB more for a page-aligned
/// value, 1 MiB more for a 1 MiB-aligned one — while after the value it
/// needs at most 7 bytes of padding whatever the alignment).
///
/// ```text
///  base = value (aligned to max(align, 8))
///  v
///  +-----------------+-----+--------+
///  | value           | pad | Footer |   full = offset + size_of::<Footer>()
///  +-----------------+-----+--------+
///  |<-    offset     ->|
/// ```
#[repr(C)]
struct Footer {
    heap_record: *const HeapRecord,
    prev: *mut Footer,
    next: *mut Footer,
    /// Layout of the whole allocation, footer included.
    full: Layout,
    /// While the allocation is in the cache: the next one in its bucket.
    cache_next: *mut Footer,
}

/// Freed allocations kept for reuse, as a pool keeps its free blocks: one
/// stack per **large class** (the full size of an allocation up to
/// [`ROUND_MAX`] is rounded up to its class, see [`large_class`], so an
/// allocation serves any request of its class), found by the class of the
/// full size — a constant for a typed value. A freed allocation stays on
/// its heap record's list, so keeping it or taking it back touches no
/// neighbour: the cost of the large path is a pop or a push. Kept until a
/// trim, like a pool's free blocks (a reset keeps them too), up to
/// [`CACHE_CAP`] bytes in all; larger or over-aligned allocations, and
/// those past the cap, go back to the system at once (keeping the ones up
/// to 4 MiB cut the trace replay's page faults by 1,450 a round and its
/// time by a quarter: docs/benchmarks.md, "Eleventh session"). Off in
/// pass-through mode,
/// which must show every allocation and free to the tools that watch the
/// system allocator, and in a manager with a budget, where a kept
/// allocation would count against the budget and could refuse a request
/// that fits.
#[derive(Debug)]
struct Cache {
    /// One stack per large class, linked through `Footer::cache_next`:
    /// [`CLASSES`] cells right after the heap record in its allocation
    /// (see [`HeapRecord::create`]), or none (`len` 0) in a heap with no
    /// large path.
    stacks: NonNull<Cell<*mut Footer>>,
    /// [`CLASSES`], or 0.
    len: usize,
    /// Bytes kept (full sizes).
    bytes: Counter,
    /// Whether the cache keeps anything.
    on: bool,
}

/// The end of the fine large classes (32 per doubling).
const FINE_MAX: usize = (64 << 10) - 8;

/// The largest full size with a large class (rounded up to it), and the
/// largest the cache keeps.
const ROUND_MAX: usize = (4 << 20) - 8;

/// The most bytes a heap's cache keeps.
const CACHE_CAP: usize = 64 << 20;

/// The largest full size of a checked block the cache keeps and serves: a
/// block is zeroed when it is handed out, and above this a fresh one from
/// the system (zero pages, made resident only where they are written)
/// costs less memory than a kept one zeroed by hand (the trace replay
/// through blocks: a peak of 57.9 MB with blocks to 4 MiB kept, 53.7 MB
/// without).
const BLOCK_CACHE_MAX: usize = FINE_MAX;

/// Large classes, on the full size plus 8 (`t`): steps of 8 up to 512
/// bytes (63 classes), 32 per doubling up to [`FINE_MAX`] (at most 1/32
/// wasted), then 8 per doubling up to [`ROUND_MAX`].
const CLASSES: usize =
    63 + 32 * FINE_DOUBLINGS + 8 * ((ROUND_MAX + 8).trailing_zeros() as usize - 16);

/// Doublings of `t` with 32 classes each: 512 B..64 KiB.
const FINE_DOUBLINGS: usize = (FINE_MAX + 8).trailing_zeros() as usize - 9;

/// The large class of full size `size` (a multiple of 8, at most
/// [`ROUND_MAX`]): its index and its size, at most 1/8 more than
/// `size` above 64 bytes and 1/32 more from 512 bytes to [`FINE_MAX`].
///
/// The classes are 8 bytes short of their steps: above 512 bytes each is 8
/// bytes short of a multiple of 16, so that the system allocator's 8-byte
/// header (glibc's, on 64-bit targets) fills its 16-byte granule exactly
/// (a 632-byte value with its 48-byte footer: 680 bytes, 688 in glibc;
/// with the classes on the steps, 704 and 720).
#[inline(always)]
const fn large_class(size: usize) -> (usize, usize) {
    let t = size + 8;
    let (index, class_t) = if t <= 512 {
        let class_t = if t <= 16 { 16 } else { t.next_multiple_of(8) };
        (class_t / 8 - 2, class_t)
    } else {
        // 2^e < t <= 2^(e + 1).
        let e = (usize::BITS - 1 - (t - 1).leading_zeros()) as usize;
        let (per, first) = if e < 9 + FINE_DOUBLINGS {
            (5, 63 + 32 * (e - 9))
        } else {
            (3, 63 + 32 * FINE_DOUBLINGS + 8 * (e - 9 - FINE_DOUBLINGS))
        };
        let step = 1 << (e - per);
        let class_t = t.next_multiple_of(step);
        let k = (class_t - (1 << e)) / step; // 1..=2^per
        (first + k - 1, class_t)
    };
    (index, class_t - 8)
}

static_assertions::const_assert_eq!(large_class(ROUND_MAX).0, CLASSES - 1);

impl Cache {
    /// The stacks, one per large class (none in a heap with no large path).
    #[inline(always)]
    fn stacks(&self) -> &[Cell<*mut Footer>] {
        // SAFETY: `stacks` is `len` initialised cells in the heap record's
        // allocation, alive as long as the record (with `len` 0: the
        // aligned end of the record, no cell read), and written through
        // `Cell`s only.
        unsafe { core::slice::from_raw_parts(self.stacks.as_ptr(), self.len) }
    }

    /// Takes a kept allocation of geometry `g`, if there is one, and counts
    /// it live again.
    #[inline(always)]
    fn take<const BLOCK: bool>(
        &self,
        heap_record: &HeapRecord,
        g: Geometry,
    ) -> Option<NonNull<u8>> {
        let Geometry {
            full,
            offset,
            class,
        } = g;
        let stack = self.stacks().get(class?)?;
        let footer = NonNull::new(stack.get())?;
        // SAFETY: a footer on a stack is that of a live allocation of
        // `full` (its class's one layout), kept here, whose value is
        // `offset` bytes before it.
        let value = unsafe {
            stack.set((*footer.as_ptr()).cache_next);
            footer.cast::<u8>().sub(offset)
        };
        self.bytes.set(self.bytes.get() - full.size());
        // SAFETY: the value's bytes are ours again, filled when it was kept
        // (`debug-fill` only; nothing without it).
        if let Some(written) = unsafe { crate::fill::written(value, offset) } {
            // A write after free: the allocation goes back to the system
            // first, so the manager carries on after the panic with nothing
            // counted that no one holds.
            // SAFETY: a kept allocation, off its stack: in no cache.
            unsafe { free_now(heap_record, footer) };
            written.panic();
        }
        heap_record.count_alloc::<BLOCK>(full);
        Some(value)
    }

    /// Keeps the allocation of `footer` (of geometry `g`) for reuse if it
    /// has a large class; `false` if not, and then nothing changed.
    ///
    /// # Safety
    ///
    /// `footer` must be the footer of a live allocation of `heap_record` of
    /// geometry `g`, given up by its owner.
    #[inline(always)]
    unsafe fn keep(&self, footer: NonNull<Footer>, g: Geometry) -> bool {
        let Geometry {
            full,
            offset,
            class: Some(class),
        } = g
        else {
            return false;
        };
        if !self.on || self.bytes.get() + full.size() > CACHE_CAP {
            return false;
        }
        let Some(stack) = self.stacks().get(class) else {
            return false;
        };
        // SAFETY: the caller's guarantee: a live footer of an allocation no
        // one uses now; its value lies `offset` bytes before it.
        unsafe {
            (*footer.as_ptr()).cache_next = stack.get();
            crate::fill::freed(footer.cast::<u8>().sub(offset), offset);
        }
        stack.set(footer.as_ptr());
        self.bytes.set(self.bytes.get() + full.size());
        true
    }
}

/// The alignment of every allocation with a large class.
const FULL_ALIGN: usize = core::mem::align_of::<Footer>();

/// Where the parts of a large allocation lie, for a value of some layout:
/// worked out once an allocation or a free. (For a layout known only at run
/// time — the `Allocator`'s, the trace replay's 632-byte values — the large
/// class is a dozen instructions, and an allocation through the registry
/// worked it out four times, a free three.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    /// The whole allocation: the value, padding to the footer's alignment,
    /// the footer — rounded up to its large class if it has one — aligned
    /// to the larger of the value's and the footer's alignments.
    full: Layout,
    /// The footer's offset from the value: the end of `full`, less the
    /// footer, so that every value of a large class has its footer in the
    /// same place.
    offset: usize,
    /// The large class of `full`, if it has one (at most [`ROUND_MAX`]
    /// bytes, aligned to at most [`FULL_ALIGN`], and not in pass-through
    /// mode, where the tools watching the system allocator must see an
    /// overrun past the value): the only allocations the cache keeps.
    class: Option<usize>,
}

impl Geometry {
    /// The geometry of the allocation for a value of `layout`.
    #[inline(always)]
    fn of(layout: Layout) -> Result<Geometry, Error> {
        let overflow = Error::LayoutOverflow {
            size: layout.size(),
            align: layout.align(),
        };
        let raw = layout
            .size()
            .checked_next_multiple_of(FULL_ALIGN)
            .and_then(|padded| padded.checked_add(core::mem::size_of::<Footer>()))
            .ok_or(overflow)?;
        let (class, size) = if Geometry::classed(raw, layout.align()) {
            let (class, size) = large_class(raw);
            (Some(class), size)
        } else {
            (None, raw)
        };
        Ok(Geometry {
            full: Layout::from_size_align(size, layout.align().max(FULL_ALIGN))
                .map_err(|_| overflow)?,
            offset: size - core::mem::size_of::<Footer>(),
            class,
        })
    }

    /// Whether an allocation of `size` bytes (value and footer) at `align`
    /// has a large class: at most [`ROUND_MAX`] bytes, aligned to at most
    /// [`FULL_ALIGN`], and not in pass-through mode.
    #[inline(always)]
    fn classed(size: usize, align: usize) -> bool {
        size <= ROUND_MAX && align <= FULL_ALIGN && !cfg!(feature = "pass-through")
    }

    /// The footer of the allocation of this geometry whose value is at
    /// `value`.
    ///
    /// # Safety
    ///
    /// `value` must be the value of a live allocation of this geometry
    /// (made by [`alloc_typed`] or one of its kin).
    #[inline(always)]
    unsafe fn footer(self, value: NonNull<u8>) -> NonNull<Footer> {
        // SAFETY: the footer lies in the same allocation, `offset` bytes
        // after the value (caller).
        unsafe { value.add(self.offset) }.cast()
    }

    /// The geometry of a live allocation of full layout `full` whose footer
    /// lies `offset` bytes after its value (a footer's record of itself).
    #[inline(always)]
    fn of_full(full: Layout, offset: usize) -> Geometry {
        // A full layout with a large class is that class's size (a
        // multiple of its step: its class is its own), at `FULL_ALIGN`.
        let class =
            Geometry::classed(full.size(), full.align()).then(|| large_class(full.size()).0);
        Geometry {
            full,
            offset,
            class,
        }
    }
}

/// The full layout of a typed system allocation of `layout` (see
/// [`Geometry`]).
#[inline]
fn with_footer(layout: Layout) -> Result<Layout, Error> {
    Geometry::of(layout).map(|g| g.full)
}

/// Whether values of `old` and `new` fit the same allocation, footer in the
/// same place: a resize between them can stay where it is.
#[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // used by the `Allocator` impl
pub(crate) fn same_allocation(old: Layout, new: Layout) -> bool {
    matches!((with_footer(old), with_footer(new)), (Ok(a), Ok(b)) if a == b)
}

/// The footer of a typed system allocation.
///
/// # Safety
///
/// `value` must be the value pointer of a live allocation made by
/// [`alloc_typed`] for `layout`.
#[inline]
unsafe fn footer_of(value: NonNull<u8>, layout: Layout) -> NonNull<Footer> {
    // (The layout was allocated: its geometry is `Ok`.)
    let offset = Geometry::of(layout).map_or(0, |g| g.offset);
    // SAFETY: the footer lies in the same allocation, `offset` bytes after
    // the value (the caller vouches for `layout`).
    unsafe { value.add(offset) }.cast()
}

/// Allocates a value of `layout` (non-zero size) with a footer after it, and
/// records it in `heap_record`. The layout arithmetic is inlined, so for a typed
/// value it is a constant; the rest is out of line.
#[inline(always)]
pub(crate) fn alloc_typed(heap_record: &HeapRecord, layout: Layout) -> Result<NonNull<u8>, Error> {
    alloc_large::<false>(heap_record, layout, Geometry::of(layout)?)
}

/// [`alloc_typed`] for a checked block: counted as a block, and zeroed
/// (above [`BLOCK_CACHE_MAX`], by the system allocator, whose fresh pages
/// are zero already).
#[inline(never)]
pub(crate) fn alloc_block(heap_record: &HeapRecord, layout: Layout) -> Result<NonNull<u8>, Error> {
    let g = Geometry::of(layout)?;
    if g.full.size() > BLOCK_CACHE_MAX {
        return alloc_with_footer::<true>(heap_record, layout, true);
    }
    let value = match heap_record.cache.take::<true>(heap_record, g) {
        Some(value) => value,
        // `black_box` hides the allocation from LLVM, which would otherwise
        // fuse malloc + memset into calloc: glibc's calloc skips its
        // per-thread cache (measured: pair/600 B blocks spent 30% of their
        // time in calloc's slow path).
        None => core::hint::black_box(alloc_with_footer::<true>(heap_record, layout, false)?),
    };
    // SAFETY: the value's `layout.size()` bytes are ours.
    unsafe { value.write_bytes(0, layout.size()) };
    Ok(value)
}

/// [`alloc_typed`] counted as a block (`BLOCK`) or not, for a value of
/// `layout` whose allocation has geometry `g`.
#[inline(always)]
fn alloc_large<const BLOCK: bool>(
    heap_record: &HeapRecord,
    layout: Layout,
    g: Geometry,
) -> Result<NonNull<u8>, Error> {
    match heap_record.cache.take::<BLOCK>(heap_record, g) {
        Some(value) => Ok(value),
        None => alloc_with_footer::<BLOCK>(heap_record, layout, false),
    }
}

impl HeapRecord {
    /// Counts an allocation of full layout `full` handed out, for a checked
    /// block (`BLOCK`) or a box or collection.
    #[inline(always)]
    fn count_alloc<const BLOCK: bool>(&self, full: Layout) {
        let (live, peak) = if BLOCK {
            (&self.block_live, &self.block_peak)
        } else {
            (&self.live, &self.peak)
        };
        live.set(live.get() + 1);
        peak.set(peak.get().max(live.get()));
        self.allocs.set(self.allocs.get() + 1);
        self.bytes.set(self.bytes.get() + full.size());
    }

    /// Counts an allocation of full layout `full` given back.
    #[inline(always)]
    fn count_free<const BLOCK: bool>(&self, full: Layout) {
        let live = if BLOCK { &self.block_live } else { &self.live };
        live.set(live.get() - 1);
        self.bytes.set(self.bytes.get() - full.size());
    }
}

/// [`alloc_typed`] from the system, for a value of `layout`. (Its geometry
/// is worked out again here, off the hot path: passed in, it was a struct
/// the caller stored on the stack before every allocation, five stores a
/// `PoolBox` pair of 600 bytes.)
#[inline(never)]
fn alloc_with_footer<const BLOCK: bool>(
    heap_record: &HeapRecord,
    layout: Layout,
    zeroed: bool,
) -> Result<NonNull<u8>, Error> {
    let Geometry { full, offset, .. } = Geometry::of(layout)?;
    heap_record
        .budget
        .charge(full.size())
        .map_err(|e| e.refusing(layout.size(), heap_record.name))?;
    let value = if zeroed {
        alloc_zeroed(heap_record.kind.source, full)
    } else {
        alloc(heap_record.kind.source, full)
    };
    let Some(value) = value else {
        heap_record.budget.credit(full.size());
        return Err(Error::OutOfMemory {
            size: full.size(),
            align: full.align(),
        });
    };
    // SAFETY: the footer lies `offset` bytes into the allocation.
    let footer = unsafe { value.add(offset) }.cast::<Footer>();
    let next = heap_record.head.get();
    // SAFETY: the footer starts `offset` bytes into an allocation of
    // `offset + size_of::<Footer>()` bytes, at a multiple of 8 from a base
    // aligned to at least 8, so it is in bounds and aligned. `next`, if not null, is the footer of another live allocation
    // of this heap record.
    unsafe {
        footer.write(Footer {
            heap_record,
            prev: ptr::null_mut(),
            next,
            full,
            cache_next: ptr::null_mut(),
        });
        if let Some(next) = NonNull::new(next) {
            (*next.as_ptr()).prev = footer.as_ptr();
        }
    }
    heap_record.head.set(footer.as_ptr());
    heap_record.count_alloc::<BLOCK>(full);
    Ok(value)
}

/// The [`HeapRecord`] a typed system allocation belongs to.
///
/// # Safety
///
/// `value` must come from [`alloc_typed`] for `layout` and not have been
/// freed, and the manager that owns the `HeapRecord` must still be alive.
#[inline]
pub(crate) unsafe fn heap_record_of<'a>(value: NonNull<u8>, layout: Layout) -> &'a HeapRecord {
    // SAFETY: `alloc_typed` wrote a footer holding a valid `*const HeapRecord`;
    // the caller guarantees the allocation and the manager are alive.
    unsafe { &*(*footer_of(value, layout).as_ptr()).heap_record }
}

/// Unlinks a footer and frees its allocation (the caller counts it).
///
/// # Safety
///
/// `footer` must be the footer of a live or kept allocation of
/// `alloc_typed` for `heap_record`, and not in the cache.
unsafe fn unlink_and_free(heap_record: &HeapRecord, footer: NonNull<Footer>) {
    // SAFETY:
    // 1. The caller guarantees a live footer; its neighbours on the list are
    //    live footers of the same heap record, so the link updates are in bounds.
    // 2. `alloc_typed` put the footer at the end of the allocation, so the
    //    base is `full.size() - size_of::<Footer>()` bytes before it, and
    //    `full` is the layout it was allocated with. It is unlinked first, so
    //    it is freed exactly once.
    unsafe {
        let Footer {
            prev, next, full, ..
        } = footer.read();
        match NonNull::new(prev) {
            Some(p) => (*p.as_ptr()).next = next,
            None => heap_record.head.set(next),
        }
        if let Some(n) = NonNull::new(next) {
            (*n.as_ptr()).prev = prev;
        }
        heap_record.budget.credit(full.size());
        let base = footer
            .cast::<u8>()
            .sub(full.size() - core::mem::size_of::<Footer>());
        dealloc(heap_record.kind.source, base, full);
    }
}

/// Frees a typed system allocation and forgets it.
///
/// # Safety
///
/// `value` must come from [`alloc_typed`] for `layout` and not have been
/// freed, and its manager must still be alive.
#[inline(always)]
pub(crate) unsafe fn free_typed(value: NonNull<u8>, layout: Layout) {
    // `Ok`: this layout was allocated.
    let Ok(g) = Geometry::of(layout) else {
        return;
    };
    // SAFETY: the caller guarantees a live allocation of `layout` of a live
    // manager: its footer, `g.offset` bytes after the value, names the
    // manager's heap record.
    unsafe {
        let footer = g.footer(value);
        release::<false>(&*(*footer.as_ptr()).heap_record, footer, g)
    }
}

/// Frees a checked block's allocation from [`alloc_block`].
///
/// # Safety
///
/// `value` must come from [`alloc_block`] for `heap_record` and `layout` and
/// not have been freed; nothing may use it afterwards.
#[inline(never)]
pub(crate) unsafe fn free_block(heap_record: &HeapRecord, value: NonNull<u8>, layout: Layout) {
    // `Ok`: this layout was allocated.
    let Ok(g) = Geometry::of(layout) else {
        return;
    };
    // SAFETY: the caller's guarantee: a live allocation of this geometry.
    unsafe { release::<true>(heap_record, g.footer(value), g) }
}

/// Gives up a live allocation of `heap_record` of geometry `g`: kept in the
/// cache, or freed.
///
/// # Safety
///
/// `footer` must be the footer of a live allocation of `alloc_typed` for
/// `heap_record` of geometry `g`, not used afterwards.
#[inline(always)]
unsafe fn release<const BLOCK: bool>(
    heap_record: &HeapRecord,
    footer: NonNull<Footer>,
    g: Geometry,
) {
    heap_record.count_free::<BLOCK>(g.full);
    // A block above `BLOCK_CACHE_MAX` goes back: its next one is zeroed by
    // the system.
    let keep = !BLOCK || g.full.size() <= BLOCK_CACHE_MAX;
    // SAFETY: the caller's guarantee.
    if !(keep && unsafe { heap_record.cache.keep(footer, g) }) {
        // SAFETY: as above; not in the cache.
        unsafe { free_now(heap_record, footer) };
    }
}

/// [`unlink_and_free`], out of line.
///
/// # Safety
///
/// As [`unlink_and_free`].
#[inline(never)]
unsafe fn free_now(heap_record: &HeapRecord, footer: NonNull<Footer>) {
    // SAFETY: the caller's guarantee.
    unsafe { unlink_and_free(heap_record, footer) }
}

/// Like [`alloc_typed`], and records the allocation in the registry, for
/// the `Allocator` implementation: it is freed with [`free_registered`].
#[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // used by the `Allocator` impl
pub(crate) fn alloc_registered(
    heap_record: &HeapRecord,
    layout: Layout,
) -> Result<NonNull<u8>, Error> {
    let refusing = |e: Error| e.refusing(layout.size(), heap_record.name);
    heap_record
        .registry
        .reserve_one(&heap_record.budget)
        .map_err(refusing)?;
    let g = Geometry::of(layout)?;
    let value = alloc_large::<false>(heap_record, layout, g)?;
    // SAFETY: `value` was just allocated for `layout`, of geometry `g`.
    let footer = unsafe { g.footer(value) };
    // The allocator has returned: the room made above may be taken (the
    // re-entrancy rule); the insert looks again.
    while !heap_record.registry.insert(value.addr().get(), footer) {
        if let Err(e) = heap_record.registry.reserve_one(&heap_record.budget) {
            // SAFETY: just allocated by `alloc_typed` for `layout`, in no
            // table, used by no one.
            unsafe { release::<false>(heap_record, footer, g) };
            return Err(refusing(e));
        }
    }
    Ok(value)
}

/// The manager's own pointer to the registered allocation whose value is at
/// `addr`, with provenance over the whole allocation; `None` if there is
/// none, or if `resized` names a layout of another large class than the
/// one it was made for (its footer elsewhere: a resize in place would
/// trust a size it does not have).
#[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // used by the `Allocator` impl
pub(crate) fn registered(
    heap_record: &HeapRecord,
    addr: usize,
    resized: Option<Layout>,
) -> Option<NonNull<u8>> {
    let footer = heap_record.registry.get(addr)?;
    if let Some(layout) = resized {
        // SAFETY: a registered footer is that of a live allocation (the
        // registry's invariant); its `full` is fixed.
        let full = unsafe { (*footer.as_ptr()).full };
        if with_footer(layout).ok() != Some(full) {
            return None;
        }
    }
    let addr = core::num::NonZeroUsize::new(addr)?;
    // The footer pointer comes from the allocation's base, so it carries
    // provenance over all of it, value included.
    Some(footer.cast::<u8>().with_addr(addr))
}

/// Frees the registered allocation whose value is at `addr`, found and
/// taken out of the registry in one lookup (the footer it holds is the
/// manager's own pointer: the caller's pointer gives only the address);
/// `false` if no registered allocation of `heap_record` is there, and then
/// nothing changed.
///
/// # Safety
///
/// An allocation registered at `addr` must be live and not used afterwards.
#[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // used by the `Allocator` impl
pub(crate) unsafe fn free_registered(heap_record: &HeapRecord, addr: usize) -> bool {
    let Some(footer) = heap_record.registry.remove(addr) else {
        return false;
    };
    // SAFETY: a registered footer is that of a live allocation of
    // `alloc_typed` for `heap_record` (the registry's invariant), given up
    // (caller); it leaves the registry here. Its value is at `addr`, its
    // full layout in the footer, so this is its geometry.
    unsafe {
        let g = Geometry::of_full((*footer.as_ptr()).full, footer.addr().get() - addr);
        release::<false>(heap_record, footer, g);
    }
    true
}

/// Frees every allocation kept in `heap_record`'s cache; returns the bytes.
pub(crate) fn trim_cache(heap_record: &HeapRecord) -> usize {
    for stack in heap_record.cache.stacks() {
        while let Some(footer) = NonNull::new(stack.get()) {
            // SAFETY: a footer on a stack is that of a kept allocation of
            // this heap record, used by no one; it leaves the stack first.
            unsafe {
                stack.set((*footer.as_ptr()).cache_next);
                unlink_and_free(heap_record, footer);
            }
        }
    }
    heap_record.cache.bytes.replace(0)
}

/// [`trim_cache`], and the registry's storage if it holds nothing; returns
/// the bytes given back.
pub(crate) fn trim(heap_record: &HeapRecord) -> usize {
    let mut released = trim_cache(heap_record);
    let registry = &heap_record.registry;
    if registry.len() == 0 {
        let bytes = registry.clear();
        heap_record.budget.credit(bytes);
        released += bytes;
    }
    released
}

/// Frees every live allocation recorded in `heap_record`, and the kept
/// ones too unless `keep`: a reset keeps them for reuse (as the pools keep
/// their chunks), a drop frees them. With `keep` and nothing live, O(1):
/// every allocation on the list is kept, and the registry is empty but for
/// its storage, which stays.
///
/// # Safety
///
/// None of the live ones may be used afterwards.
pub(crate) unsafe fn free_all(heap_record: &HeapRecord, keep: bool) {
    let mut kept: *mut Footer = ptr::null_mut();
    if !keep {
        trim_cache(heap_record);
    } else if heap_record.live.get() + heap_record.block_live.get() == 0 {
        // (The registry maps live allocations only.)
        debug_assert_eq!(heap_record.registry.len(), 0);
        return;
    } else {
        // The kept allocations leave the list for a while, onto a list of
        // their own, so that the one left holds the live ones only.
        for stack in heap_record.cache.stacks() {
            let mut on_stack = stack.get();
            while let Some(footer) = NonNull::new(on_stack) {
                let f = footer.as_ptr();
                // SAFETY: a footer on a stack is that of a kept allocation
                // of this heap record, on its list once; its neighbours there
                // are footers of the same record, and `kept`'s first is one
                // taken off just before. It stays on its stack.
                unsafe {
                    let (prev, next) = ((*f).prev, (*f).next);
                    match NonNull::new(prev) {
                        Some(p) => (*p.as_ptr()).next = next,
                        None => heap_record.head.set(next),
                    }
                    if let Some(n) = NonNull::new(next) {
                        (*n.as_ptr()).prev = prev;
                    }
                    (*f).prev = ptr::null_mut();
                    (*f).next = kept;
                    if let Some(k) = NonNull::new(kept) {
                        (*k.as_ptr()).prev = f;
                    }
                    kept = f;
                    on_stack = (*f).cache_next;
                }
            }
        }
    }
    while let Some(footer) = NonNull::new(heap_record.head.get()) {
        // SAFETY: the list holds only live footers of this heap record (the
        // cache is empty, or its allocations are on `kept`); the caller
        // guarantees none is used again.
        unsafe { unlink_and_free(heap_record, footer) };
    }
    // The kept ones, if any, are the list again (the first has no `prev`).
    heap_record.head.set(kept);
    heap_record.live.set(0);
    heap_record.block_live.set(0);
    heap_record.bytes.set(0);
    let registry = &heap_record.registry;
    if !keep || registry.len() > 0 {
        let bytes = registry.clear();
        heap_record.budget.credit(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A free works the geometry out again from what the footer records
    /// (the full layout, and the offset the value's address gives): it
    /// must be the allocation's own, class included — a kept allocation on
    /// another class's stack would serve requests it is too small for.
    #[test]
    fn a_footers_record_gives_back_the_allocations_geometry() {
        // (Fewer under Miri, which interprets every step: the same edges.)
        let (step, sweep) = if cfg!(miri) { (13, 65_521) } else { (1, 4093) };
        let sizes = (1..=2048)
            .step_by(step)
            .chain((2048..=(1 << 23)).step_by(sweep))
            .chain([ROUND_MAX - 48, ROUND_MAX - 47, ROUND_MAX, 1 << 23]);
        for size in sizes {
            for align in [1, 8, 16, 4096] {
                let layout = Layout::from_size_align(size, align).unwrap();
                let g = Geometry::of(layout).unwrap();
                assert_eq!(Geometry::of_full(g.full, g.offset), g, "{layout:?}");
                assert!(g.offset >= size && g.offset + size_of::<Footer>() == g.full.size());
                assert_eq!(
                    g.class.is_some(),
                    g.full.size() <= ROUND_MAX && align <= 8 && !cfg!(feature = "pass-through")
                );
                assert_eq!(with_footer(layout), Ok(g.full));
            }
        }
        let huge = Layout::from_size_align(isize::MAX as usize - 8, 8).unwrap();
        assert!(matches!(
            Geometry::of(huge),
            Err(Error::LayoutOverflow { .. })
        ));
    }

    #[test]
    fn large_classes_are_dense_ordered_and_waste_little() {
        let mut last = large_class(8);
        assert_eq!(last, (0, 8));
        // Every full size (a multiple of 8) up to 64 KiB, then the sizes
        // around each class boundary above it. Under
        // Miri (pure arithmetic) every size up to 2 KiB and the boundaries
        // above: still every class, in order.
        let dense = if cfg!(miri) { 2 << 10 } else { FINE_MAX };
        let boundary = |e: u32, k: usize, per: u32| (1usize << e) + k * (1 << (e - per)) - 8;
        let fine = (11..16).flat_map(|e| (1..=32).map(move |k| boundary(e, k, 5)));
        let coarse = (16..(ROUND_MAX + 8).trailing_zeros())
            .flat_map(|e| (1..=8).map(move |k| boundary(e, k, 3)));
        let boundaries = fine
            .chain(coarse)
            .filter(|&b| b > dense)
            .flat_map(|b| [b - 8, b, b + 8].into_iter().filter(|&s| s <= ROUND_MAX));
        let sizes = (1..=dense / 8).map(|n| n * 8).chain(boundaries);
        for size in sizes {
            let (index, class) = large_class(size);
            assert!(
                class >= size && class <= ROUND_MAX && class % 8 == 0,
                "{size}"
            );
            if size > 64 {
                assert!((class - size) * 8 <= size, "{size} -> {class}");
            }
            if size > 512 {
                // Above 512 bytes 8 short of a multiple of 16: the system
                // allocator's 8-byte header fills the granule.
                assert_eq!((class + 8) % 16, 0, "{size} -> {class}");
            }
            if size > 512 && size <= FINE_MAX {
                assert!((class - size) * 32 <= size, "{size} -> {class}");
            }
            // The class of a class is itself; indices rise one by one.
            assert_eq!(large_class(class), (index, class));
            assert!(index == last.0 || index == last.0 + 1, "{size}");
            assert!(index > last.0 || class == last.1);
            last = (index, class);
        }
        assert_eq!(last, (CLASSES - 1, ROUND_MAX));
    }

    /// The registry against a model: random inserts and removes (addresses
    /// chosen to collide often), every lookup checked after each step, the
    /// budget charged for exactly the storage.
    #[test]
    fn the_registry_agrees_with_a_model() {
        let budget = Budget::new(None, core::ptr::null());
        let reg = Registry::new(Source::Global);
        // The model: whether each address (a multiple of 16, up to the last
        // probe) is in, and how many are. (A table: a `BTreeMap`'s lookups
        // were most of Miri's time here, 22 s of 24.)
        let mut model = [false; 4816 / 16 + 1];
        let mut model_len = 0;
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let steps = if cfg!(miri) { 400 } else { 20_000 };
        for _ in 0..steps {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let addr = ((x % 300) as usize + 1) * 16;
            // A fake footer pointer: never dereferenced here.
            let footer = NonNull::<Footer>::dangling()
                .with_addr(core::num::NonZeroUsize::new(addr).unwrap());
            if x % 3 == 0 || model[addr / 16] {
                let was_in = core::mem::replace(&mut model[addr / 16], false);
                model_len -= usize::from(was_in);
                assert_eq!(
                    reg.remove(addr).map(|f| f.addr().get()),
                    was_in.then_some(addr)
                );
            } else {
                reg.reserve_one(&budget).unwrap();
                assert!(reg.insert(addr, footer));
                model[addr / 16] = true;
                model_len += 1;
            }
            assert_eq!(reg.len(), model_len);
            for probe in (16..=4816).step_by(if cfg!(miri) { 400 } else { 16 }) {
                assert_eq!(reg.get(probe).is_some(), model[probe / 16], "addr {probe}");
            }
            assert_eq!(budget.reserved(), reg.bytes());
        }
        let bytes = reg.clear();
        budget.credit(bytes);
        assert_eq!(budget.reserved(), 0);
    }
}
