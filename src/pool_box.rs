//! `PoolBox<'m, T>`: an owning pointer into a manager's pools, like `Box`.
//!
//! # Memory layout
//!
//! A `PoolBox<T>` is one pointer (two for slices and `str`), like `Box<T>`,
//! and `Option<PoolBox<T>>` is the same size. It does not store its manager:
//! a pooled value's chunk is aligned so that masking the pointer finds the
//! chunk header, which points at the pool; a value too large for any class
//! has a footer after it pointing at the manager's heap record
//! counters; a zero-sized value allocates nothing. Which of the three applies
//! is a function of the value's size and alignment (a constant for sized
//! types), computed the same way when it is allocated and when it is freed.
//!
//! The lifetime `'m` borrows the manager, so a `PoolBox` cannot outlive it:
//!
//! ```compile_fail
//! use memory_mgr::{MemoryManager, PoolBox};
//! let b: PoolBox<'_, u32>;
//! {
//!     let mm = MemoryManager::new();
//!     b = mm.alloc(1);
//! } // `mm` dropped here while still borrowed
//! println!("{}", *b);
//! ```
//!
//! A `PoolBox` is neither `Send` nor `Sync`: dropping or cloning it touches
//! its manager's pools, which are single-threaded.
//!
//! ```compile_fail
//! let mm = memory_mgr::MemoryManager::new();
//! let b = mm.alloc(1u32);
//! std::thread::spawn(move || drop(b));
//! ```
//!
//! ```compile_fail
//! fn is_sync<T: Sync>(_: &T) {}
//! let mm = memory_mgr::MemoryManager::new();
//! let b = mm.alloc(1u32);
//! is_sync(&b);
//! ```

use core::alloc::Layout;
use core::borrow::{Borrow, BorrowMut};
use core::cell::Cell;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop};
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::ptr::{self, NonNull};

use crate::heap::{name_of, One, Request};
use crate::size_class::{Route, SizeClasses};
use crate::{DefaultClasses, Error, MemoryManager};

/// Panics with the message of `e`: the infallible allocation calls end here.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn alloc_failed(name: Option<&str>, e: Error) -> ! {
    // The manager is named once, up front.
    let e = match e {
        Error::BudgetExceeded { size, .. } => e.refusing(size, None),
        e => e,
    };
    match name {
        Some(name) => panic!("memory_mgr: allocation failed in manager `{name}`: {e}"),
        None => panic!("memory_mgr: allocation failed: {e}"),
    }
}

/// How `alloc(value)` is laid out for a `T`, a constant of `T` and the
/// class table: its fast path (a pop or a bump) inline, and everything
/// else — the refill, the error, the panic — in one call out of line, so
/// that a caller's frame keeps no registers or stack for them.
/// binary-trees' node builder (16-byte nodes) saved six registers and 104
/// bytes of stack per node with the slow path inline: 80 instructions a
/// node, 72 now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllocShape {
    /// Above the classes: the system allocation, inline as before (a
    /// call out of line would only add one).
    Whole,
    /// Passed in registers (at most two words): the value goes to the
    /// slow call too, which then owns it — nothing of it is kept across
    /// the call.
    ValueAlong,
    /// Larger: the value stays in the caller (in memory already), and the
    /// slow call returns only the room (passing it would copy it).
    ValueStays,
}

/// [`AllocShape`] for a `T` with class table `C`.
#[inline(always)]
pub(crate) const fn alloc_shape<T, C: SizeClasses>() -> AllocShape {
    const {
        if matches!(
            crate::size_class::route(C::TABLE, size_of::<T>(), align_of::<T>()),
            Route::Large
        ) {
            AllocShape::Whole
        } else if size_of::<T>() <= 2 * size_of::<usize>() {
            AllocShape::ValueAlong
        } else {
            AllocShape::ValueStays
        }
    }
}

/// The kind of manager a box comes from, which says how it goes back: a
/// [`Local`] box ([`PoolBox`], from a [`MemoryManager`]) is freed onto its
/// pool's free list; a [`Shared`] one ([`SharedBox`](crate::SharedBox), from
/// a [`SharedManager`](crate::SharedManager)) the same way on the thread that
/// owns the pool, and onto the pool's remote-free list on any other. Sealed:
/// only these two exist.
///
/// # Examples
///
/// ```
/// use memory_mgr::kind::{Local, Shared};
/// use memory_mgr::{DefaultClasses, MemoryManager, PoolBox, SharedBox, SharedManager};
///
/// let mm = MemoryManager::new();
/// let local: PoolBox<'_, u8, DefaultClasses, Local> = mm.alloc(1); // a `PoolBox<'_, u8>`
/// let sm = SharedManager::new();
/// let shared: SharedBox<'_, u8> = sm.alloc(2);
/// let same: &PoolBox<'_, u8, DefaultClasses, Shared> = &shared;
/// assert_eq!(*local + **same, 3);
/// ```
pub trait Kind: sealed::Sealed + 'static {
    /// Frees `ptr`, an allocation of `layout`.
    ///
    /// # Safety
    ///
    /// `ptr` must be a live allocation of `layout` made for its route by a
    /// live manager of this kind with class table `C`, not used afterwards.
    #[doc(hidden)]
    unsafe fn dealloc<C: SizeClasses>(ptr: NonNull<u8>, layout: Layout);

    /// Allocates room for `layout` from the manager that made `like`.
    ///
    /// # Safety
    ///
    /// `like` must be a live allocation of `layout` made by a live manager
    /// of this kind with class table `C`.
    #[doc(hidden)]
    unsafe fn alloc_like<C: SizeClasses>(
        like: NonNull<u8>,
        layout: Layout,
    ) -> Result<NonNull<u8>, Error>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Local {}
    impl Sealed for super::Shared {}
}

