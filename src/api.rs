//! The API both managers have, written once: `box_api!` emits the box
//! constructors and `block_api!` the checked-block methods, with their docs
//! and examples, for [`MemoryManager`] (boxes of the
//! `Local` kind: [`PoolBox`]) and [`SharedManager`]
//! (the `Shared` kind: [`SharedBox`](crate::SharedBox)), as std's
//! `int_impl!` does for the integer types. Each box constructor is one call
//! into the generic box code of `pool_box.rs`, which reaches the manager
//! through its `Source` implementation; each block method one call into the
//! manager that holds the blocks (`blocks_at`: itself, or a shared
//! manager's central one under its lock) — the places the managers differ.

#[allow(unused_imports)] // the doc links
use crate::{MemoryManager, PoolBox};

/// Emits the box constructors for manager `$M` (whose boxes are
/// `PoolBox<'_, T, C, $K>`), its examples starting `let mm = $new;`.
macro_rules! box_api {
    ($M:ident, $K:ty, $new:literal) => {
        /// # Boxes
        impl<C: $crate::SizeClasses> $M<C> {
            /// Moves `value` into the pool for its size, like `Box::new`.
            ///
            /// The size class is chosen at compile time from
            /// `size_of::<T>()` and `align_of::<T>()`; a `T` larger than
            /// the largest class (or aligned beyond any class) goes to the
            /// system allocator, and a zero-sized `T` allocates nothing.
            ///
            /// # Panics
            ///
            /// If the system allocator or the budget refuses memory (the
            /// message names the manager); [`try_alloc`](Self::try_alloc)
            /// returns the error instead.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let mut v = mm.alloc(vec![1, 2]);
            /// v.push(3);
            /// assert_eq!(*v, [1, 2, 3]);
            /// ```
            #[inline]
            #[track_caller]
            #[must_use]
            pub fn alloc<T>(&self, value: T) -> $crate::PoolBox<'_, T, C, $K> {
                use $crate::pool_box::{alloc_shape, AllocShape, BoxMaker};
                // The shape is a constant of `T` (see `AllocShape`).
                let ptr = match alloc_shape::<T, C>() {
                    AllocShape::Whole => {
                        return self
                            .try_alloc(value)
                            .unwrap_or_else(|e| $crate::pool_box::alloc_failed(self.name(), e))
                    }
                    AllocShape::ValueAlong => match BoxMaker::alloc_fast::<T>(self) {
                        Some(ptr) => ptr,
                        None => return self.alloc_slow_with(value),
                    },
                    AllocShape::ValueStays => match BoxMaker::alloc_fast::<T>(self) {
                        Some(ptr) => ptr,
                        // (If it panics, `value` is dropped as the panic
                        // unwinds.)
                        None => self.alloc_slow::<T>(),
                    },
                };
                // SAFETY: room for a `T` (dangling and aligned if it is
                // zero-sized) from this manager, for `T`'s route.
                unsafe { $crate::PoolBox::from_value(ptr, value) }
            }

            /// [`alloc`](Self::alloc) past its fast path for a `T` passed
            /// in registers ([`AllocShape::ValueAlong`](crate::pool_box::AllocShape)):
            /// the whole allocation, out of line.
            #[cold]
            #[inline(never)]
            #[track_caller]
            fn alloc_slow_with<T>(&self, value: T) -> $crate::PoolBox<'_, T, C, $K> {
                self.try_alloc(value)
                    .unwrap_or_else(|e| $crate::pool_box::alloc_failed(self.name(), e))
            }

            /// Room for a `T` past [`alloc`](Self::alloc)'s fast path
            /// ([`AllocShape::ValueStays`](crate::pool_box::AllocShape)),
            /// out of line.
            #[cold]
            #[inline(never)]
            #[track_caller]
            fn alloc_slow<T>(&self) -> core::ptr::NonNull<T> {
                $crate::pool_box::BoxMaker::alloc_raw::<T>(self)
                    .unwrap_or_else(|e| $crate::pool_box::alloc_failed(self.name(), e))
            }

            /// Moves `value` into the pool for its size, or returns the
            /// error (and drops `value`).
            ///
            /// # Errors
            ///
            /// [`Error::OutOfMemory`](crate::Error::OutOfMemory) if the
            /// system allocator refuses a new chunk,
            /// [`Error::BudgetExceeded`](crate::Error::BudgetExceeded) if
            /// the budget does.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let q = mm.try_alloc(7u32)?;
            /// assert_eq!(*q, 7);
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn try_alloc<T>(
                &self,
                value: T,
            ) -> Result<$crate::PoolBox<'_, T, C, $K>, $crate::Error> {
                $crate::PoolBox::try_new_with_from(|| value, self)
            }

            /// Allocates, then builds the value in place with `f`. If `f`
            /// panics the block is returned and nothing leaks.
            ///
            /// # Panics
            ///
            /// As [`alloc`](Self::alloc), and if `f` panics.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let grid = mm.alloc_with(|| [[0u8; 8]; 8]);
            /// assert_eq!(grid[7][7], 0);
            /// ```
            #[inline]
            #[track_caller]
            #[must_use]
            pub fn alloc_with<T>(&self, f: impl FnOnce() -> T) -> $crate::PoolBox<'_, T, C, $K> {
                self.try_alloc_with(f)
                    .unwrap_or_else(|e| $crate::pool_box::alloc_failed(self.name(), e))
            }

            /// Allocates, then builds the value in place with `f`, or
            /// returns the error; `f` is not called then.
            ///
            /// # Errors
            ///
            /// As [`try_alloc`](Self::try_alloc).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let b = mm.try_alloc_with(|| 3.5f64)?;
            /// assert_eq!(*b, 3.5);
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn try_alloc_with<T>(
                &self,
                f: impl FnOnce() -> T,
            ) -> Result<$crate::PoolBox<'_, T, C, $K>, $crate::Error> {
                $crate::PoolBox::try_new_with_from(f, self)
            }

            /// Moves `value` into the pool and pins it. The manager must be
            /// `'static` (never dropped or reset), as `Box::pin_in` requires
            /// of its allocator: see [`PoolBox::into_pin`](crate::PoolBox::into_pin)
            /// for why, and `Pin::new` for values that are `Unpin`.
            ///
            /// # Panics
            ///
            /// As [`alloc`](Self::alloc).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm: &'static _ = Box::leak(Box::new(", $new, "));")]
            /// let fut = mm.pin(async { 1 + 1 });
            /// # drop(fut);
            /// ```
            ///
            /// A manager that can be dropped or reset cannot pin:
            ///
            /// ```compile_fail
            #[doc = concat!("let mut mm = ", $new, ";")]
            /// let fut = mm.pin(async {});
            /// std::mem::forget(fut);
            /// mm.reset(); // would free the pinned future without running its destructor
            /// ```
            #[inline]
            #[track_caller]
            pub fn pin<T>(
                &'static self,
                value: T,
            ) -> core::pin::Pin<$crate::PoolBox<'static, T, C, $K>> {
                $crate::PoolBox::into_pin(self.alloc(value))
            }

            /// Copies a slice into one block of the pool for its total size.
            ///
            /// # Panics
            ///
            /// As [`alloc`](Self::alloc), and if the slice's size overflows.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let s = mm.alloc_slice_copy(&[1u16, 2, 3]);
            /// assert_eq!(&*s, &[1, 2, 3]);
            /// ```
            #[inline]
            #[track_caller]
            #[must_use]
            pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> $crate::PoolBox<'_, [T], C, $K> {
                self.try_alloc_slice_copy(src)
                    .unwrap_or_else(|e| $crate::pool_box::alloc_failed(self.name(), e))
            }

            /// Copies a slice into one block, or returns the error.
            ///
            /// # Errors
            ///
            /// As [`try_alloc`](Self::try_alloc).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let s = mm.try_alloc_slice_copy(b"bytes")?;
            /// assert_eq!(&*s, b"bytes");
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn try_alloc_slice_copy<T: Copy>(
                &self,
                src: &[T],
            ) -> Result<$crate::PoolBox<'_, [T], C, $K>, $crate::Error> {
                $crate::PoolBox::try_copy_in(src, self)
            }

            /// Clones each element of a slice into one block.
            ///
            /// # Panics
            ///
            /// As [`alloc`](Self::alloc), and if a `clone` panics (what was
            /// cloned so far is dropped and the block freed).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let s = mm.alloc_slice_clone(&[String::from("a"), String::from("b")]);
            /// assert_eq!(s[1], "b");
            /// ```
            #[inline]
            #[track_caller]
            #[must_use]
            pub fn alloc_slice_clone<T: Clone>(
                &self,
                src: &[T],
            ) -> $crate::PoolBox<'_, [T], C, $K> {
                self.alloc_slice_fill_with(src.len(), |i| src[i].clone())
            }

            /// Clones each element of a slice into one block, or returns
            /// the error; nothing is cloned then.
            ///
            /// # Errors
            ///
            /// As [`try_alloc_slice_fill_with`](Self::try_alloc_slice_fill_with).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let s = mm.try_alloc_slice_clone(&[vec![1], vec![2, 3]])?;
            /// assert_eq!(s[1].len(), 2);
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn try_alloc_slice_clone<T: Clone>(
                &self,
                src: &[T],
            ) -> Result<$crate::PoolBox<'_, [T], C, $K>, $crate::Error> {
                self.try_alloc_slice_fill_with(src.len(), |i| src[i].clone())
            }

            /// Allocates `len` elements in one block, the `i`-th being
            /// `f(i)`.
            ///
            /// # Panics
            ///
            /// As [`alloc_slice_copy`](Self::alloc_slice_copy), and if `f`
            /// panics (the elements made so far are dropped and the block
            /// freed).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let squares = mm.alloc_slice_fill_with(5, |i| i * i);
            /// assert_eq!(&*squares, &[0, 1, 4, 9, 16]);
            /// ```
            #[inline]
            #[track_caller]
            #[must_use]
            pub fn alloc_slice_fill_with<T>(
                &self,
                len: usize,
                f: impl FnMut(usize) -> T,
            ) -> $crate::PoolBox<'_, [T], C, $K> {
                self.try_alloc_slice_fill_with(len, f)
                    .unwrap_or_else(|e| $crate::pool_box::alloc_failed(self.name(), e))
            }

            /// Allocates `len` elements in one block, the `i`-th being
            /// `f(i)`, or returns the error; `f` is not called then.
            ///
            /// # Errors
            ///
            /// [`Error::LayoutOverflow`](crate::Error::LayoutOverflow) if
            /// `len` elements do not fit in `isize::MAX` bytes, else as
            /// [`try_alloc`](Self::try_alloc).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let r = mm.try_alloc_slice_fill_with(usize::MAX, |_| 0u64);
            /// assert!(matches!(r, Err(memory_mgr::Error::LayoutOverflow { .. })));
            /// ```
            #[inline]
            pub fn try_alloc_slice_fill_with<T>(
                &self,
                len: usize,
                f: impl FnMut(usize) -> T,
            ) -> Result<$crate::PoolBox<'_, [T], C, $K>, $crate::Error> {
                $crate::PoolBox::try_from_fn_in(len, f, self)
            }

            /// Allocates one element per item of `iter`, in one block.
            ///
            /// # Panics
            ///
            /// As [`alloc_slice_fill_with`](Self::alloc_slice_fill_with),
            /// and if the iterator yields fewer items than its `len` said.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let s = mm.alloc_slice_fill_iter([1, 2, 3].iter().map(|x| x * 10));
            /// assert_eq!(&*s, &[10, 20, 30]);
            /// ```
            #[inline]
            #[track_caller]
            #[must_use]
            pub fn alloc_slice_fill_iter<T, I>(&self, iter: I) -> $crate::PoolBox<'_, [T], C, $K>
            where
                I: IntoIterator<Item = T>,
                I::IntoIter: ExactSizeIterator,
            {
                self.try_alloc_slice_fill_iter(iter)
                    .unwrap_or_else(|e| $crate::pool_box::alloc_failed(self.name(), e))
            }

            /// Allocates one element per item of `iter`, in one block, or
            /// returns the error; the iterator is not advanced then.
            ///
            /// # Errors
            ///
            /// As [`try_alloc_slice_fill_with`](Self::try_alloc_slice_fill_with).
            ///
            /// # Panics
            ///
            /// If the iterator yields fewer items than its `len` said.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let s = mm.try_alloc_slice_fill_iter(1..=3u8)?;
            /// assert_eq!(&*s, &[1, 2, 3]);
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn try_alloc_slice_fill_iter<T, I>(
                &self,
                iter: I,
            ) -> Result<$crate::PoolBox<'_, [T], C, $K>, $crate::Error>
            where
                I: IntoIterator<Item = T>,
                I::IntoIter: ExactSizeIterator,
            {
                let mut it = iter.into_iter();
                self.try_alloc_slice_fill_with(it.len(), |_| {
                    it.next()
                        .expect("the iterator yielded fewer items than its len")
                })
            }

            /// Allocates `len` default values in one block.
            ///
            /// # Panics
            ///
            /// As [`alloc_slice_fill_with`](Self::alloc_slice_fill_with).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let s = mm.alloc_slice_fill_default::<String>(3);
            /// assert!(s.iter().all(String::is_empty));
            /// ```
            #[inline]
            #[track_caller]
            #[must_use]
            pub fn alloc_slice_fill_default<T: Default>(
                &self,
                len: usize,
            ) -> $crate::PoolBox<'_, [T], C, $K> {
                self.alloc_slice_fill_with(len, |_| T::default())
            }

            /// Allocates `len` default values in one block, or returns the
            /// error.
            ///
            /// # Errors
            ///
            /// As [`try_alloc_slice_fill_with`](Self::try_alloc_slice_fill_with).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let s = mm.try_alloc_slice_fill_default::<u32>(4)?;
            /// assert_eq!(&*s, &[0; 4]);
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn try_alloc_slice_fill_default<T: Default>(
                &self,
                len: usize,
            ) -> Result<$crate::PoolBox<'_, [T], C, $K>, $crate::Error> {
                self.try_alloc_slice_fill_with(len, |_| T::default())
            }

            /// Copies a string into one block.
            ///
            /// # Panics
            ///
            /// As [`alloc`](Self::alloc).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let name = mm.alloc_str("goblin");
            /// assert_eq!(&*name, "goblin");
            /// ```
            #[inline]
            #[track_caller]
            #[must_use]
            pub fn alloc_str(&self, s: &str) -> $crate::PoolBox<'_, str, C, $K> {
                self.try_alloc_str(s)
                    .unwrap_or_else(|e| $crate::pool_box::alloc_failed(self.name(), e))
            }

            /// Copies a string into one block, or returns the error.
            ///
            /// # Errors
            ///
            /// As [`try_alloc`](Self::try_alloc).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// assert_eq!(&*mm.try_alloc_str("orc")?, "orc");
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn try_alloc_str(
                &self,
                s: &str,
            ) -> Result<$crate::PoolBox<'_, str, C, $K>, $crate::Error> {
                $crate::PoolBox::try_str_in(s, self)
            }
        }
    };
}

