//! Segments: the address space `Global`'s chunks live in, taken from the
//! system in regions of 64 segments and handed out a segment — a
//! [`SEGMENT`]-aligned, `SEGMENT`-sized stretch of address space — per chunk,
//! with no C allocator in between; and given back page by page
//! (`madvise(MADV_DONTNEED)`) when the chunk is freed, the segment kept for
//! the next chunk.
//!
//! Why: a chunk must start on a `SEGMENT` boundary (its pool is found by
//! masking a block's address, see `chunk.rs`). Through glibc's
//! `posix_memalign` each chunk cost a 1 MiB-plus request, split into an
//! aligned piece and leftovers whose headers glibc writes (resident pages
//! of its own), and a freed chunk stayed resident inside glibc's arena
//! until the arena's top was trimmed. Here a chunk's pages are the only
//! ones touched, and a freed chunk's are given back at once. (Measured on
//! the mimalloc-bench ports at 2 threads: see docs/benchmarks.md, "Ninth
//! session".) Untouched address space costs no memory: a region is mapped
//! with `MAP_NORESERVE`, and only the pages a chunk writes become resident
//! — 4 KiB pages, except that chunks of a whole segment come from regions
//! of transparent huge pages, two segments to a page (see `imp::alloc`:
//! the TLB was what made `Global`'s trace replay slower than mimalloc's).
//!
//! Only `Global`'s memory comes from here ([`source`](crate::source): the
//! system source), and of it only chunks (a layout of `SEGMENT` alignment
//! and at most `SEGMENT` bytes) and allocations of 8 KiB to 1 MiB (its
//! thread heaps' records, its large allocations): a segment each. Linux on x86-64, AArch64 and RISC-V 64, not under Miri (which
//! maps no memory): elsewhere [`alloc()`] declines and the caller asks the
//! system allocator, as before.
//!
//! The table of regions is behind one lock (`sync::SEGMENTS_LOCK`); every field is read
//! and written only while it is held, so its `Relaxed` accesses are ordered
//! by the lock's `Acquire` and `Release` (whose protocol the loom models of
//! `sync` check). The lock is taken on a chunk's allocation and free only —
//! the cold path — and nothing that allocates runs under it (the system
//! calls do not allocate), so no manager is re-entered while it is held.

use core::alloc::Layout;
use core::ptr::NonNull;

/// A segment's size and alignment: 1 MiB, a chunk's alignment
/// (`chunk::SEGMENT`; a test in `chunk.rs` checks they agree — were they
/// to differ, no chunk's layout would be served here, and chunks would
/// come from the system allocator, as elsewhere).
pub(crate) const SEGMENT: usize = 1 << 20;

/// The smallest allocation of the system source a segment is used for
/// when it is not a chunk: 8 KiB (a thread heap's records, 11 KiB to
/// 69 KiB; a large allocation). Below it, `System`'s.
const SMALLEST: usize = 8 << 10;

/// Whether a layout is one this module serves: at most [`SEGMENT`] bytes,
/// and either aligned to `SEGMENT` (a chunk) or at least [`SMALLEST`]
/// bytes (a thread heap's records, a large allocation: glibc kept the
/// thread heaps that exiting threads freed resident in its arenas —
/// 11.3 MB after 400 threads exit, against 4.4 MB all told now).
#[inline]
fn serves(layout: Layout) -> bool {
    let size = layout.size();
    size > 0 && size <= SEGMENT && (layout.align() == SEGMENT || size >= SMALLEST)
}