/// The [`Kind`] of the boxes of a [`MemoryManager`]: [`PoolBox`] (the
/// default of its last parameter).
///
/// # Examples
///
/// ```
/// use memory_mgr::{kind::Local, DefaultClasses, MemoryManager, PoolBox};
/// let mm = MemoryManager::new();
/// let b: PoolBox<'_, u32, DefaultClasses, Local> = mm.alloc(5);
/// let same: PoolBox<'_, u32> = b; // the same type
/// assert_eq!(*same, 5);
/// ```
#[derive(Debug)]
pub enum Local {}

/// The [`Kind`] of the boxes of a [`SharedManager`](crate::SharedManager):
/// [`SharedBox`](crate::SharedBox).
///
/// # Examples
///
/// ```
/// use memory_mgr::{kind::Shared, DefaultClasses, PoolBox, SharedBox, SharedManager};
/// let sm = SharedManager::new();
/// let b: PoolBox<'_, u32, DefaultClasses, Shared> = sm.alloc(5);
/// let same: SharedBox<'_, u32> = b; // the same type
/// assert_eq!(*same, 5);
/// ```
#[derive(Debug)]
pub enum Shared {}

impl Kind for Local {
    #[inline(always)]
    unsafe fn dealloc<C: SizeClasses>(ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's guarantee.
        unsafe { crate::heap::dealloc::<C>(ptr, layout) }
    }

    #[inline]
    unsafe fn alloc_like<C: SizeClasses>(
        like: NonNull<u8>,
        layout: Layout,
    ) -> Result<NonNull<u8>, Error> {
        // SAFETY: the caller's guarantee.
        unsafe { crate::heap::alloc_like::<C>(like, layout) }
    }
}

/// What boxes are allocated from: a manager, by reference. Behind the
/// constructors that `MemoryManager` and `SharedManager` share.
pub(crate) trait BoxMaker<'m, C: SizeClasses>: Copy {
    /// The kind of the boxes made.
    type Kind: Kind;
    /// Uninitialised room for one `T`.
    fn alloc_raw<T>(self) -> Result<NonNull<T>, Error>;
    /// Room for one `T` from the fast path alone — a pop or a bump in this
    /// thread's pool for `T`, dangling for a zero-sized `T` — or `None`
    /// (then [`alloc_raw`](Self::alloc_raw) does the rest).
    fn alloc_fast<T>(self) -> Option<NonNull<T>>;
    /// Uninitialised room for `len` elements of `T`.
    fn alloc_array<T>(self, len: usize) -> Result<NonNull<T>, Error>;
}

impl<'m, C: SizeClasses> BoxMaker<'m, C> for &'m MemoryManager<C> {
    type Kind = Local;

    #[inline(always)]
    fn alloc_raw<T>(self) -> Result<NonNull<T>, Error> {
        self.heap().alloc_raw::<T>()
    }

    #[inline(always)]
    fn alloc_fast<T>(self) -> Option<NonNull<T>> {
        match One::<T>::NEW.route::<C>() {
            Route::Pool(class) => self.heap().get(class).alloc_fast().map(NonNull::cast),
            Route::Zero => Some(NonNull::dangling()),
            Route::Large => None,
        }
    }

    #[inline]
    fn alloc_array<T>(self, len: usize) -> Result<NonNull<T>, Error> {
        self.heap().alloc_array::<T>(len)
    }
}

/// An owning pointer to a `T` in a [`MemoryManager`]'s pools: the `Box` of
/// this crate.
///
/// Create one with [`MemoryManager::alloc`] (or [`PoolBox::new_in`],
/// [`MemoryManager::alloc_slice_copy`], ...). Dropping it runs `T`'s
/// destructor exactly once and returns the block to its pool in O(1).
/// Values larger than the largest size class come from the system allocator;
/// zero-sized values allocate nothing.
///
/// # Examples
///
/// ```
/// use memory_mgr::{MemoryManager, PoolBox};
///
/// let mm = MemoryManager::new();
/// let mut p = mm.alloc([1u64, 2, 3, 4]); // a 32-byte block
/// p[0] = 10;
/// assert_eq!(p.iter().sum::<u64>(), 19);
/// let q = PoolBox::new_in(String::from("hi"), &mm);
/// assert_eq!(*q, "hi");
/// assert_eq!(std::mem::size_of::<PoolBox<'_, u64>>(), std::mem::size_of::<usize>());
/// ```
pub struct PoolBox<'m, T: ?Sized, C: SizeClasses = DefaultClasses, K: Kind = Local> {
    ptr: NonNull<T>,
    /// Borrows the manager; `&Cell` also makes the box `!Send` and `!Sync`.
    _manager: PhantomData<&'m Cell<()>>,
    /// Owns a `T` (for drop check and variance).
    _owns: PhantomData<T>,
    /// Names the class table the block's route is computed with. Invariant:
    /// a box must never be seen with another table (see [`MemoryManager`]).
    _classes: PhantomData<fn(C) -> C>,
    /// The kind of manager: where the block goes back to.
    _kind: PhantomData<fn() -> K>,
}