box_api!(
    MemoryManager,
    crate::kind::Local,
    "memory_mgr::MemoryManager::new()"
);
#[cfg(all(feature = "std", not(loom)))]
box_api!(
    SharedManager,
    crate::kind::Shared,
    "memory_mgr::SharedManager::new()"
);

/// Emits the checked-block methods for manager `$M`, each one call into the
/// manager that holds its blocks (`blocks_at`: the manager itself, or a
/// shared manager's central one under its lock), its examples starting
/// `let mm = $new;`.
macro_rules! block_api {
    ($M:ident, $new:literal) => {
        /// # Checked raw blocks
        impl<C: $crate::SizeClasses> $M<C> {
            /// Allocates a block of at least `size` bytes, zeroed, aligned to
            /// at least 8 (to the class's natural alignment when pooled).
            ///
            /// A size above the largest class goes to the system allocator;
            /// a size of 0 gets a block of the smallest class.
            ///
            /// # Errors
            ///
            /// [`Error::LayoutOverflow`](crate::Error::LayoutOverflow) if
            /// `size` exceeds `isize::MAX` (e.g. `usize::MAX`);
            /// [`Error::OutOfMemory`](crate::Error::OutOfMemory) if the
            /// system allocator refuses, or if a class already has 2^24
            /// checked blocks' worth of chunks (the slot number a 16-byte
            /// handle carries; about 10.7 million 8-byte blocks with the
            /// default 1 MiB chunks: freeing and trimming makes room again);
            /// [`Error::BudgetExceeded`](crate::Error::BudgetExceeded) past
            /// the budget.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let b = mm.alloc_block(24)?;
            /// assert_eq!(mm.block_size(b)?, 32);
            /// assert_eq!(mm.read::<u64>(b, 0)?, 0);
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline(always)]
            pub fn alloc_block(&self, size: usize) -> Result<$crate::Block, $crate::Error> {
                self.alloc_block_aligned(size, 8)
            }

            /// Allocates a zeroed block of at least `size` bytes aligned to
            /// `align`: from the first class whose blocks are large and
            /// aligned enough, else from the system allocator.
            ///
            /// # Errors
            ///
            /// [`Error::InvalidAlignment`](crate::Error::InvalidAlignment)
            /// if `align` is not a power of two;
            /// [`Error::LayoutOverflow`](crate::Error::LayoutOverflow) if
            /// `size` rounded up to `align` exceeds `isize::MAX`; else as
            /// [`alloc_block`](Self::alloc_block).
            ///
            /// # Examples
            ///
            /// ```
            /// use memory_mgr::Error;
            #[doc = concat!("let mm = ", $new, ";")]
            /// let b = mm.alloc_block_aligned(8, 64)?;
            /// assert_eq!(mm.block_ptr(b)?.cast::<u8>().as_ptr() as usize % 64, 0);
            /// assert_eq!(mm.alloc_block_aligned(8, 3), Err(Error::InvalidAlignment { align: 3 }));
            /// # Ok::<(), Error>(())
            /// ```
            #[inline(always)]
            pub fn alloc_block_aligned(
                &self,
                size: usize,
                align: usize,
            ) -> Result<$crate::Block, $crate::Error> {
                self.blocks_at(|mm| mm.checked_alloc(size, align))?
            }

            /// Frees a block. Checked: never undefined behaviour, whatever
            /// the handle.
            ///
            /// A rejected free changes nothing. The check is exact for a
            /// block freed twice, also after its slot was handed out again
            /// (the newer block stays allocated): blocks live in slots as
            /// [`Handle`](crate::Handle)s' values do, and a slot whose
            /// generation would wrap is retired, so no handle ever matches
            /// a later block.
            ///
            /// # Errors
            ///
            /// [`Error::DoubleFree`](crate::Error::DoubleFree) if the block
            /// was already freed; [`Error::FreedByReset`](crate::Error::FreedByReset)
            /// if a reset freed it; [`Error::ForeignBlock`](crate::Error::ForeignBlock)
            /// if it came from another manager.
            ///
            /// # Examples
            ///
            /// ```
            /// use memory_mgr::Error;
            #[doc = concat!("let (a, b) = (", $new, ", ", $new, ");")]
            /// let x = a.alloc_block(16)?;
            /// assert_eq!(b.free(x), Err(Error::ForeignBlock));
            /// a.free(x)?;
            /// let y = a.alloc_block(16)?; // reuses x's slot
            /// assert_eq!(a.free(x), Err(Error::DoubleFree));
            /// assert!(a.is_live(y));
            /// # Ok::<(), Error>(())
            /// ```
            #[inline(always)]
            pub fn free(&self, block: $crate::Block) -> Result<(), $crate::Error> {
                self.blocks_at(|mm| mm.checked_free(block))?
            }

            /// Whether `block` is a live block of this manager.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let b = mm.alloc_block(8)?;
            /// assert!(mm.is_live(b));
            /// mm.free(b)?;
            /// assert!(!mm.is_live(b));
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[must_use]
            #[inline]
            pub fn is_live(&self, block: $crate::Block) -> bool {
                self.blocks_at(|mm| mm.checked_is_live(block))
                    .unwrap_or(false)
            }

            /// The usable size of a live block in bytes: its class size for
            /// a pooled block, the requested size for one from the system
            /// allocator.
            ///
            /// # Errors
            ///
            /// As [`read`](Self::read).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let b = mm.alloc_block(24)?;
            /// assert_eq!(mm.block_size(b)?, 32); // the 32-byte class
            /// assert_eq!(mm.block_size(mm.alloc_block(1000)?)?, 1000);
            /// mm.free(b)?;
            /// assert_eq!(mm.block_size(b), Err(memory_mgr::Error::UseAfterFree));
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn block_size(&self, block: $crate::Block) -> Result<usize, $crate::Error> {
                Ok(self.block_ptr(block)?.len())
            }

            /// The bytes of a live block, as a raw slice pointer of
            /// [`block_size`](Self::block_size) bytes. It stays valid until
            /// the block is freed or the manager is dropped or reset;
            /// reading or writing through it is `unsafe` and the caller's
            /// responsibility — [`read`](Self::read) and
            /// [`write`](Self::write) are the checked alternatives.
            ///
            /// # Errors
            ///
            /// As [`read`](Self::read).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let b = mm.alloc_block(64)?;
            /// let bytes = mm.block_ptr(b)?;
            /// assert_eq!(bytes.len(), 64);
            /// // SAFETY: `b` is live and 64 bytes long.
            /// unsafe { bytes.cast::<u8>().as_ptr().write_bytes(7, 64) };
            /// assert_eq!(mm.read::<u8>(b, 63)?, 7);
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn block_ptr(
                &self,
                block: $crate::Block,
            ) -> Result<core::ptr::NonNull<[u8]>, $crate::Error> {
                self.blocks_at(|mm| mm.checked_bytes(block))?
            }

            /// Reads a `T` from `offset` bytes into a live block (unaligned
            /// copy).
            ///
            /// # Errors
            ///
            /// [`Error::UseAfterFree`](crate::Error::UseAfterFree) if the
            /// block was freed, [`Error::FreedByReset`](crate::Error::FreedByReset)
            /// if a reset freed it, [`Error::ForeignBlock`](crate::Error::ForeignBlock)
            /// if it is another manager's, [`Error::OutOfBounds`](crate::Error::OutOfBounds)
            /// if `offset + size_of::<T>()` exceeds the block.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let b = mm.alloc_block(16)?;
            /// mm.write(b, 3, [1.5f32, 2.5])?;
            /// assert_eq!(mm.read::<[f32; 2]>(b, 3)?, [1.5, 2.5]);
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn read<T: bytemuck::Pod>(
                &self,
                block: $crate::Block,
                offset: usize,
            ) -> Result<T, $crate::Error> {
                let mut value = T::zeroed();
                self.read_bytes(block, offset, bytemuck::bytes_of_mut(&mut value))?;
                Ok(value)
            }

            /// Writes a `T` at `offset` bytes into a live block (unaligned
            /// copy).
            ///
            /// # Errors
            ///
            /// As [`read`](Self::read); nothing is written on error.
            ///
            /// # Examples
            ///
            /// ```
            /// use memory_mgr::Error;
            #[doc = concat!("let mm = ", $new, ";")]
            /// let b = mm.alloc_block(8)?;
            /// mm.write(b, 0, 7u64)?;
            /// assert_eq!(
            ///     mm.write(b, 4, 7u64),
            ///     Err(Error::OutOfBounds { offset: 4, len: 8, size: 8 })
            /// );
            /// # Ok::<(), Error>(())
            /// ```
            #[inline]
            pub fn write<T: bytemuck::NoUninit>(
                &self,
                block: $crate::Block,
                offset: usize,
                value: T,
            ) -> Result<(), $crate::Error> {
                self.write_bytes(block, offset, bytemuck::bytes_of(&value))
            }

            /// Copies bytes of a live block, from `offset`, into `dst`.
            ///
            /// # Errors
            ///
            /// As [`read`](Self::read).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let b = mm.alloc_block(32)?;
            /// mm.write_bytes(b, 0, b"hello")?;
            /// let mut out = [0u8; 5];
            /// mm.read_bytes(b, 0, &mut out)?;
            /// assert_eq!(&out, b"hello");
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn read_bytes(
                &self,
                block: $crate::Block,
                offset: usize,
                dst: &mut [u8],
            ) -> Result<(), $crate::Error> {
                self.blocks_at(|mm| mm.checked_read(block, offset, dst))?
            }

            /// Copies `src` into a live block at `offset`.
            ///
            /// # Errors
            ///
            /// As [`read`](Self::read); nothing is written on error.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mm = ", $new, ";")]
            /// let b = mm.alloc_block(4)?;
            /// assert!(mm.write_bytes(b, 0, &[0; 9]).is_err());
            /// # Ok::<(), memory_mgr::Error>(())
            /// ```
            #[inline]
            pub fn write_bytes(
                &self,
                block: $crate::Block,
                offset: usize,
                src: &[u8],
            ) -> Result<(), $crate::Error> {
                self.blocks_at(|mm| mm.checked_write(block, offset, src))?
            }
        }
    };
}

block_api!(MemoryManager, "memory_mgr::MemoryManager::new()");
#[cfg(all(feature = "std", not(loom)))]
block_api!(SharedManager, "memory_mgr::SharedManager::new()");

#[cfg(all(feature = "std", not(loom)))]
use crate::SharedManager;
