//! Checked blocks: the handles behind [`Block`], and the table of blocks
//! from the system allocator.
//!
//! A pooled block lives in one of the manager's pools with generations (see
//! [`Pool`]): the same core as boxes', with a 32-bit generation per slot
//! kept outside the user's bytes — even while free, odd while live, moved on
//! by every allocation and free. A block from the system allocator has an
//! entry in this module's table, with a generation too. A handle carries its
//! manager's [`Identity`] id and the generation it was given, so a second
//! free of it — even after the slot was handed out again — sees a newer
//! generation and is refused.
//!
//! A handle is data, never a pointer this module follows: every checked call
//! finds the slot through this manager's own tables, checks it, and computes
//! the block's address (and size) from the table; the handle's address is
//! only compared with it.
//!
//! Metadata stays bounded: a pool's record table drops its released chunks
//! (their highest generation kept as the pool's floor, where the slots of
//! later chunks start, so no handle into a released chunk can match again).
//! The system table reuses its empty entries and is dropped by a trim when
//! no system block is live, its newest generation kept the same way. Both
//! count in the stats and are charged to the budget. A reset keeps the
//! chunks as free capacity and changes the manager's id, so every older
//! handle is refused by its id. A handle that carries this manager's
//! current id but names a slot the tables no longer have is therefore
//! stale, never foreign.

use alloc::vec::Vec;
use core::alloc::Layout;
use core::cell::{Cell, RefCell};
use core::mem::size_of;
use core::ptr::{self, NonNull};

use crate::block::{NUMBER_BITS, NUMBER_MASK, SYSTEM_SLOT};
use crate::budget::Budget;
use crate::identity::Identity;
use crate::pool::{floor_after, grown, is_tagged, live_after, Pool, Slot, BLOCK, DROP_VALUE};
use crate::system;
use crate::system::Fallback;
use crate::{Block, Error};

/// What a handle value with a destructor keeps at the start of its block:
/// the function that drops it, given the block.
pub(crate) type DropFn = unsafe fn(NonNull<u8>);

/// Metadata bytes a place for a system-table entry costs: the entry, and its
/// place in the list of empty entries (both grow together, to exactly
/// `system_cap`).
const SYSTEM_ENTRY_BYTES: usize = size_of::<SystemSlot>() + size_of::<u32>();

/// The checked-block state of one manager.
#[derive(Debug)]
pub(crate) struct BlockHeap {
    inner: RefCell<Inner>,
    /// Live handle values with a destructor (tagged slots, see
    /// [`live_after`]): a reset or drop looks for them only if there are
    /// any.
    droppable: Cell<usize>,
    /// What this manager's handles carry; a new id at each reset.
    identity: Identity,
}

#[derive(Debug)]
struct Inner {
    system: Vec<SystemSlot>,
    /// Indices of empty system slots, reused before the table grows.
    system_free: Vec<u32>,
    /// Places in the system table and its free list (their capacity).
    system_cap: usize,
    /// Generation new system-table entries start at: the highest of the
    /// entries dropped so far.
    system_floor: u32,
    /// Live system-table entries that hold a handle's value.
    system_handles: usize,
}

#[derive(Debug)]
struct SystemSlot {
    /// The block while live.
    ptr: Option<NonNull<u8>>,
    /// Layout it was allocated with.
    layout: Layout,
    /// Usable size the handle reports.
    len: usize,
    generation: u32,
}

// SAFETY: a `BlockHeap` owns all of its chunks and system blocks outright and
// shares none of them with another heap or thread; moving it to another thread
// moves that ownership. It is not `Sync` (`RefCell`).
unsafe impl Send for BlockHeap {}

/// What a validated handle names: the block's address and usable size, as
/// this manager's tables say.
pub(crate) struct Found<'p> {
    pub(crate) ptr: NonNull<u8>,
    len: usize,
    /// A pooled block's pool and slot.
    pooled: Option<(&'p Pool, Slot)>,
}

impl BlockHeap {
    /// An empty heap with one class per entry of `sizes`.
    pub(crate) fn new() -> Self {
        BlockHeap {
            inner: RefCell::new(Inner {
                system: Vec::new(),
                system_free: Vec::new(),
                system_cap: 0,
                system_floor: 0,
                system_handles: 0,
            }),
            droppable: Cell::new(0),
            identity: Identity::new(),
        }
    }