static_assertions::assert_eq_size!(PoolBox<'static, u64>, usize);
static_assertions::assert_eq_size!(Option<PoolBox<'static, u64>>, usize);
static_assertions::assert_eq_size!(PoolBox<'static, [u64]>, [usize; 2]);
static_assertions::assert_not_impl_any!(PoolBox<'static, u64>: Send, Sync);

/// What [`unsize_box!`](crate::unsize_box) carries from the box it takes
/// apart to the one it builds: the lifetime, class table and kind.
#[doc(hidden)]
#[derive(Debug)]
pub struct RawParts<'m, C: SizeClasses, K: Kind>(PhantomData<Parts<'m, C, K>>);

/// What [`RawParts`] names.
type Parts<'m, C, K> = (&'m Cell<()>, fn(C) -> C, fn() -> K);

impl<'m, U: ?Sized, C: SizeClasses, K: Kind> PoolBox<'m, U, C, K> {
    /// The second half of [`unsize_box!`](crate::unsize_box).
    ///
    /// # Safety
    ///
    /// `raw` must be the pointer of [`__into_raw_parts`](PoolBox::__into_raw_parts)
    /// that gave `parts`, unsized by a coercion (so the value's size and
    /// alignment, which route its block, are those it was allocated with).
    #[doc(hidden)]
    #[inline(always)]
    pub unsafe fn __from_raw_parts(raw: *mut U, parts: RawParts<'m, C, K>) -> Self {
        let _ = parts;
        // SAFETY: the caller's guarantee: a box's pointer, not null, whose
        // layout is unchanged by the coercion.
        unsafe { PoolBox::from_non_null(NonNull::new_unchecked(raw)) }
    }
}

/// Turns a `PoolBox<'m, T>` into a `PoolBox<'m, U>` where `T` unsizes to
/// `U`: a trait object (`PoolBox<dyn Trait>`) or a slice from an array —
/// what `Box` does by coercion, on stable Rust. (With the `nightly` feature
/// the coercion itself works too.) The block stays where it is; dropping
/// the new box runs the value's destructor and returns the block to its
/// class, which the value's size and alignment give, as before.
///
/// Only an unsizing coercion type-checks: the macro cannot cast a box to
/// an unrelated type.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use memory_mgr::{unsize_box, MemoryManager, PoolBox};
///
/// trait Component {
///     fn name(&self) -> String;
/// }
/// struct Health(u32);
/// impl Component for Health {
///     fn name(&self) -> String {
///         format!("health {}", self.0)
///     }
/// }
///
/// let mm = MemoryManager::new();
/// let mut parts: HashMap<u32, PoolBox<'_, dyn Component>> = HashMap::new();
/// parts.insert(1, unsize_box!(mm.alloc(Health(90))));
/// assert_eq!(parts[&1].name(), "health 90");
///
/// let slice: PoolBox<'_, [u8]> = unsize_box!(mm.alloc([1u8, 2, 3]));
/// assert_eq!(slice.len(), 3);
/// ```
///
/// A cast to a type the value does not unsize to is refused:
///
/// ```compile_fail
/// use memory_mgr::{unsize_box, MemoryManager, PoolBox};
/// let mm = MemoryManager::new();
/// let wrong: PoolBox<'_, u64> = unsize_box!(mm.alloc(1u8));
/// ```
#[macro_export]
macro_rules! unsize_box {
    ($boxed:expr $(,)?) => {{
        let (ptr, parts) = $crate::PoolBox::__into_raw_parts($boxed);
        // Not a cast: a coercion site, where only an unsizing coercion (or
        // none) is allowed; the annotation of the result picks the type.
        let ptr: *mut _ = ptr;
        // SAFETY: `ptr` is the box's own pointer, unsized by a coercion,
        // which keeps the value's size and alignment.
        unsafe { $crate::PoolBox::__from_raw_parts(ptr, parts) }
    }};
}

#[cfg(feature = "nightly")]
impl<'m, T, U, C, K> core::ops::CoerceUnsized<PoolBox<'m, U, C, K>> for PoolBox<'m, T, C, K>
where
    T: ?Sized + core::marker::Unsize<U>,
    U: ?Sized,
    C: SizeClasses,
    K: Kind,
{
}

/// Frees an allocation (and drops the values written so far) unless
/// disarmed with `mem::forget`: keeps a panicking initialiser from leaking.
struct InitGuard<T, C: SizeClasses, K: Kind> {
    ptr: NonNull<T>,
    layout: Layout,
    initialized: usize,
    _classes: PhantomData<fn() -> (C, K)>,
}

impl<T, C: SizeClasses, K: Kind> Drop for InitGuard<T, C, K> {
    fn drop(&mut self) {
        let done = ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.initialized);
        // The block is freed even if an element's destructor panics.
        let _free = FreeGuard::<C, K> {
            ptr: self.ptr.cast(),
            layout: self.layout,
            _classes: PhantomData,
        };
        // SAFETY: exactly the first `initialized` elements were written.
        unsafe { ptr::drop_in_place(done) };
    }
}

/// Frees an allocation when dropped, also during unwinding.
struct FreeGuard<C: SizeClasses, K: Kind> {
    ptr: NonNull<u8>,
    layout: Layout,
    _classes: PhantomData<fn() -> (C, K)>,
}

impl<C: SizeClasses, K: Kind> Drop for FreeGuard<C, K> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: whoever armed the guard owns this live allocation and uses
        // it no more.
        unsafe { K::dealloc::<C>(self.ptr, self.layout) }
    }
}

