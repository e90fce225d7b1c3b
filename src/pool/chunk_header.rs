//! The header at the start of every chunk of a pool, and the lists of
//! chunks it links: allocate a chunk and write its header, find the header
//! from a block, release a chunk, walk a list, unlink from one.
//!
//! A chunk as raw memory (its size, its alignment, the base of a block by
//! masking, the chunk map) is [`chunk`]'s.

use core::ptr::{self, NonNull};

use super::Pool;
use crate::chunk::{self, HEADER_SPACE};
use crate::source;

/// The header at the start of every chunk (see [`chunk`] for the layout).
/// Written by [`ChunkHeader::allocate`]; every field but the links and the
/// scratch word is fixed from then on.
#[repr(C)]
#[derive(Debug)]
pub(super) struct ChunkHeader {
    /// The pool that owns this chunk. Pools never move while they own chunks.
    pub(super) pool: NonNull<Pool>,
    /// The pool's next chunk (a singly linked list for release), or null.
    pub(super) next: *mut ChunkHeader,
    /// Size of this chunk in bytes, for deallocation.
    pub(super) size: usize,
    /// The next chunk on the pool's spare list or used list (whichever this
    /// one is on: every chunk is on exactly one), or null.
    pub(super) spare_next: *mut ChunkHeader,
    /// Scratch count for [`Pool::trim`]: free blocks in this chunk, or
    /// `usize::MAX` for a chunk about to be released.
    pub(super) scratch: usize,
    /// Count for a [`reclaim`](Pool::reclaim) from another thread: blocks
    /// of this chunk on the remote-free list that reclaim took. 0 but
    /// during a reclaim (which runs one at a time, under the shared
    /// manager's central lock); the owner never reads or writes it.
    pub(super) reclaim: usize,
    /// Offset of the first block from the chunk's base.
    pub(super) first: u32,
    /// Blocks in this chunk.
    pub(super) blocks: u32,
    /// The pool's `thread_slot` (fixed for a pool's life, and a chunk never
    /// changes pools): a free tests its owner on this line, with the pool
    /// pointer beside it, and touches no line of the pool's but the free
    /// list's (see [`Pool::of_owned`]).
    pub(super) slot: u32,
}

static_assertions::const_assert!(core::mem::size_of::<ChunkHeader>() <= HEADER_SPACE);

/// Which of its two links a list of chunks goes through.
#[derive(Debug, Clone, Copy)]
pub(super) enum Link {
    /// `next`: the pool's list of all its chunks, or a list of chunks taken
    /// off it to be released.
    Next,
    /// `spare_next`: the pool's spare list or used list.
    Spare,
}

impl ChunkHeader {
    /// Allocates a chunk of `size` bytes for `pool` from the system and
    /// writes its header; `None` if the system allocator refuses.
    /// `cached`, if given, is a chunk of `size` bytes from a chunk cache,
    /// used instead of a new allocation.
    pub(super) fn allocate(
        pool: NonNull<Pool>,
        source: source::Source,
        size: usize,
        (first, blocks): (usize, usize),
        cached: Option<NonNull<u8>>,
    ) -> Option<NonNull<ChunkHeader>> {
        // SAFETY: `pool` is the live pool making the chunk; its slot is
        // fixed.
        let slot = unsafe { pool.as_ref() }.remote.thread_slot;
        let base = match cached {
            Some(chunk) => chunk,
            None => source::alloc(source, chunk::layout(size)?)?,
        }
        .cast::<ChunkHeader>();
        // SAFETY: `base` is a fresh allocation of at least `HEADER_SPACE`
        // bytes aligned to `SEGMENT` (or a cached chunk of `size` bytes,
        // allocated so from `source` and used by no one: the cache's
        // contract), so it is valid and aligned for a header.
        // `first` and `blocks` fit: a chunk is at most `SEGMENT` bytes.
        unsafe {
            base.write(ChunkHeader {
                pool,
                next: ptr::null_mut(),
                size,
                spare_next: ptr::null_mut(),
                scratch: 0,
                reclaim: 0,
                first: first as u32,
                blocks: blocks as u32,
                slot,
            })
        };
        Some(base)
    }

