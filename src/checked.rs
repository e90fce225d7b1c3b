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
use core::cell::RefCell;
use core::mem::size_of;
use core::ptr::{self, NonNull};

use crate::block::{NUMBER_BITS, NUMBER_MASK, SYSTEM_SLOT};
use crate::budget::Budget;
use crate::identity::Identity;
use crate::pool::{floor_after, grown, Pool, Slot};
use crate::system;
use crate::system::Fallback;
use crate::{Block, Error};

/// Metadata bytes a place for a system-table entry costs: the entry, and its
/// place in the list of empty entries (both grow together, to exactly
/// `system_cap`).
const SYSTEM_ENTRY_BYTES: usize = size_of::<SystemSlot>() + size_of::<u32>();

/// The checked-block state of one manager.
#[derive(Debug)]
pub(crate) struct BlockHeap {
    inner: RefCell<Inner>,
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
struct Found<'p> {
    ptr: NonNull<u8>,
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
            }),
            identity: Identity::new(),
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
        let (ptr, number, generation) = pool.alloc_slot()?;
        // SAFETY: the block is `size` bytes inside a live chunk and now ours.
        unsafe { ptr.write_bytes(0, size) };
        Ok(Block {
            owner: self.identity.id(),
            generation,
            slot: ((class as u32) << NUMBER_BITS) | number,
        })
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
        slot.generation = slot.generation.wrapping_add(1);
        slot.ptr = Some(ptr);
        slot.layout = layout;
        slot.len = size;
        Ok(Block {
            owner: self.identity.id(),
            generation: slot.generation,
            slot: SYSTEM_SLOT | index as u32,
        })
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
            .find_slot(b.slot & NUMBER_MASK, b.generation)
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