/// Room for one `T` allocated for a box and not yet written: the primitive
/// under every constructor of a sized box. Dropped without
/// [`Uninit::init`] (an initialiser panicked), it frees the memory.
struct Uninit<'m, T, C: SizeClasses, K: Kind> {
    /// Frees the allocation unless [`Uninit::init`] disarms it.
    guard: FreeGuard<C, K>,
    _box: PhantomData<PoolBox<'m, T, C, K>>,
}

impl<'m, T, C: SizeClasses, K: Kind> Uninit<'m, T, C, K> {
    /// Room for a `T` from `src` (dangling for a zero-sized `T`).
    #[inline(always)]
    fn new_in<S: BoxMaker<'m, C, Kind = K>>(src: S) -> Result<Self, Error> {
        let ptr = src.alloc_raw::<T>()?;
        Ok(Uninit {
            guard: FreeGuard {
                ptr: ptr.cast(),
                layout: Layout::new::<T>(),
                _classes: PhantomData,
            },
            _box: PhantomData,
        })
    }

    /// Room for a `T` in the manager that holds `like`.
    #[inline]
    fn like(like: &PoolBox<'m, T, C, K>) -> Result<Self, Error> {
        let layout = Layout::new::<T>();
        // SAFETY: `like` is a live allocation of `layout` (a box of `T`) from
        // a manager with table `C` that outlives `'m`.
        let ptr = unsafe { K::alloc_like::<C>(like.ptr.cast(), layout) }?;
        Ok(Uninit {
            guard: FreeGuard {
                ptr,
                layout,
                _classes: PhantomData,
            },
            _box: PhantomData,
        })
    }

    /// Writes `value` and hands the allocation to a box.
    #[inline(always)]
    fn init(self, value: T) -> PoolBox<'m, T, C, K> {
        let ptr = self.guard.ptr.cast::<T>();
        mem::forget(self);
        // SAFETY: `ptr` is a fresh allocation for `T` (or dangling and aligned
        // for a zero-sized `T`) by a manager with table `C` that outlives
        // `'m`, for `Layout::new::<T>()`'s route, that nothing else owns.
        unsafe { PoolBox::from_value(ptr, value) }
    }
}

impl<'m, T, C: SizeClasses, K: Kind> PoolBox<'m, T, C, K> {
    /// A box of `value`, written into `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be a fresh allocation for `Layout::new::<T>()` (dangling
    /// and aligned for a zero-sized `T`), made for that layout's route by a
    /// manager with table `C` that outlives `'m`, that nothing else owns.
    #[inline(always)]
    pub(crate) unsafe fn from_value(ptr: NonNull<T>, value: T) -> Self {
        // SAFETY: valid for a write of one `T` (the caller's guarantee);
        // then a live allocation of `T`'s layout holding a valid `T`.
        unsafe {
            ptr.write(value);
            PoolBox::from_non_null(ptr)
        }
    }
}

impl<'m, T: ?Sized, C: SizeClasses, K: Kind> PoolBox<'m, T, C, K> {
    /// Takes ownership of an initialised allocation.
    ///
    /// # Safety
    ///
    /// `ptr` must be a live allocation of `Layout::for_value(&*ptr)`, made for
    /// the route of that layout by a manager with table `C` that outlives
    /// `'m`, holding a valid `T` that nothing else owns.
    #[inline(always)]
    unsafe fn from_non_null(ptr: NonNull<T>) -> Self {
        PoolBox {
            ptr,
            _manager: PhantomData,
            _owns: PhantomData,
            _classes: PhantomData,
            _kind: PhantomData,
        }
    }

    /// The first half of [`unsize_box!`](crate::unsize_box): the pointer,
    /// and a token of the box's lifetime, class table and kind.
    #[doc(hidden)]
    #[inline(always)]
    pub fn __into_raw_parts(b: Self) -> (*mut T, RawParts<'m, C, K>) {
        (PoolBox::into_raw(b), RawParts(PhantomData))
    }

