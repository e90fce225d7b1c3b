//! Size classes: which block size serves a request, decided at compile time.
//!
//! A size-class table is a type implementing [`SizeClasses`]. Its only item
//! is the list of block sizes; everything else — the validity check and the
//! size→class lookup table — is derived from it by `const fn`s when the table
//! is first used, so an invalid table is a compile error and a lookup at run
//! time is one bounds check and one table load: from a table with an entry
//! per 8 bytes up to [`FINE_LIMIT`] (4 KiB), and above it from a second table
//! with an entry per 512 bytes up to [`MAX_CLASS_SIZE`] (64 KiB) — one table
//! of 8-byte steps that far would take 8 KiB per class table.
#![deny(unsafe_code)]

use core::fmt;

/// The largest block size a size class may have: 64 KiB.
///
/// Requests above a table's largest class go to the system allocator.
/// Classes above 4 KiB must be multiples of 512 bytes.
///
/// # Examples
///
/// ```
/// assert_eq!(memory_mgr::MAX_CLASS_SIZE, 64 * 1024);
/// ```
pub const MAX_CLASS_SIZE: usize = 64 << 10;

/// The most size classes a table may have.
///
/// # Examples
///
/// ```
/// use memory_mgr::{WideClasses, SizeClasses, MAX_CLASSES};
/// assert!(WideClasses::SIZES.len() <= MAX_CLASSES);
/// ```
pub const MAX_CLASSES: usize = 128;

/// Up to this size classes may be any multiple of 8 and the lookup has an
/// entry per 8 bytes; above it, classes are multiples of [`WIDE_STEP`] and
/// the lookup has an entry per `WIDE_STEP` bytes.
const FINE_LIMIT: usize = 4096;

/// Granularity of classes (and of the lookup) above [`FINE_LIMIT`].
const WIDE_STEP: usize = 512;

/// Entries of the fine lookup table: one per 8-byte step up to
/// [`FINE_LIMIT`].
const LOOKUP_LEN: usize = FINE_LIMIT / 8 + 1;

/// Entries of the wide lookup table: one per [`WIDE_STEP`] above
/// [`FINE_LIMIT`] up to [`MAX_CLASS_SIZE`] (entry 0 unused).
const WIDE_LEN: usize = (MAX_CLASS_SIZE - FINE_LIMIT) / WIDE_STEP + 1;

/// Lookup entry for "no class serves this size".
const NONE: u8 = u8::MAX;
static_assertions::const_assert!((NONE as usize) >= MAX_CLASSES);

/// A table of size classes, chosen at compile time.
///
/// Implement it on a marker type to define your own classes; the manager is
/// generic over it (`MemoryManager<MyClasses>`). The table is checked when it
/// is first used, at compile time: it must be non-empty, hold at most
/// [`MAX_CLASSES`] sizes, be strictly increasing, and every size must be a
/// multiple of 8 (of 512 above 4 KiB) no larger than [`MAX_CLASS_SIZE`]. Each block of a class is
/// aligned to the largest power of two dividing its size (8 → 8, 48 → 16,
/// 64 → 64).
///
/// # Examples
///
/// ```
/// use memory_mgr::{MemoryManager, SizeClasses};
///
/// /// Classes for a program whose objects are 24 or 40 bytes.
/// struct Tight;
/// impl SizeClasses for Tight {
///     const SIZES: &'static [usize] = &[24, 40, 128];
/// }
///
/// let mm = MemoryManager::<Tight>::with_classes();
/// let b = mm.alloc_block(33)?;
/// assert_eq!(mm.block_size(b)?, 40);
/// # Ok::<(), memory_mgr::Error>(())
/// ```
///
/// An invalid table does not compile:
///
/// ```compile_fail
/// use memory_mgr::{MemoryManager, SizeClasses};
/// struct Bad;
/// impl SizeClasses for Bad {
///     const SIZES: &'static [usize] = &[16, 12]; // not increasing, 12 not a multiple of 8
/// }
/// let mm = MemoryManager::<Bad>::with_classes();
/// ```
pub trait SizeClasses: 'static {
    /// The block sizes, in bytes, smallest first.
    const SIZES: &'static [usize];

    /// The checked table with its size→class lookup, built at compile time.
    ///
    /// Leave the default: it is derived from [`SIZES`](Self::SIZES).
    const TABLE: &'static ClassTable = &ClassTable::new(Self::SIZES);
}

