//! Debug fill (cargo feature `debug-fill`): blocks handed out are filled with
//! [`FRESH`], freed blocks with [`FREED`] (after the free-list link), and a
//! freed block is checked when it is handed out again, so a write after free
//! is caught at the next allocation of that block instead of corrupting a
//! later owner silently. Without the feature every function here is empty.

use core::ptr::NonNull;

/// Byte pattern of a block just handed out (before the value is written).
pub(crate) const FRESH: u8 = 0xCD;
/// Byte pattern of a freed block, after its first 8 bytes (the free-list link).
pub(crate) const FREED: u8 = 0xDD;

/// Bytes at the start of a free block that hold the free-list link.
const LINK: usize = 8;

/// Fills a block about to be handed out with [`FRESH`].
///
/// # Safety
///
/// `block` must be valid for writes of `size` bytes.
#[inline(always)]
pub(crate) unsafe fn fresh(block: NonNull<u8>, size: usize) {
    if cfg!(feature = "debug-fill") {
        // SAFETY: the caller guarantees `size` writable bytes.
        unsafe { block.write_bytes(FRESH, size) };
    }
}

/// Fills a freed block, after its link word, with [`FREED`].
///
/// # Safety
///
/// `block` must be valid for writes of `size` bytes.
#[inline(always)]
pub(crate) unsafe fn freed(block: NonNull<u8>, size: usize) {
    if cfg!(feature = "debug-fill") && size > LINK {
        // SAFETY: the caller guarantees `size` writable bytes.
        unsafe { block.add(LINK).write_bytes(FREED, size - LINK) };
    }
}

/// Checks that a free block about to be handed out again still holds
/// [`FREED`] after its link word.
///
/// # Safety
///
/// `block` must be valid for reads of `size` bytes, filled by [`freed`]
/// when it was freed (other than by a buggy program writing after free).
///
/// # Panics
///
/// Panics (feature `debug-fill` only) if a byte was written after the block
/// was freed: that is a use-after-free in the program.
#[inline(always)]
pub(crate) unsafe fn check_freed(block: NonNull<u8>, size: usize) {
    // SAFETY: the caller's guarantee.
    if let Some(w) = unsafe { written(block, size) } {
        w.panic();
    }
}

/// A byte written after its block was freed: what [`check_freed`] panics
/// with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    addr: usize,
    size: usize,
    offset: usize,
    value: u8,
}

impl Written {
    /// Panics with the block's address and size and the byte found.
    #[cold]
    #[inline(never)]
    pub(crate) fn panic(self) -> ! {
        let Written {
            addr,
            size,
            offset,
            value,
        } = self;
        panic!(
            "memory_mgr: a freed {size}-byte block at {addr:#x} was written after it was freed \
             (byte {offset} is {value:#04x}, not {FREED:#04x})"
        )
    }
}

/// The first byte of a free block, after its link word, that no longer
/// holds [`FREED`] (feature `debug-fill` only; `None` without it).
///
/// # Safety
///
/// As for [`check_freed`].
#[inline(always)]
pub(crate) unsafe fn written(block: NonNull<u8>, size: usize) -> Option<Written> {
    if cfg!(feature = "debug-fill") && size > LINK {
        // SAFETY: the caller guarantees `size` readable bytes, all
        // initialised by `freed` (or by whatever wrote them after the free).
        let rest = unsafe { core::slice::from_raw_parts(block.as_ptr().add(LINK), size - LINK) };
        if let Some(i) = rest.iter().position(|&b| b != FREED) {
            return Some(Written {
                addr: block.as_ptr().addr(),
                size,
                offset: LINK + i,
                value: rest[i],
            });
        }
    }
    None
}
