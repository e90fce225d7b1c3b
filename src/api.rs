//! The box constructors both managers have, written once: `box_api!` emits
//! them, with their docs and examples, for [`MemoryManager`] (boxes of the
//! `Local` kind: [`PoolBox`]) and [`SharedManager`](crate::SharedManager)
//! (the `Shared` kind: [`SharedBox`](crate::SharedBox)), as std's
//! `int_impl!` does for the integer types. Each body is one call into the
//! generic box code of `pool_box.rs`, which reaches the manager through its
//! `Source` implementation: the one place the two managers differ.

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
                self.try_alloc(value)
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

#[cfg(all(feature = "std", not(loom)))]
use crate::SharedManager;
