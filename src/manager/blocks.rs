//! The checked-block core of a manager: what `api.rs`'s `block_api!`
//! calls, over `checked.rs`.
#![deny(unsafe_code)]

use core::ptr::NonNull;

use super::MemoryManager;
use crate::heap::Heap;
use crate::size_class::SizeClasses;
use crate::{Block, Error};

impl<C: SizeClasses> MemoryManager<C> {
    // ----- checked raw blocks: the core `api.rs` calls ---------------------

    /// Runs `f` with the manager that holds this manager's checked blocks:
    /// itself. (A shared manager's is its central manager, under the lock:
    /// `api.rs` writes the block methods once over both.)
    #[inline(always)]
    pub(crate) fn blocks_at<R>(&self, f: impl FnOnce(&Self) -> R) -> Result<R, Error> {
        Ok(f(self))
    }

    /// A zeroed checked block of at least `size` bytes at `align`.
    #[inline(always)]
    pub(crate) fn checked_alloc(&self, size: usize, align: usize) -> Result<Block, Error> {
        if !align.is_power_of_two() {
            return Err(Error::InvalidAlignment { align });
        }
        match Heap::<C>::block_class(size, align) {
            Some(class) => self.blocks.alloc_pooled(
                class,
                C::TABLE.size(class),
                self.heap.get(class),
                self.heap.budget(),
            ),
            None => self
                .blocks
                .alloc_large(size, align.max(8), self.heap.heap_record()),
        }
    }

    /// Frees a checked block, checked.
    #[inline(always)]
    pub(crate) fn checked_free(&self, block: Block) -> Result<(), Error> {
        self.blocks.free(block, self.heap.heap_record())
    }

    /// Whether `block` is a live checked block here.
    #[inline]
    pub(crate) fn checked_is_live(&self, block: Block) -> bool {
        self.blocks.is_live(block)
    }

    /// The bytes of live checked block `block`.
    #[inline]
    pub(crate) fn checked_bytes(&self, block: Block) -> Result<NonNull<[u8]>, Error> {
        self.blocks.bytes(block)
    }

    /// Copies bytes of live checked block `block`, from `offset`, to `dst`.
    #[inline]
    pub(crate) fn checked_read(
        &self,
        block: Block,
        offset: usize,
        dst: &mut [u8],
    ) -> Result<(), Error> {
        self.blocks.read_bytes(block, offset, dst)
    }

    /// Copies `src` into live checked block `block` at `offset`.
    #[inline]
    pub(crate) fn checked_write(
        &self,
        block: Block,
        offset: usize,
        src: &[u8],
    ) -> Result<(), Error> {
        self.blocks.write_bytes(block, offset, src)
    }
}