/// The default classes: 8, 16, 32, 64, 128, 256 and 512 bytes.
///
/// Few pools, so little memory sits idle in partly used chunks; up to 50%
/// internal waste (a 33-byte object takes a 64-byte block).
///
/// # Examples
///
/// ```
/// use memory_mgr::{DefaultClasses, SizeClasses};
/// assert_eq!(DefaultClasses::SIZES, &[8, 16, 32, 64, 128, 256, 512]);
/// assert_eq!(DefaultClasses::TABLE.class_size_for(33), Some(64));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DefaultClasses;

impl SizeClasses for DefaultClasses {
    const SIZES: &'static [usize] = &[8, 16, 32, 64, 128, 256, 512];
}

/// A finer preset: 8-byte steps up to 64 bytes, then eight classes per
/// power of two up to 512 bytes (32 classes).
///
/// Above 64 bytes the internal waste is at most 1/9 of the block (11.1%);
/// at or below 64 it is at most 7 bytes. Four classes per power of two would
/// leave up to 15 of 80 bytes (18.75%) unused, hence eight.
///
/// # Examples
///
/// ```
/// use memory_mgr::{FineClasses, MemoryManager, SizeClasses};
/// assert_eq!(FineClasses::TABLE.class_size_for(100), Some(104));
/// let mm = MemoryManager::<FineClasses>::with_classes();
/// assert_eq!(mm.block_size(mm.alloc_block(24)?)?, 24);
/// # Ok::<(), memory_mgr::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FineClasses;

impl SizeClasses for FineClasses {
    const SIZES: &'static [usize] = &[
        8, 16, 24, 32, 40, 48, 56, 64, // 8-byte steps
        72, 80, 88, 96, 104, 112, 120, 128, // 64..128 in 8s
        144, 160, 176, 192, 208, 224, 240, 256, // 128..256 in 16s
        288, 320, 352, 384, 416, 448, 480, 512, // 256..512 in 32s
    ];
}

/// A wide preset from 8 bytes to 64 KiB: 8-byte steps up to 64 bytes, then
/// eight classes per power of two (88 classes).
///
/// Above 64 bytes the internal waste is at most 1/9 of the block (11.1%);
/// at or below 64 it is at most 7 bytes. For programs (or collections)
/// whose allocations run past 512 bytes: they stay in the pools instead of
/// going to the system allocator one by one.
///
/// # Examples
///
/// ```
/// use memory_mgr::{MemoryManager, SizeClasses, WideClasses};
/// assert_eq!(WideClasses::TABLE.len(), 88);
/// assert_eq!(WideClasses::TABLE.class_size_for(600), Some(640));
/// assert_eq!(WideClasses::TABLE.class_size_for(40_000), Some(40_960));
/// let mm = MemoryManager::<WideClasses>::with_classes();
/// let b = mm.alloc_block(5000)?;
/// assert!(b.is_pooled());
/// assert_eq!(mm.block_size(b)?, 5120);
/// # Ok::<(), memory_mgr::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct WideClasses;

impl SizeClasses for WideClasses {
    const SIZES: &'static [usize] = &WIDE_SIZES;
}

/// The sizes of [`WideClasses`], computed: 8..=64 in 8s, then eight steps
/// per doubling up to 64 KiB.
const WIDE_SIZES: [usize; 88] = spaced_sizes(8);

/// `N` class sizes: 8..=64 in 8s, then `per_doubling` equal steps in each
/// doubling up to [`MAX_CLASS_SIZE`] (`N` must be `8 + 10 * per_doubling`).
const fn spaced_sizes<const N: usize>(per_doubling: usize) -> [usize; N] {
    let mut sizes = [0; N];
    let mut i = 0;
    while i < 8 {
        sizes[i] = 8 * (i + 1);
        i += 1;
    }
    let mut base = 64;
    while base < MAX_CLASS_SIZE {
        let step = base / per_doubling;
        let mut k = 1;
        while k <= per_doubling {
            sizes[i] = base + k * step;
            i += 1;
            k += 1;
        }
        base *= 2;
    }
    assert!(i == N);
    sizes
}

