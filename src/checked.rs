//! Checked blocks: the handles behind [`Block`], kept in stores as the
//! values behind [`Handle`](crate::Handle)s are.
//!
//! Blocks and handles share one table design (`store/`): a slot is a tag
//! (store number << 24 | generation, odd while live) and a link, then the
//! value; one wrap rule (a slot whose generation would wrap is retired);
//! one locking style (a shared manager's blocks are its central manager's,
//! under its lock). Here the stores are *byte stores*, one per size class,
//! whose value is the block's bytes, and one store of *large entries*, for
//! blocks above every class (or aligned above 8 bytes, or in pass-through
//! mode), whose value says where the large path put the block.
//!
//! A `Block` carries its manager's [`Identity`] id, the tag it was given
//! and its slot's index, so a checked access is the id compared, then the
//! slot found from the index (its page pointer in the store) and its tag
//! compared — one dependent load after the key for the tag, the bytes next
//! to it. A second free of a block, even after its slot was handed out
//! again, sees a newer generation and is refused; a retired slot is never
//! handed out again under the same id, so no stale handle ever matches.
//!
//! A handle is data, never a pointer this module follows: every checked
//! call finds the slot through this manager's own stores, checks it, and
//! computes the block's address (and size) from them.
//!
//! Metadata stays bounded: a trim gives back the pages of every store with
//! no live block, then the store's record, then the list once no store is
//! left, each counted in the stats and charged to the budget while held. A
//! store made again starts its generations at a floor past every
//! generation of the stores freed, so that no older handle matches. A reset
//! forgets every slot and keeps the pages, and changes the manager's id, so
//! every older handle is refused by its id. A handle that carries this
//! manager's current id but names a slot the stores no longer have is
//! therefore stale, never foreign.

use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::block::LARGE;
use crate::budget::Budget;
use crate::identity::Identity;
use crate::large::{self, HeapRecord};
use crate::pool::Pool;
use crate::size_class::natural_align;
use crate::source::{self, Source};
use crate::store::{self, RawStore, STORE_SHIFT};
use crate::{fill, Block, Error};

/// Entries of a list: one per store number a tag can carry, so that a
/// tag's number indexes it unchecked.
const ENTRIES: usize = 1 << (32 - STORE_SHIFT);

/// The list of a heap with no store: every entry null, never written.
/// (`AtomicPtr` only to be `Sync`; a list's entries are read and written
/// `Relaxed`, by one thread at a time.)
static NO_STORES: [AtomicPtr<RawStore>; ENTRIES] =
    [const { AtomicPtr::new(ptr::null_mut()) }; ENTRIES];

/// Where the large path put a block (the value of a large entry): 24
/// bytes, a slot of 32 with its generation (a `Layout` and the length
/// apart made it 40: 0.45 MB more at the peak of the trace replay's
/// 55,749 live large blocks).
#[derive(Clone, Copy)]
struct Large {
    ptr: NonNull<u8>,
    /// The usable size the handle reports (the layout's size is at least 1).
    len: usize,
    /// The layout's alignment.
    align: usize,
}

impl Large {
    /// The layout the block was allocated with: `len` rounded up to at
    /// least one byte, at `align` (a valid layout: `alloc_large` made it).
    fn layout(&self) -> Layout {
        Layout::from_size_align(self.len.max(1), self.align)
            .unwrap_or_else(|_| unreachable!("made from a valid layout"))
    }
}

/// The checked-block state of one manager.
///
/// Invariants, relied on by the `unsafe` code here:
/// - `list` is [`NO_STORES`] (never written) or an allocation from
///   `source` of [`ENTRIES`] entries, each null or a record from
///   [`store::new_record`], entry `n` the store numbered `n`: entry `c <
///   classes` the byte store of class `c` (slots of its block size), entry
///   [`LARGE`] the store of [`Large`] entries, the others null. The list
///   and the records are charged to the budget.
/// - A live slot of a byte store holds a live block of this manager; a
///   live large entry names a live allocation of the manager's large path,
///   made by `large::alloc_block` for its layout.
/// - `floor` is at or past every generation of the stores a trim freed;
///   a store is made with it as its floor.
/// - While `busy` is not zero, an allocation that a call here made is
///   under way, holding a store's record: a trim then frees pages only,
///   never a record or the list (the re-entrancy rule, see `table.rs`).
#[derive(Debug)]
pub(crate) struct CheckedBlocks {
    /// The stores, by number.
    list: Cell<*const AtomicPtr<RawStore>>,
    /// Size classes of the manager.
    classes: usize,
    /// The generation a store made now starts at.
    floor: Cell<u32>,
    /// Allocations under way (see the type).
    busy: Cell<u32>,
    /// What this manager's handles carry; a new id at each reset.
    identity: Identity,
    source: Source,
}