    /// The error for a handle that is not this heap's now: stale if it is
    /// from before a reset of this heap, else foreign.
    #[cold]
    /// The error for a handle that does not carry this heap's current id:
    /// one of this manager's earlier ids means a reset freed the block.
    fn not_ours(&self, b: Block) -> Error {
        if self.identity.is_retired(b.owner) {
            Error::FreedByReset
        } else {
            Error::ForeignBlock
        }
    }

    /// Releases the system table if no system block is live; returns the
    /// bytes released. (The pools trim themselves.)
    pub(crate) fn trim(&self, budget: &Budget) -> usize {
        let mut inner = self.inner.borrow_mut();
        let mut released = 0;
        let live = inner.system.len() - inner.system_free.len();
        if live == 0 && inner.system_cap > 0 {
            // Drop the table, keeping its newest generation as the start of
            // entries made later (every entry started at the floor, which
            // does not move while the table lives). O(entries), paid once
            // per entry made.
            let floor = inner.system_floor;
            inner.system_floor =
                floor_after(floor, floor, inner.system.iter().map(|s| s.generation));
            let bytes = inner.system_cap * SYSTEM_ENTRY_BYTES;
            budget.credit(bytes);
            released += bytes;
            inner.system_cap = 0;
            inner.system = Vec::new();
            inner.system_free = Vec::new();
        }
        released
    }

    /// Forgets every system block — the manager's large path has freed them
    /// all — and drops the table; every handle made before becomes stale.
    /// (The pools recycle themselves.)
    pub(crate) fn reset(&mut self, budget: &Budget) {
        let inner = self.inner.get_mut();
        budget.credit(inner.system_cap * SYSTEM_ENTRY_BYTES);
        inner.system = Vec::new();
        inner.system_free = Vec::new();
        inner.system_cap = 0;
        inner.system_floor = 0; // the id changes: no older handle can match
        inner.system_handles = 0;
        self.droppable.set(0);
        self.identity.retire();
    }

    /// Allocates a zeroed block from `pool`, the pool with generations of
    /// class `class`, whose block size is `size` (passed in so that it is a
    /// constant where the class is).
    #[inline(always)]
    pub(crate) fn alloc_pooled(
        &self,
        pool: &Pool,
        class: usize,
        size: usize,
    ) -> Result<Block, Error> {
        debug_assert_eq!(
            pool.block_size(),
            size,
            "class {class} has another block size"
        );
        let (block, ptr) = self.alloc_slot(pool, class, BLOCK)?;
        // SAFETY: the block is `size` bytes inside a live chunk and now ours.
        unsafe { ptr.write_bytes(0, size) };
        Ok(block)
    }

    /// Allocates a block from `pool` (of class `class`) for a handle's
    /// value, uninitialised: its handle, and its address from the pool's
    /// tables. `kind` is [`VALUE`](crate::pool::VALUE), or [`DROP_VALUE`]
    /// for a value with a destructor, which a reset or drop runs through a
    /// function pointer at the start of the block.
    ///
    /// # Safety
    ///
    /// For [`DROP_VALUE`], the caller writes a [`DropFn`] for the value at
    /// the start of the block, and the value, before any other call to
    /// this heap.
    #[inline(always)]
    pub(crate) unsafe fn alloc_value(
        &self,
        pool: &Pool,
        class: usize,
        kind: u32,
    ) -> Result<(Block, NonNull<u8>), Error> {
        debug_assert_ne!(kind, BLOCK);
        let found = self.alloc_slot(pool, class, kind)?;
        pool.count_tally(true);
        self.droppable
            .set(self.droppable.get() + usize::from(kind == DROP_VALUE));
        Ok(found)
    }

    /// A slot of `pool` and its handle.
    #[inline(always)]
    fn alloc_slot(
        &self,
        pool: &Pool,
        class: usize,
        kind: u32,
    ) -> Result<(Block, NonNull<u8>), Error> {
        let (ptr, number, generation) = pool.alloc_slot(kind)?;
        let block = Block {
            owner: self.identity.id(),
            generation,
            slot: ((class as u32) << NUMBER_BITS) | number,
        };
        Ok((block, ptr))
    }