    /// The header of the chunk that holds `block`.
    ///
    /// # Safety
    ///
    /// `block` must point into a live chunk made by
    /// [`ChunkHeader::allocate`], with provenance over it.
    #[inline(always)]
    pub(super) unsafe fn of(block: NonNull<u8>) -> NonNull<ChunkHeader> {
        // SAFETY: the caller's guarantee; the chunk's base holds its header.
        unsafe { chunk::base_of(block) }.cast()
    }

    /// Frees a chunk.
    ///
    /// # Safety
    ///
    /// `chunk` must come from [`ChunkHeader::allocate`], not yet be freed,
    /// and no block in it may be used afterwards; `source` must be its pool's.
    pub(super) unsafe fn release(chunk: NonNull<ChunkHeader>, source: source::Source) {
        // SAFETY: the caller guarantees the chunk is live, so its header is
        // readable.
        let size = unsafe { (*chunk.as_ptr()).size };
        if let Some(layout) = chunk::layout(size) {
            // SAFETY: `allocate` made this chunk from `source` (the pool's,
            // which the caller passes) with exactly this layout, and the
            // caller guarantees it is freed only once.
            unsafe { source::dealloc(source, chunk.cast(), layout) };
        }
    }

    /// The place of `chunk`'s link named by `link`. No reference to the
    /// header is made: another thread may be reading its `pool` field
    /// meanwhile (a remote free).
    ///
    /// # Safety
    ///
    /// `chunk` must be a live chunk made by [`ChunkHeader::allocate`].
    #[inline]
    unsafe fn link(chunk: NonNull<ChunkHeader>, link: Link) -> *mut *mut ChunkHeader {
        let h = chunk.as_ptr();
        // SAFETY: `h` points at a live header (the caller): its fields are
        // in bounds of one allocation.
        unsafe {
            match link {
                Link::Next => &raw mut (*h).next,
                Link::Spare => &raw mut (*h).spare_next,
            }
        }
    }

    /// The chunks of the list that starts at `head`, linked through `link`,
    /// in order. Each chunk's link is read before the chunk is yielded, so
    /// the caller may relink a chunk it is given, or release it. The one
    /// walk of every chunk list.
    ///
    /// # Safety
    ///
    /// Until the iterator has yielded it, every chunk on the list must be a
    /// live chunk made by [`ChunkHeader::allocate`], and its link unchanged.
    pub(super) unsafe fn list(
        head: *mut ChunkHeader,
        link: Link,
    ) -> impl Iterator<Item = NonNull<ChunkHeader>> {
        let mut c = head;
        core::iter::from_fn(move || {
            let chunk = NonNull::new(c)?;
            // SAFETY: a chunk of the list not yet yielded: live, its link as
            // it was (the caller's guarantee).
            c = unsafe { *ChunkHeader::link(chunk, link) };
            Some(chunk)
        })
    }

    /// Unlinks from the list whose head is at `head`, linked through `link`,
    /// every chunk for which `unlink` returns `true`, keeping the others in
    /// their order. `unlink` sees each chunk once, after its link was read:
    /// when it returns `true` it may relink the chunk (onto a list of its
    /// own), else it must leave the link alone.
    ///
    /// # Safety
    ///
    /// `head` must be valid for reads and writes, every chunk on the list a
    /// live chunk made by [`ChunkHeader::allocate`], and the list's links
    /// the caller's to write (no one else walks the list meanwhile).
    pub(super) unsafe fn unlink_if(
        mut head: *mut *mut ChunkHeader,
        link: Link,
        mut unlink: impl FnMut(NonNull<ChunkHeader>) -> bool,
    ) {
        // SAFETY: `head` points at the list's head (valid, the caller's) or
        // at the link of a chunk on the list, live and ours to write; a
        // chunk's link is read before `unlink` may change it, and a chunk
        // left on the list keeps its link.
        unsafe {
            while let Some(c) = NonNull::new(*head) {
                let at = ChunkHeader::link(c, link);
                let next = *at;
                if unlink(c) {
                    *head = next;
                } else {
                    head = at;
                }
            }
        }
    }
}
