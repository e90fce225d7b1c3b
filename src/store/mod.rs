//! Typed stores: the values behind [`Handle`](crate::Handle)s, one store
//! per type, inline in slots as a slotmap keeps them.
//!
//! A store is a run of *pages* that never move: page `p` holds `16 << p`
//! slots, so slot `i` is on page `floor(log2(i + 16)) - 4` — a leading-zero
//! count, a shift and an exclusive-or away — and the page pointers sit in
//! the store itself, an array of 29 (enough for 2^32 slots). A slot is a
//! generation and a free-list link, then the value:
//!
//! ```text
//! page p (16 << p slots, from the manager's source, charged to its budget)
//! +-----+------+-------+-----+------+-------+-----
//! | gen | next | value | gen | next | value | ...
//! +-----+------+-------+-----+------+-------+-----
//! ```
//!
//! so a checked access is one dependent load after the key (the page
//! pointer is in the store, found by the handle's store number), as in
//! slotmap — and, the pages never moving, a `&T` from `get` stays valid
//! across an `insert(&self)` that adds a page (which a `Vec` of slots would
//! move).
//!
//! Generations: a slot's is odd while live, even while vacant, and carries
//! the store's number in its top 8 bits, so that a handle's 32-bit tag is
//! (store, generation) at once. A slot whose generation would wrap (2^23
//! reuses) is retired instead of reused: no (index, generation) pair is
//! handed out twice under one manager id, so a handle that matches names
//! the very value its insert made, of its type. A trim gives an empty
//! store's pages back and moves its floor past every generation dropped; a
//! reset forgets every slot (the manager moves to a new id) and keeps the
//! pages.
//!
//! The re-entrancy rule (see `table.rs`) holds: a page is allocated with
//! nothing borrowed and installed only if no nested call installed it
//! meanwhile; a slot is taken and made live in one step after the value
//! is written.

use core::alloc::Layout;
use core::any::TypeId;
use core::mem::{offset_of, size_of, MaybeUninit};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use crate::budget::Budget;
use crate::source::{self, Source};
use crate::Error;

mod bytes;
mod list;

pub(crate) use list::{free_record, new_record, Stores};

/// Slots of page 0; page `p` has `FIRST << p`.
const FIRST: usize = 16;
/// `log2(FIRST)`.
const LOG_FIRST: u32 = FIRST.trailing_zeros();
/// Pages of a store: slot indices are below 2^32.
const PAGES: usize = 33 - LOG_FIRST as usize;
/// Bits of a tag that hold the store's number.
pub(crate) const STORE_SHIFT: u32 = 24;
/// The generation bits of a tag.
pub(crate) const GENERATION: u32 = (1 << STORE_SHIFT) - 1;
/// The most stores (types) a manager has.
pub(crate) const MAX_STORES: usize = 1 << (32 - STORE_SHIFT);
/// `next` of the last vacant slot.
const NONE: u32 = u32::MAX;

/// One slot of a store of `T`s.
#[repr(C)]
pub(crate) struct Slot<T> {
    /// `store << 24 | generation`: the generation odd while live.
    tag: u32,
    /// While vacant: the next vacant slot, or [`NONE`].
    next: u32,
    value: MaybeUninit<T>,
}

/// Where slot `index` lives: its page, and its place on the page.
#[inline(always)]
fn locate(index: u32) -> (usize, usize) {
    let j = index as u64 + FIRST as u64;
    let bit = 63 - j.leading_zeros();
    ((bit - LOG_FIRST) as usize, (j ^ (1 << bit)) as usize)
}

/// Slots of page `p`.
const fn page_slots(p: usize) -> usize {
    FIRST << p
}

/// The first slot index of page `p`.
const fn page_start(p: usize) -> usize {
    FIRST * ((1 << p) - 1)
}