// SAFETY: a `CheckedBlocks` owns its list, records, pages and large entries'
// allocations outright and shares none of them with another heap or thread;
// moving it to another thread moves that ownership. It is not `Sync`
// (`Cell`s).
unsafe impl Send for CheckedBlocks {}

impl CheckedBlocks {
    /// An empty heap for a manager of `classes` size classes, its memory
    /// from `source`.
    pub(crate) fn new(classes: usize, source: Source) -> Self {
        debug_assert!(classes <= crate::MAX_CLASSES);
        CheckedBlocks {
            list: Cell::new(NO_STORES.as_ptr()),
            classes,
            floor: Cell::new(0),
            busy: Cell::new(0),
            identity: Identity::new(),
            source,
        }
    }

    /// The id this heap's handles (blocks and [`Handle`](crate::Handle)s)
    /// carry now.
    #[inline(always)]
    pub(crate) fn id(&self) -> u64 {
        self.identity.id()
    }

    /// The error for a handle that does not carry this heap's current id:
    /// one of this manager's earlier ids means a reset freed the block.
    #[cold]
    pub(crate) fn not_ours(&self, b: Block) -> Error {
        if self.identity.is_retired(b.owner) {
            Error::FreedByReset
        } else {
            Error::ForeignBlock
        }
    }

    /// The list's layout.
    const LIST: Layout = Layout::new::<[AtomicPtr<RawStore>; ENTRIES]>();

    /// Whether the heap has a list of its own.
    fn has_list(&self) -> bool {
        !ptr::eq(self.list.get(), NO_STORES.as_ptr())
    }

    /// The list entry of store `number` (below [`ENTRIES`]: the top bits of
    /// a tag).
    #[inline(always)]
    fn entry(&self, number: u32) -> &AtomicPtr<RawStore> {
        debug_assert!((number as usize) < ENTRIES);
        // SAFETY: a list of `ENTRIES` entries (invariant), `number` below.
        unsafe { &*self.list.get().add(number as usize) }
    }

    /// Store `number` (below [`ENTRIES`]), if it exists.
    #[inline(always)]
    fn store(&self, number: u32) -> Option<&RawStore> {
        let record = self.entry(number).load(Ordering::Relaxed);
        // SAFETY: a live record (invariant), freed only by a trim or drop,
        // which no caller's use of the reference spans.
        unsafe { record.as_ref() }
    }

    /// Runs `f`, which may allocate, with `busy` raised (see the type).
    #[inline(always)]
    fn allocating<R>(&self, f: impl FnOnce() -> R) -> R {
        self.busy.set(self.busy.get() + 1);
        let r = f();
        self.busy.set(self.busy.get() - 1);
        r
    }

    /// Store `number`, made now if need be (charged to `budget`): a byte
    /// store of `size`-byte blocks, or ([`LARGE`]) the large entries'.
    #[inline(always)]
    fn store_or_make(&self, number: u32, size: usize, budget: &Budget) -> Result<&RawStore, Error> {
        match self.store(number) {
            Some(s) => Ok(s),
            None => self.make(number, size, budget),
        }
    }