/// `Global`'s classes: 8..=64 in 8s, then four steps per doubling up to
/// 64 KiB (80, 96, 112, 128, 160, ...) — mimalloc's spacing, and half
/// [`WideClasses`]'s 88. Fewer classes mean fewer chunks in use at once, each
/// fuller: on larson (sizes 16 to 512, 1,000 live a thread) 19 classes
/// instead of 31, 0.92× the better of mimalloc and jemalloc at 2 threads
/// instead of 1.11×, and at most 25% of a block unused instead of 12.5%
/// (the trace replay's peak did not move: docs/benchmarks.md, "Fifteenth
/// session").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct GlobalClasses;

impl SizeClasses for GlobalClasses {
    const SIZES: &'static [usize] = &GLOBAL_SIZES;
}

/// The sizes of [`GlobalClasses`], computed.
const GLOBAL_SIZES: [usize; 48] = spaced_sizes(4);

static_assertions::const_assert_eq!(GlobalClasses::TABLE.len(), 48);
static_assertions::const_assert!(
    GLOBAL_SIZES[2] == 24
        && GLOBAL_SIZES[8] == 80
        && GLOBAL_SIZES[11] == 128
        && GLOBAL_SIZES[12] == 160
);
static_assertions::const_assert_eq!(GlobalClasses::TABLE.max_size(), MAX_CLASS_SIZE);
static_assertions::const_assert_eq!(DefaultClasses::TABLE.len(), 7);
static_assertions::const_assert_eq!(WideClasses::TABLE.len(), 88);
static_assertions::const_assert_eq!(WideClasses::TABLE.max_size(), MAX_CLASS_SIZE);
static_assertions::const_assert_eq!(DefaultClasses::TABLE.max_size(), 512);
static_assertions::const_assert_eq!(FineClasses::TABLE.len(), 32);
static_assertions::const_assert_eq!(FineClasses::TABLE.max_size(), 512);

/// The largest power of two that divides `size`: the alignment every block
/// of a class of that size gets.
///
/// # Examples
///
/// ```
/// use memory_mgr::natural_align;
/// assert_eq!(natural_align(8), 8);
/// assert_eq!(natural_align(48), 16);
/// assert_eq!(natural_align(512), 512);
/// ```
#[inline]
#[must_use]
pub const fn natural_align(size: usize) -> usize {
    size & size.wrapping_neg()
}

/// A checked size-class table with its O(1) size→class lookup.
///
/// Built at compile time by [`ClassTable::new`], usually through
/// [`SizeClasses::TABLE`].
///
/// # Examples
///
/// ```
/// use memory_mgr::{DefaultClasses, SizeClasses};
/// let t = DefaultClasses::TABLE;
/// assert_eq!(t.class_for_size(24), Some(2)); // the 32-byte class
/// assert_eq!(t.size(2), 32);
/// assert_eq!(t.class_for_size(513), None); // system allocator
/// ```
pub struct ClassTable {
    /// Block size of each class; entries past `len` are zero.
    sizes: [usize; MAX_CLASSES],
    /// Number of classes.
    len: usize,
    /// `lookup[(size + 7) / 8]` is the smallest class holding `size` bytes,
    /// or `NONE`, for sizes up to [`FINE_LIMIT`].
    lookup: [u8; LOOKUP_LEN],
    /// `wide[(size - FINE_LIMIT).div_ceil(WIDE_STEP)]` is the same above it
    /// (exact because every class above it is a multiple of `WIDE_STEP`).
    wide: [u8; WIDE_LEN],
}