/// One type's store: its pages, how far they are used, its vacant slots.
///
/// Invariants, relied on by the `unsafe` code here and in `handle/` and `manager/handles.rs`:
/// - `pages[..pages_len]` are live allocations from `source`, page `p` of
///   `page_layout(p)`: `page_slots(p)` slots of `slot_size` bytes, then
///   for a byte store (`value_size != 0`) as many blocks of `value_size`
///   bytes from `blocks_offset(p)`; the rest are null. They never move
///   while the store has them.
/// - Slots `0..len` have a written tag (`len <= page_start(pages_len)`);
///   a slot whose tag is odd holds a live value of the store's type
///   (`type_id`), written by an insert of that type — a byte store's live
///   slot, a block its owner reads and writes (`checked.rs`); `vacant`
///   lists each vacant, unretired slot below `len` once, linked through
///   `next` (a byte store's, through its block: see `link`).
/// - Every tag carries `number` in its top bits; every generation is at or
///   past `floor`, which is at or past every generation of the slots a
///   trim dropped; generations stay below `GENERATION - 1` (retired at it).
/// - `live` counts the live slots.
///
/// Threads (a shared manager's stores): `take`, `make_live`, `add_page`,
/// `reserve` run under the manager's lock (or on its one thread); `vacate`,
/// `drop_values`, `forget_slots` and `trim` with exclusive access (`&mut`,
/// or a `MemoryManager`, which is not `Sync`). `slot`, `run`, `tag` and the
/// counts may run on any thread at any time: they read `len` (`Acquire`,
/// pairing with the `Release` that publishes a new slot after its tag and
/// its page) and a slot's tag (`Acquire`, pairing with `make_live`'s
/// `Release` after the value is written), so a reader that sees a slot
/// live sees its value. A tag is only ever accessed atomically; the
/// value and the link of a slot are written only while it is vacant (no
/// reader's handle matches it then), so no access races.
pub(crate) struct RawStore {
    type_id: TypeId,
    /// The type's name, for `Debug`.
    type_name: &'static str,
    /// This store's number: its place in the manager's list, and the top
    /// bits of its tags.
    number: u32,
    slot_size: usize,
    slot_align: usize,
    value_offset: usize,
    /// A byte store's block size: its blocks lie on each page after the
    /// slots (which are then a tag and a link only), aligned to
    /// `value_align`; 0 for a store of values inline in their slots.
    value_size: usize,
    /// The blocks' alignment (a power of two), for a byte store.
    value_align: usize,
    /// Drops the value at the pointer, for a type with a destructor.
    drop_value: Option<unsafe fn(NonNull<u8>)>,
    /// (`Relaxed`: a page is published with the `len` that first covers
    /// it.)
    pages: [AtomicPtr<u8>; PAGES],
    /// (`Relaxed`: read and written under the lock.)
    pages_len: AtomicUsize,
    /// Slots with a written tag (`Release` / `Acquire`, see the type).
    len: AtomicUsize,
    /// (`Relaxed`: under the lock.)
    vacant: AtomicU32,
    /// (`Relaxed`: a count written under the lock, read by the stats.)
    live: AtomicUsize,
    /// (`Relaxed`: under the lock.)
    floor: AtomicU32,
    source: Source,
}

impl core::fmt::Debug for RawStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawStore")
            .field("type", &self.type_name)
            .field("live", &self.live())
            .field("len", &self.len())
            .field("pages", &self.pages_len.load(Ordering::Relaxed))
            .finish()
    }
}

/// What a store of `T` is, as constants.
pub(crate) struct SlotOf<T>(core::marker::PhantomData<T>);

impl<T: 'static> SlotOf<T> {
    /// Bytes of a slot.
    pub(crate) const SLOT: usize = size_of::<Slot<T>>();
    /// Where a slot's value starts.
    pub(crate) const VALUE: usize = offset_of!(Slot<T>, value);

    /// Drops the `T` at `value`.
    ///
    /// # Safety
    ///
    /// `value` must point at a live `T`, not used afterwards.
    unsafe fn drop_value(value: NonNull<u8>) {
        // SAFETY: the caller's guarantee.
        unsafe { ptr::drop_in_place(value.cast::<T>().as_ptr()) }
    }
}

impl RawStore {
    /// Bytes of the record itself.
    pub(crate) const BYTES: usize = size_of::<RawStore>();