    #[cold]
    #[inline(never)]
    fn make(&self, number: u32, size: usize, budget: &Budget) -> Result<&RawStore, Error> {
        if !self.has_list() {
            let layout = Self::LIST;
            budget.charge(layout.size())?;
            let Some(list) = self.allocating(|| source::alloc_zeroed(self.source, layout)) else {
                budget.credit(layout.size());
                return Err(Error::OutOfMemory {
                    size: layout.size(),
                    align: layout.align(),
                });
            };
            // The allocator has returned: a call it made may have made the
            // list meanwhile (the re-entrancy rule).
            if !self.has_list() {
                // Zeroed: every entry null.
                self.list.set(list.as_ptr().cast());
            } else {
                budget.credit(layout.size());
                // SAFETY: allocated above with this layout, never shared.
                // (`busy`: a trim the allocator calls keeps the list made.)
                self.allocating(|| unsafe { source::dealloc(self.source, list, layout) });
            }
        }
        let floor = self.floor.get();
        let store = if number == LARGE {
            RawStore::new::<Large>(LARGE, self.source).starting_at(floor)
        } else {
            RawStore::of_bytes(number, size, natural_align(size), floor, self.source)
        };
        let record = self.allocating(|| store::new_record(store, self.source, budget))?;
        // Looked for again: a call the allocator made may have made the
        // store (or freed the list, in a trim: `busy` kept it).
        let entry = self.entry(number);
        match self.has_list() && entry.load(Ordering::Relaxed).is_null() {
            true => {
                entry.store(record.as_ptr(), Ordering::Relaxed);
                // SAFETY: just made; freed only by a trim or drop.
                Ok(unsafe { record.as_ref() })
            }
            false => {
                // SAFETY: made above, never shared. (`busy`: a trim the
                // allocator calls keeps the list and the store made.)
                let freed = self.allocating(|| unsafe { store::free_record(record, self.source) });
                budget.credit(freed);
                self.store(number).ok_or(Error::OutOfMemory {
                    size: RawStore::BYTES,
                    align: 8,
                })
            }
        }
    }

    /// Allocates a zeroed block of class `class`, whose block size is
    /// `size` (passed in so that it is a constant where the class is); the
    /// class's `pool` keeps its counts.
    #[inline(always)]
    pub(crate) fn alloc_pooled(
        &self,
        class: usize,
        size: usize,
        pool: &Pool,
        budget: &Budget,
    ) -> Result<Block, Error> {
        debug_assert_eq!(pool.block_size(), size, "class {class} has another size");
        let store = self.store_or_make(class as u32, size, budget)?;
        let (slot, block, index, tag) = match store.take_vacant_block(size, natural_align(size)) {
            Some(taken) => {
                // SAFETY: a vacant slot's block, filled when it was freed
                // (nothing without `debug-fill`).
                unsafe { fill::check_freed(taken.1, size) };
                taken
            }
            None => self.take_new(store, budget)?,
        };
        // SAFETY: a slot taken: its block's `size` bytes are ours.
        unsafe { block.write_bytes(0, size) };
        store.make_live(slot, tag);
        pool.count_checked(store.live());
        Ok(Block {
            owner: self.identity.id(),
            generation: tag,
            slot: index,
        })
    }

    /// A new slot of byte store `store` and its block (the store may add a
    /// page: `busy` is raised).
    #[cold]
    #[inline(never)]
    fn take_new(
        &self,
        store: &RawStore,
        budget: &Budget,
    ) -> Result<(NonNull<u8>, NonNull<u8>, u32, u32), Error> {
        let (slot, index, tag) = self.allocating(|| store.take_new(budget))?;
        let (_, block) = store.block_slot(index).expect("a slot taken is below len");
        Ok((slot, block, index, tag))
    }

    /// Allocates a zeroed block of `size` bytes at `align` on the manager's
    /// large path (`heap_record`), `layout` rounded up to at least one byte,
    /// and gives it a large entry.
    #[inline(never)]
    pub(crate) fn alloc_large(
        &self,
        size: usize,
        align: usize,
        heap_record: &HeapRecord,
    ) -> Result<Block, Error> {
        let layout = Layout::from_size_align(size.max(1), align)
            .map_err(|_| Error::LayoutOverflow { size, align })?;
        let refusing = |e: Error| e.refusing(size, heap_record.name);
        let budget = &heap_record.budget;
        let store = self.store_or_make(LARGE, 0, budget).map_err(refusing)?;
        let ptr = self.allocating(|| large::alloc_block(heap_record, layout))?;
        let taken = self.allocating(|| store.take(budget));
        let (slot, index, tag) = match taken {
            Ok(t) => t,
            Err(e) => {
                // SAFETY: just allocated by `alloc_block` for `layout`, in no
                // entry.
                unsafe { large::free_block(heap_record, ptr, layout) };
                return Err(refusing(e));
            }
        };
        let entry = Large {
            ptr,
            len: size,
            align,
        };
        // SAFETY: a slot taken from the store of `Large`s: its value is ours
        // to write.
        unsafe { value::<Large>(slot).write(entry) };
        store.make_live(slot, tag);
        Ok(Block {
            owner: self.identity.id(),
            generation: tag,
            slot: index,
        })
    }

