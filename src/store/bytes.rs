//! Byte stores: the stores of checked [`Block`](crate::Block)s (see
//! `checked.rs`). A byte store's page is its slots' tags, then as many
//! blocks, aligned as a pool's blocks of the class are; a vacant slot's
//! link is in its block (`RawStore::link`).

use core::mem::size_of;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use super::{locate, page_slots, RawStore, GENERATION, NONE};
use crate::source::Source;

impl RawStore {
    /// A store of raw blocks of `size` bytes (a multiple of 8) aligned to
    /// `align`, numbered `number`, with no page: the slots of checked
    /// [`Block`](crate::Block)s. A slot is its tag alone (a vacant one's
    /// link is in its block, see [`link`](Self::link)); the blocks
    /// follow the slots on each page (see [`block_slot`](Self::block_slot)),
    /// so that each is aligned as a pool's block of its class is. Its
    /// generations start past `floor` (even).
    pub(crate) fn of_bytes(
        number: u32,
        size: usize,
        align: usize,
        floor: u32,
        source: Source,
    ) -> RawStore {
        /// The type a byte store is "of": no handle names it.
        struct Bytes;
        debug_assert!(size % 8 == 0 && size > 0 && align.is_power_of_two());
        let mut store = RawStore::new::<Bytes>(number, source);
        store.type_name = "bytes";
        // A slot is its tag alone: a vacant one's link is in its block.
        store.slot_size = size_of::<u32>();
        store.value_size = size;
        store.value_align = align;
        store.starting_at(floor)
    }

    /// A byte store's block size.
    pub(crate) fn block_size(&self) -> usize {
        self.value_size
    }

    /// Where a byte store's blocks start on page `p`: after its slots.
    #[inline(always)]
    pub(super) fn blocks_offset(&self, p: usize) -> usize {
        // Both powers of two: the larger is a multiple of the smaller.
        (page_slots(p) * self.slot_size).max(self.value_align)
    }

    /// Slot `index` of a byte store, if below `len`, and its block.
    #[inline(always)]
    pub(crate) fn block_slot(&self, index: u32) -> Option<(NonNull<u8>, NonNull<u8>)> {
        if index as usize >= self.len() {
            return None;
        }
        // SAFETY: `index < len` (seen through `len`'s `Acquire`).
        Some(unsafe { self.block_slot_unchecked(index) })
    }

    /// [`block_slot`](Self::block_slot) of a slot known to be below `len`.
    ///
    /// # Safety
    ///
    /// `index` must be below `len`, as the calling thread has seen it.
    #[inline(always)]
    pub(crate) unsafe fn block_slot_unchecked(&self, index: u32) -> (NonNull<u8>, NonNull<u8>) {
        // SAFETY: the caller's guarantee; the store's own block size.
        unsafe { self.block_slot_sized(index, self.value_size, self.value_align) }
    }

    /// [`block_slot_unchecked`](Self::block_slot_unchecked) with the
    /// store's block size and alignment passed in (constants where the
    /// class is).
    ///
    /// # Safety
    ///
    /// As [`block_slot_unchecked`](Self::block_slot_unchecked); `size` and
    /// `align` must be the store's.
    #[inline(always)]
    unsafe fn block_slot_sized(
        &self,
        index: u32,
        size: usize,
        align: usize,
    ) -> (NonNull<u8>, NonNull<u8>) {
        debug_assert!(size == self.value_size && align == self.value_align && size != 0);
        debug_assert!((index as usize) < self.len());
        let (page, at) = locate(index);
        // Where the blocks start: after the page's tags, both powers of two.
        let blocks = (page_slots(page) * size_of::<u32>()).max(align);
        // SAFETY: `index < len` (caller), so its page is live (invariant),
        // its slot `at` among the page's slots and its block `at` among the
        // blocks after them (`page_layout`).
        unsafe {
            let base = self.pages.get_unchecked(page).load(Ordering::Relaxed);
            (
                NonNull::new_unchecked(base.add(at * size_of::<u32>())),
                NonNull::new_unchecked(base.add(blocks + at * size)),
            )
        }
    }

    /// [`take`](Self::take) for a byte store, when a slot is vacant:
    /// (slot, block, index, tag); `None` if no slot is vacant (then
    /// [`take_new`](Self::take_new), which may allocate).
    /// `size` and `align` are the store's block size and alignment.
    #[inline(always)]
    pub(crate) fn take_vacant_block(
        &self,
        size: usize,
        align: usize,
    ) -> Option<(NonNull<u8>, NonNull<u8>, u32, u32)> {
        let index = self.vacant.load(Ordering::Relaxed);
        if index == NONE {
            return None;
        }
        // SAFETY: a vacant slot is below `len` (invariant); the caller's
        // size and alignment.
        let (slot, block) = unsafe { self.block_slot_sized(index, size, align) };
        // SAFETY: a vacant slot below `len`: its link is written in its
        // block (`link`).
        let next = unsafe { block.cast::<u32>().read() };
        self.vacant.store(next, Ordering::Relaxed);
        // SAFETY: as above.
        let tag = unsafe { Self::tag(slot) } + 1;
        Some((slot, block, index, tag))
    }

    /// [`vacate`](Self::vacate) for a byte store's slot, whose block is
    /// `block`.
    ///
    /// # Safety
    ///
    /// As [`vacate`](Self::vacate); `block` must be the slot's block.
    #[inline(always)]
    pub(crate) unsafe fn vacate_block(&self, slot: NonNull<u8>, block: NonNull<u8>, index: u32) {
        // SAFETY: the caller's guarantee: a live slot and its block, whose
        // first 4 bytes hold the link once vacant (`link`).
        unsafe {
            let tag = Self::tag(slot) + 1;
            Self::set_tag(slot, tag);
            if tag & GENERATION < GENERATION - 1 {
                block
                    .cast::<u32>()
                    .write(self.vacant.load(Ordering::Relaxed));
                self.vacant.store(index, Ordering::Relaxed);
            }
        }
        self.live.store(self.live() - 1, Ordering::Relaxed);
    }
}
