//! The process-wide map from an address to the thread-heap chunk that holds
//! it, read without a lock: what lets a shared manager's collections (its
//! `Allocator` implementation) free and resize on any thread through the
//! manager's own pointer, whatever the provenance of the caller's.
//!
//! Every chunk is aligned to [`SEGMENT`] and at most that large, so each
//! `SEGMENT`-sized stretch of the address space holds at most one chunk's
//! base: a two-level table indexed by `address / SEGMENT` (mimalloc's
//! segment map) holds a pointer to it, made by the chunk's allocation and so
//! with provenance over the whole chunk, header included. A leaf (one per
//! 16 GiB of address space touched) is allocated on first use from the
//! system allocator — never the global allocator, which may be `Global` and
//! call back here — and kept for the life of the process; the top level is a
//! static. Addresses past 2^48 (no system hands them out unasked) are not
//! mapped: [`insert`] refuses them, and the pool then refuses the chunk.
//!
//! Only the shared manager's thread heaps enter their chunks (see
//! `HeapKind::segment_map`); a `MemoryManager` and the central heap keep
//! their own sorted chunk map, used under their owner or lock.
//!
//! Invariant: an entry is null or the base of a live chunk of a thread heap
//! that lies in the entry's segment, entered by [`insert`] after the chunk
//! was made and cleared by [`remove`] before it is freed; the owner of the
//! chunk's pool is the only writer of the entry.

use core::alloc::Layout;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::chunk::SEGMENT;

/// log2 of the entries of a leaf.
const LEAF_BITS: u32 = 14;
/// log2 of the entries of the top level: 48-bit addresses.
const TOP_BITS: u32 = 48 - SEGMENT.trailing_zeros() - LEAF_BITS;

/// One leaf: the chunk bases of `2^LEAF_BITS` segments.
struct Leaf([AtomicPtr<u8>; 1 << LEAF_BITS]);

/// The top level: a leaf per `2^LEAF_BITS` segments, or null.
static TOP: [AtomicPtr<Leaf>; 1 << TOP_BITS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; 1 << TOP_BITS];

/// The top and leaf indices of `addr`'s segment, or `None` past 2^48.
#[inline(always)]
fn index(addr: usize) -> Option<(usize, usize)> {
    let segment = addr >> SEGMENT.trailing_zeros();
    let top = segment >> LEAF_BITS;
    (top < 1 << TOP_BITS).then_some((top, segment & ((1 << LEAF_BITS) - 1)))
}

/// The leaf of top index `top`, made if need be; `None` if the system
/// allocator refuses one.
fn leaf(top: usize) -> Option<&'static Leaf> {
    // `Acquire`: pairs with the `Release` of the CAS that published the
    // leaf, so its zeroed entries are seen.
    let seen = TOP[top].load(Ordering::Acquire);
    if let Some(l) = NonNull::new(seen) {
        // SAFETY: a published leaf lives for the rest of the process.
        return Some(unsafe { l.as_ref() });
    }
    let layout = Layout::new::<Leaf>();
    // Zeroed: every entry null (a null `AtomicPtr` is all zero bits).
    let made = crate::source::alloc_zeroed(crate::source::Source::System, layout)?.cast::<Leaf>();
    // `Release` on success publishes the zeroed leaf; `Acquire` on failure
    // sees the winner's.
    match TOP[top].compare_exchange(
        ptr::null_mut(),
        made.as_ptr(),
        Ordering::Release,
        Ordering::Acquire,
    ) {
        // SAFETY: published now, never freed.
        Ok(_) => Some(unsafe { made.as_ref() }),
        Err(winner) => {
            // SAFETY: ours was never shared; the winner's is published and
            // never freed.
            unsafe {
                crate::source::dealloc(crate::source::Source::System, made.cast(), layout);
                Some(&*winner)
            }
        }
    }
}

/// Enters `chunk` (a thread heap's new chunk, [`SEGMENT`]-aligned); `false`
/// if its address is past 2^48 or no leaf could be made (the chunk is then
/// refused).
pub(crate) fn insert(chunk: NonNull<u8>) -> bool {
    let Some((top, i)) = index(chunk.as_ptr().addr()) else {
        return false;
    };
    let Some(leaf) = leaf(top) else {
        return false;
    };
    // `Release`: the chunk's header, written before, is seen by a thread
    // that finds the chunk here with `Acquire` (`find`).
    leaf.0[i].store(chunk.as_ptr(), Ordering::Release);
    true
}

/// Clears the entry of `chunk`, entered by [`insert`], before it is freed.
pub(crate) fn remove(chunk: NonNull<u8>) {
    if let Some((top, i)) = index(chunk.as_ptr().addr()) {
        // `Acquire`: as in `leaf` (an entered chunk's leaf exists).
        if let Some(leaf) = NonNull::new(TOP[top].load(Ordering::Acquire)) {
            // `Relaxed`: no thread may look the chunk up any more (its
            // blocks are all free: the caller frees it).
            // SAFETY: a published leaf lives for the rest of the process.
            unsafe { leaf.as_ref() }.0[i].store(ptr::null_mut(), Ordering::Relaxed);
        }
    }
}

/// The base of the entered chunk that holds `addr`, with provenance over
/// the whole chunk, or `None` if no entered chunk holds it.
#[cfg_attr(not(feature = "allocator-api2"), allow(dead_code))] // the `Allocator` impl's
#[inline]
pub(crate) fn find(addr: usize) -> Option<NonNull<u8>> {
    let (top, i) = index(addr)?;
    // `Acquire`: as in `leaf`.
    let leaf = NonNull::new(TOP[top].load(Ordering::Acquire))?;
    // `Acquire`: pairs with `insert`'s `Release`, so the chunk's header is
    // seen as written.
    // SAFETY: a published leaf lives for the rest of the process.
    NonNull::new(unsafe { leaf.as_ref() }.0[i].load(Ordering::Acquire))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entered_chunk_is_found_from_any_address_in_it_until_removed() {
        let layout = Layout::from_size_align(SEGMENT / 4, SEGMENT).unwrap();
        let chunk = crate::source::alloc(crate::source::Source::System, layout).unwrap();
        let base = chunk.as_ptr().addr();
        assert_eq!(find(base + 100), None);
        assert!(insert(chunk));
        assert_eq!(find(base), Some(chunk));
        assert_eq!(find(base + SEGMENT / 4 - 1), Some(chunk));
        assert_eq!(find(base + SEGMENT), None);
        remove(chunk);
        assert_eq!(find(base + 100), None);
        // SAFETY: allocated above with this layout, freed once.
        unsafe { crate::source::dealloc(crate::source::Source::System, chunk, layout) };
        assert!(!insert(
            NonNull::new(ptr::without_provenance_mut(1 << 50)).unwrap()
        ));
        assert_eq!(find(1 << 50), None);
    }
}