    /// Finds the block `b` names in this heap's stores: checks that it was
    /// made by this heap since its last reset and that its slot is still
    /// in the generation it was handed out in; returns the address and size
    /// from the store. Ids never repeat, so a handle with this heap's id
    /// was made by it (its fields are private: no other code makes one),
    /// with an odd tag. `stale` is the error for a handle whose slot has
    /// moved on.
    #[inline(always)]
    fn validate(&self, b: Block, stale: Error) -> Result<(NonNull<u8>, usize), Error> {
        if b.owner != self.identity.id() {
            return Err(self.not_ours(b));
        }
        if b.generation >> STORE_SHIFT == LARGE {
            return self.find_large(b, stale).map(|(_, l)| (l.ptr, l.len));
        }
        let (store, _, block) = self.find_pooled(b, stale)?;
        Ok((block, store.block_size()))
    }

    /// A pooled block's store, slot and block, once its id matched: our
    /// id, so a store or slot no longer there, or a slot whose generation
    /// moved on, was freed (and perhaps trimmed): `stale`.
    #[inline(always)]
    fn find_pooled(
        &self,
        b: Block,
        stale: Error,
    ) -> Result<(&RawStore, NonNull<u8>, NonNull<u8>), Error> {
        let store = self.store(b.generation >> STORE_SHIFT).ok_or(stale)?;
        let (slot, block) = store.block_slot(b.slot).ok_or(stale)?;
        // SAFETY: a slot below `len`.
        if unsafe { RawStore::tag(slot) } != b.generation {
            return Err(stale);
        }
        Ok((store, slot, block))
    }

    /// A large block's store, slot and entry, once its id matched.
    #[inline(never)]
    fn find_large(&self, b: Block, stale: Error) -> Result<(NonNull<u8>, Large), Error> {
        let store = self.store(LARGE).ok_or(stale)?;
        let slot = store.slot(b.slot, store.slot_size()).ok_or(stale)?;
        // SAFETY: a slot below `len`.
        if unsafe { RawStore::tag(slot) } != b.generation {
            return Err(stale);
        }
        // SAFETY: a live large entry (the tag matched an odd one).
        Ok((slot, unsafe { value::<Large>(slot).read() }))
    }

    /// Frees `b` if it is a live block of this heap.
    #[inline(always)]
    pub(crate) fn free(&self, b: Block, heap_record: &HeapRecord) -> Result<(), Error> {
        if b.owner != self.identity.id() {
            return Err(self.not_ours(b));
        }
        if b.generation >> STORE_SHIFT == LARGE {
            return self.free_large(b, heap_record);
        }
        let (store, slot, block) = self.find_pooled(b, Error::DoubleFree)?;
        // SAFETY: `find_pooled` just found the slot live, with nothing in
        // between; the handle's owner gives the block up.
        unsafe {
            store.vacate_block(slot, block, b.slot);
            fill::freed(block, store.block_size());
        }
        Ok(())
    }

    /// The large half of [`free`](Self::free), once the id matched.
    #[inline(never)]
    fn free_large(&self, b: Block, heap_record: &HeapRecord) -> Result<(), Error> {
        let (slot, large) = self.find_large(b, Error::DoubleFree)?;
        let store = self.store(LARGE).expect("found above");
        // SAFETY: the live large entry just found; vacated before the
        // allocation is freed (the allocator may call back in), so it is
        // freed once.
        unsafe {
            store.vacate(slot, b.slot);
            large::free_block(heap_record, large.ptr, large.layout());
        }
        Ok(())
    }

    /// Whether `b` is a live block of this heap.
    #[inline]
    pub(crate) fn is_live(&self, b: Block) -> bool {
        self.validate(b, Error::UseAfterFree).is_ok()
    }

    /// The bytes of live block `b`, from this heap's stores.
    #[inline]
    pub(crate) fn bytes(&self, b: Block) -> Result<NonNull<[u8]>, Error> {
        let (ptr, len) = self.validate(b, Error::UseAfterFree)?;
        Ok(NonNull::slice_from_raw_parts(ptr, len))
    }

    /// Checks that `len` bytes at `offset` lie inside live block `b`, and
    /// returns their address, computed from this heap's stores.
    #[inline]
    fn access(&self, b: Block, offset: usize, len: usize) -> Result<NonNull<u8>, Error> {
        let (ptr, size) = self.validate(b, Error::UseAfterFree)?;
        match offset.checked_add(len) {
            Some(end) if end <= size => {
                // SAFETY: `offset <= size`, inside (or one past) the live
                // block the store names.
                Ok(unsafe { ptr.add(offset) })
            }
            _ => Err(Error::OutOfBounds { offset, len, size }),
        }
    }