#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ),
    not(miri),
    not(loom)
))]
mod imp {
    use core::ffi::{c_int, c_long, c_void};
    use core::ptr::{self, NonNull};
    use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};

    use super::SEGMENT;

    /// Segments in a region: 64 MiB of address space a mapping.
    pub(super) const SLOTS: usize = 64;

    /// The most regions: 4,096 × 64 MiB = 256 GiB of address space. Past
    /// it, chunks come from the system allocator.
    const REGIONS: usize = 4096;

    /// A region's size in bytes.
    const REGION: usize = SLOTS * SEGMENT;

    /// The page size `madvise` works in (4 KiB; where pages are larger the
    /// system refuses the unaligned range, and a freed chunk stays
    /// resident — still ours, and reused).
    const PAGE: usize = 4096;

    extern "C" {
        fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            off: c_long,
        ) -> *mut c_void;
        fn munmap(addr: *mut c_void, len: usize) -> c_int;
        fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }
    /// Linux's values on these architectures (the generic ones).
    const PROT_READ: c_int = 1;
    const PROT_WRITE: c_int = 2;
    const MAP_PRIVATE: c_int = 2;
    const MAP_ANONYMOUS: c_int = 0x20;
    const MAP_NORESERVE: c_int = 0x4000;
    const MADV_DONTNEED: c_int = 4;
    const MADV_HUGEPAGE: c_int = 14;
    const MADV_NOHUGEPAGE: c_int = 15;

    /// A transparent huge page: two segments, a pair (segments `2k` and
    /// `2k + 1` of a region, which starts on a `PAIR` boundary).
    const PAIR: usize = 2 * SEGMENT;

    /// One region: its base (a `REGION`-sized, `PAIR`-aligned mapping),
    /// which of its segments hold a chunk (bit `i`: segment `i`), and
    /// whether it holds full segments on transparent huge pages (see
    /// [`alloc()`]).
    struct Region {
        base: AtomicPtr<u8>,
        used: AtomicU64,
        huge: AtomicBool,
    }

    /// The regions; the first [`MAPPED`] are mapped.
    ///
    /// # Invariant
    ///
    /// Read and written only under [`LOCK`]. Region `i < MAPPED` has a base
    /// that never changes and is never unmapped; a segment whose bit is
    /// clear holds nothing anyone reads before writing it — it was never
    /// touched, or it was given back with `MADV_DONTNEED` (so it reads as
    /// zero) before its bit was cleared.
    static TABLE: [Region; REGIONS] = [const {
        Region {
            base: AtomicPtr::new(ptr::null_mut()),
            used: AtomicU64::new(0),
            huge: AtomicBool::new(false),
        }
    }; REGIONS];

    /// How many of [`TABLE`]'s regions are mapped (under [`LOCK`]).
    static MAPPED: AtomicUsize = AtomicUsize::new(0);

    /// Serialises every access to [`TABLE`] and [`MAPPED`] (see `TABLE`'s
    /// invariant): all their accesses are `Relaxed`, ordered by this lock
    /// (`sync::SEGMENTS_LOCK`, where `fork`'s handlers find it).
    use crate::sync::SEGMENTS_LOCK as LOCK;

    /// A free segment, its chunk's bytes reading as zero; marked used.
    /// `None` if the system maps no more.
    ///
    /// A `full` one (all `SEGMENT` bytes to be used: a pool's largest
    /// chunk, which only a class in heavy use reaches) comes from a region
    /// of transparent huge pages, the other half of a pair in use first: a
    /// program's busy classes then cost the processor one TLB entry per
    /// 2 MiB instead of 512 (the trace replay: 1.6× faster). Any other
    /// comes from a region without them, where a chunk that touches one
    /// 4 KiB page does not make 2 MiB resident. (A pair's first segment
    /// can make its second resident before it is used: at most 1 MiB a
    /// pair, and only among full chunks.)
    pub(super) fn alloc(full: bool) -> Option<NonNull<u8>> {
        let _held = LOCK.lock();
        let mapped = MAPPED.load(Relaxed);
        let regions = || {
            TABLE[..mapped]
                .iter()
                .filter(|r| r.huge.load(Relaxed) == full)
        };
        // First fit: the lowest free segment, so that a program that frees
        // what it took finds its chunks back in the same few regions; for
        // a full one, the lowest whose pair is in use, if any.
        let pick = |region: &Region, i: u32| {
            let used = region.used.load(Relaxed);
            region.used.store(used | 1 << i, Relaxed);
            // SAFETY: `i < SLOTS`, so the segment lies inside the
            // region's mapping.
            NonNull::new(unsafe { region.base.load(Relaxed).add(i as usize * SEGMENT) })
        };
        if full {
            for region in regions() {
                let used = region.used.load(Relaxed);
                let half = !used & paired(used);
                if half != 0 {
                    return pick(region, half.trailing_zeros());
                }
            }
        }
        for region in regions() {
            let used = region.used.load(Relaxed);
            if used != u64::MAX {
                return pick(region, (!used).trailing_zeros());
            }
        }
        let region = TABLE.get(mapped)?;
        let base = map_region(full)?;
        region.base.store(base.as_ptr(), Relaxed);
        region.used.store(1, Relaxed);
        region.huge.store(full, Relaxed);
        MAPPED.store(mapped + 1, Relaxed);
        Some(base)
    }

    /// Gives back the segment `ptr` starts, whose chunk is `size` bytes,
    /// if it is one of ours: its pages are returned to the system, then it
    /// is free. `false` (nothing done) if `ptr` is not in a region.
    ///
    /// # Safety
    ///
    /// If `ptr` is in a region it must be a segment [`alloc()`] returned, not
    /// freed since, and no one may use its memory afterwards.
    pub(super) unsafe fn free(ptr: NonNull<u8>, size: usize) -> bool {
        let Some((region, i)) = find(ptr) else {
            return false;
        };
        // Given back outside the lock: the segment is still marked used,
        // so no one else takes it meanwhile. Rounded up to whole pages:
        // the rest of the segment is untouched or already given back.
        let len = (size + PAGE - 1) & !(PAGE - 1);
        // SAFETY: the segment's first `len` bytes are ours (a `SEGMENT`
        // inside a mapping, `len <= SEGMENT`), page-aligned, and no one
        // needs their contents (the caller).
        let given = unsafe { madvise(ptr.as_ptr().cast(), len, MADV_DONTNEED) } == 0;
        if given {
            let _held = LOCK.lock();
            let used = region.used.load(Relaxed);
            region.used.store(used & !(1 << i), Relaxed);
        }
        // (If the system refused, the segment stays used, and resident:
        // a free segment must read as zero. Leaked address space, no
        // unsoundness; `madvise` of our own mapping does not fail.)
        true
    }

    /// The region holding `ptr`, and the index of its segment there.
    fn find(ptr: NonNull<u8>) -> Option<(&'static Region, usize)> {
        let _held = LOCK.lock();
        let mapped = MAPPED.load(Relaxed);
        let addr = ptr.as_ptr().addr();
        TABLE[..mapped].iter().find_map(|region| {
            let offset = addr.wrapping_sub(region.base.load(Relaxed).addr());
            (offset < REGION).then_some((region, offset / SEGMENT))
        })
    }

    /// The segments whose pair's other segment is used, given the used
    /// ones (bit `i`: segment `i`; segments `2k` and `2k + 1` a pair).
    pub(super) fn paired(used: u64) -> u64 {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        ((used & EVEN) << 1) | ((used >> 1) & EVEN)
    }

    /// Whether the region holding `ptr` is one of transparent huge pages;
    /// `None` if no region holds it (for the tests).
    #[cfg(test)]
    pub(super) fn is_huge(ptr: NonNull<u8>) -> Option<bool> {
        let (region, _) = find(ptr)?;
        let _held = LOCK.lock();
        Some(region.huge.load(Relaxed))
    }

    /// Maps a new region, aligned to `PAIR`: a mapping `PAIR` bytes
    /// larger, trimmed at both ends; on transparent huge pages if `huge`
    /// (where the system makes them only when asked, "madvise", as on
    /// this machine), and else never (where it makes them on first touch,
    /// "always", a chunk touching one 4 KiB page would make 2 MiB
    /// resident). A refusal only leaves the system's default.
    fn map_region(huge: bool) -> Option<NonNull<u8>> {
        let len = REGION + PAIR;
        // SAFETY: an anonymous private mapping at an address of the
        // system's choosing touches no memory of anyone's.
        let raw = unsafe {
            mmap(
                ptr::null_mut(),
                len,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw.is_null() || raw.addr() == usize::MAX {
            return None;
        }
        let raw = raw.cast::<u8>();
        let head = raw.addr().wrapping_neg() & (PAIR - 1);
        // SAFETY: `head < PAIR`, inside the mapping.
        let base = unsafe { raw.add(head) };
        // The unaligned ends go back (a failure only leaves them mapped).
        // SAFETY: `[raw, base)` and `[base + REGION, raw + len)` are parts
        // of the mapping just made, used by no one; `[base, base + REGION)`
        // is the rest of it, holding nothing yet.
        unsafe {
            if head > 0 {
                munmap(raw.cast(), head);
            }
            munmap(base.add(REGION).cast(), PAIR - head);
            let advice = if huge { MADV_HUGEPAGE } else { MADV_NOHUGEPAGE };
            madvise(base.cast(), REGION, advice);
        }
        NonNull::new(base)
    }

    /// Regions mapped, and segments in use (for the tests).
    #[cfg(test)]
    pub(super) fn counts() -> (usize, usize) {
        let _held = LOCK.lock();
        let mapped = MAPPED.load(Relaxed);
        let used = TABLE[..mapped]
            .iter()
            .map(|r| r.used.load(Relaxed).count_ones() as usize)
            .sum();
        (mapped, used)
    }
}

/// A segment for `layout` (see the module: a chunk, or a record of 8 KiB
/// to 1 MiB), its bytes reading as zero; `None` if the layout is not one
/// served here, the platform has no segments, or the system maps no more —
/// then the caller asks the system allocator.
#[inline]
pub(crate) fn alloc(layout: Layout) -> Option<NonNull<u8>> {
    if !serves(layout) {
        return None;
    }
    imp::alloc(layout.size() == SEGMENT)
}

/// Gives back `ptr`, allocated with `layout`, if [`alloc()`] made it;
/// `false` if it did not (then the caller frees it where it came from).
///
/// # Safety
///
/// `ptr` must come from [`alloc()`] with this `layout`, or from the system
/// allocator, and not be freed since; no one may use it afterwards.
#[inline]
pub(crate) unsafe fn free(ptr: NonNull<u8>, layout: Layout) -> bool {
    if !serves(layout) {
        return false;
    }
    // SAFETY: the caller's guarantee: a segment of ours is one `alloc`
    // returned, unused from now on.
    unsafe { imp::free(ptr, layout.size()) }
}

/// Where there are no segments: nothing is served, nothing is ours.
#[cfg(not(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ),
    not(miri),
    not(loom)
)))]
mod imp {
    use core::ptr::NonNull;

