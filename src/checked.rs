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

use core::alloc::Layout;
use core::cell::Cell;
use core::mem::size_of;
use core::ptr::{self, NonNull};

use crate::block::{NUMBER_BITS, NUMBER_MASK, SYSTEM_SLOT};
use crate::budget::Budget;
use crate::identity::Identity;
use crate::pool::{floor_after, grown, Pool, Slot};
use crate::source::Source;
use crate::system;
use crate::system::Fallback;
use crate::table::Table;
use crate::{Block, Error};

/// The checked-block state of one manager.
///
/// The system table is two [`Table`]s (the re-entrancy rule, see
/// `table.rs`): `system_free` grows first and never has fewer places than
/// `system`, so an entry freed can always be listed without allocating;
/// an allocation is entered in the table in one step after the system
/// allocator returned it, growing the table again if a call the allocator
/// made took the place found before.
#[derive(Debug)]
pub(crate) struct BlockHeap {
    /// The blocks from the system allocator, by index.
    system: Table<SystemSlot>,
    /// Indices of empty system slots, reused before the table grows.
    system_free: Table<u32>,
    /// Generation new system-table entries start at: the highest of the
    /// entries dropped so far.
    system_floor: Cell<u32>,
    /// What this manager's handles carry; a new id at each reset.
    identity: Identity,
}

#[derive(Debug, Clone, Copy)]
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
// moves that ownership. It is not `Sync` (`Cell`s).
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
    /// An empty heap, its tables' memory from `source`.
    pub(crate) fn new(source: Source) -> Self {
        BlockHeap {
            system: Table::new(source),
            system_free: Table::new(source),
            system_floor: Cell::new(0),
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
        let live = self.system.len() - self.system_free.len();
        if live != 0 || self.metadata() == 0 {
            return 0;
        }
        // Drop the table, keeping its newest generation as the start of
        // entries made later (every entry started at the floor, which does
        // not move while the table lives). O(entries), paid once per entry
        // made.
        let floor = self.system_floor.get();
        self.system_floor.set(floor_after(
            floor,
            floor,
            self.system.iter().map(|s| s.generation),
        ));
        let bytes = self.system.free() + self.system_free.free();
        budget.credit(bytes);
        bytes
    }

    /// Forgets every system block — the manager's large path has freed them
    /// all — and drops the table; every handle made before becomes stale.
    /// (The pools recycle themselves.)
    pub(crate) fn reset(&mut self, budget: &Budget) {
        budget.credit(self.system.free() + self.system_free.free());
        self.system_floor.set(0); // the id changes: no older handle can match
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
        let refusing = |e: Error| e.refusing(size, fallback.name);
        self.system_room(&fallback.budget).map_err(refusing)?;
        let ptr = system::alloc_block(fallback, layout)?;
        // The allocator has returned: the room found above may be taken
        // (the re-entrancy rule); look again, in one step.
        loop {
            if let Some((index, generation)) = self.try_enter(ptr, layout, size) {
                return Ok(Block {
                    owner: self.identity.id(),
                    generation,
                    slot: SYSTEM_SLOT | index,
                });
            }
            if let Err(e) = self.system_room(&fallback.budget) {
                // SAFETY: just allocated by `alloc_block` for `layout`, and
                // in no table.
                unsafe { system::free_block(fallback, ptr, layout) };
                return Err(refusing(e));
            }
        }
    }

    /// Enters a system block in an empty entry or the next place, if there
    /// is one: (index, generation). One step, no allocation.
    fn try_enter(&self, ptr: NonNull<u8>, layout: Layout, len: usize) -> Option<(u32, u32)> {
        let index = match self.system_free.pop() {
            Some(i) => i as usize,
            None => self
                .system
                .push(SystemSlot {
                    ptr: None,
                    layout,
                    len: 0,
                    generation: self.system_floor.get(),
                })
                .ok()?,
        };
        let mut slot = self.system.get(index).expect("an entry of the table");
        slot.generation = slot.generation.wrapping_add(1);
        slot.ptr = Some(ptr);
        slot.layout = layout;
        slot.len = len;
        self.system.set(index, slot);
        Some((index as u32, slot.generation))
    }

    /// Makes sure the system table has an empty entry or a free place,
    /// growing it (charged to `budget`) if not: the list of empty entries
    /// first, so that it always has a place for every entry.
    fn system_room(&self, budget: &Budget) -> Result<(), Error> {
        let cap = self.system.capacity();
        if self.system_free.len() > 0 || self.system.len() < cap {
            return Ok(());
        }
        let max = (SYSTEM_SLOT - 1) as usize;
        let new_cap = grown(cap, max);
        if cap >= max {
            return Err(Error::OutOfMemory {
                size: new_cap * (size_of::<SystemSlot>() + size_of::<u32>()),
                align: 8,
            });
        }
        self.system_free.grow(new_cap, budget)?;
        self.system.grow(new_cap, budget)
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
        // Our id: an entry the table no longer has was dropped.
        let slot = self
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
        let index = (b.slot & !SYSTEM_SLOT) as usize;
        let mut slot = self.system.get(index).expect("a live entry");
        let (layout, ptr) = (slot.layout, slot.ptr.take());
        slot.generation = slot.generation.wrapping_add(1);
        self.system.set(index, slot);
        // `system_free` has a place for every entry (see the type).
        let listed = self.system_free.push(index as u32);
        debug_assert!(listed.is_ok());
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
        self.system.bytes() + self.system_free.bytes()
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