    /// Copies `src` into live block `b` at `offset`.
    #[inline]
    pub(crate) fn write_bytes(&self, b: Block, offset: usize, src: &[u8]) -> Result<(), Error> {
        let dst = self.access(b, offset, src.len())?;
        // SAFETY: `access` checked that `src.len()` bytes at `dst` are inside a
        // live block. `copy` allows overlap, in case `unsafe` code made `src`
        // from this very block.
        unsafe { ptr::copy(src.as_ptr(), dst.as_ptr(), src.len()) };
        Ok(())
    }

    /// Copies bytes of live block `b` at `offset` into `dst`.
    #[inline]
    pub(crate) fn read_bytes(&self, b: Block, offset: usize, dst: &mut [u8]) -> Result<(), Error> {
        let src = self.access(b, offset, dst.len())?;
        // SAFETY: as in `write_bytes`; the block's bytes are initialised
        // because every block starts zeroed.
        unsafe { ptr::copy(src.as_ptr(), dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Makes sure `additional` more blocks of class `class` (of `size`
    /// bytes) can be handed out without new memory.
    pub(crate) fn reserve(
        &self,
        class: usize,
        size: usize,
        budget: &Budget,
        additional: usize,
    ) -> Result<(), Error> {
        let store = self.store_or_make(class as u32, size, budget)?;
        self.allocating(|| store.reserve(budget, additional))
    }

    /// Each store there is, by entry.
    fn stores(&self) -> impl Iterator<Item = &RawStore> + '_ {
        (0..=self.classes as u32)
            .map(|n| if n as usize == self.classes { LARGE } else { n })
            .filter_map(|n| self.store(n))
    }

    /// Gives back the pages of every store with no live block, then the
    /// records of the stores left empty and the list once none is left
    /// (not while an allocation of this heap is under way: see the type);
    /// returns the bytes released, credited to `budget`.
    pub(crate) fn trim(&self, budget: &Budget) -> usize {
        // Whether an allocation of this heap is under way around this trim
        // (then no record or list is freed: see the type).
        let outer_busy = self.busy.get() != 0;
        let mut bytes = 0;
        for n in (0..self.classes as u32).chain([LARGE]) {
            let Some(store) = self.store(n) else { continue };
            // Its pages go back to the allocator, which may call a trim in:
            // `busy` keeps this record (and the list) from that trim.
            bytes += self.allocating(|| store.trim());
            if outer_busy || store.live() != 0 || store.pages() != 0 {
                continue;
            }
            self.floor.set(self.floor.get().max(store.floor()));
            let record = self.entry(n).swap(ptr::null_mut(), Ordering::Relaxed);
            let record = NonNull::new(record).expect("the store's record");
            // SAFETY: the store's record, off the list now (the re-entrancy
            // rule: taken off before the allocator is called), no page, no
            // live value; nothing here uses it again (`store` is not read
            // after this).
            bytes += self.allocating(|| unsafe { store::free_record(record, self.source) });
        }
        if !outer_busy && self.has_list() && self.stores().next().is_none() {
            let list = self.list.replace(NO_STORES.as_ptr()).cast_mut();
            let layout = Self::LIST;
            bytes += layout.size();
            // SAFETY: the list, allocated with this layout, off the heap now.
            self.allocating(|| unsafe {
                source::dealloc(self.source, NonNull::new_unchecked(list).cast(), layout)
            });
        }
        budget.credit(bytes);
        bytes
    }

    /// Forgets every block — the manager's pools and large path have freed
    /// them all — keeping the pages; every handle made before becomes stale
    /// (the id moves on).
    pub(crate) fn reset(&mut self) {
        if self.has_list() {
            self.stores().for_each(RawStore::forget_slots);
        }
        // The id moves on: no older handle can match, so the generations
        // of stores made from now on may start again too.
        self.floor.set(0);
        self.identity.retire();
    }

    /// Live blocks of class `class` (from its byte store).
    pub(crate) fn live(&self, class: usize) -> usize {
        self.store(class as u32).map_or(0, RawStore::live)
    }

    /// (capacity in blocks, pages, bytes of pages, bytes of the record) of
    /// class `class`'s byte store.
    pub(crate) fn class_figures(&self, class: usize) -> (usize, usize, usize, usize) {
        self.store(class as u32).map_or((0, 0, 0, 0), |s| {
            (s.capacity(), s.pages(), s.bytes(), RawStore::BYTES)
        })
    }

    /// Bytes of the list and of the large entries' store (its record and
    /// pages): the manager-wide side table of checked blocks.
    pub(crate) fn metadata(&self) -> usize {
        let list = if self.has_list() {
            Self::LIST.size()
        } else {
            0
        };
        list + self.store(LARGE).map_or(0, |s| s.bytes() + RawStore::BYTES)
    }

    /// Whether every store is consistent.
    pub(crate) fn is_valid(&self) -> bool {
        self.stores().all(RawStore::is_valid)
    }
}

impl Drop for CheckedBlocks {
    /// Frees the records and their pages, then the list (the large
    /// entries' allocations are the large path's, freed with it).
    fn drop(&mut self) {
        for n in 0..=self.classes as u32 {
            let n = if n as usize == self.classes { LARGE } else { n };
            if !self.has_list() {
                return;
            }
            let record = self.entry(n).swap(ptr::null_mut(), Ordering::Relaxed);
            if let Some(record) = NonNull::new(record) {
                // SAFETY: a live record of the list, freed once.
                unsafe { store::free_record(record, self.source) };
            }
        }
        if self.has_list() {
            let list = self.list.replace(NO_STORES.as_ptr()).cast_mut();
            // SAFETY: allocated by `make` with this layout, freed once.
            unsafe {
                source::dealloc(self.source, NonNull::new_unchecked(list).cast(), Self::LIST)
            };
        }
    }
}

/// The value of a slot of a store of `T`s.
#[inline(always)]
fn value<T: 'static>(slot: NonNull<u8>) -> NonNull<T> {
    RawStore::value_of(slot, store::SlotOf::<T>::VALUE).cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::GENERATION;
    use crate::MemoryManager;

    /// A block's slot whose generation would wrap is retired, not reused:
    /// no (index, generation) pair is handed out twice under one id, so a
    /// stale block never matches a later one (the rule handles follow).
    #[test]
    fn a_block_slot_about_to_wrap_is_retired() {
        if cfg!(feature = "pass-through") {
            return; // every block is a large entry
        }
        let mm = MemoryManager::new();
        let old = mm.alloc_block(8).unwrap();
        mm.free(old).unwrap();
        let (slot, _) = mm.blocks().store(0).unwrap().block_slot(0).unwrap();
        // As if slot 0 had been reused 2^23 - 2 times (store 0: the tag is
        // the generation). SAFETY: slot 0, vacant: its tag is ours to set.
        unsafe { slot.cast::<u32>().write(GENERATION - 3) };
        let last = mm.alloc_block(8).unwrap();
        assert_eq!(last.slot, 0, "slot 0 again");
        mm.free(last).unwrap(); // its generation would wrap: retired
        let next = mm.alloc_block(8).unwrap();
        assert_eq!(next.slot, 1, "a fresh slot");
        assert_eq!(mm.free(last), Err(Error::DoubleFree));
        assert_eq!(mm.free(old), Err(Error::DoubleFree));
        assert!(mm.is_live(next) && mm.is_consistent());
        mm.free(next).unwrap();
    }

    /// A trim frees an emptied store's pages, its record and the list; the
    /// store made later starts past every generation dropped, so the old
    /// handles stay refused and the new block is untouched.
    #[test]
    fn a_store_made_after_a_trim_starts_past_the_old_generations() {
        let mm = MemoryManager::new();
        let a = mm.alloc_block(24).unwrap();
        mm.free(a).unwrap();
        let b = mm.alloc_block(24).unwrap();
        assert_eq!(b.slot, a.slot, "the same slot, reused");
        mm.free(b).unwrap();
        assert!(mm.trim() > 0);
        assert_eq!(mm.stats().reserved_bytes(), 0, "pages, record and list");
        let c = mm.alloc_block(24).unwrap();
        assert_eq!(c.slot, b.slot);
        assert!(c.generation > b.generation);
        assert_eq!(mm.free(a), Err(Error::DoubleFree));
        assert_eq!(mm.free(b), Err(Error::DoubleFree));
        assert_eq!(mm.read::<u64>(c, 0), Ok(0));
        mm.free(c).unwrap();
    }
}