    /// A store of `T`s numbered `number`, with no page.
    pub(crate) fn new<T: 'static>(number: u32, source: Source) -> RawStore {
        RawStore {
            type_id: TypeId::of::<T>(),
            type_name: core::any::type_name::<T>(),
            number,
            slot_size: SlotOf::<T>::SLOT,
            slot_align: align_of::<Slot<T>>(),
            value_offset: SlotOf::<T>::VALUE,
            value_size: 0,
            value_align: 1,
            drop_value: if core::mem::needs_drop::<T>() {
                Some(SlotOf::<T>::drop_value as unsafe fn(NonNull<u8>))
            } else {
                None
            },
            pages: [const { AtomicPtr::new(ptr::null_mut()) }; PAGES],
            pages_len: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            vacant: AtomicU32::new(NONE),
            live: AtomicUsize::new(0),
            floor: AtomicU32::new(0),
            source,
        }
    }

    /// The store, its generations starting past `floor` (even).
    pub(crate) fn starting_at(mut self, floor: u32) -> RawStore {
        debug_assert!(floor % 2 == 0 && floor < GENERATION - 1);
        *self.floor.get_mut() = floor;
        self
    }

    /// Whether this is the store of `T`.
    #[inline(always)]
    pub(crate) fn is_of<T: 'static>(&self) -> bool {
        self.type_id == TypeId::of::<T>()
    }

    /// The store's number (the top bits of its tags).
    #[cfg(feature = "serde")]
    pub(crate) fn number(&self) -> u32 {
        self.number
    }

    /// The generation new slots start at (kept by a trim that frees the
    /// record; written by a save).
    pub(crate) fn floor(&self) -> u32 {
        self.floor.load(Ordering::Relaxed)
    }

    /// For a load into a store never used since the last reset: new slots
    /// start at the saved `floor`, as in the store saved.
    #[cfg(feature = "serde")]
    pub(crate) fn start_loading(&self, floor: u32) -> Result<(), &'static str> {
        if self.len() != 0 || self.floor() != 0 {
            return Err(
                "load_store: the manager's store of this type was used since its last reset",
            );
        }
        if floor >= GENERATION - 1 || floor & 1 == 1 {
            return Err("load_store: a floor out of range");
        }
        self.floor.store(floor, Ordering::Relaxed);
        Ok(())
    }

    /// Bytes of a slot.
    #[inline(always)]
    pub(crate) fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Live values.
    #[inline(always)]
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Pages it has.
    pub(crate) fn pages(&self) -> usize {
        self.pages_len.load(Ordering::Relaxed)
    }

    /// Slots in its pages.
    pub(crate) fn capacity(&self) -> usize {
        page_start(self.pages_len.load(Ordering::Relaxed))
    }

    /// Bytes of its pages.
    pub(crate) fn bytes(&self) -> usize {
        (0..self.pages())
            .map(|p| self.page_layout(p).map_or(0, |l| l.size()))
            .sum()
    }

    /// Slots with a written tag: every slot index below it is on a page.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// The slot `index` of a store of `slot_size`-byte slots, if below
    /// `len`.
    #[inline(always)]
    pub(crate) fn slot(&self, index: u32, slot_size: usize) -> Option<NonNull<u8>> {
        debug_assert_eq!(slot_size, self.slot_size);
        if index as usize >= self.len() {
            return None;
        }
        // SAFETY: `index < len`, so its page is live (invariant; seen
        // through `len`'s `Acquire`).
        Some(unsafe { self.slot_on_page(index, slot_size) })
    }

    /// The slot `index` of a store of `slot_size`-byte slots, unchecked.
    ///
    /// # Safety
    ///
    /// The page of slot `index` must be live, as this thread has seen it
    /// (below `len`, seen with `Acquire`, or under the lock).
    #[inline(always)]
    unsafe fn slot_on_page(&self, index: u32, slot_size: usize) -> NonNull<u8> {
        let (page, at) = locate(index);
        // SAFETY: the caller's guarantee: the page is live, and `at` is one
        // of its slots.
        unsafe {
            let page = self.pages.get_unchecked(page).load(Ordering::Relaxed);
            NonNull::new_unchecked(page.add(at * slot_size))
        }
    }

    /// The slot `index`, if below `len`, and how many slots from it on
    /// lie on its page below `len` (at least one): a run to walk.
    #[inline]
    pub(crate) fn run(&self, index: u32) -> Option<(NonNull<u8>, usize)> {
        let slot = self.slot(index, self.slot_size)?;
        let (page, at) = locate(index);
        let len = self.len() - index as usize;
        Some((slot, (page_slots(page) - at).min(len)))
    }

    /// The tag of a slot.
    ///
    /// # Safety
    ///
    /// `slot` must be a slot below `len` of this store.
    #[inline(always)]
    pub(crate) unsafe fn tag(slot: NonNull<u8>) -> u32 {
        // `Acquire`: pairs with `make_live`'s `Release`, so a live tag's
        // value is seen written (see the type).
        // SAFETY: the caller's guarantee: a tag at the slot's start, aligned
        // to 4 (a slot's alignment), only ever accessed atomically.
        unsafe { Self::tag_cell(slot) }.load(Ordering::Acquire)
    }

    /// The tag of a slot, as an atomic.
    ///
    /// # Safety
    ///
    /// `slot` must be a slot of a live page of a store.
    #[inline(always)]
    unsafe fn tag_cell<'a>(slot: NonNull<u8>) -> &'a AtomicU32 {
        // SAFETY: the caller's guarantee: 4 bytes aligned to 4 at the slot's
        // start, on a page that outlives the use, accessed only atomically.
        unsafe { AtomicU32::from_ptr(slot.cast::<u32>().as_ptr()) }
    }

    /// Writes a slot's tag.
    ///
    /// # Safety
    ///
    /// As [`tag_cell`](Self::tag_cell).
    #[inline(always)]
    unsafe fn set_tag(slot: NonNull<u8>, tag: u32) {
        // `Release`: the slot's value (for a live tag) is written before
        // (see the type).
        // SAFETY: the caller's guarantee.
        unsafe { Self::tag_cell(slot) }.store(tag, Ordering::Release);
    }

    /// The value of a slot.
    #[inline(always)]
    pub(crate) fn value_of(slot: NonNull<u8>, value_offset: usize) -> NonNull<u8> {
        // SAFETY: the value is inside the slot.
        unsafe { slot.add(value_offset) }
    }

    /// The link of vacant slot `index` at `slot`: in the slot, after its
    /// tag; a byte store's, in the slot's block (its first 4 bytes, unused
    /// while the slot is vacant).
    #[inline(always)]
    fn link(&self, index: u32, slot: NonNull<u8>) -> NonNull<u32> {
        if self.value_size == 0 {
            // SAFETY: the link follows the tag inside the slot.
            unsafe { slot.add(4).cast() }
        } else {
            let (_, block) = self.block_slot(index).expect("a slot below len");
            block.cast()
        }
    }

    /// Takes a slot for a value — a vacant one, or the next, adding a page
    /// if need be (charged to `budget`) — and returns it, its index and the
    /// tag it will have once live. Call [`make_live`](Self::make_live)
    /// after writing the value into it, with no call to the store in
    /// between.
    #[inline(always)]
    pub(crate) fn take(&self, budget: &Budget) -> Result<(NonNull<u8>, u32, u32), Error> {
        let index = self.vacant.load(Ordering::Relaxed);
        if index != NONE {
            debug_assert_eq!(
                self.value_size, 0,
                "a byte store takes with `take_vacant_block`"
            );
            // SAFETY: a vacant slot is below `len` (invariant; under the
            // lock): its page is live.
            let slot = unsafe { self.slot_on_page(index, self.slot_size) };
            // SAFETY: a vacant slot below `len`: its link is written, after
            // its tag.
            let next = unsafe { slot.add(4).cast::<u32>().read() };
            self.vacant.store(next, Ordering::Relaxed);
            // SAFETY: as above.
            let tag = unsafe { Self::tag(slot) } + 1;
            return Ok((slot, index, tag));
        }
        self.take_new(budget)
    }

    /// [`take`](Self::take) when no slot is vacant: the next one.
    #[cold]
    #[inline(never)]
    pub(crate) fn take_new(&self, budget: &Budget) -> Result<(NonNull<u8>, u32, u32), Error> {
        loop {
            let len = self.len.load(Ordering::Relaxed);
            if len < self.capacity() {
                let index = len as u32;
                // SAFETY: `len < capacity`: its page is live.
                let slot = unsafe { self.slot_on_page(index, self.slot_size) };
                let tag = (self.number << STORE_SHIFT) | (self.floor.load(Ordering::Relaxed) + 1);
                // SAFETY: a slot of a live page, not yet below `len`: no
                // reader looks at it; its tag is written (even: vacant until
                // `make_live`) before `len` publishes it.
                unsafe { Self::set_tag(slot, tag - 1) };
                // `Release`: publishes the tag and the page (see the type).
                self.len.store(len + 1, Ordering::Release);
                return Ok((slot, index, tag));
            }
            self.add_page(budget)?;
        }
    }

    /// For a load (`load_store`): a new slot at the end, with the saved
    /// `generation` (24 bits) — vacant (linked, unless retired), or, with
    /// `live`, returned for the caller to write its value and make it live
    /// with the tag returned. Refused unless the generation fits the slot's
    /// state (odd for a live one) and lies within the generations.
    #[cfg(feature = "serde")]
    pub(crate) fn push_loaded(
        &self,
        index: u32,
        generation: u32,
        live: bool,
        budget: &Budget,
    ) -> Result<(NonNull<u8>, u32), &'static str> {
        if generation > GENERATION - 1 || (generation & 1 == 1) != live {
            return Err("a slot's generation does not fit its state");
        }
        if index as usize != self.len() {
            return Err("slots out of order");
        }
        let (slot, taken, _) = self.take_new(budget).map_err(|_| "no room for the slot")?;
        if taken != index {
            // A call the allocator made (adding the page) took slots
            // meanwhile: the slot taken stays vacant, and the load stops.
            // SAFETY: a slot just taken, vacant, below `len`.
            unsafe {
                self.link(taken, slot)
                    .write(self.vacant.load(Ordering::Relaxed));
            }
            self.vacant.store(taken, Ordering::Relaxed);
            return Err("the store changed during the load");
        }
        let tag = (self.number << STORE_SHIFT) | generation;
        if !live {
            // SAFETY: a slot just taken, vacant, below `len`.
            unsafe {
                Self::set_tag(slot, tag);
                if generation < GENERATION - 1 {
                    self.link(index, slot)
                        .write(self.vacant.load(Ordering::Relaxed));
                    self.vacant.store(index, Ordering::Relaxed);
                }
            }
        }
        Ok((slot, tag))
    }

    /// Makes the slot that [`take`](Self::take) returned live with `tag`.
    #[inline(always)]
    pub(crate) fn make_live(&self, slot: NonNull<u8>, tag: u32) {
        // SAFETY: a slot below `len` (from `take`), its value written.
        unsafe { Self::set_tag(slot, tag) };
        self.live.store(self.live() + 1, Ordering::Relaxed);
    }

    /// Adds the next page: allocated with nothing borrowed (the re-entrancy
    /// rule), installed unless a call the allocator made installed it.
    #[cold]
    fn add_page(&self, budget: &Budget) -> Result<(), Error> {
        let p = self.pages_len.load(Ordering::Relaxed);
        if p == PAGES || page_start(p + 1) > u32::MAX as usize {
            return Err(Error::OutOfMemory {
                size: usize::MAX,
                align: self.slot_align,
            });
        }
        let layout = self.page_layout(p)?;
        budget.charge(layout.size())?;
        let Some(page) = source::alloc(self.source, layout) else {
            budget.credit(layout.size());
            return Err(Error::OutOfMemory {
                size: layout.size(),
                align: layout.align(),
            });
        };
        if self.pages_len.load(Ordering::Relaxed) != p {
            // Added meanwhile: ours goes back.
            budget.credit(layout.size());
            // SAFETY: allocated just above with `layout`, never shared.
            unsafe { source::dealloc(self.source, page, layout) };
            return Ok(());
        }
        self.pages[p].store(page.as_ptr(), Ordering::Relaxed);
        self.pages_len.store(p + 1, Ordering::Relaxed);
        Ok(())
    }

    /// The layout of page `p`: its slots, then (a byte store's) its
    /// blocks.
    fn page_layout(&self, p: usize) -> Result<Layout, Error> {
        let blocks = |slots: usize| {
            if self.value_size == 0 {
                return Some(slots);
            }
            page_slots(p)
                .checked_mul(self.value_size)?
                .checked_add(self.blocks_offset(p))
        };
        page_slots(p)
            .checked_mul(self.slot_size)
            .and_then(blocks)
            .and_then(|size| {
                Layout::from_size_align(size, self.slot_align.max(self.value_align)).ok()
            })
            .ok_or(Error::OutOfMemory {
                size: usize::MAX,
                align: self.slot_align,
            })
    }

    /// Frees live slot `index` (its value moved out or dropped by the
    /// caller): its generation moves on, and it goes on the vacant list
    /// unless the generation would wrap at the next insert (then it is
    /// retired for good).
    ///
    /// # Safety
    ///
    /// `slot` must be slot `index` of this store, live.
    #[inline(always)]
    pub(crate) unsafe fn vacate(&self, slot: NonNull<u8>, index: u32) {
        // SAFETY: the caller's guarantee.
        unsafe { self.vacate_tagged(slot, index, Self::tag(slot)) }
    }

    /// [`vacate`](Self::vacate) for a caller that has read the slot's
    /// (live) tag already.
    ///
    /// # Safety
    ///
    /// As [`vacate`](Self::vacate); `tag` must be the slot's tag.
    #[inline(always)]
    pub(crate) unsafe fn vacate_tagged(&self, slot: NonNull<u8>, index: u32, tag: u32) {
        debug_assert_eq!(tag & 1, 1, "a live slot");
        // SAFETY: the caller's guarantee.
        unsafe {
            let tag = tag + 1;
            Self::set_tag(slot, tag);
            if tag & GENERATION < GENERATION - 1 {
                debug_assert_eq!(
                    self.value_size, 0,
                    "a byte store vacates with `vacate_block`"
                );
                // The link follows the tag in the slot.
                slot.add(4)
                    .cast::<u32>()
                    .write(self.vacant.load(Ordering::Relaxed));
                self.vacant.store(index, Ordering::Relaxed);
            }
        }
        self.live.store(self.live() - 1, Ordering::Relaxed);
    }

    /// Reserves room for `additional` more values than there are vacant
    /// slots can hold: pages added until the unused slots suffice.
    pub(crate) fn reserve(&self, budget: &Budget, additional: usize) -> Result<(), Error> {
        loop {
            // Vacant slots first: counted along their list, no further
            // than needed — again after each page, which a trim the
            // allocator called may have changed (the re-entrancy rule).
            let mut vacant = 0;
            let mut i = self.vacant.load(Ordering::Relaxed);
            while i != NONE && vacant < additional {
                vacant += 1;
                let slot = self.slot(i, self.slot_size).expect("below len");
                // SAFETY: a vacant slot: its link is written.
                i = unsafe { self.link(i, slot).read() };
            }
            if vacant + (self.capacity() - self.len()) >= additional {
                return Ok(());
            }
            self.add_page(budget)?;
        }
    }

    /// Each slot below `len`, in index order: (index, slot).
    pub(crate) fn slots(&self) -> impl Iterator<Item = (u32, NonNull<u8>)> + '_ {
        let size = self.slot_size;
        // (`map_while`: a trim by code this iteration calls — a writer's — may
        // shorten the store meanwhile.)
        (0..self.len() as u32).map_while(move |i| Some((i, self.slot(i, size)?)))
    }

    /// Drops every live value (if the type has a destructor) and vacates
    /// its slot, each slot vacated before its value's destructor runs: a
    /// destructor that panics leaves the store consistent, with the values
    /// not reached yet still live.
    ///
    /// # Safety
    ///
    /// No reference to a value of the store may be alive.
    pub(crate) unsafe fn drop_values(&self) {
        let Some(drop_value) = self.drop_value else {
            return;
        };
        let mut i = 0;
        while self.live() > 0 && (i as usize) < self.len() {
            let slot = self.slot(i, self.slot_size).expect("below len");
            // SAFETY: below `len`.
            if unsafe { Self::tag(slot) } & 1 == 1 {
                // SAFETY: live, so it holds a value of the store's type
                // (invariant), vacated first so it is dropped once; no
                // reference to it exists (caller).
                unsafe {
                    self.vacate(slot, i);
                    drop_value(Self::value_of(slot, self.value_offset));
                }
            }
            i += 1;
        }
    }

    /// Forgets every slot, keeping the pages: every value was dropped (or
    /// needs no drop) and the manager moves to a new id, so the
    /// generations start again.
    pub(crate) fn forget_slots(&self) {
        self.len.store(0, Ordering::Relaxed);
        self.vacant.store(NONE, Ordering::Relaxed);
        self.live.store(0, Ordering::Relaxed);
        self.floor.store(0, Ordering::Relaxed);
    }

    /// Gives back the pages past the last live value (every page if none
    /// is live); returns the bytes. The slots on them are dropped, and new
    /// slots then start at a floor past every generation dropped. O(slots).
    ///
    /// A page that holds a live value stays, with every slot before it: a
    /// walk over the store (which stops only at a live value) and every
    /// reference to a value keep their pages. So does a page holding a
    /// slot whose generation is within 2^16 of the end (a retired slot, or
    /// one near it): the floor never comes near the end, and new slots
    /// have room to move.
    pub(crate) fn trim(&self) -> usize {
        let pages = self.pages_len.load(Ordering::Relaxed);
        let len = self.len.load(Ordering::Relaxed);
        let generation_at = |i: u32| {
            let slot = self.slot(i, self.slot_size).expect("below len");
            // SAFETY: a slot below `len`.
            let tag = unsafe { Self::tag(slot) };
            tag & GENERATION
        };
        // A slot pins its page (and every page before it) if it is live,
        // or if its generation is within 2^16 of the end (retired, or near
        // it): dropping it would move the floor so near the end that new
        // slots could not move, so it stays, and the floor stays low.
        let pins = |i: u32| {
            let g = generation_at(i);
            g & 1 == 1 || g >= GENERATION - (1 << 16)
        };
        let keep = (0..len as u32)
            .rev()
            .find(|&i| pins(i))
            .map_or(0, |i| locate(i).0 + 1);
        if keep >= pages {
            return 0;
        }
        let kept = len.min(page_start(keep));
        let newest = (kept as u32..len as u32)
            .map(generation_at)
            .max()
            .unwrap_or(0);
        let floor = newest.max(self.floor.load(Ordering::Relaxed));
        if floor >= GENERATION - (1 << 16) {
            // (Only a floor a load started near the end: no dropped slot
            // pins.) New slots need room to move: nothing is given back.
            return 0;
        }
        debug_assert!(floor % 2 == 0, "a vacant slot's generation is even");
        // The vacant list without the slots dropped, in its order.
        let (mut head, mut last) = (NONE, None::<NonNull<u32>>);
        let mut i = self.vacant.load(Ordering::Relaxed);
        while i != NONE {
            let slot = self.slot(i, self.slot_size).expect("below len");
            // SAFETY: a vacant slot below `len`: its link is written, and
            // (kept) the link of the one before it is ours to rewrite.
            unsafe {
                let link = self.link(i, slot);
                let next = link.read();
                if (i as usize) < kept {
                    match last {
                        None => head = i,
                        Some(l) => l.write(i),
                    }
                    last = Some(link);
                }
                i = next;
            }
        }
        if let Some(l) = last {
            // SAFETY: a vacant slot kept: its link is ours.
            unsafe { l.write(NONE) };
        }
        self.vacant.store(head, Ordering::Relaxed);
        self.floor.store(floor, Ordering::Relaxed);
        self.len.store(kept, Ordering::Relaxed);
        self.free_pages(keep)
    }

    /// Frees the pages from `from` on; returns the bytes. Every one is
    /// taken off the store first, and the allocator called only then (the
    /// re-entrancy rule: a call it makes into the manager sees a store
    /// without them, and adds its own).
    fn free_pages(&self, from: usize) -> usize {
        let n = self.pages_len.load(Ordering::Relaxed);
        if from >= n {
            return 0;
        }
        self.pages_len.store(from, Ordering::Relaxed);
        let mut detached = [ptr::null_mut::<u8>(); PAGES];
        for (p, d) in detached.iter_mut().enumerate().take(n).skip(from) {
            *d = self.pages[p].swap(ptr::null_mut(), Ordering::Relaxed);
        }
        let mut bytes = 0;
        for (p, page) in detached.into_iter().enumerate().take(n).skip(from) {
            let layout = self.page_layout(p).expect("checked when allocated");
            bytes += layout.size();
            if let Some(page) = NonNull::new(page) {
                // SAFETY: page `p`, allocated with this layout from `source`
                // and no longer the store's.
                unsafe { source::dealloc(self.source, page, layout) };
            }
        }
        bytes
    }

    /// Whether every live slot is counted and the vacant list is sound.
    pub(crate) fn is_valid(&self) -> bool {
        let mut live = 0;
        for (_, s) in self.slots() {
            // SAFETY: slots below `len`.
            let tag = unsafe { Self::tag(s) };
            if tag >> STORE_SHIFT != self.number {
                return false;
            }
            live += (tag & 1) as usize;
        }
        let mut vacant = 0;
        let mut i = self.vacant.load(Ordering::Relaxed);
        while i != NONE {
            let Some(s) = self.slot(i, self.slot_size) else {
                return false;
            };
            // SAFETY: below `len`.
            if unsafe { Self::tag(s) } & 1 == 1 || vacant > self.len() {
                return false;
            }
            vacant += 1;
            // SAFETY: a vacant slot: its link is written.
            i = unsafe { self.link(i, s).read() };
        }
        live == self.live() && live + vacant <= self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryManager;

    /// A slot whose generation would wrap is retired, not reused: no
    /// (index, generation) pair is handed out twice under one id.
    #[test]
    fn a_slot_about_to_wrap_is_retired() {
        let mut mm = MemoryManager::new();
        let old = mm.insert(7u64);
        mm.remove(old).unwrap();
        // As if slot 0 had been reused 2^23 - 2 times.
        let store = mm.stores().find::<u64>().unwrap();
        let slot = store.slot(0, store.slot_size()).unwrap();
        // SAFETY: slot 0 of the store, vacant: its tag is ours to set (even).
        unsafe { slot.cast::<u32>().write(GENERATION - 3) };
        let last = mm.insert(8u64); // generation GENERATION - 2
        assert_eq!(last.to_bits() as u32, 0, "slot 0 again");
        mm.remove(last).unwrap(); // GENERATION - 1: retired
        let next = mm.insert(9u64);
        assert_eq!(next.to_bits() as u32, 1, "a fresh slot");
        assert_eq!(mm.get(last), Err(Error::Removed));
        assert_eq!(mm.get(old), Err(Error::Removed));
        assert_eq!(mm.get(next), Ok(&9));
        assert!(mm.is_consistent());
    }

    #[test]
    fn slots_are_found_on_doubling_pages() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(15), (0, 15));
        assert_eq!(locate(16), (1, 0));
        assert_eq!(locate(47), (1, 31));
        assert_eq!(locate(48), (2, 0));
        assert_eq!(locate(u32::MAX).0, PAGES - 1);
        for p in 0..PAGES - 1 {
            assert_eq!(locate(page_start(p) as u32), (p, 0));
            assert_eq!(
                locate((page_start(p + 1) - 1) as u32),
                (p, page_slots(p) - 1)
            );
        }
    }
}