    /// Consumes the box and returns the raw pointer, without freeing.
    ///
    /// The block stays allocated until [`PoolBox::from_raw`] turns it back
    /// into a box, or the manager is dropped or reset. An associated function,
    /// so it does not shadow a method of `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm = MemoryManager::new();
    /// let raw = PoolBox::into_raw(mm.alloc(5u32));
    /// // SAFETY: `raw` came from `into_raw` of a box of this manager.
    /// let back = unsafe { PoolBox::<u32>::from_raw(raw) };
    /// assert_eq!(*back, 5);
    /// ```
    #[inline]
    #[must_use = "losing the pointer leaks the block until the manager is dropped"]
    pub fn into_raw(b: Self) -> *mut T {
        ManuallyDrop::new(b).ptr.as_ptr()
    }

    /// Rebuilds a box from a pointer returned by [`PoolBox::into_raw`].
    ///
    /// # Safety
    ///
    /// `raw` must come from `PoolBox::<T, C>::into_raw` (same `T` and class
    /// table), must not have been rebuilt already, and the manager it came
    /// from must outlive `'m` and not have been [reset](crate::MemoryManager::reset)
    /// since. A double `from_raw` is a double free, as
    /// with `Box::from_raw`.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm = MemoryManager::new();
    /// let raw = PoolBox::into_raw(mm.alloc_slice_copy(&[1u8, 2, 3]));
    /// // SAFETY: `raw` came from `into_raw`, once, and `mm` is alive.
    /// let back: PoolBox<'_, [u8]> = unsafe { PoolBox::from_raw(raw) };
    /// assert_eq!(&*back, &[1, 2, 3]);
    /// ```
    #[inline]
    pub unsafe fn from_raw(raw: *mut T) -> Self {
        // SAFETY: `into_raw` never returns null; the caller guarantees the rest.
        unsafe { PoolBox::from_non_null(NonNull::new_unchecked(raw)) }
    }

    /// Consumes the box and returns a reference that lives as long as the
    /// manager borrow. The value's destructor never runs; its block is
    /// released when the manager is dropped or reset.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm = MemoryManager::new();
    /// let r: &mut u32 = PoolBox::leak(mm.alloc(41));
    /// *r += 1;
    /// assert_eq!(*r, 42);
    /// ```
    #[inline]
    pub fn leak(b: Self) -> &'m mut T {
        // SAFETY: the box owned a valid `T`; giving up ownership without
        // freeing leaves it valid as long as the manager, which outlives `'m`.
        unsafe { &mut *PoolBox::into_raw(b) }
    }

    /// A raw pointer to the value, without consuming the box.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm = MemoryManager::new();
    /// let b = mm.alloc(9u64);
    /// // SAFETY: `b` is alive and not mutably borrowed.
    /// assert_eq!(unsafe { *PoolBox::as_ptr(&b) }, 9);
    /// ```
    #[inline]
    pub fn as_ptr(b: &Self) -> *const T {
        b.ptr.as_ptr()
    }

    /// A mutable raw pointer to the value, without consuming the box.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm = MemoryManager::new();
    /// let mut b = mm.alloc(9u64);
    /// // SAFETY: `b` is alive and this is the only access.
    /// unsafe { *PoolBox::as_mut_ptr(&mut b) = 10 };
    /// assert_eq!(*b, 10);
    /// ```
    #[inline]
    pub fn as_mut_ptr(b: &mut Self) -> *mut T {
        b.ptr.as_ptr()
    }
}

impl<'m, T, C: SizeClasses> PoolBox<'m, T, C> {
    /// Moves `value` into `mm`'s pool for its size: the `Box::new_in` of this
    /// crate.
    ///
    /// # Panics
    ///
    /// Panics if the system allocator refuses memory (see
    /// [`PoolBox::try_new_in`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm = MemoryManager::new();
    /// let b = PoolBox::new_in(7u32, &mm);
    /// assert_eq!(*b, 7);
    /// ```
    #[inline]
    #[track_caller]
    pub fn new_in(value: T, mm: &'m MemoryManager<C>) -> Self {
        mm.alloc(value)
    }

    /// Moves `value` into `mm`'s pool for its size, or returns the error
    /// (and drops `value`) if memory cannot be had.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfMemory`] if the system allocator refuses a new chunk (or
    /// the allocation itself, for a value above the largest class).
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm = MemoryManager::new();
    /// let b = PoolBox::try_new_in([0u8; 100], &mm)?;
    /// assert_eq!(b.len(), 100);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    pub fn try_new_in(value: T, mm: &'m MemoryManager<C>) -> Result<Self, Error> {
        Ok(Uninit::new_in(mm)?.init(value))
    }

    /// Allocates in `mm`, then builds the value in place with `f`. If `f`
    /// panics the block is returned and nothing leaks.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfMemory`] as for [`PoolBox::try_new_in`]; `f` is not
    /// called then.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm = MemoryManager::new();
    /// let b = PoolBox::try_new_with_in(|| [7u16; 16], &mm)?;
    /// assert_eq!(b[15], 7);
    /// # Ok::<(), memory_mgr::Error>(())
    /// ```
    #[inline]
    pub fn try_new_with_in(f: impl FnOnce() -> T, mm: &'m MemoryManager<C>) -> Result<Self, Error> {
        PoolBox::try_new_with_from(f, mm)
    }
}