impl ClassTable {
    /// Checks `sizes` and builds the lookup table.
    ///
    /// # Panics
    ///
    /// Panics — at compile time when used in a constant — if `sizes` is
    /// empty, longer than [`MAX_CLASSES`], not strictly increasing, or holds a
    /// size that is zero, not a multiple of 8, or above [`MAX_CLASS_SIZE`].
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::ClassTable;
    /// const T: ClassTable = ClassTable::new(&[8, 24, 96]);
    /// assert_eq!(T.class_size_for(9), Some(24));
    /// ```
    #[must_use]
    pub const fn new(sizes: &[usize]) -> ClassTable {
        assert!(!sizes.is_empty(), "size-class table is empty");
        assert!(
            sizes.len() <= MAX_CLASSES,
            "size-class table has more than MAX_CLASSES classes"
        );
        let mut table = ClassTable {
            sizes: [0; MAX_CLASSES],
            len: sizes.len(),
            lookup: [NONE; LOOKUP_LEN],
            wide: [NONE; WIDE_LEN],
        };
        let mut i = 0;
        while i < sizes.len() {
            let s = sizes[i];
            assert!(s > 0, "size class of 0 bytes");
            assert!(s % 8 == 0, "size class not a multiple of 8");
            assert!(s <= MAX_CLASS_SIZE, "size class above MAX_CLASS_SIZE");
            assert!(
                s <= FINE_LIMIT || s % WIDE_STEP == 0,
                "size class above 4 KiB not a multiple of 512"
            );
            if i > 0 {
                assert!(sizes[i - 1] < s, "size classes not strictly increasing");
            }
            table.sizes[i] = s;
            i += 1;
        }
        // Fill the lookup: step k covers sizes 8(k-1)+1 ..= 8k (step 0 is size 0).
        let mut step = 0;
        let mut class = 0;
        while step < LOOKUP_LEN {
            while class < sizes.len() && sizes[class] < step * 8 {
                class += 1;
            }
            if class < sizes.len() {
                table.lookup[step] = class as u8;
            }
            step += 1;
        }
        // The wide lookup: entry k covers sizes FINE_LIMIT + WIDE_STEP(k-1) + 1
        // ..= FINE_LIMIT + WIDE_STEP k.
        let mut k = 1;
        while k < WIDE_LEN {
            while class < sizes.len() && sizes[class] < FINE_LIMIT + k * WIDE_STEP {
                class += 1;
            }
            if class < sizes.len() {
                table.wide[k] = class as u8;
            }
            k += 1;
        }
        table
    }

    /// Number of classes.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{DefaultClasses, SizeClasses};
    /// assert_eq!(DefaultClasses::TABLE.len(), 7);
    /// ```
    #[inline]
    #[must_use]
    #[allow(clippy::len_without_is_empty)] // a table is never empty
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Block size of class `class`.
    ///
    /// # Panics
    ///
    /// Panics if `class >= self.len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{DefaultClasses, SizeClasses};
    /// assert_eq!(DefaultClasses::TABLE.size(0), 8);
    /// ```
    #[inline]
    #[must_use]
    #[track_caller]
    pub const fn size(&self, class: usize) -> usize {
        assert!(class < self.len, "size class index out of range");
        self.sizes[class]
    }

    /// The largest block size; larger requests go to the system allocator.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{DefaultClasses, SizeClasses};
    /// assert_eq!(DefaultClasses::TABLE.max_size(), 512);
    /// ```
    #[inline]
    #[must_use]
    pub const fn max_size(&self) -> usize {
        self.sizes[self.len - 1]
    }

    /// The smallest class whose blocks hold `size` bytes (a size of 0 gets
    /// the smallest class), or `None` above the largest class. One load.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{DefaultClasses, SizeClasses};
    /// let t = DefaultClasses::TABLE;
    /// assert_eq!(t.class_for_size(0), Some(0));
    /// assert_eq!(t.class_for_size(8), Some(0));
    /// assert_eq!(t.class_for_size(9), Some(1));
    /// assert_eq!(t.class_for_size(512), Some(6));
    /// assert_eq!(t.class_for_size(513), None);
    /// ```
    #[inline]
    #[must_use]
    pub const fn class_for_size(&self, size: usize) -> Option<usize> {
        let entry = if size <= FINE_LIMIT {
            self.lookup[size.div_ceil(8)]
        } else if size <= MAX_CLASS_SIZE {
            self.wide[(size - FINE_LIMIT).div_ceil(WIDE_STEP)]
        } else {
            return None;
        };
        // One compare for both `NONE` and the bound (`NONE` is above every
        // class: at most `MAX_CLASSES`), and it tells the compiler that the
        // class is in range, so indexing a heap's pools with it needs no
        // check of its own.
        let class = entry as usize;
        if class < self.len {
            Some(class)
        } else {
            None
        }
    }