/// The protocol by which a slot reaches readers on other threads (a shared
/// manager's `get` while another thread inserts), as a loom model: the
/// writer (under the lock) writes a new slot's tag and publishes it with
/// `len`, then writes the value and makes the tag live; a reader that sees
/// the slot below `len` and its tag live reads the value. Loom checks that
/// the value's write happens before the read (it flags the race if
/// `make_live`'s store or the reader's tag load is weakened to `Relaxed`).
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
    use loom::sync::Arc;

    struct Slot {
        tag: AtomicU32,
        value: UnsafeCell<u64>,
        len: AtomicUsize,
    }

    #[test]
    fn a_slot_made_live_is_seen_with_its_value() {
        loom::model(|| {
            let slot = Arc::new(Slot {
                tag: AtomicU32::new(0),
                value: UnsafeCell::new(0),
                len: AtomicUsize::new(0),
            });
            let writer = {
                let slot = slot.clone();
                loom::thread::spawn(move || {
                    // `take_new`: the vacant tag, then `len` (Release).
                    slot.tag.store(2, Ordering::Release);
                    slot.len.store(1, Ordering::Release);
                    // The value, then `make_live` (Release).
                    // SAFETY (test): no reader touches the value before the
                    // live tag (what the model checks).
                    slot.value.with_mut(|v| unsafe { *v = 42 });
                    slot.tag.store(3, Ordering::Release);
                })
            };
            // A reader with the handle (index 0, tag 3).
            if slot.len.load(Ordering::Acquire) > 0 {
                let tag = slot.tag.load(Ordering::Acquire);
                if tag == 3 {
                    // SAFETY (test): the live tag was seen with `Acquire`.
                    let v = slot.value.with(|v| unsafe { *v });
                    assert_eq!(v, 42);
                } else {
                    assert_eq!(tag, 2, "a slot below len has its tag written");
                }
            }
            writer.join().unwrap();
        });
    }
}