impl<'m, T, C: SizeClasses, K: Kind> PoolBox<'m, T, C, K> {
    /// A box of `f()` from `src`; `f` runs after the allocation succeeded.
    #[inline]
    pub(crate) fn try_new_with_from<S: BoxMaker<'m, C, Kind = K>>(
        f: impl FnOnce() -> T,
        src: S,
    ) -> Result<Self, Error> {
        let room = Uninit::new_in(src)?;
        // If `f` panics, `room` is dropped and frees the block.
        Ok(room.init(f()))
    }

    /// Moves the value out and returns its block to the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm = MemoryManager::new();
    /// let s = PoolBox::into_inner(mm.alloc(String::from("out")));
    /// assert_eq!(s, "out");
    /// ```
    #[inline]
    pub fn into_inner(b: Self) -> T {
        let ptr = PoolBox::into_raw(b);
        // SAFETY: the box owned a valid `T`, read exactly once here.
        let value = unsafe { ptr.read() };
        // SAFETY: the block is live, of `Layout::new::<T>()`, and the value
        // has been moved out, so it is not used again.
        unsafe { K::dealloc::<C>(NonNull::new_unchecked(ptr).cast(), Layout::new::<T>()) };
        value
    }
}

impl<T: ?Sized, C: SizeClasses, K: Kind> PoolBox<'static, T, C, K> {
    /// Pins the box. A `PoolBox`'s value never moves when the box moves, so
    /// this is free, as for `Box::into_pin`.
    ///
    /// Only boxes of a `'static` manager (one that is never dropped or
    /// reset, e.g. from `Box::leak`) can be pinned, as `Box::into_pin`
    /// requires a `'static` allocator: `Pin` promises that a pinned value's
    /// memory is not reused before its destructor runs, and a box may be
    /// `mem::forget`-ed — after which dropping or resetting a shorter-lived
    /// manager would free the memory without running the destructor. A value
    /// that is `Unpin` needs no pinning guarantee: `Pin::new(b)` pins it in
    /// any manager.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm: &'static MemoryManager = Box::leak(Box::new(MemoryManager::new()));
    /// let p = PoolBox::into_pin(mm.alloc(3u8));
    /// assert_eq!(*p, 3);
    /// ```
    ///
    /// A box of a manager that can be dropped cannot be pinned:
    ///
    /// ```compile_fail
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm = MemoryManager::new();
    /// let p = PoolBox::into_pin(mm.alloc(async {}));
    /// std::mem::forget(p);
    /// drop(mm); // would free the pinned future without running its destructor
    /// ```
    #[inline]
    pub fn into_pin(b: Self) -> Pin<Self> {
        // SAFETY: the value lives in a block that stays put until the box is
        // dropped, whatever happens to the box itself, and `PoolBox` offers no
        // way to move the value out of a pinned box. The manager is borrowed
        // for `'static`, so it is never dropped or reset (both need it by
        // value or `&mut`): a forgotten box's memory is never reused, which
        // is the drop guarantee `Pin` asks for.
        unsafe { Pin::new_unchecked(b) }
    }
}

impl<T, C: SizeClasses> PoolBox<'static, T, C> {
    /// Like [`PoolBox::new_in`], pinned. The manager must be `'static`, as for
    /// [`PoolBox::into_pin`].
    ///
    /// # Panics
    ///
    /// Panics if the system allocator refuses memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm: &'static MemoryManager = Box::leak(Box::new(MemoryManager::new()));
    /// let p = PoolBox::pin_in(5i32, mm);
    /// assert_eq!(*p, 5);
    /// ```
    ///
    /// ```compile_fail
    /// use memory_mgr::{MemoryManager, PoolBox};
    /// let mm = MemoryManager::new();
    /// let p = PoolBox::pin_in(async {}, &mm); // `mm` does not live for 'static
    /// ```
    #[inline]
    #[track_caller]
    pub fn pin_in(value: T, mm: &'static MemoryManager<C>) -> Pin<Self> {
        PoolBox::into_pin(PoolBox::new_in(value, mm))
    }
}