    /// The smallest class whose blocks hold `size` bytes at alignment
    /// `align` (a power of two), or `None` if no class can.
    ///
    /// Every class honours alignments up to 8; a larger alignment moves the
    /// request up to the first class whose natural alignment is enough.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{DefaultClasses, FineClasses, SizeClasses};
    /// assert_eq!(DefaultClasses::TABLE.class_for_layout(8, 64), Some(3)); // 64-byte class
    /// assert_eq!(FineClasses::TABLE.class_for_layout(40, 16), Some(5)); // 48: aligned to 16
    /// assert_eq!(DefaultClasses::TABLE.class_for_layout(8, 4096), None);
    /// ```
    #[inline]
    #[must_use]
    pub const fn class_for_layout(&self, size: usize, align: usize) -> Option<usize> {
        let Some(mut class) = self.class_for_size(size) else {
            return None;
        };
        if align <= 8 {
            return Some(class);
        }
        while class < self.len {
            if natural_align(self.sizes[class]) >= align {
                return Some(class);
            }
            class += 1;
        }
        None
    }

    /// Block size of the class serving `size` bytes, or `None` above the
    /// largest class.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{DefaultClasses, SizeClasses};
    /// assert_eq!(DefaultClasses::TABLE.class_size_for(24), Some(32));
    /// ```
    #[inline]
    #[must_use]
    pub const fn class_size_for(&self, size: usize) -> Option<usize> {
        match self.class_for_size(size) {
            Some(c) => Some(self.sizes[c]),
            None => None,
        }
    }

    /// The block sizes, smallest first.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{DefaultClasses, SizeClasses};
    /// assert_eq!(DefaultClasses::TABLE.sizes(), DefaultClasses::SIZES);
    /// ```
    #[inline]
    #[must_use]
    pub fn sizes(&self) -> &[usize] {
        &self.sizes[..self.len]
    }
}

impl fmt::Debug for ClassTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassTable")
            .field("sizes", &self.sizes())
            .finish_non_exhaustive()
    }
}

/// Where an allocation of a given layout is served from. Allocation and
/// deallocation both call [`route`] (or, for a free that finds the pool
/// from the block, [`side`], which agrees with it), so they always agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Zero-sized: nothing is allocated.
    Zero,
    /// The pool of this class.
    Pool(usize),
    /// The large path: the system allocator, one allocation each.
    Large,
}

/// Routes a typed allocation of `size` bytes at `align`.
///
/// With the `pass-through` feature every non-zero-sized allocation goes to
/// the system allocator.
#[inline]
pub(crate) const fn route(table: &ClassTable, size: usize, align: usize) -> Route {
    if size == 0 {
        return Route::Zero;
    }
    if cfg!(feature = "pass-through") {
        return Route::Large;
    }
    match table.class_for_layout(size, align) {
        Some(c) => Route::Pool(c),
        None => Route::Large,
    }
}

/// Which side of [`route`] an allocation is on, without its class: what a
/// free needs when it finds the block's pool from the block itself (a
/// shared manager's, `Global`'s).
#[cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))] // the shared managers'
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Zero-sized: nothing was allocated.
    Zero,
    /// A pool block.
    Pool,
    /// A large allocation.
    Large,
}

/// [`route`]'s side for `size` bytes at `align`, always the same as
/// [`route`]'s: for an alignment of at most 8 one compare with the largest
/// class (every size up to it has a class, none above it does) instead of
/// the class lookup; a larger alignment asks [`route`].
#[cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))] // the shared managers'
#[inline(always)]
pub(crate) const fn side(table: &ClassTable, size: usize, align: usize) -> Side {
    if size == 0 {
        Side::Zero
    } else if cfg!(feature = "pass-through") {
        Side::Large
    } else if align <= 8 {
        if size <= table.max_size() {
            Side::Pool
        } else {
            Side::Large
        }
    } else {
        route(table, size, align).side()
    }
}