    /// Allocates a zeroed block of `size` bytes at `align` from the system
    /// allocator (`layout` rounded up to at least one byte), through the
    /// manager's large path (`fallback`), and gives it an entry in the
    /// table.
    #[inline(never)]
    pub(crate) fn alloc_system(
        &self,
        size: usize,
        align: usize,
        fallback: &Fallback,
    ) -> Result<Block, Error> {
        self.alloc_system_entry(size, align, fallback, BLOCK)
            .map(|(block, _)| block)
    }

    /// [`alloc_system`](Self::alloc_system) for a handle's value (its
    /// address too); `kind` as in [`alloc_value`](Self::alloc_value).
    ///
    /// # Safety
    ///
    /// As [`alloc_value`](Self::alloc_value).
    #[inline(never)]
    pub(crate) unsafe fn alloc_system_value(
        &self,
        size: usize,
        align: usize,
        fallback: &Fallback,
        kind: u32,
    ) -> Result<(Block, NonNull<u8>), Error> {
        debug_assert_ne!(kind, BLOCK);
        self.alloc_system_entry(size, align, fallback, kind)
    }

    /// A system block and its entry, to hold `kind` (see
    /// [`live_after`]).
    fn alloc_system_entry(
        &self,
        size: usize,
        align: usize,
        fallback: &Fallback,
        kind: u32,
    ) -> Result<(Block, NonNull<u8>), Error> {
        let layout = Layout::from_size_align(size.max(1), align)
            .map_err(|_| Error::LayoutOverflow { size, align })?;
        let index = self
            .system_entry(&fallback.budget)
            .map_err(|e| e.refusing(size, fallback.name))?;
        let ptr = system::alloc_block(fallback, layout)?;
        let mut inner = self.inner.borrow_mut();
        if index == inner.system.len() {
            let generation = inner.system_floor;
            // Room was reserved by `system_entry`: no allocation.
            inner.system.push(SystemSlot {
                ptr: None,
                layout,
                len: 0,
                generation,
            });
        } else {
            inner.system_free.pop();
        }
        let slot = &mut inner.system[index];
        slot.generation = live_after(slot.generation, kind);
        slot.ptr = Some(ptr);
        slot.layout = layout;
        slot.len = size;
        let block = Block {
            owner: self.identity.id(),
            generation: slot.generation,
            slot: SYSTEM_SLOT | index as u32,
        };
        if kind != BLOCK {
            inner.system_handles += 1;
            self.droppable
                .set(self.droppable.get() + usize::from(kind == DROP_VALUE));
        }
        Ok((block, ptr))
    }

    /// The table entry the next system block takes (an empty one, or the
    /// next place), growing the table (charged to `budget`) if it is full.
    /// A grown table keeps its places, charged, whatever happens next.
    fn system_entry(&self, budget: &Budget) -> Result<usize, Error> {
        let mut inner = self.inner.borrow_mut();
        if let Some(&i) = inner.system_free.last() {
            return Ok(i as usize);
        }
        let (len, cap) = (inner.system.len(), inner.system_cap);
        if len < cap {
            return Ok(len);
        }
        let max = (SYSTEM_SLOT - 1) as usize;
        let new_cap = grown(cap, max);
        let oom = Error::OutOfMemory {
            size: new_cap * SYSTEM_ENTRY_BYTES,
            align: 8,
        };
        if cap >= max {
            return Err(oom);
        }
        let metadata = (new_cap - cap) * SYSTEM_ENTRY_BYTES;
        budget.charge(metadata)?;
        // Exactly the places charged for, in the table and in its free list
        // (so that `free` can push without allocating).
        let free_len = inner.system_free.len();
        if inner.system.try_reserve_exact(new_cap - len).is_err()
            || inner
                .system_free
                .try_reserve_exact(new_cap - free_len)
                .is_err()
        {
            // Whatever was had is kept, and stays charged (it is counted by
            // capacity): the table's capacity now.
            let had = inner.system.capacity().min(inner.system_free.capacity());
            budget.credit(metadata - (had.max(cap) - cap) * SYSTEM_ENTRY_BYTES);
            inner.system_cap = had.max(cap);
            return Err(oom);
        }
        inner.system_cap = new_cap;
        Ok(len)
    }