impl<'m, T, C: SizeClasses, K: Kind> PoolBox<'m, [T], C, K> {
    /// Fills a fresh slice allocation element by element; on a panic in `f`
    /// drops what was written and frees the block.
    ///
    /// # Safety
    ///
    /// `ptr` must be a live allocation of `Layout::array::<T>(len)` for its
    /// route, from a manager with table `C` that outlives `'m`.
    pub(crate) unsafe fn init_slice(
        ptr: NonNull<T>,
        len: usize,
        mut f: impl FnMut(usize) -> T,
    ) -> PoolBox<'m, [T], C, K> {
        let mut guard = InitGuard::<T, C, K> {
            ptr,
            // The layout was valid when the block was allocated.
            layout: Layout::array::<T>(len).unwrap_or_else(|_| unreachable!()),
            initialized: 0,
            _classes: PhantomData,
        };
        while guard.initialized < len {
            let value = f(guard.initialized);
            // SAFETY: `initialized < len`, so the slot is inside the allocation
            // and not yet written.
            unsafe { ptr.add(guard.initialized).write(value) };
            guard.initialized += 1;
        }
        mem::forget(guard);
        // SAFETY: all `len` elements are written; the caller vouches for the
        // allocation.
        unsafe { PoolBox::from_non_null(NonNull::slice_from_raw_parts(ptr, len)) }
    }

    /// Allocates `len` elements in `mm` and fills them with `f(0)`, `f(1)`, ...
    pub(crate) fn try_from_fn_in<S: BoxMaker<'m, C, Kind = K>>(
        len: usize,
        f: impl FnMut(usize) -> T,
        mm: S,
    ) -> Result<Self, Error> {
        let ptr = mm.alloc_array::<T>(len)?;
        // SAFETY: a fresh allocation of `Layout::array::<T>(len)` from `mm`.
        Ok(unsafe { PoolBox::init_slice(ptr, len, f) })
    }

    /// Allocates a copy of `src` in `mm`.
    pub(crate) fn try_copy_in<S: BoxMaker<'m, C, Kind = K>>(src: &[T], mm: S) -> Result<Self, Error>
    where
        T: Copy,
    {
        let ptr = mm.alloc_array::<T>(src.len())?;
        // SAFETY: `ptr` is a fresh allocation of `src.len()` elements, which
        // cannot overlap the borrowed `src`.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), ptr.as_ptr(), src.len()) };
        // SAFETY: all elements are written; allocated by `mm` for the
        // slice's layout.
        Ok(unsafe { PoolBox::from_non_null(NonNull::slice_from_raw_parts(ptr, src.len())) })
    }
}

impl<'m, C: SizeClasses, K: Kind> PoolBox<'m, [u8], C, K> {
    /// Reinterprets a byte slice box as a `str` box.
    ///
    /// # Safety
    ///
    /// The bytes must be valid UTF-8.
    pub(crate) unsafe fn into_str_unchecked(b: Self) -> PoolBox<'m, str, C, K> {
        let raw = PoolBox::into_raw(b) as *mut str;
        // SAFETY: `str` has the layout of `[u8]`, so the allocation is the same,
        // and the caller guarantees UTF-8.
        unsafe { PoolBox::from_raw(raw) }
    }
}

impl<'m, C: SizeClasses, K: Kind> PoolBox<'m, str, C, K> {
    /// Allocates a copy of `s` in `mm`.
    pub(crate) fn try_str_in<S: BoxMaker<'m, C, Kind = K>>(s: &str, mm: S) -> Result<Self, Error> {
        let bytes = PoolBox::<[u8], C, K>::try_copy_in(s.as_bytes(), mm)?;
        // SAFETY: copied from a `str`, so valid UTF-8.
        Ok(unsafe { PoolBox::into_str_unchecked(bytes) })
    }
}

impl<T: ?Sized, C: SizeClasses, K: Kind> Drop for PoolBox<'_, T, C, K> {
    #[inline]
    fn drop(&mut self) {
        // Armed before the destructor runs, so a panicking `T::drop` still
        // returns the block (on the unwinding path only). It holds the
        // pointer alone: the unwinding path's drop glue is called out of
        // line, so whatever the guard holds is stored on the stack before
        // every destructor runs — a layout there was two more stores a
        // drop (binary-trees' nodes).
        let free = DropGuard::<T, C, K> {
            ptr: self.ptr,
            _classes: PhantomData,
        };
        // SAFETY: the box holds a valid `T`.
        let layout = Layout::for_value(unsafe { self.ptr.as_ref() });
        // SAFETY: the value is valid and dropped exactly once, here.
        unsafe { ptr::drop_in_place(self.ptr.as_ptr()) };
        // Freed here rather than by the guard's drop glue, which the
        // compiler may leave out of line: inlined, a sized `T`'s route is a
        // constant and the free is a few instructions.
        core::mem::forget(free);
        // SAFETY: the block holds no value any more and is freed once.
        unsafe { K::dealloc::<C>(self.ptr.cast(), layout) }
    }
}

/// Frees a box's block when its value's destructor panicked: a
/// [`FreeGuard`] that holds only the box's pointer and takes the layout
/// from its metadata (which outlives the value's drop).
struct DropGuard<T: ?Sized, C: SizeClasses, K: Kind> {
    ptr: NonNull<T>,
    _classes: PhantomData<fn() -> (C, K)>,
}

impl<T: ?Sized, C: SizeClasses, K: Kind> Drop for DropGuard<T, C, K> {
    fn drop(&mut self) {
        // SAFETY: the box's block, whose value was just dropped: still
        // allocated, aligned and of the value's size, so a reference to it
        // reads the size and alignment (from the type, or the pointer's
        // metadata) and nothing of the value.
        let layout = Layout::for_value(unsafe { self.ptr.as_ref() });
        // SAFETY: the box owned this live block and uses it no more.
        unsafe { K::dealloc::<C>(self.ptr.cast(), layout) }
    }
}