impl Route {
    /// This route's side: its class dropped.
    #[cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))] // as `side`
    #[inline(always)]
    pub(crate) const fn side(self) -> Side {
        match self {
            Route::Zero => Side::Zero,
            Route::Pool(_) => Side::Pool,
            Route::Large => Side::Large,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn every_size_up_to_the_largest_class_maps_to_the_smallest_fitting_class() {
        // Pure arithmetic, checked natively for every size; under Miri (which
        // took three minutes for every 97th size, 53 s for every 997th) the
        // sizes around each class boundary and every 4999th size.
        for table in [
            DefaultClasses::TABLE,
            FineClasses::TABLE,
            WideClasses::TABLE,
        ] {
            // The reference below searches by halves: the sizes ascend.
            assert!(table.sizes().windows(2).all(|w| w[0] < w[1]));
            let sizes: Vec<usize> = if cfg!(miri) {
                let edges = table.sizes().iter().flat_map(|&s| [s - 1, s, s + 1]);
                (0..=MAX_CLASS_SIZE + 1)
                    .step_by(4999)
                    .chain(edges)
                    .collect()
            } else {
                (0..=MAX_CLASS_SIZE + 1).collect()
            };
            let classes = table.sizes();
            for size in sizes {
                // The reference: the first class (in table order) that
                // holds `size`, found by halves (the sizes ascend), then for
                // each alignment the first from there aligned to it. The
                // alignments ascend, and a class aligned to one is to the
                // ones below: each one's class is at or after the one
                // before's. (One walk a size: a walk over every class for
                // each alignment was most of Miri's time here, 34 s of 39.)
                let mut class = classes.partition_point(|&s| s < size.max(1));
                let found = |class: usize| (class < classes.len()).then_some(class);
                assert_eq!(table.class_for_size(size), found(class), "size {size}");
                for align in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096] {
                    while class < classes.len() && natural_align(classes[class]) < align {
                        class += 1;
                    }
                    assert_eq!(
                        table.class_for_layout(size, align),
                        found(class),
                        "size {size} align {align}"
                    );
                    // The free's side agrees with the allocation's route.
                    assert_eq!(
                        side(table, size, align),
                        route(table, size, align).side(),
                        "size {size} align {align}"
                    );
                }
            }
        }
    }

    #[test]
    fn default_class_boundaries() {
        let t = DefaultClasses::TABLE;
        let cases = [
            (1, 8),
            (8, 8),
            (9, 16),
            (16, 16),
            (17, 32),
            (33, 64),
            (511, 512),
            (512, 512),
        ];
        for (size, block) in cases {
            assert_eq!(t.class_size_for(size), Some(block), "size {size}");
        }
        assert_eq!(t.class_size_for(513), None);
        assert_eq!(t.class_size_for(usize::MAX), None);
    }

    /// Every `step`-th size up to `top` wastes at most 1/9 of its block
    /// above 64 bytes and at most 7 bytes below.
    fn assert_waste_bounded(t: &ClassTable, top: usize, step: usize) {
        for size in (1..=top).step_by(step) {
            let block = t.class_size_for(size).unwrap();
            let waste = block - size;
            if size > 64 {
                assert!(waste * 9 <= block, "size {size} wastes {waste} of {block}");
            } else {
                assert!(waste <= 7, "size {size} wastes {waste}");
            }
        }
    }

    #[test]
    fn fine_table_waste_is_bounded() {
        assert_waste_bounded(FineClasses::TABLE, 512, 1);
    }

    #[test]
    fn wide_table_waste_is_bounded() {
        let t = WideClasses::TABLE;
        assert_waste_bounded(t, MAX_CLASS_SIZE, if cfg!(miri) { 61 } else { 1 });
        assert_eq!(t.class_size_for(MAX_CLASS_SIZE + 1), None);
        assert_eq!(t.class_size_for(4097), Some(4608));
        assert_eq!(t.class_size_for(4608), Some(4608));
        assert_eq!(t.class_size_for(4609), Some(5120));
    }

    #[test]
    fn natural_alignment_of_classes() {
        assert_eq!(natural_align(8), 8);
        assert_eq!(natural_align(24), 8);
        assert_eq!(natural_align(48), 16);
        assert_eq!(natural_align(64), 64);
        assert_eq!(natural_align(288), 32);
    }

    #[test]
    fn route_sends_zero_sized_to_nothing_and_large_to_the_system() {
        let t = DefaultClasses::TABLE;
        assert_eq!(route(t, 0, 1), Route::Zero);
        assert_eq!(route(t, 0, 4096), Route::Zero);
        assert_eq!(route(t, 513, 8), Route::Large);
        assert_eq!(route(t, 8, 4096), Route::Large);
        if cfg!(feature = "pass-through") {
            assert_eq!(route(t, 8, 8), Route::Large);
        } else {
            assert_eq!(route(t, 8, 8), Route::Pool(0));
            assert_eq!(route(t, 100, 8), Route::Pool(4));
        }
    }
}