    /// Finds the block `b` names in this heap's tables (`pools`: the pools
    /// with generations): checks that it was made by this heap since its
    /// last reset, that its slot is still in the generation it was handed
    /// out in; returns the address and size from the table, and for a
    /// pooled block its slot. Ids never repeat, so a handle with this heap's
    /// id was made by it (its fields are private: no other code makes one).
    /// `stale` is the error for a handle whose slot has moved on.
    #[inline(always)]
    fn validate<'p>(&self, pools: &'p [Pool], b: Block, stale: Error) -> Result<Found<'p>, Error> {
        if b.owner != self.identity.id() {
            return Err(self.not_ours(b));
        }
        // A system slot's class bits are 128 or more: past every class.
        let Some(pool) = pools.get((b.slot >> NUMBER_BITS) as usize) else {
            return self.validate_system(b, stale);
        };
        // Our id: a slot the pool no longer has, or whose generation moved
        // on, was freed (and its chunk perhaps released by a trim).
        let slot = pool
            .find_slot(b.slot & NUMBER_MASK, b.generation, pool.block_size())
            .ok_or(stale)?;
        Ok(Found {
            ptr: slot.block,
            len: pool.block_size(),
            pooled: Some((pool, slot)),
        })
    }

    /// The system-table half of [`validate`](Self::validate), once the id
    /// matched.
    #[inline(never)]
    fn validate_system<'p>(&self, b: Block, stale: Error) -> Result<Found<'p>, Error> {
        if b.slot & SYSTEM_SLOT == 0 {
            return Err(Error::ForeignBlock); // a class this manager lacks
        }
        let inner = self.inner.borrow();
        // Our id: an entry the table no longer has was dropped.
        let slot = inner
            .system
            .get((b.slot & !SYSTEM_SLOT) as usize)
            .ok_or(stale)?;
        if slot.generation != b.generation {
            return Err(stale);
        }
        Ok(Found {
            ptr: slot.ptr.ok_or(stale)?,
            len: slot.len,
            pooled: None,
        })
    }

    /// Frees `b` if it is a live block of this heap (`pools`: the pools with
    /// generations).
    #[inline(always)]
    pub(crate) fn free(&self, pools: &[Pool], b: Block, fallback: &Fallback) -> Result<(), Error> {
        match self.validate(pools, b, Error::DoubleFree)?.pooled {
            // SAFETY: `validate` just found the slot live, with nothing in
            // between; the handle's owner gives the block up.
            Some((pool, slot)) => unsafe { pool.free_slot(slot) },
            None => self.free_system(b, fallback),
        }
        Ok(())
    }

    /// The system-block half of [`free`](Self::free), once `b` is found
    /// live.
    #[inline(never)]
    fn free_system(&self, b: Block, fallback: &Fallback) {
        let mut inner = self.inner.borrow_mut();
        let index = (b.slot & !SYSTEM_SLOT) as usize;
        let slot = &mut inner.system[index];
        let layout = slot.layout;
        let ptr = slot.ptr.take();
        slot.generation = slot.generation.wrapping_add(1);
        // Capacity for every entry's index is reserved when the entry is made.
        debug_assert!(inner.system_free.len() < inner.system_free.capacity());
        inner.system_free.push(index as u32);
        drop(inner);
        if let Some(ptr) = ptr {
            // SAFETY: the slot held this live allocation of `alloc_block`
            // for `layout`; it is now emptied, so it is freed once.
            unsafe { system::free_block(fallback, ptr, layout) };
        }
    }

    /// Finds live handle value `b` in `pool` — its class's pool with
    /// generations, of `size`-byte blocks (constants where the type is) —
    /// or for `None` in the system table: the fast path of every handle
    /// access. `None` for any failure; [`handle_error`](Self::handle_error)
    /// says which. (A handle of this heap's id names its type's class: only
    /// `try_insert::<T>` of this manager, with its class table, made it.)
    #[inline(always)]
    pub(crate) fn find_value<'p>(
        &self,
        pool: Option<&'p Pool>,
        size: usize,
        b: Block,
    ) -> Option<Found<'p>> {
        if b.owner != self.identity.id() {
            return None;
        }
        match pool {
            Some(pool) => {
                debug_assert_eq!((b.slot >> NUMBER_BITS) as usize, pool.class_and_owner().0);
                let slot = pool.find_slot(b.slot & NUMBER_MASK, b.generation, size)?;
                Some(Found {
                    ptr: slot.block,
                    len: size,
                    pooled: Some((pool, slot)),
                })
            }
            None => self.validate_system(b, Error::Removed).ok(),
        }
    }

    /// Why handle `b` was not found: [`Error::Removed`] if its slot moved on
    /// (removed, or its chunk trimmed since — or the slot matched but holds
    /// a value of another type: reused 2^29 times since), and
    /// [`Error::FreedByReset`] or [`Error::ForeignBlock`] for another id.
    #[cold]
    #[inline(never)]
    pub(crate) fn handle_error(&self, pools: &[Pool], b: Block) -> Error {
        match self.validate(pools, b, Error::Removed) {
            Err(e) => e,
            Ok(_) => Error::Removed, // the slot holds another type now
        }
    }

    /// Frees the block of handle value `b`, which `found` is, once its
    /// value was moved out.
    ///
    /// # Safety
    ///
    /// `found` must come from [`find_value`](Self::find_value) for `b` with
    /// no call to this heap since; nothing may use the block afterwards.
    /// `tagged`: the value has a destructor (a constant of its type).
    #[inline(always)]
    pub(crate) unsafe fn free_value(
        &self,
        found: Found<'_>,
        b: Block,
        fallback: &Fallback,
        tagged: bool,
    ) {
        debug_assert_eq!(tagged, is_tagged(b.generation));
        if tagged {
            self.droppable.set(self.droppable.get() - 1);
        }
        match found.pooled {
            Some((pool, slot)) => {
                pool.count_tally(false);
                // SAFETY: found live, nothing touched the pool since (caller).
                unsafe { pool.free_slot(slot) }
            }
            None => {
                self.inner.borrow_mut().system_handles -= 1;
                self.free_system(b, fallback);
            }
        }
    }

    /// Runs the destructor of every live handle value that has one (the
    /// function at the start of its block) and frees the block; the values
    /// without one stay live (a reset forgets them, a drop releases their
    /// chunks). A panicking destructor leaves the heap consistent: its block
    /// freed, the values not yet reached still live. Nothing to do, and
    /// O(1), when no such value is live; else O(slots of the checked pools
    /// + system entries).
    ///
    /// `&mut self`: the heap is its manager's, which is borrowed mutably, so
    /// no reference to a value exists (they borrow the manager), and every
    /// handle is checked against the tables this updates.
    pub(crate) fn drop_values(&mut self, pools: &[Pool], fallback: &Fallback) {
        let this = &*self;
        this.drop_tagged(pools, fallback);
    }

    /// [`drop_values`](Self::drop_values), once exclusive access is shown.
    fn drop_tagged(&self, pools: &[Pool], fallback: &Fallback) {
        if self.droppable.get() == 0 {
            return;
        }
        let run = |block: NonNull<u8>| {
            self.droppable.set(self.droppable.get() - 1);
            // SAFETY: a tagged block holds a handle's value, its destructor's
            // function at the start (`alloc_value`'s contract); the block is
            // freed after, and the value not used again.
            unsafe { (block.cast::<DropFn>().read())(block) }
        };
        for pool in pools.iter().filter(|p| p.tally() > 0) {
            // SAFETY: every tagged block holds a value with its `DropFn`
            // (`alloc_value`'s contract), unreferenced (`drop_values`), and
            // not used after it is dropped; the destructor of a `T: 'static`
            // value cannot reach the manager, which is borrowed mutably.
            unsafe { pool.drain_tagged(run) };
        }
        /// Frees a system block on drop, also when the destructor unwinds.
        struct Free<'f>(NonNull<u8>, Layout, &'f Fallback);
        impl Drop for Free<'_> {
            fn drop(&mut self) {
                // SAFETY: the entry held this live allocation of
                // `alloc_block`; it was emptied, so it is freed once.
                unsafe { system::free_block(self.2, self.0, self.1) };
            }
        }
        let mut index = 0;
        while self.droppable.get() > 0 {
            let mut inner = self.inner.borrow_mut();
            let Some(slot) = inner.system.get_mut(index) else {
                break;
            };
            if slot.ptr.is_none() || !is_tagged(slot.generation) {
                index += 1;
                continue;
            }
            let layout = slot.layout;
            let ptr = slot.ptr.take();
            slot.generation = slot.generation.wrapping_add(1);
            debug_assert!(inner.system_free.len() < inner.system_free.capacity());
            inner.system_free.push(index as u32);
            inner.system_handles -= 1;
            drop(inner);
            if let Some(ptr) = ptr {
                let _free = Free(ptr, layout, fallback);
                run(ptr);
            }
            index += 1;
        }
    }

    /// Live handle values in the system table.
    pub(crate) fn system_handles(&self) -> usize {
        self.inner.borrow().system_handles
    }

    /// Whether `b` is a live block of this heap.
    #[inline]
    pub(crate) fn is_live(&self, pools: &[Pool], b: Block) -> bool {
        self.validate(pools, b, Error::UseAfterFree).is_ok()
    }

    /// The bytes of live block `b`, from this heap's tables.
    #[inline]
    pub(crate) fn bytes(&self, pools: &[Pool], b: Block) -> Result<NonNull<[u8]>, Error> {
        let found = self.validate(pools, b, Error::UseAfterFree)?;
        Ok(NonNull::slice_from_raw_parts(found.ptr, found.len))
    }

    /// Checks that `len` bytes at `offset` lie inside live block `b`, and
    /// returns their address, computed from this heap's tables.
    #[inline]
    fn access(
        &self,
        pools: &[Pool],
        b: Block,
        offset: usize,
        len: usize,
    ) -> Result<NonNull<u8>, Error> {
        let found = self.validate(pools, b, Error::UseAfterFree)?;
        match offset.checked_add(len) {
            Some(end) if end <= found.len => {
                // SAFETY: `offset <= found.len`, inside (or one past) the live
                // block the table names.
                Ok(unsafe { found.ptr.add(offset) })
            }
            _ => Err(Error::OutOfBounds {
                offset,
                len,
                size: found.len,
            }),
        }
    }

    /// Copies `src` into live block `b` at `offset`.
    #[inline]
    pub(crate) fn write_bytes(
        &self,
        pools: &[Pool],
        b: Block,
        offset: usize,
        src: &[u8],
    ) -> Result<(), Error> {
        let dst = self.access(pools, b, offset, src.len())?;
        // SAFETY: `access` checked that `src.len()` bytes at `dst` are inside a
        // live block. `copy` allows overlap, in case `unsafe` code made `src`
        // from this very block.
        unsafe { ptr::copy(src.as_ptr(), dst.as_ptr(), src.len()) };
        Ok(())
    }

    /// Copies bytes of live block `b` at `offset` into `dst`.
    #[inline]
    pub(crate) fn read_bytes(
        &self,
        pools: &[Pool],
        b: Block,
        offset: usize,
        dst: &mut [u8],
    ) -> Result<(), Error> {
        let src = self.access(pools, b, offset, dst.len())?;
        // SAFETY: as in `write_bytes`; the block's bytes are initialised
        // because every block starts zeroed.
        unsafe { ptr::copy(src.as_ptr(), dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Bytes of the system table (its capacity, charged to the budget).
    pub(crate) fn metadata(&self) -> usize {
        self.inner.borrow().system_cap * SYSTEM_ENTRY_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_moves_to_the_newest_generation_across_the_wrap() {
        assert_eq!(floor_after(0, 0, [2, 7, 4].into_iter()), 7);
        assert_eq!(floor_after(0, 10, [2, 4].into_iter()), 10, "behind it");
        assert_eq!(floor_after(3, 10, core::iter::empty()), 10);
        // Near the wrap: 1 (wrapped) is newer than u32::MAX - 1.
        let f = u32::MAX - 3;
        assert_eq!(
            floor_after(f, f, [u32::MAX - 1, 0, 1, u32::MAX].into_iter()),
            1
        );
        assert_eq!(floor_after(f, f, [u32::MAX - 2].into_iter()), u32::MAX - 2);
        // A slot 2^31 and more ahead of where it started (2^30 reuses) is
        // still ahead, up to 2^32 - 1 moves (found by the review).
        assert_eq!(floor_after(0, 0, [1 << 31].into_iter()), 1 << 31);
        assert_eq!(floor_after(0, 0, [u32::MAX - 1].into_iter()), u32::MAX - 1);
        assert_eq!(floor_after(5, 5, [4].into_iter()), 4, "2^32 - 1 moves");
    }
}
