//! `Block`: a checked, copyable handle to raw bytes.
#![deny(unsafe_code)]

use core::fmt;
use core::ptr::NonNull;

/// A handle to a block of raw bytes from [`MemoryManager::alloc_block`].
///
/// A `Block` is `Copy`: it is an address plus the identity of the slot it
/// came from (manager, slot, generation). The manager checks that identity on
/// every [`free`](crate::MemoryManager::free), [`read`](crate::MemoryManager::read)
/// and [`write`](crate::MemoryManager::write), so a stale or foreign handle
/// is an `Err`, never undefined behaviour. Its bytes start zeroed.
///
/// The handle does not keep the manager alive: after the block is freed, or
/// the manager dropped, [`as_ptr`](Block::as_ptr) dangles.
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
/// assert_eq!(b.size(), 32);
/// mm.write(b, 0, 0xDEAD_BEEF_u32)?;
/// assert_eq!(mm.read::<u32>(b, 0)?, 0xDEAD_BEEF);
/// mm.free(b)?;
/// assert_eq!(mm.free(b), Err(Error::DoubleFree));
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block {
    pub(crate) ptr: NonNull<u8>,
    pub(crate) len: usize,
    /// Id of the manager that made it, as it was then: ids never repeat in
    /// a process, and a manager takes a new one at each reset.
    pub(crate) owner: u64,
    /// Generation of the slot when it was handed out (odd: live).
    pub(crate) generation: u32,
    /// Which slot: `class << 24 | chunk << index_bits | index` for a pooled
    /// block, or `SYSTEM_SLOT | entry` for an entry of the system table.
    pub(crate) slot: u32,
}

static_assertions::const_assert!(core::mem::size_of::<Block>() <= 32);

/// Bits of a pooled handle's slot that number a block within its class
/// (`chunk << index_bits | index`); the 7 bits above hold the class (up to
/// [`MAX_CLASSES`](crate::MAX_CLASSES) = 128) and the top bit marks the
/// system table. A class can thus have up to 2^24 blocks (16 Mi) in its
/// chunk records at once.
pub(crate) const NUMBER_BITS: u32 = 24;

static_assertions::const_assert!(crate::MAX_CLASSES <= 1 << (31 - NUMBER_BITS));

/// The bits of a slot that hold the block's number in its class.
pub(crate) const NUMBER_MASK: u32 = (1 << NUMBER_BITS) - 1;

/// A handle's slot bit that marks an entry of the system table.
pub(crate) const SYSTEM_SLOT: u32 = 1 << 31;

// SAFETY: a `Block` is plain data that owns nothing and dereferences nothing.
// Its pointer is used only by the manager's checked calls (which need the
// `!Sync` manager itself) or by `unsafe` code that takes on the obligation, so
// sending or sharing the handle cannot cause a data race.
#[allow(unsafe_code)]
unsafe impl Send for Block {}
// SAFETY: as for `Send`.
#[allow(unsafe_code)]
unsafe impl Sync for Block {}

impl Block {
    /// Address of the first byte. Stays valid until the block is freed or
    /// its manager is dropped or reset.
    ///
    /// Reading or writing through it is `unsafe` and the caller's
    /// responsibility; [`MemoryManager::read`](crate::MemoryManager::read) and
    /// [`write`](crate::MemoryManager::write) are the checked alternatives.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let b = mm.alloc_block(64)?;
    /// let p = b.as_ptr();
    /// // SAFETY: `b` is live and 64 bytes long.
    /// unsafe { p.as_ptr().write_bytes(7, 64) };
    /// assert_eq!(mm.read::<u8>(b, 63)?, 7);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The block as a raw slice pointer of [`size`](Block::size) bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// let b = mm.alloc_block(10)?;
    /// assert_eq!(b.as_slice_ptr().len(), 16);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn as_slice_ptr(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.len)
    }

    /// Usable size in bytes: the class size for a pooled block, the
    /// requested size for a block from the system allocator.
    ///
    /// # Examples
    ///
    /// ```
    /// let mm = memory_mgr::MemoryManager::new();
    /// assert_eq!(mm.alloc_block(24)?.size(), 32);
    /// assert_eq!(mm.alloc_block(1000)?.size(), 1000);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn size(&self) -> usize {
        self.len
    }

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
        self.slot & SYSTEM_SLOT == 0
    }
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("ptr", &self.ptr)
            .field("size", &self.len)
            .field("pooled", &self.is_pooled())
            .field("generation", &self.generation)
            .finish()
    }
}