impl<T: ?Sized, C: SizeClasses, K: Kind> Deref for PoolBox<'_, T, C, K> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the box owns a valid `T`; `&self` forbids mutation meanwhile.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ?Sized, C: SizeClasses, K: Kind> DerefMut for PoolBox<'_, T, C, K> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the box owns a valid `T` uniquely; `&mut self` makes this
        // the only access.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: ?Sized, C: SizeClasses, K: Kind> AsRef<T> for PoolBox<'_, T, C, K> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: ?Sized, C: SizeClasses, K: Kind> AsMut<T> for PoolBox<'_, T, C, K> {
    fn as_mut(&mut self) -> &mut T {
        self
    }
}

impl<T: ?Sized, C: SizeClasses, K: Kind> Borrow<T> for PoolBox<'_, T, C, K> {
    fn borrow(&self) -> &T {
        self
    }
}

impl<T: ?Sized, C: SizeClasses, K: Kind> BorrowMut<T> for PoolBox<'_, T, C, K> {
    fn borrow_mut(&mut self) -> &mut T {
        self
    }
}

impl<T: ?Sized, C: SizeClasses, K: Kind> Unpin for PoolBox<'_, T, C, K> {}

impl<T: ?Sized + fmt::Debug, C: SizeClasses, K: Kind> fmt::Debug for PoolBox<'_, T, C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display, C: SizeClasses, K: Kind> fmt::Display for PoolBox<'_, T, C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized, C: SizeClasses, K: Kind> fmt::Pointer for PoolBox<'_, T, C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&self.ptr, f)
    }
}

impl<T: ?Sized + PartialEq, C: SizeClasses, K: Kind> PartialEq for PoolBox<'_, T, C, K> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: ?Sized + Eq, C: SizeClasses, K: Kind> Eq for PoolBox<'_, T, C, K> {}

impl<T: ?Sized + PartialOrd, C: SizeClasses, K: Kind> PartialOrd for PoolBox<'_, T, C, K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (**self).partial_cmp(&**other)
    }
}

impl<T: ?Sized + Ord, C: SizeClasses, K: Kind> Ord for PoolBox<'_, T, C, K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl<T: ?Sized + Hash, C: SizeClasses, K: Kind> Hash for PoolBox<'_, T, C, K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl<T: ?Sized + Iterator, C: SizeClasses, K: Kind> Iterator for PoolBox<'_, T, C, K> {
    type Item = T::Item;
    fn next(&mut self) -> Option<T::Item> {
        (**self).next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (**self).size_hint()
    }
}

/// Clones into a new block of the same manager.
///
/// # Panics
///
/// Panics if the system allocator refuses memory.
impl<'m, T: Clone, C: SizeClasses, K: Kind> Clone for PoolBox<'m, T, C, K> {
    fn clone(&self) -> Self {
        let room = Uninit::like(self).unwrap_or_else(|e| {
            // SAFETY: `self` is a live allocation of a `T` from a live manager.
            alloc_failed(
                unsafe { name_of::<C>(self.ptr.cast(), Layout::new::<T>()) },
                e,
            )
        });
        // If `clone` panics, `room` is dropped and frees the block.
        room.init((**self).clone())
    }
}

/// Clones each element into a new block of the same manager.
///
/// # Panics
///
/// Panics if the system allocator refuses memory.
impl<'m, T: Clone, C: SizeClasses, K: Kind> Clone for PoolBox<'m, [T], C, K> {
    fn clone(&self) -> Self {
        let layout = Layout::for_value::<[T]>(self);
        // SAFETY: `self` is a live allocation of `layout` from a live manager.
        let ptr = match unsafe { K::alloc_like::<C>(self.ptr.cast(), layout) } {
            Ok(p) => p.cast::<T>(),
            // SAFETY: as above.
            Err(e) => alloc_failed(unsafe { name_of::<C>(self.ptr.cast(), layout) }, e),
        };
        // SAFETY: a fresh allocation of `Layout::array::<T>(self.len())` from
        // the same manager.
        unsafe { PoolBox::init_slice(ptr, self.len(), |i| self[i].clone()) }
    }
}

/// Copies the string into a new block of the same manager.
///
/// # Panics
///
/// Panics if the system allocator refuses memory.
impl<'m, C: SizeClasses, K: Kind> Clone for PoolBox<'m, str, C, K> {
    fn clone(&self) -> Self {
        let bytes = self.as_bytes();
        let layout = Layout::for_value(bytes);
        // SAFETY: `self` is a live allocation of this layout from a live manager.
        let ptr = match unsafe { K::alloc_like::<C>(self.ptr.cast(), layout) } {
            Ok(p) => p,
            // SAFETY: as above.
            Err(e) => alloc_failed(unsafe { name_of::<C>(self.ptr.cast(), layout) }, e),
        };
        // SAFETY: a fresh allocation of `bytes.len()` bytes from the same manager.
        let b = unsafe { PoolBox::init_slice(ptr, bytes.len(), |i| bytes[i]) };
        // SAFETY: a copy of a `str`'s bytes is valid UTF-8.
        unsafe { PoolBox::into_str_unchecked(b) }
    }
}