    /// Declines: the caller asks the system allocator.
    pub(super) fn alloc(_full: bool) -> Option<NonNull<u8>> {
        None
    }

    /// Nothing is a segment here.
    ///
    /// # Safety
    ///
    /// None needed; the signature matches the one with segments.
    pub(super) unsafe fn free(_ptr: NonNull<u8>, _size: usize) -> bool {
        false
    }
}

#[cfg(all(
    test,
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ),
    not(miri),
    not(loom)
))]
mod tests {
    use super::imp::SLOTS;
    use super::*;
    use alloc::vec::Vec;

    fn chunk(size: usize) -> Layout {
        Layout::from_size_align(size, SEGMENT).unwrap()
    }

    #[test]
    fn segments_are_aligned_distinct_and_read_as_zero_after_a_free() {
        let layout = chunk(64 << 10);
        // More than a region's worth: a second region is mapped.
        let taken: Vec<NonNull<u8>> = (0..SLOTS + 3).map(|_| alloc(layout).unwrap()).collect();
        assert!(imp::counts().0 >= 2, "a second region");
        let mut addrs: Vec<usize> = taken.iter().map(|p| p.as_ptr().addr()).collect();
        assert!(addrs.iter().all(|a| a % SEGMENT == 0));
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), taken.len(), "no segment handed out twice");
        for p in &taken {
            // SAFETY: 64 KiB of ours.
            unsafe { p.as_ptr().write_bytes(0xA5, layout.size()) };
        }
        for p in &taken {
            // SAFETY: from `alloc` above, freed once.
            assert!(unsafe { free(*p, layout) });
        }
        // Every free segment reads as zero: given back, or never touched.
        let again: Vec<NonNull<u8>> = (0..8).map(|_| alloc(layout).unwrap()).collect();
        for p in &again {
            // SAFETY: 64 KiB of ours.
            let bytes = unsafe { core::slice::from_raw_parts(p.as_ptr(), layout.size()) };
            assert!(bytes.iter().all(|&b| b == 0));
            // SAFETY: from `alloc` above, freed once.
            assert!(unsafe { free(*p, layout) });
        }
    }

    #[test]
    fn a_pairs_free_half_is_the_one_whose_other_half_is_used() {
        assert_eq!(imp::paired(0), 0);
        assert_eq!(imp::paired(0b0001), 0b0010);
        assert_eq!(imp::paired(0b0010), 0b0001);
        assert_eq!(imp::paired(0b0011), 0b0011);
        assert_eq!(imp::paired(0b0110), 0b1001);
        assert_eq!(imp::paired(1 << 63), 1 << 62);
        assert_eq!(imp::paired(u64::MAX), u64::MAX);
        // The half `alloc` takes first: free, its other half used.
        let used = 0b1110_0100u64;
        assert_eq!(!used & imp::paired(used), 0b0001_1000);
    }

    #[test]
    fn full_segments_come_from_huge_page_regions_and_others_never() {
        // (Other tests take segments meanwhile: only where each kind
        // comes from is certain, not which segment.)
        let full = [chunk(SEGMENT), Layout::from_size_align(SEGMENT, 8).unwrap()];
        let others = [
            chunk(64 << 10),
            chunk(SEGMENT / 2),
            Layout::from_size_align(8 << 10, 8).unwrap(),
        ];
        for (layouts, huge) in [(&full[..], true), (&others[..], false)] {
            for &layout in layouts {
                let p = alloc(layout).expect("a segment");
                assert_eq!(imp::is_huge(p), Some(huge), "{layout:?}");
                // SAFETY: `layout.size()` bytes of ours, freed once.
                unsafe {
                    p.as_ptr().write_bytes(1, layout.size());
                    assert!(free(p, layout));
                }
            }
        }
    }

    #[test]
    fn records_of_8_kib_to_1_mib_are_served_too() {
        for layout in [
            Layout::from_size_align(8 << 10, 8).unwrap(),
            Layout::from_size_align(69 << 10, 128).unwrap(),
            Layout::from_size_align(SEGMENT, 8).unwrap(),
        ] {
            let p = alloc(layout).expect("a segment");
            assert_eq!(p.as_ptr().addr() % SEGMENT, 0);
            // SAFETY: `layout.size()` bytes of ours, freed once.
            unsafe {
                p.as_ptr().write_bytes(1, layout.size());
                assert!(free(p, layout));
            }
        }
    }

    #[test]
    fn other_layouts_and_foreign_pointers_are_declined() {
        assert!(alloc(Layout::from_size_align(4096, 4096).unwrap()).is_none());
        assert!(alloc(Layout::from_size_align((8 << 10) - 8, 8).unwrap()).is_none());
        assert!(alloc(Layout::from_size_align(2 * SEGMENT, SEGMENT).unwrap()).is_none());
        let mut local = [0u8; 64];
        let foreign = NonNull::from(&mut local).cast::<u8>();
        // SAFETY: not a segment of ours (and not a chunk layout's in the
        // first call): declined, untouched.
        unsafe {
            assert!(!free(foreign, Layout::new::<[u8; 64]>()));
            assert!(!free(foreign, chunk(4096)));
        }
    }
}
