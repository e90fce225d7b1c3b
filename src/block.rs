//! `Block`: a checked, copyable handle to raw bytes.
#![deny(unsafe_code)]

use core::fmt;

/// A handle to a block of raw bytes from [`MemoryManager::alloc_block`].
///
/// A `Block` is 16 bytes of plain data, `Copy`, like a slotmap key: the id
/// of the manager that made it, the slot it names, and the slot's
/// generation when it was handed out. The manager checks all three on every
/// [`free`](crate::MemoryManager::free), [`read`](crate::MemoryManager::read),
/// [`write`](crate::MemoryManager::write), [`block_size`](crate::MemoryManager::block_size)
/// and [`block_ptr`](crate::MemoryManager::block_ptr), so a stale or foreign
/// handle is an `Err`, never undefined behaviour. Its bytes start zeroed.
///
/// The handle does not keep the manager alive, and holds no pointer: the
/// block's address comes from the manager
/// ([`block_ptr`](crate::MemoryManager::block_ptr)), checked.
///
/// [`MemoryManager::alloc_block`]: crate::MemoryManager::alloc_block
///
/// # Examples
///
/// ```
/// use memory_mgr::{Error, MemoryManager};
///
/// let mm = MemoryManager::new();
/// let b = mm.alloc_block(24)?; // served by the 32-byte class
/// assert_eq!(mm.block_size(b)?, 32);
/// mm.write(b, 0, 0xDEAD_BEEF_u32)?;
/// assert_eq!(mm.read::<u32>(b, 0)?, 0xDEAD_BEEF);
/// mm.free(b)?;
/// assert_eq!(mm.free(b), Err(Error::DoubleFree));
/// assert_eq!(size_of::<memory_mgr::Block>(), 16);
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block {
    /// Id of the manager that made it, as it was then: ids never repeat in
    /// a process, and a manager takes a new one at each reset.
    pub(crate) owner: u64,
    /// The slot's tag when it was handed out: its store's number << 24 |
    /// its generation (odd: live). The store is the byte store of the
    /// block's class, or the large entries' (see `checked.rs`); a
    /// [`Handle`](crate::Handle)'s, its type's store.
    pub(crate) generation: u32,
    /// The slot's index in its store.
    pub(crate) slot: u32,
}

static_assertions::const_assert!(core::mem::size_of::<Block>() == 16);

/// The store number (a tag's top bits) of the large entries, the checked
/// blocks above every class (`checked.rs`); a pooled block's is its class,
/// below [`MAX_CLASSES`](crate::MAX_CLASSES).
pub(crate) const LARGE: u32 = crate::MAX_CLASSES as u32;

static_assertions::const_assert!(crate::MAX_CLASSES < 1 << (32 - crate::store::STORE_SHIFT));

impl Block {
    /// Whether the block came from a size-class pool (`false`: from the
    /// system allocator, because it was larger than the largest class, its
    /// alignment was too large, or pooling is off).
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let big = mm.alloc_block(4000)?;
    /// assert!(!big.is_pooled());
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn is_pooled(&self) -> bool {
        self.generation >> crate::store::STORE_SHIFT != LARGE
    }
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("pooled", &self.is_pooled())
            .field("slot", &self.slot)
            .field("generation", &(self.generation & crate::store::GENERATION))
            .field("owner", &self.owner)
            .finish()
    }
}
